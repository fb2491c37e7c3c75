package pipelinestop_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"go.uber.org/mock/gomock"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
	"github.com/pipelinestop/pipelinestop/internal/mocks"
	"github.com/pipelinestop/pipelinestop/internal/testlog"
)

const cbQueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/callbacks"

// fakeQueue is the state behind a MockQueueAPIClient: receives hand out
// the batches pushed, in order, and block (like a long poll) when there
// are none; deletes and visibility changes are recorded.
type fakeQueue struct {
	mu       sync.Mutex
	batches  [][]sqstypes.Message
	pushed   chan struct{}
	inputs   []*sqs.ReceiveMessageInput
	deleted  []string
	changes  map[string][]int32
	delCalls [][]string
	chCalls  [][]string
	// receiveErr, if set, is returned by the next receives it returns
	// non-nil for.
	receiveErr func() error
	// deleteFail, if set, decides per entry whether a delete fails.
	deleteFail func(handle string) *sqstypes.BatchResultErrorEntry
	// active counts the receive calls in progress, maxActive the most at
	// once; attemptIDs are the calls' ReceiveRequestAttemptIds, in order.
	active, maxActive int
	attemptIDs        []string
}

func newFakeQueue(t *testing.T) (*fakeQueue, *mocks.MockQueueAPIClient) {
	q := &fakeQueue{pushed: make(chan struct{}, 100), changes: map[string][]int32{}}
	m := mocks.NewMockQueueAPIClient(gomock.NewController(t))
	m.EXPECT().ReceiveMessage(gomock.Any(), gomock.Any(), gomock.Any()).AnyTimes().DoAndReturn(q.receive)
	m.EXPECT().DeleteMessageBatch(gomock.Any(), gomock.Any(), gomock.Any()).AnyTimes().DoAndReturn(q.deleteBatch)
	m.EXPECT().ChangeMessageVisibilityBatch(gomock.Any(), gomock.Any(), gomock.Any()).AnyTimes().DoAndReturn(q.changeBatch)
	return q, m
}

func (q *fakeQueue) push(msgs ...sqstypes.Message) {
	q.mu.Lock()
	q.batches = append(q.batches, msgs)
	q.mu.Unlock()
	q.pushed <- struct{}{}
}

func (q *fakeQueue) receive(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.mu.Lock()
	q.active++
	q.maxActive = max(q.maxActive, q.active)
	q.attemptIDs = append(q.attemptIDs, aws.ToString(in.ReceiveRequestAttemptId))
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.active--
		q.mu.Unlock()
	}()
	for {
		q.mu.Lock()
		q.inputs = append(q.inputs, in)
		if q.receiveErr != nil {
			if err := q.receiveErr(); err != nil {
				q.mu.Unlock()
				return nil, err
			}
		}
		if len(q.batches) > 0 {
			b := q.batches[0]
			q.batches = q.batches[1:]
			q.mu.Unlock()
			return &sqs.ReceiveMessageOutput{Messages: b}, nil
		}
		q.mu.Unlock()
		select {
		case <-q.pushed:
		case <-ctx.Done():
			return nil, &smithy.OperationError{ServiceID: "SQS", OperationName: "ReceiveMessage", Err: ctx.Err()}
		}
	}
}

func (q *fakeQueue) deleteBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := &sqs.DeleteMessageBatchOutput{}
	var call []string
	for _, e := range in.Entries {
		h := aws.ToString(e.ReceiptHandle)
		call = append(call, h)
		if q.deleteFail != nil {
			if f := q.deleteFail(h); f != nil {
				f.Id = e.Id
				out.Failed = append(out.Failed, *f)
				continue
			}
		}
		q.deleted = append(q.deleted, h)
		out.Successful = append(out.Successful, sqstypes.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	q.delCalls = append(q.delCalls, call)
	return out, nil
}

func (q *fakeQueue) changeBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	var call []string
	for _, e := range in.Entries {
		h := aws.ToString(e.ReceiptHandle)
		call = append(call, h)
		q.changes[h] = append(q.changes[h], e.VisibilityTimeout)
		out.Successful = append(out.Successful, sqstypes.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
	}
	q.chCalls = append(q.chCalls, call)
	return out, nil
}

func (q *fakeQueue) snapshot() (deleted []string, changes map[string][]int32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	changes = map[string][]int32{}
	for k, v := range q.changes {
		changes[k] = slices.Clone(v)
	}
	return slices.Clone(q.deleted), changes
}

// sqsMsg builds a received message whose receipt handle is "h-"+id.
func sqsMsg(id, body string, receiveCount int) sqstypes.Message {
	return sqstypes.Message{MessageId: aws.String(id), ReceiptHandle: aws.String("h-" + id), Body: aws.String(body),
		Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(receiveCount)}}
}

func cbMsgBody(token, status string) string {
	return fmt.Sprintf(`{"token":%q,"pipelineExecutionArn":%q,"arguments":{"n":1},"status":%q}`, token, cbARN, status)
}

// fakeSageMaker records the answers sent through a MockCallbackAPIClient.
type fakeSageMaker struct {
	mu      sync.Mutex
	answers map[string][]string // token -> "success" or "failure: reason"
	// fail, if set, makes an answer fail: op is "success" or "failure".
	fail func(token, op string) error
}

func newFakeSageMaker(t *testing.T) (*fakeSageMaker, *mocks.MockCallbackAPIClient) {
	f := &fakeSageMaker{answers: map[string][]string{}}
	m := mocks.NewMockCallbackAPIClient(gomock.NewController(t))
	m.EXPECT().SendPipelineExecutionStepSuccess(gomock.Any(), gomock.Any(), gomock.Any()).AnyTimes().
		DoAndReturn(func(_ context.Context, in *sagemaker.SendPipelineExecutionStepSuccessInput, _ ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepSuccessOutput, error) {
			var outs []string
			for _, p := range in.OutputParameters {
				outs = append(outs, aws.ToString(p.Name)+"="+aws.ToString(p.Value))
			}
			return &sagemaker.SendPipelineExecutionStepSuccessOutput{},
				f.record(aws.ToString(in.CallbackToken), "success", strings.Join(outs, ","))
		})
	m.EXPECT().SendPipelineExecutionStepFailure(gomock.Any(), gomock.Any(), gomock.Any()).AnyTimes().
		DoAndReturn(func(_ context.Context, in *sagemaker.SendPipelineExecutionStepFailureInput, _ ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepFailureOutput, error) {
			return &sagemaker.SendPipelineExecutionStepFailureOutput{},
				f.record(aws.ToString(in.CallbackToken), "failure", aws.ToString(in.FailureReason))
		})
	return f, m
}

func (f *fakeSageMaker) record(token, op, detail string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(token, op); err != nil {
			return err
		}
	}
	a := op
	if detail != "" {
		a += ": " + detail
	}
	f.answers[token] = append(f.answers[token], a)
	return nil
}

func (f *fakeSageMaker) get(token string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.answers[token])
}

// harness runs a Consumer over a fakeQueue and a fakeSageMaker.
type harness struct {
	t      *testing.T
	q      *fakeQueue
	sm     *fakeSageMaker
	clock  *fakeclock.Manual
	c      *pipelinestop.Consumer
	cancel context.CancelFunc
	done   chan error
	logs   *testlog.Buffer

	mu     sync.Mutex
	events []pipelinestop.Event
}

func newHarness(t *testing.T, h pipelinestop.Handler, optFns ...func(*pipelinestop.ConsumerOptions)) *harness {
	t.Helper()
	return newHarnessAt(t, cbQueueURL, h, optFns...)
}

// newHarnessAt is newHarness with a Consumer of the queue at queueURL.
func newHarnessAt(t *testing.T, queueURL string, h pipelinestop.Handler, optFns ...func(*pipelinestop.ConsumerOptions)) *harness {
	t.Helper()
	hs := &harness{t: t, clock: fakeclock.NewManual(time.Unix(1000, 0)), logs: &testlog.Buffer{}}
	var queue *mocks.MockQueueAPIClient
	hs.q, queue = newFakeQueue(t)
	var sm *mocks.MockCallbackAPIClient
	hs.sm, sm = newFakeSageMaker(t)
	logger := hs.logs.Logger()
	onEvent := func(e pipelinestop.Event) {
		hs.mu.Lock()
		hs.events = append(hs.events, e)
		hs.mu.Unlock()
	}
	ack := pipelinestop.NewAcknowledger(sm, cbOpts(func(o *pipelinestop.Options) {
		o.Logger, o.OnEvent, o.RetryBudget = logger, onEvent, 2*time.Second
	}))
	c, err := pipelinestop.NewConsumer(queue, queueURL, ack, h, func(o *pipelinestop.ConsumerOptions) {
		o.Clock = hs.clock
		for _, fn := range optFns {
			fn(o)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	hs.c = c
	return hs
}

func (hs *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	hs.cancel = cancel
	hs.done = make(chan error, 1)
	go func() { hs.done <- hs.c.Run(ctx) }()
	hs.t.Cleanup(func() {
		cancel()
		select {
		case <-hs.done:
		case <-time.After(5 * time.Second):
			hs.t.Error("Run did not return")
		}
	})
}

// stop cancels Run and waits for it to return.
func (hs *harness) stop() error {
	hs.t.Helper()
	hs.cancel()
	select {
	case err := <-hs.done:
		hs.done <- err // for Cleanup
		return err
	case <-time.After(5 * time.Second):
		hs.t.Fatal("Run did not return")
		return nil
	}
}

func (hs *harness) eventTypes() []string {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	var s []string
	for _, e := range hs.events {
		s = append(s, e.Type.String())
	}
	return s
}

// eventually polls cond for up to 3 seconds of real time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (hs *harness) waitDeleted(handles ...string) {
	hs.t.Helper()
	eventually(hs.t, fmt.Sprintf("deletes of %v", handles), func() bool {
		d, _ := hs.q.snapshot()
		for _, h := range handles {
			if !slices.Contains(d, h) {
				return false
			}
		}
		return true
	})
}

func (hs *harness) waitChanged(handle string, timeouts ...int32) {
	hs.t.Helper()
	eventually(hs.t, fmt.Sprintf("visibility of %s set to %v", handle, timeouts), func() bool {
		_, ch := hs.q.snapshot()
		return slices.Equal(ch[handle], timeouts)
	})
}

func okHandler(outputs map[string]string) pipelinestop.Handler {
	return pipelinestop.Handler{Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
		return outputs, nil
	}}
}

func TestNewConsumerValidates(t *testing.T) {
	_, queue := newFakeQueue(t)
	ack := pipelinestop.NewAcknowledger(mocks.NewMockCallbackAPIClient(gomock.NewController(t)))
	h := okHandler(nil)
	for name, fn := range map[string]func() error{
		"nil queue": func() error { _, err := pipelinestop.NewConsumer(nil, cbQueueURL, ack, h); return err },
		"empty URL": func() error { _, err := pipelinestop.NewConsumer(queue, "", ack, h); return err },
		"nil ack":   func() error { _, err := pipelinestop.NewConsumer(queue, cbQueueURL, nil, h); return err },
		"nil Execute": func() error {
			_, err := pipelinestop.NewConsumer(queue, cbQueueURL, ack, pipelinestop.Handler{})
			return err
		},
		"valid config": func() error { _, err := pipelinestop.NewConsumer(queue, cbQueueURL, ack, h); return err },
	} {
		err := fn()
		if name == "valid config" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if !errors.Is(err, pipelinestop.ErrInvalidConsumer) {
			t.Errorf("%s: error %v, want ErrInvalidConsumer", name, err)
		}
	}
}

func TestConsumerAnswers(t *testing.T) {
	tests := []struct {
		name    string
		execute func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error)
		want    []string
		event   string
	}{
		{"success", func(_ context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			return map[string]string{"n": string(m.Arguments["n"])}, nil
		}, []string{"success: n=1"}, "answered"},
		{"error fails the step", func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
			return nil, errors.New("model too big")
		}, []string{"failure: model too big"}, "answered"},
		{"panic fails the step", func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
			panic("nil map")
		}, []string{"failure: panic: nil map"}, "panic"},
		{"invalid outputs fail the step", func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
			return map[string]string{"": "x"}, nil
		}, []string{"failure: send pipeline execution step success: pipelinestop: invalid callback: an output parameter has an empty name"}, "answered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, pipelinestop.Handler{Execute: tt.execute})
			hs.start()
			hs.q.push(sqsMsg("m1", cbMsgBody(cbToken, "Executing"), 1))
			hs.waitDeleted("h-m1")
			if got := hs.sm.get(cbToken); !slices.Equal(got, tt.want) {
				t.Errorf("answers %q, want %q", got, tt.want)
			}
			if !slices.Contains(hs.eventTypes(), tt.event) {
				t.Errorf("events %v lack %s", hs.eventTypes(), tt.event)
			}
			// The consumer keeps running after a panic.
			hs.q.push(sqsMsg("m2", cbMsgBody("Other12345", "Executing"), 1))
			hs.waitDeleted("h-m2")
			if err := hs.stop(); err != nil {
				t.Errorf("Run: %v", err)
			}
			hs.q.mu.Lock()
			in := hs.q.inputs[0]
			hs.q.mu.Unlock()
			if in.WaitTimeSeconds != 20 || in.MaxNumberOfMessages != 10 || in.VisibilityTimeout != 5 ||
				aws.ToString(in.QueueUrl) != cbQueueURL || len(in.MessageSystemAttributeNames) != 1 {
				t.Errorf("receive input %+v", in)
			}
			assertNoToken(t, hs.logs.String(), cbToken)
		})
	}
}

func TestConsumerPendingAndRetryLater(t *testing.T) {
	var calls sync.Map
	hs := newHarness(t, pipelinestop.Handler{Execute: func(_ context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
		calls.Store(string(m.Token), true)
		if m.Token == "Pending123" {
			return nil, fmt.Errorf("job submitted: %w", pipelinestop.ErrPending)
		}
		return nil, pipelinestop.RetryLater(errors.New("GPU quota"))
	}})
	hs.start()
	hs.q.push(sqsMsg("p", cbMsgBody("Pending123", "Executing"), 1),
		sqsMsg("r1", cbMsgBody("Retry11111", "Executing"), 1),
		sqsMsg("r3", cbMsgBody("Retry33333", "Executing"), 3),
		sqsMsg("r99", cbMsgBody("Retry99999", "Executing"), 99))
	hs.waitDeleted("h-p")
	hs.waitChanged("h-r1", 10)
	hs.waitChanged("h-r3", 40)
	hs.waitChanged("h-r99", 900)
	for _, tok := range []string{"Pending123", "Retry11111", "Retry33333", "Retry99999"} {
		if a := hs.sm.get(tok); len(a) != 0 {
			t.Errorf("%s answered %v", tok, a)
		}
	}
	if d, _ := hs.q.snapshot(); len(d) != 1 {
		t.Errorf("deleted %v, want only the pending message", d)
	}
	ev := hs.eventTypes()
	if !slices.Contains(ev, "pending") || !slices.Contains(ev, "retry_later") {
		t.Errorf("events %v", ev)
	}
}

func TestConsumerMalformed(t *testing.T) {
	bad := `{"token":"` + cbToken + `","pipelineExecutionArn":"arn:aws:s3:::bucket","status":"Executing"}`
	for _, del := range []bool{false, true} {
		t.Run(fmt.Sprintf("DeleteMalformed=%v", del), func(t *testing.T) {
			called := false
			hs := newHarness(t, pipelinestop.Handler{Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
				called = true
				return nil, nil
			}}, func(o *pipelinestop.ConsumerOptions) { o.DeleteMalformed = del })
			hs.start()
			hs.q.push(sqsMsg("bad", bad, 2), sqsMsg("junk", "not json "+cbToken, 1))
			if del {
				hs.waitDeleted("h-bad", "h-junk")
			} else {
				hs.waitChanged("h-bad", 20)
				hs.waitChanged("h-junk", 10)
			}
			hs.stop()
			if called || len(hs.sm.get(cbToken)) != 0 {
				t.Error("a malformed message reached the handler or was answered")
			}
			if n := strings.Count(strings.Join(hs.eventTypes(), ","), "malformed"); n != 2 {
				t.Errorf("%d malformed events", n)
			}
			assertNoToken(t, hs.logs.String(), cbToken)
			if !strings.Contains(hs.logs.String(), `"level":"WARN"`) {
				t.Errorf("malformed messages not logged as warnings:\n%s", hs.logs.String())
			}
		})
	}
}

func TestConsumerAnswerOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantDelete bool
	}{
		{"already answered", cbErr(cbOpSuccess, &types.ConflictException{Message: aws.String("already in a terminal status")}), true},
		{"not found", cbErr(cbOpSuccess, &types.ResourceNotFound{Message: aws.String("no such token")}), true},
		{"throttled beyond the budget", cbErr(cbOpSuccess, &smithy.GenericAPIError{Code: "ThrottlingException"}), false},
		{"access denied", cbErr(cbOpSuccess, &smithy.GenericAPIError{Code: "AccessDeniedException"}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, okHandler(nil))
			hs.sm.fail = func(string, string) error { return tt.err }
			hs.start()
			hs.q.push(sqsMsg("m", cbMsgBody(cbToken, "Executing"), 2))
			if tt.wantDelete {
				hs.waitDeleted("h-m")
				return
			}
			hs.waitChanged("h-m", 20)
			if d, _ := hs.q.snapshot(); len(d) != 0 {
				t.Errorf("deleted %v without an answer", d)
			}
		})
	}
}

func TestConsumerStoppingCancelsExecute(t *testing.T) {
	started := make(chan struct{})
	var sawCancel, cleaned sync.WaitGroup
	sawCancel.Add(1)
	cleaned.Add(1)
	hs := newHarness(t, pipelinestop.Handler{
		Execute: func(ctx context.Context, _ *pipelinestop.CallbackMessage) (map[string]string, error) {
			close(started)
			<-ctx.Done()
			if cause := context.Cause(ctx); !errors.Is(cause, pipelinestop.ErrStepStopping) {
				t.Errorf("Execute's context cause is %v, want ErrStepStopping", cause)
			}
			sawCancel.Done()
			return map[string]string{"ignored": "yes"}, nil
		},
		Cleanup: func(context.Context, *pipelinestop.CallbackMessage) error {
			cleaned.Done()
			return nil
		},
	})
	hs.start()
	hs.q.push(sqsMsg("exec", cbMsgBody(cbToken, "Executing"), 1))
	<-started
	hs.q.push(sqsMsg("stop", cbMsgBody(cbToken, "Stopping"), 1))
	sawCancel.Wait()
	cleaned.Wait()
	hs.waitDeleted("h-exec", "h-stop")
	if got := hs.sm.get(cbToken); !slices.Equal(got, []string{"success"}) {
		t.Errorf("answers %q, want one success without outputs", got)
	}
	if !slices.Contains(hs.eventTypes(), "handler_canceled") {
		t.Errorf("events %v", hs.eventTypes())
	}
}

func TestConsumerStoppingFirst(t *testing.T) {
	for _, sameBatch := range []bool{true, false} {
		t.Run(fmt.Sprintf("sameBatch=%v", sameBatch), func(t *testing.T) {
			executed := make(chan struct{}, 10)
			hs := newHarness(t, pipelinestop.Handler{
				Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
					executed <- struct{}{}
					return nil, nil
				},
				Cleanup: func(context.Context, *pipelinestop.CallbackMessage) error { return errors.New("could not cancel") },
			})
			hs.start()
			stop := sqsMsg("stop", cbMsgBody(cbToken, "Stopping"), 1)
			exec := sqsMsg("exec", cbMsgBody(cbToken, "Executing"), 1)
			dup := sqsMsg("dup", cbMsgBody(cbToken, "Executing"), 2)
			if sameBatch {
				hs.q.push(exec, stop, dup)
			} else {
				hs.q.push(stop)
				hs.waitDeleted("h-stop")
				hs.q.push(exec, dup)
			}
			hs.waitDeleted("h-stop", "h-exec", "h-dup")
			if got := hs.sm.get(cbToken); !slices.Equal(got, []string{"failure: could not cancel"}) {
				t.Errorf("answers %q, want one failure", got)
			}
			if len(executed) != 0 {
				t.Error("Execute ran for a step that was being stopped")
			}
		})
	}
}

func TestConsumerDuplicates(t *testing.T) {
	release := make(chan struct{})
	var runs sync.Map
	hs := newHarness(t, pipelinestop.Handler{Execute: func(_ context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
		n, _ := runs.LoadOrStore(string(m.Token), new(int))
		*n.(*int)++
		<-release
		return nil, nil
	}})
	hs.start()
	hs.q.push(sqsMsg("a", cbMsgBody(cbToken, "Executing"), 1), sqsMsg("b", cbMsgBody(cbToken, "Executing"), 1))
	hs.q.push(sqsMsg("c", cbMsgBody(cbToken, "Executing"), 2))
	eventually(t, "the third message received", func() bool {
		hs.q.mu.Lock()
		defer hs.q.mu.Unlock()
		return len(hs.q.batches) == 0
	})
	close(release)
	hs.waitDeleted("h-a", "h-b", "h-c")
	// A late duplicate is deleted without running the handler again.
	hs.q.push(sqsMsg("d", cbMsgBody(cbToken, "Executing"), 3))
	hs.waitDeleted("h-d")
	if n, _ := runs.Load(cbToken); *n.(*int) != 1 {
		t.Errorf("handler ran %d times", *n.(*int))
	}
	if got := hs.sm.get(cbToken); len(got) != 1 {
		t.Errorf("answers %q", got)
	}
}

func TestConsumerExtendsVisibility(t *testing.T) {
	release := make(chan struct{})
	var running sync.WaitGroup
	running.Add(12)
	hs := newHarness(t, pipelinestop.Handler{Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
		running.Done()
		<-release
		return nil, nil
	}}, func(o *pipelinestop.ConsumerOptions) { o.Concurrency = 12 })
	hs.start()
	var first, second []sqstypes.Message
	for i := range 12 {
		m := sqsMsg(fmt.Sprint(i), cbMsgBody(fmt.Sprintf("Token%05d", i), "Executing"), 1)
		if i < 10 {
			first = append(first, m)
		} else {
			second = append(second, m)
		}
	}
	hs.q.push(first...)
	hs.q.push(second...)
	running.Wait()
	if !hs.clock.WaitForWaiter(time.Second) && hs.clock.Waiters() == 0 {
		t.Fatal("the keeper has no timer")
	}
	hs.clock.Advance(16 * time.Second) // past half the 30 s visibility timeout
	for i := range 12 {
		hs.waitChanged("h-"+fmt.Sprint(i), 30)
	}
	hs.q.mu.Lock()
	for _, call := range hs.q.chCalls {
		if len(call) > 10 {
			t.Errorf("a visibility batch of %d entries", len(call))
		}
	}
	hs.q.mu.Unlock()
	close(release)
	for i := range 12 {
		hs.waitDeleted("h-" + fmt.Sprint(i))
	}
	hs.q.mu.Lock()
	defer hs.q.mu.Unlock()
	for _, call := range hs.q.delCalls {
		if len(call) > 10 {
			t.Errorf("a delete batch of %d entries", len(call))
		}
	}
}

func TestConsumerDeleteBatchFailures(t *testing.T) {
	hs := newHarness(t, okHandler(nil))
	var mu sync.Mutex
	attempts := map[string]int{}
	hs.q.deleteFail = func(h string) *sqstypes.BatchResultErrorEntry {
		mu.Lock()
		defer mu.Unlock()
		attempts[h]++
		switch {
		case h == "h-transient" && attempts[h] == 1:
			return &sqstypes.BatchResultErrorEntry{Code: aws.String("InternalError"), SenderFault: false}
		case h == "h-stale":
			return &sqstypes.BatchResultErrorEntry{Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true}
		}
		return nil
	}
	hs.start()
	hs.q.push(sqsMsg("transient", cbMsgBody("Token00001", "Executing"), 1), sqsMsg("stale", cbMsgBody("Token00002", "Executing"), 1))
	eventually(t, "the failed deletes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return attempts["h-transient"] >= 1 && attempts["h-stale"] >= 1
	})
	// The transient failure is retried on the keeper's next tick.
	for range 3 {
		hs.clock.Advance(8 * time.Second)
		time.Sleep(2 * time.Millisecond)
	}
	hs.waitDeleted("h-transient")
	hs.stop()
	mu.Lock()
	defer mu.Unlock()
	if attempts["h-stale"] != 1 {
		t.Errorf("a permanently failed delete was tried %d times", attempts["h-stale"])
	}
	if n := strings.Count(strings.Join(hs.eventTypes(), ","), "queue_error"); n != 2 {
		t.Errorf("%d queue_error events, want 2: %v", n, hs.eventTypes())
	}
}

func TestConsumerShutdown(t *testing.T) {
	started := make(chan struct{})
	finish := make(chan struct{})
	var handlerEnded sync.WaitGroup
	handlerEnded.Add(1)
	hs := newHarness(t, pipelinestop.Handler{Execute: func(ctx context.Context, _ *pipelinestop.CallbackMessage) (map[string]string, error) {
		defer handlerEnded.Done()
		close(started)
		<-finish
		return map[string]string{"done": "1"}, ctx.Err()
	}}, func(o *pipelinestop.ConsumerOptions) { o.Concurrency = 1 })
	hs.start()
	hs.q.push(sqsMsg("run", cbMsgBody("Token00001", "Executing"), 1),
		sqsMsg("wait1", cbMsgBody("Token00002", "Executing"), 1),
		sqsMsg("wait2", cbMsgBody("Token00003", "Executing"), 4))
	<-started
	hs.cancel()
	// Unstarted messages are handed back at once, while the handler runs.
	hs.waitChanged("h-wait1", 0)
	hs.waitChanged("h-wait2", 0)
	select {
	case <-hs.done:
		t.Fatal("Run returned before the draining handler ended")
	default:
	}
	close(finish)
	if err := hs.stop(); err != nil {
		t.Fatal(err)
	}
	handlerEnded.Wait()
	deleted, _ := hs.q.snapshot()
	if !slices.Equal(deleted, []string{"h-run"}) {
		t.Errorf("deleted %v, want the drained message only", deleted)
	}
	if got := hs.sm.get("Token00001"); !slices.Equal(got, []string{"success: done=1"}) {
		t.Errorf("answers %q", got)
	}
}

func TestConsumerDrainTimeout(t *testing.T) {
	started := make(chan struct{})
	hs := newHarness(t, pipelinestop.Handler{Execute: func(ctx context.Context, _ *pipelinestop.CallbackMessage) (map[string]string, error) {
		close(started)
		<-ctx.Done()
		if cause := context.Cause(ctx); !errors.Is(cause, pipelinestop.ErrConsumerShutdown) {
			t.Errorf("Execute's context cause is %v, want ErrConsumerShutdown", cause)
		}
		return nil, ctx.Err()
	}}, func(o *pipelinestop.ConsumerOptions) {
		o.DrainTimeout = 5 * time.Second
		// Received with the full visibility timeout: no extension falls
		// due during the drain.
		o.ReceiveVisibilityTimeout = -1
	})
	hs.start()
	hs.q.push(sqsMsg("m", cbMsgBody(cbToken, "Executing"), 1))
	<-started
	hs.cancel()
	eventually(t, "the drain timer", func() bool { return hs.clock.Waiters() >= 2 })
	hs.clock.Advance(5 * time.Second)
	if err := hs.stop(); err != nil {
		t.Fatal(err)
	}
	hs.waitChanged("h-m", 0)
	if d, _ := hs.q.snapshot(); len(d) != 0 || len(hs.sm.get(cbToken)) != 0 {
		t.Errorf("an interrupted handler's step was answered or its message deleted: %v", d)
	}
}

func TestConsumerReceiveErrors(t *testing.T) {
	t.Run("transient", func(t *testing.T) {
		hs := newHarness(t, okHandler(nil))
		n := 0
		hs.q.receiveErr = func() error {
			if n++; n == 1 {
				return &smithy.OperationError{ServiceID: "SQS", OperationName: "ReceiveMessage",
					Err: &smithy.GenericAPIError{Code: "RequestThrottled"}}
			}
			return nil
		}
		hs.start()
		eventually(t, "the retry delay", func() bool { return hs.clock.Waiters() >= 2 })
		hs.clock.Advance(time.Second)
		hs.q.push(sqsMsg("m", cbMsgBody(cbToken, "Executing"), 1))
		hs.waitDeleted("h-m")
		if !slices.Contains(hs.eventTypes(), "queue_error") {
			t.Errorf("events %v", hs.eventTypes())
		}
	})
	t.Run("permanent", func(t *testing.T) {
		hs := newHarness(t, okHandler(nil))
		hs.q.receiveErr = func() error {
			return &smithy.OperationError{ServiceID: "SQS", OperationName: "ReceiveMessage",
				Err: &sqstypes.QueueDoesNotExist{Message: aws.String("The specified queue does not exist.")}}
		}
		hs.start()
		select {
		case err := <-hs.done:
			hs.done <- err
			var qne *sqstypes.QueueDoesNotExist
			if !errors.As(err, &qne) {
				t.Errorf("Run returned %v, want QueueDoesNotExist", err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("Run did not return after a permanent receive error")
		}
	})
}

func TestConsumerRunTwice(t *testing.T) {
	hs := newHarness(t, okHandler(nil))
	hs.start()
	eventually(t, "the first receive", func() bool {
		hs.q.mu.Lock()
		defer hs.q.mu.Unlock()
		return len(hs.q.inputs) > 0
	})
	if err := hs.c.Run(context.Background()); err == nil {
		t.Error("a second Run at the same time did not fail")
	}
}

// TestConsumerZeroValue: a Consumer not made by NewConsumer is bad input:
// Run returns an error instead of panicking in a goroutine.
func TestConsumerZeroValue(t *testing.T) {
	var c pipelinestop.Consumer
	if err := c.Run(context.Background()); !errors.Is(err, pipelinestop.ErrInvalidConsumer) {
		t.Fatalf("Run of a zero Consumer: %v, want ErrInvalidConsumer", err)
	}
	var nilConsumer *pipelinestop.Consumer
	if err := nilConsumer.Run(context.Background()); !errors.Is(err, pipelinestop.ErrInvalidConsumer) {
		t.Fatalf("Run of a nil Consumer: %v, want ErrInvalidConsumer", err)
	}
}

// nilQueue answers every call with (nil, nil), as a broken client or a
// careless test double might.
type nilQueue struct{ receives atomic.Int64 }

func (q *nilQueue) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if q.receives.Add(1) > 3 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, nil
}

func (q *nilQueue) DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	return nil, nil
}

func (q *nilQueue) ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	return nil, nil
}

// TestConsumerNilOutputs: a client answering (nil, nil) panics nothing.
func TestConsumerNilOutputs(t *testing.T) {
	q := &nilQueue{}
	c, err := pipelinestop.NewConsumer(q, cbQueueURL, pipelinestop.NewAcknowledger(newAnswerLog()), okHandler(nil),
		func(o *pipelinestop.ConsumerOptions) { o.Clock = fakeclock.NewManual(time.Unix(1000, 0)) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runUntil(t, c, 5*time.Second, func() bool { return q.receives.Load() > 3 }); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestConsumerRedactsCredentialsInReasons: a handler error that quotes a
// credential (say, a config dump) reaches neither the failure reason sent
// to SageMaker nor events and logs.
func TestConsumerRedactsCredentialsInReasons(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	hs := newHarness(t, pipelinestop.Handler{Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
		return nil, errors.New("bad config: aws_secret_access_key=" + secret)
	}})
	hs.start()
	hs.q.push(sqsMsg("m", cbMsgBody(cbToken, "Executing"), 1))
	hs.waitDeleted("h-m")
	got := hs.sm.get(cbToken)
	if len(got) != 1 || !strings.HasPrefix(got[0], "failure") || strings.Contains(got[0], secret) {
		t.Fatalf("answers %q: want one failure without the secret", got)
	}
	if err := hs.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hs.logs.String(), secret) {
		t.Fatal("the logs hold the secret")
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for _, ev := range hs.events {
		if ev.Err != nil && strings.Contains(ev.Err.Error(), secret) {
			t.Fatalf("event %v holds the secret", ev.Type)
		}
	}
}
