// Command app is the container process of the benchmark's app image. It
// prints "ready" once it handles SIGTERM and then waits; on SIGTERM or
// SIGINT it exits 0 at once. The benchmark waits for that line in the
// container's log before it stops the container: a PID 1 ignores a
// SIGTERM that comes before its handler is installed, and a stop would
// then wait for its whole grace period.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	_, _ = os.Stdout.WriteString("ready\n")
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		// As PID 1 it inherits orphans; reap them.
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
