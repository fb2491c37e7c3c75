package pipelinestoptest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSeparateModule runs the tests of testdata/usermodule, a module of its
// own (example.com/usermodule, with a replace directive pointing at this
// checkout) that imports pipelinestoptest as a user would and stops an
// execution with a callback step end to end. It proves the package is
// usable from outside this module: an internal import would not compile
// there. Modules come from the local module cache only (GOPROXY=off).
func TestSeparateModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a separate module; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH to build the separate module: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"test", "-count=1"}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, goTool, append(args, "./...")...)
	cmd.Dir = filepath.Join("testdata", "usermodule")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly", "GOPROXY=off", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in %s: %v\n%s", cmd.Dir, err, out)
	}
	t.Logf("%s", out)
}
