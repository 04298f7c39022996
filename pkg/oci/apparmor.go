package oci

import (
	"os"
	"strings"
)

// AppArmorEnabled reports whether the kernel enforces AppArmor, as kubelet
// and critest decide it; the value for SandboxOptions and ContainerOptions.
func AppArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(b) > 0 && b[0] == 'Y'
}

// apparmorProfileLoaded reports whether the kernel has a profile of that
// name. A container must not be created with a profile that is not loaded:
// the runtime would only fail at start, after CreateContainer succeeded
// (critest expects the create to fail).
var apparmorProfileLoaded = func(name string) (bool, error) {
	b, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	if err != nil {
		return false, err
	}
	// Lines are "<name> (<mode>)"; names may contain spaces.
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.LastIndex(line, " ("); i >= 0 && line[:i] == name {
			return true, nil
		}
	}
	return false, nil
}
