// Package ociruntime drives an OCI runtime binary (runc, crun) through its
// command line, the contract every such runtime implements: create, state,
// start, kill, delete, update, features. Workload containers are created by
// their monitor (pkg/monitor), which must own their stdio; Create here is for
// containers whose output nobody reads (pause).
package ociruntime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/cri-rt/cri-rt/pkg/ociruntime/runtimelog"
)

// Runtime is one configured OCI runtime handler.
type Runtime struct {
	// Name is the handler name ("runc").
	Name string
	// Path is the binary, absolute or looked up in PATH.
	Path string
	// Root is the runtime's state directory (--root).
	Root string
	// SystemdCgroup passes --systemd-cgroup (cgroup_driver = "systemd").
	SystemdCgroup bool
	// Observe, when set, is told of every invocation (for metrics).
	Observe func(op string, d time.Duration, err error)

	featuresOnce sync.Once
	features     *features.Features
	featuresErr  error
}

// State is the runtime's view of a container.
type State struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"` // creating, created, running, stopped, paused
	Bundle string `json:"bundle"`
}

// GlobalArgs are the flags every invocation needs.
func (r *Runtime) GlobalArgs() []string {
	args := []string{"--root", r.Root}
	if r.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	return args
}

func (r *Runtime) observe(op string, start time.Time, err error) {
	if r.Observe != nil {
		r.Observe(op, time.Since(start), err)
	}
}

func (r *Runtime) run(ctx context.Context, args ...string) (_ []byte, retErr error) {
	defer func(start time.Time) { r.observe(args[0], start, retErr) }(time.Now())
	cmd := exec.CommandContext(ctx, r.Path, append(r.GlobalArgs(), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.Bytes(), &Error{Op: args[0], Message: msg, Err: err}
	}
	return stdout.Bytes(), nil
}

// Error is a failed runtime invocation with the runtime's own message.
type Error struct {
	Op      string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("runtime %s: %s", e.Op, e.Message)
	}
	return fmt.Sprintf("runtime %s: %v", e.Op, e.Err)
}

func (e *Error) Unwrap() error {
	if isNotExist(e.Message) {
		return errdefs.ErrNotFound
	}
	return e.Err
}

func isNotExist(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "does not exist") || strings.Contains(m, "not found") || strings.Contains(m, "no such file")
}

// State returns the container's state; ErrNotFound if the runtime does not know it.
func (r *Runtime) State(ctx context.Context, id string) (*State, error) {
	out, err := r.run(ctx, "state", id)
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("runtime state %s: %w", id, err)
	}
	return &st, nil
}

// Create creates a container whose stdio is /dev/null (pause), recording
// its init's pid in pidFile. The runtime logs to logFile (JSON), whose last
// error becomes the error's message. The container's init is left to the
// nearest child subreaper or to init once the runtime exits: the caller
// watches it by pid (pidfd) rather than as a child.
func (r *Runtime) Create(ctx context.Context, id, bundle, pidFile, logFile string) (retErr error) {
	defer func(start time.Time) { r.observe("create", start, retErr) }(time.Now())
	off := runtimelog.Size(logFile)
	args := append(r.GlobalArgs(), "--log", logFile, "--log-format", "json", "create", "--bundle", bundle, "--pid-file", pidFile, id)
	// No pipes: the container inherits the runtime's stdio and would hold
	// them open, and Wait would wait for it.
	cmd := exec.CommandContext(ctx, r.Path, args...)
	if err := cmd.Run(); err != nil {
		return &Error{Op: "create", Message: runtimelog.LastError(logFile, off), Err: err}
	}
	return nil
}

// Start starts a created container.
func (r *Runtime) Start(ctx context.Context, id string) error {
	_, err := r.run(ctx, "start", id)
	return err
}

// Kill signals the container's init (all=true: every process in it).
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := r.run(ctx, append(args, id, strconv.Itoa(int(sig)))...)
	if err != nil && isStopped(err) {
		return nil
	}
	return err
}

func isStopped(err error) bool {
	var re *Error
	return errors.As(err, &re) && (strings.Contains(re.Message, "not running") || strings.Contains(re.Message, "process already finished"))
}

// DeleteStopped removes a container whose init has exited (its monitor
// recorded the exit, or its pidfd fired). A plain delete suffices and is
// quick: the runtime still kills whatever is left in the container's cgroup.
// --force, which runc answers by signalling and polling every 100 ms, is
// only the fallback for a runtime that still sees the container running.
func (r *Runtime) DeleteStopped(ctx context.Context, id string) error {
	if err := r.Delete(ctx, id, false); err == nil || errdefs.IsNotFound(err) {
		return nil
	}
	return r.Delete(ctx, id, true)
}

// Delete removes the container from the runtime; a missing one is fine.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	_, err := r.run(ctx, append(args, id)...)
	if err != nil && errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// Update applies new resource limits to a running container.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources) (retErr error) {
	defer func(start time.Time) { r.observe("update", start, retErr) }(time.Now())
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, r.Path, append(r.GlobalArgs(), "update", "--resources", "-", id)...)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &Error{Op: "update", Message: strings.TrimSpace(string(out)), Err: err}
	}
	return nil
}

// Features returns what the runtime supports (`runc features`), cached.
// A runtime without the command reports nothing supported.
func (r *Runtime) Features(ctx context.Context) (*features.Features, error) {
	r.featuresOnce.Do(func() {
		out, err := exec.CommandContext(ctx, r.Path, "features").Output()
		if err != nil {
			r.featuresErr = fmt.Errorf("%s features: %w", r.Path, err)
			return
		}
		var f features.Features
		if err := json.Unmarshal(out, &f); err != nil {
			r.featuresErr = fmt.Errorf("%s features: %w", r.Path, err)
			return
		}
		r.features = &f
	})
	return r.features, r.featuresErr
}

// SupportsMountOption reports whether the runtime knows a mount option
// (e.g. "rro" for recursive read-only mounts).
func (r *Runtime) SupportsMountOption(ctx context.Context, opt string) bool {
	f, err := r.Features(ctx)
	if err != nil || f == nil {
		return false
	}
	for _, o := range f.MountOptions {
		if o == opt {
			return true
		}
	}
	return false
}

// SupportsIDMapMounts reports whether the runtime can idmap mounts, which
// Kubernetes user namespaces need.
func (r *Runtime) SupportsIDMapMounts(ctx context.Context) bool {
	f, err := r.Features(ctx)
	if err != nil || f == nil || f.Linux == nil || f.Linux.MountExtensions == nil || f.Linux.MountExtensions.IDMap == nil {
		return false
	}
	return f.Linux.MountExtensions.IDMap.Enabled != nil && *f.Linux.MountExtensions.IDMap.Enabled
}
