package pipelinestop_test

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"go.uber.org/mock/gomock"

	"github.com/pipelinestop/pipelinestop"
)

// invalidFloats are the float option values that are not numbers: each
// must get the default, as the docs promise. A huge finite value is valid
// but must not overflow a delay either.
var invalidFloats = []struct {
	name string
	v    float64
}{{"NaN", math.NaN()}, {"+Inf", math.Inf(1)}, {"-Inf", math.Inf(-1)}, {"1e300", 1e300}}

// floatFields are the float options of Options.
var floatFields = []struct {
	name string
	set  func(*pipelinestop.Options, float64)
}{
	{"RetryMultiplier", func(o *pipelinestop.Options, v float64) { o.RetryMultiplier = v }},
	{"RetryJitter", func(o *pipelinestop.Options, v float64) { o.RetryJitter = v }},
	{"DelayMultiplier", func(o *pipelinestop.Options, v float64) { o.DelayMultiplier = v }},
}

// TestInvalidFloatOptionsKeepStopBounded: with NaN or ±Inf in any float
// option, Stop against endless conflicts still gives up when its 1 s
// RetryBudget is spent, after a handful of calls (on the fake clock). The
// mock cancels the context after 10,000 calls so the test ends either way.
func TestInvalidFloatOptionsKeepStopBounded(t *testing.T) {
	for _, field := range floatFields {
		for _, bad := range invalidFloats {
			t.Run(field.name+"="+bad.name, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				f := newFixture(t, func(o *pipelinestop.Options) { o.RetryBudget = time.Second; field.set(o, bad.v) })
				var calls atomic.Int32
				f.mock.EXPECT().StopPipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
					DoAndReturn(func(context.Context, *sagemaker.StopPipelineExecutionInput, ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
						if calls.Add(1) >= 10000 {
							cancel()
						}
						return nil, conflictErr("StopPipelineExecution")
					}).AnyTimes()
				res, err := f.s.Stop(ctx, testARN)
				var e *pipelinestop.Error
				if !errors.As(err, &e) || e.Canceled != nil || !errors.Is(err, pipelinestop.ErrConflict) {
					t.Fatalf("err %v; want ErrConflict once the budget is spent", err)
				}
				if n := calls.Load(); n > 20 || res.Attempts != int(n) {
					t.Fatalf("%d calls (result %+v) against a 1 s budget; want a handful", n, res)
				}
			})
		}
	}
}

// TestInvalidFloatOptionsKeepWaitBounded: with NaN or ±Inf in any float
// option, Wait for an execution that stays Executing polls as often as
// with the defaults: about 40 polls in 10 minutes of the fake clock, not
// millions. The mock ends the wait after 10 fake minutes, or after 10,000
// polls so that the test ends either way.
func TestInvalidFloatOptionsKeepWaitBounded(t *testing.T) {
	for _, field := range floatFields {
		for _, bad := range invalidFloats {
			t.Run(field.name+"="+bad.name, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				f := newFixture(t, func(o *pipelinestop.Options) { field.set(o, bad.v) })
				var polls atomic.Int32
				f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
					DoAndReturn(func(context.Context, *sagemaker.DescribePipelineExecutionInput, ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
						if polls.Add(1) >= 10000 || f.clock.Now().Sub(epoch) >= 10*time.Minute {
							cancel()
						}
						return &sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: types.PipelineExecutionStatusExecuting}, nil
					}).AnyTimes()
				_, err := f.s.Wait(ctx, testARN)
				if !errors.Is(err, pipelinestop.ErrWaitTimeout) {
					t.Fatalf("err %v", err)
				}
				if n := polls.Load(); n > 60 || f.clock.Now().Sub(epoch) < 10*time.Minute {
					t.Fatalf("%d polls in %v of the fake clock; want about 40 in 10 minutes", n, f.clock.Now().Sub(epoch))
				}
			})
		}
	}
}
