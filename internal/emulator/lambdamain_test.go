package emulator

import (
	"fmt"
	"os"
	"testing"
)

// testBinDir holds binaries built once for the package's tests.
var testBinDir string

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) != "" {
		os.Exit(serveForTest())
	}
	dir, err := os.MkdirTemp("", "emulator-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testBinDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
