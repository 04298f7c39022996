package oci

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Real-time signal numbers as glibc presents them to programs (the kernel's
// first two are reserved by the C library), the numbering docker and kubelet
// use for SIGRTMIN+n and SIGRTMAX-n.
const (
	sigRTMin = 34
	sigRTMax = 64
)

// StopSignal is the signal that stops a container gracefully: the request's
// stop_signal, else the image's STOPSIGNAL, else SIGTERM. An image signal
// that cannot be parsed falls back to SIGTERM rather than failing: the image
// was accepted at pull time and a stop must always be possible.
func StopSignal(cfg *runtimeapi.ContainerConfig, image *ocispec.ImageConfig) syscall.Signal {
	if s := cfg.GetStopSignal(); s != runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		if sig, err := ParseSignal(strings.TrimPrefix(s.String(), "SIGNAL_")); err == nil {
			return sig
		}
	}
	if image != nil && image.StopSignal != "" {
		if sig, err := ParseSignal(image.StopSignal); err == nil {
			return sig
		}
	}
	return syscall.SIGTERM
}

// ParseSignal parses a signal as images and the CRI write them: a number
// ("9"), a name with or without "SIG" in any case ("SIGQUIT", "quit"),
// real-time signals as "SIGRTMIN+3", "RTMAX-1" or the CRI's
// "SIGRTMINPLUS3"/"SIGRTMAXMINUS1".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > sigRTMax {
			return 0, fmt.Errorf("signal %d out of range 1..%d", n, sigRTMax)
		}
		return syscall.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "SIG")
	switch name {
	case "CLD":
		name = "CHLD"
	case "POLL":
		name = "IO"
	case "IOT":
		name = "ABRT"
	}
	if rt, ok := rtSignal(name); ok {
		return rt, nil
	}
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func rtSignal(name string) (syscall.Signal, bool) {
	for _, f := range []struct {
		prefix string
		base   int
		sign   int
	}{
		{"RTMINPLUS", sigRTMin, 1}, {"RTMIN+", sigRTMin, 1},
		{"RTMAXMINUS", sigRTMax, -1}, {"RTMAX-", sigRTMax, -1},
	} {
		if rest, ok := strings.CutPrefix(name, f.prefix); ok {
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 || n > sigRTMax-sigRTMin {
				return 0, false
			}
			return syscall.Signal(f.base + f.sign*n), true
		}
	}
	switch name {
	case "RTMIN":
		return sigRTMin, true
	case "RTMAX":
		return sigRTMax, true
	}
	return 0, false
}
