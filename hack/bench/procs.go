package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// proc is a process seen in /proc.
type proc struct {
	pid     int
	name    string // base name of argv[0] (comm is cut at 15 bytes)
	cmdline string // arguments joined by spaces
}

func listProcs() []proc {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []proc
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		out = append(out, proc{pid: pid, name: filepath.Base(args[0]), cmdline: strings.Join(args, " ")})
	}
	return out
}

// killBelow kills every process (but this one) whose command line names a
// path below dir: monitors or shims a failed run left behind.
func killBelow(dir string) []int {
	var killed []int
	for _, p := range listProcs() {
		if p.pid != os.Getpid() && strings.Contains(p.cmdline, dir+"/") {
			if syscall.Kill(p.pid, syscall.SIGKILL) == nil {
				killed = append(killed, p.pid)
			}
		}
	}
	return killed
}

// memStat is resident (RSS) and proportional (PSS) memory in KiB, and
// PSS split into anonymous (heap, stacks) and file-backed (binary text,
// libraries) pages.
type memStat struct{ rss, pss, pssAnon, pssFile int64 }

func (m *memStat) add(o memStat) {
	m.rss += o.rss
	m.pss += o.pss
	m.pssAnon += o.pssAnon
	m.pssFile += o.pssFile
}

// memOf reads a process's RSS and PSS from /proc/PID/smaps_rollup. PSS
// charges each shared page to its sharers in equal parts, so many copies
// of one binary are not counted as many times its text.
func memOf(pid int) (memStat, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return memStat{}, err
	}
	defer f.Close()
	var m memStat
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "Rss":
			m.rss = n
		case "Pss":
			m.pss = n
		case "Pss_Anon":
			m.pssAnon = n
		case "Pss_File":
			m.pssFile = n
		}
	}
	return m, sc.Err()
}

// memSample is a daemon's memory and that of its shims or monitors.
type memSample struct {
	daemon   memStat
	helpers  memStat
	nHelpers int
}

func (s memSample) totalPSS() int64 { return s.daemon.pss + s.helpers.pss }

func (in *instance) memSample() (memSample, error) {
	var s memSample
	d, err := memOf(in.proc.Pid())
	if err != nil {
		return s, err
	}
	s.daemon = d
	for _, pid := range in.helperPids() {
		m, err := memOf(pid)
		if err != nil {
			continue // ended meanwhile
		}
		s.helpers.add(m)
		s.nHelpers++
	}
	return s, nil
}
