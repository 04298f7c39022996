package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cri-rt/cri-rt/pkg/imagebuild"
)

// Busybox is the busybox binary every image is based on.
//
// Use Debian's dynamically linked busybox package, not busybox-static: the
// static build prefers its built-in applets over $PATH, so `sh -c ls` keeps
// working when /bin/ls is masked and critest's MaskedPaths spec (which
// expects "/bin/sh: ls: Permission denied") fails. The dynamic build execs
// /bin/ls like the official busybox image does. Its glibc comes from the
// build host.
type Busybox struct {
	// Binary is the host path of the busybox executable.
	Binary string
	// Applets are the names to link to busybox in /bin; nil means ask the
	// binary (`busybox --list`).
	Applets []string
}

// BusyboxFromDeb extracts bin/busybox from a Debian package into dir using
// dpkg-deb (the package's data member is xz-compressed, which the Go
// standard library cannot read).
func BusyboxFromDeb(ctx context.Context, deb, dir string) (*Busybox, error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running dpkg-deb: %w", err)
	}
	dst := filepath.Join(dir, "busybox")
	found, copyErr := extractMember(out, "./bin/busybox", dst)
	_, _ = io.Copy(io.Discard, out) // let dpkg-deb finish writing
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", deb, err, stderr.String())
	}
	if copyErr != nil {
		return nil, copyErr
	}
	if !found {
		return nil, fmt.Errorf("%s has no bin/busybox", deb)
	}
	return &Busybox{Binary: dst}, nil
}

func extractMember(r io.Reader, member, dst string) (bool, error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if h.Name != member || h.Typeflag != tar.TypeReg {
			continue
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return false, err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return false, err
		}
		return true, f.Close()
	}
}

// DownloadBusyboxDeb fetches Debian's busybox package with
// `apt-get download` into dir (reusing a .deb already there) and returns
// its path.
func DownloadBusyboxDeb(ctx context.Context, dir string) (string, error) {
	if debs, _ := filepath.Glob(filepath.Join(dir, "busybox_*.deb")); len(debs) > 0 {
		sort.Strings(debs)
		return debs[len(debs)-1], nil
	}
	cmd := exec.CommandContext(ctx, "apt-get", "download", "busybox")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download busybox: %w: %s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "busybox_*.deb"))
	if len(debs) == 0 {
		return "", fmt.Errorf("apt-get download busybox left no .deb in %s", dir)
	}
	return debs[0], nil
}

// applets returns the applet names, sorted and without "busybox" itself.
func (b *Busybox) applets(ctx context.Context) ([]string, error) {
	names := b.Applets
	if names == nil {
		out, err := exec.CommandContext(ctx, b.Binary, "--list").Output()
		if err != nil {
			return nil, fmt.Errorf("%s --list: %w", b.Binary, err)
		}
		names = strings.Fields(string(out))
	}
	var res []string
	for _, n := range names {
		if n != "busybox" && !strings.Contains(n, "/") {
			res = append(res, n)
		}
	}
	sort.Strings(res)
	return res, nil
}

// baseLayer is the root filesystem shared by every busybox-based image:
// the FHS skeleton, busybox with one hard link per applet in /bin (hard
// links, not symlinks: masking /bin/ls with a bind mount must not mask
// /bin/busybox and with it /bin/sh), the helper programs Debian's busybox
// lacks, busybox's shared libraries and the account databases.
func baseLayer(ctx context.Context, bb *Busybox, progs map[string]string) (*imagebuild.Layer, error) {
	applets, err := bb.applets(ctx)
	if err != nil {
		return nil, err
	}
	es := []imagebuild.Entry{
		imagebuild.Dir("/bin", 0o755),
		imagebuild.Dir("/dev", 0o755),
		imagebuild.Dir("/etc", 0o755),
		imagebuild.Dir("/home", 0o755),
		imagebuild.Dir("/proc", 0o555),
		imagebuild.Dir("/root", 0o700),
		imagebuild.Dir("/sys", 0o555),
		imagebuild.Dir("/tmp", 0o777|os.ModeSticky),
		imagebuild.Dir("/usr/sbin", 0o755),
		imagebuild.Dir("/var/spool/mail", 0o755),
		imagebuild.Dir("/var/www", 0o755),
		imagebuild.HostFile("/bin/busybox", 0o755, bb.Binary),
		imagebuild.File("/etc/nsswitch.conf", 0o644, []byte(nsswitch)),
	}
	es = append(es, etcEntries(basePasswd, baseGroup)...)
	have := map[string]bool{}
	for _, a := range applets {
		have[a] = true
		es = append(es, imagebuild.Hardlink("/bin/"+a, "/bin/busybox"))
	}
	// Applets critest calls that Debian's busybox is built without.
	for _, p := range []string{"pgrep", "ipcs"} {
		if !have[p] {
			es = append(es, imagebuild.HostFile("/bin/"+p, 0o755, progs[p]))
		}
	}
	libs, err := imagebuild.SharedLibraries(nil, bb.Binary)
	if err != nil {
		return nil, err
	}
	es = append(es, libs...)
	return &imagebuild.Layer{Name: "busybox rootfs", Entries: es}, nil
}
