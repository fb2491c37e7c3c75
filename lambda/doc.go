// Package pipelinestoplambda answers SageMaker Pipelines callback steps
// from an AWS Lambda function whose event source is the callback queue,
// with the same rules as pipelinestop.Consumer and with partial batch
// responses:
//
//	h, err := pipelinestoplambda.New(pipelinestop.NewAcknowledger(sagemaker.NewFromConfig(cfg)),
//		pipelinestop.Handler{Execute: execute, Cleanup: cleanup})
//	...
//	lambda.Start(h.Handle)
//
// It is a module of its own (github.com/pipelinestop/pipelinestop/lambda)
// so that the core module never depends on aws-lambda-go; its package name
// is pipelinestoplambda so that it does not clash with aws-lambda-go's
// lambda package, which the same main package imports for lambda.Start.
//
// # What the handler returns
//
// Handle converts the event's records to pipelinestop.BatchMessage values
// and hands them to a pipelinestop.BatchHandler, which keeps the
// Consumer's per-token rules: an Executing message runs Execute and answers
// the step; a Stopping message runs Cleanup and answers through
// Acknowledger.AckStopping; both messages of one token in one batch get one
// answer, by the stop, and Execute is not run (or is canceled); duplicates
// are answered once; ErrPending is done; a panic fails the step.
//
// Every record that is not done is listed in the response's
// BatchItemFailures by its messageId, so that Lambda deletes the others
// and only these come back: a RetryLater error, an answer SageMaker did not
// take, a malformed body (unless ConsumerOptions.DeleteMalformed is set,
// then it is dropped), and what was not finished before the deadline.
// Handle never returns an error for a record: an error fails the whole
// batch and answers the other steps twice. It returns one, matching
// ErrInvalidEvent, only for an event it cannot handle at all: a record
// without a messageId (it could not be reported, and an empty
// itemIdentifier fails the batch anyway), or a Handler not made by New.
//
// Partial batch responses count only when the event source mapping has
// FunctionResponseTypes ["ReportBatchItemFailures"]; without it Lambda
// ignores them and deletes the whole batch when Handle returns. Run the
// preflight check (package github.com/pipelinestop/pipelinestop/lambdacheck,
// or "stopctl lambda check --function NAME") after deploying.
//
// # Time
//
// The Lambda context's deadline bounds the batch: no new work starts after
// the deadline minus ConsumerOptions.DeadlineMargin, running handlers are
// canceled then (context.Cause is pipelinestop.ErrDeadline), and what was
// not finished is reported as batch item failures.
//
// # FIFO queues
//
// For a FIFO queue (an eventSourceARN ending in ".fifo") Lambda requires
// that after the first failure the failed record and every later record be
// reported. Handle then works through the batch in order, one record at a
// time (with the later records of the same callback token or message ID, so
// that a stop still wins over an Executing message of its step); at the
// first record that is not done it stops, and reports that record and
// every later one without running their handlers.
//
// # Retry delays
//
// Without an SQS client a reported record comes back when the queue's
// visibility timeout ends. With Options.Queue set, Handle changes the
// visibility of each record reported with a retry-later delay to that
// delay (ChangeMessageVisibilityBatch with the records' receipt handles,
// within what is left of the invocation's time), so a
// transient failure is retried after the Consumer's growing delay rather
// than the queue's timeout, and of each record not started before the
// deadline to zero, so it is retried at once. A failed visibility change
// only leaves the queue's timeout in force. The function's role then
// needs sqs:ChangeMessageVisibility and sqs:GetQueueUrl on the queue.
package pipelinestoplambda
