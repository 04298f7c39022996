package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cri-rt/cri-rt/pkg/config"
	"github.com/cri-rt/cri-rt/pkg/preflight"
)

func newCheckCommand(gf *globalFlags) *cobra.Command {
	var (
		kubeletConfig string
		socketOnly    bool
		timeout       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that this node can run cri-rt and its pods; exits non-zero if any check FAILs",
		Long: "check reports, one line each, with a fix for anything not OK: the OCI runtime of each\n" +
			"handler, cri-rt-monitor, CNI plugins and config, an overlay mount under root, cgroups and\n" +
			"the cgroup driver (against kubelet's with --kubelet-config), ip_forward, br_netfilter,\n" +
			"free disk, and whether the daemon answers on its socket.\n" +
			"It reads the same config as the daemon (--config, --root, --address, ...).",
		Example: "  cri-rt check\n" +
			"  cri-rt check --kubelet-config /var/lib/kubelet/config.yaml\n" +
			"  cri-rt check --socket-only    # readiness probes: only the Version RPC",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var rs []preflight.Result
			cfg, err := gf.load(cmd)
			if err != nil {
				// Report the broken config as a finding and go on with the
				// defaults (and flags), so the other problems show in the
				// same run: the daemon would refuse to start on this file.
				rs = append(rs, preflight.Result{Status: preflight.Fail, Check: "config", Detail: err.Error(),
					Fix: "fix the file; `cri-rt config default` prints every key with its documentation"})
				cfg = withFlags(gf, config.Default())
			} else if !socketOnly {
				rs = append(rs, configResult(gf))
			}
			rs = append(rs, preflight.Run(cmd.Context(), preflight.Options{
				Config: cfg, KubeletConfig: kubeletConfig, SocketOnly: socketOnly, Timeout: timeout,
			})...)
			if err := preflight.Print(os.Stdout, rs); err != nil {
				return err
			}
			if n := preflight.Failed(rs); n > 0 {
				return fmt.Errorf("%d check(s) failed", n)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeletConfig, "kubelet-config", "", "kubelet's KubeletConfiguration file, to compare its cgroupDriver and runtime endpoint")
	f.BoolVar(&socketOnly, "socket-only", false, "only check that the daemon answers on its socket (for readiness probes)")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "timeout of each RPC and external command")
	return cmd
}

// configResult says which file the checks read, since "defaults because
// the file is missing" and "this file" look the same otherwise.
func configResult(gf *globalFlags) preflight.Result {
	if _, err := os.Stat(gf.configPath); errors.Is(err, os.ErrNotExist) {
		return preflight.Result{Status: preflight.OK, Check: "config", Detail: "no " + gf.configPath + ": built-in defaults"}
	}
	return preflight.Result{Status: preflight.OK, Check: "config", Detail: gf.configPath}
}

// withFlags applies the global flags to cfg as globalFlags.load does (root.go
// is shared with the daemon, so this stays a copy for the error path only).
func withFlags(gf *globalFlags, cfg *config.Config) *config.Config {
	if gf.root != "" {
		cfg.Root = gf.root
	}
	if gf.state != "" {
		cfg.State = gf.state
	}
	if gf.address != "" {
		cfg.GRPC.Address = gf.address
	}
	return cfg
}
