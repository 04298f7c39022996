package oci

import (
	"fmt"
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultPath is the PATH of a container whose image sets none, as
// containerd and docker use.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ProcessArgs combines a request's command and args with the image's
// Entrypoint and Cmd as kubelet documents it (docker semantics): a command
// replaces the entrypoint and drops the image's cmd; args replace the cmd.
// An image entrypoint of [""] means "no entrypoint" (docker writes it for
// ENTRYPOINT []).
func ProcessArgs(cfg *runtimeapi.ContainerConfig, image *ocispec.ImageConfig) ([]string, error) {
	if image == nil {
		image = &ocispec.ImageConfig{}
	}
	command, args := cfg.GetCommand(), cfg.GetArgs()
	if len(command) == 0 {
		if len(args) == 0 {
			args = image.Cmd
		}
		if !(len(image.Entrypoint) == 1 && image.Entrypoint[0] == "") {
			command = image.Entrypoint
		}
	}
	if len(command) == 0 && len(args) == 0 {
		return nil, invalidArg("command", "no command specified and the image has no entrypoint or cmd")
	}
	// Copy: the result must not alias the request or the image config.
	return append(append([]string{}, command...), args...), nil
}

// setEnv builds the environment as containerd does: PATH default, HOSTNAME,
// TERM for a terminal, then the image's, then the request's; a later entry
// replaces an earlier one with the same name in place.
func setEnv(g *generate.Generator, hostname string, tty bool, image *ocispec.ImageConfig, envs []*runtimeapi.KeyValue) error {
	g.ClearProcessEnv()
	g.AddProcessEnv("PATH", defaultPath)
	if hostname != "" {
		g.AddProcessEnv("HOSTNAME", hostname)
	}
	if tty {
		g.AddProcessEnv("TERM", "xterm")
	}
	if image != nil {
		for _, e := range image.Env {
			if e == "" || strings.HasPrefix(e, "=") {
				continue // broken image entries: nothing to set
			}
			g.AddMultipleProcessEnv([]string{e})
		}
	}
	for i, kv := range envs {
		if kv.GetKey() == "" || strings.Contains(kv.GetKey(), "=") {
			return invalidArg(fmt.Sprintf("envs[%d].key", i), "%q is not a valid variable name", kv.GetKey())
		}
		g.AddProcessEnv(kv.GetKey(), string(kv.GetValue()))
	}
	return nil
}

// workingDir is the request's, else the image's, else "/". The runtime needs
// an absolute path; a relative image WORKDIR is taken from "/" as docker does.
func workingDir(cfg *runtimeapi.ContainerConfig, image *ocispec.ImageConfig) (string, error) {
	if wd := cfg.GetWorkingDir(); wd != "" {
		if !isAbs(wd) {
			return "", invalidArg("working_dir", "%q is not an absolute path", wd)
		}
		return path.Clean(wd), nil
	}
	if image != nil && image.WorkingDir != "" {
		return path.Join("/", image.WorkingDir), nil
	}
	return "/", nil
}
