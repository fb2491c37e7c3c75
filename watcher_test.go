package pipelinestop_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
)

// eventBody builds a SageMaker pipeline event as EventBridge delivers it to
// an SQS target.
func eventBody(id, detailType string, at time.Time, detail map[string]any) string {
	b, _ := json.Marshal(map[string]any{
		"version": "0", "id": id, "detail-type": detailType, "source": pipelinestop.EventSource,
		"account": "123456789012", "time": at.UTC().Format(time.RFC3339), "region": "us-east-1",
		"resources": []any{"arn:aws:sagemaker:us-east-1:123456789012:pipeline/p", detail["pipelineExecutionArn"]},
		"detail":    detail,
	})
	return string(b)
}

func statusEvent(id, arn, status string, at time.Time) string {
	return eventBody(id, pipelinestop.ExecutionStatusChangeType, at, map[string]any{
		"pipelineExecutionArn": arn, "currentPipelineExecutionStatus": status, "previousPipelineExecutionStatus": "Stopping"})
}

// watchEnv is an emulator, an events queue with a running Watcher, and a
// Stopper whose waits use it.
type watchEnv struct {
	t      *testing.T
	em     *emulator.Emulator
	url    string
	w      *pipelinestop.Watcher
	clock  *fakeclock.Manual
	s      *pipelinestop.Stopper
	events chan pipelinestop.Event
	// stopFirst stops the first Watcher's Run.
	stopFirst func()
}

func newWatchEnv(t *testing.T, wOpts ...func(*pipelinestop.WatcherOptions)) *watchEnv {
	t.Helper()
	env := &watchEnv{t: t, em: emulator.StartTest(t, emulator.Config{}), clock: fakeclock.NewManual(time.Unix(1000, 0)),
		events: make(chan pipelinestop.Event, 1000)}
	var err error
	if env.url, err = env.em.CreateQueue("pipeline-events"); err != nil {
		t.Fatal(err)
	}
	env.w = env.startWatcher(wOpts...)
	env.s = pipelinestop.New(env.em.SageMakerClient(), fastWait, func(o *pipelinestop.Options) {
		o.Watcher, o.Clock = env.w, env.clock
		o.OnEvent = func(ev pipelinestop.Event) {
			select {
			case env.events <- ev:
			default:
			}
		}
	})
	return env
}

func (env *watchEnv) startWatcher(wOpts ...func(*pipelinestop.WatcherOptions)) *pipelinestop.Watcher {
	w := env.newWatcher(wOpts...)
	env.stopFirst = env.run(w)
	return w
}

func (env *watchEnv) newWatcher(wOpts ...func(*pipelinestop.WatcherOptions)) *pipelinestop.Watcher {
	w, err := pipelinestop.NewWatcher(env.em.SQSClient(), env.url, append([]func(*pipelinestop.WatcherOptions){
		func(o *pipelinestop.WatcherOptions) { o.WaitTimeSeconds = 1 }}, wOpts...)...)
	if err != nil {
		env.t.Fatal(err)
	}
	return w
}

// run runs w until the test ends, or until the returned function is
// called.
func (env *watchEnv) run(w *pipelinestop.Watcher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	receives := env.em.Requests("ReceiveMessage")
	go func() { done <- w.Run(ctx) }()
	// Run has begun (a Wait that starts now uses the Watcher, not its
	// polling fallback) once its first receive reached the emulator: a Wait
	// whose first poll came before Run began polled again when it did.
	for deadline := time.Now().Add(10 * time.Second); env.em.Requests("ReceiveMessage") == receives; {
		if time.Now().After(deadline) {
			cancel()
			env.t.Fatal("the Watcher's Run made no receive in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				env.t.Errorf("Watcher.Run: %v", err)
			}
		})
	}
	env.t.Cleanup(stop)
	return stop
}

func (env *watchEnv) send(bodies ...string) {
	env.t.Helper()
	for _, b := range bodies {
		if _, err := env.em.SQSClient().SendMessage(testCtx(env.t, 5*time.Second), &sqs.SendMessageInput{
			QueueUrl: aws.String(env.url), MessageBody: aws.String(b)}); err != nil {
			env.t.Fatal(err)
		}
	}
}

// stoppingExecution starts an execution held in Stopping by a Lambda step
// that runs until the test completes it.
func (env *watchEnv) stoppingExecution(name string) string {
	env.t.Helper()
	env.em.SetStepTiming("Notify-"+name, emulator.StepTiming{Duration: emulator.Forever, LambdaTimeout: time.Hour})
	arn := startPipeline(env.t, env.em, name, emulator.Step{Name: "Notify-" + name, Type: emulator.StepTypeLambda})
	ctx := testCtx(env.t, 10*time.Second)
	if err := env.em.WaitStepStatus(ctx, arn, "Notify-"+name, "Executing"); err != nil {
		env.t.Fatal(err)
	}
	if _, err := pipelinestop.New(env.em.SageMakerClient(), fastWait).Stop(ctx, arn); err != nil {
		env.t.Fatal(err)
	}
	return arn
}

// waitFor starts Wait and returns once its first poll saw the execution
// Stopping (so it is subscribed and waiting).
func (env *watchEnv) waitFor(arn string) <-chan *pipelinestop.Outcome {
	env.t.Helper()
	res := make(chan *pipelinestop.Outcome, 1)
	go func() {
		out, err := env.s.Wait(testCtx(env.t, 20*time.Second), arn)
		if err != nil {
			env.t.Errorf("Wait: %v", err)
		}
		res <- out
	}()
	for deadline := time.After(10 * time.Second); ; {
		select {
		case ev := <-env.events:
			if ev.Type == pipelinestop.EventStatus && ev.ExecutionARN == arn {
				return res
			}
		case <-deadline:
			env.t.Fatal("Wait never polled")
		}
	}
}

func (env *watchEnv) outcome(res <-chan *pipelinestop.Outcome) *pipelinestop.Outcome {
	env.t.Helper()
	select {
	case out := <-res:
		return out
	case <-time.After(15 * time.Second):
		env.t.Fatal("Wait did not return")
		return nil
	}
}

// TestWatcherWaitsOnEvents: a Wait woken by the terminal event makes two
// Describe calls in all (subscribe-then-poll, and the confirmation) and
// lists no steps; the event is deleted.
func TestWatcherWaitsOnEvents(t *testing.T) {
	env := newWatchEnv(t)
	arn := env.stoppingExecution("evented")
	describes, lists := env.em.Requests("DescribePipelineExecution"), env.em.Requests("ListPipelineExecutionSteps")
	res := env.waitFor(arn)
	if err := env.em.CompleteStep(arn, "Notify-evented"); err != nil {
		t.Fatal(err)
	}
	env.send(statusEvent("e1", arn, "Stopped", time.Now()))
	out := env.outcome(res)
	if out.Status != types.PipelineExecutionStatusStopped || out.Polls != 2 {
		t.Fatalf("outcome %+v: want Stopped after 2 polls", out)
	}
	if d, l := env.em.Requests("DescribePipelineExecution")-describes, env.em.Requests("ListPipelineExecutionSteps")-lists; d != 2 || l != 0 {
		t.Fatalf("%d Describe and %d List calls; want 2 and 0", d, l)
	}
	if st := env.w.Stats(); st.Delivered != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestWatcherLostEvent: with no event, the safety poll ends the wait.
func TestWatcherLostEvent(t *testing.T) {
	env := newWatchEnv(t)
	arn := env.stoppingExecution("lost")
	res := env.waitFor(arn)
	if err := env.em.CompleteStep(arn, "Notify-lost"); err != nil {
		t.Fatal(err)
	}
	if !env.clock.WaitForWaiter(5 * time.Second) {
		t.Fatal("Wait set no safety timer")
	}
	env.clock.Advance(pipelinestop.DefaultSafetyInterval)
	if out := env.outcome(res); out.Status != types.PipelineExecutionStatusStopped || out.Polls != 2 {
		t.Fatalf("outcome %+v: want Stopped at the safety poll", out)
	}
}

// TestWatcherStaleHints: duplicates, an out-of-order old event, a terminal
// event that is wrong (the execution still runs), malformed and foreign
// messages: none breaks the wait, a wrong hint costs one Describe, and the
// step events keep Blocking current without listing steps.
func TestWatcherStaleHints(t *testing.T) {
	env := newWatchEnv(t)
	arn := env.stoppingExecution("stale")
	lists := env.em.Requests("ListPipelineExecutionSteps")
	res := env.waitFor(arn)
	now := time.Now()
	env.send(
		"not json", `{"source":"aws.s3","detail-type":"Object Created","id":"x"}`,
		eventBody("s1", pipelinestop.StepStatusChangeType, now, map[string]any{"pipelineExecutionArn": arn,
			"stepName": "Notify-stale", "stepType": "Lambda", "currentStepStatus": "Stopping",
			"metadata": map[string]any{"lambda": map[string]any{"arn": "arn:aws:lambda:us-east-1:123456789012:function:notify"}}}),
	)
	for deadline := time.After(10 * time.Second); ; {
		select {
		case ev := <-env.events:
			if ev.Type != pipelinestop.EventBlocked {
				continue
			}
			if len(ev.Blocking) != 1 || ev.Blocking[0].Type != "Lambda" || ev.Blocking[0].FunctionARN == "" {
				t.Fatalf("blocking %+v", ev.Blocking)
			}
		case <-deadline:
			t.Fatal("no blocked event from the step event")
		}
		break
	}
	// A wrong terminal hint: the execution is still Stopping.
	env.send(statusEvent("e1", arn, "Stopped", now))
	for deadline := time.After(10 * time.Second); env.w.Stats().Delivered < 2; {
		select {
		case <-deadline:
			t.Fatal("the wrong hint was not delivered")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := env.em.CompleteStep(arn, "Notify-stale"); err != nil {
		t.Fatal(err)
	}
	env.send(statusEvent("e1", arn, "Stopped", now), // a duplicate: dropped
		statusEvent("e0", arn, "Executing", now.Add(-time.Minute)), // old, out of order: ignored
		statusEvent("e2", arn, "Stopped", now.Add(time.Second)))
	out := env.outcome(res)
	if out.Status != types.PipelineExecutionStatusStopped {
		t.Fatalf("outcome %+v", out)
	}
	if l := env.em.Requests("ListPipelineExecutionSteps") - lists; l != 0 {
		t.Errorf("%d List calls; want 0", l)
	}
	for deadline := time.After(10 * time.Second); ; {
		st := env.w.Stats()
		if st.Malformed == 2 && st.Duplicates >= 1 && st.Received >= 7 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("stats %+v", st)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestWatcherManyWaits: one Watcher serves many concurrent waits, each
// ending with its own execution's status.
func TestWatcherManyWaits(t *testing.T) {
	env := newWatchEnv(t)
	const n = 40
	arns := make([]string, n)
	var wg sync.WaitGroup
	outs := make([]*pipelinestop.Outcome, n)
	for i := range n {
		arns[i] = env.stoppingExecution(fmt.Sprintf("many%d", i))
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			outs[i], err = env.s.Wait(testCtx(t, 20*time.Second), arns[i])
			if err != nil {
				t.Errorf("Wait %d: %v", i, err)
			}
		}()
	}
	// Every wait polls once, then waits for its event.
	for seen := map[string]bool{}; len(seen) < n; {
		select {
		case ev := <-env.events:
			if ev.Type == pipelinestop.EventStatus {
				seen[ev.ExecutionARN] = true
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d waits polled", len(seen), n)
		}
	}
	for i, arn := range arns {
		if err := env.em.CompleteStep(arn, fmt.Sprintf("Notify-many%d", i)); err != nil {
			t.Fatal(err)
		}
		env.send(statusEvent(fmt.Sprintf("m%d", i), arn, "Stopped", time.Now()))
	}
	wg.Wait()
	for i, out := range outs {
		if out == nil || out.Status != types.PipelineExecutionStatusStopped || out.Polls != 2 {
			t.Fatalf("wait %d: %+v", i, out)
		}
	}
}

// TestWatcherSharedQueue: two processes' Watchers on one queue, each
// waiting for its own execution. With HandBack, an event received by the
// process that does not wait for it is handed back and reaches the other.
// The first Watcher receives both events; the second starts once the first
// has handed b's event back and has ended (with both running, the first
// could receive it again up to HandBackReceives times: see HandBack).
func TestWatcherSharedQueue(t *testing.T) {
	env := newWatchEnv(t, func(o *pipelinestop.WatcherOptions) { o.HandBack, o.HandBackDelay = true, time.Second })
	other := env.newWatcher(func(o *pipelinestop.WatcherOptions) { o.HandBack, o.HandBackDelay = true, time.Second })
	bPolled := make(chan struct{}, 1)
	s2 := pipelinestop.New(env.em.SageMakerClient(), fastWait, func(o *pipelinestop.Options) {
		o.Watcher, o.Clock = other, env.clock
		o.OnEvent = func(ev pipelinestop.Event) {
			if ev.Type == pipelinestop.EventStatus {
				select {
				case bPolled <- struct{}{}:
				default:
				}
			}
		}
	})
	a, b := env.stoppingExecution("shared-a"), env.stoppingExecution("shared-b")
	resA := env.waitFor(a)
	resB := make(chan *pipelinestop.Outcome, 1)
	go func() {
		out, err := s2.Wait(testCtx(t, 20*time.Second), b)
		if err != nil {
			t.Errorf("Wait b: %v", err)
		}
		resB <- out
	}()
	// Let b's wait subscribe and poll first.
	select {
	case <-bPolled:
	case <-time.After(10 * time.Second):
		t.Fatal("b's wait never polled")
	}
	for _, x := range []struct{ arn, step string }{{a, "Notify-shared-a"}, {b, "Notify-shared-b"}} {
		if err := env.em.CompleteStep(x.arn, x.step); err != nil {
			t.Fatal(err)
		}
	}
	env.send(statusEvent("a1", a, "Stopped", time.Now()), statusEvent("b1", b, "Stopped", time.Now()))
	for deadline := time.After(10 * time.Second); env.w.Stats().Unwatched == 0; {
		select {
		case <-deadline:
			t.Fatalf("the first Watcher never received b's event: %+v", env.w.Stats())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if out := env.outcome(resA); out.Status != types.PipelineExecutionStatusStopped || out.Polls != 2 {
		t.Fatalf("a: outcome %+v: want Stopped on its event, without a safety poll", out)
	}
	env.stopFirst()
	env.run(other)
	if out := env.outcome(resB); out.Status != types.PipelineExecutionStatusStopped || out.Polls != 2 {
		t.Fatalf("b: outcome %+v: want Stopped at its second poll, without a safety poll", out)
	}
	// The event handed back by the first Watcher reaches the second (after
	// the hand-back delay), which delivers it to b's subscription if b
	// still waits, or counts it as unwatched.
	for deadline := time.After(10 * time.Second); ; {
		if st := other.Stats(); st.Delivered+st.Unwatched >= 1 && st.Received >= 1 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("the handed-back event never reached the second Watcher: %+v", other.Stats())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestNewWatcherValidates(t *testing.T) {
	if _, err := pipelinestop.NewWatcher(nil, "u"); !errors.Is(err, pipelinestop.ErrInvalidWatcher) {
		t.Errorf("nil client: %v", err)
	}
	var w pipelinestop.Watcher
	if err := w.Run(context.Background()); !errors.Is(err, pipelinestop.ErrInvalidWatcher) {
		t.Errorf("zero Watcher: %v", err)
	}
}

// TestWatcherNotRunning: a Watcher whose Run never started, or has ended,
// gives no events: Wait polls as if it had none (it waited for the safety
// poll before, and a forgotten Run made every wait a timeout).
func TestWatcherNotRunning(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	url, err := em.CreateQueue("pipeline-events")
	if err != nil {
		t.Fatal(err)
	}
	w, err := pipelinestop.NewWatcher(em.SQSClient(), url)
	if err != nil {
		t.Fatal(err)
	}
	em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: 300 * time.Millisecond})
	arn := startPipeline(t, em, "idle-watcher", emulator.Step{Name: "Train"})
	s := pipelinestop.New(em.SageMakerClient(), fastWait, func(o *pipelinestop.Options) { o.Watcher = w })
	out, err := s.StopAndWait(testCtx(t, 10*time.Second), arn)
	if err != nil || out.Status != types.PipelineExecutionStatusStopped {
		t.Fatalf("StopAndWait with a Watcher that does not run: %+v, %v; want Stopped by polling", out, err)
	}
}

// TestWatcherStatusHint: a status event that is not terminal (Stopping)
// updates the wait's status without a Describe call.
func TestWatcherStatusHint(t *testing.T) {
	env := newWatchEnv(t)
	arn := env.stoppingExecution("hinted")
	describes := env.em.Requests("DescribePipelineExecution")
	res := env.waitFor(arn) // its first poll saw Stopping
	env.send(statusEvent("x1", arn, "Executing", time.Now().Add(time.Second)))
	for deadline := time.After(10 * time.Second); ; {
		select {
		case ev := <-env.events:
			if ev.Type != pipelinestop.EventStatus || ev.Status != types.PipelineExecutionStatusExecuting {
				continue
			}
			if d := env.em.Requests("DescribePipelineExecution") - describes; d != 1 {
				t.Fatalf("%d Describe calls; the hint must cost none", d)
			}
		case <-deadline:
			t.Fatal("the status event did not update the wait")
		}
		break
	}
	if err := env.em.CompleteStep(arn, "Notify-hinted"); err != nil {
		t.Fatal(err)
	}
	env.send(statusEvent("x2", arn, "Stopped", time.Now().Add(2*time.Second)))
	if out := env.outcome(res); out.Status != types.PipelineExecutionStatusStopped {
		t.Fatalf("outcome %+v", out)
	}
}

// cancelingQueue hands out one event for an execution nobody watches and
// cancels Run's context as it does (a shutdown that comes right then);
// visibility changes fail when their context has ended, as the SDK's do.
type cancelingQueue struct {
	cancel   context.CancelFunc
	served   bool
	handedOn []string
	mu       sync.Mutex
}

func (q *cancelingQueue) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.served {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	q.served = true
	q.cancel()
	body := statusEvent("e1", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/nobody", "Stopped", time.Now())
	return &sqs.ReceiveMessageOutput{Messages: []sqstypes.Message{{MessageId: aws.String("m1"), ReceiptHandle: aws.String("h1"),
		Body: aws.String(body), Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}}, nil
}

func (q *cancelingQueue) DeleteMessageBatch(ctx context.Context, _ *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	return &sqs.DeleteMessageBatchOutput{}, ctx.Err()
}

func (q *cancelingQueue) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range in.Entries {
		q.handedOn = append(q.handedOn, aws.ToString(e.ReceiptHandle))
	}
	return &sqs.ChangeMessageVisibilityBatchOutput{}, nil
}

// TestWatcherHandsBackOnShutdown: events received just as Run's context
// ends are still handed back (a hand-back cut short would hide the event
// from the process that waits for it for the queue's visibility timeout).
func TestWatcherHandsBackOnShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	q := &cancelingQueue{cancel: cancel}
	w, err := pipelinestop.NewWatcher(q, "https://sqs.us-east-1.amazonaws.com/123456789012/events",
		func(o *pipelinestop.WatcherOptions) { o.HandBack = true })
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.handedOn) != 1 {
		t.Fatalf("handed back %v; want the one event received as Run ended", q.handedOn)
	}
}

// blockingDeleteQueue hands out one batch of events for an execution
// nobody watches, then blocks receives until their context ends; its
// deletes block until release is closed.
type blockingDeleteQueue struct {
	release  chan struct{}
	mu       sync.Mutex
	receives int
	deletes  int
}

func (q *blockingDeleteQueue) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.mu.Lock()
	q.receives++
	first := q.receives == 1
	q.mu.Unlock()
	if !first {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	body := statusEvent("e1", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/nobody", "Stopped", time.Now())
	return &sqs.ReceiveMessageOutput{Messages: []sqstypes.Message{{MessageId: aws.String("m1"), ReceiptHandle: aws.String("h1"),
		Body: aws.String(body), Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}}, nil
}

func (q *blockingDeleteQueue) DeleteMessageBatch(ctx context.Context, _ *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	<-q.release
	q.mu.Lock()
	q.deletes++
	q.mu.Unlock()
	return &sqs.DeleteMessageBatchOutput{}, nil
}

func (q *blockingDeleteQueue) ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	return &sqs.ChangeMessageVisibilityBatchOutput{}, nil
}

// TestWatcherReceivesWhileDeleting: the next receive does not wait for the
// deletes of the last batch (BENCHMARKS.md, What is left 4: one loop that
// deleted before receiving again let a burst of events queue up), and Run
// still waits for them before it returns.
func TestWatcherReceivesWhileDeleting(t *testing.T) {
	q := &blockingDeleteQueue{release: make(chan struct{})}
	w, err := pipelinestop.NewWatcher(q, "https://sqs.us-east-1.amazonaws.com/123456789012/events")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		q.mu.Lock()
		n := q.receives
		q.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			close(q.release)
			cancel()
			<-done
			t.Fatal("no second receive while the first batch's delete was in progress")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned before the delete it started ended")
	case <-time.After(20 * time.Millisecond):
	}
	close(q.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deletes != 1 {
		t.Fatalf("%d deletes; want 1", q.deletes)
	}
}
