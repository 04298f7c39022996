package ociruntime

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/containerd/errdefs"

	"github.com/cri-rt/cri-rt/pkg/config"
)

// Set is the configured runtime handlers, by name.
type Set struct {
	byName      map[string]*Runtime
	defaultName string
}

// NewSet builds the handlers of cfg. A binary that is not found is an
// error only when a pod asks for that handler, so one missing optional
// runtime does not stop the node.
func NewSet(cfg *config.Config) *Set {
	s := &Set{byName: map[string]*Runtime{}, defaultName: cfg.DefaultRuntime}
	for name, h := range cfg.Runtimes {
		path := h.Path
		if !filepath.IsAbs(path) {
			if p, err := exec.LookPath(path); err == nil {
				path = p
			}
		}
		s.byName[name] = &Runtime{Name: name, Path: path, Root: cfg.RuntimeRoot(name), SystemdCgroup: cfg.CgroupDriver == config.CgroupDriverSystemd}
	}
	return s
}

// Get returns the handler by name; "" is the default handler.
func (s *Set) Get(name string) (*Runtime, error) {
	if name == "" {
		name = s.defaultName
	}
	r, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("runtime handler %q is not configured (have %v): %w", name, s.Names(), errdefs.ErrInvalidArgument)
	}
	return r, nil
}

// Names lists the handler names.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Observe sets the metrics observer of every handler.
func (s *Set) Observe(fn func(op, handler string, d time.Duration, err error)) {
	for name, r := range s.byName {
		name := name
		r.Observe = func(op string, d time.Duration, err error) { fn(op, name, d, err) }
	}
}
