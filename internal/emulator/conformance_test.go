package emulator

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/pipelinestop/pipelinestop/internal/motoserver"
)

// conformanceTimeout bounds each run of a script in testdata/conformance.
const conformanceTimeout = 2 * time.Minute

// boto3Python finds python3 and checks, once, that it imports boto3.
var boto3Python = sync.OnceValues(func() (string, error) {
	py, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(py, "-c", "import boto3, botocore").Run()
	}
	return py, err
})

// requireBoto3 returns python3's path, skipping the test when python3 or
// boto3 is missing, or failing it under motoserver.RequireEnv=1 (the CI
// setting: these tools are preinstalled there). A test calls it first, to
// skip before it sets anything up.
func requireBoto3(t *testing.T) string {
	t.Helper()
	py, err := boto3Python()
	if err != nil {
		if os.Getenv(motoserver.RequireEnv) == "1" {
			t.Fatalf("python3 with boto3 is required (%s=1) but unavailable: %v", motoserver.RequireEnv, err)
		}
		t.Skipf("python3 with boto3 unavailable (%v); install boto3 or set %s=1 to fail instead", err, motoserver.RequireEnv)
	}
	return py
}

// conformanceRun is a script of testdata/conformance running under
// python3 against an emulator.
type conformanceRun struct {
	script string
	out    syncBuffer // may be read while the script still writes
	exited chan error
}

// startConformance starts testdata/conformance/<script> under python3 with
// boto3 (see requireBoto3), with e's endpoint in PIPELINESTOP_ENDPOINT, env
// ("NAME=value") added to the environment and no AWS configuration files.
// ctx's end kills the script.
func startConformance(ctx context.Context, t *testing.T, e *Emulator, script string, env ...string) *conformanceRun {
	t.Helper()
	py := requireBoto3(t)
	r := &conformanceRun{script: script, exited: make(chan error, 1)}
	cmd := exec.CommandContext(ctx, py, "testdata/conformance/"+script)
	cmd.Env = append(os.Environ(), "PIPELINESTOP_ENDPOINT="+e.URL(),
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "PYTHONDONTWRITEBYTECODE=1")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	go func() { r.exited <- cmd.Wait() }()
	return r
}

// wait waits for the script to end, failing the test with its output if it
// failed and logging its output otherwise.
func (r *conformanceRun) wait(t *testing.T) {
	t.Helper()
	if err := <-r.exited; err != nil {
		t.Fatalf("%s: %v\n%s", r.script, err, r.out.String())
	}
	t.Logf("%s", r.out.String())
}

// runConformance runs testdata/conformance/<script> to its end, as
// startConformance starts it, within conformanceTimeout.
func runConformance(t *testing.T, e *Emulator, script string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), conformanceTimeout)
	defer cancel()
	startConformance(ctx, t, e, script, env...).wait(t)
}
