// Package oom manages oom_score_adj values. Without CAP_SYS_RESOURCE the
// kernel refuses to lower a process's oom_score_adj below the minimum it
// inherited, so cri-rt clamps instead of failing, as containerd's
// restrict_oom_score_adj does.
package oom

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Score bounds of the kernel.
const (
	Min = -1000
	Max = 1000
)

// procPath is a variable so tests can point it at a file.
var procPath = "/proc/self/oom_score_adj"

// Read returns the current oom_score_adj of this process.
func Read() (int, error) {
	b, err := os.ReadFile(procPath)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// SetSelf sets this process's oom_score_adj to want. When the kernel refuses
// (EACCES/EPERM: lowering needs CAP_SYS_RESOURCE), it keeps the current value
// and returns it with restricted=true; the caller logs a warning and clamps
// container values to that floor from then on.
func SetSelf(want int) (effective int, restricted bool, err error) {
	if want < Min || want > Max {
		return 0, false, fmt.Errorf("oom_score_adj %d out of range %d..%d", want, Min, Max)
	}
	werr := os.WriteFile(procPath, []byte(strconv.Itoa(want)), 0)
	cur, rerr := Read()
	if rerr != nil {
		return 0, false, rerr
	}
	if werr != nil {
		if errors.Is(werr, syscall.EACCES) || errors.Is(werr, syscall.EPERM) {
			return cur, true, nil
		}
		return cur, false, werr
	}
	return cur, false, nil
}

// Restriction records whether this process could not lower its own score,
// and the floor that then applies to the processes it starts.
type Restriction struct {
	Restricted bool
	Floor      int
}

// Clamp raises requested to the floor when restricted; ok is false when it
// had to, so the caller can warn.
func (r Restriction) Clamp(requested int) (value int, ok bool) {
	if r.Restricted && requested < r.Floor {
		return r.Floor, false
	}
	return requested, true
}
