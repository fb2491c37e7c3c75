package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// longStep is a generic step that runs until it is stopped.
const longStep = "Train"

func newStopEnv(t *testing.T) *testEnv {
	t.Helper()
	te := newTestEnv(t, emulator.Config{})
	te.emu.SetStepTiming(longStep, emulator.StepTiming{Duration: emulator.Forever})
	return te
}

// running starts an execution of a pipeline whose step runs until stopped.
func (te *testEnv) running(t *testing.T, pipeline string) string {
	t.Helper()
	return te.start(t, pipeline, emulator.Step{Name: longStep})
}

func TestStopSingle(t *testing.T) {
	te := newStopEnv(t)
	arn := te.running(t, "stop-single")
	r := te.stopctl(t, "stop", arn)
	if r.code != exitOK || !strings.Contains(r.stdout, arn+"  stop accepted after 1 attempt") {
		t.Fatalf("stop: %s", r)
	}
	if n := te.emu.EffectiveStops(arn); n != 1 {
		t.Fatalf("%d effective stops; want 1", n)
	}
	te.waitExecution(t, arn, emulator.StatusStopped)
	// A repeated stop sends the same derived token: the same request.
	if r := te.stopctl(t, "stop", arn); r.code != exitOK {
		t.Fatalf("second stop: %s", r)
	}
	if tokens := te.emu.StopTokens(arn); len(tokens) != 1 || tokens[0] != pipelinestop.DeriveToken("StopPipelineExecution", arn) {
		t.Fatalf("stop tokens %v; want one, derived from the ARN", tokens)
	}
	// The replayed stop reports the status it saw: Stopped, not Stopping.
	r = te.stopctl(t, "stop", "--output", "json", arn)
	var out struct {
		Executions []struct {
			Accepted   bool   `json:"stopAccepted"`
			StopStatus string `json:"statusAtStop"`
		} `json:"executions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != exitOK || len(out.Executions) != 1 ||
		!out.Executions[0].Accepted || out.Executions[0].StopStatus != emulator.StatusStopped {
		t.Fatalf("replayed stop (%v): %s; want accepted with statusAtStop Stopped", err, r)
	}
	if r := te.stopctl(t, "stop", arn); !strings.Contains(r.stdout, "stop accepted after 1 attempt (status Stopped)") {
		t.Fatalf("replayed stop: %s", r)
	}
}

func TestStopWaitJSON(t *testing.T) {
	te := newStopEnv(t)
	arn := te.running(t, "stop-wait-json")
	r := te.stopctl(t, "stop", "--wait", "--output", "json", arn)
	if r.code != exitOK {
		t.Fatalf("stop --wait --output json: %s", r)
	}
	var out struct {
		Executions []struct {
			ExecutionARN string `json:"executionArn"`
			Token        string `json:"clientRequestToken"`
			Accepted     bool   `json:"stopAccepted"`
			Status       string `json:"status"`
			ExitCode     int    `json:"exitCode"`
		} `json:"executions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r)
	}
	if len(out.Executions) != 1 || out.Executions[0].ExecutionARN != arn || !out.Executions[0].Accepted ||
		out.Executions[0].Status != "Stopped" || out.Executions[0].ExitCode != 0 || len(out.Executions[0].Token) < 32 {
		t.Fatalf("JSON %+v; want the execution accepted and Stopped", out)
	}
	// Progress goes to stderr as plain lines (not a terminal).
	if !strings.Contains(r.stderr, "status Stopped") || strings.Contains(r.stderr, "\r") {
		t.Fatalf("stderr lacks plain progress lines:\n%s", r.stderr)
	}
}

func TestStopPipeline(t *testing.T) {
	te := newStopEnv(t)
	a := te.running(t, "stop-pipeline")
	b, err := te.emu.StartExecution("stop-pipeline")
	if err != nil {
		t.Fatal(err)
	}
	r := te.stopctl(t, "stop", "--pipeline", "stop-pipeline", "--wait", "--concurrency", "2")
	if r.code != exitOK {
		t.Fatalf("stop --pipeline: %s", r)
	}
	for _, arn := range []string{a, b} {
		if !strings.Contains(r.stdout, arn+"  stop accepted after 1 attempt; Stopped after") {
			t.Errorf("stdout lacks %s stopped:\n%s", arn, r)
		}
		if st, _, _ := te.emu.ExecutionStatus(arn); st != emulator.StatusStopped {
			t.Errorf("%s is %s; want Stopped", arn, st)
		}
	}
	// Nothing left to stop: exit 0, or 4 with --fail-if-not-running.
	if r := te.stopctl(t, "stop", "--pipeline", "stop-pipeline"); r.code != exitOK || !strings.Contains(r.stdout, "nothing to stop") {
		t.Fatalf("stop --pipeline with nothing Executing: %s", r)
	}
	r = te.stopctl(t, "stop", "--pipeline", "stop-pipeline", "--fail-if-not-running")
	if r.code != exitNotRunning {
		t.Fatalf("stop --pipeline --fail-if-not-running: %s; want exit 4", r)
	}
	oneStderrLine(t, r, "has no Executing execution")
}

func TestStopNotRunning(t *testing.T) {
	te := newStopEnv(t)
	arn := te.start(t, "stop-done", emulator.Step{Name: "Quick"})
	te.waitExecution(t, arn, emulator.StatusSucceeded)
	r := te.stopctl(t, "stop", arn)
	if r.code != exitOK || !strings.Contains(r.stdout, "not running (Succeeded): nothing to stop") {
		t.Fatalf("stop of a Succeeded execution: %s", r)
	}
	r = te.stopctl(t, "stop", "--fail-if-not-running", arn)
	if r.code != exitNotRunning {
		t.Fatalf("stop --fail-if-not-running: %s; want exit 4", r)
	}
	lastStderrLine(t, r, "nothing to stop")
}

func TestStopUsage(t *testing.T) {
	isolateAWS(t)
	valid := "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stop", "arn:aws:sagemaker:us-east-1:123:pipeline/p/execution/x"}, "account"},
		{[]string{"stop", "not-an-arn"}, "not-an-arn"},
		{[]string{"stop"}, "give execution ARNs or --pipeline NAME"},
		{[]string{"stop", "--concurrency", "0", valid}, "--concurrency must be at least 1"},
		{[]string{"stop", "--token", "short", valid}, "--token"},
		{[]string{"stop", "--bogus", valid}, "flag provided but not defined: -bogus"},
		{[]string{"--output", "yaml", "stop", valid}, "--output must be text or json"},
		{[]string{"wait", valid, valid}, "exactly one execution ARN"},
		{[]string{"status"}, "exactly one execution ARN"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		r := runStopctl(t, t.Context(), "", tc.args...)
		if r.code != exitUsage {
			t.Errorf("%v: %s; want exit 2", tc.args, r)
			continue
		}
		oneStderrLine(t, r, tc.want)
		if r.stdout != "" {
			t.Errorf("%v: stdout %q; want nothing", tc.args, r.stdout)
		}
	}
	if r := runStopctl(t, t.Context(), ""); r.code != exitUsage || !strings.Contains(r.stderr, "Usage: stopctl") {
		t.Errorf("no command: %s; want usage and exit 2", r)
	}
	if r := runStopctl(t, t.Context(), "", "stop", "-h"); r.code != exitOK || !strings.Contains(r.stdout, "-fail-if-not-running") {
		t.Errorf("stop -h: %s; want the flags and exit 0", r)
	}
}

// stoppingWithCallback starts an execution with a callback step that
// nobody answers and stops it: it stays Stopping.
func (te *testEnv) stoppingWithCallback(t *testing.T, name string) (arn, queueURL string) {
	t.Helper()
	arn, queueURL = te.callbackPipeline(t, name)
	te.waitStep(t, arn, "Approve", emulator.StatusExecuting)
	if r := te.stopctl(t, "stop", arn); r.code != exitOK {
		t.Fatalf("stop: %s", r)
	}
	te.waitExecution(t, arn, emulator.StatusStopping)
	return arn, queueURL
}

func TestWaitTimeoutNamesBlockingStep(t *testing.T) {
	te := newTestEnv(t, emulator.Config{})
	arn, q := te.stoppingWithCallback(t, "wait-timeout")
	r := te.stopctl(t, "wait", "--timeout", "700ms", arn)
	if r.code != exitTimeout {
		t.Fatalf("wait --timeout: %s; want exit 3", r)
	}
	// The progress lines name it too; the last line is the error.
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	for _, want := range []string{"stopctl: wait for pipeline execution", "last status Stopping", `callback step "Approve"`, q, "timed out after 700ms"} {
		if !strings.Contains(last, want) {
			t.Errorf("error line %q lacks %q", last, want)
		}
	}
	if strings.Contains(last, "context deadline exceeded") {
		t.Errorf("error line %q speaks of the context, not of the timeout", last)
	}
	if tok := te.token(t, arn); strings.Contains(r.stderr+r.stdout, tok) {
		t.Fatalf("output holds the callback token:\n%s", r)
	}

	// Once the step is answered the wait ends Stopped.
	tok := te.token(t, arn)
	if r := te.stopctl(t, "ack", "--token", tok, "--success"); r.code != exitOK {
		t.Fatalf("ack: %s", r)
	}
	if r := te.stopctl(t, "wait", "--timeout", "5s", arn); r.code != exitOK || !strings.Contains(r.stdout, "Stopped after") {
		t.Fatalf("wait: %s", r)
	}
}

func TestStatus(t *testing.T) {
	te := newTestEnv(t, emulator.Config{})
	arn, q := te.stoppingWithCallback(t, "status")
	r := te.stopctl(t, "status", arn)
	if r.code != exitOK {
		t.Fatalf("status: %s", r)
	}
	for _, want := range []string{"Status     Stopping", "Approve", "Callback", "Stopping is held by:", `callback step "Approve"`, q} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	r = te.stopctl(t, "--output", "json", "status", arn)
	var rep statusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != exitOK {
		t.Fatalf("status --output json: %v\n%s", err, r)
	}
	if rep.Status != "Stopping" || len(rep.Steps) != 1 || rep.Steps[0].QueueURL != q || len(rep.Blocking) != 1 {
		t.Fatalf("status JSON %+v; want Stopping, one step with its queue, one blocking", rep)
	}
	// The blocking step is an object, its sentence one field of it.
	if b := rep.Blocking[0]; b.Name != "Approve" || b.Type != "Callback" || b.Status != "Executing" && b.Status != "Stopping" ||
		b.QueueURL != q || !strings.Contains(b.Description, `callback step "Approve"`) {
		t.Fatalf("status JSON blocking %+v; want the Approve callback step with its queue and sentence", b)
	}
	if tok := te.token(t, arn); strings.Contains(r.stdout, tok) {
		t.Fatalf("status prints the callback token:\n%s", r.stdout)
	}
	// An unknown execution is an error (exit 1), in one line.
	r = te.stopctl(t, "status", strings.Replace(arn, "/execution/", "/execution/nope", 1))
	if r.code != exitError {
		t.Fatalf("status of an unknown execution: %s; want exit 1", r)
	}
	oneStderrLine(t, r, "ResourceNotFound")
}

func TestAck(t *testing.T) {
	te := newTestEnv(t, emulator.Config{})
	t.Run("success", func(t *testing.T) {
		arn, _ := te.callbackPipeline(t, "ack-success")
		tok := te.token(t, arn)
		r := te.stopctl(t, "ack", "--token", tok, "--success", "--param", "verdict=approved")
		if r.code != exitOK || !strings.Contains(r.stdout, "with success (1 output)") || strings.Contains(r.stdout, tok) {
			t.Fatalf("ack --success: %s", r)
		}
		te.waitExecution(t, arn, emulator.StatusSucceeded)
		answers := te.emu.Answers(tok)
		if len(answers) != 1 || answers[0].Outcome != emulator.OutcomeSuccess || answers[0].OutputParameters["verdict"] != "approved" {
			t.Fatalf("answers %+v; want one success with verdict=approved", answers)
		}
		// The same answer again is the same request: success.
		r = te.stopctl(t, "ack", "--token", tok, "--success", "--param", "verdict=approved")
		if r.code != exitOK || !strings.Contains(r.stdout, "with success (1 output)") {
			t.Fatalf("the same ack again: %s", r)
		}
		// A different answer later was not taken: exit 1, and say why.
		for _, args := range [][]string{
			{"--failure", "--reason", "too late"},
			{"--success", "--param", "verdict=rejected"},
		} {
			r = te.stopctl(t, append([]string{"ack", "--token", tok}, args...)...)
			if r.code != exitError || strings.Contains(r.stdout, "answered callback step") || strings.Contains(r.stderr, tok) {
				t.Fatalf("late ack %v: %s; want exit 1 and no success", args, r)
			}
			oneStderrLine(t, r, "already answered with a different answer")
		}
		if answers := te.emu.Answers(tok); len(answers) != 2 || answers[0].OutputParameters["verdict"] != "approved" || !answers[1].Replay {
			t.Fatalf("answers %+v; want the first success and its replay", answers)
		}
	})
	t.Run("failure-token-from-stdin", func(t *testing.T) {
		arn, _ := te.callbackPipeline(t, "ack-failure")
		tok := te.token(t, arn)
		r := runStopctl(t, t.Context(), tok+"\n", append(te.global, "--output", "json", "ack", "--token", "-", "--failure", "--reason", "rejected by review")...)
		if r.code != exitOK {
			t.Fatalf("ack --failure: %s", r)
		}
		var out struct {
			Token  string `json:"token"`
			Answer string `json:"answer"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Answer != "failure" || out.Token == tok {
			t.Fatalf("ack JSON %q (%v); want answer failure and a redacted token", r.stdout, err)
		}
		if st := te.waitExecution(t, arn, emulator.StatusFailed); st != emulator.StatusFailed {
			t.Fatalf("execution %s", st)
		}
		if a := te.emu.Answers(tok); len(a) != 1 || a[0].FailureReason != "rejected by review" {
			t.Fatalf("answers %+v", a)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"ack", "--success"}, "give --token, or --execution ARN --step NAME"},
			{[]string{"ack", "--token", "abcdefghij", "--execution", "arn:x", "--step", "s", "--success"}, "not both"},
			{[]string{"ack", "--step", "Approve", "--success"}, "--execution and --step go together"},
			{[]string{"ack", "--token", "abcdefghij"}, "exactly one of --success and --failure"},
			{[]string{"ack", "--token", "abcdefghij", "--success", "--failure"}, "exactly one of --success and --failure"},
			{[]string{"ack", "--token", "abcdefghij", "--failure", "--param", "a=b"}, "--param goes with --success only"},
			{[]string{"ack", "--token", "abcdefghij", "--success", "--param", "novalue"}, "want NAME=VALUE"},
			{[]string{"ack", "--token", "secret-token-12", "--success"}, "ack: --token: "},
		} {
			r := te.stopctl(t, tc.args...)
			if r.code != exitUsage {
				t.Errorf("%v: %s; want exit 2", tc.args, r)
				continue
			}
			oneStderrLine(t, r, tc.want)
			if strings.Contains(r.stderr, "secret-token-12") {
				t.Errorf("%v: the error shows the token: %s", tc.args, r.stderr)
			}
		}
	})
}
