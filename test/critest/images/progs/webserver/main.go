// Command webserver is the static HTTP server behind the nginx and httpd
// stand-in images used by critest. It serves files from a directory and
// mimics the bits of nginx/httpd that critest observes:
//
//   - it answers GET / with 200 on the configured port;
//   - it logs a start-up line naming the server ("httpd: ...") to stderr,
//     which the multi-container log spec looks for;
//   - it writes its pid to a pid file (/var/run/nginx.pid for nginx), which
//     the HostPID spec reads and compares with `pidof nginx`;
//   - it re-executes itself with a process title such as
//     "nginx: master process nginx -g daemon off;", so /proc/1/cmdline
//     contains "master process" as the ContainerPID spec expects, while the
//     process name (comm) stays the binary's file name;
//   - it exits 0 on SIGTERM, SIGINT and SIGQUIT (nginx's stop signals).
//
// Arguments are accepted and ignored (so `nginx -g 'daemon off;'` works);
// configuration comes from the environment, set in the image config:
// WEBSERVER_NAME, WEBSERVER_ADDR (default ":80"), WEBSERVER_ROOT,
// WEBSERVER_PIDFILE and WEBSERVER_TITLE.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	name := getenv("WEBSERVER_NAME", "webserver")
	addr := getenv("WEBSERVER_ADDR", ":80")
	root := getenv("WEBSERVER_ROOT", "/usr/share/nginx/html")
	pidFile := os.Getenv("WEBSERVER_PIDFILE")
	setTitle(os.Getenv("WEBSERVER_TITLE"))

	errLog := log.New(os.Stderr, name+": ", log.LstdFlags)
	accessLog := log.New(os.Stdout, "", 0)
	files := http.FileServer(http.Dir(root))
	srv := &http.Server{
		Addr:              addr,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Server", name)
			files.ServeHTTP(w, r)
			accessLog.Printf("%s - - [%s] %q", r.RemoteAddr, time.Now().UTC().Format(time.RFC3339), r.Method+" "+r.URL.Path+" "+r.Proto)
		}),
	}

	if pidFile != "" {
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			errLog.Fatalf("writing pid file: %v", err)
		}
		defer os.Remove(pidFile)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	go func() {
		s := <-sigs
		errLog.Printf("got %v, shutting down", s)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	errLog.Printf("%s: serving %s on %s", name, root, addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		if pidFile != "" {
			os.Remove(pidFile)
		}
		errLog.Fatal(err)
	}
}

// setTitle replaces argv with the single element title by re-executing the
// same binary (Go cannot rewrite argv in place as nginx does). The pid is
// unchanged by exec, so pid files and pid-namespace checks still hold.
func setTitle(title string) {
	if title == "" || os.Args[0] == title {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "webserver: cannot set process title: %v\n", err)
		return
	}
	err = syscall.Exec(exe, []string{title}, os.Environ())
	fmt.Fprintf(os.Stderr, "webserver: cannot set process title: %v\n", err)
}
