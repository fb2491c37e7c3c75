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
	fmt.Printf("\n(8) Lambda callbacks: %d callback steps, a third still in progress at their first delivery:\n", n)
	fmt.Printf("%-36s %8s %10s %8s %9s %12s %12s %12s %8s\n", "function", "answered", "duplicate", "refused", "both ways",
		"answer/msg", "invoke/msg", "redeliv/msg", "time")
	for _, r := range runs {
		fmt.Printf("%-36s %5d/%-3d %10d %8d %9d %12.2f %12.2f %12.2f %8s\n", r.name, r.answered, r.steps, r.duplicates, r.refused,
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

// TestScenarioLambdaThroughput measures the adapter's throughput beside the
// Consumer's (BENCHMARKS.md section 5): N callback steps, all ready, with
// 60 ms per SageMaker call and 20 ms per SQS call from the emulator (as in
// the Consumer against handlers), through the emulator's SQS event source
// mapping (one poller, batch size 10, ReportBatchItemFailures) into the
// adapter, which runs 10 handlers per batch (its default Concurrency). The
// mapping's receives and deletes are the emulator's own, not API calls, so
// the SQS latency does not reach them; each invocation goes through the
// Lambda Runtime API to a function process. The bound is the one of 10
// handlers: 10 / 60 ms.
func TestScenarioLambdaThroughput(t *testing.T) {
	if !*scenarios {
		t.Skip("a scenario benchmark: run with -scenarios (and -full for the full size)")
	}
	const answerLatency, sqsLatency, handlers = 60 * time.Millisecond, 20 * time.Millisecond, 10
	n := 100
	if *full {
		n = 500
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "adapter")
	if out, err := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", bin, "./internal/benchfn/adapter").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	em := emulator.StartTest(t, emulator.Config{Faults: emulator.Faults{Latency: answerLatency, SQSLatency: sqsLatency}})
	q, err := em.SQSClient().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("callbacks"),
		Attributes: map[string]string{"VisibilityTimeout": "30"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := em.AddFunction("fn", bin, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := em.CreatePipeline("p", emulator.Definition(emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback,
		SqsQueueURL: aws.ToString(q.QueueUrl), Arguments: map[string]any{"ReadyAt": 0}, Outputs: []string{"Approved"}})); err != nil {
		t.Fatal(err)
	}
	arns := make([]string, n)
	for i := range arns {
		if arns[i], err = em.StartExecution("p"); err != nil {
			t.Fatal(err)
		}
	}
	for _, arn := range arns {
		if err := em.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
			t.Fatal(err)
		}
	}
	// The first invocation starts the function process: the cold start is
	// part of what a user sees, and counted once.
	calls := em.Counters()
	start := time.Now()
	mapping, err := em.AddEventSource("callbacks", "fn", emulator.EventSourceOptions{BatchSize: 10, ReportBatchItemFailures: true})
	if err != nil {
		t.Fatal(err)
	}
	var st emulator.EventSourceStats
	for i := 0; ; i++ {
		if st, err = em.EventSourceStats(mapping); err != nil {
			t.Fatal(err)
		}
		if st.Deleted >= n {
			break
		}
		if i == 300000 || ctx.Err() != nil {
			t.Fatalf("%d of %d messages deleted when the time bound passed", st.Deleted, n)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	answered := 0
	for _, arn := range arns {
		if s, _, _ := em.ExecutionStatus(arn); s == "Succeeded" {
			answered++
		}
	}
	if answered != n {
		t.Errorf("%d of %d steps answered", answered, n)
	}
	total := 0
	for op, c := range em.Counters() {
		total += c - calls[op]
	}
	rate := float64(n) / elapsed.Seconds()
	bound := float64(handlers) / answerLatency.Seconds()
	fmt.Printf("\n(5d) Lambda adapter beside the Consumer: %d callback messages, %v per SageMaker call (emulator), event source mapping batch 10\n", n, answerLatency)
	fmt.Printf("%-40s %9s %10s %10s %6s %6s %12s %12s\n", "run", "answered", "time", "messages/s", "bound", "ratio", "invoke/msg", "calls/msg")
	fmt.Printf("%-40s %5d/%-3d %10s %10.0f %6.0f %6.2f %12.2f %12.2f\n", "pipelinestoplambda adapter (10 handlers)", answered, n,
		elapsed.Round(time.Millisecond), rate, bound, rate/bound, float64(st.Batches)/float64(n), float64(total)/float64(n))
	fmt.Println("calls = API requests to the emulator (the answers); the mapping's receives and deletes are not API calls; the time includes the function's cold start")
}
