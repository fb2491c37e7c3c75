package pipelinestoptest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSeparateModule runs the tests of testdata/usermodule, a module of its
// own (example.com/usermodule) that imports pipelinestoptest as a user
// would and stops an execution with a callback step end to end. It proves
// the package is usable from outside this module: an internal import would
// not compile there. The module is copied to a temporary directory with its
// replace directive pointed at this checkout and tidied there, so that a
// dependency bump here does not break it; modules come from the local
// module cache only (GOPROXY=off).
func TestSeparateModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a separate module; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH to build the separate module: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join("testdata", "usermodule")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "go.mod" {
			data = []byte(strings.Replace(string(data), "=> ../../..", "=> "+root, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOTOOLCHAIN=local")
	testArgs := []string{"test", "-count=1"}
	if raceEnabled {
		testArgs = append(testArgs, "-race")
	}
	for _, args := range [][]string{{"mod", "tidy"}, append(testArgs, "./...")} {
		cmd := exec.CommandContext(ctx, goTool, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s in a copy of %s: %v\n%s", strings.Join(args, " "), src, err, out)
		}
		t.Logf("go %s: %s", strings.Join(args, " "), out)
	}
}
