package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

func TestDemo(t *testing.T) {
	isolateAWS(t)
	begin := time.Now()
	r := runStopctl(t, t.Context(), "", "demo")
	if r.code != exitOK {
		t.Fatalf("demo: %s", r)
	}
	t.Logf("demo took %s", time.Since(begin).Round(time.Millisecond))
	for _, want := range []string{
		"step Prepare (generic) Succeeded",
		"consumer: Executing message for Approve (token ", // redacted token follows
		"left pending",
		"StopPipelineExecution attempt 1: ConflictException",
		"→ retry with the same token in",
		"StopPipelineExecution accepted on attempt",
		"execution Stopping",
		`callback step "Approve" (Stopping) waits for an answer to its message on http://127.0.0.1:`,
		`Lambda step "Score" (Stopping) runs ` + demoLambdaARN,
		"consumer: Stopping message for Approve",
		"SendPipelineExecutionStepSuccess accepted: the Stopping message is answered",
		"step Score (Lambda) Stopped",
		"execution Stopped",
		"✓ final status Stopped",
		"✓ the callback step was cleaned up and answered exactly once (success)",
		"Timeline (seconds since the demo began, as in the log above)",
		"∥ runs at the same time",
		"A callback step sends its queue a message and waits for an answer",
		"Conflict window: for 600ms after each step change",
		"The execution stopped properly.",
		"EventBridge rule pipelinestop-pipeline-events sends pipeline status events to queue pipeline-events, read by one Watcher",
		"Waiting on events beside polling (two more waits on this execution, from the stop on)",
		"event-driven Wait (Watcher): saw the end ", // lag in ms follows
		" after Stopped, 2 Describe calls\n",        // subscribe-then-describe and the confirmation
		"polling Wait (defaults):     saw the end ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(r.stdout, "✗") || strings.ContainsAny(r.stdout, "\033\r") {
		t.Errorf("demo output has a failed check or terminal control characters (stdout is not a terminal)")
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", r)
	}
}

func TestDemoJSON(t *testing.T) {
	isolateAWS(t)
	r := runStopctl(t, t.Context(), "", "--output", "json", "demo")
	if r.code != exitOK {
		t.Fatalf("demo --output json: %s", r)
	}
	var sum demoSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v\n%s", err, r)
	}
	if !sum.OK || sum.FinalStatus != "Stopped" || sum.ConflictsRetried < 1 || sum.EffectiveStops != 1 || sum.StopTokens != 1 ||
		len(sum.BlockingSeen) != 2 || len(sum.CallbackAnswers) != 1 || sum.CallbackAnswers[0] != "Success" || len(sum.Timeline) == 0 {
		t.Fatalf("summary %+v", sum)
	}
	if len(sum.WaitComparison) != 2 {
		t.Fatalf("wait comparison %+v; want an event-driven and a polling wait", sum.WaitComparison)
	}
	ev, poll := sum.WaitComparison[0], sum.WaitComparison[1]
	if ev.Err != "" || poll.Err != "" || ev.Describes != 2 || poll.Describes < 2 || ev.LagMillis < 0 || poll.LagMillis < 0 {
		t.Fatalf("wait comparison %+v; want both ended, the event-driven one after 2 Describe calls", sum.WaitComparison)
	}
}

func TestDemoUsage(t *testing.T) {
	isolateAWS(t)
	r := runStopctl(t, t.Context(), "", "--endpoint-url", "http://127.0.0.1:1", "demo")
	if r.code != exitUsage {
		t.Fatalf("demo --endpoint-url: %s; want exit 2", r)
	}
	oneStderrLine(t, r, "do not apply")
}

// TestDemoChecksFail makes sure the demo's checks can fail: a story that
// went wrong gives a summary that is not OK and says what went wrong.
func TestDemoChecksFail(t *testing.T) {
	emu := emulator.StartTest(t, emulator.Config{Timing: fastTiming})
	d := &demo{c: newConsole(io.Discard, false), steps: map[string]types.StepStatus{}, token: "AAAAAAAAAA",
		blocking: [][]pipelinestop.BlockingStep{{{Name: demoLambda, Type: "Lambda", FunctionARN: demoLambdaARN}}}}
	arn := "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x"
	sum := d.finish(emu, arn, emu.QueueURL(demoQueue), &pipelinestop.Outcome{Status: types.PipelineExecutionStatusFailed})
	if sum.OK {
		t.Fatalf("summary OK for a failed story: %+v", sum)
	}
	want := []string{"final status Failed", "no ConflictException was retried", "0 effective stops",
		"callback false, Lambda true", "answered [] after 0 cleanups"}
	if len(sum.Problems) != len(want) {
		t.Fatalf("problems %q; want %d", sum.Problems, len(want))
	}
	for i, w := range want {
		if !strings.Contains(sum.Problems[i], w) {
			t.Errorf("problem %d %q lacks %q", i, sum.Problems[i], w)
		}
	}
}
