package pipelinestop

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/pipelinestop/pipelinestop/internal/retry"
)

// BatchResult is what StopAll did for one execution.
type BatchResult struct {
	// ExecutionARN is the execution, as given.
	ExecutionARN string
	// Stop is Stop's result, or nil when the ARN or token was invalid.
	Stop *StopResult
	// Outcome is the wait's, when Options.Wait was set and the wait
	// started; nil otherwise, and in particular when the stop failed (Err
	// and Stop say how), so an Outcome's Status is always one seen by a
	// poll, never a stand-in for a wait that did not happen.
	Outcome *Outcome
	// Err is this execution's error, or nil.
	Err error
}

// StopAll stops many executions at once, for shutdown hooks. Every ARN
// gets a BatchResult, in the order given; the error joins every
// execution's error with errors.Join (nil when all succeeded). At most
// Options.Concurrency SageMaker calls are in flight in each Region.
//
// Each call goes to the Region in its execution's ARN (see
// Options.DisableRegionRouting), and each Region is paced on its own,
// since SageMaker throttles per account and Region: the executions of one
// Region share a pacer and Options.Concurrency slots of their own, so
// a Region that throttles does not slow the stops of another.
//
// When SageMaker throttles, the stops of the Region slow down together:
// their StopPipelineExecution calls share one pacer that finds the rate
// SageMaker admits by trying (additive increase, multiplicative decrease:
// the rate is cut with each throttled call and raised slowly while calls
// are accepted; BENCHMARKS.md measures it), a throttled stop is
// retried as soon as its turn comes, and the time a stop waits for its
// turn does not count against its Options.RetryBudget. These calls are
// made with the SDK's own retries off (RetryMaxAttempts 1;
// Options.ClientOptions can set it again), since StopAll retries
// throttling, 5xx and connection errors itself with the same token.
//
// Options.Token, when set, must pass ValidateToken as in Stop: otherwise
// every BatchResult gets the error (matching ErrInvalidToken), StopAll
// returns it once, and no call is made.
//
// With Options.Wait set, StopAll also waits for each execution to reach a
// terminal status. A repeated ARN is stopped once and reported at each of
// its places. StopAll returns only after every goroutine it started has
// ended.
func (s *Stopper) StopAll(ctx context.Context, executionARNs []string, optFns ...func(*Options)) ([]BatchResult, error) {
	s = s.orZero()
	o := s.options(optFns)
	results := make([]BatchResult, len(executionARNs))
	if o.Token != "" {
		// The rule of Stop: a caller's token must be valid. The tokens
		// derived from it would be, whatever it is; check it first.
		if err := ValidateToken(o.Token); err != nil {
			err = fmt.Errorf("stop pipeline executions: Options.Token: %w", err)
			for i, arn := range executionARNs {
				results[i] = BatchResult{ExecutionARN: arn, Err: err}
			}
			return results, err
		}
	}
	first := make(map[string]int, len(executionARNs))
	// One batch per Region the calls go to: throttling is per account and
	// Region, so a Region that throttles must not slow the others.
	batches := map[string]*batch{}
	var wg sync.WaitGroup
	for i, arn := range executionARNs {
		results[i].ExecutionARN = arn
		if _, dup := first[arn]; dup {
			continue
		}
		first[arn] = i
		region := o.targetRegion(s.client, arn)
		b := batches[region]
		if b == nil {
			b = &batch{admission: retry.NewAdmission(o.Concurrency), pacer: retry.NewPacer()}
			batches[region] = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			co := o
			if o.Token != "" {
				co.Token = DeriveToken(o.Token, arn)
			}
			r := &results[i]
			if s.client == nil {
				r.Err = errNilClient
				return
			}
			if !o.Wait {
				r.Stop, r.Err = s.stop(ctx, s.client, arn, &co, b)
				return
			}
			r.Outcome, r.Stop, r.Err = s.stopAndWait(ctx, s.client, arn, &co, b)
		}()
	}
	wg.Wait()
	var errs []error
	for i := range results {
		if j := first[results[i].ExecutionARN]; j != i {
			results[i] = results[j]
			continue
		}
		if results[i].Err != nil {
			errs = append(errs, results[i].Err)
		}
	}
	return results, errors.Join(errs...)
}

// batch is what the executions of one StopAll in one Region share: one
// Admission, the only bound on their SageMaker calls in flight
// (Options.Concurrency), and one Pacer that spaces their
// StopPipelineExecution calls when SageMaker throttles them. StopAll makes
// one batch per Region (Options.targetRegion), so that a Region's
// throttling neither slows another Region's stops (the pacer) nor keeps
// their calls waiting for slots held by calls waiting for its turns (the
// admission).
//
// Every SageMaker call of a StopAll holds a slot while it is in flight,
// and only then. A stop's attempt takes its slot before it waits for its
// pacer turn and gives it back when its answer is in (with the status
// lookup after the stop's answer, made under the same slot): so the
// pacer hands out at most Concurrency turns at one rate, and needs no
// bound of its own. Each DescribePipelineExecution and ListPipelineExecutionSteps call
// of a wait takes a slot for that call alone (limitedClient).
//
// An execution that waits, between two polls or in a retry delay, holds
// no slot, and must not. With Options.Wait an execution can wait for
// hours (a callback step nobody answers keeps it Stopping for ever); if
// waiting executions held slots, the first Concurrency executions would
// keep every other one from being sent its stop until they ended, while a
// shutdown hook needs every stop sent first, at the rate SageMaker admits,
// and the waits after.
type batch struct {
	admission *retry.Admission
	pacer     *retry.Pacer
}

// limit returns client with its DescribePipelineExecution and
// ListPipelineExecutionSteps calls admitted by b, or client itself when b
// is nil (a call that is not part of a StopAll).
func (b *batch) limit(client StopAPIClient) StopAPIClient {
	if b == nil {
		return client
	}
	return &limitedClient{StopAPIClient: client, admission: b.admission}
}

// limitedClient makes each DescribePipelineExecution and
// ListPipelineExecutionSteps call hold a slot of admission. Its
// StopPipelineExecution is the wrapped client's: a stop's attempts take
// their slots in retry.Do, around their pacer turns (see batch).
type limitedClient struct {
	StopAPIClient
	admission *retry.Admission
}

// limited makes call while holding one of admission's slots.
func limited[T any](ctx context.Context, admission *retry.Admission, call func() (T, error)) (T, error) {
	if err := admission.Acquire(ctx); err != nil {
		var zero T
		return zero, err
	}
	defer admission.Release()
	return call()
}

func (c *limitedClient) DescribePipelineExecution(ctx context.Context, in *sagemaker.DescribePipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
	return limited(ctx, c.admission, func() (*sagemaker.DescribePipelineExecutionOutput, error) {
		return c.StopAPIClient.DescribePipelineExecution(ctx, in, optFns...)
	})
}

func (c *limitedClient) ListPipelineExecutionSteps(ctx context.Context, in *sagemaker.ListPipelineExecutionStepsInput, optFns ...func(*sagemaker.Options)) (*sagemaker.ListPipelineExecutionStepsOutput, error) {
	return limited(ctx, c.admission, func() (*sagemaker.ListPipelineExecutionStepsOutput, error) {
		return c.StopAPIClient.ListPipelineExecutionSteps(ctx, in, optFns...)
	})
}
