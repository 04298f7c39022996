package images

import (
	"fmt"
	"strings"

	"github.com/cri-rt/cri-rt/pkg/imagebuild"
)

// Account databases of the busybox base, modelled on the official busybox
// image. critest relies on: "nobody" (RunAsUsername spec, `id -nu`),
// "www-data" (images whose config says USER www-data) and root.
const (
	basePasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`
	baseGroup = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`
	// nsswitch.conf keeps glibc (used by the dynamic busybox) on the local
	// files; without it lookups would still work but try DNS for hosts.
	nsswitch = `passwd: files
group: files
shadow: files
hosts: files dns
`
	// shadowDays is the fixed "last password change" day of shadow entries
	// (a real adduser writes today's date, which would break determinism).
	shadowDays = 10933
)

// shadowFor derives /etc/shadow from a passwd file: every account locked.
func shadowFor(passwd string, locked string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(passwd), "\n") {
		name, _, _ := strings.Cut(l, ":")
		fmt.Fprintf(&b, "%s:%s:%d:0:99999:7:::\n", name, locked, shadowDays)
	}
	return b.String()
}

// etcEntries returns /etc/passwd, /etc/group and /etc/shadow with the
// given content.
func etcEntries(passwd, group string) []imagebuild.Entry {
	return []imagebuild.Entry{
		imagebuild.File("/etc/passwd", 0o644, []byte(passwd)),
		imagebuild.File("/etc/group", 0o644, []byte(group)),
		imagebuild.File("/etc/shadow", 0o600, []byte(shadowFor(passwd, "*"))),
	}
}

// predefinedGroupEntries reproduces what the upstream Dockerfile of
// test-image-predefined-group does with
// `adduser -u 1000 -D default-user && addgroup -g 50000 group-defined-in-image
// && addgroup default-user group-defined-in-image`: a user 1000 with primary
// group 1000 who is also listed as a member of group 50000 in /etc/group.
// The SupplementalGroupsPolicy specs expect exactly uid 1000, gid 1000 and
// groups 1000 50000 (+ the pod's).
func predefinedGroupEntries() []imagebuild.Entry {
	passwd := basePasswd + "default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"
	group := baseGroup + "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"
	es := etcEntries(passwd, group)
	es[2] = imagebuild.File("/etc/shadow", 0o600,
		[]byte(shadowFor(basePasswd, "*")+fmt.Sprintf("default-user:!:%d:0:99999:7:::\n", shadowDays)))
	return append(es, imagebuild.Dir("/home/default-user", 0o755).Owned(1000, 1000))
}
