// Package runtimelog reads the JSON log an OCI runtime writes with
// `--log FILE --log-format json` (runc, crun): one object per line with at
// least "level" and "msg". It links only the standard library, as the
// container monitor uses it too.
package runtimelog

import (
	"bufio"
	"encoding/json"
	"os"
)

// Size is the log's current size, the offset to pass to LastError before
// running the runtime, so that older entries are skipped.
func Size(path string) int64 {
	if fi, err := os.Stat(path); err == nil {
		return fi.Size()
	}
	return 0
}

// LastError returns the message of the last level=error entry written
// after offset, or "" if there is none (or no log).
func LastError(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return ""
	}
	var last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		var e struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Level == "error" && e.Msg != "" {
			last = e.Msg
		}
	}
	return last
}
