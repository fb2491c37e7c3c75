package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// TestEventsSetupAndWait: events setup routes SageMaker's events to a
// queue (twice: it is idempotent), and stop --wait --events-queue waits on
// them: after the stop, only the first poll and the confirmation are
// Describe calls, and no steps are listed.
func TestEventsSetupAndWait(t *testing.T) {
	te := newStopEnv(t)
	for range 2 {
		if r := te.stopctl(t, "events", "setup", "--queue", "pipeline-events"); r.code != exitOK ||
			!strings.Contains(r.stdout, "sends SageMaker pipeline status events to queue") {
			t.Fatalf("events setup: %s", r)
		}
	}
	// The step takes 1.5 s to stop: polling would make 4 or more Describe
	// calls (0, 0.5, 1.1 and 1.8 s), events make 2.
	te.emu.SetStepTiming(longStep, emulator.StepTiming{Duration: emulator.Forever, StopDelay: 1500 * time.Millisecond})
	arn := te.running(t, "evented")
	describes, lists := te.emu.Requests("DescribePipelineExecution"), te.emu.Requests("ListPipelineExecutionSteps")
	r := te.stopctl(t, "stop", "--wait", "--events-queue", "pipeline-events", "--timeout", "30s", arn)
	if r.code != exitOK || !strings.Contains(r.stdout, "Stopped") {
		t.Fatalf("stop --wait --events-queue: %s", r)
	}
	// Stop's own status lookup, the wait's first poll, and the poll that
	// confirms the terminal event.
	if d, l := te.emu.Requests("DescribePipelineExecution")-describes, te.emu.Requests("ListPipelineExecutionSteps")-lists; d > 3 || l != 0 {
		t.Errorf("%d Describe and %d List calls; want at most 3 and 0", d, l)
	}
}

func TestEventsSetupDryRun(t *testing.T) {
	te := newStopEnv(t)
	r := te.stopctl(t, "events", "setup", "--queue", "q", "--pipeline", "Train-Pipeline", "--dry-run", "--account", "123456789012")
	var s eventsSetup
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || r.code != exitOK {
		t.Fatalf("dry run (%v): %s", err, r)
	}
	if s.QueueARN != "arn:aws:sqs:us-east-1:123456789012:q" || !strings.Contains(string(s.QueuePolicy), s.RuleARN) ||
		!strings.Contains(string(s.Pattern), pipelinestop.ExecutionStatusChangeType) ||
		!strings.Contains(string(s.Pattern), "pipeline/train-pipeline") {
		t.Fatalf("dry run: %+v", s)
	}
	if n := te.emu.Requests("PutRule"); n != 0 {
		t.Fatalf("a dry run made %d PutRule calls", n)
	}
}

// TestStopAnswerCallbacks: stop --wait --answer-callbacks fail finishes a
// stop that a callback step without a consumer holds.
func TestStopAnswerCallbacks(t *testing.T) {
	te := newStopEnv(t)
	url := te.queue(t, "approvals")
	arn := te.start(t, "held", emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, SqsQueueURL: url})
	te.waitStep(t, arn, "Approve", emulator.StatusExecuting)
	r := te.stopctl(t, "stop", "--wait", "--answer-callbacks", "fail", "--grace", "200ms", "--timeout", "30s", arn)
	if r.code != exitOK || !strings.Contains(r.stdout, "Stopped") ||
		!strings.Contains(r.stdout, `callback step "Approve" answered with a failure by stopctl`) {
		t.Fatalf("stop --answer-callbacks fail: %s", r)
	}
	if r := te.stopctl(t, "stop", "--answer-callbacks", "maybe", arn); r.code != exitUsage {
		t.Fatalf("a bad --answer-callbacks: %s", r)
	}
}
