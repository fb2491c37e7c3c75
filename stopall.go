package pipelinestop

import (
	"context"
	"errors"
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
	// Outcome is set when Options.Wait was set and the wait ended.
	Outcome *Outcome
	// Err is this execution's error, or nil.
	Err error
}

// StopAll stops many executions at once, for shutdown hooks. Every ARN
// gets a BatchResult, in the order given; the error joins every
// execution's error with errors.Join (nil when all succeeded). At most
// Options.Concurrency SageMaker calls are in flight.
//
// When SageMaker throttles, all the stops slow down together: their
// StopPipelineExecution calls share one pacer that finds the rate
// SageMaker admits (lowered by a tenth with each throttled call, raised
// about 5% a second while calls are accepted), a throttled stop is
// retried as soon as its turn comes, and the time a stop waits for its
// turn does not count against its Options.RetryBudget. These calls are
// made with the SDK's own retries off (RetryMaxAttempts 1;
// Options.ClientOptions can set it again), since StopAll retries
// throttling, 5xx and connection errors itself with the same token.
//
// With Options.Wait set, StopAll also waits for each execution to reach a
// terminal status. A repeated ARN is stopped once and reported at each of
// its places. StopAll returns only after every goroutine it started has
// ended.
func (s *Stopper) StopAll(ctx context.Context, executionARNs []string, optFns ...func(*Options)) ([]BatchResult, error) {
	o := s.options(optFns)
	results := make([]BatchResult, len(executionARNs))
	first := make(map[string]int, len(executionARNs))
	client := &limitedClient{StopAPIClient: s.client, sem: make(chan struct{}, o.Concurrency)}
	pacer := retry.NewPacer(o.Concurrency)
	var wg sync.WaitGroup
	for i, arn := range executionARNs {
		results[i].ExecutionARN = arn
		if _, dup := first[arn]; dup {
			continue
		}
		first[arn] = i
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
				r.Stop, r.Err = s.stop(ctx, client, arn, &co, pacer)
				return
			}
			r.Outcome, r.Err = s.stopAndWait(ctx, client, arn, &co, pacer)
			if r.Outcome != nil {
				r.Stop = r.Outcome.Stop
			}
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

// limitedClient bounds the calls in flight through a StopAPIClient.
type limitedClient struct {
	StopAPIClient
	sem chan struct{}
}

// limited makes call while holding one of c's slots.
func limited[T any](ctx context.Context, c *limitedClient, call func() (T, error)) (T, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	defer func() { <-c.sem }()
	return call()
}

func (c *limitedClient) StopPipelineExecution(ctx context.Context, in *sagemaker.StopPipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
	return limited(ctx, c, func() (*sagemaker.StopPipelineExecutionOutput, error) {
		return c.StopAPIClient.StopPipelineExecution(ctx, in, optFns...)
	})
}

func (c *limitedClient) DescribePipelineExecution(ctx context.Context, in *sagemaker.DescribePipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
	return limited(ctx, c, func() (*sagemaker.DescribePipelineExecutionOutput, error) {
		return c.StopAPIClient.DescribePipelineExecution(ctx, in, optFns...)
	})
}

func (c *limitedClient) ListPipelineExecutionSteps(ctx context.Context, in *sagemaker.ListPipelineExecutionStepsInput, optFns ...func(*sagemaker.Options)) (*sagemaker.ListPipelineExecutionStepsOutput, error) {
	return limited(ctx, c, func() (*sagemaker.ListPipelineExecutionStepsOutput, error) {
		return c.StopAPIClient.ListPipelineExecutionSteps(ctx, in, optFns...)
	})
}
