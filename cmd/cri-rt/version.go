package main

import (
	"runtime"

	"github.com/spf13/cobra"

	"github.com/cri-rt/cri-rt/pkg/version"
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fprintln("cri-rt", version.Get())
			fprintln("go", runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
		},
	}
}
