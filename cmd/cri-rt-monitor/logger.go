package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// logFile is the CRI log file, shared by the stdout and stderr writers.
// Every record goes out in one write(2) with O_APPEND, so records of the two
// streams never interleave within a line.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
	// failed remembers that a write failed, so that a full disk yields one
	// diagnostic rather than one per line.
	failed bool
}

func openLogFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

func openLog(path string) (*logFile, error) {
	f, err := openLogFile(path)
	if err != nil {
		return nil, err
	}
	return &logFile{path: path, f: f}, nil
}

func (l *logFile) write(rec []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	// An error is not fatal: the container's output must still be
	// drained, or the container would block on a full pipe.
	if _, err := l.f.Write(rec); err != nil {
		if !l.failed {
			logf("write %s: %v", l.path, err)
		}
		l.failed = true
	} else {
		l.failed = false
	}
}

// reopen opens the path anew: kubelet renames the file to rotate it and then
// asks for the reopen. On failure the old file stays in use.
func (l *logFile) reopen() error {
	f, err := openLogFile(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.failed = false
	l.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}

// lineWriter turns one stream's output into CRI log records:
//
//	<RFC3339Nano UTC time> <stdout|stderr> <P|F> <content>\n
//
// with containerd's semantics: a line ends at \n (a \r before it is
// dropped) and is written as F; a line longer than max goes out as P records
// of max bytes each, the rest as F; output without a final newline is kept
// until the stream ends and then written as P.
type lineWriter struct {
	log    *logFile
	stream string
	max    int    // <= 0: no limit
	line   []byte // the current line's content not yet written
	rec    []byte // record buffer, reused
	now    func() time.Time
}

func newLineWriter(log *logFile, stream string, max int) *lineWriter {
	return &lineWriter{log: log, stream: stream, max: max, now: time.Now}
}

func (w *lineWriter) write(p []byte) {
	if w.log == nil {
		return
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.add(p)
			return
		}
		w.add(p[:i])
		p = p[i+1:]
		line := w.line
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		w.emit('F', line)
		w.line = w.line[:0]
	}
}

// add appends to the current line, writing P records whenever it grows past
// max. It keeps at most max+1 bytes: a line of exactly max bytes is still
// written whole as F when its newline comes.
func (w *lineWriter) add(seg []byte) {
	if w.max <= 0 {
		w.line = append(w.line, seg...)
		return
	}
	for len(seg) > 0 {
		n := min(w.max+1-len(w.line), len(seg))
		w.line = append(w.line, seg[:n]...)
		seg = seg[n:]
		if len(w.line) > w.max {
			w.emit('P', w.line[:w.max])
			w.line = append(w.line[:0], w.line[w.max:]...)
		}
	}
}

// flush writes what is left of an unterminated line, at the stream's end.
func (w *lineWriter) flush() {
	if w.log != nil && len(w.line) > 0 {
		w.emit('P', w.line)
		w.line = w.line[:0]
	}
}

func (w *lineWriter) emit(tag byte, content []byte) {
	r := w.now().UTC().AppendFormat(w.rec[:0], time.RFC3339Nano)
	r = append(r, ' ')
	r = append(r, w.stream...)
	r = append(r, ' ', tag, ' ')
	r = append(r, content...)
	r = append(r, '\n')
	w.log.write(r)
	w.rec = r
}
