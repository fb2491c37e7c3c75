package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pipelinestop/pipelinestop"
)

// serviceConfig is what run does.
type serviceConfig struct {
	// QueueURL is the callback steps' SQS queue.
	QueueURL string
	// Concurrency bounds the steps handled at once.
	Concurrency int
	// Drain is how long running steps may go on after shutdown begins.
	Drain time.Duration
	// Work is how long a job runs when the step's arguments do not say
	// (argument "work_seconds").
	Work time.Duration
	// Visibility is the Consumer's VisibilityTimeout: how long a message
	// in its hands stays invisible, extended while a step works.
	Visibility time.Duration
	// AckOptions and ConsumerOptions tune the library further (tests
	// retry faster).
	AckOptions      []func(*pipelinestop.Options)
	ConsumerOptions []func(*pipelinestop.ConsumerOptions)
}

// validate reports every invalid field at once.
func (c *serviceConfig) validate() error {
	var errs []error
	if c.QueueURL == "" {
		errs = append(errs, errors.New("-queue is required: the URL of the callback steps' SQS queue"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("-concurrency %d: want at least 1", c.Concurrency))
	}
	if c.Drain < 0 {
		errs = append(errs, fmt.Errorf("-drain %s: want zero or more", c.Drain))
	}
	if c.Work < 0 {
		errs = append(errs, fmt.Errorf("-work %s: want zero or more", c.Work))
	}
	if c.Visibility < time.Second || c.Visibility > 12*time.Hour {
		errs = append(errs, fmt.Errorf("-visibility %s: want 1s to 12h", c.Visibility))
	}
	return errors.Join(errs...)
}

// run answers the callback steps of cfg.QueueURL until ctx ends, then
// shuts down gracefully: it stops receiving, hands back the messages it
// has not started, lets running steps finish for cfg.Drain (then cancels
// them; their messages are delivered again later) and flushes the deletes
// of answered messages. It returns only after every goroutine it started
// has ended; the error is a permanent receive error (a queue that does not
// exist, access denied).
//
// ctx is the service's lifetime: main cancels it on SIGTERM or SIGINT.
func run(ctx context.Context, sm pipelinestop.CallbackAPIClient, queue pipelinestop.QueueAPIClient, log *slog.Logger, reg *jobs, cfg serviceConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	w := &worker{jobs: reg, log: log, work: cfg.Work}
	ack := pipelinestop.NewAcknowledger(sm, append([]func(*pipelinestop.Options){func(o *pipelinestop.Options) {
		o.Logger = log
	}}, cfg.AckOptions...)...)
	c, err := pipelinestop.NewConsumer(queue, cfg.QueueURL, ack, pipelinestop.Handler{Execute: w.execute, Cleanup: w.cleanup},
		append([]func(*pipelinestop.ConsumerOptions){func(o *pipelinestop.ConsumerOptions) {
			o.Concurrency = cfg.Concurrency
			// Zero means the library's default; the flag's 0 means
			// "cancel at once".
			o.DrainTimeout = cfg.Drain
			if cfg.Drain == 0 {
				o.DrainTimeout = -1
			}
			o.VisibilityTimeout = cfg.Visibility
		}}, cfg.ConsumerOptions...)...)
	if err != nil {
		return err
	}
	log.Info("consuming callback messages", "queue_url", cfg.QueueURL, "concurrency", cfg.Concurrency, "drain", cfg.Drain)
	err = c.Run(ctx)
	running, submitted, resumed, finished, canceled := reg.stats()
	log.Info("consumer stopped", "jobs_submitted", submitted, "jobs_resumed", resumed, "jobs_finished", finished,
		"jobs_canceled", canceled, "jobs_left_running", running)
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.QueueURL, err)
	}
	return nil
}

// worker does the work of callback steps.
type worker struct {
	jobs *jobs
	log  *slog.Logger
	work time.Duration
}

// stepLog returns a logger for the step of msg. The token is logged with
// its LogValue, which shows only its first two characters: a callback
// token answers the step, so it is a secret.
func (w *worker) stepLog(msg *pipelinestop.CallbackMessage) *slog.Logger {
	return w.log.With("execution_arn", msg.PipelineExecutionARN, "callback_token", msg.Token)
}

// execute handles an Executing message: it submits the step's job (or
// finds the one a first delivery of the message submitted) and waits for
// its result, which becomes the step's output parameters.
//
// When ctx ends first, because a Stopping message arrived for the step or
// because the drain period of a shutdown ended, it returns ctx's error and
// leaves the job running: on a stop, cleanup cancels it; on a shutdown,
// the message is delivered again and the next delivery resumes the job.
func (w *worker) execute(ctx context.Context, msg *pipelinestop.CallbackMessage) (map[string]string, error) {
	log := w.stepLog(msg)
	input, d, err := w.arguments(msg)
	if err != nil {
		// The step fails with this reason: its arguments are wrong.
		log.Warn("invalid step arguments", "error", err)
		return nil, err
	}
	key := jobKey{msg.PipelineExecutionARN, msg.Token}
	j, resumed := w.jobs.submit(key, input, d)
	if resumed {
		log.Info("job resumed", "job_id", j.id)
	} else {
		log.Info("job submitted", "job_id", j.id, "input", input, "run_time", d)
	}
	result, err := w.jobs.wait(ctx, key, j)
	switch {
	case err == nil:
		log.Info("job finished", "job_id", j.id)
		return map[string]string{"job_id": j.id, "result": result}, nil
	case ctx.Err() != nil:
		log.Info("execute interrupted: job left running for cleanup or the next delivery", "job_id", j.id)
		return nil, ctx.Err()
	default:
		log.Warn("job failed", "job_id", j.id, "error", err)
		return nil, fmt.Errorf("job %s: %w", j.id, err)
	}
}

// arguments reads the step's arguments: "input", a string, and
// "work_seconds", a number (arguments can be any JSON value).
func (w *worker) arguments(msg *pipelinestop.CallbackMessage) (input string, d time.Duration, err error) {
	d = w.work
	if raw, ok := msg.Arguments["input"]; ok {
		if err := json.Unmarshal(raw, &input); err != nil {
			return "", 0, fmt.Errorf("argument input: want a string, got %s", raw)
		}
	}
	if raw, ok := msg.Arguments["work_seconds"]; ok {
		var secs float64
		if err := json.Unmarshal(raw, &secs); err != nil || secs < 0 {
			return "", 0, fmt.Errorf("argument work_seconds: want a number of seconds, got %s", raw)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	return input, d, nil
}

// cleanup handles a Stopping message: it cancels the step's job, so that
// nothing keeps working for an execution that is being stopped. The
// Consumer has already canceled and waited for a running execute of the
// same step, and answers the step with success when cleanup returns nil
// (with failure otherwise; either answer lets the execution stop).
func (w *worker) cleanup(_ context.Context, msg *pipelinestop.CallbackMessage) error {
	log := w.stepLog(msg)
	if j := w.jobs.cancel(jobKey{msg.PipelineExecutionARN, msg.Token}); j != nil {
		log.Info("job canceled: the execution is being stopped", "job_id", j.id)
		return nil
	}
	// The job finished, never started, or ran elsewhere: nothing to do
	// here, and the answer still lets the execution stop.
	log.Info("no job to cancel for the stopping step")
	return nil
}
