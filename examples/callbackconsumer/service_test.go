package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/testlog"
)

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

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// env is an emulator with a callback queue.
type env struct {
	em    *emulator.Emulator
	queue string
	logs  *testlog.Buffer
	log   *slog.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	em := emulator.StartTest(t, emulator.Config{})
	queue, err := em.CreateQueue("callbacks")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	return &env{em: em, queue: queue, logs: logs,
		log: logs.Logger()}
}

// startExecution creates a pipeline whose one callback step has the given
// arguments, starts an execution and waits for the step to start.
func (e *env) startExecution(t *testing.T, pipeline string, args map[string]any) (arn, token string) {
	t.Helper()
	if _, err := e.em.CreatePipeline(pipeline, emulator.Definition(emulator.Step{Name: "Process",
		Type: emulator.StepTypeCallback, SqsQueueURL: e.queue, Arguments: args, Outputs: []string{"job_id", "result"}})); err != nil {
		t.Fatal(err)
	}
	arn, err := e.em.StartExecution(pipeline)
	if err != nil {
		t.Fatal(err)
	}
	// The step has started once it is Executing or past it: a running
	// consumer can answer it before this looks (a Failed step was missed
	// this way, and the wait for Executing ran out).
	if err := e.em.WaitStepStatus(testCtx(t, 5*time.Second), arn, "Process", emulator.StatusExecuting,
		emulator.StatusSucceeded, emulator.StatusFailed, emulator.StatusStopped); err != nil {
		t.Fatal(err)
	}
	token, err = e.em.CallbackToken(arn, "Process")
	if err != nil {
		t.Fatal(err)
	}
	return arn, token
}

// consumer is run started in a goroutine.
type consumer struct {
	cancel context.CancelFunc
	done   chan error
}

// startConsumer runs run in a goroutine until shutdown or the test's end.
func (e *env) startConsumer(t *testing.T, reg *jobs, cfg serviceConfig) *consumer {
	t.Helper()
	cfg.QueueURL = e.queue
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 4
	}
	if cfg.Visibility == 0 {
		cfg.Visibility = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &consumer{cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- run(ctx, e.em.SageMakerClient(), e.em.SQSClient(), e.log, reg, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-c.done:
			c.done <- err
		case <-time.After(10 * time.Second):
			t.Error("run did not return")
		}
	})
	return c
}

// shutdown cancels run's context, as SIGTERM does, waits for run to
// return and checks that no goroutine of the consumer is left.
func (c *consumer) shutdown(t *testing.T) {
	t.Helper()
	c.cancel()
	select {
	case err := <-c.done:
		c.done <- err // for Cleanup
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10 seconds")
	}
	checkNoGoroutinesLeft(t)
}

// checkNoGoroutinesLeft fails when a goroutine started by this package or
// by the pipelinestop package (the Consumer) still runs. Goroutines of the
// SDK's HTTP transport and of the emulator are not the service's.
func checkNoGoroutinesLeft(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		left := serviceGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after run returned:\n%s", len(left), strings.Join(left, "\n\n"))
		}
	}
}

// serviceGoroutines returns the stacks of the goroutines started by this
// package or by the pipelinestop package.
func serviceGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		// This package is named by its import path in a test binary.
		if strings.Contains(g, "created by github.com/pipelinestop/pipelinestop.") ||
			strings.Contains(g, "created by github.com/pipelinestop/pipelinestop/examples/callbackconsumer.") ||
			strings.Contains(g, "created by main.") {
			found = append(found, g)
		}
	}
	return found
}

// checkNoToken fails when the logs hold a raw callback token.
func (e *env) checkNoToken(t *testing.T, token string) {
	t.Helper()
	if strings.Contains(e.logs.String(), token) {
		t.Errorf("the logs hold the callback token %s:\n%s", token, e.logs)
	}
	if !strings.Contains(e.logs.String(), `"callback_token":"`+token[:2]+`********"`) {
		t.Errorf("the logs do not name the step by its redacted token:\n%s", e.logs)
	}
}

func TestExecutingAnsweredWithOutputs(t *testing.T) {
	e := newEnv(t)
	reg := newJobs()
	c := e.startConsumer(t, reg, serviceConfig{Drain: time.Second, Work: time.Minute})
	arn, token := e.startExecution(t, "process", map[string]any{"input": "s3://bucket/data.csv", "work_seconds": 0.05})
	st, err := e.em.WaitExecutionStatus(testCtx(t, 5*time.Second), arn, emulator.StatusSucceeded, emulator.StatusFailed)
	if err != nil || st != emulator.StatusSucceeded {
		t.Fatalf("execution %s, %v; log:\n%s", st, err, e.logs)
	}
	answers := e.em.Answers(token)
	if len(answers) != 1 || answers[0].Outcome != emulator.OutcomeSuccess {
		t.Fatalf("answers %+v, want one success", answers)
	}
	if out := answers[0].OutputParameters; out["result"] != "processed s3://bucket/data.csv" || out["job_id"] != "job-0001" {
		t.Errorf("outputs %v", out)
	}
	if s, _ := e.em.StepStatus(arn, "Process"); s != emulator.StatusSucceeded {
		t.Errorf("step %s", s)
	}
	// The leak check sees the running consumer's goroutines (so it would
	// see them left behind).
	if len(serviceGoroutines()) < 2 {
		t.Errorf("the running consumer's goroutines are not found:\n%s", serviceGoroutines())
	}
	c.shutdown(t)
	if running, submitted, _, finished, _ := reg.stats(); running != 0 || submitted != 1 || finished != 1 {
		t.Errorf("jobs: %d running, %d submitted, %d finished", running, submitted, finished)
	}
	e.checkNoToken(t, token)
}

func TestInvalidArgumentsFailTheStep(t *testing.T) {
	e := newEnv(t)
	c := e.startConsumer(t, newJobs(), serviceConfig{Drain: time.Second, Work: time.Minute})
	arn, token := e.startExecution(t, "process", map[string]any{"work_seconds": "soon"})
	st, err := e.em.WaitExecutionStatus(testCtx(t, 5*time.Second), arn, emulator.StatusSucceeded, emulator.StatusFailed)
	if err != nil || st != emulator.StatusFailed {
		t.Fatalf("execution %s, %v", st, err)
	}
	answers := e.em.Answers(token)
	if len(answers) != 1 || answers[0].Outcome != emulator.OutcomeFailure ||
		answers[0].FailureReason != `argument work_seconds: want a number of seconds, got "soon"` {
		t.Errorf("answers %+v", answers)
	}
	c.shutdown(t)
	e.checkNoToken(t, token)
}

func TestStopWhileWorking(t *testing.T) {
	e := newEnv(t)
	reg := newJobs()
	c := e.startConsumer(t, reg, serviceConfig{Drain: time.Second, Work: time.Minute})
	arn, token := e.startExecution(t, "process", map[string]any{"input": "big"})
	eventually(t, "the job", func() bool { running, _, _, _, _ := reg.stats(); return running == 1 })

	s := pipelinestop.New(e.em.SageMakerClient(), func(o *pipelinestop.Options) {
		o.MinDelay, o.MaxDelay, o.StepsInterval = 10*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	})
	out, err := s.StopAndWait(testCtx(t, 10*time.Second), arn)
	if err != nil {
		t.Fatalf("stop: %v; log:\n%s", err, e.logs)
	}
	if out.Status != types.PipelineExecutionStatusStopped {
		t.Fatalf("execution %s, want Stopped", out.Status)
	}
	if s, _ := e.em.StepStatus(arn, "Process"); s != emulator.StatusStopped {
		t.Errorf("step %s, want Stopped", s)
	}
	// Execute's context was canceled, Cleanup canceled the job, and the
	// step was answered once, by the stop.
	if n := e.logs.Count(t, "execute interrupted: job left running for cleanup or the next delivery"); n != 1 {
		t.Errorf("%d interrupted executes, want 1", n)
	}
	if n := e.logs.Count(t, "job canceled: the execution is being stopped"); n != 1 {
		t.Errorf("%d canceled jobs in the log, want 1", n)
	}
	if running, submitted, _, finished, canceled := reg.stats(); running != 0 || submitted != 1 || finished != 0 || canceled != 1 {
		t.Errorf("jobs: %d running, %d submitted, %d finished, %d canceled", running, submitted, finished, canceled)
	}
	answers := e.em.Answers(token)
	if len(answers) != 1 || answers[0].Outcome != emulator.OutcomeSuccess || len(answers[0].OutputParameters) != 0 {
		t.Errorf("answers %+v, want one success without outputs", answers)
	}
	c.shutdown(t)
	e.checkNoToken(t, token)
	// Both messages, Executing and Stopping, were deleted.
	if n := e.queueLength(t); n != 0 {
		t.Errorf("%d messages left on the queue", n)
	}
}

// queueLength returns the visible and in-flight messages on the queue.
func (e *env) queueLength(t *testing.T) int {
	t.Helper()
	out, err := e.em.SQSClient().GetQueueAttributes(testCtx(t, 5*time.Second), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(e.queue),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Attributes {
		var k int
		fmt.Sscan(v, &k)
		n += k
	}
	return n
}

func TestGracefulShutdownDrains(t *testing.T) {
	e := newEnv(t)
	reg := newJobs()
	c := e.startConsumer(t, reg, serviceConfig{Drain: 10 * time.Second, Work: time.Minute})
	arn, token := e.startExecution(t, "process", map[string]any{"work_seconds": 0.3})
	eventually(t, "the job", func() bool { running, _, _, _, _ := reg.stats(); return running == 1 })
	// Shut down while the step works: the drain period lets it finish and
	// answer before run returns.
	c.shutdown(t)
	answers := e.em.Answers(token)
	if len(answers) != 1 || answers[0].Outcome != emulator.OutcomeSuccess {
		t.Fatalf("answers %+v, want the drained step's success", answers)
	}
	st, err := e.em.WaitExecutionStatus(testCtx(t, 5*time.Second), arn, emulator.StatusSucceeded, emulator.StatusFailed)
	if err != nil || st != emulator.StatusSucceeded {
		t.Errorf("execution %s, %v", st, err)
	}
	if n := e.queueLength(t); n != 0 {
		t.Errorf("%d messages left on the queue after the drain", n)
	}
}

func TestShutdownResumesAfterRestart(t *testing.T) {
	e := newEnv(t)
	reg := newJobs()
	first := e.startConsumer(t, reg, serviceConfig{Drain: 100 * time.Millisecond, Work: time.Minute})
	arn, token := e.startExecution(t, "process", map[string]any{"work_seconds": 1})
	eventually(t, "the job", func() bool { running, _, _, _, _ := reg.stats(); return running == 1 })
	// The drain period ends before the job: Execute is canceled, the step
	// is not answered and its message goes back to the queue at once.
	first.shutdown(t)
	if answers := e.em.Answers(token); len(answers) != 0 {
		t.Fatalf("answers %+v after an interrupted step, want none", answers)
	}
	if n := e.logs.Count(t, "execute interrupted: job left running for cleanup or the next delivery"); n != 1 {
		t.Errorf("%d interrupted executes, want 1", n)
	}
	if n := e.queueLength(t); n != 1 {
		t.Errorf("%d messages on the queue, want the interrupted one", n)
	}

	// A restarted consumer gets the message again and resumes the same job.
	second := e.startConsumer(t, reg, serviceConfig{Drain: time.Second, Work: time.Minute})
	st, err := e.em.WaitExecutionStatus(testCtx(t, 5*time.Second), arn, emulator.StatusSucceeded, emulator.StatusFailed)
	if err != nil || st != emulator.StatusSucceeded {
		t.Fatalf("execution %s, %v; log:\n%s", st, err, e.logs)
	}
	second.shutdown(t)
	if running, submitted, resumed, finished, _ := reg.stats(); running != 0 || submitted != 1 || resumed != 1 || finished != 1 {
		t.Errorf("jobs: %d running, %d submitted, %d resumed, %d finished; want one job, resumed once",
			running, submitted, resumed, finished)
	}
	if answers := e.em.Answers(token); len(answers) != 1 || answers[0].OutputParameters["job_id"] != "job-0001" {
		t.Errorf("answers %+v", answers)
	}
	e.checkNoToken(t, token)
}

func TestRunMain(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  "us-east-1",
		"AWS_PROFILE":                 "",
		"AWS_ENDPOINT_URL":            e.em.URL(),
		"AWS_ENDPOINT_URL_SAGEMAKER":  "",
		"AWS_ENDPOINT_URL_SQS":        "",
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &testlog.Buffer{}
	code := make(chan int, 1)
	go func() { code <- runMain(ctx, []string{"-queue", e.queue, "-drain", "1s", "-log-format", "json"}, logs) }()
	arn, _ := e.startExecution(t, "process", map[string]any{"work_seconds": 0})
	if st, err := e.em.WaitExecutionStatus(testCtx(t, 5*time.Second), arn, emulator.StatusSucceeded); err != nil {
		t.Fatalf("execution %s, %v; log:\n%s", st, err, logs)
	}
	cancel()
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("exit status %d; log:\n%s", c, logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runMain did not return")
	}
	if logs.Count(t, "consumer stopped") != 1 {
		t.Errorf("no shutdown record:\n%s", logs)
	}

	t.Run("missing queue", func(t *testing.T) {
		var out bytes.Buffer
		code := runMain(testCtx(t, 10*time.Second), []string{"-queue", e.em.QueueURL("nope")}, &out)
		t.Log(out.String())
		if code != exitError || !strings.Contains(out.String(), "consumer failed") ||
			!strings.Contains(out.String(), "NonExistentQueue") {
			t.Errorf("exit status %d, output %q", code, out.String())
		}
	})
}

func TestUsageErrors(t *testing.T) {
	q := "http://127.0.0.1:4566/123456789012/callbacks"
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no queue":         {nil, "-queue is required"},
		"relative queue":   {[]string{"-queue", "callbacks"}, "want a queue URL"},
		"zero concurrency": {[]string{"-queue", q, "-concurrency", "0"}, "-concurrency 0: want at least 1"},
		"negative drain":   {[]string{"-queue", q, "-drain", "-1s"}, "-drain -1s"},
		"bad visibility":   {[]string{"-queue", q, "-visibility", "100ms"}, "-visibility 100ms: want 1s to 12h"},
		"extra arguments":  {[]string{"-queue", q, "more"}, "unexpected arguments"},
		"bad log format":   {[]string{"-queue", q, "-log-format", "xml"}, "-log-format \"xml\""},
		"unknown flag":     {[]string{"-bogus"}, "flag provided but not defined: -bogus"},
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
}
