// Package protocol is what cri-rt-monitor and its client, package monitor,
// share: the names of the files in a monitor's state dir, the messages on the
// sync pipe, the exit file, the framing of the attach socket and the
// commands of the control socket. Package monitor's documentation describes
// them for readers; this package is their single definition.
//
// The monitor binary imports this package, and every monitor process pays
// for what it links and allocates, so it stays small: a few standard
// library packages, no reflection-based encoding.
package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"
)

// Files and sockets in a monitor's state dir.
const (
	// ContainerPidFile is written by the OCI runtime (runc --pid-file).
	ContainerPidFile = "container.pid"
	// MonitorPidFile holds the monitor's pid, written once the container
	// is created.
	MonitorPidFile = "monitor.pid"
	// ExitFile holds an ExitStatus as JSON, written atomically once the
	// container's init has exited and its output is drained.
	ExitFile = "exit"
	// RuntimeLogFile is the OCI runtime's JSON log (runc --log).
	RuntimeLogFile = "runtime.log"
	// MonitorLogFile receives the monitor's own diagnostics (its stderr).
	MonitorLogFile = "monitor.log"
	// AttachSocket is the framed stream socket of attached clients.
	AttachSocket = "attach.sock"
	// ControlSocket takes line commands: CmdReopen, CmdResize.
	ControlSocket = "ctl.sock"
	// ConsoleSocket receives the pty master from the runtime (terminal
	// containers only); it exists only while the runtime creates.
	ConsoleSocket = "console.sock"
)

// SyncFd is the descriptor of the sync pipe the monitor inherits from its
// client.
const SyncFd = 3

// AddedGOMAXPROCSEnv is set to "1" in a monitor's environment when its
// client added GOMAXPROCS=1 there (one P is all a monitor needs, and more
// cost memory on big nodes; the Go runtime sizes its Ps before main runs,
// so it must come from the environment). The monitor removes both before it
// runs the OCI runtime, so that neither it nor the container inherits them.
const AddedGOMAXPROCSEnv = "_CRI_RT_MONITOR_ADDED_GOMAXPROCS"

// GoFd is the descriptor of the go pipe, which a monitor started with
// --await-go reads before it creates the container: one line, a JSON array
// of more flags (those only known once the bundle is ready, such as
// --cgroup-dir), means go; EOF means the creation is abandoned and the
// monitor exits without doing anything.
const GoFd = 4

// SyncMessage is one JSON line on the sync pipe. The monitor sends one with
// MonitorPid as soon as it runs, then exactly one with either Pid (the
// container is created) or Error (it is not, and the monitor exits).
type SyncMessage struct {
	MonitorPid int    `json:"monitorPid,omitempty"`
	Pid        int    `json:"pid,omitempty"`
	Error      string `json:"error,omitempty"`
}

// ExitStatus is the content of ExitFile.
type ExitStatus struct {
	// ExitCode is the exit status, or 128+signal when a signal killed the
	// process, or 255 when the monitor could not learn the status.
	ExitCode int `json:"exitCode"`
	// Signal is the signal that killed the process, 0 if it exited.
	Signal     int       `json:"signal"`
	OOMKilled  bool      `json:"oomKilled"`
	FinishedAt time.Time `json:"finishedAt"`
	// Reason explains an ExitCode the monitor made up (255).
	Reason string `json:"reason,omitempty"`
}

// Frame types of the attach socket. A frame is a 1-byte type, a 4-byte
// big-endian payload length and the payload.
const (
	FrameStdin      byte = 0 // client → monitor: data for the container's stdin
	FrameStdout     byte = 1 // monitor → client: container stdout (all output with a terminal)
	FrameStderr     byte = 2 // monitor → client: container stderr
	FrameResize     byte = 3 // client → monitor: uint16 width, uint16 height (big-endian)
	FrameCloseStdin byte = 4 // client → monitor: the client's stdin ended
	FrameHello      byte = 5 // client → monitor, optional first frame: 1 byte of Hello* flags
)

// HelloStdin in a FrameHello payload says the client attaches its stdin;
// such a client's detach closes a stdin_once container's stdin.
const HelloStdin byte = 1

// HeaderSize is the size of a frame header.
const HeaderSize = 5

// MaxFrame bounds a frame's payload so a broken peer cannot make the other
// side allocate without limit.
const MaxFrame = 1 << 20

// Control socket commands, one line each; the answer is a line "ok" or
// "error: <message>".
const (
	CmdReopen = "reopen" // reopen the log file at its path
	CmdResize = "resize" // "resize <width> <height>": set the terminal size
)

// AppendFrame appends a frame to b.
func AppendFrame(b []byte, typ byte, payload []byte) []byte {
	b = append(b, typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[len(b)-4:], uint32(len(payload)))
	return append(b, payload...)
}

// WriteFrame writes a frame with a single Write, so that writers sharing a
// connection under a lock never interleave partial frames.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	_, err := w.Write(AppendFrame(make([]byte, 0, HeaderSize+len(payload)), typ, payload))
	return err
}

// ReadFrame reads one frame. The payload aliases buf when it fits, so it is
// valid until the next call with the same buf.
func ReadFrame(r io.Reader, buf []byte) (typ byte, payload []byte, err error) {
	var h [HeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes exceeds %d", n, MaxFrame)
	}
	if int(n) <= cap(buf) {
		payload = buf[:n]
	} else {
		payload = make([]byte, n)
	}
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return h[0], payload, nil
}

// ResizePayload encodes a terminal size for FrameResize.
func ResizePayload(width, height uint16) []byte {
	var b [4]byte
	binary.BigEndian.PutUint16(b[0:], width)
	binary.BigEndian.PutUint16(b[2:], height)
	return b[:]
}

// ParseResize decodes a FrameResize payload.
func ParseResize(p []byte) (width, height uint16, err error) {
	if len(p) != 4 {
		return 0, 0, errors.New("resize payload must be 4 bytes")
	}
	return binary.BigEndian.Uint16(p[0:]), binary.BigEndian.Uint16(p[2:]), nil
}

// maxSocketPath is the longest path a sockaddr_un holds with its NUL.
const maxSocketPath = 107

// SocketPath returns a path by which the socket name in dir can be bound or
// connected. State dirs can be deeper than sun_path's 108 bytes allow; then
// the path goes through dirFd, a descriptor of dir held open by process pid
// (0 for the calling process) until the bind or connect is done.
func SocketPath(dir, name string, pid, dirFd int) string {
	p := filepath.Join(dir, name)
	if len(p) <= maxSocketPath {
		return p
	}
	proc := "self"
	if pid != 0 {
		proc = strconv.Itoa(pid)
	}
	return "/proc/" + proc + "/fd/" + strconv.Itoa(dirFd) + "/" + name
}

// NeedsDirFd tells whether SocketPath needs a descriptor of dir.
func NeedsDirFd(dir, name string) bool {
	return len(filepath.Join(dir, name)) > maxSocketPath
}

// The monitor encodes its few JSON documents by hand: encoding/json's
// reflection caches would cost every monitor process heap it never gives
// back. The output is what encoding/json produces for the same values
// (protocol_test checks), so either side may use encoding/json to read.

// AppendJSON appends m as JSON.
func (m SyncMessage) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	sep := false
	field := func(name string) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if m.MonitorPid != 0 {
		field("monitorPid")
		b = strconv.AppendInt(b, int64(m.MonitorPid), 10)
	}
	if m.Pid != 0 {
		field("pid")
		b = strconv.AppendInt(b, int64(m.Pid), 10)
	}
	if m.Error != "" {
		field("error")
		b = appendJSONString(b, m.Error)
	}
	return append(b, '}')
}

// AppendJSON appends s as JSON.
func (s ExitStatus) AppendJSON(b []byte) []byte {
	b = append(b, `{"exitCode":`...)
	b = strconv.AppendInt(b, int64(s.ExitCode), 10)
	b = append(b, `,"signal":`...)
	b = strconv.AppendInt(b, int64(s.Signal), 10)
	b = append(b, `,"oomKilled":`...)
	b = strconv.AppendBool(b, s.OOMKilled)
	b = append(b, `,"finishedAt":"`...)
	b = s.FinishedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if s.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, s.Reason)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Like encoding/json it
// escapes <, > and & and the line separators U+2028/U+2029, and replaces
// invalid UTF-8 with U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
