package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func i64(v int64) *int64 { return &v }

// defaultDeviceRules allow the devices every container has: runc creates
// them, but the rules are spelt out so any OCI runtime gets the same cgroup.
// A function, not a variable: the rules hold pointers, and each spec must
// own its copy so that a later adjustment (e.g. by NRI) of one spec cannot
// leak into others.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	char := func(major int64, minor *int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(major), Minor: minor, Access: "rwm"}
	}
	return []specs.LinuxDeviceCgroup{
		char(1, i64(3)), // null
		char(1, i64(5)), // zero
		char(1, i64(7)), // full
		char(1, i64(8)), // random
		char(1, i64(9)), // urandom
		char(5, i64(0)), // tty
		char(5, i64(2)), // ptmx
		char(136, nil),  // pts/*
	}
}

// setDevices starts from "deny everything", allows the default devices,
// then adds the request's devices (or, privileged, every host device).
func setDevices(g *generate.Generator, devices []*runtimeapi.Device, privileged bool) error {
	g.ClearLinuxDevices()
	g.Config.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	g.Config.Linux.Resources.Devices = append(g.Config.Linux.Resources.Devices, defaultDeviceRules()...)

	if privileged {
		host, err := hostDevices(hostDevRoot)
		if err != nil {
			return fmt.Errorf("list host devices: %w", err)
		}
		for _, d := range host {
			g.AddDevice(d)
		}
		g.Config.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}

	for i, d := range devices {
		field := fmt.Sprintf("devices[%d]", i)
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return invalidArg(field+".permissions", "%q is not a combination of r, w and m", d.GetPermissions())
		}
		if !isAbs(d.GetContainerPath()) {
			return invalidArg(field+".container_path", "%q is not an absolute path", d.GetContainerPath())
		}
		if !isAbs(d.GetHostPath()) {
			return invalidArg(field+".host_path", "%q is not an absolute path", d.GetHostPath())
		}
		devs, err := devicesAt(d.GetHostPath(), path.Clean(d.GetContainerPath()))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDevice) {
				return invalidArg(field+".host_path", "%v", err)
			}
			return err
		}
		for _, dev := range devs {
			g.AddDevice(dev)
			if !privileged {
				g.AddLinuxResourcesDevice(true, dev.Type, i64(dev.Major), i64(dev.Minor), perms)
			}
		}
	}
	return nil
}

var errNotDevice = errors.New("not a device node")

// devicesAt returns the device at hostPath, following symlinks (udev's
// stable names such as /dev/disk/by-id/... are links), or every device
// under it when it is a directory, placed under containerPath.
func devicesAt(hostPath, containerPath string) ([]specs.LinuxDevice, error) {
	resolved, err := filepath.EvalSymlinks(hostPath)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		dev, err := deviceFromPath(resolved)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", hostPath, err)
		}
		dev.Path = containerPath
		return []specs.LinuxDevice{*dev}, nil
	}
	devs, err := hostDevices(resolved)
	if err != nil {
		return nil, err
	}
	for i := range devs {
		rel, _ := filepath.Rel(resolved, devs[i].Path)
		devs[i].Path = path.Join(containerPath, rel)
	}
	return devs, nil
}

// hostDevices lists the device nodes under dir as containerd's
// HostDevices does: without following symlinks (each device once), and
// skipping what the container gets its own of (pts, shm, mqueue, fd,
// console) plus the private directories of LXC/LXD and udev.
func hostDevices(dir string) ([]specs.LinuxDevice, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				continue
			}
			sub, err := hostDevices(p)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		if e.Name() == "console" {
			continue
		}
		d, err := deviceFromPath(p)
		if err != nil {
			if errors.Is(err, errNotDevice) || errors.Is(err, fs.ErrNotExist) {
				continue // symlinks, regular files, nodes removed meanwhile
			}
			return nil, err
		}
		if d.Type == "p" {
			continue
		}
		out = append(out, *d)
	}
	return out, nil
}

// deviceFromPath describes the node at p (not following a final symlink).
func deviceFromPath(p string) (*specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		typ = "b"
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFIFO:
		typ = "p"
	default:
		return nil, fmt.Errorf("%s: %w", p, errNotDevice)
	}
	mode := fs.FileMode(st.Mode &^ unix.S_IFMT)
	uid, gid := st.Uid, st.Gid
	return &specs.LinuxDevice{
		Path:     p,
		Type:     typ,
		Major:    int64(unix.Major(uint64(st.Rdev))),
		Minor:    int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, nil
}
