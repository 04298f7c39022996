package protocol

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

func TestFrames(t *testing.T) {
	var b bytes.Buffer
	if err := WriteFrame(&b, FrameStdout, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&b, FrameCloseStdin, nil); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{'x'}, 100)
	b.Write(AppendFrame(nil, FrameStdin, big))
	if got := b.Bytes()[:HeaderSize]; !bytes.Equal(got, []byte{1, 0, 0, 0, 5}) {
		t.Fatalf("header %v", got)
	}
	buf := make([]byte, 16)
	typ, p, err := ReadFrame(&b, buf)
	if err != nil || typ != FrameStdout || string(p) != "hello" {
		t.Fatalf("%d %q %v", typ, p, err)
	}
	typ, p, err = ReadFrame(&b, buf)
	if err != nil || typ != FrameCloseStdin || len(p) != 0 {
		t.Fatalf("%d %q %v", typ, p, err)
	}
	typ, p, err = ReadFrame(&b, buf) // larger than buf: allocated
	if err != nil || typ != FrameStdin || !bytes.Equal(p, big) {
		t.Fatalf("%d %d %v", typ, len(p), err)
	}
	if _, _, err := ReadFrame(&b, buf); err != io.EOF {
		t.Fatalf("at end: %v", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader([]byte{1, 0, 0, 0, 5, 'a'}), buf); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated: %v", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader([]byte{1, 0xff, 0, 0, 0}), buf); err == nil {
		t.Fatal("oversized frame accepted")
	}
}

func TestResizePayload(t *testing.T) {
	w, h, err := ParseResize(ResizePayload(132, 43))
	if err != nil || w != 132 || h != 43 {
		t.Fatalf("%d %d %v", w, h, err)
	}
	if _, _, err := ParseResize([]byte{1}); err == nil {
		t.Fatal("short payload accepted")
	}
}

// The hand-written encoders must say exactly what encoding/json says.
func TestJSONMatchesEncodingJSON(t *testing.T) {
	odd := "runc: \"quoted\" \\ back\nnew\ttab\r\x01\x1f <html> & \u2028\u2029 ünï \xff\xfe end"
	for _, m := range []SyncMessage{{MonitorPid: 12}, {Pid: 34}, {Error: odd}, {}, {MonitorPid: 1, Pid: 2, Error: "e"}} {
		want, _ := json.Marshal(m)
		if got := m.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("SyncMessage %+v:\n got %s\nwant %s", m, got, want)
		}
	}
	ts := time.Date(2026, 5, 7, 8, 9, 10, 123456000, time.UTC)
	for _, s := range []ExitStatus{
		{ExitCode: 0, FinishedAt: ts},
		{ExitCode: 137, Signal: 9, OOMKilled: true, FinishedAt: ts},
		{ExitCode: 255, FinishedAt: ts, Reason: odd},
	} {
		want, _ := json.Marshal(s)
		if got := s.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("ExitStatus %+v:\n got %s\nwant %s", s, got, want)
		}
		var back ExitStatus
		if err := json.Unmarshal(s.AppendJSON(nil), &back); err != nil || !back.FinishedAt.Equal(s.FinishedAt) {
			t.Errorf("round trip: %+v %v", back, err)
		}
	}
}

func TestSocketPath(t *testing.T) {
	if p := SocketPath("/run/x", AttachSocket, 0, 7); p != "/run/x/attach.sock" {
		t.Fatal(p)
	}
	long := "/" + strings.Repeat("d", 120)
	if !NeedsDirFd(long, AttachSocket) || NeedsDirFd("/run/x", AttachSocket) {
		t.Fatal("NeedsDirFd")
	}
	if p := SocketPath(long, AttachSocket, 0, 7); p != "/proc/self/fd/7/attach.sock" {
		t.Fatal(p)
	}
	if p := SocketPath(long, ConsoleSocket, 42, 7); p != "/proc/42/fd/7/console.sock" {
		t.Fatal(p)
	}
}
