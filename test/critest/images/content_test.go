package images

import (
	"archive/tar"
	"context"
	"debug/elf"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// checkImages verifies, on images pulled back from a registry, what
// critest relies on (see IMAGES.md).
func checkImages(t *testing.T, images map[string]v1.Image) {
	t.Helper()
	for _, s := range Catalogue() {
		img := images[s.Name]
		if img == nil {
			t.Errorf("%s was not pushed", s.Name)
			continue
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != "amd64" {
			t.Errorf("%s: platform %s/%s", s.Name, cf.OS, cf.Architecture)
		}
		fs := filesystem(t, img)
		if s.Busybox {
			checkBusyboxBase(t, s.Name, fs)
		}
		checkSpecific(t, s.Name, cf.Config, fs)
	}
}

func checkBusyboxBase(t *testing.T, name string, fs map[string]fileInfo) {
	t.Helper()
	if f := fs["bin/sh"]; f.typ != tar.TypeLink || f.link != "bin/busybox" {
		t.Errorf("%s: /bin/sh must be a hard link to busybox (masking /bin/ls must not break sh): %+v", name, f)
	}
	if f := fs["tmp"]; f.typ != tar.TypeDir || f.mode != 0o1777 {
		t.Errorf("%s: /tmp: %+v", name, f)
	}
	for _, p := range []string{"bin/pgrep", "bin/ipcs"} {
		if f := fs[p]; f.typ != tar.TypeReg && f.typ != tar.TypeLink {
			t.Errorf("%s: %s missing", name, p)
		}
	}
	passwd := fs["etc/passwd"].body
	for _, u := range []string{"root:x:0:0:", "www-data:x:33:33:", "nobody:x:65534:65534:"} {
		if !strings.Contains(passwd, u) {
			t.Errorf("%s: /etc/passwd lacks %q", name, u)
		}
	}
}

func checkSpecific(t *testing.T, name string, c v1.Config, fs map[string]fileInfo) {
	t.Helper()
	wantUser := map[string]string{
		"test-image-user-uid":            "1002",
		"test-image-user-username":       "www-data",
		"test-image-user-uid-group":      "1003:1004",
		"test-image-user-username-group": "www-data:1004",
		"test-image-predefined-group":    "1000",
		"pause":                          "65535:65535",
		"sandbox-pause":                  "65535:65535",
	}[name]
	if c.User != wantUser {
		t.Errorf("%s: User %q, want %q", name, c.User, wantUser)
	}
	marker := map[string]string{
		"test-image-latest": "test-image-latest", "test-image-tag-test": "test", "test-image-tag-all": "all",
		"test-image-digest": "test-image-digest", "test-image-1": "test-image-1", "test-image-2": "test-image-2",
		"test-image-3": "test-image-3", "test-image-tags": "same-image",
	}[name]
	if marker != "" {
		if f, ok := fs[marker]; !ok || f.typ != tar.TypeReg || f.body != "" {
			t.Errorf("%s: marker file /%s: %+v", name, marker, f)
		}
	}
	switch name {
	case "pause", "sandbox-pause":
		if !reflect.DeepEqual(c.Entrypoint, []string{"/pause"}) || fs["pause"].mode != 0o755 || len(fs) != 1 {
			t.Errorf("pause: entrypoint %v, files %v", c.Entrypoint, keys(fs))
		}
	case "e2e-nonewprivs":
		if f := fs["usr/local/bin/nnp"]; f.mode != 0o6755 || f.uid != 0 {
			t.Errorf("nnp must be set-uid root: %+v", f)
		}
		if !reflect.DeepEqual(c.Cmd, []string{"nnp"}) {
			t.Errorf("nonewprivs Cmd %v", c.Cmd)
		}
	case "e2e-nginx", "hostnet-nginx":
		port := map[string]string{"e2e-nginx": ":80", "hostnet-nginx": ":12003"}[name]
		if !contains(c.Env, "WEBSERVER_ADDR="+port) || !contains(c.Env, "WEBSERVER_PIDFILE=/var/run/nginx.pid") ||
			fs["usr/sbin/nginx"].typ != tar.TypeReg || fs["var/run"].typ != tar.TypeDir ||
			!strings.Contains(fs["usr/share/nginx/html/index.html"].body, "nginx") {
			t.Errorf("%s: env %v", name, c.Env)
		}
		if _, ok := c.ExposedPorts["80/tcp"]; !ok || c.Cmd[0] != "nginx" {
			t.Errorf("%s: ports %v cmd %v", name, c.ExposedPorts, c.Cmd)
		}
	case "e2e-httpd":
		if !contains(c.Env, "WEBSERVER_NAME=httpd") || fs["usr/local/apache2/bin/httpd"].typ != tar.TypeReg ||
			!strings.Contains(fs["usr/local/bin/httpd-foreground"].body, "exec httpd") {
			t.Errorf("httpd: env %v", c.Env)
		}
	case "test-image-predefined-group":
		if !strings.Contains(fs["etc/group"].body, "\ngroup-defined-in-image:x:50000:default-user\n") ||
			!strings.Contains(fs["etc/passwd"].body, "\ndefault-user:x:1000:1000:") {
			t.Errorf("predefined group: /etc/group %q", fs["etc/group"].body)
		}
		if f := fs["home/default-user"]; f.uid != 1000 || f.gid != 1000 {
			t.Errorf("home of default-user: %+v", f)
		}
	}
	if name != "pause" && name != "sandbox-pause" && (len(c.Env) == 0 || !strings.HasPrefix(c.Env[0], "PATH=")) {
		t.Errorf("%s: no PATH in %v", name, c.Env)
	}
}

func keys(m map[string]fileInfo) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRealBusyboxBase checks the rootfs built from Debian's busybox
// package; it needs CRITEST_BUSYBOX_DEB (e.g. from `apt-get download
// busybox`).
func TestRealBusyboxBase(t *testing.T) {
	bb, real := testBusybox(t)
	if !real {
		t.Skip("set CRITEST_BUSYBOX_DEB to Debian's busybox .deb to check the real rootfs")
	}
	f, err := elf.Open(bb.Binary)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	l, err := baseLayer(context.Background(), bb, testProgs)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	for _, e := range l.Entries {
		paths[strings.TrimPrefix(e.Path, "/")] = true
	}
	// Applets critest runs, plus the loader and libc of the dynamic build.
	for _, p := range []string{"bin/sh", "bin/ls", "bin/top", "bin/id", "bin/ping", "bin/brctl", "bin/netstat",
		"bin/pidof", "bin/hostname", "bin/touch", "bin/dd", "bin/nc", "bin/wget", "bin/httpd",
		"bin/pgrep", "bin/ipcs", "lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libc.so.6"} {
		if !paths[p] {
			t.Errorf("base layer lacks /%s", p)
		}
	}
	if _, err := l.Build(); err != nil {
		t.Fatal(err)
	}
}
