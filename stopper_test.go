package pipelinestop_test

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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"go.uber.org/mock/gomock"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
	"github.com/pipelinestop/pipelinestop/internal/mocks"
)

var epoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fixture is a Stopper over a mock client and an auto-advancing clock.
type fixture struct {
	mock   *mocks.MockStopAPIClient
	clock  *fakeclock.Auto
	events []pipelinestop.Event
	mu     sync.Mutex
	s      *pipelinestop.Stopper
}

func newFixture(t *testing.T, optFns ...func(*pipelinestop.Options)) *fixture {
	t.Helper()
	f := &fixture{mock: mocks.NewMockStopAPIClient(gomock.NewController(t)), clock: fakeclock.NewAuto(epoch)}
	base := func(o *pipelinestop.Options) {
		o.Clock = f.clock
		o.OnEvent = func(ev pipelinestop.Event) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.events = append(f.events, ev)
		}
	}
	f.s = pipelinestop.New(f.mock, append([]func(*pipelinestop.Options){base}, optFns...)...)
	return f
}

func (f *fixture) eventsOf(typ pipelinestop.EventType) []pipelinestop.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []pipelinestop.Event
	for _, ev := range f.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// expectStops makes StopPipelineExecution answer with errs in order (nil
// is success) and records the tokens sent.
func (f *fixture) expectStops(errs ...error) *[]string {
	var tokens []string
	var mu sync.Mutex
	i := 0
	f.mock.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(_ context.Context, in *sagemaker.StopPipelineExecutionInput, _ ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			tokens = append(tokens, aws.ToString(in.ClientRequestToken))
			err := errs[min(i, len(errs)-1)]
			i++
			if err != nil {
				return nil, err
			}
			return &sagemaker.StopPipelineExecutionOutput{PipelineExecutionArn: in.PipelineExecutionArn}, nil
		}).Times(len(errs))
	return &tokens
}

// expectStatuses makes DescribePipelineExecution answer the statuses in
// order, repeating the last.
func (f *fixture) expectStatuses(statuses ...types.PipelineExecutionStatus) *atomic.Int32 {
	var calls atomic.Int32
	f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(_ context.Context, in *sagemaker.DescribePipelineExecutionInput, _ ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
			n := int(calls.Add(1)) - 1
			st := statuses[min(n, len(statuses)-1)]
			out := &sagemaker.DescribePipelineExecutionOutput{PipelineExecutionArn: in.PipelineExecutionArn, PipelineExecutionStatus: st}
			if st == types.PipelineExecutionStatusFailed {
				out.FailureReason = aws.String("Lambda step Notify timed out")
			}
			return out, nil
		}).AnyTimes()
	return &calls
}

func TestStopAcceptedFirstTime(t *testing.T) {
	f := newFixture(t)
	tokens := f.expectStops(nil)
	res, err := f.s.Stop(context.Background(), testARN)
	if err != nil {
		t.Fatal(err)
	}
	want := pipelinestop.DeriveToken("StopPipelineExecution", testARN)
	if !res.Accepted || res.Status != types.PipelineExecutionStatusStopping || res.Attempts != 1 || res.Token != want {
		t.Errorf("result = %+v", res)
	}
	if (*tokens)[0] != want {
		t.Errorf("token sent %q, want the derived %q", (*tokens)[0], want)
	}
	if len(f.eventsOf(pipelinestop.EventAttempt)) != 1 || len(f.eventsOf(pipelinestop.EventStopped)) != 1 {
		t.Errorf("events = %+v", f.events)
	}
}

func TestStopRetriesWithOneToken(t *testing.T) {
	op := "StopPipelineExecution"
	tests := []struct {
		name string
		errs []error
		kind error
	}{
		{"conflicts", []error{conflictErr(op), conflictErr(op), conflictErr(op), nil}, pipelinestop.ErrConflict},
		{"throttling", []error{apiErr(op, 400, "ThrottlingException", "Rate exceeded"), nil}, pipelinestop.ErrThrottled},
		{"server errors", []error{apiErr(op, 500, "InternalFailure", ""), apiErr(op, 503, "ServiceUnavailable", ""), nil}, pipelinestop.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *pipelinestop.Options) { o.Token = "caller-chosen-token-0123456789abcdef" })
			tokens := f.expectStops(tt.errs...)
			res, err := f.s.Stop(context.Background(), testARN)
			if err != nil {
				t.Fatal(err)
			}
			if res.Attempts != len(tt.errs) || !res.Accepted {
				t.Errorf("result = %+v", res)
			}
			for _, tok := range *tokens {
				if tok != "caller-chosen-token-0123456789abcdef" {
					t.Errorf("tokens sent = %q, want the caller's on every attempt", *tokens)
				}
			}
			retries := f.eventsOf(pipelinestop.EventRetry)
			if len(retries) != len(tt.errs)-1 {
				t.Fatalf("%d retry events, want %d", len(retries), len(tt.errs)-1)
			}
			for _, ev := range retries {
				if !errors.Is(ev.Err, tt.kind) || ev.Delay <= 0 {
					t.Errorf("retry event %+v: want a %v cause and a delay", ev, tt.kind)
				}
			}
		})
	}
}

// TestStopOutlastsLongConflictRace: Airflow's 5 tries 0.3 s apart survive
// a race of about 1.5 s; the default budget survives a far longer one.
func TestStopOutlastsLongConflictRace(t *testing.T) {
	for _, race := range []time.Duration{1500 * time.Millisecond, 5 * time.Second, 20 * time.Second} {
		t.Run(race.String(), func(t *testing.T) {
			f := newFixture(t)
			calls := 0
			f.mock.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
				DoAndReturn(func(context.Context, *sagemaker.StopPipelineExecutionInput, ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
					calls++
					if f.clock.Now().Sub(epoch) < race {
						return nil, conflictErr("StopPipelineExecution")
					}
					return &sagemaker.StopPipelineExecutionOutput{}, nil
				}).MinTimes(6).MaxTimes(100)
			res, err := f.s.Stop(context.Background(), testARN)
			if err != nil {
				t.Fatal(err)
			}
			if calls <= 5 || res.Attempts != calls {
				t.Errorf("attempts = %d (calls %d), want more than Airflow's 5", res.Attempts, calls)
			}
			// The stop lands soon after the race ends: within the largest
			// delay plus its jitter.
			if late := res.Elapsed - race; late < 0 || late > pipelinestop.DefaultRetryMaxDelay*6/5 {
				t.Errorf("stop landed %v after a %v race", late, race)
			}
		})
	}
}

func TestStopBudgetExhausted(t *testing.T) {
	f := newFixture(t, func(o *pipelinestop.Options) { o.RetryBudget = 5 * time.Second })
	f.mock.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		Return(nil, conflictErr("StopPipelineExecution")).MinTimes(5).MaxTimes(60)
	res, err := f.s.Stop(context.Background(), testARN)
	if !errors.Is(err, pipelinestop.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	var ce *types.ConflictException
	var e *pipelinestop.Error
	if !errors.As(err, &ce) || !errors.As(err, &e) {
		t.Fatalf("the last API error is lost: %v", err)
	}
	if e.Attempts != res.Attempts || e.Attempts < 5 || !strings.Contains(err.Error(), "gave up after") {
		t.Errorf("attempts %d/%d, message %q", e.Attempts, res.Attempts, err)
	}
	if elapsed := f.clock.Now().Sub(epoch); elapsed > 5*time.Second {
		t.Errorf("retried for %v, past the 5s budget", elapsed)
	}
}

func TestStopNotFound(t *testing.T) {
	f := newFixture(t)
	f.expectStops(notFoundErr("StopPipelineExecution"))
	_, err := f.s.Stop(context.Background(), testARN)
	var nf *types.ResourceNotFound
	if !errors.Is(err, pipelinestop.ErrNotFound) || !errors.As(err, &nf) {
		t.Fatalf("err = %v, want ErrNotFound and *types.ResourceNotFound", err)
	}
	if !strings.Contains(err.Error(), testARN) {
		t.Errorf("message %q does not name the execution", err)
	}
}

func TestStopPermanentValidationError(t *testing.T) {
	f := newFixture(t)
	f.expectStops(apiErr("StopPipelineExecution", 400, "ValidationException", "1 validation error detected: ClientRequestToken"))
	_, err := f.s.Stop(context.Background(), testARN)
	var e *pipelinestop.Error
	if !errors.As(err, &e) || e.Code != "ValidationException" || e.Kind != nil || e.Attempts != 1 {
		t.Fatalf("err = %#v", err)
	}
}

func TestStopNotRunning(t *testing.T) {
	tests := []struct {
		status           types.PipelineExecutionStatus
		failIfNotRunning bool
		alreadyStopping  bool
		wantErr          bool
	}{
		{types.PipelineExecutionStatusStopping, true, true, false},
		{types.PipelineExecutionStatusStopped, true, true, false},
		{types.PipelineExecutionStatusSucceeded, false, false, false},
		{types.PipelineExecutionStatusFailed, false, false, false},
		{types.PipelineExecutionStatusCompletedWithFailures, false, false, false},
		{"SomeFutureStatus", false, false, false},
		{types.PipelineExecutionStatusSucceeded, true, false, true},
		{types.PipelineExecutionStatusFailed, true, false, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/fail=%v", tt.status, tt.failIfNotRunning), func(t *testing.T) {
			f := newFixture(t, func(o *pipelinestop.Options) { o.FailIfNotRunning = tt.failIfNotRunning })
			f.expectStops(notRunningErr())
			f.expectStatuses(tt.status)
			res, err := f.s.Stop(context.Background(), testARN)
			if res == nil || res.Status != tt.status || res.Accepted {
				t.Fatalf("result = %+v", res)
			}
			if res.AlreadyStopping() != tt.alreadyStopping || res.NotRunning() == tt.alreadyStopping {
				t.Errorf("AlreadyStopping=%v NotRunning=%v", res.AlreadyStopping(), res.NotRunning())
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && (!errors.Is(err, pipelinestop.ErrNotRunning) || !strings.Contains(err.Error(), string(tt.status))) {
				t.Errorf("err = %v, want ErrNotRunning naming the status", err)
			}
		})
	}
}

func TestStopNotRunningButExecutingRetries(t *testing.T) {
	f := newFixture(t)
	f.expectStops(notRunningErr(), nil)
	f.expectStatuses(types.PipelineExecutionStatusExecuting)
	res, err := f.s.Stop(context.Background(), testARN)
	if err != nil || !res.Accepted || res.Attempts != 2 {
		t.Fatalf("res = %+v, err = %v", res, err)
	}
}

func TestStopLookupFailsTransiently(t *testing.T) {
	f := newFixture(t)
	f.expectStops(notRunningErr(), notRunningErr())
	gomock.InOrder(
		f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
			Return(nil, apiErr("DescribePipelineExecution", 400, "ThrottlingException", "")),
		f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
			Return(&sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: types.PipelineExecutionStatusStopped}, nil),
	)
	res, err := f.s.Stop(context.Background(), testARN)
	if err != nil || !res.AlreadyStopping() {
		t.Fatalf("res = %+v, err = %v", res, err)
	}
}

func TestStopRejectsBadInputBeforeCalling(t *testing.T) {
	f := newFixture(t) // the mock fails the test on any call
	_, err := f.s.Stop(context.Background(), "arn:aws:sagemaker:us-east-1:123:pipeline/p/execution/e")
	if !errors.Is(err, pipelinestop.ErrInvalidARN) || !strings.Contains(err.Error(), "account ID") {
		t.Errorf("err = %v, want ErrInvalidARN naming the account ID", err)
	}
	_, err = f.s.Stop(context.Background(), testARN, func(o *pipelinestop.Options) { o.Token = "too-short" })
	if !errors.Is(err, pipelinestop.ErrInvalidToken) {
		t.Errorf("err = %v, want ErrInvalidToken", err)
	}
	_, err = pipelinestop.New(nil).Stop(context.Background(), testARN)
	if err == nil {
		t.Error("a Stopper without a client must fail, not panic")
	}
}

// TestStopCanceledDuringBackoff: the context ends while Stop waits to
// retry; Stop returns at once with both the context's and the last error.
func TestStopCanceledDuringBackoff(t *testing.T) {
	clock := fakeclock.NewManual(epoch)
	m := mocks.NewMockStopAPIClient(gomock.NewController(t))
	m.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		Return(nil, conflictErr("StopPipelineExecution")).Times(1)
	s := pipelinestop.New(m, func(o *pipelinestop.Options) { o.Clock = clock })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Stop(ctx, testARN)
		done <- err
	}()
	if !clock.WaitForWaiter(5 * time.Second) {
		t.Fatal("Stop never started its backoff")
	}
	cancel() // the manual clock never fires: only cancellation ends the wait
	select {
	case err := <-done:
		var ce *types.ConflictException
		if !errors.Is(err, context.Canceled) || !errors.Is(err, pipelinestop.ErrConflict) || !errors.As(err, &ce) {
			t.Fatalf("err = %v, want context.Canceled, ErrConflict and the ConflictException", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return after cancellation")
	}
}

// TestStopDoesNotSleepPastDeadline: when the next attempt would come after
// the deadline, Stop returns at once instead of sleeping until it.
func TestStopDoesNotSleepPastDeadline(t *testing.T) {
	f := newFixture(t)
	f.mock.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		Return(nil, conflictErr("StopPipelineExecution")).MinTimes(1).MaxTimes(30)
	ctx, cancel := context.WithDeadline(context.Background(), epoch.Add(2*time.Second))
	defer cancel()
	_, err := f.s.Stop(ctx, testARN)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, pipelinestop.ErrConflict) {
		t.Fatalf("err = %v", err)
	}
	if elapsed := f.clock.Now().Sub(epoch); elapsed > 2*time.Second {
		t.Errorf("slept %v, past the deadline", elapsed)
	}
}

func TestStopPassesClientOptions(t *testing.T) {
	m := mocks.NewMockStopAPIClient(gomock.NewController(t))
	var got int
	m.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(_ context.Context, _ *sagemaker.StopPipelineExecutionInput, fns ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
			var o sagemaker.Options
			for _, fn := range fns {
				fn(&o)
			}
			got = len(fns)
			if o.Region != "eu-west-1" {
				t.Errorf("region = %q", o.Region)
			}
			return &sagemaker.StopPipelineExecutionOutput{}, nil
		})
	s := pipelinestop.New(m)
	_, err := s.Stop(context.Background(), testARN, func(o *pipelinestop.Options) {
		o.ClientOptions = append(o.ClientOptions, func(so *sagemaker.Options) { so.Region = "eu-west-1" })
	})
	if err != nil || got != 1 {
		t.Fatalf("err %v, %d option funcs", err, got)
	}
}

// TestPerCallOptionsDoNotLeak: a per-call option changes that call only.
func TestPerCallOptionsDoNotLeak(t *testing.T) {
	f := newFixture(t)
	tokens := f.expectStops(nil, nil)
	custom := "per-call-token-000000000000000000000"
	if _, err := f.s.Stop(context.Background(), testARN, func(o *pipelinestop.Options) { o.Token = custom }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Stop(context.Background(), testARN); err != nil {
		t.Fatal(err)
	}
	if (*tokens)[0] != custom || (*tokens)[1] != pipelinestop.DeriveToken("StopPipelineExecution", testARN) {
		t.Errorf("tokens = %q", *tokens)
	}
}

func TestWaitOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		statuses []types.PipelineExecutionStatus
		reason   string
	}{
		{"stopped", []types.PipelineExecutionStatus{"Executing", "Stopping", "Stopping", "Stopped"}, ""},
		{"failed", []types.PipelineExecutionStatus{"Stopping", "Failed"}, "Lambda step Notify timed out"},
		{"succeeded", []types.PipelineExecutionStatus{"Executing", "Succeeded"}, ""},
		{"completed with failures", []types.PipelineExecutionStatus{"CompletedWithFailures"}, ""},
		{"unknown status is terminal", []types.PipelineExecutionStatus{"Executing", "Archived"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.expectStatuses(tt.statuses...)
			f.mock.EXPECT().ListPipelineExecutionSteps(gomock.Any(), gomock.Any(), gomock.Any()).
				Return(&sagemaker.ListPipelineExecutionStepsOutput{}, nil).AnyTimes()
			out, err := f.s.Wait(context.Background(), testARN)
			if err != nil {
				t.Fatal(err)
			}
			last := tt.statuses[len(tt.statuses)-1]
			if out.Status != last || out.Polls != len(tt.statuses) || out.FailureReason != tt.reason {
				t.Errorf("outcome = %+v", out)
			}
			var seen []types.PipelineExecutionStatus
			for _, ev := range f.eventsOf(pipelinestop.EventStatus) {
				seen = append(seen, ev.Status)
			}
			if want := slices.Compact(slices.Clone(tt.statuses)); !slices.Equal(seen, want) {
				t.Errorf("status events %v, want %v", seen, want)
			}
		})
	}
}

func TestWaitDelaysGrowToMax(t *testing.T) {
	f2 := newFixture(t, func(o *pipelinestop.Options) { o.MinDelay, o.MaxDelay = time.Second, 4*time.Second })
	f2.expectStatuses(append(slices.Repeat([]types.PipelineExecutionStatus{"Executing"}, 14), "Succeeded")...)
	out, err := f2.s.Wait(context.Background(), testARN)
	if err != nil || out.Polls != 15 {
		t.Fatalf("out %+v, err %v", out, err)
	}
	waits := f2.clock.Waits()
	if waits[0] != time.Second || waits[len(waits)-1] != 4*time.Second {
		t.Errorf("delays %v: want 1s growing to 4s", waits)
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] || waits[i] > 4*time.Second {
			t.Errorf("delays %v are not growing within the cap", waits)
		}
	}
}

// stepsPages answers ListPipelineExecutionSteps with two pages: a callback
// step on the first, a Lambda step and a finished step on the second.
func stepsPages(f *fixture) *atomic.Int32 {
	var calls atomic.Int32
	f.mock.EXPECT().ListPipelineExecutionSteps(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(_ context.Context, in *sagemaker.ListPipelineExecutionStepsInput, _ ...func(*sagemaker.Options)) (*sagemaker.ListPipelineExecutionStepsOutput, error) {
			calls.Add(1)
			if in.NextToken == nil {
				return &sagemaker.ListPipelineExecutionStepsOutput{NextToken: aws.String("page2"),
					PipelineExecutionSteps: []types.PipelineExecutionStep{{
						StepName: aws.String("Approve"), StepStatus: types.StepStatusExecuting,
						Metadata: &types.PipelineExecutionStepMetadata{Callback: &types.CallbackStepMetadata{
							CallbackToken: aws.String("SeCrEt7890"), SqsQueueUrl: aws.String("https://sqs.example/123456789012/approvals")}},
					}}}, nil
			}
			return &sagemaker.ListPipelineExecutionStepsOutput{PipelineExecutionSteps: []types.PipelineExecutionStep{
				{StepName: aws.String("Notify"), StepStatus: types.StepStatusExecuting,
					Metadata: &types.PipelineExecutionStepMetadata{Lambda: &types.LambdaStepMetadata{Arn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:notify")}}},
				{StepName: aws.String("Prepare"), StepStatus: types.StepStatusSucceeded},
			}}, nil
		}).AnyTimes()
	return &calls
}

func TestWaitReportsBlockingSteps(t *testing.T) {
	f := newFixture(t)
	f.expectStatuses(append(slices.Repeat([]types.PipelineExecutionStatus{"Stopping"}, 30), "Stopped")...)
	lists := stepsPages(f)
	out, err := f.s.Wait(context.Background(), testARN)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Blocking) != 2 {
		t.Fatalf("blocking = %+v", out.Blocking)
	}
	cb, lm := out.Blocking[0], out.Blocking[1]
	if cb.Type != "Callback" || cb.Name != "Approve" || cb.QueueURL == "" || string(cb.CallbackToken) != "SeCrEt7890" {
		t.Errorf("callback step = %+v", cb)
	}
	if lm.Type != "Lambda" || lm.FunctionARN == "" {
		t.Errorf("lambda step = %+v", lm)
	}
	// Two pages per listing, at a lower rate than the 31 polls.
	if n := int(lists.Load()); n%2 != 0 || n/2 >= out.Polls/2 {
		t.Errorf("%d list calls for %d polls", n, out.Polls)
	}
	if evs := f.eventsOf(pipelinestop.EventBlocked); len(evs) != 1 {
		t.Errorf("%d blocked events, want 1 (the steps did not change)", len(evs))
	}
}

func TestWaitTimeoutSaysWhatBlocks(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var polls atomic.Int32
	f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(context.Context, *sagemaker.DescribePipelineExecutionInput, ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
			if polls.Add(1) == 5 {
				cancel()
			}
			return &sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: types.PipelineExecutionStatusStopping}, nil
		}).Times(5)
	stepsPages(f)
	out, err := f.s.Wait(ctx, testARN)
	if !errors.Is(err, pipelinestop.ErrWaitTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrWaitTimeout and context.Canceled", err)
	}
	var we *pipelinestop.WaitError
	if !errors.As(err, &we) || we.Status != types.PipelineExecutionStatusStopping || len(we.Blocking) != 2 || we.Polls != 5 {
		t.Fatalf("wait error = %+v", we)
	}
	msg := err.Error()
	for _, want := range []string{testARN, "Stopping", `callback step "Approve"`, "approvals", "SendPipelineExecutionStepSuccess", `Lambda step "Notify"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "SeCrEt7890") || strings.Contains(fmt.Sprintf("%v %+v %#v", we.Blocking, we.Blocking, we.Blocking), "SeCrEt7890") {
		t.Error("the callback token leaked into a message")
	}
	if out == nil || out.Status != types.PipelineExecutionStatusStopping {
		t.Errorf("outcome = %+v", out)
	}
}

func TestWaitErrors(t *testing.T) {
	t.Run("not found", func(t *testing.T) {
		f := newFixture(t)
		f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
			Return(nil, notFoundErr("DescribePipelineExecution"))
		_, err := f.s.Wait(context.Background(), testARN)
		if !errors.Is(err, pipelinestop.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("transient errors are waited out", func(t *testing.T) {
		f := newFixture(t)
		gomock.InOrder(
			f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
				Return(nil, apiErr("DescribePipelineExecution", 400, "ThrottlingException", "")).Times(2),
			f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
				Return(nil, apiErr("DescribePipelineExecution", 503, "ServiceUnavailable", "")),
			f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
				Return(&sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: "Stopped"}, nil),
		)
		out, err := f.s.Wait(context.Background(), testARN)
		if err != nil || out.Status != "Stopped" || out.Polls != 4 {
			t.Fatalf("out %+v, err %v", out, err)
		}
	})
	t.Run("invalid ARN", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.s.Wait(context.Background(), "nope"); !errors.Is(err, pipelinestop.ErrInvalidARN) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestStopAndWait(t *testing.T) {
	f := newFixture(t)
	f.expectStops(conflictErr("StopPipelineExecution"), nil)
	f.expectStatuses("Stopping", "Stopped")
	stepsPages(f)
	out, err := f.s.StopAndWait(context.Background(), testARN)
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != "Stopped" || out.Stop == nil || out.Stop.Attempts != 2 || len(out.Blocking) != 2 {
		t.Errorf("outcome = %+v", out)
	}
	if out.Elapsed < out.Stop.Elapsed {
		t.Errorf("elapsed %v does not include the stop's %v", out.Elapsed, out.Stop.Elapsed)
	}
}

func TestStopAndWaitLambdaTimeoutIsAnOutcome(t *testing.T) {
	f := newFixture(t)
	f.expectStops(nil)
	f.expectStatuses("Stopping", "Failed")
	stepsPages(f)
	out, err := f.s.StopAndWait(context.Background(), testARN)
	if err != nil || out.Status != "Failed" || !strings.Contains(out.FailureReason, "timed out") {
		t.Fatalf("out %+v, err %v", out, err)
	}
}

func arnN(i int) string {
	return fmt.Sprintf("arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/e%03d", i)
}

func TestStopAll(t *testing.T) {
	f := newFixture(t, func(o *pipelinestop.Options) { o.Concurrency = 3 })
	var inFlight, maxInFlight atomic.Int32
	var mu sync.Mutex
	calls := map[string]int{}
	f.mock.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(_ context.Context, in *sagemaker.StopPipelineExecutionInput, _ ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				m := maxInFlight.Load()
				if n <= m || maxInFlight.CompareAndSwap(m, n) {
					break
				}
			}
			mu.Lock()
			calls[*in.PipelineExecutionArn]++
			c := calls[*in.PipelineExecutionArn]
			mu.Unlock()
			switch *in.PipelineExecutionArn {
			case arnN(3):
				return nil, notFoundErr("StopPipelineExecution")
			case arnN(5):
				if c == 1 {
					return nil, apiErr("StopPipelineExecution", 400, "ThrottlingException", "")
				}
			}
			return &sagemaker.StopPipelineExecutionOutput{}, nil
		}).AnyTimes()
	arns := []string{arnN(1), arnN(2), arnN(3), "not-an-arn", arnN(5), arnN(1)}
	for i := 6; i < 20; i++ {
		arns = append(arns, arnN(i))
	}
	results, err := f.s.StopAll(context.Background(), arns)
	if len(results) != len(arns) {
		t.Fatalf("%d results for %d ARNs", len(results), len(arns))
	}
	if !errors.Is(err, pipelinestop.ErrNotFound) || !errors.Is(err, pipelinestop.ErrInvalidARN) {
		t.Fatalf("joined error %v lacks ErrNotFound or ErrInvalidARN", err)
	}
	for i, r := range results {
		if r.ExecutionARN != arns[i] {
			t.Errorf("result %d is for %s, want %s", i, r.ExecutionARN, arns[i])
		}
		wantErr := arns[i] == arnN(3) || arns[i] == "not-an-arn"
		if (r.Err != nil) != wantErr {
			t.Errorf("%s: err = %v", arns[i], r.Err)
		}
		if !wantErr && (r.Stop == nil || !r.Stop.Accepted) {
			t.Errorf("%s: stop = %+v", arns[i], r.Stop)
		}
	}
	if calls[arnN(1)] != 1 || calls[arnN(5)] != 2 {
		t.Errorf("calls = %v: a repeated ARN is stopped once, a throttled one retried", calls)
	}
	if m := maxInFlight.Load(); m > 3 {
		t.Errorf("%d calls in flight, Concurrency is 3", m)
	}
}

func TestStopAllWaits(t *testing.T) {
	f := newFixture(t, func(o *pipelinestop.Options) { o.Wait = true; o.Token = "shutdown-2026-11-25-replica-a-0000" })
	tokens := map[string]string{}
	var mu sync.Mutex
	f.mock.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(_ context.Context, in *sagemaker.StopPipelineExecutionInput, _ ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			tokens[*in.PipelineExecutionArn] = *in.ClientRequestToken
			return &sagemaker.StopPipelineExecutionOutput{}, nil
		}).Times(4)
	polls := map[string]int{}
	f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(_ context.Context, in *sagemaker.DescribePipelineExecutionInput, _ ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			polls[*in.PipelineExecutionArn]++
			if polls[*in.PipelineExecutionArn] < 3 {
				return &sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: "Executing"}, nil
			}
			return &sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: "Stopped"}, nil
		}).Times(12)
	arns := []string{arnN(1), arnN(2), arnN(3), arnN(4)}
	results, err := f.s.StopAll(context.Background(), arns)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for _, r := range results {
		if r.Outcome == nil || r.Outcome.Status != "Stopped" || r.Stop == nil {
			t.Errorf("%s: %+v", r.ExecutionARN, r)
		}
		distinct[tokens[r.ExecutionARN]] = true
	}
	if len(distinct) != 4 {
		t.Errorf("a caller's Token must give each execution its own token: %v", tokens)
	}
}
