package pipelinestop_test

import (
	"context"
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

// TestPerCallOptionsDoNotLeak: a per-call option changes that call only.
func TestPerCallOptionsDoNotLeak(t *testing.T) {
	f := newFixture(t)
	tokens := f.expectStops(nil, nil)
	f.expectStatuses(types.PipelineExecutionStatusStopping)
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
