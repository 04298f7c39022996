package framework

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cri-rt/cri-rt/pkg/imagebuild"
	"github.com/cri-rt/cri-rt/test/registry"
)

var (
	pauseOnce sync.Once
	pauseBin  string
	pauseErr  error
)

// pauseBinary compiles the project's pause program (statically) once.
func pauseBinary(t testing.TB) string {
	pauseOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cri-rt-pause-")
		if err != nil {
			pauseErr = err
			return
		}
		pauseBin = filepath.Join(dir, "pause")
		cmd := exec.Command("go", "build", "-o", pauseBin, "github.com/cri-rt/cri-rt/test/critest/images/progs/pause")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			pauseErr = fmt.Errorf("building pause: %v\n%s", err, out)
		}
	})
	if pauseErr != nil {
		t.Fatal(pauseErr)
	}
	return pauseBin
}

// busyboxApplets are linked in the test busybox image.
var busyboxApplets = []string{"sh", "echo", "cat", "sleep", "ls", "id", "touch", "mkdir", "rm", "ps", "top",
	"head", "tail", "tr", "dd", "wc", "grep", "stty", "true", "false", "env", "hostname", "ip", "nc",
	"httpd", "wget", "mount", "yes", "seq", "date", "kill", "test", "[", "printf", "uname", "stat", "readlink"}

// TestImages pushes the images end-to-end tests use to reg and returns
// their references: a pause image and a busybox image (Debian's
// busybox-static with its applets linked).
func TestImages(t testing.TB, reg *registry.InProcess) (pause, busybox string) {
	t.Helper()
	pauseImg := registry.BuildImage(t, imagebuild.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"},
		[]imagebuild.Entry{imagebuild.HostFile("pause", 0o755, pauseBinary(t))})
	pause = registry.Push(t, reg.Host, "pause:3.10", pauseImg)

	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox not installed (make deps installs busybox-static): %v", err)
	}
	entries := []imagebuild.Entry{
		imagebuild.HostFile("bin/busybox", 0o755, bb),
		imagebuild.Dir("tmp", 0o1777), imagebuild.Dir("etc", 0o755), imagebuild.Dir("root", 0o700),
		imagebuild.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n")),
		imagebuild.File("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\napp:x:1000:\nextra:x:2000:app\n")),
	}
	for _, a := range busyboxApplets {
		entries = append(entries, imagebuild.Hardlink("bin/"+a, "bin/busybox"))
	}
	bbImg := registry.BuildImage(t, imagebuild.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}, entries)
	busybox = registry.Push(t, reg.Host, "library/busybox:test", bbImg)
	return pause, busybox
}

// ConfigWithImages returns config lines pointing the sandbox image at
// pause and the CNI dirs at the given conf dir.
func ConfigWithImages(pause, cniConfDir string, extra ...string) string {
	return fmt.Sprintf("sandbox_image = %q\n%s\n[cni]\nconf_dir = %q\nbin_dirs = [\"/opt/cni/bin\", \"/usr/lib/cni\"]\n",
		pause, strings.Join(extra, "\n"), cniConfDir)
}
