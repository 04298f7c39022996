package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// loadDaemonSet parses deploy/daemonset.yaml strictly: a misspelt or
// misplaced field (which kubectl would reject) is an error.
func loadDaemonSet(t *testing.T) *appsv1.DaemonSet {
	t.Helper()
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict([]byte(readFile(t, deployPath("daemonset.yaml"))), &ds); err != nil {
		t.Fatalf("daemonset.yaml: %v", err)
	}
	return &ds
}

// The host directories the installer writes or reads, and where.
var wantHostPaths = map[string]string{
	"/usr/local/bin":      "/host/usr/local/bin",
	"/etc/cri-rt":         "/host/etc/cri-rt",
	"/etc/systemd/system": "/host/etc/systemd/system",
	"/run/systemd":        "/host/run/systemd",
	"/run/cri-rt":         "/run/cri-rt",
}

// hostMounts maps each volume mount of c to its hostPath.
func hostMounts(t *testing.T, spec *corev1.PodSpec, c *corev1.Container) map[string]string {
	t.Helper()
	vols := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		vols[spec.Volumes[i].Name] = &spec.Volumes[i]
	}
	out := map[string]string{}
	for _, m := range c.VolumeMounts {
		v := vols[m.Name]
		if v == nil || v.HostPath == nil {
			t.Fatalf("mount %s: no hostPath volume of that name", m.Name)
		}
		out[v.HostPath.Path] = m.MountPath
	}
	return out
}

func TestDaemonSetManifest(t *testing.T) {
	ds := loadDaemonSet(t)
	if ds.APIVersion != "apps/v1" || ds.Kind != "DaemonSet" || ds.Namespace != "kube-system" {
		t.Fatalf("%s %s in %q", ds.APIVersion, ds.Kind, ds.Namespace)
	}
	spec := &ds.Spec.Template.Spec
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the template's labels", k, v)
		}
	}
	if !spec.HostPID {
		t.Error("hostPID must be true: nsenter -t 1 needs the host's PID 1")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := &spec.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("the container must be privileged")
	}
	if got := hostMounts(t, spec, c); !mapsEqual(got, wantHostPaths) {
		t.Errorf("host mounts %v, want %v", got, wantHostPaths)
	}
	for _, v := range spec.Volumes {
		if v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate {
			t.Errorf("volume %s: type %v, want DirectoryOrCreate (a fresh node lacks /etc/cri-rt)", v.Name, v.HostPath.Type)
		}
	}
	script := strings.Join(append(slices.Clone(c.Command), c.Args...), " ")
	for _, want := range []string{"/opt/cri-rt/install.sh --root-dir /host", `--systemctl "nsenter -t 1 -m -- systemctl"`, "sleep"} {
		if !strings.Contains(script, want) {
			t.Errorf("container command lacks %q:\n%s", want, script)
		}
	}
	rp := c.ReadinessProbe
	if rp == nil || rp.Exec == nil {
		t.Fatal("no exec readinessProbe")
	}
	if cmd := strings.Join(rp.Exec.Command, " "); !strings.Contains(cmd, "cri-rt check --socket-only") ||
		!strings.Contains(cmd, "--config /host/etc/cri-rt/config.toml") {
		t.Errorf("readiness probe %q", cmd)
	}
	if rp.TimeoutSeconds < 2 {
		t.Errorf("readiness timeout %ds: the check's own RPC timeout is longer", rp.TimeoutSeconds)
	}
	if len(spec.Tolerations) == 0 || spec.Tolerations[0].Operator != corev1.TolerationOpExists {
		t.Error("the installer must tolerate every taint (cordoned nodes are the ones being converted)")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestKustomization: the kustomization names existing resources and an
// image entry for the DaemonSet's image.
func TestKustomization(t *testing.T) {
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Namespace  string   `json:"namespace"`
		Resources  []string `json:"resources"`
		Images     []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	if err := yaml.UnmarshalStrict([]byte(readFile(t, deployPath("kustomization.yaml"))), &k); err != nil {
		t.Fatal(err)
	}
	if k.Kind != "Kustomization" || !strings.HasPrefix(k.APIVersion, "kustomize.config.k8s.io/") {
		t.Fatalf("%s %s", k.APIVersion, k.Kind)
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(repo, "deploy", r)); err != nil {
			t.Error(err)
		}
	}
	image := loadDaemonSet(t).Spec.Template.Spec.Containers[0].Image
	name, _, _ := strings.Cut(image, ":")
	if len(k.Images) != 1 || k.Images[0].Name != name {
		t.Errorf("kustomization images %+v do not name the DaemonSet's image %s", k.Images, name)
	}
}
