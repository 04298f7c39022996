package network

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/containerd/errdefs"
)

// TemplateFile is the conflist written from the CNI config template.
const TemplateFile = "10-cri-rt.conflist"

// templateData is what a CNI config template sees (containerd's names).
type templateData struct {
	PodCIDR       string
	PodCIDRRanges []string
	Routes        []string
}

// WriteFromTemplate renders the template file with kubelet's pod CIDRs
// ("10.88.0.0/16" or "10.88.0.0/16,fd00::/64") into confDir, atomically, so
// that the node becomes network-ready without a hand-written config.
func WriteFromTemplate(templatePath, confDir, podCIDRs string) error {
	var d templateData
	for _, c := range strings.Split(podCIDRs, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		ip, _, err := net.ParseCIDR(c)
		if err != nil {
			return fmt.Errorf("pod CIDR %q: %v: %w", c, err, errdefs.ErrInvalidArgument)
		}
		if d.PodCIDR == "" {
			d.PodCIDR = c
		}
		d.PodCIDRRanges = append(d.PodCIDRRanges, c)
		if ip.To4() != nil {
			d.Routes = append(d.Routes, "0.0.0.0/0")
		} else {
			d.Routes = append(d.Routes, "::/0")
		}
	}
	if d.PodCIDR == "" {
		return fmt.Errorf("no pod CIDR given: %w", errdefs.ErrInvalidArgument)
	}
	src, err := os.ReadFile(templatePath)
	if err != nil {
		return fmt.Errorf("CNI config template: %w", err)
	}
	tmpl, err := template.New(filepath.Base(templatePath)).Parse(string(src))
	if err != nil {
		return fmt.Errorf("CNI config template %s: %w", templatePath, err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, d); err != nil {
		return fmt.Errorf("CNI config template %s: %w", templatePath, err)
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(confDir, ".cri-rt-conf-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(confDir, TemplateFile))
}
