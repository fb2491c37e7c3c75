package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/testlog"
)

// fastPolls makes the Stopper poll and retry quickly, for the emulator.
func fastPolls(o *pipelinestop.Options) {
	o.MinDelay, o.MaxDelay, o.StepsInterval = 10*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	o.RetryMinDelay, o.RetryMaxDelay = 10*time.Millisecond, 100*time.Millisecond
}

// eventually polls cond every few milliseconds for up to 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// testCtx returns a context that ends after d, at the latest with the test.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// service is run started in a goroutine.
type service struct {
	cancel context.CancelFunc
	done   chan struct{}
	sum    summary
	err    error
}

// startService runs run in a goroutine until stop or the test's end.
func startService(t *testing.T, em *emulator.Emulator, logs *testlog.Buffer, cfg serviceConfig) *service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &service{cancel: cancel, done: make(chan struct{})}
	log := logs.Logger()
	go func() {
		defer close(s.done)
		s.sum, s.err = run(ctx, em.SageMakerClient(), log, cfg)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Error("run did not return")
		}
	})
	return s
}

// wait waits for run to return, without canceling it.
func (s *service) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10 seconds")
	}
}

// shutdown cancels run's context, as SIGTERM does, and waits for run.
func (s *service) shutdown(t *testing.T) {
	t.Helper()
	s.cancel()
	s.wait(t)
}

func status(t *testing.T, em *emulator.Emulator, arn string) string {
	t.Helper()
	st, _, err := em.ExecutionStatus(arn)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func createPipeline(t *testing.T, em *emulator.Emulator, name string, steps ...emulator.Step) {
	t.Helper()
	if _, err := em.CreatePipeline(name, emulator.Definition(steps...)); err != nil {
		t.Fatal(err)
	}
}

func startExecution(t *testing.T, em *emulator.Emulator, pipeline string) string {
	t.Helper()
	arn, err := em.StartExecution(pipeline)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

func TestShutdownStopsWhatItStarted(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: 50 * time.Millisecond})
	em.SetStepTiming("Notify", emulator.StepTiming{Duration: emulator.Forever})
	queue, err := em.CreateQueue("callbacks")
	if err != nil {
		t.Fatal(err)
	}
	createPipeline(t, em, "train", emulator.Step{Name: "Train", Type: "Training"})
	createPipeline(t, em, "approve", emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, SqsQueueURL: queue})
	createPipeline(t, em, "notify", emulator.Step{Name: "Notify", Type: emulator.StepTypeLambda})
	// Executions started elsewhere, which the service looks after: one held
	// by a callback step nobody answers, one by a Lambda step that runs on,
	// and one that does not exist.
	callbackARN := startExecution(t, em, "approve")
	lambdaARN := startExecution(t, em, "notify")
	missingARN := "arn:aws:sagemaker:us-east-1:123456789012:pipeline/train/execution/doesnotexist"
	ctx := testCtx(t, 10*time.Second)
	for arn, step := range map[string]string{callbackARN: "Approve", lambdaARN: "Notify"} {
		if err := em.WaitStepStatus(ctx, arn, step, emulator.StatusExecuting); err != nil {
			t.Fatal(err)
		}
	}

	logs := &testlog.Buffer{}
	s := startService(t, em, logs, serviceConfig{
		Pipeline:       "train",
		Count:          3,
		ExecutionARNs:  []string{callbackARN, lambdaARN, missingARN},
		Grace:          1500 * time.Millisecond,
		Concurrency:    2,
		Wait:           true,
		StopperOptions: []func(*pipelinestop.Options){fastPolls},
	})
	eventually(t, "three started executions", func() bool {
		return len(logs.Records(t, "started execution")) == 3
	})
	s.shutdown(t)
	if s.err != nil {
		t.Fatalf("run: %v", s.err)
	}

	if len(s.sum.Started) != 3 {
		t.Fatalf("started %v, want 3 executions", s.sum.Started)
	}
	if !slices.Equal(sorted(s.sum.Stopped), sorted(s.sum.Started)) {
		t.Errorf("stopped %v, want the started executions %v", s.sum.Stopped, s.sum.Started)
	}
	if want := []string{callbackARN, lambdaARN, missingARN}; !slices.Equal(s.sum.NotStopped, want) {
		t.Errorf("not stopped %v, want %v", s.sum.NotStopped, want)
	}
	for _, arn := range s.sum.Started {
		if st := status(t, em, arn); st != emulator.StatusStopped {
			t.Errorf("%s is %s, want Stopped", arn, st)
		}
		logs.One(t, "stopped execution", "execution_arn", arn)
	}
	for _, arn := range []string{callbackARN, lambdaARN} {
		// The stop was accepted: the execution stops once its step ends.
		if st := status(t, em, arn); st != emulator.StatusStopping {
			t.Errorf("%s is %s, want Stopping", arn, st)
		}
	}
	for _, arn := range []string{callbackARN, lambdaARN, s.sum.Started[0]} {
		if n := em.EffectiveStops(arn); n != 1 {
			t.Errorf("%s: %d effective stops, want 1", arn, n)
		}
	}

	// The log says what could not be stopped, and why.
	for arn, want := range map[string]string{
		callbackARN: `callback step "Approve" (Stopping) waits for an answer to its message on ` + queue,
		lambdaARN:   `Lambda step "Notify" (Stopping) runs arn:aws:lambda:`,
	} {
		rec := logs.One(t, "execution not stopped in time", "execution_arn", arn)
		steps, _ := rec["blocking_steps"].([]any)
		if len(steps) != 1 || !strings.HasPrefix(fmt.Sprint(steps[0]), want) {
			t.Errorf("%s: blocking steps %q, want one starting %q", arn, steps, want)
		}
		if rec["status"] != "Stopping" || !strings.Contains(fmt.Sprint(rec["reason"]), "grace period ended") {
			t.Errorf("%s: record %v", arn, rec)
		}
	}
	rec := logs.One(t, "could not stop execution", "execution_arn", missingARN)
	if rec["reason"] != "no such execution in this account and Region" ||
		!strings.Contains(fmt.Sprint(rec["error"]), "ResourceNotFound") {
		t.Errorf("missing execution: record %v", rec)
	}
	if n := len(logs.Records(t, "pipelinestop status")); n != 0 {
		t.Errorf("%d library status records without Verbose", n)
	}
	done := logs.Records(t, "shutdown hook done")
	if len(done) != 1 || done[0]["stopped"] != 3.0 || done[0]["not_stopped"] != 3.0 {
		t.Errorf("summary records %v", done)
	}
}

func TestEverythingEndsOnItsOwn(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{Timing: emulator.Timing{StepDuration: 50 * time.Millisecond}})
	createPipeline(t, em, "quick", emulator.Step{Name: "Prepare"}, emulator.Step{Name: "Train", DependsOn: []string{"Prepare"}})
	logs := &testlog.Buffer{}
	s := startService(t, em, logs, serviceConfig{Pipeline: "quick", Count: 2, Grace: time.Second, Concurrency: 1,
		Wait: true, StopperOptions: []func(*pipelinestop.Options){fastPolls}})
	s.wait(t)
	if s.err != nil {
		t.Fatal(s.err)
	}
	if len(s.sum.Started) != 2 || !slices.Equal(sorted(s.sum.Ended), sorted(s.sum.Started)) ||
		len(s.sum.Stopped)+len(s.sum.NotStopped) != 0 {
		t.Errorf("summary %+v: want two executions that ended on their own", s.sum)
	}
	for _, arn := range s.sum.Started {
		if st := status(t, em, arn); st != emulator.StatusSucceeded {
			t.Errorf("%s is %s", arn, st)
		}
		logs.One(t, "execution ended", "execution_arn", arn)
	}
	if n := em.Requests("StopPipelineExecution"); n != 0 {
		t.Errorf("%d stops sent for executions that ended on their own", n)
	}
}

func TestStartFailureStopsWhatItLooksAfter(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: -1})
	createPipeline(t, em, "train", emulator.Step{Name: "Train", Type: "Training"})
	adopted := startExecution(t, em, "train")
	logs := &testlog.Buffer{}
	s := startService(t, em, logs, serviceConfig{Pipeline: "no-such-pipeline", Count: 2, ExecutionARNs: []string{adopted},
		Grace: 2 * time.Second, Concurrency: 1, Wait: true, StopperOptions: []func(*pipelinestop.Options){fastPolls}})
	s.wait(t)
	if !errors.Is(s.err, pipelinestop.ErrNotFound) || !strings.Contains(s.err.Error(), "no-such-pipeline") {
		t.Fatalf("run: %v, want ErrNotFound naming the pipeline", s.err)
	}
	if len(s.sum.Started) != 0 || !slices.Equal(s.sum.Stopped, []string{adopted}) {
		t.Errorf("summary %+v: want the adopted execution stopped", s.sum)
	}
	if st := status(t, em, adopted); st != emulator.StatusStopped {
		t.Errorf("adopted execution is %s", st)
	}
}

func TestStopWithoutWait(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: emulator.Forever})
	createPipeline(t, em, "train", emulator.Step{Name: "Train", Type: "Training"})
	logs := &testlog.Buffer{}
	s := startService(t, em, logs, serviceConfig{Pipeline: "train", Count: 1, Grace: time.Second, Concurrency: 1,
		Verbose: true, StopperOptions: []func(*pipelinestop.Options){fastPolls}})
	eventually(t, "a started execution", func() bool { return len(logs.Records(t, "started execution")) == 1 })
	s.shutdown(t)
	if s.err != nil || len(s.sum.Stopped) != 1 || len(s.sum.NotStopped) != 0 {
		t.Fatalf("summary %+v, %v", s.sum, s.err)
	}
	// Without -wait the service reports the accepted stop and does not
	// wait for the long StopDelay.
	rec := logs.One(t, "stop accepted", "execution_arn", s.sum.Started[0])
	if rec["status"] != "Stopping" {
		t.Errorf("record %v", rec)
	}
	// Verbose: the library's own events are logged too.
	logs.One(t, "pipelinestop stopped", "execution_arn", s.sum.Started[0])
}

func TestLambdaTimeoutWhileStopping(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	// The function runs on; the step times out a second after it started.
	em.SetStepTiming("Notify", emulator.StepTiming{Duration: emulator.Forever, LambdaTimeout: time.Second})
	createPipeline(t, em, "notify", emulator.Step{Name: "Notify", Type: emulator.StepTypeLambda})
	logs := &testlog.Buffer{}
	s := startService(t, em, logs, serviceConfig{Pipeline: "notify", Count: 1, Grace: 5 * time.Second, Concurrency: 1,
		Wait: true, StopperOptions: []func(*pipelinestop.Options){fastPolls}})
	eventually(t, "a started execution", func() bool { return len(logs.Records(t, "started execution")) == 1 })
	s.shutdown(t)
	if s.err != nil || len(s.sum.Stopped) != 1 {
		t.Fatalf("summary %+v, %v", s.sum, s.err)
	}
	arn := s.sum.Started[0]
	if st := status(t, em, arn); st != emulator.StatusFailed {
		t.Fatalf("execution %s, want Failed", st)
	}
	rec := logs.One(t, "execution failed while stopping", "execution_arn", arn)
	if fmt.Sprint(rec["failure_reason"]) != emulator.ExecutionFailureReason {
		t.Errorf("record %v", rec)
	}
}

func TestShutdownBeforeAnyStart(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	createPipeline(t, em, "train", emulator.Step{Name: "Train", Type: "Training"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	logs := &testlog.Buffer{}
	sum, err := run(ctx, em.SageMakerClient(), slog.New(slog.NewJSONHandler(logs, nil)),
		serviceConfig{Pipeline: "train", Count: 2, Grace: time.Second, Concurrency: 1})
	if err != nil || len(sum.Started) != 0 {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	if n := em.Requests("StartPipelineExecution"); n != 0 {
		t.Errorf("%d starts after the shutdown signal", n)
	}
	if len(logs.Records(t, "shut down before every execution was started")) != 1 ||
		len(logs.Records(t, "no execution started: nothing to look after")) != 1 {
		t.Errorf("log:\n%s", logs)
	}
}

func TestWhyNotStopped(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&pipelinestop.WaitError{Err: context.DeadlineExceeded}, "still Stopping when the grace period ended"},
		{&pipelinestop.Error{Kind: pipelinestop.ErrNotFound}, "no such execution"},
		{fmt.Errorf("stop pipeline execution: %w", &pipelinestop.ARNError{}), "not a pipeline execution ARN"},
		{&pipelinestop.Error{Kind: pipelinestop.ErrConflict, Canceled: context.DeadlineExceeded}, "grace period ended before SageMaker accepted"},
		{&pipelinestop.Error{Kind: pipelinestop.ErrThrottled}, "kept refusing the stop"},
		{&pipelinestop.Error{Kind: pipelinestop.ErrUnavailable}, "kept refusing the stop"},
		{&pipelinestop.Error{Code: "AccessDeniedException"}, "SageMaker refused the stop"},
	} {
		if got := whyNotStopped(tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("whyNotStopped(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestRunMain(t *testing.T) {
	for _, viaFlag := range []bool{false, true} {
		t.Run(fmt.Sprintf("endpointFlag=%v", viaFlag), func(t *testing.T) {
			em := emulator.StartTest(t, emulator.Config{})
			em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: -1})
			createPipeline(t, em, "train", emulator.Step{Name: "Train", Type: "Training"})
			isolateAWSConfig(t)
			args := []string{"-pipeline", "train", "-count", "2", "-grace", "5s", "-log-format", "json"}
			if viaFlag {
				// The flag wins over the environment.
				t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
				args = append(args, "-endpoint-url", em.URL())
			} else {
				t.Setenv("AWS_ENDPOINT_URL", em.URL())
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := &testlog.Buffer{}
			code := make(chan int, 1)
			go func() { code <- runMain(ctx, args, logs) }()
			eventually(t, "two started executions", func() bool { return len(logs.Records(t, "started execution")) == 2 })
			cancel()
			select {
			case c := <-code:
				if c != exitOK {
					t.Fatalf("exit status %d; log:\n%s", c, logs)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("runMain did not return")
			}
			for _, rec := range logs.Records(t, "started execution") {
				arn := fmt.Sprint(rec["execution_arn"])
				if st := status(t, em, arn); st != emulator.StatusStopped {
					t.Errorf("%s is %s", arn, st)
				}
			}
		})
	}
}

// isolateAWSConfig points the SDK at no shared files and at static
// test credentials and Region, so the host's configuration does not leak
// into the test.
func isolateAWSConfig(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  "us-east-1",
		"AWS_PROFILE":                 "",
		"AWS_ENDPOINT_URL_SAGEMAKER":  "",
		"AWS_ENDPOINT_URL_SQS":        "",
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
}

func TestUsageErrors(t *testing.T) {
	valid := "arn:aws:sagemaker:us-east-1:123456789012:pipeline/train/execution/abc123"
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"nothing to do":    {nil, "nothing to do"},
		"zero count":       {[]string{"-pipeline", "p", "-count", "0"}, "-count 0: want at least 1"},
		"zero grace":       {[]string{"-grace", "0s", valid}, "-grace 0s: want a positive duration"},
		"bad concurrency":  {[]string{"-concurrency", "0", valid}, "-concurrency 0"},
		"bad ARN":          {[]string{valid, "arn:aws:sagemaker:us-east-1:1234:pipeline/p/execution/x"}, "invalid pipeline execution ARN"},
		"bad log format":   {[]string{"-log-format", "xml", valid}, "-log-format \"xml\""},
		"unknown flag":     {[]string{"-bogus", valid}, "flag provided but not defined: -bogus"},
		"bad grace syntax": {[]string{"-grace", "soon", valid}, "invalid value \"soon\" for flag -grace"},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if code := runMain(context.Background(), tc.args, &out); code != exitUsage {
				t.Errorf("exit status %d, want %d", code, exitUsage)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("output %q does not say %q", out.String(), tc.want)
			}
		})
	}
	_, err := parseFlags([]string{"not-an-arn"}, &bytes.Buffer{})
	if !errors.Is(err, pipelinestop.ErrInvalidARN) {
		t.Errorf("parseFlags: %v, want ErrInvalidARN", err)
	}
	var out bytes.Buffer
	if code := runMain(context.Background(), []string{"-h"}, &out); code != exitOK || !strings.Contains(out.String(), "-grace") {
		t.Errorf("-h: exit status %d, output %q", code, out.String())
	}
}
