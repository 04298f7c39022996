package oci

import (
	"slices"
	"syscall"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestProcessArgs(t *testing.T) {
	img := func(ep, cmd []string) *ocispec.ImageConfig { return &ocispec.ImageConfig{Entrypoint: ep, Cmd: cmd} }
	for _, tc := range []struct {
		name          string
		command, args []string
		image         *ocispec.ImageConfig
		want          []string
		wantErr       bool
	}{
		{name: "image entrypoint and cmd", image: img([]string{"/ep"}, []string{"c1"}), want: []string{"/ep", "c1"}},
		{name: "image cmd only", image: img(nil, []string{"/bin/sh", "-c", "x"}), want: []string{"/bin/sh", "-c", "x"}},
		{name: "image entrypoint only", image: img([]string{"/ep", "a"}, nil), want: []string{"/ep", "a"}},
		{name: "args replace cmd", args: []string{"a1"}, image: img([]string{"/ep"}, []string{"c1"}), want: []string{"/ep", "a1"}},
		{name: "command replaces entrypoint and drops cmd", command: []string{"/cmd"}, image: img([]string{"/ep"}, []string{"c1"}), want: []string{"/cmd"}},
		{name: "command and args", command: []string{"/cmd"}, args: []string{"a1", "a2"}, image: img([]string{"/ep"}, []string{"c1"}), want: []string{"/cmd", "a1", "a2"}},
		{name: "empty entrypoint marker", image: img([]string{""}, []string{"/c"}), want: []string{"/c"}},
		{name: "args without image", args: []string{"/bin/true"}, image: img(nil, nil), want: []string{"/bin/true"}},
		{name: "nil image", command: []string{"/x"}, want: []string{"/x"}},
		{name: "nothing to run", image: img(nil, nil), wantErr: true},
		{name: "only empty entrypoint", image: img([]string{""}, nil), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &runtimeapi.ContainerConfig{Command: tc.command, Args: tc.args}
			got, err := ProcessArgs(cfg, tc.image)
			if tc.wantErr {
				wantInvalid(t, err, "command")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestProcessArgsDoesNotAlias(t *testing.T) {
	image := &ocispec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"c"}}
	got, _ := ProcessArgs(&runtimeapi.ContainerConfig{}, image)
	got[0] = "changed"
	if image.Entrypoint[0] != "/ep" {
		t.Fatal("ProcessArgs result aliases the image config")
	}
}

func TestEnvPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tty    bool
		host   string
		image  []string
		envs   []*runtimeapi.KeyValue
		want   []string
		hostFn func() (string, error)
	}{
		{
			name:  "image then request, later wins in place",
			image: []string{"PATH=/image/bin", "A=image", "B=image"},
			envs:  []*runtimeapi.KeyValue{{Key: "B", Value: []byte("request")}, {Key: "C", Value: []byte("c")}},
			want:  []string{"PATH=/image/bin", "HOSTNAME=pod-host", "A=image", "B=request", "C=c"},
		},
		{
			name: "default PATH",
			want: []string{"PATH=" + defaultPath, "HOSTNAME=pod-host"},
		},
		{
			name:  "request overrides HOSTNAME and PATH",
			image: []string{"X=1"},
			envs:  []*runtimeapi.KeyValue{{Key: "HOSTNAME", Value: []byte("mine")}, {Key: "PATH", Value: []byte("/p")}},
			want:  []string{"PATH=/p", "HOSTNAME=mine", "X=1"},
		},
		{
			name: "tty adds TERM",
			tty:  true,
			want: []string{"PATH=" + defaultPath, "HOSTNAME=pod-host", "TERM=xterm"},
		},
		{
			name: "host network pod uses node name",
			host: "-",
			want: []string{"PATH=" + defaultPath, "HOSTNAME=node-1"},
		},
		{
			name: "value with = and empty value",
			envs: []*runtimeapi.KeyValue{{Key: "EQ", Value: []byte("a=b")}, {Key: "EMPTY"}},
			want: []string{"PATH=" + defaultPath, "HOSTNAME=pod-host", "EQ=a=b", "EMPTY="},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := containerOpts(t)
			o.Image = &ocispec.ImageConfig{Entrypoint: []string{"/x"}, Env: tc.image}
			o.Config.Envs = tc.envs
			o.Config.Tty = tc.tty
			if tc.host == "-" {
				o.SandboxConfig.Hostname = ""
			}
			s := mustContainer(t, o)
			if !slices.Equal(s.Process.Env, tc.want) {
				t.Fatalf("env\n got %q\nwant %q", s.Process.Env, tc.want)
			}
			if s.Process.Terminal != tc.tty {
				t.Fatalf("terminal = %v, want %v", s.Process.Terminal, tc.tty)
			}
		})
	}
}

func TestEnvInvalidKey(t *testing.T) {
	for i, key := range []string{"", "A=B"} {
		o := containerOpts(t)
		o.Config.Envs = []*runtimeapi.KeyValue{{Key: "OK", Value: []byte("1")}, {Key: key}}
		_, err := ContainerSpec(o)
		wantInvalid(t, err, "envs[1].key")
		_ = i
	}
}

func TestWorkingDir(t *testing.T) {
	for _, tc := range []struct {
		name, request, image, want string
		wantErr                    bool
	}{
		{name: "request", request: "/work", image: "/img", want: "/work"},
		{name: "image", image: "/img", want: "/img"},
		{name: "relative image", image: "app", want: "/app"},
		{name: "default", want: "/"},
		{name: "relative request", request: "work", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := containerOpts(t)
			o.Config.WorkingDir = tc.request
			o.Image.WorkingDir = tc.image
			s, err := ContainerSpec(o)
			if tc.wantErr {
				wantInvalid(t, err, "working_dir")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Process.Cwd != tc.want {
				t.Fatalf("cwd = %q, want %q", s.Process.Cwd, tc.want)
			}
		})
	}
}

func TestStopSignal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		request runtimeapi.Signal
		image   string
		want    syscall.Signal
	}{
		{name: "default", want: syscall.SIGTERM},
		{name: "request", request: runtimeapi.Signal_SIGNAL_SIGQUIT, image: "SIGINT", want: syscall.SIGQUIT},
		{name: "request rt", request: runtimeapi.Signal_SIGNAL_SIGRTMINPLUS3, want: syscall.Signal(37)},
		{name: "request rtmax", request: runtimeapi.Signal_SIGNAL_SIGRTMAXMINUS1, want: syscall.Signal(63)},
		{name: "request alias", request: runtimeapi.Signal_SIGNAL_SIGCLD, want: syscall.SIGCHLD},
		{name: "image name", image: "SIGQUIT", want: syscall.SIGQUIT},
		{name: "image short name", image: "usr1", want: syscall.SIGUSR1},
		{name: "image number", image: "9", want: syscall.SIGKILL},
		{name: "image rt", image: "SIGRTMIN+2", want: syscall.Signal(36)},
		{name: "image garbage", image: "SIGNOPE", want: syscall.SIGTERM},
		{name: "image out of range", image: "99", want: syscall.SIGTERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &runtimeapi.ContainerConfig{StopSignal: tc.request}
			got := StopSignal(cfg, &ocispec.ImageConfig{StopSignal: tc.image})
			if got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
	if got := StopSignal(nil, nil); got != syscall.SIGTERM {
		t.Fatalf("nil config: got %v", got)
	}
}

// Every CRI signal must map to a signal: a stop must never be lost to a
// naming gap.
func TestEveryCRISignalParses(t *testing.T) {
	for v, name := range runtimeapi.Signal_name {
		if v == 0 {
			continue
		}
		sig := StopSignal(&runtimeapi.ContainerConfig{StopSignal: runtimeapi.Signal(v)}, nil)
		if sig == syscall.SIGTERM && name != "SIGNAL_SIGTERM" {
			t.Errorf("%s fell back to SIGTERM", name)
		}
	}
}
