package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/cri-rt/cri-rt/pkg/config"
	"github.com/cri-rt/cri-rt/pkg/daemon"
)

// globalFlags are the flags that override the config file.
type globalFlags struct {
	configPath string
	root       string
	state      string
	address    string
	logLevel   string
}

func newRootCommand() *cobra.Command {
	var gf globalFlags
	cmd := &cobra.Command{
		Use:           "cri-rt",
		Short:         "cri-rt is a Kubernetes container runtime (CRI)",
		Long:          "cri-rt serves the Kubernetes Container Runtime Interface on a unix socket.\nWithout a subcommand it runs the daemon.",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: false,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := gf.load(cmd)
			if err != nil {
				return err
			}
			return runDaemon(cfg)
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&gf.configPath, "config", config.DefaultConfigPath, "config file (a missing default file means the built-in defaults)")
	pf.StringVar(&gf.root, "root", "", "persistent data directory (overrides root)")
	pf.StringVar(&gf.state, "state", "", "runtime state directory (overrides state)")
	pf.StringVar(&gf.address, "address", "", "CRI unix socket path (overrides grpc.address)")
	pf.StringVar(&gf.logLevel, "log-level", "", "error, warn, info, debug, trace or a number (overrides log_level)")
	cmd.AddCommand(newVersionCommand(), newConfigCommand(&gf), newHostsCommand(&gf), newCheckCommand(&gf))
	return cmd
}

// load reads the config file and applies the flags given on the command line.
func (gf *globalFlags) load(cmd *cobra.Command) (*config.Config, error) {
	explicit := cmd.Flags().Changed("config")
	cfg, err := config.Load(gf.configPath, explicit)
	if err != nil {
		return nil, err
	}
	if gf.root != "" {
		cfg.Root = gf.root
	}
	if gf.state != "" {
		cfg.State = gf.state
	}
	if gf.address != "" {
		cfg.GRPC.Address = gf.address
	}
	if gf.logLevel != "" {
		cfg.LogLevel = gf.logLevel
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func setupLogging(level string) error {
	v, err := config.ParseLogLevel(level)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	return fs.Set("v", strconv.Itoa(v))
}

func runDaemon(cfg *config.Config) error {
	if err := setupLogging(cfg.LogLevel); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	d, err := daemon.Start(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	klog.InfoS("Stop signal received; shutting down (containers keep running)")
	d.Shutdown(context.Background())
	klog.InfoS("Stopped")
	return nil
}

func fprintln(args ...any) { fmt.Fprintln(os.Stdout, args...) }
