package monitor

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Watcher reports the end of monitor processes. One goroutine waits in
// epoll on a pidfd per watched process, so a node full of containers costs
// one blocked thread, not one per container. Any process can be watched,
// child or not.
type Watcher struct {
	epfd, evfd int
	mu         sync.Mutex
	fns        map[int]func() // by pidfd
	closed     bool
	done       chan struct{}
}

// NewWatcher starts a watcher.
func NewWatcher() (*Watcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	// The eventfd wakes the loop for Close.
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(evfd)
		return nil, err
	}
	w := &Watcher{epfd: epfd, evfd: evfd, fns: map[int]func(){}, done: make(chan struct{})}
	go w.loop()
	return w, nil
}

// Watch calls fn, in a goroutine of its own, once process pid has exited.
// If it is already gone, fn is called right away.
func (w *Watcher) Watch(pid int, fn func()) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("watcher closed")
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		go fn()
		return nil
	}
	if err != nil {
		return err
	}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		_ = unix.Close(fd)
		return err
	}
	w.fns[fd] = fn
	return nil
}

func (w *Watcher) loop() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 32)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == w.evfd {
				return
			}
			w.mu.Lock()
			fn, ok := w.fns[fd]
			delete(w.fns, fd)
			w.mu.Unlock()
			if !ok {
				continue
			}
			_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, fd, nil)
			// Reap the process if it is our child (a daemon that is a
			// child subreaper adopts its monitors); otherwise ECHILD.
			_ = unix.Waitid(unix.P_PIDFD, fd, nil, unix.WEXITED|unix.WNOHANG, nil)
			_ = unix.Close(fd)
			go fn()
		}
	}
}

// Close stops the watcher; callbacks not yet called never are.
func (w *Watcher) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	_, _ = unix.Write(w.evfd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	<-w.done
	for fd := range w.fns {
		_ = unix.Close(fd)
	}
	w.fns = nil
	_ = unix.Close(w.evfd)
	_ = unix.Close(w.epfd)
}

// WaitGone waits until process pid has exited (a zombie counts: it runs no
// more), for at most timeout; it reports whether it has. It sleeps in poll
// on a pidfd, so it returns as soon as the process ends, and works for any
// process, child or not.
func WaitGone(pid int, timeout time.Duration) bool {
	if pid <= 0 {
		return true
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		return true
	}
	if err != nil {
		return waitGonePolling(pid, timeout)
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int((left+time.Millisecond-1)/time.Millisecond))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return waitGonePolling(pid, time.Until(deadline))
		case n > 0:
			return true
		case left == 0:
			return false
		}
	}
}

// waitGonePolling is WaitGone for kernels without pidfds (before 5.3).
func waitGonePolling(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if unix.Kill(pid, 0) != nil || isZombie(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// isZombie tells whether pid has exited and awaits its parent's wait.
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
}
