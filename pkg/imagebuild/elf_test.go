package imagebuild

import (
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
)

func TestSharedLibrariesOfHostBinary(t *testing.T) {
	const bin = "/bin/ls"
	f, err := elf.Open(bin)
	if err != nil {
		t.Skipf("no ELF %s on this host: %v", bin, err)
	}
	libs, _ := f.ImportedLibraries()
	f.Close()
	if len(libs) == 0 {
		t.Skipf("%s is static", bin)
	}
	entries, err := SharedLibraries(nil, bin, bin) // duplicates collapse
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range entries {
		if got[e.Path] {
			t.Errorf("duplicate %s", e.Path)
		}
		got[e.Path] = true
		if e.Type != TypeFile || e.Source == "" {
			t.Errorf("%s: not a host file entry", e.Path)
		}
	}
	var libc, interp bool
	for p := range got {
		switch filepath.Base(p) {
		case "libc.so.6":
			libc = true
		case "ld-linux-x86-64.so.2":
			interp = true
		}
	}
	if !libc || !interp {
		t.Errorf("libc/interpreter missing from %v", got)
	}
	// The result must be buildable, i.e. every source readable.
	if _, err := (&Layer{Entries: entries}).Build(); err != nil {
		t.Fatal(err)
	}
}

func TestSharedLibrariesErrors(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := SharedLibraries(nil, notELF); err == nil {
		t.Error("non-ELF input must fail")
	}
	if _, err := findLib([]string{t.TempDir()}, "libnothere.so.1"); err == nil {
		t.Error("missing library must fail")
	}
}
