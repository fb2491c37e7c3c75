package pipelinestop_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

func TestStopAcceptedFirstTime(t *testing.T) {
	f := newFixture(t)
	tokens := f.expectStops(nil)
	lookups := f.expectStatuses(types.PipelineExecutionStatusStopping)
	res, err := f.s.Stop(context.Background(), testARN)
	if err != nil {
		t.Fatal(err)
	}
	if lookups.Load() != 1 {
		t.Errorf("%d status lookups, want 1 after the accepted stop", lookups.Load())
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
			f.expectStatuses(types.PipelineExecutionStatusStopping)
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
				}).MinTimes(6).MaxTimes(200)
			f.expectStatuses(types.PipelineExecutionStatusStopping)
			res, err := f.s.Stop(context.Background(), testARN)
			if err != nil {
				t.Fatal(err)
			}
			if calls <= 5 || res.Attempts != calls {
				t.Errorf("attempts = %d (calls %d), want more than Airflow's 5", res.Attempts, calls)
			}
			// The stop lands within one conflict interval of the race's
			// end (it overshot by up to a fifth of the time waited, plus
			// jitter, with the backoff of other errors), making no more
			// calls than a loop that calls every interval.
			if late := res.Elapsed - race; late < 0 || late > pipelinestop.DefaultConflictInterval {
				t.Errorf("stop landed %v after a %v race, want within %v", late, race, pipelinestop.DefaultConflictInterval)
			}
			if most := int((race+pipelinestop.DefaultConflictInterval-1)/pipelinestop.DefaultConflictInterval) + 1; calls > most {
				t.Errorf("%d calls during a %v race, more than a call every %v (%d)", calls, race, pipelinestop.DefaultConflictInterval, most)
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
	f.expectStatuses(types.PipelineExecutionStatusExecuting, types.PipelineExecutionStatusStopping)
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
	m.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		Return(&sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: types.PipelineExecutionStatusStopping}, nil)
	s := pipelinestop.New(m)
	_, err := s.Stop(context.Background(), testARN, func(o *pipelinestop.Options) {
		o.ClientOptions = append(o.ClientOptions, func(so *sagemaker.Options) { so.Region = "eu-west-1" })
	})
	// The routing option (to the ARN's us-east-1: a mock does not tell
	// its Region) comes first, the caller's after it, and wins.
	if err != nil || got != 2 {
		t.Fatalf("err %v, %d option funcs; want the routing one and the caller's", err, got)
	}
}

// describeAt answers DescribePipelineExecution with status and
// LastModifiedTime at, counting the calls.
func (f *fixture) describeAt(status types.PipelineExecutionStatus, at time.Time) *atomic.Int32 {
	var calls atomic.Int32
	f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(_ context.Context, in *sagemaker.DescribePipelineExecutionInput, _ ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
			calls.Add(1)
			return &sagemaker.DescribePipelineExecutionOutput{PipelineExecutionArn: in.PipelineExecutionArn,
				PipelineExecutionStatus: status, LastModifiedTime: aws.Time(at)}, nil
		}).AnyTimes()
	return &calls
}

// TestStopRestopsAReplayedRound: an accepted stop after which the
// execution still reads Executing was a replay of an earlier round's
// request. Stop sends exactly one more stop, with the token of the round
// (derived from LastModifiedTime), and reports what it then saw, also when
// the execution still reads Executing.
func TestStopRestopsAReplayedRound(t *testing.T) {
	round := time.Date(2026, 12, 1, 21, 30, 5, 123000000, time.FixedZone("CET", 3600))
	roundText := "2026-12-01T20:30:05.123Z"
	for _, tc := range []struct {
		name, token, want string
	}{
		{"derived", "", pipelinestop.DeriveToken("StopPipelineExecution", testARN, roundText)},
		{"caller's", "caller-chosen-token-0123456789abcdef", pipelinestop.DeriveToken("caller-chosen-token-0123456789abcdef", roundText)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *pipelinestop.Options) { o.Token = tc.token })
			tokens := f.expectStops(nil, nil)
			lookups := f.describeAt(types.PipelineExecutionStatusExecuting, round)
			res, err := f.s.Stop(context.Background(), testARN)
			if err != nil {
				t.Fatal(err)
			}
			if len(*tokens) != 2 || (*tokens)[1] != tc.want || (*tokens)[0] == (*tokens)[1] {
				t.Fatalf("tokens sent %q; want the first, then %q", *tokens, tc.want)
			}
			if !res.Accepted || !res.Restopped || res.Token != tc.want || res.Attempts != 2 || lookups.Load() != 2 ||
				res.Status != types.PipelineExecutionStatusExecuting {
				t.Fatalf("result %+v after %d lookups; want one re-stop, reporting the Executing it saw", res, lookups.Load())
			}
			if ev := f.eventsOf(pipelinestop.EventAttempt); len(ev) != 2 || ev[1].Attempt != 2 {
				t.Fatalf("attempt events %+v", ev)
			}
		})
	}
}

// TestStopLookupFailureDoesNotFailTheStop: the stop was accepted; the
// lookup after it failed: Status is "" and LookupErr says why.
func TestStopLookupFailureDoesNotFailTheStop(t *testing.T) {
	f := newFixture(t)
	f.expectStops(nil)
	f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		Return(nil, apiErr("DescribePipelineExecution", 400, "AccessDeniedException", "no describe for you"))
	res, err := f.s.Stop(context.Background(), testARN)
	if err != nil {
		t.Fatalf("err %v; the stop was accepted", err)
	}
	if !res.Accepted || res.Status != "" || res.Restopped || res.LookupErr == nil || !strings.Contains(res.LookupErr.Error(), "AccessDenied") {
		t.Fatalf("result %+v", res)
	}
	if ev := f.eventsOf(pipelinestop.EventStopped); len(ev) != 1 || ev[0].Err == nil {
		t.Fatalf("stopped events %+v; want the lookup's error on it", ev)
	}
}

// TestNotRunningNeedsATerminalStatus: NotRunning is true only for a
// terminal status that was seen, never for an execution that does not
// exist (no status at all).
func TestNotRunningNeedsATerminalStatus(t *testing.T) {
	for _, tc := range []struct {
		res  pipelinestop.StopResult
		want bool
	}{
		{pipelinestop.StopResult{}, false},
		{pipelinestop.StopResult{Status: types.PipelineExecutionStatusExecuting}, false},
		{pipelinestop.StopResult{Status: types.PipelineExecutionStatusStopping}, false},
		{pipelinestop.StopResult{Status: types.PipelineExecutionStatusStopped}, false},
		{pipelinestop.StopResult{Status: types.PipelineExecutionStatusSucceeded}, true},
		{pipelinestop.StopResult{Status: "SomethingNew"}, true},
		{pipelinestop.StopResult{Accepted: true, Status: types.PipelineExecutionStatusFailed}, false},
	} {
		if got := tc.res.NotRunning(); got != tc.want {
			t.Errorf("%+v: NotRunning() = %v, want %v", tc.res, got, tc.want)
		}
	}
	f := newFixture(t)
	f.expectStops(notFoundErr("StopPipelineExecution"))
	res, err := f.s.Stop(context.Background(), testARN)
	if !errors.Is(err, pipelinestop.ErrNotFound) || res == nil || res.NotRunning() || res.AlreadyStopping() {
		t.Fatalf("unknown execution: %+v, %v; want ErrNotFound and neither NotRunning nor AlreadyStopping", res, err)
	}
}

// TestStopConflictInterval checks the spacing of conflict retries: the
// default, an Options.ConflictInterval of the caller's, and RetryMaxDelay
// capping it.
func TestStopConflictInterval(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  func(*pipelinestop.Options)
		want time.Duration
	}{
		{"default", func(*pipelinestop.Options) {}, pipelinestop.DefaultConflictInterval},
		{"set", func(o *pipelinestop.Options) { o.ConflictInterval = 50 * time.Millisecond }, 50 * time.Millisecond},
		{"capped by RetryMaxDelay", func(o *pipelinestop.Options) {
			o.ConflictInterval, o.RetryMaxDelay = time.Second, 150*time.Millisecond
		}, 150 * time.Millisecond},
		{"default capped by RetryMaxDelay", func(o *pipelinestop.Options) {
			o.RetryMinDelay, o.RetryMaxDelay = 10*time.Millisecond, 100*time.Millisecond
		}, 100 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opt)
			f.mock.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
				Return(nil, conflictErr("StopPipelineExecution")).Times(4)
			f.mock.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
				Return(&sagemaker.StopPipelineExecutionOutput{}, nil)
			f.expectStatuses(types.PipelineExecutionStatusStopping)
			if _, err := f.s.Stop(context.Background(), testARN); err != nil {
				t.Fatal(err)
			}
			waits := f.clock.Waits()
			if len(waits) != 4 {
				t.Fatalf("delays %v, want 4", waits)
			}
			for _, w := range waits {
				if w != tt.want {
					t.Fatalf("delays %v, want %v each", waits, tt.want)
				}
			}
		})
	}
}
