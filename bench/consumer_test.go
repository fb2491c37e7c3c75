package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/svgplot"
)

// consumerStep is the callback step of the consumer scenario's pipelines.
const consumerStep = "Approve"

// consumerRun is what one strategy did with M callback messages.
type consumerRun struct {
	elapsed time.Duration
	calls   map[string]int // API requests by operation
	allocs  uint64         // heap allocations of the process
	once    int            // steps answered exactly once, with success
}

// consumerStrategy answers and deletes the callback messages of queueURL
// until ctx ends.
type consumerStrategy struct {
	name string
	run  func(ctx context.Context, em *emulator.Emulator, queueURL string, m int) error
}

var consumerStrategies = []consumerStrategy{
	{"one at a time (receive 1, answer, delete 1)", oneAtATime},
	{"pipelinestop Consumer (defaults)", func(ctx context.Context, em *emulator.Emulator, queueURL string, _ int) error {
		ack := pipelinestop.NewAcknowledger(em.SageMakerClient())
		c, err := pipelinestop.NewConsumer(em.SQSClient(), queueURL, ack, pipelinestop.Handler{
			Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) { return nil, nil },
		})
		if err != nil {
			return err
		}
		return c.Run(ctx)
	}},
}

// oneAtATime is the loop users write without pipelinestop: receive one
// message (long poll, as the Consumer), read its token, answer the step
// with SendPipelineExecutionStepSuccess, delete the message. It stops after
// m answers or when ctx ends.
func oneAtATime(ctx context.Context, em *emulator.Emulator, queueURL string, m int) error {
	sqsc, smc := em.SQSClient(), em.SageMakerClient()
	answered := 0
	for range 10 * m { // bounded in count; ctx bounds it in time
		if answered == m || ctx.Err() != nil {
			return nil
		}
		out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL),
			MaxNumberOfMessages: 1, WaitTimeSeconds: pipelinestop.DefaultWaitTimeSeconds})
		if err != nil {
			return err
		}
		for _, msg := range out.Messages {
			var body struct {
				Token string `json:"token"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(msg.Body)), &body); err != nil {
				return err
			}
			if _, err := smc.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{
				CallbackToken: aws.String(body.Token)}); err != nil {
				return err
			}
			if _, err := sqsc.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL),
				ReceiptHandle: msg.ReceiptHandle}); err != nil {
				return err
			}
			answered++
		}
	}
	return errors.New("one at a time: too many receives")
}

// runConsumerStrategy starts m executions of a pipeline whose callback step
// sends its message to a fresh queue, then runs s until every step is
// answered and every message deleted.
func runConsumerStrategy(t *testing.T, em *emulator.Emulator, s consumerStrategy, name string, m int) consumerRun {
	queueURL, err := em.CreateQueue(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := em.CreatePipeline(name, emulator.Definition(emulator.Step{Name: consumerStep,
		Type: emulator.StepTypeCallback, SqsQueueURL: queueURL})); err != nil {
		t.Fatal(err)
	}
	arns := make([]string, m)
	for i := range arns {
		if arns[i], err = em.StartExecution(name); err != nil {
			t.Fatal(err)
		}
	}
	sqsc := em.SQSClient()
	ctx := boundedCtx(t, 10*time.Minute)
	if n := queueDepth(ctx, t, sqsc, queueURL); n != m {
		t.Fatalf("%d messages in the queue, want %d", n, m)
	}

	calls := em.Counters()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.run(runCtx, em, queueURL, m) }()

	// Every execution Succeeded (its one step answered), then the queue
	// empty. The status is read from the emulator directly, not through
	// the API, so the monitoring costs no calls.
	var runErr error
	finished := false
	next := 0
	for {
		for next < m {
			if st, _, _ := em.ExecutionStatus(arns[next]); st != "Succeeded" {
				break
			}
			next++
		}
		if next == m && queueDepth(ctx, t, sqsc, queueURL) == 0 || finished {
			break
		}
		select {
		case runErr = <-done:
			finished = true // the strategy gave up or ended before the work was done
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d steps answered when the time bound passed", s.name, next, m)
		case <-time.After(2 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	now := em.Counters()
	cancel()
	if !finished {
		runErr = <-done
	}
	if runErr != nil || next < m {
		t.Fatalf("%s: %d of %d steps answered; error: %v", s.name, next, m, runErr)
	}
	for op, n := range now {
		calls[op] = n - calls[op]
	}
	delete(calls, "GetQueueAttributes") // the monitor's, not the strategy's
	r := consumerRun{elapsed: elapsed, calls: calls, allocs: after.Mallocs - before.Mallocs}
	for _, arn := range arns {
		token, err := em.CallbackToken(arn, consumerStep)
		if err != nil {
			t.Fatal(err)
		}
		if as := em.Answers(token); len(as) == 1 && as[0].Outcome == emulator.OutcomeSuccess {
			r.once++
		}
	}
	return r
}

// queueDepth returns the messages in the queue, visible or not.
func queueDepth(ctx context.Context, t *testing.T, c *sqs.Client, queueURL string) int {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Attributes {
		k, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	return n
}

// TestScenarioConsumer answers and deletes M callback messages (one per
// execution of a pipeline with one callback step, real tokens) with the
// Consumer and with a one-at-a-time loop, in alternating rounds, each on
// a fresh queue. It reports messages per second, API calls per message
// (emulator counters, SQS and SageMaker) and heap allocations per message
// (the whole process's, the in-process emulator included).
func TestScenarioConsumer(t *testing.T) {
	needScenarios(t)
	m, rounds := size(300, 5000), size(1, 3)
	em := emulator.StartTest(t, emulator.Config{})
	runs := make([][]consumerRun, len(consumerStrategies))
	for round := range rounds {
		for si, s := range consumerStrategies {
			r := runConsumerStrategy(t, em, s, fmt.Sprintf("consumer-%d-%d", round, si), m)
			if r.once != m {
				t.Errorf("%s: %d of %d steps answered exactly once with success", s.name, r.once, m)
			}
			runs[si] = append(runs[si], r)
		}
	}

	tb := newTable(fmt.Sprintf("(5) Consumer: M=%d callback messages answered and deleted, median of %d round(s)", m, rounds),
		"strategy", "time", "messages/s", "speed-up", "API calls/message", "calls by operation (last round)", "allocs/message", "answered once")
	var base float64
	for si, s := range consumerStrategies {
		var el []time.Duration
		var calls []float64
		var allocs []uint64
		for _, r := range runs[si] {
			el = append(el, r.elapsed)
			total := 0
			for _, n := range r.calls {
				total += n
			}
			calls = append(calls, ratio(total, m))
			allocs = append(allocs, r.allocs/uint64(m))
		}
		rate := float64(m) / median(el).Seconds()
		if si == 0 {
			base = rate
		}
		last := runs[si][len(runs[si])-1]
		var byOp []string
		for _, op := range slices.Sorted(maps.Keys(last.calls)) {
			if last.calls[op] > 0 {
				byOp = append(byOp, fmt.Sprintf("%s %d", op, last.calls[op]))
			}
		}
		tb.row(s.name, median(el), fmt.Sprintf("%.0f", rate), ratio(rate, base), median(calls), fmt.Sprint(byOp),
			median(allocs), fmt.Sprintf("%d/%d", last.once, m))
	}
	tb.flush()
	fmt.Println("issue 6 sets no target for the consumer: the table compares; allocations include the in-process emulator's")
}

// Latencies of the Consumer-against-handlers scenario, injected by the
// emulator per service (issue 14): what a Consumer in the same Region as
// SQS and SageMaker may see.
const (
	handlersSQSLatency    = 20 * time.Millisecond
	handlersAnswerLatency = 60 * time.Millisecond
)

// answerTimer times the answers made through it: it measures, it adds no
// latency.
type answerTimer struct {
	pipelinestop.CallbackAPIClient
	n     atomic.Int64
	total atomic.Int64 // nanoseconds
}

func (a *answerTimer) SendPipelineExecutionStepSuccess(ctx context.Context, in *sagemaker.SendPipelineExecutionStepSuccessInput, optFns ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepSuccessOutput, error) {
	start := time.Now()
	out, err := a.CallbackAPIClient.SendPipelineExecutionStepSuccess(ctx, in, optFns...)
	a.total.Add(int64(time.Since(start)))
	a.n.Add(1)
	return out, err
}

// mean returns the mean answer time, and resets the timer.
func (a *answerTimer) mean() time.Duration {
	n, total := a.n.Swap(0), a.total.Swap(0)
	if n == 0 {
		return 0
	}
	return time.Duration(total / n)
}

// consumerWith returns a strategy that runs a Consumer with n handlers and
// the options of fns, answering through timer when it is not nil.
func consumerWith(name string, n int, timer *answerTimer, fns ...func(*pipelinestop.ConsumerOptions)) consumerStrategy {
	return consumerStrategy{name, func(ctx context.Context, em *emulator.Emulator, queueURL string, _ int) error {
		var client pipelinestop.CallbackAPIClient = em.SageMakerClient()
		if timer != nil {
			timer.CallbackAPIClient = client
			client = timer
		}
		ack := pipelinestop.NewAcknowledger(client)
		c, err := pipelinestop.NewConsumer(em.SQSClient(), queueURL, ack, pipelinestop.Handler{
			Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) { return nil, nil },
		}, append([]func(*pipelinestop.ConsumerOptions){func(o *pipelinestop.ConsumerOptions) { o.Concurrency = n }}, fns...)...)
		if err != nil {
			return err
		}
		return c.Run(ctx)
	}}
}

// callsPerMessage is a run's API calls divided by m.
func (r consumerRun) callsPerMessage(m int) float64 {
	total := 0
	for _, n := range r.calls {
		total += n
	}
	return ratio(total, m)
}

// byOp lists a run's calls by operation.
func (r consumerRun) byOp() string {
	var out []string
	for _, op := range slices.Sorted(maps.Keys(r.calls)) {
		if r.calls[op] > 0 {
			out = append(out, fmt.Sprintf("%s %d", op, r.calls[op]))
		}
	}
	return fmt.Sprint(out)
}

// TestScenarioConsumerHandlers measures the Consumer's throughput against
// its handlers (1, 10, 50) with 20 ms per SQS call and 60 ms per SageMaker
// call, injected by the emulator, beside its bound: handlers / answer
// latency, since each message costs one answer of 60 ms in a handler
// slot. Targets (issue 14): at least 0.85 of the bound at 10 and 50
// handlers, at most 1.22 API calls per message. Each row runs on a fresh
// queue of m callback messages; the median of the rounds is shown.
func TestScenarioConsumerHandlers(t *testing.T) {
	needScenarios(t)
	rounds := size(1, 3)
	em := emulator.StartTest(t, emulator.Config{Faults: emulator.Faults{
		Latency: handlersAnswerLatency, SQSLatency: handlersSQSLatency}})
	tb := newTable(fmt.Sprintf("(5b) Consumer against handlers: %v per SQS call, %v per SageMaker call (emulator), median of %d round(s)",
		handlersSQSLatency, handlersAnswerLatency, rounds),
		"handlers", "messages", "time", "messages/s", "bound", "ratio", "target", "verdict", "API calls/message", "target", "verdict",
		"answer (mean)", "handlers busy", "calls by operation (last round)")
	var plot []svgplot.Point
	var bounds []svgplot.Point
	for _, n := range []int{1, 10, 50} {
		m := size(max(20, 20*n), max(100, 60*n))
		timer := &answerTimer{}
		s := consumerWith(fmt.Sprintf("%d handlers", n), n, timer)
		var el, answer []time.Duration
		var calls, busy []float64
		var last consumerRun
		for round := range rounds {
			r := runConsumerStrategy(t, em, s, fmt.Sprintf("handlers-%d-%d", n, round), m)
			if r.once != m {
				t.Errorf("%s: %d of %d steps answered exactly once with success", s.name, r.once, m)
			}
			el = append(el, r.elapsed)
			calls = append(calls, r.callsPerMessage(m))
			mean := timer.mean()
			answer = append(answer, mean)
			busy = append(busy, float64(m)*mean.Seconds()/(float64(n)*r.elapsed.Seconds()))
			last = r
		}
		rate := float64(m) / median(el).Seconds()
		bound := float64(n) / handlersAnswerLatency.Seconds()
		rateTarget, callTarget := "-", "-"
		rateOK, callOK := "-", "-"
		if n >= 10 {
			rateTarget, rateOK = ">= 0.85", verdict(rate/bound >= 0.85)
			callTarget, callOK = "<= 1.22", verdict(median(calls) <= 1.22)
		}
		tb.row(n, m, median(el), fmt.Sprintf("%.0f", rate), fmt.Sprintf("%.0f", bound), rate/bound, rateTarget, rateOK,
			median(calls), callTarget, callOK, median(answer), median(busy), last.byOp())
		plot = append(plot, svgplot.Point{X: float64(n), Y: rate})
		bounds = append(bounds, svgplot.Point{X: float64(n), Y: bound})
	}
	tb.flush()
	fmt.Printf("bound = handlers / %v (one answer per message holds a handler slot); calls = SQS + SageMaker requests (emulator counters);\n"+
		"answer (mean) = the answers' measured time, injected latency and this machine's load included; handlers busy = messages x answer (mean) / (handlers x time)\n\n", handlersAnswerLatency)
	writePlot(t, "consumer-handlers", svgplot.Chart{
		Title:  fmt.Sprintf("Consumer throughput against handlers (%v per SQS call, %v per answer)", handlersSQSLatency, handlersAnswerLatency),
		XLabel: "handlers (Concurrency)", YLabel: "messages/s", LogX: true, LogY: true,
		Series: []svgplot.Series{{Name: fmt.Sprintf("bound: handlers / %v", handlersAnswerLatency), Points: bounds}, {Name: "Consumer", Points: plot}},
	})
}

// TestScenarioConsumerLostReceive loses the answer of the Consumer's first
// receive (the emulator closes the connection after ReceiveMessage ran:
// its ten messages are in flight, the Consumer never saw them) with 10
// handlers and the latencies of TestScenarioConsumerHandlers, and reports
// how long the work then takes beside a run that loses nothing: the stall
// is what the lost messages wait. The Consumer receives with a 5-second
// visibility timeout (ReceiveVisibilityTimeout) and extends what it
// holds; before issue 14 it received with VisibilityTimeout (30 s), shown
// at full size with ReceiveVisibilityTimeout -1.
func TestScenarioConsumerLostReceive(t *testing.T) {
	needScenarios(t)
	const handlers = 10
	m := size(100, 500)
	latency := emulator.Faults{Latency: handlersAnswerLatency, SQSLatency: handlersSQSLatency}
	em := emulator.StartTest(t, emulator.Config{Faults: latency})
	type variant struct {
		name string
		lose bool
		opts func(*pipelinestop.ConsumerOptions)
	}
	variants := []variant{
		{"Consumer, nothing lost", false, nil},
		{"Consumer, first receive lost (receive visibility 5 s, the default)", true, nil},
	}
	if *full {
		variants = append(variants, variant{"Consumer, first receive lost (receive visibility 30 s, as before issue 14)", true,
			func(o *pipelinestop.ConsumerOptions) { o.ReceiveVisibilityTimeout = -1 }})
	}
	tb := newTable(fmt.Sprintf("(5c) Consumer and a lost receive: M=%d callback messages, %d handlers, %v per SQS call, %v per SageMaker call",
		m, handlers, handlersSQSLatency, handlersAnswerLatency),
		"run", "lost receives", "time", "messages/s", "stall", "API calls/message", "calls by operation")
	var base time.Duration
	for i, v := range variants {
		var fns []func(*pipelinestop.ConsumerOptions)
		if v.opts != nil {
			fns = append(fns, v.opts)
		}
		s := consumerWith(v.name, handlers, nil, fns...)
		lostBefore := em.DroppedResponses("ReceiveMessage")
		stopLosing := make(chan struct{})
		lossDone := make(chan struct{})
		if v.lose {
			// Lose receives' answers until one is lost, then nothing.
			f := latency
			f.DropResponseRate, f.Operations = 1, []string{"ReceiveMessage"}
			em.SetFaults(f)
			go func() {
				defer close(lossDone)
				for em.DroppedResponses("ReceiveMessage") == lostBefore {
					select {
					case <-stopLosing:
						return
					case <-time.After(100 * time.Microsecond):
					}
				}
				em.SetFaults(latency)
			}()
		} else {
			close(lossDone)
		}
		r := runConsumerStrategy(t, em, s, fmt.Sprintf("lost-%d", i), m)
		close(stopLosing)
		<-lossDone
		em.SetFaults(latency)
		if r.once != m {
			t.Errorf("%s: %d of %d steps answered exactly once with success", v.name, r.once, m)
		}
		stall := "-"
		if i == 0 {
			base = r.elapsed
		} else {
			stall = ms(r.elapsed - base)
		}
		tb.row(v.name, em.DroppedResponses("ReceiveMessage")-lostBefore, r.elapsed, fmt.Sprintf("%.0f", float64(m)/r.elapsed.Seconds()),
			stall, r.callsPerMessage(m), r.byOp())
	}
	tb.flush()
	fmt.Print("stall = time - the time of the run that lost nothing: the lost messages come back when the receive's visibility timeout ends\n\n")
}
