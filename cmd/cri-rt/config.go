package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/cri-rt/cri-rt/pkg/config"
)

func newConfigCommand(gf *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the configuration",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the complete default config, every key commented",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return config.Default().Encode(os.Stdout)
		},
	}, &cobra.Command{
		Use:   "dump",
		Short: "Print the effective config: defaults, then the config file, then flags",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := gf.load(cmd)
			if err != nil {
				return err
			}
			return cfg.Encode(os.Stdout)
		},
	})
	return cmd
}
