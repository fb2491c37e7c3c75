package pipelinestoplambda_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop"
	pipelinestoplambda "github.com/pipelinestop/pipelinestop/lambda"
	"github.com/pipelinestop/pipelinestop/pipelinestoptest"
)

const stepName = "Approve"

// fixture is an emulator with a callback queue and a pipeline whose one
// step is a callback step.
type fixture struct {
	srv      *pipelinestoptest.Server
	sm       *sagemaker.Client
	queueURL string
	queueARN string
	ack      *pipelinestop.Acknowledger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := pipelinestoptest.New(t, pipelinestoptest.Config{})
	url, err := srv.CreateQueue("callbacks")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.CreatePipeline("train", pipelinestoptest.Definition(
		pipelinestoptest.Step{Name: stepName, Type: pipelinestoptest.StepTypeCallback, SqsQueueURL: url})); err != nil {
		t.Fatal(err)
	}
	sm := srv.SageMakerClient()
	return &fixture{srv: srv, sm: sm, queueURL: url, queueARN: srv.QueueARN("callbacks"), ack: pipelinestop.NewAcknowledger(sm)}
}

// step is a started execution held by its callback step.
type step struct {
	arn, token, executing string // executing: the Executing message's body
}

// start starts an execution and returns its callback step's message.
func (f *fixture) start(t *testing.T) step {
	t.Helper()
	arn, err := f.srv.StartExecution("train")
	if err != nil {
		t.Fatal(err)
	}
	body := f.message(t, arn, pipelinestoptest.StatusExecuting)
	token, err := f.srv.CallbackToken(arn, stepName)
	if err != nil {
		t.Fatal(err)
	}
	return step{arn: arn, token: token, executing: body}
}

// stop stops the execution and returns the Stopping message's body.
func (f *fixture) stop(t *testing.T, s step) string {
	t.Helper()
	if _, err := f.sm.StopPipelineExecution(context.Background(), &sagemaker.StopPipelineExecutionInput{
		PipelineExecutionArn: aws.String(s.arn), ClientRequestToken: aws.String(strings.Repeat("s", 32)),
	}); err != nil {
		t.Fatal(err)
	}
	return f.message(t, s.arn, pipelinestoptest.StatusStopping)
}

// message waits (bounded) for the callback message of arn with status.
func (f *fixture) message(t *testing.T, arn, status string) string {
	t.Helper()
	for range 500 {
		for _, m := range f.srv.CallbackMessages() {
			if m.ExecutionARN == arn && m.Status == status {
				return m.Body
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s message for %s after 5 s", status, arn)
	return ""
}

// record is a standard-queue record as Lambda builds it.
func (f *fixture) record(id, body string) events.SQSMessage {
	return events.SQSMessage{
		MessageId: id, ReceiptHandle: "rh-" + id, Body: body, EventSource: "aws:sqs", EventSourceARN: f.queueARN,
		AWSRegion: f.srv.Region(), Attributes: map[string]string{"ApproximateReceiveCount": "1"},
	}
}

func event(records ...events.SQSMessage) events.SQSEvent { return events.SQSEvent{Records: records} }

// failures returns the reported message IDs.
func failures(t *testing.T, resp events.SQSEventResponse) []string {
	t.Helper()
	var ids []string
	for _, f := range resp.BatchItemFailures {
		if f.ItemIdentifier == "" {
			t.Fatal("an empty itemIdentifier fails the whole batch")
		}
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// calls counts and records handler calls.
type calls struct {
	execute, cleanup atomic.Int32
	mu               sync.Mutex
	causes           []error
}

func newHandler(t *testing.T, f *fixture, h pipelinestop.Handler, optFns ...func(*pipelinestoplambda.Options)) *pipelinestoplambda.Handler {
	t.Helper()
	lh, err := pipelinestoplambda.New(f.ack, h, optFns...)
	if err != nil {
		t.Fatal(err)
	}
	return lh
}

func handle(t *testing.T, h *pipelinestoplambda.Handler, ev events.SQSEvent) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := h.Handle(ctx, ev)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return failures(t, resp)
}

// wantAnswers checks that the step got exactly one answer (replays aside)
// with the outcome.
func wantAnswers(t *testing.T, f *fixture, s step, outcome string) pipelinestoptest.Answer {
	t.Helper()
	answers := f.srv.Answers(s.token)
	var first []pipelinestoptest.Answer
	for _, a := range answers {
		if !a.Replay {
			first = append(first, a)
		}
	}
	if len(first) != 1 || first[0].Outcome != outcome {
		t.Fatalf("answers = %+v, want one %s", answers, outcome)
	}
	return first[0]
}

func noAnswer(t *testing.T, f *fixture, s step) {
	t.Helper()
	if a := f.srv.Answers(s.token); len(a) != 0 {
		t.Fatalf("answers = %+v, want none", a)
	}
}

func (c *calls) handler() pipelinestop.Handler {
	return pipelinestop.Handler{
		Execute: func(ctx context.Context, msg *pipelinestop.CallbackMessage) (map[string]string, error) {
			c.execute.Add(1)
			return map[string]string{"approved": "yes"}, nil
		},
		Cleanup: func(ctx context.Context, msg *pipelinestop.CallbackMessage) error {
			c.cleanup.Add(1)
			return nil
		},
	}
}

func TestExecutingAnsweredAndDeleted(t *testing.T) {
	f := newFixture(t)
	s := f.start(t)
	var c calls
	h := newHandler(t, f, c.handler())
	if got := handle(t, h, event(f.record("m1", s.executing))); len(got) != 0 {
		t.Fatalf("failures = %v, want none", got)
	}
	a := wantAnswers(t, f, s, pipelinestoptest.OutcomeSuccess)
	if a.OutputParameters["approved"] != "yes" || a.ClientRequestToken == "" {
		t.Fatalf("answer = %+v, want the outputs and a ClientRequestToken", a)
	}
	if c.execute.Load() != 1 {
		t.Fatalf("Execute ran %d times, want 1", c.execute.Load())
	}
}

func TestStoppingCleansUpAndAnswers(t *testing.T) {
	f := newFixture(t)
	s := f.start(t)
	stopping := f.stop(t, s)
	var c calls
	h := newHandler(t, f, c.handler())
	if got := handle(t, h, event(f.record("m2", stopping))); len(got) != 0 {
		t.Fatalf("failures = %v, want none", got)
	}
	wantAnswers(t, f, s, pipelinestoptest.OutcomeSuccess)
	if c.cleanup.Load() != 1 || c.execute.Load() != 0 {
		t.Fatalf("Cleanup ran %d times and Execute %d, want 1 and 0", c.cleanup.Load(), c.execute.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st, err := f.srv.WaitExecutionStatus(ctx, s.arn, "Stopped", "Failed", "Succeeded"); err != nil || st != "Stopped" {
		t.Fatalf("execution status = %q, %v; want Stopped", st, err)
	}
}

func TestExecutingAndStoppingInOneBatchAnsweredOnceByTheStop(t *testing.T) {
	f := newFixture(t)
	s := f.start(t)
	stopping := f.stop(t, s)
	var c calls
	hd := c.handler()
	hd.Execute = func(ctx context.Context, msg *pipelinestop.CallbackMessage) (map[string]string, error) {
		c.execute.Add(1)
		<-ctx.Done() // only a cancellation ends it: the stop must win
		c.mu.Lock()
		c.causes = append(c.causes, context.Cause(ctx))
		c.mu.Unlock()
		return nil, ctx.Err()
	}
	h := newHandler(t, f, hd)
	if got := handle(t, h, event(f.record("m1", s.executing), f.record("m2", stopping))); len(got) != 0 {
		t.Fatalf("failures = %v, want none", got)
	}
	wantAnswers(t, f, s, pipelinestoptest.OutcomeSuccess)
	if c.cleanup.Load() != 1 {
		t.Fatalf("Cleanup ran %d times, want 1", c.cleanup.Load())
	}
	for _, cause := range c.causes {
		if !errors.Is(cause, pipelinestop.ErrStepStopping) {
			t.Fatalf("Execute ran and was canceled with %v, want ErrStepStopping", cause)
		}
	}
}

func TestDuplicatesInOneBatchAnsweredOnce(t *testing.T) {
	f := newFixture(t)
	s := f.start(t)
	var c calls
	h := newHandler(t, f, c.handler())
	// The same delivery twice, and a second SQS message with the same body.
	ev := event(f.record("m1", s.executing), f.record("m1", s.executing), f.record("m3", s.executing))
	if got := handle(t, h, ev); len(got) != 0 {
		t.Fatalf("failures = %v, want none", got)
	}
	wantAnswers(t, f, s, pipelinestoptest.OutcomeSuccess)
	if c.execute.Load() != 1 {
		t.Fatalf("Execute ran %d times, want 1", c.execute.Load())
	}
	// A late redelivery in the next invocation (a warm container): done
	// without running Execute again.
	if got := handle(t, h, event(f.record("m1", s.executing))); len(got) != 0 {
		t.Fatalf("failures = %v, want none", got)
	}
	if c.execute.Load() != 1 {
		t.Fatalf("Execute ran %d times after a redelivery, want 1", c.execute.Load())
	}
}

func TestPendingIsDoneAndStopStillAnswered(t *testing.T) {
	f := newFixture(t)
	s := f.start(t)
	var c calls
	hd := c.handler()
	hd.Execute = func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
		c.execute.Add(1)
		return nil, fmt.Errorf("job submitted: %w", pipelinestop.ErrPending)
	}
	h := newHandler(t, f, hd)
	if got := handle(t, h, event(f.record("m1", s.executing))); len(got) != 0 {
		t.Fatalf("failures = %v, want none", got)
	}
	noAnswer(t, f, s)
	stopping := f.stop(t, s)
	if got := handle(t, h, event(f.record("m2", stopping))); len(got) != 0 {
		t.Fatalf("failures = %v, want none", got)
	}
	wantAnswers(t, f, s, pipelinestoptest.OutcomeSuccess)
	if c.cleanup.Load() != 1 {
		t.Fatalf("Cleanup ran %d times, want 1", c.cleanup.Load())
	}
}

// retryOne makes Execute ask for a retry for one token and succeed for
// the others.
func retryOne(c *calls, token string) pipelinestop.Handler {
	hd := c.handler()
	hd.Execute = func(ctx context.Context, msg *pipelinestop.CallbackMessage) (map[string]string, error) {
		c.execute.Add(1)
		if string(msg.Token) == token {
			return nil, pipelinestop.RetryLater(errors.New("the approver is busy"))
		}
		return nil, nil
	}
	return hd
}

func TestRetryLaterReportsThatRecordAlone(t *testing.T) {
	f := newFixture(t)
	s1, s2, s3 := f.start(t), f.start(t), f.start(t)
	var c calls
	h := newHandler(t, f, retryOne(&c, s2.token))
	got := handle(t, h, event(f.record("m1", s1.executing), f.record("m2", s2.executing), f.record("m3", s3.executing)))
	if !slices.Equal(got, []string{"m2"}) {
		t.Fatalf("failures = %v, want [m2]", got)
	}
	wantAnswers(t, f, s1, pipelinestoptest.OutcomeSuccess)
	wantAnswers(t, f, s3, pipelinestoptest.OutcomeSuccess)
	noAnswer(t, f, s2)
}

func TestFIFOReportsTheFailureAndEveryLaterRecord(t *testing.T) {
	f := newFixture(t)
	s1, s2, s3 := f.start(t), f.start(t), f.start(t)
	var c calls
	h := newHandler(t, f, retryOne(&c, s2.token))
	ev := event(f.record("m1", s1.executing), f.record("m2", s2.executing), f.record("m3", s3.executing))
	for i := range ev.Records {
		ev.Records[i].EventSourceARN = f.queueARN + ".fifo"
	}
	got := handle(t, h, ev)
	if !slices.Equal(got, []string{"m2", "m3"}) {
		t.Fatalf("failures = %v, want [m2 m3]", got)
	}
	wantAnswers(t, f, s1, pipelinestoptest.OutcomeSuccess)
	noAnswer(t, f, s2)
	noAnswer(t, f, s3) // its handler did not run
	if c.execute.Load() != 2 {
		t.Fatalf("Execute ran %d times, want 2 (not for the record after the failure)", c.execute.Load())
	}
}

func TestFIFOStopStillWinsOverAnEarlierExecuting(t *testing.T) {
	f := newFixture(t)
	s := f.start(t)
	stopping := f.stop(t, s)
	var c calls
	h := newHandler(t, f, c.handler())
	ev := event(f.record("m1", s.executing), f.record("m2", stopping))
	for i := range ev.Records {
		ev.Records[i].EventSourceARN = f.queueARN + ".fifo"
	}
	if got := handle(t, h, ev); len(got) != 0 {
		t.Fatalf("failures = %v, want none", got)
	}
	wantAnswers(t, f, s, pipelinestoptest.OutcomeSuccess)
	if c.cleanup.Load() != 1 || c.execute.Load() != 0 {
		t.Fatalf("Cleanup ran %d times and Execute %d, want 1 and 0", c.cleanup.Load(), c.execute.Load())
	}
}

func TestMalformedReportedOrDropped(t *testing.T) {
	f := newFixture(t)
	s := f.start(t)
	var c calls
	ev := event(f.record("bad", `{"not": "a callback"}`), f.record("m1", s.executing))

	h := newHandler(t, f, c.handler())
	if got := handle(t, h, ev); !slices.Equal(got, []string{"bad"}) {
		t.Fatalf("failures = %v, want [bad] (for the redrive policy)", got)
	}
	wantAnswers(t, f, s, pipelinestoptest.OutcomeSuccess)

	drop := newHandler(t, f, c.handler(), func(o *pipelinestoplambda.Options) {
		o.ConsumerOptions = append(o.ConsumerOptions, func(co *pipelinestop.ConsumerOptions) { co.DeleteMalformed = true })
	})
	if got := handle(t, drop, event(f.record("bad", `{"not": "a callback"}`))); len(got) != 0 {
		t.Fatalf("failures = %v, want none with DeleteMalformed", got)
	}
}

func TestPanicFailsTheStep(t *testing.T) {
	f := newFixture(t)
	s := f.start(t)
	var c calls
	hd := c.handler()
	hd.Execute = func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
		panic("boom")
	}
	h := newHandler(t, f, hd)
	if got := handle(t, h, event(f.record("m1", s.executing))); len(got) != 0 {
		t.Fatalf("failures = %v, want none (the step is answered)", got)
	}
	a := wantAnswers(t, f, s, pipelinestoptest.OutcomeFailure)
	if !strings.Contains(a.FailureReason, "boom") {
		t.Fatalf("failure reason = %q, want the panic", a.FailureReason)
	}
}

func TestDeadlineReportsUnfinishedAndCancelsHandlers(t *testing.T) {
	f := newFixture(t)
	s1, s2 := f.start(t), f.start(t)
	var c calls
	hd := c.handler()
	started := make(chan struct{}, 2)
	hd.Execute = func(ctx context.Context, msg *pipelinestop.CallbackMessage) (map[string]string, error) {
		c.execute.Add(1)
		if string(msg.Token) == s2.token {
			return nil, nil
		}
		started <- struct{}{}
		<-ctx.Done() // blocks until the batch's deadline
		c.mu.Lock()
		c.causes = append(c.causes, context.Cause(ctx))
		c.mu.Unlock()
		return nil, ctx.Err()
	}
	h := newHandler(t, f, hd)
	// The Lambda context's deadline: past the margin by a little.
	ctx, cancel := context.WithTimeout(context.Background(), pipelinestop.DefaultDeadlineMargin+500*time.Millisecond)
	defer cancel()
	resp, err := h.Handle(ctx, event(f.record("m1", s1.executing), f.record("m2", s2.executing)))
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(t, resp); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("failures = %v, want [m1] (unfinished)", got)
	}
	if ctx.Err() != nil {
		t.Fatal("Handle returned after the deadline; it must keep a margin to answer")
	}
	noAnswer(t, f, s1)
	wantAnswers(t, f, s2, pipelinestoptest.OutcomeSuccess)
	if len(c.causes) != 1 || !errors.Is(c.causes[0], pipelinestop.ErrDeadline) {
		t.Fatalf("causes = %v, want one ErrDeadline", c.causes)
	}
}

func TestInvalidEvent(t *testing.T) {
	f := newFixture(t)
	s := f.start(t)
	var c calls
	h := newHandler(t, f, c.handler())
	_, err := h.Handle(context.Background(), event(f.record("", s.executing)))
	if !errors.Is(err, pipelinestoplambda.ErrInvalidEvent) {
		t.Fatalf("err = %v, want ErrInvalidEvent for a record without a messageId", err)
	}
	noAnswer(t, f, s)
	var zero *pipelinestoplambda.Handler
	if _, err := zero.Handle(context.Background(), event()); !errors.Is(err, pipelinestoplambda.ErrInvalidEvent) {
		t.Fatalf("nil Handler: err = %v, want ErrInvalidEvent", err)
	}
	if _, err := pipelinestoplambda.New(nil, c.handler()); !errors.Is(err, pipelinestop.ErrInvalidConsumer) {
		t.Fatalf("New(nil ack): err = %v, want ErrInvalidConsumer", err)
	}
	if _, err := pipelinestoplambda.New(f.ack, pipelinestop.Handler{}); !errors.Is(err, pipelinestop.ErrInvalidConsumer) {
		t.Fatalf("New(no Execute): err = %v, want ErrInvalidConsumer", err)
	}
	// An empty event: nothing to do, an empty (non-nil) list.
	resp, err := h.Handle(context.Background(), event())
	if err != nil || resp.BatchItemFailures == nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("empty event: %+v, %v; want an empty list", resp, err)
	}
}

// fakeVisibility records visibility changes.
type fakeVisibility struct {
	mu       sync.Mutex
	urlCalls int
	changes  []sqstypes.ChangeMessageVisibilityBatchRequestEntry
	urls     []string
}

func (v *fakeVisibility) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.urlCalls++
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String("https://queue/" + aws.ToString(in.QueueOwnerAWSAccountId) + "/" + aws.ToString(in.QueueName))}, nil
}

func (v *fakeVisibility) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(in.Entries) > 10 {
		return nil, errors.New("TooManyEntriesInBatchRequest")
	}
	for _, e := range in.Entries {
		v.changes = append(v.changes, e)
		v.urls = append(v.urls, aws.ToString(in.QueueUrl))
	}
	return &sqs.ChangeMessageVisibilityBatchOutput{}, nil
}

func TestRetryLaterDelaySetThroughSQS(t *testing.T) {
	f := newFixture(t)
	s1, s2 := f.start(t), f.start(t)
	var c calls
	var v fakeVisibility
	h := newHandler(t, f, retryOne(&c, s2.token), func(o *pipelinestoplambda.Options) { o.Queue = &v })
	r2 := f.record("m2", s2.executing)
	r2.Attributes["ApproximateReceiveCount"] = "3" // 10 s doubled twice
	for range 2 {
		if got := handle(t, h, event(f.record("m1", s1.executing), r2)); !slices.Equal(got, []string{"m2"}) {
			t.Fatalf("failures = %v, want [m2]", got)
		}
	}
	if v.urlCalls != 1 {
		t.Fatalf("GetQueueUrl called %d times, want 1 (cached)", v.urlCalls)
	}
	if len(v.changes) != 2 {
		t.Fatalf("visibility changes = %d, want 2 (one per invocation, for m2)", len(v.changes))
	}
	ch := v.changes[0]
	want := "https://queue/" + f.srv.AccountID() + "/callbacks"
	if v.urls[0] != want || aws.ToString(ch.ReceiptHandle) != "rh-m2" || ch.VisibilityTimeout != 40 {
		t.Fatalf("change = url %q handle %q timeout %d; want %q rh-m2 40", v.urls[0], aws.ToString(ch.ReceiptHandle), ch.VisibilityTimeout, want)
	}
}

func TestRetryLaterDelaySetOnTheEmulatedQueue(t *testing.T) {
	f := newFixture(t)
	s := f.start(t)
	q := f.srv.SQSClient()
	ctx := context.Background()
	// Take the real message off the queue, with its receipt handle.
	out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(f.queueURL), MaxNumberOfMessages: 10,
		WaitTimeSeconds: 1, MessageSystemAttributeNames: nil})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %d messages, %v", len(out.Messages), err)
	}
	m := out.Messages[0]
	r := f.record(aws.ToString(m.MessageId), aws.ToString(m.Body))
	r.ReceiptHandle = aws.ToString(m.ReceiptHandle)
	var c calls
	var warned atomic.Int32
	h := newHandler(t, f, retryOne(&c, s.token), func(o *pipelinestoplambda.Options) {
		o.Queue = q
		o.Logger = newCountingLogger(&warned)
	})
	if got := handle(t, h, event(r)); !slices.Equal(got, []string{r.MessageId}) {
		t.Fatalf("failures = %v, want [%s]", got, r.MessageId)
	}
	if warned.Load() != 0 {
		t.Fatal("the visibility change failed against the emulator")
	}
}

func TestManyReportedRecordsChangedInBatchesOfTenAndReportedOnce(t *testing.T) {
	f := newFixture(t)
	var c calls
	var v fakeVisibility
	h := newHandler(t, f, c.handler(), func(o *pipelinestoplambda.Options) { o.Queue = &v })
	var ev events.SQSEvent
	var want []string
	for i := range 12 {
		id := fmt.Sprintf("bad%02d", i)
		ev.Records = append(ev.Records, f.record(id, "not json"))
		want = append(want, id)
	}
	ev.Records = append(ev.Records, f.record("bad00", "not json")) // the same delivery twice
	if got := handle(t, h, ev); !slices.Equal(got, want) {
		t.Fatalf("failures = %v, want %v (each once)", got, want)
	}
	if len(v.changes) != 12 {
		t.Fatalf("%d visibility changes, want 12", len(v.changes))
	}
	for _, ch := range v.changes {
		if ch.VisibilityTimeout != 10 {
			t.Fatalf("visibility timeout %d, want the first retry delay, 10 s", ch.VisibilityTimeout)
		}
	}
}

func TestUnstartedRecordsVisibleAtOnce(t *testing.T) {
	f := newFixture(t)
	s1, s2 := f.start(t), f.start(t)
	var v fakeVisibility
	hd := pipelinestop.Handler{Execute: func(ctx context.Context, _ *pipelinestop.CallbackMessage) (map[string]string, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	h := newHandler(t, f, hd, func(o *pipelinestoplambda.Options) {
		o.Queue = &v
		o.ConsumerOptions = append(o.ConsumerOptions, func(co *pipelinestop.ConsumerOptions) { co.Concurrency = 1 })
	})
	ctx, cancel := context.WithTimeout(context.Background(), pipelinestop.DefaultDeadlineMargin+300*time.Millisecond)
	defer cancel()
	resp, err := h.Handle(ctx, event(f.record("m1", s1.executing), f.record("m2", s2.executing)))
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(t, resp); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("failures = %v, want [m1 m2]", got)
	}
	if len(v.changes) != 2 || v.changes[0].VisibilityTimeout != 0 || v.changes[1].VisibilityTimeout != 0 {
		t.Fatalf("changes = %+v, want both made visible at once", v.changes)
	}
}
