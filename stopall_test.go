package pipelinestop_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"go.uber.org/mock/gomock"

	"github.com/pipelinestop/pipelinestop"
)

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
	f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		Return(&sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: types.PipelineExecutionStatusStopping}, nil).AnyTimes()
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
			if polls[*in.PipelineExecutionArn] < 2 {
				// The stop's lookup.
				return &sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: "Stopping"}, nil
			}
			return &sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: "Stopped"}, nil
		}).Times(8)
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

// TestStopAllWaitingHoldsNoSlot: with one slot, an execution that waits
// (Stopping, polled again and again) does not keep the next one from
// being stopped, and no two calls are ever in flight at once. Each
// execution stays Stopping until both stops were made: were a waiting
// execution to hold the slot, the first one would be polled until the
// test's fallback (5 s of real time) ended it. The fallback is a bound, not
// a timing: a correct StopAll makes the second stop as soon as its
// goroutine runs, however many polls that takes.
func TestStopAllWaitingHoldsNoSlot(t *testing.T) {
	f := newFixture(t, func(o *pipelinestop.Options) { o.Concurrency = 1; o.Wait = true })
	var inFlight, maxInFlight, stops, polls atomic.Int32
	enter := func() func() {
		n := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		return func() { inFlight.Add(-1) }
	}
	f.mock.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(context.Context, *sagemaker.StopPipelineExecutionInput, ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
			defer enter()()
			stops.Add(1)
			return &sagemaker.StopPipelineExecutionOutput{}, nil
		}).Times(2)
	fallback := time.Now().Add(5 * time.Second)
	var fellBack atomic.Bool
	f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(context.Context, *sagemaker.DescribePipelineExecutionInput, ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
			defer enter()()
			polls.Add(1)
			st := types.PipelineExecutionStatusStopping
			switch {
			case stops.Load() == 2:
				st = types.PipelineExecutionStatusStopped
			case time.Now().After(fallback):
				fellBack.Store(true)
				st = types.PipelineExecutionStatusStopped
			}
			return &sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: st}, nil
		}).AnyTimes()
	f.mock.EXPECT().ListPipelineExecutionSteps(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(context.Context, *sagemaker.ListPipelineExecutionStepsInput, ...func(*sagemaker.Options)) (*sagemaker.ListPipelineExecutionStepsOutput, error) {
			defer enter()()
			return &sagemaker.ListPipelineExecutionStepsOutput{}, nil
		}).AnyTimes()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	results, err := f.s.StopAll(ctx, []string{arnN(1), arnN(2)})
	if err != nil {
		t.Fatal(err)
	}
	if fellBack.Load() {
		t.Fatalf("an execution was polled for 5 s (%d polls) and the other was not stopped: a waiting execution held the only slot", polls.Load())
	}
	for _, r := range results {
		if r.Outcome == nil || r.Outcome.Status != types.PipelineExecutionStatusStopped {
			t.Errorf("%s: %+v", r.ExecutionARN, r)
		}
	}
	if m := maxInFlight.Load(); m != 1 {
		t.Errorf("%d calls in flight, Concurrency is 1", m)
	}
}

// TestStopAllWaitOutcomeOnlyWhenTheWaitStarted: with Options.Wait, an
// execution whose stop failed gets no Outcome (nil, not one with an empty
// Status), and its Stop and Err say what happened.
func TestStopAllWaitOutcomeOnlyWhenTheWaitStarted(t *testing.T) {
	f := newFixture(t, func(o *pipelinestop.Options) { o.Wait = true })
	f.mock.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(_ context.Context, in *sagemaker.StopPipelineExecutionInput, _ ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
			if *in.PipelineExecutionArn == arnN(2) {
				return nil, notFoundErr("StopPipelineExecution")
			}
			return &sagemaker.StopPipelineExecutionOutput{}, nil
		}).Times(2)
	f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
		Return(&sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: "Stopped"}, nil).Times(2)
	results, err := f.s.StopAll(context.Background(), []string{arnN(1), arnN(2), "not-an-arn"})
	if !errors.Is(err, pipelinestop.ErrNotFound) {
		t.Fatalf("err %v", err)
	}
	if r := results[0]; r.Err != nil || r.Outcome == nil || r.Outcome.Status != "Stopped" || r.Stop == nil || r.Outcome.Stop != r.Stop {
		t.Errorf("stopped execution: %+v", r)
	}
	if r := results[1]; r.Outcome != nil || r.Stop == nil || r.Stop.Attempts != 1 || !errors.Is(r.Err, pipelinestop.ErrNotFound) || r.Stop.NotRunning() {
		t.Errorf("execution whose stop failed: %+v; want no Outcome, the stop's result and its error", r)
	}
	if r := results[2]; r.Outcome != nil || r.Stop != nil || !errors.Is(r.Err, pipelinestop.ErrInvalidARN) {
		t.Errorf("invalid ARN: %+v", r)
	}
}

// TestStopAllRejectsAnInvalidToken: the rule of Stop holds for StopAll: a
// caller's Options.Token that ValidateToken rejects fails every execution
// before any call (the mock fails the test on any call).
func TestStopAllRejectsAnInvalidToken(t *testing.T) {
	for _, token := range []string{"too-short", "has a space in it, which is not allowed here", "é" + strings.Repeat("x", 40)} {
		f := newFixture(t)
		_, stopErr := f.s.Stop(context.Background(), arnN(1), func(o *pipelinestop.Options) { o.Token = token })
		if !errors.Is(stopErr, pipelinestop.ErrInvalidToken) {
			t.Fatalf("Stop with token %q: %v", token, stopErr)
		}
		results, err := f.s.StopAll(context.Background(), []string{arnN(1), arnN(2), arnN(1)},
			func(o *pipelinestop.Options) { o.Token = token; o.Wait = true })
		if !errors.Is(err, pipelinestop.ErrInvalidToken) || len(results) != 3 {
			t.Fatalf("StopAll with token %q: %d results, %v; want ErrInvalidToken", token, len(results), err)
		}
		for _, r := range results {
			if !errors.Is(r.Err, pipelinestop.ErrInvalidToken) || r.Stop != nil || r.Outcome != nil {
				t.Errorf("token %q: %+v", token, r)
			}
		}
	}
}
