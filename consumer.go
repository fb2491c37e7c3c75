package pipelinestop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

//go:generate go tool mockgen -typed -destination internal/mocks/queue.go -package mocks github.com/pipelinestop/pipelinestop QueueAPIClient

// QueueAPIClient is the part of the SQS API a Consumer uses.
// *sqs.Client satisfies it.
type QueueAPIClient interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

var _ QueueAPIClient = (*sqs.Client)(nil)

// Errors of the Consumer.
var (
	// ErrPending, returned by Handler.Execute (possibly wrapped), says that
	// another system answers the step later, for example a job that calls
	// SendPipelineExecutionStepSuccess when it ends. The Consumer does not
	// answer the step and deletes the message, so that it is not
	// redelivered for ever; a later Stopping message for the step is still
	// handled (cleaned up and answered), so a stop is never blocked.
	ErrPending = errors.New("pipelinestop: the callback step is answered later by another system")

	// ErrRetryLater marks a transient handler error (see RetryLater): the
	// step is not answered and the message becomes visible again after a
	// delay that grows with its receive count.
	ErrRetryLater = errors.New("pipelinestop: retry the message later")

	// ErrInvalidConsumer means NewConsumer was given a nil client,
	// acknowledger or Execute function, or an empty queue URL, or Run was
	// called on a Consumer that NewConsumer did not make.
	ErrInvalidConsumer = errors.New("pipelinestop: invalid consumer")
)

// Causes of the cancellation of a handler's context, as returned by
// context.Cause, so that Execute can tell why it is asked to stop.
var (
	// ErrStepStopping is the cause when a Stopping message arrived for the
	// step that Execute works on: its execution is being stopped, the
	// Consumer answers the step through Cleanup, and Execute's result is
	// ignored.
	ErrStepStopping = errors.New("pipelinestop: the callback step's execution is being stopped")

	// ErrConsumerShutdown is the cause when Run's context ended and its
	// drain period is over: the step is not answered, and its message is
	// made visible again for another consumer.
	ErrConsumerShutdown = errors.New("pipelinestop: the consumer is shutting down")

	// ErrDeadline is the cause when BatchHandler.HandleBatch's context is
	// about to reach its deadline (ConsumerOptions.DeadlineMargin before
	// it): the step is not answered, and its message is reported for
	// another try.
	ErrDeadline = errors.New("pipelinestop: the batch's deadline is near")
)

// RetryLater marks err as transient for the Consumer: the returned error
// matches both ErrRetryLater and err. RetryLater(nil) returns
// ErrRetryLater.
func RetryLater(err error) error {
	if err == nil {
		return ErrRetryLater
	}
	return fmt.Errorf("%w: %w", ErrRetryLater, err)
}

// Handler does the work of callback steps for a Consumer. It is a pair of
// functions rather than an interface so that a consumer with nothing to
// clean up sets only Execute. Both must be safe for concurrent use, and,
// since SQS delivers at least once, idempotent: the same step can be
// handled again after a redelivery or by another consumer.
type Handler struct {
	// Execute does the step's work for an Executing message. Its result
	// decides the answer:
	//
	//   - outputs, nil: the step succeeds with these output parameters
	//     (limits as for Acknowledger.Succeed; outputs that break them
	//     fail the step with the reason);
	//   - an error matching ErrPending: no answer, the message is deleted;
	//   - an error matching ErrRetryLater (see RetryLater): no answer, the
	//     message becomes visible again after a growing delay;
	//   - any other error: the step fails with the error as reason;
	//   - a panic: recovered, the step fails.
	//
	// The context is canceled when a Stopping message for the same step
	// arrives (the answer is then the Stopping message's, and Execute's
	// result is ignored; context.Cause is ErrStepStopping) and when the
	// Consumer's drain period ends (context.Cause is ErrConsumerShutdown).
	// Execute
	// is required. Execute must return soon after its context is
	// canceled: Run waits for every handler before it returns.
	Execute func(ctx context.Context, msg *CallbackMessage) (map[string]string, error)

	// Cleanup cleans up after a step whose execution is being stopped, for
	// a Stopping message. The Consumer answers through
	// Acknowledger.AckStopping: success when Cleanup returns nil, failure
	// otherwise. Cleanup can be called for a step that another consumer
	// already answered. Nil means there is nothing to clean up.
	Cleanup func(ctx context.Context, msg *CallbackMessage) error
}

// Defaults of ConsumerOptions.
const (
	// DefaultWaitTimeSeconds is the long-poll time of each receive, the
	// SQS maximum: an idle queue costs three receives a minute.
	DefaultWaitTimeSeconds = 20
	// DefaultMaxMessages is the most messages one receive asks for, the
	// SQS maximum.
	DefaultMaxMessages = 10
	// DefaultConsumerConcurrency bounds the handlers that run at once.
	DefaultConsumerConcurrency = 10
	// DefaultVisibilityTimeout is how long a message stays invisible once
	// in the Consumer's hands: a message held longer than half the
	// receive's visibility timeout is extended by this much, again each
	// time half of it has passed.
	DefaultVisibilityTimeout = 30 * time.Second
	// DefaultReceiveVisibilityTimeout is the visibility timeout asked for
	// on receive: what a receive whose answer is lost costs its messages
	// (they stay invisible that long, then are delivered again), while a
	// message answered and deleted within half of it needs no extension.
	DefaultReceiveVisibilityTimeout = 5 * time.Second
	// DefaultRetryLaterMinDelay is the delay before a message that could
	// not be finished (a transient error, a failed answer, a malformed
	// body) is visible again after its first receive.
	DefaultRetryLaterMinDelay = 10 * time.Second
	// DefaultRetryLaterMaxDelay caps that delay, which doubles with each
	// receive of the message.
	DefaultRetryLaterMaxDelay = 15 * time.Minute
	// DefaultDrainTimeout is how long running handlers may go on after
	// Run's context ends. With the final flush of deletes (at most
	// shutdownFlushTimeout) it fits a 30-second termination grace period.
	DefaultDrainTimeout = 10 * time.Second
	// DefaultReceiveRetryMinDelay is the first delay after a failed
	// receive.
	DefaultReceiveRetryMinDelay = 500 * time.Millisecond
	// DefaultReceiveRetryMaxDelay caps the delay between failed receives.
	DefaultReceiveRetryMaxDelay = 30 * time.Second
	// DefaultDeadlineMargin is the time BatchHandler.HandleBatch keeps
	// before its context's deadline to cancel running handlers and
	// report what is unfinished, for a Lambda function to return in time.
	DefaultDeadlineMargin = 2 * time.Second
)

// Limits of SQS the Consumer keeps to.
const (
	maxBatch             = 10              // entries in a batch call, messages in a receive
	maxVisibility        = 12 * time.Hour  // longest visibility timeout
	maxDeleteAttempts    = 5               // tries to delete one message
	shutdownFlushTimeout = 5 * time.Second // real time for the last deletes
	answeredMemory       = 4096            // answered tokens remembered
)

// Operation names of the SQS calls, in events and errors.
const (
	receiveOp = "ReceiveMessage"
	deleteOp  = "DeleteMessageBatch"
	changeOp  = "ChangeMessageVisibilityBatch"
)

// ConsumerOptions configure a Consumer. Zero fields take the defaults.
type ConsumerOptions struct {
	// WaitTimeSeconds is the long-poll time of a receive, 1 to 20.
	// Default DefaultWaitTimeSeconds; a negative value asks for short
	// polling (0).
	WaitTimeSeconds int32
	// MaxMessages is the most messages a receive asks for, 1 to 10.
	// Default DefaultMaxMessages. The Consumer receives ahead of its
	// handlers: while the handlers running, the messages waiting for a
	// slot and the receives in flight leave room in Concurrency plus a
	// small buffer (what the handlers take during a receive, in whole
	// receives, at most Concurrency), and with more than one receive in
	// flight while the queue has a backlog.
	MaxMessages int32
	// Concurrency bounds the handlers running at once. Default
	// DefaultConsumerConcurrency.
	Concurrency int
	// VisibilityTimeout is how long a message the Consumer holds stays
	// invisible (rounded up to whole seconds, at most 12 hours): while a
	// message is in the Consumer's hands its visibility is extended by as
	// much once half of the current one has passed, in batches. Default
	// DefaultVisibilityTimeout.
	VisibilityTimeout time.Duration
	// ReceiveVisibilityTimeout is the visibility timeout asked for on
	// receive (rounded up to whole seconds, at most VisibilityTimeout).
	// When a receive's answer is lost (the connection fails while it is
	// read), SQS has made its messages invisible although the Consumer
	// never saw them: they are delivered again after this time, not after
	// VisibilityTimeout. A message still held when half of it has passed
	// is extended to VisibilityTimeout; one answered and deleted sooner
	// costs no extension. Default DefaultReceiveVisibilityTimeout; a
	// negative value receives with VisibilityTimeout.
	ReceiveVisibilityTimeout time.Duration
	// RetryLaterMinDelay and RetryLaterMaxDelay bound the delay before a
	// message that could not be finished is visible again: the minimum
	// doubled for each earlier receive (ApproximateReceiveCount), capped,
	// and rounded up to whole seconds, the unit of SQS visibility
	// timeouts (so at least 1 s). Defaults DefaultRetryLaterMinDelay and
	// DefaultRetryLaterMaxDelay.
	RetryLaterMinDelay, RetryLaterMaxDelay time.Duration
	// DeleteMalformed makes the Consumer delete messages that are not
	// valid callback messages. Default false: they become visible again
	// after the retry-later delay, so that the queue's redrive policy moves
	// them to a dead-letter queue.
	DeleteMalformed bool
	// DrainTimeout is how long running handlers may go on after Run's
	// context ends; then their contexts are canceled. Default
	// DefaultDrainTimeout; a negative value cancels them at once.
	DrainTimeout time.Duration
	// DeadlineMargin is how long before its context's deadline
	// BatchHandler.HandleBatch starts no more work and cancels the running
	// handlers (context.Cause is ErrDeadline); at most half the time left.
	// Default DefaultDeadlineMargin. The Consumer does not use it.
	DeadlineMargin time.Duration
	// ReceiveRetryMinDelay and ReceiveRetryMaxDelay bound the backoff
	// after a failed receive. Defaults DefaultReceiveRetryMinDelay and
	// DefaultReceiveRetryMaxDelay.
	ReceiveRetryMinDelay, ReceiveRetryMaxDelay time.Duration
	// OnEvent, Logger and Clock are as in Options. Defaults: the
	// Acknowledger's.
	OnEvent func(Event)
	// Logger receives a record for every Event. Default: the
	// Acknowledger's logger.
	Logger *slog.Logger
	// Clock tells the time and waits. Default: the Acknowledger's clock.
	Clock Clock
	// ClientOptions are passed to every SQS call.
	ClientOptions []func(*sqs.Options)
}

// withDefaults returns o with zero and invalid fields replaced by defaults,
// and the observer taken from ack where unset.
func (o ConsumerOptions) withDefaults(ack Options) ConsumerOptions {
	switch {
	case o.WaitTimeSeconds == 0 || o.WaitTimeSeconds > 20:
		o.WaitTimeSeconds = DefaultWaitTimeSeconds
	case o.WaitTimeSeconds < 0:
		o.WaitTimeSeconds = 0
	}
	if o.MaxMessages <= 0 || o.MaxMessages > maxBatch {
		o.MaxMessages = DefaultMaxMessages
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConsumerConcurrency
	}
	if o.VisibilityTimeout <= 0 {
		o.VisibilityTimeout = DefaultVisibilityTimeout
	}
	o.VisibilityTimeout = min((o.VisibilityTimeout + time.Second - 1).Truncate(time.Second), maxVisibility)
	switch {
	case o.ReceiveVisibilityTimeout == 0:
		o.ReceiveVisibilityTimeout = DefaultReceiveVisibilityTimeout
	case o.ReceiveVisibilityTimeout < 0:
		o.ReceiveVisibilityTimeout = o.VisibilityTimeout
	}
	o.ReceiveVisibilityTimeout = min((o.ReceiveVisibilityTimeout + time.Second - 1).Truncate(time.Second), o.VisibilityTimeout)
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&o.RetryLaterMinDelay, DefaultRetryLaterMinDelay)
	setDur(&o.RetryLaterMaxDelay, DefaultRetryLaterMaxDelay)
	setDur(&o.ReceiveRetryMinDelay, DefaultReceiveRetryMinDelay)
	setDur(&o.ReceiveRetryMaxDelay, DefaultReceiveRetryMaxDelay)
	setDur(&o.DeadlineMargin, DefaultDeadlineMargin)
	o.RetryLaterMaxDelay = min(max(o.RetryLaterMaxDelay, o.RetryLaterMinDelay), maxVisibility)
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.OnEvent == nil {
		o.OnEvent = ack.OnEvent
	}
	if o.Logger == nil {
		o.Logger = ack.Logger
	}
	if o.Clock == nil {
		o.Clock = ack.Clock
	}
	return o
}

// retryLaterDelay is the visibility delay of a message received n times,
// rounded up to whole seconds (the unit of SQS visibility timeouts), so
// that a sub-second delay never becomes 0, a redelivery at once.
func (o *ConsumerOptions) retryLaterDelay(n int) time.Duration {
	d := o.RetryLaterMinDelay
	for i := 1; i < n && d < o.RetryLaterMaxDelay; i++ {
		d *= 2
	}
	return (min(d, o.RetryLaterMaxDelay) + time.Second - 1).Truncate(time.Second)
}

// Consumer reads callback step messages from an SQS queue and answers the
// steps: Executing messages through Handler.Execute, Stopping messages
// through Handler.Cleanup and Acknowledger.AckStopping.
//
// Delivery is at least once, and the Consumer keeps these rules:
//   - A message is deleted only after SageMaker accepted the answer to its
//     step, or said the step was already answered or does not exist, or
//     when the handler said the step is answered elsewhere (ErrPending), or
//     when it is malformed and ConsumerOptions.DeleteMalformed is set.
//   - A message that could not be finished becomes visible again after a
//     delay that grows with its receive count, never at once (so a poison
//     message reaches the redrive policy without a redelivery storm), except
//     on shutdown, when unfinished messages are made visible at once.
//   - Messages for the same callback token that are in the Consumer's
//     hands at the same time share one fate: a duplicate is held (its
//     visibility extended) and deleted or handed back with the first; a
//     Stopping message cancels the running Execute for its token first
//     (context.Cause is ErrStepStopping), and the step is answered once,
//     by the stop, never both ways.
//   - Tokens whose steps were answered are remembered (the last few
//     thousand), so a late duplicate is deleted without running the
//     handler again. Tokens that Execute handed off with ErrPending are
//     remembered too: a late Executing duplicate is deleted without running
//     Execute, while a Stopping message still runs Cleanup and answers.
//   - When Run returns, every message it received has been deleted or made
//     visible again.
//
// The per-token rules are a state machine whose table heads the file
// consumer_token.go in this package's source.
//
// A Consumer is safe for concurrent use, but Run may run only once at a
// time.
type Consumer struct {
	queue    QueueAPIClient
	queueURL string
	ack      *Acknowledger
	handler  Handler
	opts     ConsumerOptions
	obs      Options // the observer: OnEvent, Logger, Clock
	running  atomic.Bool
}

// NewConsumer returns a Consumer of the queue at queueURL that answers
// through ack. The error matches ErrInvalidConsumer when queue, ack or
// handler.Execute is nil or queueURL is empty.
func NewConsumer(queue QueueAPIClient, queueURL string, ack *Acknowledger, handler Handler, optFns ...func(*ConsumerOptions)) (*Consumer, error) {
	switch {
	case queue == nil:
		return nil, fmt.Errorf("%w: the SQS client is nil", ErrInvalidConsumer)
	case queueURL == "":
		return nil, fmt.Errorf("%w: the queue URL is empty", ErrInvalidConsumer)
	}
	c, err := newHandling(ack, handler, optFns)
	if err != nil {
		return nil, err
	}
	c.queue, c.queueURL = queue, queueURL
	return c, nil
}

// newHandling checks and builds what a Consumer and a BatchHandler share:
// the acknowledger, the handler and the options with their defaults.
func newHandling(ack *Acknowledger, handler Handler, optFns []func(*ConsumerOptions)) (*Consumer, error) {
	switch {
	case ack == nil:
		return nil, fmt.Errorf("%w: the Acknowledger is nil", ErrInvalidConsumer)
	case handler.Execute == nil:
		return nil, fmt.Errorf("%w: Handler.Execute is nil", ErrInvalidConsumer)
	}
	var o ConsumerOptions
	for _, fn := range optFns {
		fn(&o)
	}
	o = o.withDefaults(ack.options(nil))
	obs := Options{OnEvent: o.OnEvent, Logger: o.Logger, Clock: o.Clock}.withDefaults()
	return &Consumer{ack: ack, handler: handler, opts: o, obs: obs}, nil
}

// Run receives and handles messages until ctx ends, then shuts down:
// receiving stops, messages received but not yet handled are made visible
// at once, running handlers get ConsumerOptions.DrainTimeout to finish
// (then their contexts are canceled with the cause ErrConsumerShutdown),
// and the deletes and visibility changes still due are made. When Run
// returns, every message it received has been deleted or made visible
// again (or SQS refused it and it becomes visible when its visibility
// timeout ends), and every goroutine it started has ended.
//
// Failed receives are retried with backoff (ReceiveRetryMinDelay to
// ReceiveRetryMaxDelay) when they are transient; a permanent receive error
// (a queue that does not exist, access denied) shuts the Consumer down and
// is returned. After ctx ends Run returns nil. A Consumer not made by
// NewConsumer returns an error matching ErrInvalidConsumer.
func (c *Consumer) Run(ctx context.Context) error {
	if c == nil || c.queue == nil || c.ack == nil || c.handler.Execute == nil || c.queueURL == "" || c.opts.Clock == nil {
		return fmt.Errorf("%w: the Consumer was not made by NewConsumer", ErrInvalidConsumer)
	}
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("pipelinestop: Consumer.Run is already running")
	}
	defer c.running.Store(false)

	keeper := newQueueKeeper(c)
	r := newRun(ctx, c, keeper)
	defer r.cancelWork(ErrConsumerShutdown)
	queueCtx, cancelQueue := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelQueue()
	stopKeeper := make(chan struct{})
	keeperDone := make(chan struct{})
	go func() {
		defer close(keeperDone)
		keeper.keep(queueCtx, stopKeeper)
	}()

	err := r.receiveLoop(ctx)

	// Shut down: hand back what was not started, drain what runs.
	r.shutdown()
	slotsDone := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(slotsDone)
	}()
	if c.opts.DrainTimeout < 0 {
		r.cancelWork(ErrConsumerShutdown)
	}
	select {
	case <-slotsDone:
	case <-c.opts.Clock.After(max(c.opts.DrainTimeout, 0)):
		r.cancelWork(ErrConsumerShutdown)
		<-slotsDone
	}
	r.cancelWork(ErrConsumerShutdown)
	keeper.releaseHeld()
	close(stopKeeper)
	// The last deletes get shutdownFlushTimeout of real time: the
	// process is usually about to exit.
	timer := time.NewTimer(shutdownFlushTimeout)
	defer timer.Stop()
	select {
	case <-keeperDone:
	case <-timer.C:
		cancelQueue()
		<-keeperDone
	}
	return err
}
