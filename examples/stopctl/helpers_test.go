package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// testTimeout bounds every command run by a test.
const testTimeout = 15 * time.Second

// fastTiming keeps the emulator's simulated work short.
var fastTiming = emulator.Timing{
	StepDuration:  50 * time.Millisecond,
	StopDelay:     30 * time.Millisecond,
	LambdaRunTime: 100 * time.Millisecond,
	LambdaTimeout: 5 * time.Second,
}

// testEnv is an in-process emulator and the global flags that point
// stopctl at it.
type testEnv struct {
	emu    *emulator.Emulator
	global []string
}

// newTestEnv starts an emulator and sets static dummy credentials, with no
// shared config files, so stopctl loads its configuration the standard way
// but talks to the emulator only.
func newTestEnv(t *testing.T, cfg emulator.Config) *testEnv {
	t.Helper()
	if cfg.Timing == (emulator.Timing{}) {
		cfg.Timing = fastTiming
	}
	emu := emulator.StartTest(t, cfg)
	isolateAWS(t)
	return &testEnv{emu: emu, global: []string{"--endpoint-url", emu.URL(), "--region", emu.Region()}}
}

// isolateAWS sets dummy credentials and hides the user's AWS files.
func isolateAWS(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "",
		"AWS_DEFAULT_REGION":          "",
		"AWS_ENDPOINT_URL":            "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
}

// result is what one stopctl run produced.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\n--- stdout:\n" + r.stdout + "--- stderr:\n" + r.stderr
}

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// stopctl runs the command with the test env's global flags first, bounded
// by testTimeout.
func (te *testEnv) stopctl(t *testing.T, args ...string) result {
	t.Helper()
	return runStopctl(t, context.Background(), "", append(append([]string{}, te.global...), args...)...)
}

// runStopctl runs stopctl with the given standard input.
func runStopctl(t *testing.T, ctx context.Context, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	var stdout, stderr syncBuffer
	code := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// startAsync runs stopctl in the background; wait returns its result. The
// command is canceled (as by SIGINT) by cancel.
type asyncRun struct {
	cancel         context.CancelFunc
	done           chan struct{}
	code           int
	stdout, stderr syncBuffer
}

func (te *testEnv) startAsync(t *testing.T, args ...string) *asyncRun {
	t.Helper()
	return startAsync(t, append(append([]string{}, te.global...), args...)...)
}

// startAsync runs stopctl with args in the background, bounded by
// testTimeout.
func startAsync(t *testing.T, args ...string) *asyncRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	a := &asyncRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.code = run(ctx, args, strings.NewReader(""), &a.stdout, &a.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-a.done
	})
	return a
}

// stop cancels the run and waits for it, bounded.
func (a *asyncRun) stop(t *testing.T) result {
	t.Helper()
	a.cancel()
	select {
	case <-a.done:
	case <-time.After(testTimeout):
		t.Fatalf("stopctl did not return within %s of being interrupted", testTimeout)
	}
	return result{code: a.code, stdout: a.stdout.String(), stderr: a.stderr.String()}
}

// waitFor polls cond every 10 ms until it holds, bounded by testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitExecution waits for the execution to reach one of statuses.
func (te *testEnv) waitExecution(t *testing.T, arn string, statuses ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	st, err := te.emu.WaitExecutionStatus(ctx, arn, statuses...)
	if err != nil {
		t.Fatalf("wait for execution %v: %v", statuses, err)
	}
	return st
}

// waitStep waits for a step to reach one of statuses.
func (te *testEnv) waitStep(t *testing.T, arn, step string, statuses ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := te.emu.WaitStepStatus(ctx, arn, step, statuses...); err != nil {
		t.Fatalf("wait for step %s %v: %v", step, statuses, err)
	}
}

// start creates a pipeline with the given steps and starts an execution.
func (te *testEnv) start(t *testing.T, pipeline string, steps ...emulator.Step) string {
	t.Helper()
	if _, err := te.emu.CreatePipeline(pipeline, emulator.Definition(steps...)); err != nil {
		t.Fatalf("create pipeline: %v", err)
	}
	arn, err := te.emu.StartExecution(pipeline)
	if err != nil {
		t.Fatalf("start execution: %v", err)
	}
	return arn
}

// queue creates one of the emulator's queues.
func (te *testEnv) queue(t *testing.T, name string) string {
	t.Helper()
	u, err := te.emu.CreateQueue(name)
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	return u
}

// requireSh skips the test when there is no sh to run hook commands.
func requireSh(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("sh not found: the consume hooks run with sh -c")
	}
}

// oneStderrLine asserts that stderr is exactly one line starting "stopctl: "
// and containing want.
func oneStderrLine(t *testing.T, r result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "stopctl: ") || !strings.Contains(lines[0], want) {
		t.Fatalf("want one stderr line with %q, got:\n%s", want, r)
	}
}

// lastStderrLine asserts that the last stderr line (after any progress
// lines) is the error, starting "stopctl: " and containing want.
func lastStderrLine(t *testing.T, r result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "stopctl: ") || !strings.Contains(last, want) {
		t.Fatalf("want a last stderr line with %q, got:\n%s", want, r)
	}
	for _, l := range lines[:len(lines)-1] {
		if strings.HasPrefix(l, "stopctl: ") {
			t.Fatalf("more than one error line:\n%s", r)
		}
	}
}
