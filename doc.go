// Package pipelinestop stops Amazon SageMaker Pipelines executions
// properly: with an idempotent, retried StopPipelineExecution, a wait for a
// terminal status that says why an execution is still Stopping, and the
// answers to callback steps that a stop needs.
//
// # Stopping
//
// A Stopper wraps a *sagemaker.Client (or anything with the three calls of
// StopAPIClient):
//
//	s := pipelinestop.New(sagemaker.NewFromConfig(cfg))
//	out, err := s.StopAndWait(ctx, executionARN)
//
// Stop sends one StopPipelineExecution and retries it while SageMaker
// answers ConflictException (the execution is moving between steps, a race
// that can last seconds: every Options.ConflictInterval, 200 ms), throttles,
// or fails with a 5xx (with exponential backoff and jitter), until
// Options.RetryBudget is spent or the context ends. It never sleeps past
// the context's deadline, so it fits shutdown hooks with tight deadlines.
// Wait polls DescribePipelineExecution with a delay that grows with the
// time waited (a fifth of it, from Options.MinDelay to Options.MaxDelay),
// treats every
// status other than Executing and Stopping as terminal (including
// CompletedWithFailures and statuses added after this SDK version), and
// while the execution is Stopping lists its steps to report what holds it.
// StopAll stops many executions with bounded concurrency; when SageMaker
// throttles, the calls of each Region share one pacer that finds the rate
// SageMaker admits there, so a shutdown hook stops hundreds of executions
// at that rate without losing any.
//
// # Regions and partitions
//
// Every call about an execution goes to the Region in its ARN, whatever
// Region the client was configured for: one Stopper (and one client)
// stops executions of several Regions. Each call gets the per-call option
//
//	func(o *sagemaker.Options) { o.Region = region }
//
// before Options.ClientOptions, so the SDK resolves that Region's
// endpoint, in its partition (api.sagemaker.cn-north-1.amazonaws.com.cn
// for cn-north-1), and signs the request for it. A call about an
// execution of the client's own Region is made exactly as without
// routing. The Acknowledger answers a callback step in the Region of its
// execution when told which execution it is (Options.CallbackExecutionARN);
// AckStopping, the Consumer and the BatchHandler take it from each
// message, since a callback token is known only in its execution's
// Region. StopAll paces each Region on its own, with a pacer and
// Options.Concurrency slots of its own: SageMaker throttles per account and
// Region, so a Region that throttles does not slow the others.
//
// Credentials of one partition do not sign for another: an execution
// whose Region is in another partition than the client's Region (an aws-cn
// execution, a client in us-east-1) is an *Error matching
// ErrPartitionMismatch, before any call; use a client of a Region of that
// partition. ParseExecutionARN rejects an ARN whose Region is not of the
// partition it names (arn:aws:sagemaker:cn-north-1:...), as an invalid ARN
// that also matches ErrPartitionMismatch. RegionPartition tells a Region's
// partition: aws, aws-cn (cn-*), aws-us-gov (us-gov-*), aws-iso
// (us-iso-*), aws-iso-b (us-isob-*), aws-iso-e (eu-isoe-*), aws-iso-f
// (us-isof-*), aws-eusc (eusc-de-*).
//
// A client with a BaseEndpoint keeps it when the Region changes: the call
// goes to that endpoint, signed (SigV4 credential scope) for the
// execution's Region. An emulator or proxy that serves several Regions and
// reads the scope wants exactly that. A VPC
// endpoint or a proxy of one Region does not: with one, set
// Options.DisableRegionRouting, and every call goes where the client sends
// it, as it did before routing (use a Stopper per Region for executions of
// several Regions). A Region set in Options.ClientOptions also wins over
// the routing.
//
// # Idempotency
//
// StopPipelineExecution takes a ClientRequestToken (32 to 128 characters)
// that makes it idempotent. The SDK fills a missing token with a random
// UUID per call, so a stop retried by application code, or by a restarted
// process, is a different request. The Stopper instead derives the token
// from the execution ARN (DeriveToken("StopPipelineExecution", arn)): every
// attempt, every restart and every replica sends the same token for the
// same execution, and SageMaker sees one stop. Options.Token overrides it;
// NewToken makes a random one.
//
// A replayed token is answered with success in any later status, so Stop
// does not take the answer for the status: it looks the status up after
// every answer and reports what it saw (StopResult.Status). One case needs
// more: RetryPipelineExecution runs a Failed execution again under the
// same ARN, and a token "completes no more than once", so the stop of an
// earlier round replays and stops nothing. Stop sees that as an accepted
// stop after which the execution still reads Executing, and stops it once
// more with a token of the current round: DeriveToken(
// "StopPipelineExecution", arn, round), or DeriveToken(Options.Token,
// round) for a caller's token, where round is the execution's
// LastModifiedTime (RFC 3339, nanoseconds, UTC) as Stop's lookup saw it.
// Replicas that see the same round send the same request. The lookup is
// one DescribePipelineExecution per Stop (two when it stops again); its
// failure does not fail the stop (StopResult.LookupErr).
//
// Callback answers are idempotent the same way: their token is derived
// from the operation, the callback token and the answer (the outputs
// sorted by name, or the failure reason as sent), so an answer repeated
// after an SQS redelivery is the same request, and a different answer to
// a step already answered is refused (ErrAlreadyAnswered).
//
// # Callback and Lambda steps
//
// A running callback step blocks a stop: SageMaker sends the step's SQS
// queue a second message, with status Stopping, and the execution stays
// Stopping until someone answers the step with
// SendPipelineExecutionStepSuccess or SendPipelineExecutionStepFailure.
// Nothing times this out: an unanswered step keeps the execution Stopping
// for ever. A running Lambda step blocks a stop too: the function cannot be
// stopped, and the execution ends Stopped when it returns or Failed when the
// step times out (Wait returns that as an Outcome, not an error).
//
// Wait reports such steps in Outcome.Blocking and, when its context ends
// first, in the *WaitError's message: a callback step with its queue URL
// (someone must answer it), a Lambda step with its function ARN (it must
// finish or time out). Callback tokens are secrets: the CallbackToken type
// prints redacted, and no error or log record of this package contains one
// (RedactedPrefix and RedactedSuffix cut a handler's own text without
// leaving a piece of the token at the cut). Nor do they contain AWS
// credentials, which the SDK's errors can quote (the output of a broken
// credential_process): see RedactCredentials.
//
// When nobody will answer (the consumer is down, the message went to a
// dead-letter queue), Options.Callbacks = CallbackFail lets a wait answer
// the blocking callback steps itself with a failure once
// Options.CallbackGrace has passed, so that the stop finishes; a step a
// real consumer answered first is left alone, and Lambda steps cannot be
// answered (Outcome.Answered lists what the wait answered).
//
// ParseCallbackMessage reads the messages SageMaker sends to a callback
// step's queue, an Acknowledger answers steps (AckStopping runs a cleanup
// and answers a Stopping message with success or failure), a Consumer runs
// the whole SQS loop, and a BatchHandler applies the Consumer's rules to
// messages the caller received itself (a Lambda function's SQS batch).
//
// # Waiting on events
//
// Wait polls DescribePipelineExecution with a growing delay; no schedule
// that does not know a stop's duration both notices short stops quickly and
// makes few calls on long ones. SageMaker also publishes EventBridge events
// for every execution and step status change (source "aws.sagemaker",
// detail-types ExecutionStatusChangeType and StepStatusChangeType); an
// EventBridge rule can send them to an SQS queue. A Watcher reads that
// queue, and a Wait given it in Options.Watcher subscribes to its
// execution, polls once, and then polls only when an event says the
// execution ended (events are hints: the poll is the truth) and every
// Options.SafetyInterval in case an event was lost. One Watcher serves any
// number of waits. Several processes can share a queue (WatcherOptions
// .HandBack), but a queue per process is better.
//
// # Delivery semantics
//
// SQS delivers callback messages at least once: a consumer can see a
// message twice, and the Executing and Stopping messages of one token can
// arrive in either order or at different consumers. The Consumer deletes a
// message only after SageMaker accepted its answer, or said the step was
// already answered or is gone; answers are idempotent (above), and an
// answer to a step that was already answered another way comes back as
// ErrAlreadyAnswered, which means "done". When the Executing and Stopping
// messages of one step reach two different consumers, both may answer:
// SageMaker accepts the first and refuses the second as already answered,
// so the step still ends with exactly one outcome. A message that cannot
// be parsed never answers a step: it is made visible again after a delay,
// for the queue's redrive policy, unless the consumer is told to delete
// it. See Consumer for visibility extension, retries and shutdown.
//
// # Errors
//
// Errors from SageMaker calls are *Error values. Each matches one sentinel
// with errors.Is and still reaches the SDK's error with errors.As, so both
// of these hold for one error:
//
//	errors.Is(err, pipelinestop.ErrNotFound)
//	errors.As(err, &notFound) // notFound *types.ResourceNotFound
//
// The sentinels: ErrConflict (transient race, retried), ErrThrottled and
// ErrUnavailable (retried), ErrNotFound (unknown execution or callback
// token), ErrNotRunning (nothing to stop, only with
// Options.FailIfNotRunning), ErrWaitTimeout (the context ended first; also
// matches the context's error), ErrInvalidARN, ErrInvalidToken and
// ErrInvalidCallback (bad input, reported before any call),
// ErrAlreadyAnswered (a callback step was already answered),
// ErrPartitionMismatch (an execution that cannot be reached from the
// client's partition, reported before any call). Classify gives
// the same classification to errors from SDK calls made by the caller.
//
// # Observability and time
//
// Options.OnEvent receives every attempt, retry (with its delay and
// cause), status change and change of blocking steps; Options.Logger gets
// the same as slog records (default: discarded). Options.Clock makes time
// injectable, so tests never sleep for real.
//
// # Testing your code
//
// Package pipelinestoptest (import
// "github.com/pipelinestop/pipelinestop/pipelinestoptest") is a SageMaker
// Pipelines, SQS and EventBridge emulator on 127.0.0.1 that the real SDK
// clients talk to, as net/http/httptest is to net/http: pipelines with
// callback, Lambda and generic steps, conflict windows, throttling and
// faults, one state per Region (Server.InRegion). The examples of this
// package run on it.
package pipelinestop
