package pipelinestop_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"go.uber.org/mock/gomock"

	"github.com/pipelinestop/pipelinestop"
)

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
	f.expectStatuses("Stopping", "Stopping", "Stopped") // the stop's lookup, then the wait's polls
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

// TestWaitDefaultScheduleFollowsTheTimeWaited checks Wait's default poll
// schedule on stops of 0.3 s to 20 min (Stopping until the stop's
// duration d has passed on the fake clock, then Stopped): the second poll
// comes after DefaultFirstDelay, and each later one when the time waited
// has grown by a fifth, so the Stopped status is seen at most a fifth of d
// (or MinDelay) late, never more than MaxDelay, with at most a quarter of
// the calls of polling every second from 2 minutes on. The schedule it
// replaces (delays of 0.5 s growing x1.2) saw a 2 s stop 0.68 s late.
func TestWaitDefaultScheduleFollowsTheTimeWaited(t *testing.T) {
	for _, d := range []time.Duration{300 * time.Millisecond, 900 * time.Millisecond, time.Second, 1100 * time.Millisecond,
		1900 * time.Millisecond, 2 * time.Second, 2100 * time.Millisecond, 5 * time.Second, 9*time.Second + 7*time.Millisecond,
		30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 20 * time.Minute} {
		t.Run(d.String(), func(t *testing.T) {
			f := newFixture(t)
			var seen time.Time
			f.mock.EXPECT().DescribePipelineExecution(gomock.Any(), gomock.Any(), gomock.Any()).
				DoAndReturn(func(context.Context, *sagemaker.DescribePipelineExecutionInput, ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
					st := types.PipelineExecutionStatusStopping
					if now := f.clock.Now(); now.Sub(epoch) >= d {
						st = types.PipelineExecutionStatusStopped
						if seen.IsZero() {
							seen = now
						}
					}
					return &sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: st}, nil
				}).MinTimes(1).MaxTimes(200)
			f.mock.EXPECT().ListPipelineExecutionSteps(gomock.Any(), gomock.Any(), gomock.Any()).
				Return(&sagemaker.ListPipelineExecutionStepsOutput{}, nil).AnyTimes()
			out, err := f.s.Wait(context.Background(), testARN)
			if err != nil || out.Status != types.PipelineExecutionStatusStopped {
				t.Fatalf("out %+v, err %v", out, err)
			}
			waits := f.clock.Waits()
			if len(waits) == 0 || waits[0] != pipelinestop.DefaultFirstDelay {
				t.Fatalf("delays %v: want %v first", waits, pipelinestop.DefaultFirstDelay)
			}
			var elapsed time.Duration
			for i, w := range waits {
				if i > 0 && (w < pipelinestop.DefaultMinDelay || w > max(elapsed/5, pipelinestop.DefaultMinDelay)) {
					t.Fatalf("delay %d is %v after %v waited: want a fifth of it, at least %v (delays %v)",
						i, w, elapsed, pipelinestop.DefaultMinDelay, waits)
				}
				if w > pipelinestop.DefaultMaxDelay {
					t.Fatalf("delay %v over the cap", w)
				}
				elapsed += w
			}
			lag := seen.Sub(epoch) - d
			bound := min(max(d/5, pipelinestop.DefaultMinDelay), pipelinestop.DefaultMaxDelay)
			if d < pipelinestop.DefaultFirstDelay {
				bound = pipelinestop.DefaultFirstDelay - d
			}
			if lag < 0 || lag > bound {
				t.Errorf("a %v stop seen %v late, want at most %v", d, lag, bound)
			}
			if fast := int(d/time.Second) + 2; d >= 2*time.Minute && out.Polls > fast/4 {
				t.Errorf("%d polls for a %v stop, more than a quarter of 1 s polling's %d", out.Polls, d, fast)
			}
		})
	}
}

// TestWaitFirstDelayDefaultsToMinDelay: a caller that set MinDelay alone
// (once the first delay) keeps it as the first delay; FirstDelay, when
// set, wins, but never goes below MinDelay.
func TestWaitFirstDelayDefaultsToMinDelay(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  func(*pipelinestop.Options)
		want time.Duration
	}{
		{"MinDelay alone", func(o *pipelinestop.Options) { o.MinDelay = 50 * time.Millisecond }, 50 * time.Millisecond},
		{"FirstDelay", func(o *pipelinestop.Options) { o.FirstDelay = 3 * time.Second }, 3 * time.Second},
		{"FirstDelay below MinDelay", func(o *pipelinestop.Options) { o.FirstDelay, o.MinDelay = time.Second, 2*time.Second }, 2 * time.Second},
		{"FirstDelay over MaxDelay", func(o *pipelinestop.Options) { o.FirstDelay, o.MaxDelay = time.Minute, 5*time.Second }, 5 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opt)
			f.expectStatuses("Executing", "Succeeded")
			if _, err := f.s.Wait(context.Background(), testARN); err != nil {
				t.Fatal(err)
			}
			if waits := f.clock.Waits(); len(waits) != 1 || waits[0] != tt.want {
				t.Errorf("delays %v, want [%v]", waits, tt.want)
			}
		})
	}
}
