package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/cri-rt/cri-rt/pkg/monitor/protocol"
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestOutputAndExitCode(t *testing.T) {
	requireIntegration(t)
	c := create(t, ctrOpts{bundleOpts: bundleOpts{args: sh("echo out; echo err >&2; echo out2; exit 3")}})
	if c.info.ContainerPid <= 0 || c.info.MonitorPid <= 0 {
		t.Fatalf("bad info %+v", c.info)
	}
	if _, err := ReadExit(c.stateDir); !errdefs.IsNotFound(err) {
		t.Fatalf("ReadExit before exit: %v", err)
	}
	ri, err := ReadInfo(c.stateDir)
	if err != nil || *ri != *c.info {
		t.Fatalf("ReadInfo = %+v, %v; want %+v", ri, err, c.info)
	}
	if !Running(c.stateDir) {
		t.Fatal("Running = false for a live monitor")
	}
	before := time.Now()
	c.runc(t, "start", c.id)
	e := c.waitExit(t)
	if e.ExitCode != 3 || e.Signal != 0 || e.OOMKilled || e.Reason != "" {
		t.Fatalf("exit = %+v", e)
	}
	if e.FinishedAt.Before(before) || e.FinishedAt.After(time.Now()) {
		t.Fatalf("FinishedAt %v out of range", e.FinishedAt)
	}
	if Running(c.stateDir) {
		t.Fatal("Running = true after exit")
	}
	var out, errs []string
	for _, r := range readLog(t, c.logPath) {
		if r.tag != "F" {
			t.Fatalf("unexpected partial record %+v", r)
		}
		if r.stream == "stdout" {
			out = append(out, r.content)
		} else {
			errs = append(errs, r.content)
		}
	}
	if strings.Join(out, ",") != "out,out2" || strings.Join(errs, ",") != "err" {
		t.Fatalf("stdout %q, stderr %q", out, errs)
	}
	// A finished monitor leaves no sockets, and says why attach fails.
	for _, s := range []string{protocol.AttachSocket, protocol.ControlSocket} {
		if _, err := os.Stat(filepath.Join(c.stateDir, s)); err == nil {
			t.Errorf("%s left after exit", s)
		}
	}
	if err := Attach(context.Background(), c.stateDir, nil, io.Discard, io.Discard, nil); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("Attach after exit: %v", err)
	}
}

func TestLongAndPartialLines(t *testing.T) {
	requireIntegration(t)
	// 40 KiB of 'a', a newline, a short line, and a last line without
	// newline; 16 KiB records.
	c := run(t, ctrOpts{bundleOpts: bundleOpts{args: sh(`head -c 40960 /dev/zero | tr '\0' a; echo; echo short; printf "no newline"`)}})
	if e := c.waitExit(t); e.ExitCode != 0 {
		t.Fatalf("exit %+v", e)
	}
	recs := readLog(t, c.logPath)
	var got []string
	for _, r := range recs {
		if r.stream != "stdout" {
			t.Fatalf("unexpected %+v", r)
		}
		got = append(got, fmt.Sprintf("%s:%d", r.tag, len(r.content)))
	}
	want := "P:16384 P:16384 F:8192 F:5 P:10"
	if strings.Join(got, " ") != want {
		t.Fatalf("records %s, want %s", strings.Join(got, " "), want)
	}
	if recs[3].content != "short" || recs[4].content != "no newline" {
		t.Fatalf("contents %q %q", recs[3].content, recs[4].content)
	}
	for _, r := range recs[:3] {
		if strings.Trim(r.content, "a") != "" {
			t.Fatal("long line content changed")
		}
	}
}

func TestExitCodes(t *testing.T) {
	requireIntegration(t)
	t.Run("zero", func(t *testing.T) {
		c := run(t, ctrOpts{bundleOpts: bundleOpts{args: []string{"/bin/true"}}})
		if e := c.waitExit(t); e.ExitCode != 0 || e.Signal != 0 {
			t.Fatalf("exit %+v", e)
		}
	})
	t.Run("sigkill", func(t *testing.T) {
		c := run(t, ctrOpts{bundleOpts: bundleOpts{args: []string{"/bin/sleep", "1000"}}, noLog: true})
		c.runc(t, "kill", c.id, "KILL")
		if e := c.waitExit(t); e.ExitCode != 137 || e.Signal != 9 || e.OOMKilled {
			t.Fatalf("exit %+v", e)
		}
	})
}

func TestOOMKilled(t *testing.T) {
	requireIntegration(t)
	// The shell keeps the command substitution's 64 MiB in its own memory,
	// so the OOM killer picks the container's init.
	c := run(t, ctrOpts{bundleOpts: bundleOpts{
		args:   sh(`x=$(head -c 67108864 /dev/zero | tr '\0' a); echo survived`),
		memory: 32 << 20,
	}})
	e := c.waitExit(t)
	if !e.OOMKilled || e.ExitCode != 137 {
		t.Fatalf("exit %+v, want OOM kill", e)
	}
	for _, r := range readLog(t, c.logPath) {
		if strings.Contains(r.content, "survived") {
			t.Fatal("the shell survived")
		}
	}
}

func TestReopenLog(t *testing.T) {
	requireIntegration(t)
	c := run(t, ctrOpts{bundleOpts: bundleOpts{args: sh(`i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done`)}})
	waitFor(t, 10*time.Second, "first lines", func() bool { return len(readLog(t, c.logPath)) >= 3 })
	rotated := c.logPath + ".1"
	if err := os.Rename(c.logPath, rotated); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ReopenLog(ctx, c.stateDir); err != nil {
		t.Fatalf("ReopenLog: %v", err)
	}
	waitFor(t, 10*time.Second, "lines in the new file", func() bool { return len(readLog(t, c.logPath)) >= 3 })
	// The two files hold one unbroken sequence.
	all := append(readLog(t, rotated), readLog(t, c.logPath)...)
	for i, r := range all {
		if r.content != "line "+strconv.Itoa(i) {
			t.Fatalf("record %d is %q", i, r.content)
		}
	}
	if err := Resize(ctx, c.stateDir, Size{80, 24}); err == nil || !strings.Contains(err.Error(), "no terminal") {
		t.Fatalf("Resize without terminal: %v", err)
	}
	c.runc(t, "kill", c.id, "KILL")
	c.waitExit(t)
}

// lockedBuffer is a bytes.Buffer safe for a writer and a poller.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestAttachOutput(t *testing.T) {
	requireIntegration(t)
	// A state dir too deep for sun_path: sockets go through /proc/self/fd.
	deep := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	c := run(t, ctrOpts{
		bundleOpts: bundleOpts{args: sh(`while true; do echo tick; echo tock >&2; sleep 0.2; done`)},
		stateDir:   deep,
	})
	var out, errOut lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- Attach(ctx, c.stateDir, nil, &out, &errOut, nil) }()
	waitFor(t, 10*time.Second, "attached output", func() bool {
		return strings.Count(out.String(), "tick\n") >= 2 && strings.Count(errOut.String(), "tock\n") >= 2
	})
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("Attach = %v, want context.Canceled", err)
	}
	// A second client, attached until the container is killed.
	var out2 lockedBuffer
	res2 := make(chan error, 1)
	go func() { res2 <- Attach(context.Background(), c.stateDir, nil, &out2, io.Discard, nil) }()
	waitFor(t, 10*time.Second, "second client's output", func() bool { return strings.Contains(out2.String(), "tick\n") })
	c.runc(t, "kill", c.id, "KILL")
	select {
	case err := <-res2:
		if err != nil {
			t.Fatalf("Attach after exit = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Attach did not return after the container exited")
	}
	if e := c.waitExit(t); e.ExitCode != 137 {
		t.Fatalf("exit %+v", e)
	}
}

func TestAttachStdin(t *testing.T) {
	requireIntegration(t)
	c := run(t, ctrOpts{
		bundleOpts: bundleOpts{args: sh(`cat; echo cat done`)},
		stdin:      true, stdinOnce: true,
	})
	var out lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// stdin ends after one line: with stdin_once, cat sees EOF and the
	// container exits; Attach returns when its output is delivered.
	if err := Attach(ctx, c.stateDir, strings.NewReader("hello monitor\n"), &out, io.Discard, nil); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if out.String() != "hello monitor\ncat done\n" {
		t.Fatalf("output %q", out.String())
	}
	if e := c.waitExit(t); e.ExitCode != 0 {
		t.Fatalf("exit %+v", e)
	}
	var contents []string
	for _, r := range readLog(t, c.logPath) {
		contents = append(contents, r.content)
	}
	if strings.Join(contents, "|") != "hello monitor|cat done" {
		t.Fatalf("log %q", contents)
	}
}

func TestAttachStdinNotOnce(t *testing.T) {
	requireIntegration(t)
	// Without stdin_once, a client's stdin EOF ends its session only; the
	// container's stdin stays open for the next client.
	c := run(t, ctrOpts{bundleOpts: bundleOpts{args: sh(`while read l; do echo "got $l"; done; echo eof`)}, stdin: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, word := range []string{"one", "two"} {
		pr, pw := io.Pipe()
		var out lockedBuffer
		res := make(chan error, 1)
		go func() { res <- Attach(ctx, c.stateDir, pr, &out, io.Discard, nil) }()
		if _, err := pw.Write([]byte(word + "\n")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "echo of "+word, func() bool { return out.String() == "got "+word+"\n" })
		_ = pw.Close()
		if err := <-res; err != nil {
			t.Fatalf("Attach: %v", err)
		}
	}
	c.runc(t, "kill", c.id, "KILL")
	c.waitExit(t)
	for _, r := range readLog(t, c.logPath) {
		if r.content == "eof" {
			t.Fatal("the container's stdin was closed")
		}
	}
}

func TestAttachTerminal(t *testing.T) {
	requireIntegration(t)
	c := run(t, ctrOpts{
		bundleOpts: bundleOpts{args: sh(`read a; stty size; read b; stty size; echo bye`), terminal: true},
		stdin:      true, stdinOnce: true,
	})
	pr, pw := io.Pipe()
	var out lockedBuffer
	resize := make(chan Size, 1)
	res := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { res <- Attach(ctx, c.stateDir, pr, &out, io.Discard, resize) }()
	resize <- Size{Width: 100, Height: 40}
	time.Sleep(300 * time.Millisecond) // the resize frame goes first
	if _, err := pw.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "stty size 40 100", func() bool { return strings.Contains(out.String(), "40 100\r\n") })
	// Resize through the control socket.
	if err := Resize(ctx, c.stateDir, Size{Width: 50, Height: 20}); err != nil {
		t.Fatalf("Resize: %v", err)
	}
	if _, err := pw.Write([]byte("y\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "stty size 20 50", func() bool { return strings.Contains(out.String(), "20 50\r\n") })
	_ = pw.Close()
	if err := <-res; err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if e := c.waitExit(t); e.ExitCode != 0 {
		t.Fatalf("exit %+v", e)
	}
	// All of a terminal's output is stdout; \r\n ends lines too.
	var contents []string
	for _, r := range readLog(t, c.logPath) {
		if r.stream != "stdout" {
			t.Fatalf("record %+v", r)
		}
		contents = append(contents, r.content)
	}
	want := "x|40 100|y|20 50|bye" // the pty echoes the input
	if strings.Join(contents, "|") != want {
		t.Fatalf("log %q, want %q", strings.Join(contents, "|"), want)
	}
}

func TestSlowAttachClient(t *testing.T) {
	requireIntegration(t)
	c := create(t, ctrOpts{bundleOpts: bundleOpts{args: sh(`yes 0123456789012345678901234567890123456789 | head -n 100000`)}})
	// A client that never reads: it must be dropped, not wait on.
	conn, err := net.Dial("unix", filepath.Join(c.stateDir, protocol.AttachSocket))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.UnixConn).SetReadBuffer(4096)
	c.runc(t, "start", c.id)
	if e := c.waitExit(t); e.ExitCode != 0 {
		t.Fatalf("exit %+v", e)
	}
	if n := len(readLog(t, c.logPath)); n != 100000 {
		t.Fatalf("%d records, want 100000", n)
	}
}

// helperEnv makes the test binary a stand-in daemon that creates a
// container, prints the Info, and waits to be killed.
const helperEnv = "CRI_RT_MONITOR_TEST_HELPER"

func helperMain() int {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	info, err := Create(context.Background(), os.Getenv(helperEnv+"_BIN"), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, _ := json.Marshal(info)
	fmt.Println(string(b))
	select {}
}

func TestSurvivesDaemonDeath(t *testing.T) {
	requireIntegration(t)
	c, cfg := newConfig(t, ctrOpts{bundleOpts: bundleOpts{args: sh(`read x; echo "after daemon: $x"; exit 7`)}, stdin: true, stdinOnce: true})
	b, _ := json.Marshal(cfg)
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+string(b), helperEnv+"_BIN="+monitorBin)
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	var info Info
	if err := json.NewDecoder(stdout).Decode(&info); err != nil {
		_ = helper.Process.Kill()
		_ = helper.Wait()
		t.Fatalf("helper: %v", err)
	}
	c.info = &info
	if err := watcher.Watch(info.MonitorPid, func() { close(c.exited) }); err != nil {
		t.Fatal(err)
	}
	// The monitor is the daemon's child (the daemon reaps it), in a
	// session and process group of its own, so that nothing sent to the
	// daemon's reaches it.
	mSid, _ := unix.Getsid(info.MonitorPid)
	hSid, _ := unix.Getsid(helper.Process.Pid)
	if mSid == hSid || mSid != info.MonitorPid || ppid(t, info.MonitorPid) != helper.Process.Pid {
		t.Fatalf("monitor sid %d ppid %d, helper pid %d sid %d", mSid, ppid(t, info.MonitorPid), helper.Process.Pid, hSid)
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	// Orphaned, it is adopted (here by this test, a subreaper) and goes on.
	waitFor(t, 5*time.Second, "the monitor to be reparented", func() bool { return ppid(t, info.MonitorPid) != helper.Process.Pid })

	c.runc(t, "start", c.id)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out lockedBuffer
	if err := Attach(ctx, c.stateDir, strings.NewReader("still here\n"), &out, io.Discard, nil); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if out.String() != "after daemon: still here\n" {
		t.Fatalf("output %q", out.String())
	}
	if e := c.waitExit(t); e.ExitCode != 7 {
		t.Fatalf("exit %+v", e)
	}
}

func ppid(t *testing.T, pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	n, _ := strconv.Atoi(f[1])
	return n
}

func TestCreateFailure(t *testing.T) {
	requireIntegration(t)
	c, cfg := newConfig(t, ctrOpts{bundleOpts: bundleOpts{args: []string{"/nonexistent/entrypoint"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := Create(ctx, monitorBin, cfg)
	if err == nil {
		t.Fatalf("Create succeeded: %+v", info)
	}
	t.Logf("error: %v", err)
	// runc's own words, from its JSON log.
	if !strings.Contains(err.Error(), "/nonexistent/entrypoint") || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("error lacks the runtime's message: %v", err)
	}
	// The monitor is gone (it reported, then exited); give it a moment.
	waitFor(t, 5*time.Second, "monitor to exit", func() bool { return len(processesWith(c.stateDir)) == 0 })
	checkNoLeaks(t, c.id, c.stateDir)
	if _, err := os.Stat(filepath.Join(c.stateDir, protocol.RuntimeLogFile)); err != nil {
		t.Errorf("runtime.log removed: %v", err)
	}
}

func TestCreateBadRuntime(t *testing.T) {
	requireIntegration(t)
	c, cfg := newConfig(t, ctrOpts{bundleOpts: bundleOpts{args: []string{"/bin/true"}}})
	cfg.Runtime = "/nonexistent/runc"
	_, err := Create(context.Background(), monitorBin, cfg)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/runc") {
		t.Fatalf("Create = %v", err)
	}
	waitFor(t, 5*time.Second, "monitor to exit", func() bool { return len(processesWith(c.stateDir)) == 0 })
}

func TestCreateCancelled(t *testing.T) {
	requireIntegration(t)
	c, cfg := newConfig(t, ctrOpts{bundleOpts: bundleOpts{args: []string{"/bin/true"}}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Create(ctx, monitorBin, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create = %v, want context.Canceled", err)
	}
	waitFor(t, 5*time.Second, "monitor to exit", func() bool { return len(processesWith(c.stateDir)) == 0 })
	checkNoLeaks(t, c.id, c.stateDir)
}

func TestWatcherGonePid(t *testing.T) {
	w, err := NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	called := make(chan struct{})
	if err := w.Watch(cmd.Process.Pid, func() { close(called) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-called:
	case <-time.After(5 * time.Second):
		t.Fatal("callback for a gone process not called")
	}
	// A child that exits later is reaped by the watcher.
	sleeper := exec.Command("sleep", "0.2")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	called2 := make(chan struct{})
	if err := w.Watch(sleeper.Process.Pid, func() { close(called2) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-called2:
	case <-time.After(5 * time.Second):
		t.Fatal("callback not called")
	}
}

func TestFindBinary(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, BinaryName)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	got, err := FindBinary()
	if err != nil || got != p {
		t.Fatalf("FindBinary = %q, %v", got, err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := FindBinary(); !errdefs.IsNotFound(err) {
		t.Fatalf("FindBinary without binary: %v", err)
	}
}

// TestMonitorMemory starts 10 monitors of running containers and measures
// their proportional set size: the budget is about 1 MiB each.
func TestMonitorMemory(t *testing.T) {
	requireIntegration(t)
	const n = 10
	var ctrs []*ctr
	for i := 0; i < n; i++ {
		ctrs = append(ctrs, run(t, ctrOpts{bundleOpts: bundleOpts{args: sh(`echo started; exec sleep 1000`)}}))
	}
	for _, c := range ctrs {
		waitFor(t, 10*time.Second, "output", func() bool { return len(readLog(t, c.logPath)) == 1 })
	}
	time.Sleep(500 * time.Millisecond)
	var total, totalRss, totalAnon int
	for _, c := range ctrs {
		pss, rss, anon := smapsRollup(t, c.info.MonitorPid)
		total += pss
		totalRss += rss
		totalAnon += anon
	}
	avg := float64(total) / n / 1024
	t.Logf("average monitor PSS %.2f MiB (Pss_Anon %.2f MiB, RSS %.2f MiB) over %d monitors",
		avg, float64(totalAnon)/n/1024, float64(totalRss)/n/1024, n)
	if avg >= 2 {
		t.Fatalf("average PSS %.2f MiB exceeds 2 MiB", avg)
	}
	for _, c := range ctrs {
		c.runc(t, "kill", c.id, "KILL")
	}
	for _, c := range ctrs {
		c.waitExit(t)
	}
}

// smapsRollup returns Pss, Rss and Pss_Anon in KiB.
func smapsRollup(t *testing.T, pid int) (pss, rss, anon int) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "Pss:":
			pss = v
		case "Rss:":
			rss = v
		case "Pss_Anon:":
			anon = v
		}
	}
	return pss, rss, anon
}

func TestNoInheritedFds(t *testing.T) {
	requireIntegration(t)
	// A descriptor a careless library left without O_CLOEXEC: exec passes
	// it on, and the monitor must close it.
	var p [2]int
	if err := unix.Pipe2(p[:], 0); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(p[0], &st); err != nil {
		t.Fatal(err)
	}
	c := create(t, ctrOpts{bundleOpts: bundleOpts{args: []string{"/bin/sleep", "100"}}})
	_ = unix.Close(p[0])
	_ = unix.Close(p[1])
	dir := "/proc/" + strconv.Itoa(c.info.MonitorPid) + "/fd"
	// The monitor closes the sync pipe right after reporting.
	syncFd := filepath.Join(dir, strconv.Itoa(protocol.SyncFd))
	waitFor(t, 5*time.Second, "sync pipe closed", func() bool {
		l, _ := os.Readlink(syncFd)
		return !strings.HasPrefix(l, "pipe:")
	})
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var links []string
	for _, e := range ents {
		l, _ := os.Readlink(filepath.Join(dir, e.Name()))
		links = append(links, e.Name()+"="+l)
		if l == fmt.Sprintf("pipe:[%d]", st.Ino) {
			t.Errorf("monitor holds the daemon's pipe as fd %s", e.Name())
		}
	}
	t.Logf("monitor fds: %s", strings.Join(links, " "))
	// The container gets its stdio and nothing of the monitor's.
	c.runc(t, "start", c.id)
	cdir := "/proc/" + strconv.Itoa(c.info.ContainerPid) + "/fd"
	waitFor(t, 5*time.Second, "container to exec", func() bool {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(c.info.ContainerPid) + "/comm")
		return string(b) == "sleep\n"
	})
	cents, err := os.ReadDir(cdir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cents {
		if n, _ := strconv.Atoi(e.Name()); n > 2 {
			l, _ := os.Readlink(filepath.Join(cdir, e.Name()))
			t.Errorf("container has fd %s = %s", e.Name(), l)
		}
	}
	c.runc(t, "kill", c.id, "KILL")
	c.waitExit(t)
}

// A monitor started ahead of its bundle creates the container on Go, with
// the flags Go adds (here the cgroup dir, which the OOM report needs).
func TestStartThenGo(t *testing.T) {
	requireIntegration(t)
	c, cfg := newConfig(t, ctrOpts{bundleOpts: bundleOpts{
		args:   sh(`x=$(head -c 67108864 /dev/zero | tr '\0' a); echo survived`),
		memory: 32 << 20,
	}})
	cgroupDir := cfg.CgroupDir
	cfg.CgroupDir = ""
	p, err := Start(monitorBin, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := p.Go(ctx, "--cgroup-dir", cgroupDir)
	if err != nil {
		t.Fatalf("Go: %v", err)
	}
	c.info = info
	if err := watcher.Watch(info.MonitorPid, func() { close(c.exited) }); err != nil {
		t.Fatal(err)
	}
	c.runc(t, "start", c.id)
	if e := c.waitExit(t); !e.OOMKilled {
		t.Fatalf("exit %+v: the cgroup dir given to Go was not used", e)
	}
}

// An abandoned monitor exits having made nothing: no container, no
// process, no monitor.pid.
func TestStartThenAbandon(t *testing.T) {
	requireIntegration(t)
	c, cfg := newConfig(t, ctrOpts{bundleOpts: bundleOpts{args: []string{"/bin/true"}}})
	p, err := Start(monitorBin, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Abandon()
	if pids := processesWith(c.stateDir); len(pids) > 0 {
		t.Fatalf("monitor still running after Abandon: %v", pids)
	}
	checkNoLeaks(t, c.id, c.stateDir)
	if _, err := os.Stat(filepath.Join(c.stateDir, protocol.MonitorPidFile)); err == nil {
		t.Error("an abandoned monitor wrote monitor.pid")
	}
}

// A bad flag given to Go fails the creation with the monitor's message.
func TestStartThenGoBadFlag(t *testing.T) {
	requireIntegration(t)
	c, cfg := newConfig(t, ctrOpts{bundleOpts: bundleOpts{args: []string{"/bin/true"}}})
	p, err := Start(monitorBin, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Go(context.Background(), "--cgroup-dir", "relative/dir"); err == nil || !strings.Contains(err.Error(), "relative/dir") {
		t.Fatalf("Go = %v, want the bad path named", err)
	}
	waitFor(t, 5*time.Second, "monitor to exit", func() bool { return len(processesWith(c.stateDir)) == 0 })
	checkNoLeaks(t, c.id, c.stateDir)
}
