package pipelinestop_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
)

// strictQueue is an in-memory SQS queue as strict as SQS about receipt
// handles: every receive gives a new handle, a delete with an older one
// succeeds without deleting, and a visibility change on a message that is
// not in flight under that handle fails. It never makes a message visible
// again on its own (no clock): a message leaves "in flight" only by a
// delete or a visibility change, so a message the Consumer forgets stays
// in flight and the test sees it.
type strictQueue struct {
	mu       sync.Mutex
	msgs     []*strictMsg
	byHandle map[string]*strictMsg
	handles  int
	wake     chan struct{}
	// extendedAfterEnd counts visibility extensions of a message after the
	// Consumer deleted it or made it visible (its job had ended).
	extendedAfterEnd int
	staleDeletes     int
	// visibilityTimeout is the timeout the Consumer asks for on receive;
	// a change to it is an extension.
	visibilityTimeout int32
}

type strictMsg struct {
	id, body string
	handle   string // the latest receipt handle
	receives int
	state    string // "visible", "inflight", "delayed", "deleted"
	ended    bool   // the Consumer deleted it or made it visible since its last receive
}

func newStrictQueue() *strictQueue {
	return &strictQueue{byHandle: map[string]*strictMsg{}, wake: make(chan struct{}, 1)}
}

func (q *strictQueue) send(bodies ...string) {
	q.mu.Lock()
	for _, b := range bodies {
		q.msgs = append(q.msgs, &strictMsg{id: "m" + strconv.Itoa(len(q.msgs)), body: b, state: "visible"})
	}
	q.mu.Unlock()
	q.poke()
}

func (q *strictQueue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *strictQueue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	for {
		q.mu.Lock()
		q.visibilityTimeout = in.VisibilityTimeout
		var out []sqstypes.Message
		for _, m := range q.msgs {
			if len(out) == int(in.MaxNumberOfMessages) {
				break
			}
			if m.state != "visible" {
				continue
			}
			q.handles++
			m.handle = fmt.Sprintf("%s-r%d", m.id, q.handles)
			q.byHandle[m.handle] = m
			m.receives++
			m.state, m.ended = "inflight", false
			out = append(out, sqstypes.Message{MessageId: aws.String(m.id), ReceiptHandle: aws.String(m.handle),
				Body: aws.String(m.body), Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.receives)}})
		}
		q.mu.Unlock()
		if len(out) > 0 {
			return &sqs.ReceiveMessageOutput{Messages: out}, nil
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (q *strictQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		h := aws.ToString(e.ReceiptHandle)
		m := q.byHandle[h]
		switch {
		case m == nil:
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true})
			continue
		case m.handle != h:
			q.staleDeletes++ // SQS: may succeed without deleting
		default:
			m.state, m.ended = "deleted", true
		}
		out.Successful = append(out.Successful, sqstypes.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (q *strictQueue) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	q.mu.Lock()
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	woke := false
	for _, e := range in.Entries {
		h := aws.ToString(e.ReceiptHandle)
		m := q.byHandle[h]
		if m != nil && m.ended && e.VisibilityTimeout == q.visibilityTimeout && e.VisibilityTimeout > 0 {
			q.extendedAfterEnd++ // an extension asked for after its job ended
		}
		if m == nil || m.handle != h || m.state != "inflight" {
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("MessageNotInflight"), SenderFault: true})
			continue
		}
		switch {
		case e.VisibilityTimeout == q.visibilityTimeout && e.VisibilityTimeout > 0:
			// An extension: the Consumer still holds it.
		case e.VisibilityTimeout == 0:
			m.state, m.ended, woke = "visible", true, true
		default:
			m.state, m.ended = "delayed", true
		}
		out.Successful = append(out.Successful, sqstypes.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
	}
	q.mu.Unlock()
	if woke {
		q.poke()
	}
	return out, nil
}

// redeliverDelayed makes every delayed message visible again, as SQS does
// when its visibility timeout ends.
func (q *strictQueue) redeliverDelayed() int {
	q.mu.Lock()
	n := 0
	for _, m := range q.msgs {
		if m.state == "delayed" {
			m.state, n = "visible", n+1
		}
	}
	q.mu.Unlock()
	q.poke()
	return n
}

// counts returns how many messages are in each state.
func (q *strictQueue) counts() map[string]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := map[string]int{}
	for _, m := range q.msgs {
		c[m.state]++
	}
	return c
}

// stranded lists the messages that are in flight: received and neither
// deleted nor made visible again.
func (q *strictQueue) stranded() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var s []string
	for _, m := range q.msgs {
		if m.state == "inflight" {
			s = append(s, fmt.Sprintf("%s (received %d times): %.60s", m.id, m.receives, m.body))
		}
	}
	return s
}

// answerLog is a CallbackAPIClient that records every answer per token and
// can fail some.
type answerLog struct {
	mu      sync.Mutex
	answers map[string][]string
	runs    map[string]int // the run that answered each token
	run     int            // the current run, set by the test
	fail    func(token string) error
	// strict makes a second answer for a token fail as SageMaker does,
	// with a ConflictException saying it was already answered.
	strict bool
}

func newAnswerLog() *answerLog { return &answerLog{answers: map[string][]string{}} }

func (a *answerLog) record(token *string, kind string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		if err := a.fail(aws.ToString(token)); err != nil {
			return err
		}
	}
	if a.strict && len(a.answers[aws.ToString(token)]) > 0 {
		return apiErr("SendPipelineExecutionStepSuccess", 400, "ConflictException", "the step was already answered")
	}
	a.answers[aws.ToString(token)] = append(a.answers[aws.ToString(token)], kind)
	if a.runs == nil {
		a.runs = map[string]int{}
	}
	a.runs[aws.ToString(token)] = a.run
	return nil
}

func (a *answerLog) SendPipelineExecutionStepSuccess(_ context.Context, in *sagemaker.SendPipelineExecutionStepSuccessInput, _ ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepSuccessOutput, error) {
	return &sagemaker.SendPipelineExecutionStepSuccessOutput{}, a.record(in.CallbackToken, "success")
}

func (a *answerLog) SendPipelineExecutionStepFailure(_ context.Context, in *sagemaker.SendPipelineExecutionStepFailureInput, _ ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepFailureOutput, error) {
	return &sagemaker.SendPipelineExecutionStepFailureOutput{}, a.record(in.CallbackToken, "failure")
}

// answeredIn reports whether token was answered during the current run.
func (a *answerLog) answeredIn(token string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.answers[token]) > 0 && a.runs[token] == a.run
}

func (a *answerLog) setRun(n int) {
	a.mu.Lock()
	a.run = n
	a.mu.Unlock()
}

func (a *answerLog) get(token string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.answers[token]...)
}

// accountToken is the i-th distinct callback token of these tests.
func accountToken(i int) string { return fmt.Sprintf("T%09d", i) }

// runUntil runs c until cond holds (checked whenever an event is emitted
// and every few milliseconds, for at most limit of real time), then stops
// Run and returns its error and whether cond held.
func runUntil(t *testing.T, c *pipelinestop.Consumer, limit time.Duration, cond func() bool) (bool, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	held := false
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			held = true
			break
		}
	}
	cancel()
	select {
	case err := <-done:
		return held, err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of its context ending")
		return held, nil
	}
}

// TestConsumerNoStrandedDuplicates is the regression test of the stranded
// redelivery: 3000 tokens each delivered twice back to back, handled with
// ErrPending by 4 handlers. Every message must be deleted, none left in
// flight. Before the per-token state machine, a duplicate dispatched
// between a job's end and its removal joined the finished job and was never
// deleted nor made visible again (3 to 7 of 6000 per run).
func TestConsumerNoStrandedDuplicates(t *testing.T) {
	const tokens = 3000
	q := newStrictQueue()
	for i := range tokens {
		b := cbMsgBody(accountToken(i), "Executing")
		q.send(b, b)
	}
	answers := newAnswerLog()
	var executed atomic.Int64
	c, err := pipelinestop.NewConsumer(q, cbQueueURL, pipelinestop.NewAcknowledger(answers),
		pipelinestop.Handler{Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
			executed.Add(1)
			return nil, pipelinestop.ErrPending
		}}, func(o *pipelinestop.ConsumerOptions) {
			o.Concurrency, o.MaxMessages = 4, 1
			o.Clock = fakeclock.NewManual(time.Unix(1000, 0))
		})
	if err != nil {
		t.Fatal(err)
	}
	done, err := runUntil(t, c, 20*time.Second, func() bool { return q.counts()["deleted"] == 2*tokens })
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if s := q.stranded(); len(s) > 0 || !done {
		t.Fatalf("%d of %d messages left in flight (counts %v), for example %v", len(s), 2*tokens, q.counts(), s[:min(len(s), 3)])
	}
	if n := executed.Load(); n < tokens || n > 2*tokens {
		t.Errorf("Execute ran %d times for %d tokens", n, tokens)
	}
}

var (
	consumerSeed  = flag.Uint64("consumer.seed", 0, "run TestConsumerRandomInterleavings with this seed only")
	consumerSeeds = flag.Int("consumer.seeds", 8, "how many seeds TestConsumerRandomInterleavings tries")
)

// TestConsumerRandomInterleavings runs Consumers over a strict queue with
// seeded random inputs: each token's Executing and Stopping messages, some
// duplicated, in any order; handler outcomes (outputs, errors, ErrPending,
// RetryLater, panics, Execute blocking until canceled); failing answers;
// visibility lapses; and a shutdown at a random point, after which a second
// Run finishes the queue. The inputs are reproducible from the seed printed
// on failure (-consumer.seed=N); the goroutine interleavings vary. It checks:
//   - when a Run returns, every message it received was deleted or made
//     visible again;
//   - no visibility is extended for a message after its job ended;
//   - no step is answered twice, or both ways;
//   - no handler runs for a token after its step was answered (late
//     duplicates are deleted without running it);
//   - in the end every message is deleted.
func TestConsumerRandomInterleavings(t *testing.T) {
	seeds := make([]uint64, 0, *consumerSeeds)
	if *consumerSeed != 0 {
		seeds = append(seeds, *consumerSeed)
	} else {
		for i := range *consumerSeeds {
			seeds = append(seeds, uint64(i+1)*7919)
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			randomInterleaving(t, seed)
		})
	}
}

func randomInterleaving(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var rmu sync.Mutex
	roll := func(n int) int {
		rmu.Lock()
		defer rmu.Unlock()
		return rng.IntN(n)
	}
	const tokens = 150
	var bodies []string
	for i := range tokens {
		tok := accountToken(i)
		for range 1 + roll(3) {
			bodies = append(bodies, cbMsgBody(tok, "Executing"))
		}
		for range roll(3) {
			bodies = append(bodies, cbMsgBody(tok, "Stopping"))
		}
	}
	rng.Shuffle(len(bodies), func(i, j int) {
		if rng.IntN(3) > 0 { // keep some messages of one token close
			bodies[i], bodies[j] = bodies[j], bodies[i]
		}
	})
	q := newStrictQueue()
	answers := newAnswerLog()
	answers.strict = true
	var runNo atomic.Int64
	answers.fail = func(string) error {
		if runNo.Load() == 1 && roll(10) == 0 {
			return apiErr("SendPipelineExecutionStepSuccess", 400, "ValidationException", "injected failure")
		}
		return nil
	}
	var violations []string
	var vmu sync.Mutex
	violate := func(format string, args ...any) {
		vmu.Lock()
		violations = append(violations, fmt.Sprintf(format, args...))
		vmu.Unlock()
	}
	attempts := map[string]int{}
	var amu sync.Mutex
	handlerStarts := func(kind string, m *pipelinestop.CallbackMessage) int {
		if answers.answeredIn(string(m.Token)) {
			violate("%s ran for %v after its step was answered in the same Run: %v", kind, m.Token, answers.get(string(m.Token)))
		}
		amu.Lock()
		defer amu.Unlock()
		attempts[string(m.Token)]++
		return attempts[string(m.Token)]
	}
	handler := pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			n := handlerStarts("Execute", m)
			if n > 3 || runNo.Load() > 1 {
				return map[string]string{"n": strconv.Itoa(n)}, nil
			}
			switch roll(7) {
			case 0:
				return nil, errors.New("handler error")
			case 1:
				return nil, pipelinestop.ErrPending
			case 2:
				return nil, pipelinestop.RetryLater(errors.New("not yet"))
			case 3:
				panic("handler panic")
			case 4:
				<-ctx.Done()
				return nil, context.Cause(ctx)
			}
			return map[string]string{"n": strconv.Itoa(n)}, nil
		},
		Cleanup: func(ctx context.Context, m *pipelinestop.CallbackMessage) error {
			handlerStarts("Cleanup", m)
			if runNo.Load() > 1 {
				return nil
			}
			switch roll(4) {
			case 0:
				return errors.New("cleanup error")
			case 1:
				panic("cleanup panic")
			}
			return nil
		},
	}
	clock := fakeclock.NewManual(time.Unix(1000, 0))
	newConsumer := func() *pipelinestop.Consumer {
		c, err := pipelinestop.NewConsumer(q, cbQueueURL, pipelinestop.NewAcknowledger(answers, func(o *pipelinestop.Options) {
			o.Clock = fakeclock.NewAuto(time.Unix(0, 0)) // answers retry at once
		}), handler, func(o *pipelinestop.ConsumerOptions) {
			o.Concurrency = 1 + roll(6)
			o.MaxMessages = int32(1 + roll(3)*roll(4))
			o.DrainTimeout = -1
			o.Clock = clock
			// Yield in the event hook, which runs between the steps of a
			// handler slot, so that deliveries interleave with a token's
			// end in many ways.
			o.OnEvent = func(pipelinestop.Event) {
				for range roll(4) {
					runtime.Gosched()
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Run 1: deliver, lapse, shut down at a random point.
	q.send(bodies...)
	runNo.Store(1)
	answers.setRun(1)
	steps := 20 + roll(200)
	step := 0
	_, err := runUntil(t, newConsumer(), 10*time.Second, func() bool {
		step++
		switch roll(5) {
		case 0:
			q.redeliverDelayed()
		case 1:
			clock.Advance(15 * time.Second) // extensions fall due
		}
		return step >= steps
	})
	if err != nil {
		t.Fatalf("seed %d: Run 1: %v", seed, err)
	}
	check := func(run string) {
		t.Helper()
		if s := q.stranded(); len(s) > 0 {
			violate("%s returned with %d messages in flight, e.g. %v", run, len(s), s[0])
		}
		q.mu.Lock()
		if q.extendedAfterEnd > 0 {
			violate("%s extended %d messages after their jobs ended", run, q.extendedAfterEnd)
		}
		q.mu.Unlock()
	}
	check("Run 1")
	// Run 2: finish the queue.
	for round := 0; round < 5 && q.counts()["deleted"] < len(bodies); round++ {
		runNo.Store(int64(2 + round))
		answers.setRun(2 + round)
		q.redeliverDelayed()
		_, err = runUntil(t, newConsumer(), 10*time.Second, func() bool {
			if q.redeliverDelayed() > 0 {
				return false
			}
			return q.counts()["deleted"] == len(bodies)
		})
		if err != nil {
			t.Fatalf("seed %d: Run 2: %v", seed, err)
		}
		check("Run 2")
	}
	if c := q.counts(); c["deleted"] != len(bodies) {
		violate("after the last Run: %v of %d messages", c, len(bodies))
	}
	for i := range tokens {
		if a := answers.get(accountToken(i)); len(a) > 1 {
			violate("token %d answered %d times: %v", i, len(a), a)
		}
	}
	if len(violations) > 0 {
		t.Fatalf("seed %d (rerun with -consumer.seed=%d): %d violations:\n%s", seed, seed, len(violations),
			strings.Join(violations[:min(len(violations), 10)], "\n"))
	}
}
