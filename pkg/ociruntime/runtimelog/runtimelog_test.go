package runtimelog

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLastError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "runtime.log")
	if got := LastError(p, 0); got != "" {
		t.Fatalf("missing log: %q", got)
	}
	old := `{"level":"error","msg":"an earlier failure"}` + "\n"
	if err := os.WriteFile(p, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	off := Size(p)
	if off != int64(len(old)) {
		t.Fatalf("Size %d", off)
	}
	if got := LastError(p, off); got != "" {
		t.Fatalf("entries before the offset must be skipped, got %q", got)
	}
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(`{"level":"warning","msg":"w"}` + "\nnot json\n" +
		`{"level":"error","msg":"first"}` + "\n" + `{"level":"error","msg":"exec: \"nope\": not found"}` + "\n" + `{"level":"info","msg":"i"}` + "\n")
	f.Close()
	if got := LastError(p, off); got != `exec: "nope": not found` {
		t.Fatalf("LastError = %q", got)
	}
	if got := LastError(p, 0); got != `exec: "nope": not found` {
		t.Fatalf("LastError from 0 = %q", got)
	}
}
