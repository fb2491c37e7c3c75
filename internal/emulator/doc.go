// Package emulator is a local Amazon SageMaker Pipelines and Amazon SQS
// emulator that speaks the real AWS wire protocols, so that the real
// aws-sdk-go-v2 clients (and tools such as the AWS CLI with --endpoint-url)
// are exercised end to end without an AWS account.
//
// # Server
//
// One HTTP/1.1 server on a loopback address serves SageMaker (AWS JSON 1.1,
// X-Amz-Target: SageMaker.<Operation>) and SQS (AWS JSON 1.0,
// X-Amz-Target: AmazonSQS.<Operation>). Every answer carries an
// x-amzn-RequestId header. Signatures and credentials are accepted
// unchecked. Timestamps are written as epoch seconds (JSON numbers with
// millisecond precision). Errors are written as the services write them:
//
//   - SageMaker: {"__type": "<Code>", "Message": "..."} with HTTP 400 for
//     client errors (ValidationException, ConflictException,
//     ResourceNotFound, ThrottlingException), so the SDK decodes
//     *types.ConflictException and *types.ResourceNotFound and a
//     smithy.APIError with code "ValidationException".
//   - SQS: {"__type": "com.amazonaws.sqs#<Shape>", "message": "..."} plus the
//     awsQuery-compatible header x-amzn-query-error: <code>;Sender, so the SDK
//     decodes for example *types.QueueDoesNotExist (whose ErrorCode() is then
//     "AWS.SimpleQueueService.NonExistentQueue", as against real SQS).
//   - An unknown X-Amz-Target or operation: HTTP 400 UnknownOperationException
//     (and a Warn log). A body that is not JSON or cannot be read: HTTP 400
//     SerializationException. A body over 16 MiB: HTTP 413.
//
// # SageMaker operations
//
// CreatePipeline, DescribePipeline, StartPipelineExecution,
// DescribePipelineExecution, ListPipelineExecutions,
// ListPipelineExecutionSteps, StopPipelineExecution,
// SendPipelineExecutionStepSuccess and SendPipelineExecutionStepFailure.
// Inputs are checked against the documented constraints (execution ARN
// pattern and length, ClientRequestToken 32 to 128 characters, callback
// token exactly 10 characters [a-zA-Z0-9], at most 50 output parameters with
// names of at most 256 and values of at most 1024 characters, FailureReason
// at most 256, MaxResults 1 to 100) and answered ValidationException
// otherwise.
//
// A pipeline definition is JSON {"Version": ..., "Steps": [...]}. Steps of
// Type "Callback" need SqsQueueUrl, steps of Type "Lambda" need
// FunctionArn; every other Type is a generic step. Unknown fields are
// ignored. Duplicate names, unknown or self dependencies, cycles, a missing
// Name, Type, SqsQueueUrl or FunctionArn, an unknown OutputType, no steps
// and bad JSON are rejected with a ValidationException that says why.
// PipelineDefinitionS3Location is not supported. A second CreatePipeline
// with the same name is a ValidationException unless it repeats the first
// call's ClientRequestToken.
//
// StartPipelineExecution is idempotent per pipeline on ClientRequestToken.
// Steps without dependencies start at once; a step starts when all its
// DependsOn steps Succeeded; steps are listed by ListPipelineExecutionSteps
// once started (newest first unless SortOrder is Ascending), each with
// AttemptCount 1 and, for callback and Lambda steps, their Metadata. Steps
// go straight to Executing (the Starting status is not used). Execution
// statuses are Executing, Stopping, Stopped, Failed and Succeeded.
// Pagination tokens are opaque; MaxResults defaults to 50.
//
// # Step behaviour
//
//   - A generic step runs Timing.StepDuration, then Succeeded. Stopped, it is
//     Stopping for Timing.StopDelay, then Stopped.
//   - A callback step, when it starts, gets a fresh 10-character token and
//     sends {"token", "pipelineExecutionArn", "arguments", "status":
//     "Executing"} to its SqsQueueUrl ("arguments" is the step's Arguments
//     object as written in the definition, values of any JSON type). It waits
//     for an answer without any timeout. Success: Succeeded with its
//     outputs, the next steps start. Failure: the step Failed with the
//     reason, the execution Failed with "Step <name> failed: <reason>".
//     Stopped while waiting, the step is Stopping and a second message for
//     the same token is sent with "status": "Stopping"; the execution stays
//     Stopping until either answer arrives, then the step and (once nothing
//     else runs) the execution are Stopped. When the emulator's own queue
//     does not exist the step fails at start; a message to an external
//     endpoint that cannot be delivered is logged and lost (the step waits
//     for ever, as a lost message makes real pipelines wait).
//   - A Lambda step's function runs Timing.LambdaRunTime; the step fails
//     when Timing.LambdaTimeout passes first (counted from the step's start),
//     with the reason "Lambda step <name> timed out after <d>", and the
//     execution Failed. Stopped, the step is Stopping and the execution stays
//     Stopping until the function finishes (Stopped) or times out (Failed).
//   - When a step fails, the other running steps are Stopped without
//     messages and later answers to them are conflicts.
//
// Durations can be overridden per step name with SetStepTiming; Forever
// makes a step run until stopped, answered or completed with CompleteStep.
// Timers use the real clock and all stop on Close.
//
// # Stopping and answering: the error contract
//
//   - StopPipelineExecution of an Executing execution records its
//     ClientRequestToken as the accepted stop and moves the execution to
//     Stopping, or straight to Stopped when no running step holds it.
//   - A repeated stop with the accepted token answers the same success, in
//     any later status. Any other stop of an execution that is not
//     Executing is a ValidationException whose message contains "Only
//     pipelines with 'Executing' status can be stopped".
//   - For Timing.ConflictWindow after each step or execution transition, a
//     new stop of an Executing execution is a ConflictException ("Pipeline
//     execution ... is transitioning between steps; try again").
//   - An unknown execution or callback token is ResourceNotFound (HTTP 400).
//   - A second Success or Failure for a callback step that was already
//     answered returns the same success when it repeats the accepted
//     answer's outcome and non-empty ClientRequestToken; otherwise, and for
//     any answer to a step that no longer waits (stopped or failed
//     execution), it is a ConflictException whose message contains "already
//     in a terminal status".
//
// # SQS operations
//
// In memory, standard queues only. FIFO queues (a name ending ".fifo" or
// FifoQueue "true") are refused with UnsupportedOperation "FIFO queues are
// not supported by this emulator".
//
// Queues: CreateQueue (with tags; the same name with different attribute
// values is QueueNameExists; a name deleted less than 60 s ago is
// QueueDeletedRecently), GetQueueUrl, GetQueueAttributes (no names means
// no attributes, as SQS answers), SetQueueAttributes, DeleteQueue,
// ListQueues (QueueNamePrefix, MaxResults 1 to 1000, NextToken),
// ListDeadLetterSourceQueues, TagQueue, UntagQueue, ListQueueTags and
// PurgeQueue (a second purge within 60 s is PurgeQueueInProgress, HTTP
// 403). Settable attributes: VisibilityTimeout (0 to 43200), DelaySeconds
// (0 to 900), ReceiveMessageWaitTimeSeconds (0 to 20), MaximumMessageSize
// (1024 to 1048576, default 1048576), MessageRetentionPeriod (60 to
// 1209600, enforced: older messages are dropped), Policy, RedrivePolicy,
// RedriveAllowPolicy, KmsMasterKeyId, KmsDataKeyReusePeriodSeconds and
// SqsManagedSseEnabled (stored, no effect). Any other name, FIFO-only ones
// included, is InvalidAttributeName; a bad value InvalidAttributeValue.
//
// Messages: SendMessage and SendMessageBatch (MD5OfMessageBody,
// MD5OfMessageAttributes and MD5OfMessageSystemAttributes as SQS computes
// them; message attributes of type String, Number and Binary with custom
// suffixes, at most 10, names and values checked as SQS documents;
// AWSTraceHeader as the only system attribute; the body plus attributes at
// most MaximumMessageSize, else InvalidParameterValue "Message must be
// shorter than N bytes"; a batch's total over it is BatchRequestTooLong;
// characters outside the XML set SQS allows are InvalidMessageContents),
// ReceiveMessage (1 to 10 messages, oldest first; WaitTimeSeconds 0 to 20
// long polling that returns as soon as a message is visible and when the
// emulator closes; a VisibilityTimeout override; MessageAttributeNames
// with "All", ".*" and "prefix.*"; system attributes
// ApproximateReceiveCount, SentTimestamp, ApproximateFirstReceiveTimestamp,
// SenderId, AWSTraceHeader, MessageGroupId and DeadLetterQueueSourceArn on
// request), DeleteMessage, DeleteMessageBatch, ChangeMessageVisibility and
// ChangeMessageVisibilityBatch (batches: 1 to 10 distinct entry IDs of
// letters, digits, '-' and '_'; per-entry failures in Failed). Empty
// Messages, Attributes, Tags and QueueUrls members are left out, as SQS
// leaves them out. Queue URLs are <endpoint>/<account>/<name>; the host of
// a given URL is not checked.
//
// Receipt handles follow SQS: each receive gives a new handle and only the
// latest one acts. A delete with an older handle succeeds and deletes
// nothing (counted under the Requests key StaleDeletes); visibility can
// be changed only with the latest handle of a message in flight, and for
// at most 12 hours counted from that receive; a handle the queue never
// gave is ReceiptHandleIsInvalid.
//
// Redrive: a RedrivePolicy {"deadLetterTargetArn", "maxReceiveCount"}
// (1 to 1000) naming an existing queue of the same account and Region
// other than the queue itself moves a message to that queue instead of
// delivering it once it has been received maxReceiveCount times.
//
// # Choices where AWS documents nothing (SQS and the wire)
//
//   - A delete with a handle of a message deleted, purged, expired or moved
//     to its dead-letter queue succeeds without effect, as a second delete
//     does in SQS.
//   - A visibility change with an older handle, or one of a message no
//     longer in the queue, is InvalidParameterValue "Value <handle> for
//     parameter ReceiptHandle is invalid. Reason: The receipt handle has
//     expired." (what SQS answers for expired handles); with the latest
//     handle of a message not in flight (its timeout passed or was set to
//     0) it is MessageNotInflight. The latest handle still deletes a
//     message that is no longer in flight.
//   - The 12-hour limit counts whole seconds since the latest receive; the
//     error is InvalidParameterValue "Total VisibilityTimeout for the
//     message is beyond the limit [43200 seconds]".
//   - Dead-lettering happens when a receive finds the message visible with
//     its receive count at maxReceiveCount. It keeps MessageId, body,
//     attributes, SentTimestamp (so retention counts from the first send)
//     and its receive count, and gains DeadLetterQueueSourceArn. When the
//     dead-letter queue no longer exists, messages stay and are delivered.
//   - maxReceiveCount may be given as a number or a numeric string and
//     reads back as a number; a policy naming the queue itself or an
//     unknown queue is InvalidAttributeValue.
//   - MD5OfMessageAttributes on a receive covers the attributes returned.
//   - FifoQueue "false" is accepted and ignored; MessageGroupId on a
//     standard queue is stored and returned as a system attribute;
//     MessageDeduplicationId is InvalidParameterValue.
//   - SqsManagedSseEnabled reads "true" unless set.
//   - ListQueues pages in name order; NextToken only when MaxResults is
//     given (SQS returns none without it).
//   - A request body over 16 MiB is HTTP 413 RequestEntityTooLarge; a body
//     that cannot be read (a malformed chunked encoding) is HTTP 400
//     SerializationException; calls to operations not served are logged
//     at Warn level; callback tokens in logged error messages are shown as
//     their first two characters and asterisks.
//
// # Faults and counters
//
// Faults (SetFaults, changeable while running, all off by default) inject
// per-operation token-bucket throttling (ThrottlingException, HTTP 400),
// a fraction of HTTP 500 InternalFailure and 503 ServiceUnavailable
// answers, latency with jitter, and connections closed before or after the
// operation runs. They apply to SageMaker operations, and to SQS
// operations when Faults.IncludeSQS is set or a rate limit names the SQS
// operation. Random choices are deterministic for a given Config.Seed and
// request order.
//
// Counters let tests assert protocol properties: Requests and Counters
// (requests per operation), StopTokens, AcceptedStopToken, EffectiveStops
// and StopCalls per execution ("exactly one effective stop"), and Answers
// per callback token ("no step answered twice with different outcomes"),
// CallbackMessages (every callback step message sent, in order) and the
// Requests key StaleDeletes (deletes that succeeded without effect).
// Operations lists the operation names they and Faults.RateLimits take.
//
// # Callback messages to another SQS
//
// With Config.CallbackQueueEndpoint (or Config.CallbackSender) callback
// messages are sent with SendMessage to that endpoint, in order, from one
// goroutine, using the step's SqsQueueUrl unchanged, for example a queue of
// a moto_server.
package emulator
