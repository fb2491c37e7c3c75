package pipelinestop_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
)

// nilClient answers (nil, nil) to the operations named in nilOps and
// otherwise like a SageMaker with one execution: stops are accepted,
// Describe says status, and the steps list one running callback step.
type nilClient struct {
	nilOps map[string]bool
	status types.PipelineExecutionStatus
	calls  map[string]int
}

func (c *nilClient) call(op string) bool {
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[op]++
	return c.nilOps[op]
}

func (c *nilClient) StopPipelineExecution(context.Context, *sagemaker.StopPipelineExecutionInput, ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
	if c.call("StopPipelineExecution") {
		return nil, nil
	}
	return &sagemaker.StopPipelineExecutionOutput{}, nil
}

func (c *nilClient) DescribePipelineExecution(context.Context, *sagemaker.DescribePipelineExecutionInput, ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
	if c.call("DescribePipelineExecution") {
		return nil, nil
	}
	return &sagemaker.DescribePipelineExecutionOutput{PipelineExecutionStatus: c.status}, nil
}

func (c *nilClient) ListPipelineExecutionSteps(context.Context, *sagemaker.ListPipelineExecutionStepsInput, ...func(*sagemaker.Options)) (*sagemaker.ListPipelineExecutionStepsOutput, error) {
	if c.call("ListPipelineExecutionSteps") {
		return nil, nil
	}
	return &sagemaker.ListPipelineExecutionStepsOutput{PipelineExecutionSteps: []types.PipelineExecutionStep{{
		StepName: aws.String("Approve"), StepStatus: types.StepStatusExecuting,
		Metadata: &types.PipelineExecutionStepMetadata{Callback: &types.CallbackStepMetadata{}}}}}, nil
}

func (c *nilClient) SendPipelineExecutionStepSuccess(context.Context, *sagemaker.SendPipelineExecutionStepSuccessInput, ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepSuccessOutput, error) {
	c.call("SendPipelineExecutionStepSuccess")
	return nil, nil
}

func (c *nilClient) SendPipelineExecutionStepFailure(context.Context, *sagemaker.SendPipelineExecutionStepFailureInput, ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepFailureOutput, error) {
	c.call("SendPipelineExecutionStepFailure")
	return nil, nil
}

func nilOpts(o *pipelinestop.Options) {
	o.Clock = fakeclock.NewAuto(epoch)
	o.RetryBudget = time.Second
}

// requireNoOutputError checks that err is the clear, unretried *Error of
// a (nil, nil) answer to op.
func requireNoOutputError(t *testing.T, what string, err error, op string) {
	t.Helper()
	var e *pipelinestop.Error
	if !errors.As(err, &e) || e.Op != op || e.Kind != nil || e.Attempts > 1 || pipelinestop.DefaultRetryable(err) ||
		!strings.Contains(err.Error(), "no output and no error") {
		t.Fatalf("%s: %#v (%v); want a not retried *Error of %s saying it got no output", what, err, err, op)
	}
}

// TestNilOutputs: a client that answers (nil, nil) panics nothing. Where
// an output is needed (DescribePipelineExecution for Stop's lookups and
// Wait's polls, ListPipelineExecutionSteps for the paginator) it is a clear
// *Error; where it is not (StopPipelineExecution, the answers), the call
// counts as accepted.
func TestNilOutputs(t *testing.T) {
	ctx := context.Background()
	t.Run("StopPipelineExecution", func(t *testing.T) {
		c := &nilClient{nilOps: map[string]bool{"StopPipelineExecution": true}, status: types.PipelineExecutionStatusStopping}
		res, err := pipelinestop.New(c, nilOpts).Stop(ctx, testARN)
		if err != nil || !res.Accepted || res.Status != types.PipelineExecutionStatusStopping {
			t.Fatalf("%+v, %v; want accepted, and the status looked up", res, err)
		}
	})
	t.Run("DescribePipelineExecution after an accepted stop", func(t *testing.T) {
		c := &nilClient{nilOps: map[string]bool{"DescribePipelineExecution": true}}
		res, err := pipelinestop.New(c, nilOpts).Stop(ctx, testARN)
		if err != nil || !res.Accepted || res.Status != "" {
			t.Fatalf("%+v, %v; want the accepted stop, no status", res, err)
		}
		requireNoOutputError(t, "lookup", res.LookupErr, "DescribePipelineExecution")
	})
	t.Run("DescribePipelineExecution after a refused stop", func(t *testing.T) {
		c := &refusingClient{nilClient{nilOps: map[string]bool{"DescribePipelineExecution": true}}}
		_, err := pipelinestop.New(c, nilOpts).Stop(ctx, testARN)
		requireNoOutputError(t, "stop", err, "DescribePipelineExecution")
	})
	t.Run("DescribePipelineExecution in Wait", func(t *testing.T) {
		c := &nilClient{nilOps: map[string]bool{"DescribePipelineExecution": true}}
		out, err := pipelinestop.New(c, nilOpts).Wait(ctx, testARN)
		requireNoOutputError(t, "wait", err, "DescribePipelineExecution")
		if out == nil || out.Polls != 1 || c.calls["DescribePipelineExecution"] != 1 {
			t.Fatalf("outcome %+v after %d polls; want one", out, c.calls["DescribePipelineExecution"])
		}
	})
	t.Run("ListPipelineExecutionSteps", func(t *testing.T) {
		c := &nilClient{nilOps: map[string]bool{"ListPipelineExecutionSteps": true}, status: types.PipelineExecutionStatusStopping}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		s := pipelinestop.New(c, nilOpts, func(o *pipelinestop.Options) {
			o.Clock = &cancelAfter{Auto: fakeclock.NewAuto(epoch), limit: time.Minute, cancel: cancel}
		})
		out, err := s.Wait(wctx, testARN)
		if !errors.Is(err, pipelinestop.ErrWaitTimeout) || out == nil || len(out.Blocking) != 0 || c.calls["ListPipelineExecutionSteps"] < 2 {
			t.Fatalf("%+v, %v after %v; want the wait to go on without blocking steps", out, err, c.calls)
		}
	})
	t.Run("answers", func(t *testing.T) {
		c := &nilClient{}
		ack := pipelinestop.NewAcknowledger(c, nilOpts)
		if err := ack.Succeed(ctx, cbToken, map[string]string{"a": "1"}); err != nil {
			t.Fatal(err)
		}
		if err := ack.Fail(ctx, cbToken, "no"); err != nil {
			t.Fatal(err)
		}
		msg := &pipelinestop.CallbackMessage{Token: cbToken, PipelineExecutionARN: testARN, Status: pipelinestop.CallbackStatusStopping}
		if res, err := ack.AckStopping(ctx, msg, nil); err != nil || res.Answer != pipelinestop.AnsweredSuccess {
			t.Fatalf("%+v, %v", res, err)
		}
	})
}

// refusingClient refuses every stop as not Executing.
type refusingClient struct{ nilClient }

func (c *refusingClient) StopPipelineExecution(context.Context, *sagemaker.StopPipelineExecutionInput, ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
	return nil, notRunningErr()
}

// cancelAfter is an Auto clock that cancels a context once limit has
// passed on it.
type cancelAfter struct {
	*fakeclock.Auto
	limit  time.Duration
	cancel context.CancelFunc
}

func (c *cancelAfter) After(d time.Duration) <-chan time.Time {
	ch := c.Auto.After(d)
	if c.Now().Sub(epoch) >= c.limit {
		c.cancel()
	}
	return ch
}

// TestZeroValues: a zero Stopper or Acknowledger, or a nil pointer to
// one, returns a clear error from every method and never panics.
func TestZeroValues(t *testing.T) {
	ctx := context.Background()
	for name, s := range map[string]*pipelinestop.Stopper{"zero": {}, "nil": nil, "New(nil)": pipelinestop.New(nil)} {
		t.Run("Stopper "+name, func(t *testing.T) {
			requireNoClient := func(what string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), "no SageMaker client") {
					t.Errorf("%s: %v; want a clear no-client error", what, err)
				}
			}
			res, err := s.Stop(ctx, testARN)
			requireNoClient("Stop", err)
			if res != nil {
				t.Errorf("Stop result %+v", res)
			}
			_, err = s.Wait(ctx, testARN)
			requireNoClient("Wait", err)
			_, err = s.StopAndWait(ctx, testARN)
			requireNoClient("StopAndWait", err)
			results, err := s.StopAll(ctx, []string{testARN, arnN(1)}, func(o *pipelinestop.Options) { o.Wait = true })
			requireNoClient("StopAll", err)
			for _, r := range results {
				requireNoClient("StopAll result", r.Err)
			}
		})
	}
	for name, a := range map[string]*pipelinestop.Acknowledger{"zero": {}, "nil": nil, "NewAcknowledger(nil)": pipelinestop.NewAcknowledger(nil)} {
		t.Run("Acknowledger "+name, func(t *testing.T) {
			requireNoClient := func(what string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), "no SageMaker client") {
					t.Errorf("%s: %v; want a clear no-client error", what, err)
				}
			}
			requireNoClient("Succeed", a.Succeed(ctx, cbToken, nil))
			requireNoClient("Fail", a.Fail(ctx, cbToken, "no"))
			cleaned := false
			res, err := a.AckStopping(ctx, &pipelinestop.CallbackMessage{Token: cbToken, PipelineExecutionARN: testARN, Status: pipelinestop.CallbackStatusStopping},
				func(context.Context, *pipelinestop.CallbackMessage) error { cleaned = true; return nil })
			requireNoClient("AckStopping", err)
			if cleaned || res.Answer != 0 {
				t.Errorf("AckStopping ran the cleanup (%v) or claims an answer (%v) with no client to answer", cleaned, res.Answer)
			}
		})
	}
}
