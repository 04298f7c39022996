// Package network wires pods to CNI networks.
package network

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// ErrNoConfig means the conf dir holds no usable network config yet.
var ErrNoConfig = errors.New("no network config found")

// LoadDefaultNetwork returns the network kubelet's pods join: the first
// valid config file of dir by file name (.conflist, .conf or .json), as
// containerd and CRI-O choose it. A single-plugin .conf is wrapped in a list.
// Invalid files are skipped so that a half-written file cannot take the node
// down; the errors are returned alongside when nothing valid is found.
func LoadDefaultNetwork(dir string) (*libcni.NetworkConfigList, string, error) {
	files, err := libcni.ConfFiles(dir, []string{".conflist", ".conf", ".json"})
	if err != nil {
		return nil, "", fmt.Errorf("reading CNI conf dir %s: %w", dir, err)
	}
	sort.Strings(files)
	var problems []string
	for _, f := range files {
		list, err := loadFile(f)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", filepath.Base(f), err))
			continue
		}
		if len(list.Plugins) == 0 {
			problems = append(problems, fmt.Sprintf("%s: no plugins", filepath.Base(f)))
			continue
		}
		return list, f, nil
	}
	if len(problems) > 0 {
		return nil, "", fmt.Errorf("%w in %s (%s)", ErrNoConfig, dir, strings.Join(problems, "; "))
	}
	return nil, "", fmt.Errorf("%w in %s", ErrNoConfig, dir)
}

func loadFile(path string) (*libcni.NetworkConfigList, error) {
	if strings.HasSuffix(path, ".conflist") {
		return libcni.ConfListFromFile(path)
	}
	conf, err := libcni.ConfFromFile(path)
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromConf(conf)
}
