package pipelinestoplambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop"
)

// ErrInvalidEvent matches the errors of an event Handle cannot handle at
// all, and of a Handler not made by New. Lambda then retries the whole
// batch, and the queue's redrive policy ends the retries.
var ErrInvalidEvent = errors.New("pipelinestoplambda: invalid event")

// ErrNotStarted is the error of a FIFO record reported without running
// its handler, because an earlier record of the batch was not done.
var ErrNotStarted = errors.New("pipelinestoplambda: not started: an earlier record of the FIFO batch was not done")

// VisibilityAPIClient is the part of the SQS API Handle uses to set the
// retry delay of a reported record. *sqs.Client satisfies it.
type VisibilityAPIClient interface {
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

var _ VisibilityAPIClient = (*sqs.Client)(nil)

// Limits of SQS and of the visibility changes.
const (
	maxVisibility   = 12 * time.Hour  // longest visibility timeout
	maxBatchEntries = 10              // entries in one ChangeMessageVisibilityBatch
	visibilityTime  = 2 * time.Second // for the changes when ctx has no deadline
)

// Options configure a Handler.
type Options struct {
	// ConsumerOptions configure the pipelinestop.BatchHandler: Concurrency,
	// RetryLaterMinDelay and RetryLaterMaxDelay, DeleteMalformed,
	// DeadlineMargin, OnEvent, Logger and Clock apply.
	ConsumerOptions []func(*pipelinestop.ConsumerOptions)
	// Queue, when set, changes the visibility of reported records so that
	// they come back after their retry-later delay (or at once when they
	// were not started) rather than after the queue's visibility timeout.
	// Nil (the default) leaves the visibility alone.
	Queue VisibilityAPIClient
	// Logger receives a warning when a visibility change fails. Default:
	// slog.Default().
	Logger *slog.Logger
	// ClientOptions are passed to every SQS call.
	ClientOptions []func(*sqs.Options)
}

// Handler answers callback steps from the SQS events of a Lambda function.
// It is safe for concurrent use, and remembers answered steps across the
// invocations of a warm execution environment.
type Handler struct {
	batch *pipelinestop.BatchHandler
	opts  Options

	mu        sync.Mutex
	queueURLs map[string]string // queue ARN → URL, for visibility changes
}

// New returns a Handler that runs handler's Execute and Cleanup and answers
// through ack. The error matches pipelinestop.ErrInvalidConsumer when ack or
// handler.Execute is nil.
func New(ack *pipelinestop.Acknowledger, handler pipelinestop.Handler, optFns ...func(*Options)) (*Handler, error) {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	b, err := pipelinestop.NewBatchHandler(ack, handler, o.ConsumerOptions...)
	if err != nil {
		return nil, fmt.Errorf("new lambda handler: %w", err)
	}
	return &Handler{batch: b, opts: o, queueURLs: map[string]string{}}, nil
}

// Handle handles the records of an SQS event and lists in the response,
// by messageId, every record that is not done, for Lambda to deliver again
// (see the package documentation). Its error, matching ErrInvalidEvent, is
// only for an event it cannot handle at all: a record without a messageId,
// or a Handler not made by New. Pass it to lambda.Start as h.Handle.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	if h == nil || h.batch == nil {
		return events.SQSEventResponse{}, fmt.Errorf("%w: the Handler was not made by New", ErrInvalidEvent)
	}
	msgs := make([]pipelinestop.BatchMessage, len(ev.Records))
	for i, r := range ev.Records {
		if r.MessageId == "" {
			return events.SQSEventResponse{}, fmt.Errorf("%w: record %d has no messageId", ErrInvalidEvent, i)
		}
		msgs[i] = pipelinestop.BatchMessage{ID: r.MessageId, Body: r.Body, ReceiveCount: receiveCount(r)}
	}
	var outcomes []pipelinestop.MessageOutcome
	if isFIFO(ev) {
		outcomes = h.handleFIFO(ctx, msgs)
	} else {
		outcomes = h.batch.HandleBatch(ctx, msgs)
	}
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	reported := map[string]bool{}
	var changes []visibilityChange
	for i, r := range ev.Records {
		var oc pipelinestop.MessageOutcome
		if i < len(outcomes) {
			oc = outcomes[i]
		} // else: no outcome (never expected): report it, to be safe
		if oc.Disposition == pipelinestop.DispositionDelete || reported[r.MessageId] {
			continue
		}
		reported[r.MessageId] = true
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		if c, ok := h.visibilityChange(r, oc); ok {
			changes = append(changes, c)
		}
	}
	h.setVisibility(ctx, changes)
	return resp, nil
}

// receiveCount is the record's ApproximateReceiveCount, 0 if unknown.
func receiveCount(r events.SQSMessage) int {
	n, err := strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// isFIFO reports whether the event comes from a FIFO queue.
func isFIFO(ev events.SQSEvent) bool {
	for _, r := range ev.Records {
		if strings.HasSuffix(r.EventSourceARN, ".fifo") {
			return true
		}
	}
	return false
}

// handleFIFO handles a FIFO batch in order. Each step takes the first
// unhandled record together with the later records of the same message ID
// or callback token (so that duplicates are answered once and a stop wins
// over the step's Executing message); at the first record that is not
// done, it and every later record are reported, and no later handler runs.
func (h *Handler) handleFIFO(ctx context.Context, msgs []pipelinestop.BatchMessage) []pipelinestop.MessageOutcome {
	out := make([]pipelinestop.MessageOutcome, len(msgs))
	keys := make([]string, len(msgs))
	for i, m := range msgs {
		keys[i] = "id:" + m.ID
		if cm, err := pipelinestop.ParseCallbackMessage(m.Body); err == nil {
			keys[i] = "token:" + string(cm.Token)
		}
	}
	handled := make([]bool, len(msgs))
	failed := -1
	for i := range msgs {
		if handled[i] {
			continue
		}
		var idx []int
		var group []pipelinestop.BatchMessage
		for j := i; j < len(msgs); j++ {
			if !handled[j] && (keys[j] == keys[i] || msgs[j].ID == msgs[i].ID) {
				idx = append(idx, j)
				group = append(group, msgs[j])
			}
		}
		done := true
		for k, oc := range h.batch.HandleBatch(ctx, group) {
			out[idx[k]] = oc
			handled[idx[k]] = true
			done = done && oc.Disposition == pipelinestop.DispositionDelete
		}
		if !done {
			failed = i
			break
		}
	}
	if failed < 0 {
		return out
	}
	for j := failed + 1; j < len(msgs); j++ {
		if !handled[j] || out[j].Disposition == pipelinestop.DispositionDelete {
			// Not started, or done but after the failure: Lambda wants it
			// back all the same; a done step's message is deleted
			// without running a handler when it comes back.
			out[j] = pipelinestop.MessageOutcome{ID: msgs[j].ID, Disposition: pipelinestop.DispositionRetryNow, Err: ErrNotStarted}
		}
	}
	return out
}

// visibilityChange is a reported record's new visibility timeout.
type visibilityChange struct {
	queueARN, messageID, receiptHandle string
	seconds                            int32
}

// visibilityChange returns the change for a reported record: its
// retry-later delay, or 0 (at once) when it was not handled. There is none
// without Options.Queue, and none for FIFO records reported only because
// an earlier one failed: their group waits for the failed record anyway.
func (h *Handler) visibilityChange(r events.SQSMessage, oc pipelinestop.MessageOutcome) (visibilityChange, bool) {
	if h.opts.Queue == nil || r.ReceiptHandle == "" || errors.Is(oc.Err, ErrNotStarted) {
		return visibilityChange{}, false
	}
	var timeout time.Duration
	switch oc.Disposition {
	case pipelinestop.DispositionRetryLater:
		if oc.Delay <= 0 {
			return visibilityChange{}, false
		}
		timeout = min(oc.Delay, maxVisibility)
	case pipelinestop.DispositionRetryNow:
		timeout = 0
	default:
		return visibilityChange{}, false
	}
	return visibilityChange{queueARN: r.EventSourceARN, messageID: r.MessageId, receiptHandle: r.ReceiptHandle,
		seconds: int32(math.Ceil(timeout.Seconds()))}, true
}

// setVisibility makes the changes, in batches of ten per queue, within
// ctx's deadline (the answers are in; what the margin leaves is for this)
// or visibilityTime when ctx has none. A change that fails leaves the
// queue's visibility timeout in force, and is logged.
func (h *Handler) setVisibility(ctx context.Context, changes []visibilityChange) {
	if len(changes) == 0 {
		return
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(visibilityTime)
	}
	cctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	byQueue := map[string][]visibilityChange{}
	var queues []string
	for _, c := range changes {
		if _, seen := byQueue[c.queueARN]; !seen {
			queues = append(queues, c.queueARN)
		}
		byQueue[c.queueARN] = append(byQueue[c.queueARN], c)
	}
	for _, arn := range queues {
		cs := byQueue[arn]
		url, err := h.queueURL(cctx, arn)
		if err != nil {
			h.warn(ctx, cs, err)
			continue
		}
		for len(cs) > 0 {
			n := min(len(cs), maxBatchEntries)
			batch := cs[:n]
			cs = cs[n:]
			in := &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url)}
			for i, c := range batch {
				in.Entries = append(in.Entries, sqstypes.ChangeMessageVisibilityBatchRequestEntry{
					Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(c.receiptHandle), VisibilityTimeout: c.seconds,
				})
			}
			out, err := h.opts.Queue.ChangeMessageVisibilityBatch(cctx, in, h.opts.ClientOptions...)
			if err != nil {
				h.warn(ctx, batch, err)
				continue
			}
			for _, f := range out.Failed {
				if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= 0 && i < len(batch) {
					h.warn(ctx, batch[i:i+1], fmt.Errorf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message)))
				}
			}
		}
	}
}

// warn logs visibility changes that were not made.
func (h *Handler) warn(ctx context.Context, cs []visibilityChange, err error) {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.messageID
	}
	h.opts.Logger.WarnContext(ctx, "pipelinestoplambda: could not set the retry delay; the queue's visibility timeout applies",
		"messageIds", ids, "err", pipelinestop.RedactCredentials(err.Error()))
}

// queueURL returns the URL of the queue with the given ARN
// (arn:aws:sqs:REGION:ACCOUNT:NAME), asked once per ARN with GetQueueUrl.
func (h *Handler) queueURL(ctx context.Context, arn string) (string, error) {
	h.mu.Lock()
	url, ok := h.queueURLs[arn]
	h.mu.Unlock()
	if ok {
		return url, nil
	}
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[2] != "sqs" || parts[5] == "" {
		return "", fmt.Errorf("%w: eventSourceARN %q is not an SQS queue ARN", ErrInvalidEvent, arn)
	}
	out, err := h.opts.Queue.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{
		QueueName:              aws.String(parts[5]),
		QueueOwnerAWSAccountId: aws.String(parts[4]),
	}, h.opts.ClientOptions...)
	if err != nil {
		return "", fmt.Errorf("get queue URL: %w", err)
	}
	url = aws.ToString(out.QueueUrl)
	h.mu.Lock()
	h.queueURLs[arn] = url
	h.mu.Unlock()
	return url, nil
}
