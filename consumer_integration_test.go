package pipelinestop_test

// End-to-end tests of the Consumer: the real *sqs.Client and
// *sagemaker.Client over HTTP against internal/emulator, and for the SQS
// paths against moto_server (the emulator's callback steps then send their
// messages to moto's queue, SageMaker stays on the emulator).
//
// Every test checks protocol properties on the emulator's side, not only
// what the Consumer says it did:
//   - each callback step is answered exactly once: the emulator's first
//     accepted answer for the token is not a replay and every later one is
//     a replay of it (emulator.Answers);
//   - no step is answered both ways: every answer call the Consumer made for
//     a token, accepted or rejected, is the same operation (ciAnswerSpy);
//   - nothing is deleted before it is answered: at each DeleteMessageBatch
//     the message's step already has an accepted answer, unless the test
//     says otherwise (ciQueueSpy);
//   - no log record holds a raw callback token.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
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
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/motoserver"
	"github.com/pipelinestop/pipelinestop/internal/testlog"
)

// Statuses used below.
const (
	ciExecuting = "Executing"
	ciStopping  = "Stopping"
	ciStopped   = "Stopped"
	ciSucceeded = "Succeeded"
	ciFailed    = "Failed"
)

var ciTerminal = []string{ciStopped, ciSucceeded, ciFailed}

// ciEnv is one emulator, one callback queue (on the emulator or on moto)
// and the bookkeeping of the checks.
type ciEnv struct {
	t        *testing.T
	em       *emulator.Emulator
	sm       *sagemaker.Client
	sqs      *sqs.Client // the service holding the queue
	queueURL string
	moto     bool
	logs     *testlog.Buffer
	logger   *slog.Logger
	// answerBudget is the Acknowledger's RetryBudget; default 10 s.
	answerBudget time.Duration

	mu        sync.Mutex
	callbacks map[string][]string // execution ARN -> its callback step names
	pipelines map[string][]string // pipeline name -> its callback step names
	deletable map[string]bool     // bodies or tokens that may be deleted unanswered
}

var ciQueueSeq atomic.Int64

// ciNewEnv starts an emulator and creates the callback queue: on the
// emulator when motoEndpoint is "", else on that moto_server.
func ciNewEnv(t *testing.T, motoEndpoint string) *ciEnv {
	t.Helper()
	em := emulator.StartTest(t, emulator.Config{
		Timing:                emulator.Timing{StepDuration: 50 * time.Millisecond, StopDelay: 20 * time.Millisecond},
		CallbackQueueEndpoint: motoEndpoint,
		Seed:                  7,
	})
	env := &ciEnv{t: t, em: em, sm: em.SageMakerClient(), moto: motoEndpoint != "", logs: &testlog.Buffer{},
		callbacks: map[string][]string{}, pipelines: map[string][]string{}, deletable: map[string]bool{}}
	env.logger = env.logs.Logger()
	name := fmt.Sprintf("callbacks-%d", ciQueueSeq.Add(1))
	if env.moto {
		env.sqs = sqs.NewFromConfig(em.AWSConfig(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(motoEndpoint) })
		// The first request to a fresh moto_server loads its SQS backend: slow.
		out, err := env.sqs.CreateQueue(testCtx(t, 60*time.Second), &sqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatalf("create the moto queue: %v", err)
		}
		env.queueURL = aws.ToString(out.QueueUrl)
	} else {
		env.sqs = em.SQSClient()
		var err error
		if env.queueURL, err = em.CreateQueue(name); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(env.checkSecrets)
	return env
}

// pipeline creates a pipeline; callback steps without a queue get env's.
func (env *ciEnv) pipeline(name string, steps ...emulator.Step) {
	env.t.Helper()
	var callbacks []string
	for i := range steps {
		if steps[i].Type == emulator.StepTypeCallback {
			callbacks = append(callbacks, steps[i].Name)
			if steps[i].SqsQueueURL == "" {
				steps[i].SqsQueueURL = env.queueURL
			}
		}
	}
	if _, err := env.em.CreatePipeline(name, emulator.Definition(steps...)); err != nil {
		env.t.Fatal(err)
	}
	env.mu.Lock()
	env.pipelines[name] = callbacks
	env.mu.Unlock()
}

// execution starts an execution of the pipeline and waits until its first
// callback step runs; it returns the ARN and that step's token.
func (env *ciEnv) execution(ctx context.Context, pipeline string) (arn, token string) {
	env.t.Helper()
	arn, err := env.em.StartExecution(pipeline)
	if err != nil {
		env.t.Fatal(err)
	}
	env.mu.Lock()
	callbacks := env.pipelines[pipeline]
	env.callbacks[arn] = callbacks
	env.mu.Unlock()
	if len(callbacks) == 0 {
		return arn, ""
	}
	if err := env.em.WaitStepStatus(ctx, arn, callbacks[0], ciExecuting); err != nil {
		env.t.Fatal(err)
	}
	if token, err = env.em.CallbackToken(arn, callbacks[0]); err != nil {
		env.t.Fatal(err)
	}
	return arn, token
}

// stop stops an execution (without waiting) and waits until its callback
// step is Stopping, that is until the Stopping message is sent.
func (env *ciEnv) stop(ctx context.Context, arn string) {
	env.t.Helper()
	if _, err := pipelinestop.New(env.sm, fastWait).Stop(ctx, arn); err != nil {
		env.t.Fatalf("stop: %v", err)
	}
	env.mu.Lock()
	step := env.callbacks[arn][0]
	env.mu.Unlock()
	if err := env.em.WaitStepStatus(ctx, arn, step, ciStopping); err != nil {
		env.t.Fatal(err)
	}
}

// waitExecution waits until the execution is terminal and checks that its
// status is want.
func (env *ciEnv) waitExecution(ctx context.Context, arn, want string) {
	env.t.Helper()
	got, err := env.em.WaitExecutionStatus(ctx, arn, ciTerminal...)
	if err != nil {
		env.t.Fatalf("execution %s: %v", arn, err)
	}
	if got != want {
		_, reason, _ := env.em.ExecutionStatus(arn)
		env.t.Fatalf("execution %s is %s (%q), want %s", arn, got, reason, want)
	}
}

// allowDelete lets the consumer delete messages with this body or token
// before their step is answered (a pending step, an unknown token, a
// poison message deleted on purpose).
func (env *ciEnv) allowDelete(bodyOrToken string) {
	env.mu.Lock()
	env.deletable[bodyOrToken] = true
	env.mu.Unlock()
}

// mayDelete says whether a message with this body may be deleted now.
func (env *ciEnv) mayDelete(body string) bool {
	env.mu.Lock()
	ok := env.deletable[body]
	env.mu.Unlock()
	if ok {
		return true
	}
	var m struct {
		Token string `json:"token"`
	}
	if json.Unmarshal([]byte(body), &m) != nil || m.Token == "" {
		return false
	}
	env.mu.Lock()
	ok = env.deletable[m.Token]
	env.mu.Unlock()
	return ok || len(env.em.Answers(m.Token)) > 0
}

// requireAnsweredOnce checks that the token's step has exactly one
// effective answer, with the given outcome ("" for either), and returns it.
func (env *ciEnv) requireAnsweredOnce(token, outcome string) emulator.Answer {
	env.t.Helper()
	answers := env.em.Answers(token)
	if len(answers) == 0 {
		env.t.Fatalf("step %s was never answered", pipelinestop.CallbackToken(token))
	}
	first := answers[0]
	if first.Replay {
		env.t.Fatalf("the first answer to %s is a replay: %+v", pipelinestop.CallbackToken(token), answers)
	}
	for _, a := range answers[1:] {
		if !a.Replay || a.Outcome != first.Outcome {
			env.t.Fatalf("step %s answered more than once: %+v", pipelinestop.CallbackToken(token), answers)
		}
	}
	if outcome != "" && first.Outcome != outcome {
		env.t.Fatalf("step %s answered %s, want %s (%+v)", pipelinestop.CallbackToken(token), first.Outcome, outcome, first)
	}
	return first
}

// queueCounts returns the queue's visible, in-flight and delayed messages.
func (env *ciEnv) queueCounts(ctx context.Context) (visible, inFlight, delayed int, err error) {
	out, err := env.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(env.queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		return 0, 0, 0, err
	}
	n := func(k string) int { v, _ := strconv.Atoi(out.Attributes[k]); return v }
	return n("ApproximateNumberOfMessages"), n("ApproximateNumberOfMessagesNotVisible"), n("ApproximateNumberOfMessagesDelayed"), nil
}

// waitQueueEmpty polls the queue's counts until it holds no message at
// all, visible or not. A message left undeleted stays counted, so this
// fails when a message was lost in the consumer's hands.
func (env *ciEnv) waitQueueEmpty(ctx context.Context) {
	env.t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		v, f, d, err := env.queueCounts(ctx)
		if err == nil && v+f+d == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			env.t.Fatalf("queue not empty: %d visible, %d in flight, %d delayed (err %v)", v, f, d, err)
		}
	}
}

// ciMsg is a callback message taken off the queue.
type ciMsg struct{ token, status, body string }

// take receives n messages (bounded by ctx), deletes them and returns
// them in the order received, so that a test can send them back in the
// order and number it wants.
func (env *ciEnv) take(ctx context.Context, n int) []ciMsg {
	env.t.Helper()
	var got []ciMsg
	for len(got) < n {
		out, err := env.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(env.queueURL),
			MaxNumberOfMessages: int32(min(n-len(got), 10)), WaitTimeSeconds: 1, VisibilityTimeout: 60})
		if err != nil {
			env.t.Fatalf("take %d messages, got %d: %v", n, len(got), err)
		}
		for _, m := range out.Messages {
			var f struct{ Token, Status string }
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &f); err != nil {
				env.t.Fatalf("message %q: %v", aws.ToString(m.Body), err)
			}
			got = append(got, ciMsg{token: f.Token, status: f.Status, body: aws.ToString(m.Body)})
			if _, err := env.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(env.queueURL),
				ReceiptHandle: m.ReceiptHandle}); err != nil {
				env.t.Fatal(err)
			}
		}
	}
	return got
}

// find returns the body of the taken message with this token and status.
func (env *ciEnv) find(msgs []ciMsg, token, status string) string {
	env.t.Helper()
	for _, m := range msgs {
		if m.token == token && m.status == status {
			return m.body
		}
	}
	env.t.Fatalf("no %s message for %s among %d", status, pipelinestop.CallbackToken(token), len(msgs))
	return ""
}

// send sends the bodies one after the other: the queue keeps their order.
func (env *ciEnv) send(ctx context.Context, bodies ...string) {
	env.t.Helper()
	for _, b := range bodies {
		if _, err := env.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(env.queueURL), MessageBody: aws.String(b)}); err != nil {
			env.t.Fatal(err)
		}
	}
}

// checkSecrets fails the test when a log record holds a raw callback
// token of any execution the test started.
func (env *ciEnv) checkSecrets() {
	logs := env.logs.String()
	env.mu.Lock()
	defer env.mu.Unlock()
	for arn, steps := range env.callbacks {
		for _, step := range steps {
			if token, err := env.em.CallbackToken(arn, step); err == nil && strings.Contains(logs, token) {
				env.t.Errorf("the logs hold the raw callback token of %s", step)
			}
		}
	}
}

// ciEvents records a consumer's events and lets a test wait for them.
type ciEvents struct {
	mu      sync.Mutex
	list    []pipelinestop.Event
	changed chan struct{}
}

func newCiEvents() *ciEvents { return &ciEvents{changed: make(chan struct{})} }

func (e *ciEvents) add(ev pipelinestop.Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

func (e *ciEvents) all() []pipelinestop.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

func (e *ciEvents) count(typ pipelinestop.EventType) int {
	n := 0
	for _, ev := range e.all() {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// wait waits until cond holds for the events seen so far.
func (e *ciEvents) wait(ctx context.Context, t *testing.T, what string, cond func([]pipelinestop.Event) bool) {
	t.Helper()
	for {
		e.mu.Lock()
		ok := cond(e.list)
		ch := e.changed
		e.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitCount waits until n events of typ were seen.
func (e *ciEvents) waitCount(ctx context.Context, t *testing.T, typ pipelinestop.EventType, n int) {
	t.Helper()
	e.wait(ctx, t, fmt.Sprintf("%d %s events", n, typ), func(evs []pipelinestop.Event) bool {
		c := 0
		for _, ev := range evs {
			if ev.Type == typ {
				c++
			}
		}
		return c >= n
	})
}

// ciCalls records the calls of a test's Handler.
type ciCalls struct {
	mu      sync.Mutex
	execute map[string]int
	cleanup map[string]int
	started chan string // tokens, as Execute starts
}

func newCiCalls() *ciCalls {
	return &ciCalls{execute: map[string]int{}, cleanup: map[string]int{}, started: make(chan string, 64)}
}

func (c *ciCalls) executed(m *pipelinestop.CallbackMessage) {
	c.mu.Lock()
	c.execute[string(m.Token)]++
	c.mu.Unlock()
	c.started <- string(m.Token)
}

func (c *ciCalls) cleaned(m *pipelinestop.CallbackMessage) {
	c.mu.Lock()
	c.cleanup[string(m.Token)]++
	c.mu.Unlock()
}

func (c *ciCalls) counts(token string) (execute, cleanup int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.execute[token], c.cleanup[token]
}

// waitStarted waits until Execute has started n more times and returns
// the tokens.
func (c *ciCalls) waitStarted(ctx context.Context, t *testing.T, n int) []string {
	t.Helper()
	var tokens []string
	for len(tokens) < n {
		select {
		case tok := <-c.started:
			tokens = append(tokens, tok)
		case <-ctx.Done():
			t.Fatalf("Execute started %d times, want %d", len(tokens), n)
		}
	}
	return tokens
}

// ciQueueSpy wraps the consumer's SQS client (a real *sqs.Client): it
// records what was received and deleted, and checks at every delete that
// the message's step is already answered.
type ciQueueSpy struct {
	inner pipelinestop.QueueAPIClient
	env   *ciEnv

	mu         sync.Mutex
	bodies     map[string]string  // receipt handle -> body
	ids        map[string]string  // receipt handle -> message ID
	received   map[string]bool    // message IDs
	receipts   map[string]int     // message ID -> times received
	extensions map[string][]int32 // message ID -> visibility timeouts set
	deleted    map[string]bool    // message IDs deleted successfully
	violations []string
	changed    chan struct{} // closed and replaced after every call
}

// notifyLocked wakes the waiters; callers hold s.mu.
func (s *ciQueueSpy) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// wait waits until cond, called with s.mu held, holds.
func (s *ciQueueSpy) wait(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (s *ciQueueSpy) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out, err := s.inner.ReceiveMessage(ctx, in, optFns...)
	if err == nil {
		s.mu.Lock()
		for _, m := range out.Messages {
			h := aws.ToString(m.ReceiptHandle)
			s.bodies[h], s.ids[h] = aws.ToString(m.Body), aws.ToString(m.MessageId)
			s.received[aws.ToString(m.MessageId)] = true
			s.receipts[aws.ToString(m.MessageId)]++
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
	return out, err
}

func (s *ciQueueSpy) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	s.mu.Lock()
	for _, e := range in.Entries {
		if body := s.bodies[aws.ToString(e.ReceiptHandle)]; !s.env.mayDelete(body) {
			s.violations = append(s.violations, fmt.Sprintf("message %s deleted before its step was answered",
				s.ids[aws.ToString(e.ReceiptHandle)]))
		}
	}
	s.mu.Unlock()
	out, err := s.inner.DeleteMessageBatch(ctx, in, optFns...)
	if err == nil {
		s.mu.Lock()
		for _, ok := range out.Successful {
			for _, e := range in.Entries {
				if aws.ToString(e.Id) == aws.ToString(ok.Id) {
					s.deleted[s.ids[aws.ToString(e.ReceiptHandle)]] = true
				}
			}
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
	return out, err
}

func (s *ciQueueSpy) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	out, err := s.inner.ChangeMessageVisibilityBatch(ctx, in, optFns...)
	if err == nil {
		s.mu.Lock()
		for _, ok := range out.Successful {
			for _, e := range in.Entries {
				if aws.ToString(e.Id) == aws.ToString(ok.Id) {
					id := s.ids[aws.ToString(e.ReceiptHandle)]
					s.extensions[id] = append(s.extensions[id], e.VisibilityTimeout)
				}
			}
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
	return out, err
}

func (s *ciQueueSpy) snapshot() (received, deleted map[string]bool, violations []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.received), maps.Clone(s.deleted), slices.Clone(s.violations)
}

// ciAnswerSpy wraps the consumer's SageMaker client (a real
// *sagemaker.Client) and records every answer call per token, accepted or
// not.
type ciAnswerSpy struct {
	inner pipelinestop.CallbackAPIClient

	mu  sync.Mutex
	ops map[string][]string // token -> "Success" or "Failure" per call
}

func (s *ciAnswerSpy) record(token *string, op string) {
	s.mu.Lock()
	s.ops[aws.ToString(token)] = append(s.ops[aws.ToString(token)], op)
	s.mu.Unlock()
}

func (s *ciAnswerSpy) SendPipelineExecutionStepSuccess(ctx context.Context, in *sagemaker.SendPipelineExecutionStepSuccessInput, optFns ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepSuccessOutput, error) {
	s.record(in.CallbackToken, emulator.OutcomeSuccess)
	return s.inner.SendPipelineExecutionStepSuccess(ctx, in, optFns...)
}

func (s *ciAnswerSpy) SendPipelineExecutionStepFailure(ctx context.Context, in *sagemaker.SendPipelineExecutionStepFailureInput, optFns ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepFailureOutput, error) {
	s.record(in.CallbackToken, emulator.OutcomeFailure)
	return s.inner.SendPipelineExecutionStepFailure(ctx, in, optFns...)
}

func (s *ciAnswerSpy) calls() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for k, v := range s.ops {
		out[k] = slices.Clone(v)
	}
	return out
}

// ciConsumer is a Consumer running in the background.
type ciConsumer struct {
	c       *pipelinestop.Consumer
	events  *ciEvents
	queue   *ciQueueSpy
	answers *ciAnswerSpy
	cancel  context.CancelFunc
	done    chan error

	stopOnce sync.Once
	err      error
}

// runConsumer starts a Consumer of env's queue over queue and sm (env's
// clients when nil), with options fit for tests: 1 s long polls, 2 s
// visibility, retry-later delays from 1 s, a 2 s drain and fast answer
// retries. The test's Cleanup stops it.
func (env *ciEnv) runConsumer(h pipelinestop.Handler, queue pipelinestop.QueueAPIClient, sm pipelinestop.CallbackAPIClient, optFns ...func(*pipelinestop.ConsumerOptions)) *ciConsumer {
	env.t.Helper()
	if queue == nil {
		queue = env.sqs
	}
	if sm == nil {
		sm = env.sm
	}
	cc := &ciConsumer{events: newCiEvents(), done: make(chan error, 1)}
	cc.queue = &ciQueueSpy{inner: queue, env: env, bodies: map[string]string{}, ids: map[string]string{},
		received: map[string]bool{}, receipts: map[string]int{}, extensions: map[string][]int32{},
		deleted: map[string]bool{}, changed: make(chan struct{})}
	cc.answers = &ciAnswerSpy{inner: sm, ops: map[string][]string{}}
	ack := pipelinestop.NewAcknowledger(cc.answers, func(o *pipelinestop.Options) {
		o.RetryMinDelay, o.RetryMaxDelay, o.RetryBudget = 10*time.Millisecond, 100*time.Millisecond, 10*time.Second
		if env.answerBudget > 0 {
			o.RetryBudget = env.answerBudget
		}
		o.Logger, o.OnEvent = env.logger, cc.events.add
	})
	c, err := pipelinestop.NewConsumer(cc.queue, env.queueURL, ack, h, func(o *pipelinestop.ConsumerOptions) {
		o.WaitTimeSeconds = 1
		o.VisibilityTimeout = 2 * time.Second
		o.RetryLaterMinDelay, o.RetryLaterMaxDelay = time.Second, 2*time.Second
		o.DrainTimeout = 2 * time.Second
		o.ReceiveRetryMinDelay, o.ReceiveRetryMaxDelay = 50*time.Millisecond, 200*time.Millisecond
		for _, fn := range optFns {
			fn(o)
		}
	})
	if err != nil {
		env.t.Fatal(err)
	}
	cc.c = c
	ctx, cancel := context.WithCancel(context.Background())
	cc.cancel = cancel
	go func() { cc.done <- c.Run(ctx) }()
	env.t.Cleanup(func() {
		if err := cc.stop(); err != nil {
			env.t.Errorf("consumer: %v", err)
		}
	})
	return cc
}

// stop cancels Run and waits (at most 15 s) for it to return.
func (cc *ciConsumer) stop() error {
	cc.stopOnce.Do(func() {
		cc.cancel()
		select {
		case cc.err = <-cc.done:
		case <-time.After(15 * time.Second):
			cc.err = errors.New("Run did not return within 15 s of its context's end")
		}
	})
	return cc.err
}

// running reports whether Run has not returned.
func (cc *ciConsumer) running() bool {
	select {
	case err := <-cc.done:
		cc.done <- err
		return false
	default:
		return true
	}
}

// check fails the test on a delete before an answer, or a step answered
// both ways by this consumer.
func (cc *ciConsumer) check(t *testing.T) {
	t.Helper()
	if _, _, v := cc.queue.snapshot(); len(v) > 0 {
		t.Errorf("deletes before answers: %v", v)
	}
	for token, ops := range cc.answers.calls() {
		if kinds := slices.Compact(slices.Sorted(slices.Values(ops))); len(kinds) > 1 {
			t.Errorf("step %s answered both ways: %v", pipelinestop.CallbackToken(token), ops)
		}
	}
}

// ciExecuteUntil is an Execute that records its call and works until
// release is closed (then answers success) or its context ends.
func ciExecuteUntil(calls *ciCalls, release <-chan struct{}) func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
	return func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
		calls.executed(m)
		select {
		case <-release:
			return map[string]string{"approved": "yes"}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// ciCallback is a callback step named Approve with arguments of several
// JSON types.
func ciCallback() emulator.Step {
	return emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, Outputs: []string{"approved", "model"},
		Arguments: map[string]any{"model": "m-1", "threshold": 0.9}}
}

// ciStoryStop is the whole story of a stop: a Consumer runs, the step's
// Executing message is being handled (Execute blocks until its context is
// canceled, or says another system answers later), StopAndWait stops the
// execution, the Stopping message makes the Consumer clean up and answer,
// and the execution ends Stopped with its step answered once.
func ciStoryStop(t *testing.T, env *ciEnv, pending bool) {
	ctx := testCtx(t, 20*time.Second)
	env.pipeline("story", ciCallback(), emulator.Step{Name: "Train", Type: "Training", DependsOn: []string{"Approve"}})
	arn, token := env.execution(ctx, "story")
	if pending {
		env.allowDelete(token) // ErrPending: the Executing message is deleted unanswered
	}
	calls := newCiCalls()
	var cleanupMsg atomic.Pointer[pipelinestop.CallbackMessage]
	cc := env.runConsumer(pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			calls.executed(m)
			if pending {
				return nil, fmt.Errorf("job submitted: %w", pipelinestop.ErrPending)
			}
			<-ctx.Done()
			return nil, ctx.Err()
		},
		Cleanup: func(ctx context.Context, m *pipelinestop.CallbackMessage) error {
			calls.cleaned(m)
			cleanupMsg.Store(m)
			return nil
		},
	}, nil, nil)

	if got := calls.waitStarted(ctx, t, 1)[0]; got != token {
		t.Fatalf("Execute got token %s, want %s", pipelinestop.CallbackToken(got), pipelinestop.CallbackToken(token))
	}
	if pending {
		cc.events.waitCount(ctx, t, pipelinestop.EventPending, 1)
	}
	out, err := pipelinestop.New(env.sm, fastWait).StopAndWait(ctx, arn)
	if err != nil {
		t.Fatalf("StopAndWait: %v", err)
	}
	if out.Status != ciStopped || !out.Stop.Accepted {
		t.Fatalf("outcome %+v, stop %+v; want an accepted stop and Stopped", out, out.Stop)
	}
	if err := cc.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	if e, c := calls.counts(token); e != 1 || c != 1 {
		t.Errorf("Execute ran %d times, Cleanup %d times; want 1 and 1", e, c)
	}
	if m := cleanupMsg.Load(); m == nil || !m.IsStopping() || m.PipelineExecutionARN != arn || string(m.Arguments["model"]) != `"m-1"` {
		t.Errorf("Cleanup got %+v, want the Stopping message of %s with its arguments", m, arn)
	}
	a := env.requireAnsweredOnce(token, emulator.OutcomeSuccess)
	if want := pipelinestop.DeriveToken("SendPipelineExecutionStepSuccess", token); a.ClientRequestToken != want {
		t.Errorf("answer token %q, want the derived %q", a.ClientRequestToken, want)
	}
	if len(env.em.Answers(token)) != 1 {
		t.Errorf("answers %+v, want exactly one call", env.em.Answers(token))
	}
	if s, _ := env.em.StepStatus(arn, "Approve"); s != ciStopped {
		t.Errorf("step Approve is %q, want Stopped", s)
	}
	if s, _ := env.em.StepStatus(arn, "Train"); s != "" {
		t.Errorf("step Train is %q; it must never start", s)
	}
	wantCanceled := 1
	if pending {
		wantCanceled = 0
	}
	if n := cc.events.count(pipelinestop.EventHandlerCanceled); n != wantCanceled {
		t.Errorf("%d handler_canceled events, want %d", n, wantCanceled)
	}
	cc.check(t)
	env.waitQueueEmpty(ctx)
}

// ciStoryAnswer: the Executing message answered with outputs makes the
// step Succeeded and the execution go on to its next step.
func ciStoryAnswer(t *testing.T, env *ciEnv) {
	ctx := testCtx(t, 20*time.Second)
	env.pipeline("answer", ciCallback(), emulator.Step{Name: "Train", Type: "Training", DependsOn: []string{"Approve"}})
	arn, token := env.execution(ctx, "answer")
	calls := newCiCalls()
	cc := env.runConsumer(pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			calls.executed(m)
			var model string
			var threshold float64
			if err := json.Unmarshal(m.Arguments["model"], &model); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(m.Arguments["threshold"], &threshold); err != nil {
				return nil, err
			}
			return map[string]string{"approved": strconv.FormatBool(threshold > 0.5), "model": model}, nil
		},
		Cleanup: func(ctx context.Context, m *pipelinestop.CallbackMessage) error {
			calls.cleaned(m)
			return nil
		},
	}, nil, nil)

	if err := env.em.WaitStepStatus(ctx, arn, "Train", ciExecuting, ciSucceeded); err != nil {
		t.Fatalf("the execution did not go on to Train: %v", err)
	}
	env.waitExecution(ctx, arn, ciSucceeded)
	a := env.requireAnsweredOnce(token, emulator.OutcomeSuccess)
	if want := map[string]string{"approved": "true", "model": "m-1"}; !maps.Equal(a.OutputParameters, want) {
		t.Errorf("outputs %v, want %v", a.OutputParameters, want)
	}
	steps, err := env.sm.ListPipelineExecutionSteps(ctx, &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range steps.PipelineExecutionSteps {
		if aws.ToString(s.StepName) != "Approve" {
			continue
		}
		found = s.StepStatus == "Succeeded" && s.Metadata != nil && s.Metadata.Callback != nil &&
			len(s.Metadata.Callback.OutputParameters) == 2
	}
	if !found {
		t.Errorf("ListPipelineExecutionSteps does not show Approve Succeeded with its two outputs: %+v", steps.PipelineExecutionSteps)
	}
	if err := cc.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if e, c := calls.counts(token); e != 1 || c != 0 {
		t.Errorf("Execute ran %d times, Cleanup %d times; want 1 and 0", e, c)
	}
	cc.check(t)
	env.waitQueueEmpty(ctx)
}

// ciDuplicates sends every message of two steps twice, the one answered
// by Execute and the one stopped, and once more after they are answered:
// each handler runs once, each step is answered once, and the queue ends
// empty.
func ciDuplicates(t *testing.T, env *ciEnv) {
	ctx := testCtx(t, 20*time.Second)
	env.pipeline("dups", ciCallback())
	arnA, tokA := env.execution(ctx, "dups")
	arnB, tokB := env.execution(ctx, "dups")
	env.stop(ctx, arnB)
	msgs := env.take(ctx, 3)
	execA, execB, stopB := env.find(msgs, tokA, ciExecuting), env.find(msgs, tokB, ciExecuting), env.find(msgs, tokB, ciStopping)
	env.send(ctx, execA, execA, execB, execB, stopB, stopB)

	calls := newCiCalls()
	cc := env.runConsumer(pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			calls.executed(m)
			if m.Token == pipelinestop.CallbackToken(tokB) {
				<-ctx.Done() // canceled by B's Stopping message
				return nil, ctx.Err()
			}
			return map[string]string{"approved": "yes"}, nil
		},
		Cleanup: func(ctx context.Context, m *pipelinestop.CallbackMessage) error {
			calls.cleaned(m)
			return nil
		},
	}, nil, nil)
	env.waitExecution(ctx, arnA, ciSucceeded)
	env.waitExecution(ctx, arnB, ciStopped)
	env.waitQueueEmpty(ctx)

	// Late duplicates, after the answers: deleted without running a handler.
	env.send(ctx, execA, stopB, execB)
	env.waitQueueEmpty(ctx)
	if err := cc.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	if e, c := calls.counts(tokA); e != 1 || c != 0 {
		t.Errorf("step A: Execute ran %d times, Cleanup %d; want 1 and 0", e, c)
	}
	e, c := calls.counts(tokB)
	if c != 1 || e > 1 {
		t.Errorf("step B: Execute ran %d times, Cleanup %d; want at most 1 and 1", e, c)
	}
	if !env.moto && e != 0 {
		// The emulator hands all six messages out in one receive, so B's
		// work is never started.
		t.Errorf("step B: Execute ran %d times; a step being stopped must not start", e)
	}
	env.requireAnsweredOnce(tokA, emulator.OutcomeSuccess)
	env.requireAnsweredOnce(tokB, emulator.OutcomeSuccess)
	cc.check(t)
	received, deleted, _ := cc.queue.snapshot()
	if len(received) != 9 || !maps.Equal(received, deleted) {
		t.Errorf("received %d messages, deleted %d; want 9 and all of them", len(received), len(deleted))
	}
}

// ciCrash: consumer 1 holds several steps' messages and is killed;
// consumer 2 finishes the job.
//
// What "killed" means here: a killed process makes no call any more. It
// does not answer the steps it was working on, does not delete their
// messages, does not hand them back and no longer extends their
// visibility: they stay invisible until their visibility timeout (1 s)
// expires, then SQS delivers them again. In process this is consumer 1
// with every HTTP request of its SQS and SageMaker clients going through a
// transport that is cut (requests in flight aborted, later ones failing)
// at the moment of the kill, and handlers blocked on a channel (a process
// stuck mid-work) that is closed only after its Run was canceled in the
// test's Cleanup, when nothing it does can reach a server. Its goroutines
// still exist until then, as a dead process's effects would not.
func ciCrash(t *testing.T, env *ciEnv) {
	const n, stopped = 6, 3
	ctx := testCtx(t, 30*time.Second)
	env.pipeline("crash", emulator.Step{Name: "Work", Type: emulator.StepTypeCallback, Outputs: []string{"by"}})
	arns, tokens := make([]string, n), make([]string, n)
	for i := range n {
		arns[i], tokens[i] = env.execution(ctx, "crash")
	}

	cut := newCiCutTransport()
	q1 := sqs.NewFromConfig(env.em.AWSConfig(), func(o *sqs.Options) {
		o.HTTPClient, o.RetryMaxAttempts = &http.Client{Transport: cut}, 1
		if env.moto {
			o.BaseEndpoint = env.sqs.Options().BaseEndpoint
		}
	})
	sm1 := env.em.SageMakerClient(func(o *sagemaker.Options) { o.HTTPClient, o.RetryMaxAttempts = &http.Client{Transport: cut}, 1 })
	stuck := make(chan struct{})
	started1 := newCiCalls()
	c1 := env.runConsumer(pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			started1.executed(m)
			<-stuck // stuck mid-work, deaf to its context
			return nil, errors.New("consumer 1 was killed")
		},
		Cleanup: func(ctx context.Context, m *pipelinestop.CallbackMessage) error {
			<-stuck
			return errors.New("consumer 1 was killed")
		},
	}, q1, sm1, func(o *pipelinestop.ConsumerOptions) {
		o.VisibilityTimeout = time.Second
		o.DrainTimeout = -1
		o.Concurrency = 2 * n
	})
	t.Cleanup(func() { // before c1's own Cleanup, which waits for Run
		c1.cancel()
		close(stuck)
	})
	started1.waitStarted(ctx, t, n)
	for i := range stopped {
		env.stop(ctx, arns[i])
	}
	// Consumer 1 receives the Stopping messages too: it cancels the
	// (deaf) Execute of each and waits for it.
	c1.events.waitCount(ctx, t, pipelinestop.EventHandlerCanceled, stopped)

	cut.cut() // kill -9
	held, _, _ := c1.queue.snapshot()
	if len(held) != n+stopped {
		t.Fatalf("consumer 1 held %d messages, want %d", len(held), n+stopped)
	}
	if calls := c1.answers.calls(); len(calls) != 0 {
		t.Fatalf("consumer 1 answered before it was killed: %v", calls)
	}

	calls2 := newCiCalls()
	c2 := env.runConsumer(pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			calls2.executed(m)
			return map[string]string{"by": "consumer-2"}, nil
		},
		Cleanup: func(ctx context.Context, m *pipelinestop.CallbackMessage) error {
			calls2.cleaned(m)
			return errors.New("cleaned up after a crash")
		},
	}, nil, nil)
	for i := range n {
		want := ciSucceeded
		if i < stopped {
			want = ciStopped
		}
		env.waitExecution(ctx, arns[i], want)
	}
	env.waitQueueEmpty(ctx)
	if err := c2.stop(); err != nil {
		t.Fatalf("consumer 2: %v", err)
	}

	for i, tok := range tokens {
		if i < stopped {
			// Either answer lets a stopping step stop: Execute's success
			// when the Executing message came back first, Cleanup's
			// failure otherwise; never both.
			a := env.requireAnsweredOnce(tok, "")
			if a.Outcome == emulator.OutcomeFailure && a.FailureReason != "cleaned up after a crash" {
				t.Errorf("step %d failure reason %q", i, a.FailureReason)
			}
			continue
		}
		a := env.requireAnsweredOnce(tok, emulator.OutcomeSuccess)
		if a.OutputParameters["by"] != "consumer-2" {
			t.Errorf("step %d answered with %v", i, a.OutputParameters)
		}
		if e, c := calls2.counts(tok); e != 1 || c != 0 {
			t.Errorf("step %d: consumer 2 ran Execute %d times, Cleanup %d; want 1 and 0", i, e, c)
		}
	}
	c2.check(t)
	received2, deleted2, _ := c2.queue.snapshot()
	for id := range held {
		if !received2[id] || !deleted2[id] {
			t.Errorf("message %s held by the killed consumer: received by consumer 2 %v, deleted %v", id, received2[id], deleted2[id])
		}
	}
}

// ciCutTransport is an HTTP transport that can be cut, as the network of
// a killed process is: cut aborts the requests in flight and fails every
// later one before it leaves.
type ciCutTransport struct {
	base   http.RoundTripper
	ctx    context.Context
	cancel context.CancelFunc
}

func newCiCutTransport() *ciCutTransport {
	ctx, cancel := context.WithCancel(context.Background())
	return &ciCutTransport{base: http.DefaultTransport.(*http.Transport).Clone(), ctx: ctx, cancel: cancel}
}

func (c *ciCutTransport) cut() { c.cancel() }

var errCiCut = errors.New("the process was killed: its network is cut")

func (c *ciCutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.ctx.Err() != nil {
		return nil, errCiCut
	}
	ctx, cancel := context.WithCancel(req.Context())
	stop := context.AfterFunc(c.ctx, cancel)
	resp, err := c.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	resp.Body = &ciCutBody{ReadCloser: resp.Body, done: func() { stop(); cancel() }}
	return resp, nil
}

// ciCutBody releases its request's context when closed.
type ciCutBody struct {
	io.ReadCloser
	done func()
}

func (b *ciCutBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

func TestConsumerIntegrationStory(t *testing.T) {
	t.Parallel()
	t.Run("stop while Execute runs", func(t *testing.T) { ciStoryStop(t, ciNewEnv(t, ""), false) })
	t.Run("stop after Execute said pending", func(t *testing.T) { ciStoryStop(t, ciNewEnv(t, ""), true) })
	t.Run("answer with outputs", func(t *testing.T) { ciStoryAnswer(t, ciNewEnv(t, "")) })
}

func TestConsumerIntegrationDuplicates(t *testing.T) {
	t.Parallel()
	ciDuplicates(t, ciNewEnv(t, ""))
}

func TestConsumerIntegrationCrash(t *testing.T) {
	t.Parallel()
	ciCrash(t, ciNewEnv(t, ""))
}

// TestConsumerIntegrationMoto runs the SQS paths against moto_server: the
// emulator's callback steps send their messages to moto's queue, and the
// consumer reads them there.
func TestConsumerIntegrationMoto(t *testing.T) {
	t.Parallel()
	endpoint := motoserver.Start(t)
	t.Run("stop while Execute runs", func(t *testing.T) { ciStoryStop(t, ciNewEnv(t, endpoint), false) })
	t.Run("stop after Execute said pending", func(t *testing.T) { ciStoryStop(t, ciNewEnv(t, endpoint), true) })
	t.Run("answer with outputs", func(t *testing.T) { ciStoryAnswer(t, ciNewEnv(t, endpoint)) })
	t.Run("duplicates", func(t *testing.T) { ciDuplicates(t, ciNewEnv(t, endpoint)) })
	t.Run("crash", func(t *testing.T) { ciCrash(t, ciNewEnv(t, endpoint)) })
}

// Both orders of the two messages of one token, in one receive and in
// separate ones: the step is cleaned up and answered once, and its work
// is never started once the Stopping message is known.
func TestConsumerIntegrationMessageOrders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		first, later  string // statuses, in order: E = Executing, S = Stopping
		wantExecute   int
		wantCancelled int
	}{
		{name: "Executing and Stopping in one receive", first: "ES"},
		{name: "Stopping and Executing in one receive", first: "SE"},
		{name: "Stopping, later Executing", first: "S", later: "E"},
		{name: "Executing, later Stopping", first: "E", later: "S", wantExecute: 1, wantCancelled: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := ciNewEnv(t, "")
			ctx := testCtx(t, 20*time.Second)
			env.pipeline("orders", ciCallback())
			arn, token := env.execution(ctx, "orders")
			env.stop(ctx, arn)
			msgs := env.take(ctx, 2)
			body := map[rune]string{'E': env.find(msgs, token, ciExecuting), 'S': env.find(msgs, token, ciStopping)}
			bodies := func(s string) (out []string) {
				for _, r := range s {
					out = append(out, body[r])
				}
				return out
			}

			env.send(ctx, bodies(tc.first)...)
			calls := newCiCalls()
			cc := env.runConsumer(pipelinestop.Handler{
				Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
					calls.executed(m)
					<-ctx.Done()
					return nil, ctx.Err()
				},
				Cleanup: func(ctx context.Context, m *pipelinestop.CallbackMessage) error {
					calls.cleaned(m)
					return nil
				},
			}, nil, nil)
			switch tc.later {
			case "E":
				env.waitExecution(ctx, arn, ciStopped)
				env.waitQueueEmpty(ctx)
				env.send(ctx, bodies(tc.later)...)
			case "S":
				calls.waitStarted(ctx, t, 1)
				env.send(ctx, bodies(tc.later)...)
			}
			env.waitExecution(ctx, arn, ciStopped)
			env.waitQueueEmpty(ctx)
			if err := cc.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if e, c := calls.counts(token); e != tc.wantExecute || c != 1 {
				t.Errorf("Execute ran %d times, Cleanup %d; want %d and 1", e, c, tc.wantExecute)
			}
			if n := cc.events.count(pipelinestop.EventHandlerCanceled); n != tc.wantCancelled {
				t.Errorf("%d handler_canceled events, want %d", n, tc.wantCancelled)
			}
			env.requireAnsweredOnce(token, emulator.OutcomeSuccess)
			if calls := cc.answers.calls()[token]; len(calls) != 1 {
				t.Errorf("answer calls %v, want one", calls)
			}
			cc.check(t)
		})
	}
}

// Poison messages, several of them carrying the real token of a running
// step: they never answer it. Left alone they come back after the
// retry-later delay (for the queue's redrive policy); with DeleteMalformed
// they are deleted. The consumer keeps answering valid messages meanwhile.
func TestConsumerIntegrationPoison(t *testing.T) {
	t.Parallel()
	for _, deleteMalformed := range []bool{false, true} {
		t.Run(fmt.Sprintf("DeleteMalformed=%v", deleteMalformed), func(t *testing.T) {
			t.Parallel()
			env := ciNewEnv(t, "")
			ctx := testCtx(t, 20*time.Second)
			env.pipeline("poison", ciCallback())
			arnP, tokP := env.execution(ctx, "poison")
			execP := env.find(env.take(ctx, 1), tokP, ciExecuting) // the real message of P, held back
			arnQ, tokQ := env.execution(ctx, "poison")

			msg := func(fields string) string {
				return `{"token":"` + tokP + `","pipelineExecutionArn":"` + arnP + `"` + fields + `}`
			}
			poison := []string{
				"token=" + tokP + " please approve",                                  // not JSON
				`{"token":"` + tokP + `","pipelineExecutionArn":"` + arnP,            // truncated
				`["` + tokP + `"]`,                                                   // not an object
				strings.Replace(msg(`,"status":"Executing"`), tokP, tokP[:9]+"!", 1), // bad token
				strings.Replace(msg(`,"status":"Executing"`), tokP, tokP[:9], 1),     // short token
				strings.Replace(msg(`,"status":"Executing"`), arnP, "arn:aws:sagemaker:us-east-1:123456789012:pipeline/poison", 1), // bad ARN
				msg(`,"status":"Paused"`),                      // unknown status
				msg(`,"arguments":[1,2],"status":"Executing"`), // arguments not an object
				msg(`,"Token":"AAAAAAAAAA"`),                   // two different tokens
			}
			unknown := strings.Replace(msg(`,"status":"Executing"`), tokP, "Zz00Zz00Zz", 1) // valid, but no such step
			env.allowDelete("Zz00Zz00Zz")
			if deleteMalformed {
				for _, p := range poison {
					env.allowDelete(p)
				}
			}
			env.send(ctx, poison...)
			env.send(ctx, unknown)

			calls := newCiCalls()
			cc := env.runConsumer(pipelinestop.Handler{
				Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
					calls.executed(m)
					return map[string]string{"approved": "yes"}, nil
				},
			}, nil, nil, func(o *pipelinestop.ConsumerOptions) { o.DeleteMalformed = deleteMalformed })

			// Seen once each; left alone, seen again after the delay.
			seen := 1
			if !deleteMalformed {
				seen = 2
			}
			cc.events.wait(ctx, t, fmt.Sprintf("every poison message seen %d times", seen), func(evs []pipelinestop.Event) bool {
				per := map[string]int{}
				for _, ev := range evs {
					if ev.Type == pipelinestop.EventMalformed {
						per[ev.MessageID]++
					}
				}
				if len(per) > len(poison) {
					t.Fatalf("%d distinct malformed messages, want %d", len(per), len(poison))
				}
				for _, c := range per {
					if c < seen {
						return false
					}
				}
				return len(per) == len(poison)
			})
			env.waitExecution(ctx, arnQ, ciSucceeded) // valid work goes on
			cc.events.wait(ctx, t, "the answer for the unknown token", func(evs []pipelinestop.Event) bool {
				return slices.ContainsFunc(evs, func(ev pipelinestop.Event) bool {
					return ev.Type == pipelinestop.EventAnswered && ev.CallbackToken == "Zz00Zz00Zz" && errors.Is(ev.Err, pipelinestop.ErrNotFound)
				})
			})
			if err := cc.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}

			if a := env.em.Answers(tokP); len(a) != 0 {
				t.Fatalf("a poison message answered step P: %+v", a)
			}
			if s, _ := env.em.StepStatus(arnP, "Approve"); s != ciExecuting {
				t.Fatalf("step P is %s, want Executing", s)
			}
			for tok := range cc.answers.calls() {
				if tok != tokQ && tok != "Zz00Zz00Zz" {
					t.Errorf("an answer was attempted for %s", pipelinestop.CallbackToken(tok))
				}
			}
			env.requireAnsweredOnce(tokQ, emulator.OutcomeSuccess)
			cc.check(t)
			v, f, d, err := env.queueCounts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if deleteMalformed {
				if v+f+d != 0 {
					t.Errorf("%d messages left; DeleteMalformed deletes the poison", v+f+d)
				}
			} else {
				if v+f+d != len(poison) {
					t.Errorf("%d messages left, want the %d poison messages", v+f+d, len(poison))
				}
				// Made visible again after a delay that doubles with the
				// receive count: never at once.
				first := map[string]pipelinestop.Event{}
				for _, ev := range cc.events.all() {
					if ev.Type != pipelinestop.EventMalformed {
						continue
					}
					prev, ok := first[ev.MessageID]
					if !ok {
						first[ev.MessageID] = ev
						if ev.Delay != time.Second {
							t.Errorf("first retry delay %v, want 1s", ev.Delay)
						}
						continue
					}
					if gap := ev.Time.Sub(prev.Time); gap < 900*time.Millisecond {
						t.Errorf("poison message %s came back after %v, before its 1 s delay", ev.MessageID, gap)
					}
					if ev.Delay != 2*time.Second {
						t.Errorf("second retry delay %v, want 2s", ev.Delay)
					}
				}
				return
			}

			// P's real message is still answered normally.
			env.send(ctx, execP)
			cc2 := env.runConsumer(pipelinestop.Handler{
				Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
					return map[string]string{"approved": "yes"}, nil
				},
			}, nil, nil)
			env.waitExecution(ctx, arnP, ciSucceeded)
			env.requireAnsweredOnce(tokP, emulator.OutcomeSuccess)
			cc2.check(t)
		})
	}
}

// A handler or cleanup that panics fails its step; the consumer goes on.
func TestConsumerIntegrationPanics(t *testing.T) {
	t.Parallel()
	env := ciNewEnv(t, "")
	ctx := testCtx(t, 20*time.Second)
	step := func(mode string) emulator.Step {
		return emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, Arguments: map[string]any{"mode": mode}}
	}
	env.pipeline("panics", step("panic"))
	env.pipeline("stopped", step("block"))
	env.pipeline("fine", step("ok"))
	arnX, tokX := env.execution(ctx, "panics")
	arnZ, tokZ := env.execution(ctx, "stopped")
	env.stop(ctx, arnZ)

	cc := env.runConsumer(pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			switch string(m.Arguments["mode"]) {
			case `"panic"`:
				panic("boom")
			case `"block"`:
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return map[string]string{}, nil
		},
		Cleanup: func(ctx context.Context, m *pipelinestop.CallbackMessage) error {
			panic("cleanup boom")
		},
	}, nil, nil)
	env.waitExecution(ctx, arnX, ciFailed)
	env.waitExecution(ctx, arnZ, ciStopped)
	if !cc.running() {
		t.Fatal("the consumer stopped after a panic")
	}
	// Work that arrives after the panics is still done.
	arnY, tokY := env.execution(ctx, "fine")
	env.waitExecution(ctx, arnY, ciSucceeded)
	env.waitQueueEmpty(ctx)
	if err := cc.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	if a := env.requireAnsweredOnce(tokX, emulator.OutcomeFailure); !strings.Contains(a.FailureReason, "panic: boom") {
		t.Errorf("step X failure reason %q, want the panic", a.FailureReason)
	}
	if a := env.requireAnsweredOnce(tokZ, emulator.OutcomeFailure); !strings.Contains(a.FailureReason, "panic: cleanup boom") {
		t.Errorf("step Z failure reason %q, want the panic", a.FailureReason)
	}
	env.requireAnsweredOnce(tokY, emulator.OutcomeSuccess)
	if _, reason, _ := env.em.ExecutionStatus(arnX); reason != emulator.ExecutionFailureReason {
		t.Errorf("execution X failure reason %q, want SageMaker's %q (the panic is the step's reason)", reason, emulator.ExecutionFailureReason)
	}
	if n := cc.events.count(pipelinestop.EventPanic); n != 2 {
		t.Errorf("%d panic events, want 2", n)
	}
	cc.check(t)
}

// Answers throttled, failing with 5xx, and lost after taking effect: they
// are retried, first by the Acknowledger and, once its short budget is
// spent, through the message's redelivery; every step is still answered
// exactly once, and each message is deleted only after its answer was
// accepted.
func TestConsumerIntegrationFaults(t *testing.T) {
	t.Parallel()
	env := ciNewEnv(t, "")
	env.answerBudget = 300 * time.Millisecond
	ctx := testCtx(t, 30*time.Second)
	step := func(mode string) emulator.Step {
		return emulator.Step{Name: "Work", Type: emulator.StepTypeCallback, Arguments: map[string]any{"mode": mode}, Outputs: []string{"n"}}
	}
	env.pipeline("ok", step("ok"))
	env.pipeline("fail", step("fail"))
	env.pipeline("stop", step("block"))
	type exec struct{ arn, token, mode string }
	var execs []exec
	for _, mode := range []string{"ok", "ok", "ok", "ok", "fail", "fail", "fail", "stop", "stop"} {
		arn, token := env.execution(ctx, mode)
		execs = append(execs, exec{arn, token, mode})
		if mode == "stop" {
			env.stop(ctx, arn)
		}
	}
	env.em.SetFaults(emulator.Faults{
		RateLimits: map[string]emulator.RateLimit{
			"SendPipelineExecutionStepSuccess": {PerSecond: 10, Burst: 2},
			"SendPipelineExecutionStepFailure": {PerSecond: 10, Burst: 2},
		},
		ErrorRate:        0.25,
		DropResponseRate: 0.2,
	})
	// The SDK's own retries are off: the Acknowledger's are under test.
	sm := env.em.SageMakerClient(func(o *sagemaker.Options) { o.RetryMaxAttempts = 1 })
	cc := env.runConsumer(pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			switch string(m.Arguments["mode"]) {
			case `"fail"`:
				return nil, errors.New("bad input")
			case `"block"`:
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return map[string]string{"n": "1"}, nil
		},
	}, nil, sm)
	want := map[string]struct{ status, outcome string }{
		"ok": {ciSucceeded, emulator.OutcomeSuccess}, "fail": {ciFailed, emulator.OutcomeFailure}, "stop": {ciStopped, emulator.OutcomeSuccess}}
	for _, e := range execs {
		env.waitExecution(ctx, e.arn, want[e.mode].status)
	}
	env.waitQueueEmpty(ctx)
	if err := cc.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	env.em.SetFaults(emulator.Faults{})

	for _, e := range execs {
		a := env.requireAnsweredOnce(e.token, want[e.mode].outcome)
		if e.mode == "fail" && a.FailureReason != "bad input" {
			t.Errorf("failure reason %q", a.FailureReason)
		}
	}
	calls := env.em.Requests("SendPipelineExecutionStepSuccess") + env.em.Requests("SendPipelineExecutionStepFailure")
	if calls <= len(execs) || cc.events.count(pipelinestop.EventRetry) == 0 {
		t.Errorf("%d answer requests and %d retries for %d steps: the faults did not bite", calls, cc.events.count(pipelinestop.EventRetry), len(execs))
	}
	replays := 0
	for _, e := range execs {
		for _, a := range env.em.Answers(e.token) {
			if a.Replay {
				replays++
			}
		}
	}
	retryLater := cc.events.count(pipelinestop.EventRetryLater)
	if retryLater == 0 {
		t.Errorf("no answer gave up within its budget: the redelivery path was not exercised")
	}
	t.Logf("%d answer requests for %d steps, %d retries, %d messages made visible again, %d replays of lost answers",
		calls, len(execs), cc.events.count(pipelinestop.EventRetry), retryLater, replays)
	cc.check(t)
	received, deleted, _ := cc.queue.snapshot()
	if len(received) != 11 || !maps.Equal(received, deleted) {
		t.Errorf("received %d messages, deleted %d; want 11 and all of them", len(received), len(deleted))
	}
}

// A transient handler error makes the message visible again after the
// retry-later delay, never at once, even when the delay configured is
// shorter than SQS's unit of a second.
func TestConsumerIntegrationRetryLaterDelay(t *testing.T) {
	t.Parallel()
	env := ciNewEnv(t, "")
	ctx := testCtx(t, 20*time.Second)
	env.pipeline("later", ciCallback())
	arn, token := env.execution(ctx, "later")
	var mu sync.Mutex
	var starts []time.Time
	cc := env.runConsumer(pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			mu.Lock()
			defer mu.Unlock()
			starts = append(starts, time.Now())
			if len(starts) == 1 {
				return nil, pipelinestop.RetryLater(errors.New("GPU quota"))
			}
			return map[string]string{"approved": "yes"}, nil
		},
	}, nil, nil, func(o *pipelinestop.ConsumerOptions) { o.RetryLaterMinDelay = 300 * time.Millisecond })
	env.waitExecution(ctx, arn, ciSucceeded)
	if err := cc.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	env.requireAnsweredOnce(token, emulator.OutcomeSuccess)
	var delay time.Duration
	for _, ev := range cc.events.all() {
		if ev.Type == pipelinestop.EventRetryLater {
			delay = ev.Delay
		}
	}
	if len(starts) != 2 || delay < 300*time.Millisecond {
		t.Fatalf("Execute ran %d times, retry-later delay %v; want 2 runs and at least 300ms", len(starts), delay)
	}
	if gap := starts[1].Sub(starts[0]); gap < delay-50*time.Millisecond {
		t.Errorf("the message came back after %v; the event said %v and the option asked for at least 300ms", gap, delay)
	}
	cc.check(t)
	env.waitQueueEmpty(ctx)
}

// A handler that outlives the visibility timeout keeps its message: the
// Consumer extends the visibility (by the timeout, about every half of it)
// so SQS does not deliver it again, and the step is answered once.
func TestConsumerIntegrationExtendsVisibility(t *testing.T) {
	t.Parallel()
	env := ciNewEnv(t, "")
	ctx := testCtx(t, 20*time.Second)
	env.pipeline("long", ciCallback())
	arn, token := env.execution(ctx, "long")
	calls := newCiCalls()
	release := make(chan struct{})
	cc := env.runConsumer(pipelinestop.Handler{
		Execute: ciExecuteUntil(calls, release),
	}, nil, nil, func(o *pipelinestop.ConsumerOptions) { o.VisibilityTimeout = time.Second })
	calls.waitStarted(ctx, t, 1)
	var id string
	// Four extensions, about every half second: the handler has run past
	// twice the visibility timeout.
	cc.queue.wait(ctx, t, "four visibility extensions", func() bool {
		for mid, ext := range cc.queue.extensions {
			id = mid
			return len(ext) >= 4
		}
		return false
	})
	close(release)
	env.waitExecution(ctx, arn, ciSucceeded)
	if err := cc.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	cc.queue.mu.Lock()
	receipts, ext := cc.queue.receipts[id], slices.Clone(cc.queue.extensions[id])
	cc.queue.mu.Unlock()
	if receipts != 1 {
		t.Errorf("the message was received %d times while its handler ran; want 1", receipts)
	}
	for _, v := range ext {
		if v != 1 {
			t.Errorf("visibility set to %v, want extensions by the 1 s timeout", ext)
			break
		}
	}
	if e, _ := calls.counts(token); e != 1 {
		t.Errorf("Execute ran %d times, want 1", e)
	}
	env.requireAnsweredOnce(token, emulator.OutcomeSuccess)
	cc.check(t)
	env.waitQueueEmpty(ctx)
}

// A graceful shutdown hands back at once the messages received but not
// started, lets the running handler finish within the drain period, and
// deletes only what was answered; a second consumer finishes the rest.
func TestConsumerIntegrationShutdown(t *testing.T) {
	t.Parallel()
	env := ciNewEnv(t, "")
	ctx := testCtx(t, 20*time.Second)
	env.pipeline("drain", ciCallback())
	var arns, tokens []string
	for range 3 {
		arn, token := env.execution(ctx, "drain")
		arns, tokens = append(arns, arn), append(tokens, token)
	}
	calls := newCiCalls()
	release := make(chan struct{})
	cc := env.runConsumer(pipelinestop.Handler{
		Execute: ciExecuteUntil(calls, release),
	}, nil, nil, func(o *pipelinestop.ConsumerOptions) {
		o.Concurrency = 1
		o.VisibilityTimeout = 10 * time.Second // so only the shutdown can hand them back
		o.DrainTimeout = 10 * time.Second
	})
	first := calls.waitStarted(ctx, t, 1)[0]
	cc.queue.wait(ctx, t, "all three messages received", func() bool { return len(cc.queue.received) == 3 })

	cc.cancel() // shutdown begins; Run drains the running handler
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		v, f, _, err := env.queueCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v == 2 && f == 1 {
			break // the unstarted two are back while the third still runs
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%d visible, %d in flight; want the two unstarted messages visible at once", v, f)
		}
	}
	if !cc.running() {
		t.Fatal("Run returned before its running handler finished")
	}
	close(release)
	if err := cc.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	env.requireAnsweredOnce(first, emulator.OutcomeSuccess)
	for _, tok := range tokens {
		if e, _ := calls.counts(tok); tok != first && (e != 0 || len(env.em.Answers(tok)) != 0) {
			t.Errorf("step %s: Execute ran %d times, answers %v; want neither", pipelinestop.CallbackToken(tok), e, env.em.Answers(tok))
		}
	}
	if v, f, d, err := env.queueCounts(ctx); err != nil || v != 2 || f+d != 0 {
		t.Fatalf("after shutdown %d visible, %d in flight, %d delayed (%v); want the two unanswered visible", v, f, d, err)
	}
	cc.check(t)

	cc2 := env.runConsumer(pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			return map[string]string{"approved": "yes"}, nil
		},
	}, nil, nil)
	for _, arn := range arns {
		env.waitExecution(ctx, arn, ciSucceeded)
	}
	env.waitQueueEmpty(ctx)
	for _, tok := range tokens {
		env.requireAnsweredOnce(tok, emulator.OutcomeSuccess)
	}
	cc2.check(t)
}
