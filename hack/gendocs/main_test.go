package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestConfigDocUpToDate fails when docs/config.md is not what gendocs
// prints for the current config struct: a key added, renamed, re-typed,
// re-documented or given another default without regenerating the
// reference.
func TestConfigDocUpToDate(t *testing.T) {
	var want bytes.Buffer
	if err := generate(&want); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(want.String(), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("docs/config.md is stale (first difference at line %d):\n  file:      %q\n  generated: %q\nrun: go run ./hack/gendocs > docs/config.md", i+1, g, w)
			}
		}
	}
}

// TestEveryKeyDocumented checks the reference covers each key of the
// default file, so a key the walker skipped cannot go unnoticed.
func TestEveryKeyDocumented(t *testing.T) {
	var doc bytes.Buffer
	if err := generate(&doc); err != nil {
		t.Fatal(err)
	}
	ref, _, _ := strings.Cut(doc.String(), "## The complete default file")
	for _, key := range []string{"`root`", "`oom_score`", "`image_pull_progress_timeout`", "`max_recv_message_size`",
		"`[runtimes.<handler>]`", "`bin_dirs`", "`idle_timeout`", "`config_path`", "`endpoint`", "`insecure_skip_verify`", "`identitytoken`"} {
		if !strings.Contains(ref, key) {
			t.Errorf("reference lacks %s", key)
		}
	}
}
