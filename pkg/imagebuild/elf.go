package imagebuild

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path"
	"sort"
)

// DefaultLibDirs is where SharedLibraries looks for libraries on a Debian
// amd64 host, in the dynamic loader's default search order.
var DefaultLibDirs = []string{
	"/lib/x86_64-linux-gnu",
	"/usr/lib/x86_64-linux-gnu",
	"/lib64",
	"/usr/lib64",
	"/lib",
	"/usr/lib",
}

// SharedLibraries returns file entries for the ELF interpreter and every
// shared library the given host binaries need (DT_NEEDED, transitively),
// copied from the host. Each library lands in the image under the search
// directory it was found in, which is on the loader's default path, so no
// ld.so.cache is needed in the image. Static binaries contribute nothing.
// libDirs nil means DefaultLibDirs.
func SharedLibraries(libDirs []string, binaries ...string) ([]Entry, error) {
	if libDirs == nil {
		libDirs = DefaultLibDirs
	}
	found := map[string]string{} // image path -> host path
	interps := map[string]bool{} // sonames the interpreter provides itself
	seen := map[string]bool{}
	var queue []string
	for _, b := range binaries {
		interp, needed, err := elfDeps(b)
		if err != nil {
			return nil, err
		}
		if interp != "" {
			found[interp] = interp
			interps[path.Base(interp)] = true
		}
		queue = append(queue, needed...)
	}
	for len(queue) > 0 {
		so := queue[0]
		queue = queue[1:]
		if seen[so] || interps[so] {
			continue
		}
		seen[so] = true
		lib, err := findLib(libDirs, so)
		if err != nil {
			return nil, err
		}
		found[lib] = lib
		_, needed, err := elfDeps(lib)
		if err != nil {
			return nil, err
		}
		queue = append(queue, needed...)
	}
	paths := make([]string, 0, len(found))
	for p := range found {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	entries := make([]Entry, 0, len(paths))
	for _, p := range paths {
		entries = append(entries, HostFile(p, 0o755, found[p]))
	}
	return entries, nil
}

// elfDeps returns the interpreter (empty for static binaries) and the
// DT_NEEDED entries of an ELF file.
func elfDeps(file string) (interp string, needed []string, err error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", nil, fmt.Errorf("imagebuild: %s: %w", file, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", nil, fmt.Errorf("imagebuild: %s: reading PT_INTERP: %w", file, err)
		}
		interp = string(bytes.TrimRight(b, "\x00"))
	}
	needed, err = f.ImportedLibraries()
	if err != nil {
		return "", nil, fmt.Errorf("imagebuild: %s: %w", file, err)
	}
	return interp, needed, nil
}

// findLib returns the first dirs/soname that is (or links to) a regular
// file. The same path is used in the image, so symlinks such as a merged
// /lib -> usr/lib on the host become plain directories there.
func findLib(dirs []string, soname string) (string, error) {
	for _, d := range dirs {
		p := path.Join(d, soname)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("imagebuild: shared library %s not found in %v", soname, dirs)
}
