package oci

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestDefaultDeviceRules(t *testing.T) {
	s := mustContainer(t, containerOpts(t))
	rules := s.Linux.Resources.Devices
	if len(rules) == 0 || rules[0].Allow || rules[0].Access != "rwm" {
		t.Fatalf("first rule %+v, want deny all", rules)
	}
	for _, mm := range [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 2}} {
		if !slices.ContainsFunc(rules, func(r specs.LinuxDeviceCgroup) bool {
			return r.Allow && r.Type == "c" && *r.Major == mm[0] && r.Minor != nil && *r.Minor == mm[1]
		}) {
			t.Errorf("no allow rule for c %d:%d", mm[0], mm[1])
		}
	}
	if len(s.Linux.Devices) != 0 {
		t.Errorf("devices %+v without a request", s.Linux.Devices)
	}
}

func TestRequestDevices(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "by-id")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		dev     *runtimeapi.Device
		want    specs.LinuxDevice
		perms   string
		wantErr string
	}{
		{name: "null", dev: &runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"},
			want: specs.LinuxDevice{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3}, perms: "rw"},
		{name: "symlink followed", dev: &runtimeapi.Device{HostPath: link, ContainerPath: "/dev/x"},
			want: specs.LinuxDevice{Path: "/dev/x", Type: "c", Major: 1, Minor: 3}, perms: "rwm"},
		{name: "missing", dev: &runtimeapi.Device{HostPath: "/dev/does-not-exist", ContainerPath: "/dev/x"}, wantErr: "devices[0].host_path"},
		{name: "not a device", dev: &runtimeapi.Device{HostPath: "/etc/hostname", ContainerPath: "/dev/x"}, wantErr: "devices[0].host_path"},
		{name: "bad permissions", dev: &runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "/dev/x", Permissions: "rx"}, wantErr: "devices[0].permissions"},
		{name: "relative container path", dev: &runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "dev/x"}, wantErr: "devices[0].container_path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := containerOpts(t)
			o.Config.Devices = []*runtimeapi.Device{tc.dev}
			s, err := ContainerSpec(o)
			if tc.wantErr != "" {
				wantInvalid(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Linux.Devices) != 1 {
				t.Fatalf("devices %+v", s.Linux.Devices)
			}
			d := s.Linux.Devices[0]
			if d.Path != tc.want.Path || d.Type != tc.want.Type || d.Major != tc.want.Major || d.Minor != tc.want.Minor || d.FileMode == nil {
				t.Fatalf("device %+v, want %+v", d, tc.want)
			}
			last := s.Linux.Resources.Devices[len(s.Linux.Resources.Devices)-1]
			if !last.Allow || last.Type != "c" || *last.Major != tc.want.Major || *last.Minor != tc.want.Minor || last.Access != tc.perms {
				t.Fatalf("rule %+v", last)
			}
		})
	}
}

func TestHostDevicesSkips(t *testing.T) {
	// Every device found under a directory keeps its relative place.
	devs, err := devicesAt("/dev", "/host-dev")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(devs, func(d specs.LinuxDevice) bool { return d.Path == "/host-dev/null" }) {
		t.Fatalf("no /host-dev/null in %d devices", len(devs))
	}
	for _, d := range devs {
		switch filepath.Base(filepath.Dir(d.Path)) {
		case "pts", "shm", "mqueue", "fd":
			t.Errorf("%s should be skipped", d.Path)
		}
	}
}
