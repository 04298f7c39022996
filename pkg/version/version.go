// Package version reports the build's version, set at link time.
package version

import "runtime/debug"

// Version is set with -ldflags "-X github.com/cri-rt/cri-rt/pkg/version.Version=v0.1.0".
var Version = ""

// Get returns the build version: the link-time value, else the module
// version or VCS revision recorded by the Go toolchain, else "dev".
func Get() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}
