package oci

import (
	"path"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
)

// newGenerator starts a spec from runtime-tools' Linux template, as CRI-O
// does, minus the parts every cri-rt spec sets itself: the template's
// hostname, env, rlimits (containers inherit the runtime's, as with
// containerd), capabilities, mounts, namespaces and seccomp profile.
func newGenerator(rootfs string, readonly bool) (*generate.Generator, error) {
	if !isAbs(rootfs) {
		return nil, invalidArg("RootfsPath", "%q is not an absolute path", rootfs)
	}
	g, err := generate.New("linux")
	if err != nil {
		return nil, err
	}
	g.HostSpecific = false
	g.RemoveHostname()
	g.ClearProcessEnv()
	g.Config.Process.Rlimits = nil
	g.Config.Process.Capabilities = &specs.LinuxCapabilities{}
	g.Config.Mounts = nil
	g.ClearLinuxNamespaces()
	g.Config.Linux.Seccomp = nil
	g.SetRootPath(path.Clean(rootfs))
	g.SetRootReadonly(readonly)
	return &g, nil
}

func setUser(g *generate.Generator, u *User) {
	g.SetProcessUID(u.UID)
	g.SetProcessGID(u.GID)
	g.ClearProcessAdditionalGids()
	g.Config.Process.User.AdditionalGids = append([]uint32(nil), u.AdditionalGids...)
}
