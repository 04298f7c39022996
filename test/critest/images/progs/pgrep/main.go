// Command pgrep lists the pids of processes whose name matches a regular
// expression, like procps/busybox pgrep. Debian's busybox is built without
// the pgrep applet, yet critest's exec-timeout spec runs
// `sh -c "pgrep sleep || true"` and requires empty stderr, so the images
// ship this minimal version.
//
// Usage: pgrep [-flvx] PATTERN. -f matches the full command line, -l also
// prints the name, -v inverts the match, -x requires a whole-name match.
// Exit status is 0 when something matched, 1 when nothing did, 2 on usage
// errors.
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	full := flag.Bool("f", false, "match against the full command line")
	list := flag.Bool("l", false, "print the process name too")
	invert := flag.Bool("v", false, "negate the match")
	exact := flag.Bool("x", false, "match the whole name")
	flag.Usage = func() { fmt.Fprintln(os.Stderr, "usage: pgrep [-flvx] PATTERN") }
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	pat := flag.Arg(0)
	if *exact {
		pat = "^(?:" + pat + ")$"
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgrep: bad pattern: %v\n", err)
		os.Exit(2)
	}
	matched := false
	for _, pid := range pids() {
		if pid == os.Getpid() {
			continue
		}
		name, cmdline, ok := describe(pid)
		if !ok {
			continue // exited meanwhile
		}
		subject := name
		if *full && cmdline != "" {
			subject = cmdline
		}
		if re.MatchString(subject) == *invert {
			continue
		}
		matched = true
		if *list {
			fmt.Printf("%d %s\n", pid, name)
		} else {
			fmt.Println(pid)
		}
	}
	if !matched {
		os.Exit(1)
	}
}

// pids returns the numeric /proc entries in ascending order.
func pids() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgrep: %v\n", err)
		os.Exit(2)
	}
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// describe returns the process name (comm) and its command line with NULs
// turned into spaces.
func describe(pid int) (name, cmdline string, ok bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	comm, err := os.ReadFile(dir + "/comm")
	if err != nil {
		return "", "", false
	}
	raw, _ := os.ReadFile(dir + "/cmdline")
	cmd := strings.TrimRight(strings.ReplaceAll(string(raw), "\x00", " "), " ")
	return strings.TrimSuffix(string(comm), "\n"), cmd, true
}
