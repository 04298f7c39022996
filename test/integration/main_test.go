package integration

import (
	"os"
	"testing"

	"github.com/cri-rt/cri-rt/test/framework"
)

func TestMain(m *testing.M) {
	framework.InstallReaper()
	code := m.Run()
	framework.Cleanup()
	os.Exit(code)
}
