package preflight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const notRunningFix = "start it: systemctl start cri-rt (journalctl -u cri-rt -e says why it stopped), or run cri-rt in a shell"

// checkSocket dials the CRI socket and calls Version, what kubelet does
// first. With status, it also reports the Status RPC's conditions, which
// is where the daemon says why the node would be NotReady. Each failure
// mode gets its own message because each has a different fix: no socket
// (daemon not running), a socket nobody listens on (daemon died), and a
// socket this user may not open.
func checkSocket(ctx context.Context, o *Options, status bool) []Result {
	const check = "socket"
	addr := o.Config.GRPC.Address
	fi, err := os.Stat(addr)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return []Result{fail(check, notRunningFix, "no socket at %s: the daemon is not running", addr)}
	case errors.Is(err, os.ErrPermission):
		return []Result{fail(check, "run as root", "%s: %v", addr, err)}
	case err != nil:
		return []Result{fail(check, "", "%s: %v", addr, err)}
	case fi.Mode()&os.ModeSocket == 0:
		return []Result{fail(check, "remove it or set grpc.address to another path", "%s exists but is not a socket", addr)}
	}
	c, err := net.DialTimeout("unix", addr, o.Timeout)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return []Result{fail(check, notRunningFix, "%s: nothing listens (a stale socket: the daemon is not running)", addr)}
	case errors.Is(err, syscall.EACCES):
		return []Result{fail(check, fmt.Sprintf("run as root or as a member of group %d (grpc.gid)", o.Config.GRPC.GID), "%s: permission denied", addr)}
	case err != nil:
		return []Result{fail(check, notRunningFix, "%s: %v", addr, err)}
	}
	c.Close()

	conn, err := grpc.NewClient("unix://"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return []Result{fail(check, "", "%v", err)}
	}
	defer conn.Close()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	vctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	v, err := rs.Version(vctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return []Result{fail(check, "the daemon accepts connections but does not answer: see its log (journalctl -u cri-rt)", "%s: Version: %v", addr, err)}
	}
	out := []Result{ok(check, "%s answers: %s %s, CRI %s", addr, v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion)}
	if !status {
		return out
	}
	sctx, cancel2 := context.WithTimeout(ctx, o.Timeout)
	defer cancel2()
	st, err := rs.Status(sctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return append(out, fail("runtime status", "see the daemon's log (journalctl -u cri-rt)", "Status: %v", err))
	}
	var bad, good []string
	for _, c := range st.GetStatus().GetConditions() {
		if c.Status {
			good = append(good, c.Type)
			continue
		}
		bad = append(bad, fmt.Sprintf("%s=false (%s: %s)", c.Type, c.Reason, c.Message))
	}
	if len(bad) > 0 {
		return append(out, warn("runtime status", "see the cni and runtime lines above; kubelet keeps the node NotReady until every condition is true",
			"%s", strings.Join(bad, "; ")))
	}
	return append(out, ok("runtime status", "%s", strings.Join(good, ", ")))
}
