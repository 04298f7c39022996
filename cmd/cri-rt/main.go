// Command cri-rt is a Kubernetes container runtime that speaks the CRI.
package main

import (
	"os"

	"k8s.io/klog/v2"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}
