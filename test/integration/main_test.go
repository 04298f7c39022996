package integration

import (
	"os"
	"testing"

	"github.com/cri-rt/cri-rt/test/framework"
)

func TestMain(m *testing.M) {
	framework.InstallReaper()
	os.Exit(m.Run())
}
