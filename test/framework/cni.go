package framework

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Network is a CNI bridge network for a test, on its own bridge and
// private subnet, removed at the end of the test.
type Network struct {
	ConfDir  string
	BinDir   string // extra plugin dir, searched first
	IPAMDir  string // host-local reservations
	Bridge   string
	Subnet   string
	Gateway  string
	ConfName string
}

// NewNetwork writes a bridge + host-local + portmap + loopback conflist.
// index picks the subnet 10.97.<index>.0/24 and bridge crirt-t<index>.
func NewNetwork(t testing.TB, index int) *Network {
	t.Helper()
	dir := t.TempDir()
	n := &Network{
		ConfDir: filepath.Join(dir, "net.d"), BinDir: filepath.Join(dir, "bin"), IPAMDir: filepath.Join(dir, "ipam"),
		Bridge: fmt.Sprintf("crirt-t%d", index), Subnet: fmt.Sprintf("10.97.%d.0/24", index),
		Gateway: fmt.Sprintf("10.97.%d.1", index), ConfName: fmt.Sprintf("crirt-test-%d", index),
	}
	for _, d := range []string{n.ConfDir, n.BinDir, n.IPAMDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n.WriteConf(t, "bridge")
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", n.Bridge).Run()
	})
	return n
}

// WriteConf (re)writes the conflist with bridgeType as the main plugin type
// (e.g. a wrapper script in BinDir).
func (n *Network) WriteConf(t testing.TB, bridgeType string) {
	t.Helper()
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": %q, "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}`, n.ConfName, bridgeType, n.Bridge, n.IPAMDir, n.Subnet)
	if err := os.WriteFile(filepath.Join(n.ConfDir, "10-test.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Reservations lists the IPs host-local holds.
func (n *Network) Reservations() []string {
	var out []string
	ents, _ := os.ReadDir(filepath.Join(n.IPAMDir, n.ConfName))
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "last_reserved_ip") && e.Name() != "lock" {
			out = append(out, e.Name())
		}
	}
	return out
}

// Veths lists the veth interfaces attached to the bridge.
func (n *Network) Veths() []string {
	out, _ := exec.Command("ip", "-o", "link", "show", "master", n.Bridge).Output()
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			names = append(names, strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"))
		}
	}
	return names
}
