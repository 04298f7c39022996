// Package mount describes filesystem mounts as values, so that a snapshot
// can say how to assemble a rootfs without doing it, and mounts them.
package mount

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Mount is one mount(2) call: type, source and options as for mount(8).
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// flagOptions are the options that are mount flags, not filesystem data.
var flagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro":       {false, unix.MS_RDONLY},
	"rw":       {true, unix.MS_RDONLY},
	"bind":     {false, unix.MS_BIND},
	"rbind":    {false, unix.MS_BIND | unix.MS_REC},
	"nosuid":   {false, unix.MS_NOSUID},
	"nodev":    {false, unix.MS_NODEV},
	"noexec":   {false, unix.MS_NOEXEC},
	"relatime": {false, unix.MS_RELATIME},
}

func (m Mount) flagsAndData() (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range m.Options {
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

// MountTo mounts m at target. A read-only bind needs a second remount,
// which the kernel requires to apply MS_RDONLY to a bind mount.
func (m Mount) MountTo(target string) error {
	flags, data := m.flagsAndData()
	if len(data) > os.Getpagesize()-1 {
		return fmt.Errorf("mount options of %s are %d bytes, more than a page", target, len(data))
	}
	if err := unix.Mount(m.Source, target, m.Type, flags, data); err != nil {
		return fmt.Errorf("mount %s %s at %s (%s): %w", m.Type, m.Source, target, strings.Join(m.Options, ","), err)
	}
	if flags&unix.MS_BIND != 0 && flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("remount %s read-only: %w", target, err)
		}
	}
	return nil
}

// All mounts ms at target in order (each on top of the previous one).
func All(ms []Mount, target string) error {
	for i, m := range ms {
		if err := m.MountTo(target); err != nil {
			for j := 0; j < i; j++ {
				_ = Unmount(target)
			}
			return err
		}
	}
	return nil
}

// Unmount unmounts target, retrying briefly on EBUSY (a process may still
// be exiting), and succeeds when nothing is mounted there.
func Unmount(target string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = unix.Unmount(target, 0)
		if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Last resort: detach, so the mount point can go away.
	if derr := unix.Unmount(target, unix.MNT_DETACH); derr == nil {
		return nil
	}
	return fmt.Errorf("unmount %s: %w", target, err)
}

// UnmountAll unmounts every mount stacked at target.
func UnmountAll(target string) error {
	for i := 0; i < 16; i++ {
		err := unix.Unmount(target, 0)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return Unmount(target)
		}
	}
	return nil
}
