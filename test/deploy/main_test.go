// Package deploy tests deploy/: install.sh into scratch roots (never the
// host's own directories), the systemd unit, the DaemonSet manifest, the
// installer image run as a pod through cri-rt itself, and `cri-rt check`
// against a daemon the test starts. Like the integration tests it needs
// root and the packages of `make deps`.
package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cri-rt/cri-rt/test/framework"
)

func TestMain(m *testing.M) {
	// Pods started by the image test leave orphaned monitors under this
	// process, as in test/integration.
	framework.InstallReaper()
	code := m.Run()
	framework.Cleanup()
	os.Exit(code)
}

// repo is the repository root, relative to this package's directory.
const repo = "../.."

func deployPath(name string) string { return filepath.Join(repo, "deploy", name) }

// binDir returns the directory holding freshly built cri-rt and
// cri-rt-monitor (built by the framework with go build, once per process).
func binDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Dir(framework.Binary(t))
	for _, b := range []string{"cri-rt", "cri-rt-monitor"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("built binaries: %v", err)
		}
	}
	return dir
}

// install runs deploy/install.sh with /bin/sh (dash on Debian: the script
// must stay POSIX) and returns its output; it fails the test on error.
func install(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runInstall(args...)
	if err != nil {
		t.Fatalf("install.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func runInstall(args ...string) (string, error) {
	cmd := exec.Command("/bin/sh", append([]string{deployPath("install.sh")}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// entry is what a tree snapshot records per path: anything a rerun could
// change (content, mode, owner-visible type, mtime).
type entry struct {
	mode  fs.FileMode
	mtime int64
	size  int64
	sum   string
	link  string
}

func (e entry) String() string {
	return fmt.Sprintf("mode=%v mtime=%d size=%d sha256=%.12s link=%q", e.mode, e.mtime, e.size, e.sum, e.link)
}

// snapshot walks root and records every path under it.
func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	snap := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{mode: fi.Mode(), mtime: fi.ModTime().UnixNano(), size: fi.Size()}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			e.sum = hex.EncodeToString(sum[:])
		case fi.Mode()&fs.ModeSymlink != 0:
			e.link, _ = os.Readlink(p)
		}
		rel, _ := filepath.Rel(root, p)
		snap[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// diffSnapshots lists the paths that differ between two snapshots.
func diffSnapshots(a, b map[string]entry) []string {
	var out []string
	for p, ea := range a {
		eb, ok := b[p]
		switch {
		case !ok:
			out = append(out, "removed "+p)
		case ea != eb:
			out = append(out, fmt.Sprintf("changed %s: %v -> %v", p, ea, eb))
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, "added "+p)
		}
	}
	sort.Strings(out)
	return out
}

// files lists the non-directories under root, relative and sorted.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for p, e := range snapshot(t, root) {
		if !e.mode.IsDir() {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	if readFile(t, a) != readFile(t, b) {
		t.Errorf("%s differs from %s", b, a)
	}
}
