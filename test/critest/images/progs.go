package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// progPackage is the import path prefix of the helper programs.
const progPackage = "github.com/cri-rt/cri-rt/test/critest/images/progs/"

// Programs are the helper programs compiled into the images.
var Programs = []string{"ipcs", "nnp", "pause", "pgrep", "webserver"}

// BuildPrograms compiles the helper programs as static linux/amd64
// binaries into dir and returns name -> path. It runs `go build`, so the
// working directory must be inside this module. The flags remove
// everything that varies between checkouts or builds (paths, VCS stamp,
// build id), so the same toolchain yields the same bytes and hence the
// same image digests.
func BuildPrograms(ctx context.Context, dir string) (map[string]string, error) {
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", dir + string(filepath.Separator)}
	for _, p := range Programs {
		args = append(args, progPackage+p)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOAMD64=v1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build of helper programs: %w\n%s", err, out)
	}
	res := make(map[string]string, len(Programs))
	for _, p := range Programs {
		res[p] = filepath.Join(dir, p)
		if _, err := os.Stat(res[p]); err != nil {
			return nil, err
		}
	}
	return res, nil
}
