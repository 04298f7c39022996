// Package monitor is the daemon's side of cri-rt-monitor, the small process
// that watches one workload container, like conmon does for CRI-O. (Pause
// containers have none: see pkg/sandbox.)
//
// # Process model
//
// Create (or Start, for a monitor started while the bundle is still being
// prepared) runs the monitor binary with fds 0-2 on /dev/null, fd 3 the
// write end of a sync pipe (and with Start, fd 4 the read end of the go
// pipe), in a session and process group of its own, with GOMAXPROCS=1. It
// is the daemon's child: the daemon reaps it, through a Watcher (pidfd +
// epoll) once it has created its container, directly when it has not.
// When the daemon exits or restarts, the monitor is reparented to init, or
// to the nearest child subreaper, and lives on: nothing the daemon's
// session or process group gets reaches it. (An earlier version started it
// through a first process that exited at once, so that it was never the
// daemon's child; that cost a process start, some 3 ms, per container.) The
// monitor closes any inherited descriptor above 4 that lacks FD_CLOEXEC, so
// it pins nothing of the daemon's.
//
// The monitor makes itself a child subreaper, sets up the container's
// stdio (pipes, or a pty whose master the runtime sends over a console
// socket when Config.Terminal is set) and runs
//
//	<runtime> [--root R] [--systemd-cgroup] --log <state>/runtime.log --log-format json \
//	    create --bundle B --pid-file <state>/container.pid [--console-socket S] <id>
//
// Without a terminal the pipes are the runtime's own stdio, which it hands
// to the container. While the runtime works, the monitor opens the log
// file, binds its sockets and writes monitor.pid. When create (or that
// preparation) fails the monitor reports the error on the sync pipe, runs
// `<runtime> delete --force <id>`, removes its sockets and monitor.pid and
// exits. When it succeeds the monitor records the cgroup's OOM-kill
// counter, starts serving its sockets, reports the container's pid, closes
// the sync pipe and stays. The daemon then runs `runtime start`.
//
// The monitor alone reads the container's output: it writes it to the CRI
// log file and to attached clients; the daemon is never in that path. It
// reaps every child (processes reparented to it included) and, when the
// container's init exits, reads the OOM-kill counter again, drains the
// output for at most 2 seconds, writes the exit file and exits.
//
// A monitor catches SIGTERM and SIGINT (they cancel a create in progress,
// see below, and are dropped afterwards), SIGHUP and SIGPIPE: only SIGKILL
// ends it before its container, for a monitor gone is a container whose
// output and exit status are lost. It catches rather than ignores them
// so that the runtime and the container start with default dispositions.
//
// The daemon learns of a monitor's end with a Watcher (pidfd + epoll), then
// reads the exit file with ReadExit. After a restart it finds its monitors
// again with ReadInfo.
//
// # State dir
//
// One directory per container, created by the daemon:
//
//	container.pid  the container init's pid (written by the runtime)
//	monitor.pid    the monitor's pid, written while the container is created
//	               (and removed if that fails)
//	exit           JSON {"exitCode","signal","oomKilled","finishedAt","reason"},
//	               written atomically (tmp + rename) after the init exited
//	               and its output was drained; exitCode is 128+signal for a
//	               signal, 255 with a reason when the status is unknown
//	runtime.log    the runtime's JSON log
//	monitor.log    the monitor's own diagnostics
//	attach.sock    attach socket (0600), while the container runs
//	ctl.sock       control socket (0600), while the container runs
//	console.sock   console socket, only during create with a terminal
//
// Socket paths longer than sun_path allows are reached through
// /proc/self/fd/<dirfd>/<name>.
//
// # Log format
//
// The log file (opened O_APPEND, created 0640 with its parent dir) gets CRI
// records, as containerd writes them:
//
//	<RFC3339Nano UTC timestamp> <stdout|stderr> <P|F> <content>\n
//
// A line ends at \n (with a \r before it dropped) and is a full (F) record.
// A line longer than the maximum (default 16 KiB) is cut into partial (P)
// records of exactly that size followed by the rest as F. Output without a
// final newline is written as P when the stream ends. With a terminal all
// output is stdout. An empty log path discards the output.
//
// # Sync pipe
//
// JSON lines from the monitor: first {"monitorPid":M}, then either
// {"pid":N} (created) or {"error":"<the runtime's message>"}. The runtime's
// message is the last error entry of its JSON log, else its output. A
// SIGTERM to the monitor during create cancels it (the runtime is killed
// and the container deleted).
//
// # Attach protocol
//
// attach.sock is a stream socket carrying frames: 1 byte type, 4 bytes
// big-endian payload length, payload (at most 1 MiB).
//
//	0 stdin        client → monitor  data for the container's stdin
//	1 stdout       monitor → client  container stdout (all output with a terminal)
//	2 stderr       monitor → client  container stderr
//	3 resize       client → monitor  uint16 width, uint16 height (big-endian)
//	4 close-stdin  client → monitor  the client's stdin ended
//	5 hello        client → monitor  optional first frame, 1 byte of flags:
//	                                 1 = the client attaches its stdin
//
// A client receives output from the moment it connects, without replay. A
// client more than 1 MiB behind is disconnected, so a slow client never
// holds up the container or its log. Stdin data from any client goes to the
// container's stdin (dropped if the container has none). close-stdin, with
// stdin_once, closes the container's stdin and the client keeps receiving
// output; without stdin_once it ends that client's session and the
// container's stdin stays open. With stdin_once, the detach of the first
// client that attached its stdin closes the container's stdin too.
// "Closing" a terminal's stdin sends the EOF character (^D): closing the
// pty master would hang up the terminal. When the container has exited and
// its output was drained, the monitor writes the exit file and closes every
// connection after sending what was queued.
//
// # Control protocol
//
// ctl.sock takes one command per line and answers "ok" or "error: <msg>":
//
//	reopen          reopen the log file at its path (after kubelet renamed it)
//	resize W H      set the terminal size
package monitor
