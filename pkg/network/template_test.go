package network

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFromTemplate(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "tmpl")
	os.WriteFile(tmpl, []byte(`{"cniVersion":"1.0.0","name":"k8s","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[{{range $i, $r := .PodCIDRRanges}}{{if $i}},{{end}}[{"subnet":"{{$r}}"}]{{end}}],"routes":[{{range $i, $r := .Routes}}{{if $i}},{{end}}{"dst":"{{$r}}"}{{end}}]}}]}`), 0o644)
	conf := filepath.Join(dir, "net.d")
	if err := WriteFromTemplate(tmpl, conf, "10.244.1.0/24,fd00:1::/64"); err != nil {
		t.Fatal(err)
	}
	list, file, err := LoadDefaultNetwork(conf)
	if err != nil || list.Name != "k8s" || filepath.Base(file) != TemplateFile {
		t.Fatalf("rendered config: %v %v %v", list, file, err)
	}
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), `"subnet":"10.244.1.0/24"`) || !strings.Contains(string(b), `"dst":"::/0"`) {
		t.Fatalf("rendered: %s", b)
	}
	if err := WriteFromTemplate(tmpl, conf, "not-a-cidr"); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}
