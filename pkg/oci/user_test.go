package oci

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestResolveUser(t *testing.T) {
	rootfs := fakeRootfs(t, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})
	for _, tc := range []struct {
		name    string
		sc      *runtimeapi.LinuxContainerSecurityContext
		image   string
		want    User
		wantErr string // field named by the InvalidArgument
	}{
		{name: "no user is root", want: User{UID: 0, GID: 0, AdditionalGids: []uint32{0}, Name: "root"}},
		{name: "image uid with entry", image: "1000", want: User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100, 1000, 50000}, Name: "default-user"}},
		{name: "image name", image: "other", want: User{UID: 1001, GID: 1002, AdditionalGids: []uint32{100, 1002}, Name: "other"}},
		{name: "image uid:gid", image: "1000:1002", want: User{UID: 1000, GID: 1002, AdditionalGids: []uint32{100, 1002, 50000}, Name: "default-user"}},
		{name: "image name:group", image: "other:users", want: User{UID: 1001, GID: 100, AdditionalGids: []uint32{100}, Name: "other"}},
		{name: "image numeric without entry", image: "4242", want: User{UID: 4242, GID: 0, AdditionalGids: []uint32{0}}},
		{name: "image numeric uid:gid without entries", image: "4242:4343", want: User{UID: 4242, GID: 4343, AdditionalGids: []uint32{4343}}},
		{name: "image unknown name", image: "ghost", wantErr: "image config User"},
		{name: "image unknown group", image: "1000:ghosts", wantErr: "image config User"},
		{
			name:  "run_as_user overrides image",
			image: "other:users",
			sc:    &runtimeapi.LinuxContainerSecurityContext{RunAsUser: int64Value(1000)},
			want:  User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100, 1000, 50000}, Name: "default-user"},
		},
		{
			name: "run_as_user and run_as_group",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUser: int64Value(1001), RunAsGroup: int64Value(1002)},
			want: User{UID: 1001, GID: 1002, AdditionalGids: []uint32{100, 1002}, Name: "other"},
		},
		{
			name: "run_as_username",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "nobody"},
			want: User{UID: 65534, GID: 65534, AdditionalGids: []uint32{65534}, Name: "nobody"},
		},
		{
			name: "run_as_username with group",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "nobody", RunAsGroup: int64Value(5)},
			want: User{UID: 65534, GID: 5, AdditionalGids: []uint32{5}, Name: "nobody"},
		},
		{
			name:    "run_as_username unknown",
			sc:      &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "ghost"},
			wantErr: "run_as_username",
		},
		{
			name:    "run_as_group alone",
			sc:      &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: int64Value(1002)},
			wantErr: "run_as_group",
		},
		{
			name:    "negative uid",
			sc:      &runtimeapi.LinuxContainerSecurityContext{RunAsUser: int64Value(-1)},
			wantErr: "run_as_user",
		},
		{
			name: "supplemental groups merge (default)",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUser: int64Value(1000), SupplementalGroups: []int64{1234, 1000}},
			want: User{UID: 1000, GID: 1000, AdditionalGids: []uint32{100, 1000, 1234, 50000}, Name: "default-user"},
		},
		{
			name: "supplemental groups strict",
			sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: int64Value(1000), SupplementalGroups: []int64{1234},
				SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict},
			want: User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 1234}, Name: "default-user"},
		},
		{
			name:    "negative supplemental group",
			sc:      &runtimeapi.LinuxContainerSecurityContext{SupplementalGroups: []int64{-5}},
			wantErr: "supplemental_groups[0]",
		},
		{
			name:    "unknown policy",
			sc:      &runtimeapi.LinuxContainerSecurityContext{SupplementalGroupsPolicy: 7},
			wantErr: "supplemental_groups_policy",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ResolveUser(rootfs, tc.sc, &ocispec.ImageConfig{User: tc.image})
			if tc.wantErr != "" {
				wantInvalid(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.UID != tc.want.UID || u.GID != tc.want.GID || u.Name != tc.want.Name || !slices.Equal(u.AdditionalGids, tc.want.AdditionalGids) {
				t.Fatalf("got %+v, want %+v", *u, tc.want)
			}
		})
	}
}

// critest's SupplementalGroupsPolicy cases, end to end through the spec.
func TestSupplementalGroupsPolicyInSpec(t *testing.T) {
	for _, tc := range []struct {
		policy runtimeapi.SupplementalGroupsPolicy
		want   []uint32
	}{
		{runtimeapi.SupplementalGroupsPolicy_Merge, []uint32{100, 1000, 1234, 50000}},
		{runtimeapi.SupplementalGroupsPolicy_Strict, []uint32{1000, 1234}},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			o := containerOpts(t)
			o.Config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
				RunAsUser: int64Value(1000), SupplementalGroups: []int64{1234}, SupplementalGroupsPolicy: tc.policy,
			}
			s := mustContainer(t, o)
			u := s.Process.User
			if u.UID != 1000 || u.GID != 1000 || !slices.Equal(u.AdditionalGids, tc.want) {
				t.Fatalf("user %+v, want uid/gid 1000 and groups %v", u, tc.want)
			}
		})
	}
}

func TestResolveUserWithoutFiles(t *testing.T) {
	rootfs := t.TempDir()
	u, err := ResolveUser(rootfs, &runtimeapi.LinuxContainerSecurityContext{RunAsUser: int64Value(1001)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 1001 || u.GID != 0 || u.Name != "" {
		t.Fatalf("got %+v", *u)
	}
	_, err = ResolveUser(rootfs, &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "nobody"}, nil)
	wantInvalid(t, err, "run_as_username")
}

// A hostile image may point /etc/passwd and /etc/group at host files: they
// must be resolved inside the rootfs and never read from the host.
func TestResolveUserSymlinkEscape(t *testing.T) {
	outside := fakeRootfs(t, map[string]string{
		"passwd": "evil:x:777:777::/:/bin/sh\n",
		"group":  "evilgroup:x:778:default-user\n",
	})
	for _, tc := range []struct {
		name          string
		passwd, group string
	}{
		{name: "absolute", passwd: filepath.Join(outside, "passwd"), group: filepath.Join(outside, "group")},
		{name: "relative dot-dot", passwd: "../../../../../../../../" + outside + "/passwd", group: "../../../../../../../../" + outside + "/group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rootfs := t.TempDir()
			if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.passwd, filepath.Join(rootfs, "etc/passwd")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.group, filepath.Join(rootfs, "etc/group")); err != nil {
				t.Fatal(err)
			}
			_, err := ResolveUser(rootfs, &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "evil"}, nil)
			wantInvalid(t, err, "run_as_username")
			u, err := ResolveUser(rootfs, &runtimeapi.LinuxContainerSecurityContext{RunAsUser: int64Value(777)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if u.GID != 0 || u.Name != "" {
				t.Fatalf("host passwd was read: %+v", *u)
			}
		})
	}
}

// A symlink that stays inside the rootfs is followed, inside the rootfs.
func TestResolveUserSymlinkInside(t *testing.T) {
	rootfs := fakeRootfs(t, map[string]string{"usr/lib/passwd": testPasswd, "etc/group": testGroup})
	if err := os.Symlink("/usr/lib/passwd", filepath.Join(rootfs, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	u, err := ResolveUser(rootfs, &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "other"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 1001 {
		t.Fatalf("got %+v", *u)
	}
}

func TestResolveUserRejectsSpecialFiles(t *testing.T) {
	rootfs := fakeRootfs(t, map[string]string{"etc/group": testGroup})
	if err := os.Mkdir(filepath.Join(rootfs, "etc/passwd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveUser(rootfs, nil, nil); err == nil {
		t.Fatal("a directory at /etc/passwd was accepted")
	}
}

func TestResolveUserRelativeRootfs(t *testing.T) {
	_, err := ResolveUser("relative/root", nil, nil)
	wantInvalid(t, err, "RootfsPath")
}

func TestResolveUserOversizedFile(t *testing.T) {
	big := make([]byte, maxUserFile+1)
	for i := range big {
		big[i] = '#'
	}
	rootfs := fakeRootfs(t, map[string]string{"etc/passwd": string(big)})
	if _, err := ResolveUser(rootfs, nil, nil); err == nil {
		t.Fatal("an oversized /etc/passwd was read")
	}
}
