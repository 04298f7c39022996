package oci

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cri-rt/cri-rt/pkg/oom"
)

func TestZZSmokeRunc(t *testing.T) {
	if os.Getenv("SMOKE") == "" {
		t.Skip()
	}
	// restore real probes
	cgroupV2, hugetlbAvailable, swapAvailable = realProbes[0], realProbes[1], realProbes[2]
	hostCapabilities = realCapabilities
	base := t.TempDir()
	mkroot := func(name string) string {
		r := filepath.Join(base, name, "rootfs")
		for _, d := range []string{"etc", "tmp", "proc", "sys", "dev"} {
			os.MkdirAll(filepath.Join(r, d), 0o755)
		}
		b, _ := os.ReadFile("/tmp/smoke/tiny.bin")
		os.WriteFile(filepath.Join(r, "tiny"), b, 0o755)
		os.WriteFile(filepath.Join(r, "etc/passwd"), []byte(testPasswd), 0o644)
		os.WriteFile(filepath.Join(r, "etc/group"), []byte(testGroup), 0o644)
		return r
	}
	runcRoot := filepath.Join(base, "runc")
	files := filepath.Join(base, "files")
	os.MkdirAll(files, 0o755)
	os.WriteFile(filepath.Join(files, "hostname"), []byte("pod-host\n"), 0o644)
	os.WriteFile(filepath.Join(files, "hosts"), []byte("127.0.0.1 localhost\n"), 0o644)
	os.WriteFile(filepath.Join(files, "resolv.conf"), []byte("nameserver 1.1.1.1\n"), 0o644)

	cur, _ := oom.Read()
	so := sandboxOpts(t)
	so.OOM = oom.Restriction{Restricted: true, Floor: cur}
	so.RootfsPath = mkroot("sb")
	so.NetNSPath = ""
	so.Image = &ocispec.ImageConfig{Entrypoint: []string{"/tiny", "pause"}, User: "65534:65534"}
	so.Config.Linux.Sysctls = map[string]string{"kernel.shm_rmid_forced": "1"}
	so.Config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{}
	ss := mustSandbox(t, so)
	write := func(dir string, v any) {
		b, _ := json.MarshalIndent(v, "", " ")
		os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	}
	write(filepath.Dir(so.RootfsPath), ss)
	pidFile := filepath.Join(base, "sb.pid")
	cmd := exec.Command("runc", "--root", runcRoot, "create", "--bundle", filepath.Dir(so.RootfsPath), "--pid-file", pidFile, "smoke-sb")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("create sandbox: %v %s", err, out)
	}
	defer exec.Command("runc", "--root", runcRoot, "delete", "-f", "smoke-sb").Run()
	if out, err := exec.Command("runc", "--root", runcRoot, "start", "smoke-sb").CombinedOutput(); err != nil {
		t.Fatalf("start sandbox: %v %s", err, out)
	}
	pb, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pb)))
	time.Sleep(200 * time.Millisecond)

	co := containerOpts(t)
	co.OOM = so.OOM
	co.RootfsPath = mkroot("ctr")
	co.SandboxPid = pid
	co.HostnamePath = filepath.Join(files, "hostname")
	co.HostsPath = filepath.Join(files, "hosts")
	co.ResolvConfPath = filepath.Join(files, "resolv.conf")
	co.ShmPath = ""
	co.Image = &ocispec.ImageConfig{Entrypoint: []string{"/tiny"}}
	co.Config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
		RunAsUser: int64Value(1000), SupplementalGroups: []int64{1234},
		Seccomp: &runtimeapi.SecurityProfile{}, ReadonlyRootfs: true, NoNewPrivs: true,
		Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"NET_RAW"}},
	}
	co.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"}}
	co.Config.Mounts = []*runtimeapi.Mount{{HostPath: files, ContainerPath: "/data", Readonly: true}}
	co.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 512, OomScoreAdj: 100}
	cs := mustContainer(t, co)
	write(filepath.Dir(co.RootfsPath), cs)
	out, err = exec.Command("runc", "--root", runcRoot, "run", "--bundle", filepath.Dir(co.RootfsPath), "smoke-ctr").CombinedOutput()
	exec.Command("runc", "--root", runcRoot, "delete", "-f", "smoke-ctr").Run()
	t.Logf("container: err=%v\n%s", err, out)
	if err != nil {
		t.Fatal(err)
	}
}
