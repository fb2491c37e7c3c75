package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
)

// sageMakerAPI is the part of the SageMaker API the service uses: the
// Stopper's calls and StartPipelineExecution.
type sageMakerAPI interface {
	pipelinestop.StopAPIClient
	StartPipelineExecution(ctx context.Context, in *sagemaker.StartPipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.StartPipelineExecutionOutput, error)
}

var _ sageMakerAPI = (*sagemaker.Client)(nil)

// startTimeout bounds one StartPipelineExecution call. The call is not cut
// short by the shutdown signal: an execution that SageMaker started must
// be known to the service, or it could not be stopped.
const startTimeout = 30 * time.Second

// serviceConfig is what run does.
type serviceConfig struct {
	// Pipeline is the pipeline to start Count executions of; "" starts
	// none.
	Pipeline string
	// Count is the number of executions of Pipeline to start.
	Count int
	// ExecutionARNs are executions started elsewhere that the service
	// looks after (and stops) as if it had started them.
	ExecutionARNs []string
	// Grace bounds the stop on shutdown.
	Grace time.Duration
	// Concurrency bounds the SageMaker calls in flight while stopping.
	Concurrency int
	// Wait makes the stop wait, within Grace, for every execution to reach
	// a terminal status, so that what holds an execution is reported.
	Wait bool
	// Verbose logs every event of the Stopper (each status change, the
	// steps that block a stop); otherwise only its warnings (retries).
	Verbose bool
	// StopperOptions tune the Stopper further (tests poll faster).
	StopperOptions []func(*pipelinestop.Options)
}

// validate reports every invalid field at once. An invalid ARN's error
// matches pipelinestop.ErrInvalidARN.
func (c *serviceConfig) validate() error {
	var errs []error
	if c.Pipeline == "" && len(c.ExecutionARNs) == 0 {
		errs = append(errs, errors.New("nothing to do: give -pipeline NAME, execution ARNs, or both"))
	}
	if c.Pipeline != "" && c.Count < 1 {
		errs = append(errs, fmt.Errorf("-count %d: want at least 1", c.Count))
	}
	if c.Grace <= 0 {
		errs = append(errs, fmt.Errorf("-grace %s: want a positive duration", c.Grace))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("-concurrency %d: want at least 1", c.Concurrency))
	}
	for _, arn := range c.ExecutionARNs {
		if _, err := pipelinestop.ParseExecutionARN(arn); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// summary says what run did with each execution.
type summary struct {
	// Started are the executions the service started.
	Started []string
	// Ended are the executions that ended on their own, before the stop
	// or while it was being sent.
	Ended []string
	// Stopped are the executions the stop ended (or, without Wait, that
	// SageMaker accepted to stop).
	Stopped []string
	// NotStopped are the executions that could not be stopped within the
	// grace period, or at all.
	NotStopped []string
}

// run starts cfg.Count executions of cfg.Pipeline, watches them and
// cfg.ExecutionARNs until they all end or ctx ends, and then stops those
// still running, within cfg.Grace, and logs each result. When a start
// fails it stops what it started and returns the start's error. It
// returns only after every goroutine it started has ended.
//
// ctx is the service's lifetime: main cancels it on SIGTERM or SIGINT.
func run(ctx context.Context, client sageMakerAPI, log *slog.Logger, cfg serviceConfig) (summary, error) {
	var sum summary
	if err := cfg.validate(); err != nil {
		return sum, err
	}
	libLog := log
	if !cfg.Verbose {
		libLog = slog.New(minLevel{log.Handler(), slog.LevelWarn})
	}
	optFns := append([]func(*pipelinestop.Options){func(o *pipelinestop.Options) {
		o.Logger = libLog
		o.Concurrency = cfg.Concurrency
	}}, cfg.StopperOptions...)
	stopper := pipelinestop.New(client, optFns...)

	started, startErr := start(ctx, client, log, cfg)
	sum.Started = started
	arns := append(slices.Clone(cfg.ExecutionARNs), started...)
	if len(arns) == 0 {
		log.Info("no execution started: nothing to look after")
		return sum, startErr
	}
	running := arns
	if startErr == nil {
		running = watch(ctx, stopper, log, arns, &sum)
		if len(running) == 0 {
			log.Info("every execution ended on its own: nothing to stop")
			return sum, nil
		}
	} else {
		log.Error("cannot start every execution: stopping what runs", "error", startErr)
	}
	if len(running) > 0 {
		stopAll(ctx, stopper, log, cfg, running, &sum)
	}
	return sum, startErr
}

// start starts cfg.Count executions of cfg.Pipeline, one after the other,
// until ctx ends or a start fails.
func start(ctx context.Context, client sageMakerAPI, log *slog.Logger, cfg serviceConfig) ([]string, error) {
	var started []string
	for i := range cfg.Count {
		if ctx.Err() != nil {
			log.Warn("shut down before every execution was started", "pipeline", cfg.Pipeline,
				"started", i, "count", cfg.Count)
			break
		}
		arn, err := startOne(ctx, client, cfg.Pipeline)
		if err != nil {
			return started, fmt.Errorf("start execution %d of %d of pipeline %s: %w", i+1, cfg.Count, cfg.Pipeline, err)
		}
		log.Info("started execution", "execution_arn", arn)
		started = append(started, arn)
	}
	return started, nil
}

// startOne starts one execution of pipeline. The error is classified
// (pipelinestop.Classify), so errors.Is(err, pipelinestop.ErrNotFound)
// tells a pipeline that does not exist.
func startOne(ctx context.Context, client sageMakerAPI, pipeline string) (string, error) {
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	out, err := client.StartPipelineExecution(callCtx, &sagemaker.StartPipelineExecutionInput{
		PipelineName: aws.String(pipeline),
		// One token per execution: the SDK's own retries of this call send
		// it again, so an answer lost on the way does not start a second
		// execution.
		ClientRequestToken: aws.String(pipelinestop.NewToken()),
	})
	if err != nil {
		return "", pipelinestop.Classify(err)
	}
	return aws.ToString(out.PipelineExecutionArn), nil
}

// watch waits, with Stopper.Wait, until each execution has ended or ctx
// has ended, and returns the executions not seen to end, in their order.
// An execution that cannot be watched (it does not exist, access is
// denied) is logged and returned too: the stop reports it again.
func watch(ctx context.Context, s *pipelinestop.Stopper, log *slog.Logger, arns []string, sum *summary) []string {
	type result struct {
		i   int
		out *pipelinestop.Outcome
		err error
	}
	// Buffered for every result, so no goroutine waits to send; run
	// receives all of them before it returns.
	results := make(chan result, len(arns))
	for i, arn := range arns {
		go func() {
			out, err := s.Wait(ctx, arn)
			results <- result{i, out, err}
		}()
	}
	ended := make([]bool, len(arns))
	for range arns {
		r := <-results
		switch {
		case r.err == nil:
			ended[r.i] = true
			sum.Ended = append(sum.Ended, arns[r.i])
			log.Info("execution ended", "execution_arn", arns[r.i], "status", r.out.Status,
				"failure_reason", r.out.FailureReason)
		case errors.Is(r.err, pipelinestop.ErrWaitTimeout):
			// ctx ended: the service is shutting down.
		default:
			log.Warn("cannot watch execution", "execution_arn", arns[r.i], "error", r.err)
		}
	}
	var running []string
	for i, arn := range arns {
		if !ended[i] {
			running = append(running, arn)
		}
	}
	return running
}

// stopAll stops arns within cfg.Grace and logs each result. Its context is
// not ctx, which has ended when the service shuts down, but a fresh one
// that keeps ctx's values and ends after the grace period.
func stopAll(ctx context.Context, s *pipelinestop.Stopper, log *slog.Logger, cfg serviceConfig, arns []string, sum *summary) {
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Grace)
	defer cancel()
	log.Info("stopping executions", "count", len(arns), "grace", cfg.Grace, "wait", cfg.Wait)
	start := time.Now()
	// The joined error repeats each result's Err, which report logs.
	results, _ := s.StopAll(stopCtx, arns, func(o *pipelinestop.Options) { o.Wait = cfg.Wait })
	for _, r := range results {
		report(log, r, sum)
	}
	log.Info("shutdown hook done", "stopped", len(sum.Stopped), "ended", len(sum.Ended),
		"not_stopped", len(sum.NotStopped), "elapsed", time.Since(start).Round(time.Millisecond))
}

// report logs what StopAll did for one execution and records it in sum.
func report(log *slog.Logger, r pipelinestop.BatchResult, sum *summary) {
	arn := slog.String("execution_arn", r.ExecutionARN)
	if r.Err != nil {
		sum.NotStopped = append(sum.NotStopped, r.ExecutionARN)
		attrs := []any{arn, "reason", whyNotStopped(r.Err)}
		var we *pipelinestop.WaitError
		if errors.As(r.Err, &we) {
			// The stop was accepted: say what holds the execution.
			steps := make([]string, len(we.Blocking))
			for i, b := range we.Blocking {
				steps[i] = b.String()
			}
			attrs = append(attrs, "status", we.Status, "blocking_steps", steps)
			log.Warn("execution not stopped in time", attrs...)
			return
		}
		attrs = append(attrs, "error", r.Err)
		log.Error("could not stop execution", attrs...)
		return
	}
	st := r.Stop
	status := st.Status
	if r.Outcome != nil {
		status = r.Outcome.Status
	}
	switch {
	case st.NotRunning():
		sum.Ended = append(sum.Ended, r.ExecutionARN)
		log.Info("execution had already ended", arn, "status", status)
	case status == types.PipelineExecutionStatusFailed && r.Outcome != nil:
		// For example a Lambda step that timed out while stopping: the
		// execution no longer runs, but its status is Failed.
		sum.Stopped = append(sum.Stopped, r.ExecutionARN)
		log.Warn("execution failed while stopping", arn, "failure_reason", r.Outcome.FailureReason,
			"attempts", st.Attempts)
	default:
		sum.Stopped = append(sum.Stopped, r.ExecutionARN)
		msg := "stopped execution"
		if r.Outcome == nil {
			msg = "stop accepted"
		}
		log.Info(msg, arn, "status", status, "attempts", st.Attempts,
			"already_stopping", st.AlreadyStopping())
	}
}

// whyNotStopped explains a StopAll error in words, from its sentinels.
func whyNotStopped(err error) string {
	switch {
	case errors.Is(err, pipelinestop.ErrWaitTimeout):
		return "the stop was accepted, but the execution was still Stopping when the grace period ended; " +
			"SageMaker stops it once the steps holding it end"
	case errors.Is(err, pipelinestop.ErrNotFound):
		return "no such execution in this account and Region"
	case errors.Is(err, pipelinestop.ErrInvalidARN):
		return "not a pipeline execution ARN"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "the grace period ended before SageMaker accepted the stop"
	case errors.Is(err, pipelinestop.ErrConflict), errors.Is(err, pipelinestop.ErrThrottled),
		errors.Is(err, pipelinestop.ErrUnavailable):
		return "SageMaker kept refusing the stop (conflict, throttling or unavailability) until the retry budget was spent"
	default:
		return "SageMaker refused the stop"
	}
}

// minLevel is a slog.Handler that passes on the records of at least
// level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

// Enabled reports whether l is at least h's level and enabled by the
// handler underneath.
func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

// WithAttrs returns a minLevel over the handler with attrs.
func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.level}
}

// WithGroup returns a minLevel over the handler with the group.
func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.level}
}
