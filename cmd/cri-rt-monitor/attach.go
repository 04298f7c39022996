package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cri-rt/cri-rt/pkg/monitor/protocol"
)

// maxClientQueue bounds the output queued for one attached client. A client
// that falls this far behind is dropped: the container and its log must
// never wait for a reader.
const maxClientQueue = 1 << 20

// hub fans the container's output out to attached clients and their input
// into the container's stdin.
type hub struct {
	mu      sync.Mutex
	clients map[*client]struct{}
	closed  bool

	stdinOnce, tty bool
	master         *os.File // pty master, nil without a terminal

	inMu        sync.Mutex // serializes writes to stdin
	stdin       *os.File   // pipe write end or the pty master; nil without stdin
	stdinClosed atomic.Bool
}

type client struct {
	h    *hub
	conn *net.UnixConn

	mu      sync.Mutex
	cond    sync.Cond
	queue   [][]byte // frames not yet written
	queued  int      // their total size
	closing bool     // write what is queued, then close
	dead    bool     // close now

	wantsStdin bool          // used by readLoop only
	done       chan struct{} // closed when readLoop has finished
}

// serve accepts attach clients until the listener is closed.
func (h *hub) serve(ln *net.UnixListener) {
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: do not spin.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		c := &client{h: h, conn: conn, done: make(chan struct{})}
		c.cond.L = &c.mu
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			_ = conn.Close()
			continue
		}
		h.clients[c] = struct{}{}
		h.mu.Unlock()
		go c.writeLoop()
		go c.readLoop()
	}
}

// broadcast queues output for every client. The frame is built once and
// shared: queued frames are never modified.
func (h *hub) broadcast(typ byte, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) == 0 {
		return
	}
	frame := protocol.AppendFrame(make([]byte, 0, protocol.HeaderSize+len(data)), typ, data)
	for c := range h.clients {
		c.enqueue(frame)
	}
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

func (h *hub) writeStdin(p []byte) {
	h.inMu.Lock()
	defer h.inMu.Unlock()
	if h.stdin == nil || h.stdinClosed.Load() {
		return
	}
	// May block while the container does not read: that holds up the
	// input of the clients only, and ends with EPIPE when the container
	// exits or ErrClosed when closeStdin closes the pipe.
	if _, err := h.stdin.Write(p); err != nil && !h.stdinClosed.Load() {
		logf("write stdin: %v", err)
	}
}

// closeStdin gives the container EOF on stdin: the pipe is closed; a pty
// master cannot be (that would hang up the terminal and end the output), so
// the terminal's EOF character is sent instead.
func (h *hub) closeStdin() {
	if h.stdin == nil || !h.stdinClosed.CompareAndSwap(false, true) {
		return
	}
	if h.tty {
		h.inMu.Lock()
		_, _ = h.stdin.Write([]byte{4}) // VEOF, ^D
		h.inMu.Unlock()
		return
	}
	// Without inMu: Close also ends a write blocked in writeStdin.
	_ = h.stdin.Close()
}

func (h *hub) resize(width, height uint16) error {
	if h.master == nil {
		return errors.New("container has no terminal")
	}
	rc, err := h.master.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	// Control, not Fd: Fd would switch the master to blocking mode and
	// take it out of the netpoller.
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width})
	}); err != nil {
		return err
	}
	return ierr
}

// closeAll lets every client write what is queued for it, waits at most
// timeout, and then drops the rest.
func (h *hub) closeAll(timeout time.Duration) {
	h.mu.Lock()
	h.closed = true
	clients := make([]*client, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	h.mu.Unlock()
	for _, c := range clients {
		c.finish()
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	expired := false
	for _, c := range clients {
		if !expired {
			select {
			case <-c.done:
				continue
			case <-timer.C:
				expired = true
			}
		}
		c.kill()
		<-c.done
	}
}

// shutdownStdin closes the container's stdin for good, pty master
// included, once the container has exited: a client's write blocked on it
// then fails instead of holding up the end.
func (h *hub) shutdownStdin() {
	if h.stdin == nil {
		return
	}
	h.stdinClosed.Store(true)
	_ = h.stdin.Close()
}

func (c *client) enqueue(frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.closing {
		return
	}
	if c.queued+len(frame) > maxClientQueue {
		logf("attach client too slow, dropped")
		c.killLocked()
		return
	}
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	c.cond.Signal()
}

func (c *client) kill() {
	c.mu.Lock()
	c.killLocked()
	c.mu.Unlock()
}

// killLocked closes the connection, which also ends a write in progress.
func (c *client) killLocked() {
	if !c.dead {
		c.dead = true
		c.queue, c.queued = nil, 0
		_ = c.conn.Close()
		c.cond.Signal()
	}
}

// writeLoop sends the queued frames. When the client is closing, it sends
// what is queued, then shuts down the write side: the client reads EOF after
// the last frame and hangs up, and readLoop, still reading, sees that and
// closes the connection. Closing it here instead, with client frames not
// yet read, would make the kernel reset it, and the client could read
// ECONNRESET instead of the end of its output.
func (c *client) writeLoop() {
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.closing && !c.dead {
			c.cond.Wait()
		}
		if c.dead {
			c.mu.Unlock()
			return
		}
		if len(c.queue) == 0 { // closing, all sent
			c.mu.Unlock()
			_ = c.conn.CloseWrite()
			// A client that does not hang up gets a second.
			_ = c.conn.SetReadDeadline(time.Now().Add(time.Second))
			return
		}
		f := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.queued -= len(f)
		c.mu.Unlock()
		if _, err := c.conn.Write(f); err != nil {
			c.kill()
			return
		}
	}
}

// finish makes the client close once its queue is sent.
func (c *client) finish() {
	c.mu.Lock()
	c.closing = true
	c.cond.Signal()
	c.mu.Unlock()
}

// readLoop handles the client's frames until it hangs up (or its
// connection fails or is killed), then forgets the client.
func (c *client) readLoop() {
	h := c.h
	defer close(c.done)
	defer h.remove(c)
	buf := make([]byte, 32*1024)
	ended := false // the session ended with the client's stdin
	for {
		typ, p, err := protocol.ReadFrame(c.conn, buf)
		if err != nil {
			break
		}
		if ended {
			continue // read only to see the client hang up
		}
		switch typ {
		case protocol.FrameHello:
			if len(p) > 0 && p[0]&protocol.HelloStdin != 0 {
				c.wantsStdin = true
			}
		case protocol.FrameStdin:
			c.wantsStdin = true
			h.writeStdin(p)
		case protocol.FrameResize:
			if w, ht, err := protocol.ParseResize(p); err == nil {
				_ = h.resize(w, ht)
			}
		case protocol.FrameCloseStdin:
			if h.stdinOnce {
				// The container's stdin ends with the client's;
				// the client stays to see the output to the end.
				h.closeStdin()
				continue
			}
			// Otherwise the attach session ends with its stdin (as
			// in containerd), and the container's stdin stays open
			// for the next client. Queued output is still sent.
			ended = true
			c.finish()
		}
	}
	c.kill()
	if h.stdinOnce && c.wantsStdin {
		h.closeStdin()
	}
}

// serveControl answers control connections until the listener is closed.
func (m *monitor) serveControl(ln *net.UnixListener) {
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go m.control(conn)
	}
}

// control runs the commands of one connection, one line each, answering
// "ok" or "error: <message>".
func (m *monitor) control(conn *net.UnixConn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReaderSize(conn, 256)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		var cerr error
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && f[0] == protocol.CmdReopen:
			if m.log != nil {
				cerr = m.log.reopen()
			}
		case len(f) == 3 && f[0] == protocol.CmdResize:
			w, err1 := strconv.ParseUint(f[1], 10, 16)
			h, err2 := strconv.ParseUint(f[2], 10, 16)
			if err1 != nil || err2 != nil {
				cerr = errors.New("bad size")
			} else {
				cerr = m.hub.resize(uint16(w), uint16(h))
			}
		default:
			cerr = fmt.Errorf("unknown command %q", strings.TrimSpace(line))
		}
		answer := "ok\n"
		if cerr != nil {
			answer = "error: " + strings.ReplaceAll(cerr.Error(), "\n", " ") + "\n"
		}
		if _, err := conn.Write([]byte(answer)); err != nil {
			return
		}
	}
}
