package oci

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"syscall"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// User is the identity a container's process runs with. ContainerStatus
// reports it as the effective user (uid, gid, supplemental groups).
type User struct {
	UID uint32
	GID uint32
	// AdditionalGids are the supplementary groups, sorted, without
	// duplicates, and including GID: that is what `id -G` shows and what
	// the CRI's ContainerUser.supplemental_groups expects.
	AdditionalGids []uint32
	// Name is the user's /etc/passwd name, "" for a numeric user without
	// an entry.
	Name string
}

// maxUserFile bounds what is read of an image's /etc/passwd or /etc/group:
// the image is untrusted and the daemon must not be made to read gigabytes.
const maxUserFile = 4 << 20

// userRequest is the part of a container or sandbox security context that
// decides the user.
type userRequest struct {
	field        string // CRI path of the security context, for errors
	username     string
	uid, gid     *runtimeapi.Int64Value
	supplemental []int64
	policy       runtimeapi.SupplementalGroupsPolicy
}

// ResolveUser works out the user a container runs as, the way kubelet and
// docker define it: run_as_username, else run_as_user, else the image's USER
// ("uid", "name", "uid:gid", "name:group", ...); run_as_group replaces the
// group. Names are looked up in the rootfs' /etc/passwd and /etc/group,
// resolved inside rootfs so that an image's symlinks cannot make cri-rt read
// host files. A numeric ID needs no entry; a name that has none is an invalid
// request. Supplementary groups are the primary group and sc's
// supplemental_groups, plus (policy Merge, the default) the groups
// /etc/group lists the user in; policy Strict leaves those out.
func ResolveUser(rootfs string, sc *runtimeapi.LinuxContainerSecurityContext, image *ocispec.ImageConfig) (*User, error) {
	return resolveUser(rootfs, userRequest{
		field:        "linux.security_context",
		username:     sc.GetRunAsUsername(),
		uid:          sc.GetRunAsUser(),
		gid:          sc.GetRunAsGroup(),
		supplemental: sc.GetSupplementalGroups(),
		policy:       sc.GetSupplementalGroupsPolicy(),
	}, image)
}

func resolveUser(rootfs string, req userRequest, image *ocispec.ImageConfig) (*User, error) {
	f := req.field
	if req.gid != nil && req.uid == nil && req.username == "" {
		// A group alone would silently run as root: kubelet and critest
		// expect a refusal.
		return nil, invalidArg(f+".run_as_group", "set without run_as_user or run_as_username")
	}
	if err := checkID(f+".run_as_user", req.uid); err != nil {
		return nil, err
	}
	if err := checkID(f+".run_as_group", req.gid); err != nil {
		return nil, err
	}
	for i, g := range req.supplemental {
		if g < 0 || g > math.MaxInt32 {
			return nil, invalidArg(fmt.Sprintf("%s.supplemental_groups[%d]", f, i), "%d is out of range", g)
		}
	}
	switch req.policy {
	case runtimeapi.SupplementalGroupsPolicy_Merge, runtimeapi.SupplementalGroupsPolicy_Strict:
	default:
		return nil, invalidArg(f+".supplemental_groups_policy", "unknown policy %d", req.policy)
	}

	spec, field := "", ""
	switch {
	case req.username != "":
		spec, field = req.username, f+".run_as_username"
		if strings.Contains(spec, ":") {
			return nil, invalidArg(field, "%q contains ':'", spec)
		}
	case req.uid != nil:
		spec, field = strconv.FormatInt(req.uid.GetValue(), 10), f+".run_as_user"
	case image != nil && image.User != "":
		spec, field = image.User, "image config User"
	default:
		spec, field = "0", "user"
	}
	if req.gid != nil {
		name, _, _ := strings.Cut(spec, ":")
		spec = name + ":" + strconv.FormatInt(req.gid.GetValue(), 10)
	}

	passwd, err := readRootfsFile(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := readRootfsFile(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	eu, err := user.GetExecUser(spec, nil, reader(passwd), reader(group))
	if err != nil {
		return nil, invalidArg(field, "user %q: %v", spec, err)
	}

	name := passwdName(spec, eu.Uid, passwd)
	gids := []uint32{uint32(eu.Gid)}
	if req.policy == runtimeapi.SupplementalGroupsPolicy_Merge && name != "" {
		// Membership is looked up by name even when the group was given
		// explicitly, as containerd does: the user still belongs there.
		groups, err := user.ParseGroupFilter(bytes.NewReader(group), func(g user.Group) bool {
			return slices.Contains(g.List, name)
		})
		if err != nil {
			return nil, fmt.Errorf("parse /etc/group of %s: %w", rootfs, err)
		}
		for _, g := range groups {
			gids = append(gids, uint32(g.Gid))
		}
	}
	for _, g := range req.supplemental {
		gids = append(gids, uint32(g))
	}
	slices.Sort(gids)
	return &User{UID: uint32(eu.Uid), GID: uint32(eu.Gid), AdditionalGids: slices.Compact(gids), Name: name}, nil
}

func checkID(field string, v *runtimeapi.Int64Value) error {
	if v != nil && (v.GetValue() < 0 || v.GetValue() > math.MaxInt32) {
		return invalidArg(field, "%d is out of range 0..%d", v.GetValue(), math.MaxInt32)
	}
	return nil
}

// passwdName finds the name the user has in /etc/passwd: the one given, or
// the first entry of the uid.
func passwdName(spec string, uid int, passwd []byte) string {
	name, _, _ := strings.Cut(spec, ":")
	if _, err := strconv.Atoi(name); err != nil && name != "" {
		return name
	}
	users, err := user.ParsePasswdFilter(bytes.NewReader(passwd), func(u user.User) bool { return u.Uid == uid })
	if err != nil || len(users) == 0 {
		return ""
	}
	return users[0].Name
}

// reader turns a missing file into the nil reader moby/sys/user expects.
func reader(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}

// readRootfsFile reads p inside rootfs as if rootfs were "/": symlinks and
// ".." are resolved within it (openat2 RESOLVE_IN_ROOT where the kernel has
// it), so a hostile image cannot point cri-rt at the host's files. A missing
// file gives nil: images without /etc/passwd are common.
func readRootfsFile(rootfs, p string) ([]byte, error) {
	if !isAbs(rootfs) {
		return nil, invalidArg("RootfsPath", "%q is not an absolute path", rootfs)
	}
	h, err := pathrs.OpenInRoot(rootfs, p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil
		}
		return nil, fmt.Errorf("open %s in %s: %w", p, rootfs, err)
	}
	defer h.Close()
	// Only regular files: a FIFO or device planted at /etc/passwd would
	// block or feed the daemon forever.
	fi, err := h.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s in %s: %w", p, rootfs, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in %s is not a regular file", p, rootfs)
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", p, rootfs, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxUserFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", p, rootfs, err)
	}
	if len(b) > maxUserFile {
		return nil, fmt.Errorf("%s in %s is larger than %d bytes", p, rootfs, maxUserFile)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}
