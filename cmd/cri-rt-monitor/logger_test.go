package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// records runs the writes through a lineWriter with a fixed clock and
// returns the log file's lines.
func records(t *testing.T, max int, writes []string, flush bool) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "0.log")
	l, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	w := newLineWriter(l, "stdout", max)
	w.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("X", 3600)) }
	for _, s := range writes {
		w.write([]byte(s))
	}
	if flush {
		w.flush()
	}
	l.close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		rest, ok := strings.CutPrefix(line, "2026-01-02T02:04:05.0000006Z stdout ")
		if !ok {
			t.Fatalf("bad record prefix %q", line)
		}
		out = append(out, strings.TrimSuffix(rest, "\n"))
	}
	return out
}

func TestLineWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		writes []string
		flush  bool
		want   []string
	}{
		{"lines", 16, []string{"a\nb\n"}, true, []string{"F a", "F b"}},
		{"crlf", 16, []string{"a\r\nb\r\n"}, true, []string{"F a", "F b"}},
		{"lone cr kept", 16, []string{"a\rb\n"}, true, []string{"F a\rb"}},
		{"empty line", 16, []string{"\n"}, true, []string{"F "}},
		{"split writes", 16, []string{"he", "llo\nwor", "ld\n"}, true, []string{"F hello", "F world"}},
		{"partial at end", 16, []string{"a\nrest"}, true, []string{"F a", "P rest"}},
		{"partial kept until flush", 16, []string{"a\nrest"}, false, []string{"F a"}},
		{"exactly max", 4, []string{"abcd\n"}, true, []string{"F abcd"}},
		{"max plus one", 4, []string{"abcde\n"}, true, []string{"P abcd", "F e"}},
		{"twice max", 4, []string{"abcdefgh\n"}, true, []string{"P abcd", "F efgh"}},
		{"long line in pieces", 4, []string{"ab", "cdefg", "hij\n"}, true, []string{"P abcd", "P efgh", "F ij"}},
		{"long partial", 4, []string{"abcdefghij"}, true, []string{"P abcd", "P efgh", "P ij"}},
		{"no limit", -1, []string{strings.Repeat("x", 100) + "\n"}, true, []string{"F " + strings.Repeat("x", 100)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := records(t, tc.max, tc.writes, tc.flush)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLineWriterDiscard(t *testing.T) {
	w := newLineWriter(nil, "stdout", 4)
	w.write([]byte("abcdefgh\nxyz"))
	w.flush()
	if len(w.line) != 0 || len(w.rec) != 0 {
		t.Fatal("a discarding writer buffered output")
	}
}

func TestLogReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	l, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	l.write([]byte("one\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.write([]byte("two\n"))
	if err := l.reopen(); err != nil {
		t.Fatal(err)
	}
	l.write([]byte("three\n"))
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "one\ntwo\n" || string(cur) != "three\n" {
		t.Fatalf("old %q, new %q", old, cur)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&^0o640 != 0 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"--id", "x", "--bundle", "/b", "--runtime", "runc", "--state-dir", "/s", "--terminal", "--max-log-line-size", "0"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.terminal || c.maxLogLineSize != defaultMaxLogLineSize || c.logPath != "" {
		t.Fatalf("%+v", c)
	}
	for _, args := range [][]string{
		{"--id", "x", "--bundle", "/b", "--runtime", "runc"},
		{"--id", "x", "--bundle", "b", "--runtime", "runc", "--state-dir", "/s"},
		{"--id", "x", "--bundle", "/b", "--runtime", "runc", "--state-dir", "/s", "extra"},
		{"--bogus"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
}

func TestReadOOMKills(t *testing.T) {
	dir := t.TempDir()
	v1 := filepath.Join(dir, "memory.oom_control")
	if err := os.WriteFile(v1, []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if f := oomCounterFile(dir); f != v1 {
		t.Fatalf("oomCounterFile = %q", f)
	}
	if n, ok := readOOMKills(v1); !ok || n != 3 {
		t.Fatalf("v1: %d %v", n, ok)
	}
	v2 := filepath.Join(dir, "memory.events")
	if err := os.WriteFile(v2, []byte("low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\noom_group_kill 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, ok := readOOMKills(v2); !ok || n != 1 {
		t.Fatalf("v2: %d %v", n, ok)
	}
	if _, ok := readOOMKills(""); ok {
		t.Fatal("no file must not be ok")
	}
}
