package pipelinestoplambda_test

import (
	"context"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

var (
	scenarios = flag.Bool("scenarios", false, "run the scenario benchmarks (TestScenario*)")
	full      = flag.Bool("full", false, "with -scenarios: the full sizes")
)

// lambdaRun is what one function did to the callback steps of a run.
type lambdaRun struct {
	name                                  string
	steps, answered                       int
	answerCalls, duplicates, refused      int // duplicates: answers beyond the first that were not replays
	bothWays                              int // steps with answers attempted both ways
	invocations, deliveries, functionErrs int
	elapsed                               time.Duration
}

// TestScenarioLambdaCallbacks runs N callback steps through the emulator's
// SQS event source mapping (batch size 10, ReportBatchItemFailures on,
// visibility timeout 2 s, function timeout 1 s) into two functions built
// from this module: the pipelinestoplambda adapter, and a baseline written
// like the public samples (answers without a ClientRequestToken of its own,
// ignores the status, raises an error to requeue unfinished work). A third
// of the steps are still in progress when first delivered (their work is
// done 1.5 s after the start). It reports duplicate answer calls, steps
// answered both ways, redeliveries, answer calls and invocations per
// message. It asserts only that every step ends answered.
func TestScenarioLambdaCallbacks(t *testing.T) {
	if !*scenarios {
		t.Skip("a scenario benchmark: run with -scenarios (and -full for the full size)")
	}
	n := 12
	if *full {
		n = 60
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var runs []lambdaRun
	for _, fn := range []struct{ name, pkg string }{
		{"pipelinestoplambda adapter", "./internal/benchfn/adapter"},
		{"baseline: like the public samples", "./internal/benchfn/naive"},
	} {
		bin := filepath.Join(dir, filepath.Base(fn.pkg))
		if out, err := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", bin, fn.pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", fn.pkg, err, out)
		}
		runs = append(runs, runCallbacks(t, ctx, fn.name, bin, n))
	}
	t.Logf("%d callback steps, a third still in progress at their first delivery:", n)
	t.Logf("%-36s %8s %10s %8s %9s %12s %12s %12s %8s", "function", "answered", "duplicate", "refused", "both ways",
		"answer/msg", "invoke/msg", "redeliv/msg", "time")
	for _, r := range runs {
		t.Logf("%-36s %5d/%-3d %10d %8d %9d %12.2f %12.2f %12.2f %8s", r.name, r.answered, r.steps, r.duplicates, r.refused,
			r.bothWays, float64(r.answerCalls)/float64(r.steps), float64(r.invocations)/float64(r.steps),
			float64(r.deliveries-r.steps)/float64(r.steps), r.elapsed.Round(10*time.Millisecond))
	}
	for _, r := range runs {
		if r.answered != r.steps {
			t.Errorf("%s: %d of %d steps answered", r.name, r.answered, r.steps)
		}
	}
	if a := runs[0]; a.duplicates != 0 || a.bothWays != 0 {
		t.Errorf("the adapter made %d duplicate answers and answered %d steps both ways; want 0 and 0", a.duplicates, a.bothWays)
	}
}

func runCallbacks(t *testing.T, ctx context.Context, name, bin string, n int) lambdaRun {
	t.Helper()
	em := emulator.StartTest(t, emulator.Config{})
	q, err := em.SQSClient().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("callbacks"),
		Attributes: map[string]string{"VisibilityTimeout": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := em.AddFunction("fn", bin, time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ready := float64(start.Add(1500*time.Millisecond).Unix()) + 1 // whole seconds, rounded up
	var arns []string
	for i := range n {
		args := map[string]any{"ReadyAt": 0}
		if i%3 == 2 {
			args["ReadyAt"] = ready
		}
		pipeline := fmt.Sprintf("p%d", i)
		if _, err := em.CreatePipeline(pipeline, emulator.Definition(emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback,
			SqsQueueURL: aws.ToString(q.QueueUrl), Arguments: args, Outputs: []string{"Approved"}})); err != nil {
			t.Fatal(err)
		}
		arn, err := em.StartExecution(pipeline)
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, arn)
	}
	tokens := make([]string, n)
	for i, arn := range arns {
		if err := em.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
			t.Fatal(err)
		}
		if tokens[i], err = em.CallbackToken(arn, "Approve"); err != nil {
			t.Fatal(err)
		}
	}
	mapping, err := em.AddEventSource("callbacks", "fn", emulator.EventSourceOptions{BatchSize: 10, ReportBatchItemFailures: true})
	if err != nil {
		t.Fatal(err)
	}
	r := lambdaRun{name: name, steps: n}
	for _, arn := range arns {
		if _, err := em.WaitExecutionStatus(ctx, arn, "Succeeded", "Failed"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	r.elapsed = time.Since(start)
	// Let late deliveries of the last batch settle: the queue empties.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		st, _ := em.EventSourceStats(mapping)
		if st.Deleted >= n {
			break
		}
	}
	st, err := em.EventSourceStats(mapping)
	if err != nil {
		t.Fatal(err)
	}
	r.invocations, r.deliveries, r.functionErrs = st.Batches, st.Records, st.FunctionErrors
	for _, tok := range tokens {
		acc, ref := em.Answers(tok), em.RefusedAnswers(tok)
		outcomes := map[string]bool{}
		for _, a := range append(acc, ref...) {
			outcomes[a.Outcome] = true
		}
		if len(acc) > 0 {
			r.answered++
		}
		r.answerCalls += len(acc) + len(ref)
		// A replay (the same ClientRequestToken) is the same request:
		// idempotent. Another accepted answer or a refused one is a
		// duplicate answer.
		for i, a := range acc {
			if i > 0 && !a.Replay {
				r.duplicates++
			}
		}
		r.duplicates += len(ref)
		r.refused += len(ref)
		if len(outcomes) > 1 {
			r.bothWays++
		}
	}
	return r
}
