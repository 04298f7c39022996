package oci

import (
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Validate is a light sanity check of a built spec: what would make the
// runtime fail late or do something other than meant. The builders run it
// last, so a failure there is a cri-rt bug, not a bad request; callers that
// modify a spec afterwards (e.g. NRI adjustments) can run it again.
func Validate(s *specs.Spec) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if s.Root == nil || !isAbs(s.Root.Path) {
		bad("root path must be absolute")
	}
	if s.Process == nil {
		bad("no process")
	} else {
		if len(s.Process.Args) == 0 {
			bad("process has no args")
		}
		if !isAbs(s.Process.Cwd) {
			bad("process cwd %q is not absolute", s.Process.Cwd)
		}
	}
	dests := map[string]bool{}
	for _, m := range s.Mounts {
		if !isAbs(m.Destination) {
			bad("mount destination %q is not absolute", m.Destination)
		}
		if dests[m.Destination] {
			bad("mount destination %q appears twice", m.Destination)
		}
		dests[m.Destination] = true
		if m.Type == "bind" && !isAbs(m.Source) {
			bad("bind mount source %q is not absolute", m.Source)
		}
	}
	if s.Linux == nil {
		bad("no linux section")
		return errors.Join(errs...)
	}
	types := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		if types[ns.Type] {
			bad("namespace %s appears twice", ns.Type)
		}
		types[ns.Type] = true
		if ns.Path != "" && !isAbs(ns.Path) {
			bad("namespace %s path %q is not absolute", ns.Type, ns.Path)
		}
	}
	if s.Hostname != "" && !types[specs.UTSNamespace] {
		bad("hostname set without a UTS namespace")
	}
	if types[specs.UserNamespace] && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
		bad("user namespace without ID mappings")
	}
	if !types[specs.UserNamespace] && (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) {
		bad("ID mappings without a user namespace")
	}
	devs := map[string]bool{}
	for _, d := range s.Linux.Devices {
		if !isAbs(d.Path) {
			bad("device path %q is not absolute", d.Path)
		}
		if devs[d.Path] {
			bad("device %q appears twice", d.Path)
		}
		devs[d.Path] = true
	}
	if s.Linux.CgroupsPath == "" {
		bad("no cgroups path")
	}
	for _, p := range slices.Concat(s.Linux.MaskedPaths, s.Linux.ReadonlyPaths) {
		if !isAbs(p) {
			bad("masked or read-only path %q is not absolute", p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid spec: %w", err)
	}
	return nil
}
