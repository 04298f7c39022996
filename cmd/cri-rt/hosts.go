package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/cri-rt/cri-rt/pkg/registry/hosts"
)

func newHostsCommand(gf *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "hosts IMAGE",
		Short: "Print the registry endpoints a pull of IMAGE tries, in order, with TLS and auth (secrets masked)",
		Example: "  cri-rt hosts docker.io/library/nginx:alpine\n" +
			"  cri-rt hosts --config /etc/cri-rt/config.toml registry.k8s.io/pause:3.10",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := gf.load(cmd)
			if err != nil {
				return err
			}
			return hosts.New(cfg.Registry).Describe(os.Stdout, args[0])
		},
	}
}
