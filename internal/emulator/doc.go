// Package emulator is a local Amazon SageMaker Pipelines, Amazon SQS and
// Amazon EventBridge emulator that speaks the real AWS wire protocols, so
// that the real aws-sdk-go-v2 clients (and tools such as the AWS CLI with
// --endpoint-url) are exercised end to end without an AWS account.
//
// # Server
//
// One HTTP/1.1 server on a loopback address serves SageMaker (AWS JSON 1.1,
// X-Amz-Target: SageMaker.<Operation>), SQS (AWS JSON 1.0,
// X-Amz-Target: AmazonSQS.<Operation>) and EventBridge (AWS JSON 1.1,
// X-Amz-Target: AWSEvents.<Operation>, see EventBridge below). Every answer carries an
// x-amzn-RequestId header. Signatures and credentials are accepted
// unchecked; the credential scope's Region picks the Region whose state a
// request reads and changes (see Regions and partitions). Timestamps are written as epoch seconds (JSON numbers with
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
// # Framing
//
// The emulator reads a request's whole body before it answers and builds
// every answer whole in memory: each is framed by Content-Length (as AWS
// frames its JSON answers), never chunked, whatever its size, and a 204
// has no body. Connections are kept alive between requests; the server
// sets no read, write or idle timeout other than 10 s to read a request's
// headers, and never closes a connection that another answer may use. The
// only connections it closes are those of the injected drop faults
// (Faults.DropRate and DropResponseRate), each its own request's
// connection, hijacked and closed without an answer, and all of them on
// Close.
//
// The SDK (smithy-go) may close its own connection under an answer of more
// than 4 KiB that a server on the same host sent before the SDK's
// transport finished writing the request (see internal/sdkbody): about 1
// to 5 ReceiveMessage calls of 10 messages in 100 failed that way with
// "use of closed network connection", with chunked and with Content-Length
// framing alike. The clients AWSConfig, SageMakerClient and SQSClient
// build carry sdkbody.NoWriteTo, which prevents it; SDK clients built
// otherwise against the emulator should add it to their APIOptions.
//
// # Regions and partitions
//
// The emulator keeps separate state per Region, as AWS does: pipelines,
// executions, callback tokens, queues, EventBridge rules, Lambda functions
// and event source mappings, rate limit buckets, counters and event and
// callback logs all live in one Region. A request's Region is the Region of
// its SigV4 credential scope (Credential=AKID/DATE/REGION/SERVICE/aws4_request
// in the Authorization header, or the X-Amz-Credential query parameter of a
// presigned URL); a request with neither is in Config.Region (the default
// Region, DefaultRegion unless set). A Region name that is not lowercase
// letters, digits and single hyphens (at most 32 characters), or a Region
// beyond the first MaxRegions, is answered HTTP 403
// InvalidSignatureException ("Credential should be scoped to a valid
// region").
//
// Design: the Emulator value is one Region's state and the sole owner of
// it. Start returns Config.Region's; the others are created on first use
// (a request or InRegion) from a regionSet that all of them share, the
// only owner of the Region map. The Regions share the server, the account,
// the real clock, the callback outbox and the emulator-wide settings:
// SetFaults, SetEventFaults, SetStepTiming, SetLambdaOutputs,
// SetConflictWindow and SetSQSClock reach every Region, current and later, and Close closes them
// all. What throttling and counting see is per Region: each Region has its
// own rate limit buckets (throttling is per account and Region) and its own
// counters (Requests, Counters; TotalRequests and RegionCounters add them
// up). A user who never names another Region sees one Region, as before.
// The inspection methods that take an execution ARN (ExecutionStatus,
// StopTokens, CompleteStep, WaitExecutionStatus, ...) act in the ARN's
// Region whichever Region's value they are called on; those that take a
// callback token act in the Region that issued it.
//
// ARNs are built in the partition of their Region (Partition): "aws-cn" for
// cn-north-1 and cn-northwest-1, "aws-us-gov" for us-gov-*, "aws-iso" for
// us-iso-*, "aws-iso-b" for us-isob-*, "aws-iso-e" for eu-isoe-*,
// "aws-iso-f" for us-isof-*, "aws" for the others; IAM ARNs (CreatedBy,
// roles) too. An ARN of another Region, partition or account names no
// resource of this Region: an execution or pipeline ARN is answered
// ResourceNotFound, a queue ARN (a redrive target, an event source, an
// EventBridge target) is not found, a full function ARN is not found, as
// each operation answers for any unknown resource. A callback token is
// answered in the Region of its execution only.
//
// Queue URLs: the default Region's keep the form ENDPOINT/ACCOUNT/NAME;
// other Regions' carry the Region in LocalStack's path style,
// ENDPOINT/queue/REGION/ACCOUNT/NAME (the emulator puts no AWS host in its
// URLs, so no partition's DNS suffix either). A queue URL's Region is read
// from that path, else from an AWS host (sqs.REGION.amazonaws.com,
// sqs.REGION.amazonaws.com.cn, REGION.queue.amazonaws.com), else it is the
// default Region; a URL of another Region names no queue (QueueDoesNotExist).
// A callback step sends to the queue of its execution's Region. Events go
// to the rules of the execution's Region only, with that Region in the
// envelope; Lambda functions see their Region in AWS_REGION and in the
// records' awsRegion.
//
// # SageMaker operations
//
// CreatePipeline, UpdatePipeline, DeletePipeline, DescribePipeline,
// ListPipelines, StartPipelineExecution, DescribePipelineExecution,
// DescribePipelineDefinitionForExecution, ListPipelineExecutions,
// ListPipelineExecutionSteps, ListPipelineParametersForExecution,
// StopPipelineExecution, RetryPipelineExecution,
// SendPipelineExecutionStepSuccess and SendPipelineExecutionStepFailure.
// Inputs are checked against the service model's constraints (execution
// ARN pattern and length, pipeline and display name patterns, RoleArn
// pattern, ClientRequestToken 32 to 128 characters and required where the
// model requires it (the SDKs fill it in), callback token exactly 10
// characters [a-zA-Z0-9], at most 50 output parameters with names of at
// most 256 and values of at most 1024 characters, FailureReason at most
// 256, MaxResults 1 to 100, SortOrder and SortBy enums,
// MaxParallelExecutionSteps at least 1) and answered ValidationException
// otherwise.
//
// Pipelines: UpdatePipeline changes the members it is given (a new
// definition is checked as at creation), adds one to the PipelineVersionId
// it returns and sets LastModifiedTime; executions already started keep the
// definition they started with (DescribePipelineDefinitionForExecution
// returns it). DescribePipeline and StartPipelineExecution know only the
// latest version; another PipelineVersionId is a ValidationException.
// SelectiveExecutionConfig is refused as not supported. DeletePipeline of a pipeline
// with an Executing or Stopping execution is a ConflictException (SageMaker
// documents nothing here: the emulator refuses rather than strand a running
// execution); otherwise the pipeline, its executions and their callback
// tokens are forgotten (ResourceNotFound afterwards) and the name is free
// again; a repeat with the same ClientRequestToken answers the same
// success. ListPipelines filters by PipelineNamePrefix, CreatedAfter and
// CreatedBefore (both exclusive) and sorts by CreationTime (default) or
// Name; ListPipelineExecutions filters by CreatedAfter and CreatedBefore
// and sorts by CreationTime (default) or PipelineExecutionArn; both are
// newest (or last) first unless SortOrder is Ascending.
// ListPipelineParametersForExecution lists every declared parameter in
// definition order with the value the execution used (given or default),
// written as a string.
//
// Fields: CreatedBy and LastModifiedBy carry only IamIdentity, as
// SageMaker answers API callers that are IAM principals rather than Studio
// users. Signatures are not checked, so the emulator takes the access key
// ID of the request's signature for the principal: Arn
// arn:aws:iam::<account>:user/<access key ID> and PrincipalId the key ID
// ("anonymous" when unsigned). CreatePipeline and StartPipelineExecution
// set both; UpdatePipeline, and an effective stop or retry of an
// execution, set LastModifiedBy. Pipelines and executions created with the
// emulator's Go helpers (CreatePipeline, StartExecution) have empty ones.
// A failed execution's FailureReason is always "Step failure: One or
// multiple steps failed." (ExecutionFailureReason), in
// DescribePipelineExecution and in ListPipelineExecutions' summaries, as
// SageMaker writes it; the failed step's own FailureReason says why.
// PipelineExperimentConfig is the definition's, resolved when the
// execution starts, and left out when the definition has none.
// ParallelismConfiguration is returned when set. PipelineVersionId is the
// pipeline's version when the execution started.
//
// # Pipeline definitions
//
// A pipeline definition is JSON {"Version": "2020-12-01", "Parameters":
// [...], "PipelineExperimentConfig": {...}, "Steps": [...]}. It is checked
// at CreatePipeline and UpdatePipeline, and everything below is a
// ValidationException whose message starts "Invalid PipelineDefinition: "
// and says why: bad JSON; a missing Version or one other than
// "2020-12-01"; no Steps; a step without Name or Type; a step name that
// does not match ^[A-Za-z0-9\-_]{1,64}$ (a space, for example) or is used
// twice (branch steps included); a Type that is not one of the schema's
// (Training, Processing, Transform, Tuning, CreateModel, RegisterModel,
// Model, ClarifyCheck, QualityCheck, EMR, EMRServerless, AutoML,
// Condition, Fail, Callback, Lambda); a callback step whose SqsQueueUrl is
// not an http(s) URL of the form <scheme>://<host>/<12-digit
// account>/<queue name> (the host is not checked, so the emulator's own
// URLs pass); a Lambda step whose FunctionArn is not a function ARN
// (arn:aws:lambda:<region>:<account>:function:<name>[:<version or
// alias>]: a bare function name is refused); OutputParameters on any other
// step type, an unnamed, repeated or unknown-typed output (String,
// Integer, Boolean or Float); DependsOn naming an unknown step or the
// step itself; a dependency cycle (DependsOn, property references and
// branches together); a parameter with an unknown Type, a name not
// matching ^[A-Za-z0-9\-_]{1,256}$, a repeated name, EnumValues on a
// non-String parameter, or a DefaultValue of the wrong type (an Integer
// parameter's default 1.5 or "ten"); an invalid property reference (see
// below); a Condition step without Conditions or with an unknown or
// malformed condition. Unknown fields of a step are ignored (generic steps
// carry their job's request in Arguments). PipelineDefinitionS3Location is
// not supported. A second CreatePipeline with the same name is a
// ValidationException unless it repeats the first call's
// ClientRequestToken.
//
// Pipeline parameters are given to StartPipelineExecution as strings and
// checked against their declaration: an undeclared or repeated name, a
// value that is not of the declared type (Integer: a decimal integer;
// Float: a decimal number; Boolean: true or false in any case; String:
// one of EnumValues when declared) or a parameter without DefaultValue left
// out is a ValidationException naming the parameter.
//
// # Property references
//
// Wherever a step's Arguments (and a Condition step's Conditions, a Fail
// step's ErrorMessage, the definition's PipelineExperimentConfig) hold an
// expression, it is replaced by its value when the step starts:
//
//   - {"Get": "Parameters.<name>"}: the parameter's value, typed (a JSON
//     number for Integer and Float, a boolean for Boolean). The name must
//     be declared.
//   - {"Get": "Execution.<variable>"}: PipelineExecutionId (the last part of
//     the execution ARN), PipelineExecutionArn, PipelineName, PipelineArn,
//     StartDateTime and CurrentDateTime (UTC, 2006-01-02T15:04:05.000Z).
//   - {"Get": "Steps.<step>.OutputParameters['<output>']"} (or ["<output>"])
//     of a Callback or Lambda step: the output's value from the step's
//     answer (callback) or from SetLambdaOutputs (Lambda), converted to its
//     OutputType; the output must be declared. A value that was never set
//     or does not convert fails the reading step with the reason "Cannot
//     resolve the step's arguments: ...".
//   - {"Get": "Steps.<step>.Outcome"} of a Condition step: its outcome as a
//     boolean. Fail steps have no properties.
//   - {"Get": "Steps.<step>.<property path>"} of any other (generic) step:
//     the generic steps run no job, so the value is the path string itself,
//     for example "Steps.Train.ModelArtifacts.S3ModelArtifacts".
//   - {"Std:Join": {"On": "<separator>", "Values": [...]}}: the values'
//     string forms joined. Std:JsonGet (which reads a property file from
//     S3) is refused at creation.
//
// A step that reads another step's property depends on it, as DependsOn
// would: it starts only once that step Succeeded. A callback message's
// "arguments" is the step's resolved Arguments (object keys in sorted
// order).
//
// # Condition and Fail steps
//
// A Condition step's Arguments hold Conditions, IfSteps and ElseSteps (full
// step objects, which may depend on and be depended on by other steps).
// When its dependencies succeed it evaluates every condition (all must
// hold) at once and Succeeds with Metadata.Condition.Outcome "True" or
// "False"; the steps of the chosen branch then become ready and the steps
// of the other branch, and every step that depends on a skipped step, are
// skipped: never started, never listed. Conditions: Equals (numbers
// compare as numbers, so 5 equals 5.0; strings and booleans exactly;
// values of different types are not equal), GreaterThan,
// GreaterThanOrEqualTo, LessThan, LessThanOrEqualTo (two numbers, or two
// strings compared bytewise; anything else fails the Condition step with
// "Condition evaluation failed: ..."), In (QueryValue equals one of
// Values), Not (Condition) and Or (Conditions). An execution Succeeds when
// every step Succeeded or was skipped.
//
// A Fail step, when it starts, Fails with its resolved ErrorMessage as the
// step's FailureReason and Metadata.Fail.ErrorMessage, and fails the
// execution like any failed step.
//
// # Executions
//
// StartPipelineExecution is idempotent per pipeline on ClientRequestToken.
// Steps without dependencies start at once; a step starts when all the
// steps it depends on Succeeded, at most MaxParallelExecutionSteps at a
// time (from the ParallelismConfiguration of RetryPipelineExecution or
// StartPipelineExecution, else of the pipeline; no limit without any).
// Steps are listed by ListPipelineExecutionSteps once started (newest
// first unless SortOrder is Ascending), each with AttemptCount 1 (more
// after a retry) and, for Callback, Lambda, Condition and Fail steps,
// their Metadata. Steps go straight to Executing (the Starting status is
// not used). Execution statuses are Executing, Stopping, Stopped, Failed
// and Succeeded. MaxResults defaults to 50. Pagination tokens are opaque cursors: a token
// holds the list it pages, the order and the sort key of the last item
// returned, and the next page starts after that item. An item added
// between two pages (a step that starts, an execution that is started)
// therefore never repeats nor hides another; in the default newest-first
// order it is seen by listing again from the start. A token used with
// another list or another SortOrder is a ValidationException ("Invalid
// pagination token").
//
// # Step behaviour
//
//   - A generic step runs Timing.StepDuration, then Succeeded. Stopped, it is
//     Stopping for Timing.StopDelay, then Stopped.
//   - A callback step, when it starts, gets a fresh 10-character token and
//     sends {"token", "pipelineExecutionArn", "arguments", "status":
//     "Executing"} to its SqsQueueUrl ("arguments" is the step's Arguments
//     object with its expressions resolved, values of any JSON type). It waits
//     for an answer without any timeout. Success: Succeeded with its
//     outputs, the next steps start. Failure: the step Failed with the
//     reason, the execution Failed with ExecutionFailureReason.
//     Stopped while waiting, the step is Stopping and a second message for
//     the same token is sent with "status": "Stopping"; the execution stays
//     Stopping until either answer arrives, then the step and (once nothing
//     else runs) the execution are Stopped. When the emulator's own queue
//     does not exist the step fails at start; a message to an external
//     endpoint that cannot be delivered is logged and lost (the step waits
//     for ever, as a lost message makes real pipelines wait).
//   - A Lambda step's function runs Timing.LambdaRunTime; the step fails
//     when Timing.LambdaTimeout passes first (counted from the step's start),
//     with the reason "Lambda step <name> timed out after <d>" (SageMaker's
//     wording is not documented), and the execution Failed. Its outputs
//     are those set with SetLambdaOutputs. Stopped, the step is Stopping and the execution stays
//     Stopping until the function finishes (Stopped) or times out (Failed).
//   - When a step fails, the other running steps are Stopped without
//     messages and later answers to them are conflicts.
//
// Durations can be overridden per step name with SetStepTiming; Forever
// makes a step run until stopped, answered or completed with CompleteStep
// (or, for a Lambda step, timed out with TimeOutLambdaStep).
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
// # RetryPipelineExecution
//
// Only a Failed execution can be retried; any other status is a
// ValidationException whose message contains "Only pipelines with 'Failed'
// status can be retried". The retry is idempotent on its
// ClientRequestToken (a repeat answers the same success in any later
// status). The execution keeps its ARN and goes back to Executing with no
// FailureReason; the steps that succeeded keep their results and outputs,
// every other step runs again as soon as its dependencies allow. A rerun
// step is a new entry of ListPipelineExecutionSteps (the earlier, Failed
// or Stopped, entry stays) with AttemptCount one higher and, for a
// callback step, a new token (answers to the old token are conflicts). An
// accepted stop token stays accepted across a retry: a stop that repeats
// it answers the same success and does not stop the retried execution
// (an idempotent request "completes no more than once"); stopping the
// retried execution needs a new ClientRequestToken.
//
// # Faults and counters
//
// Faults (SetFaults, changeable while running, all off by default) inject
// per-operation token-bucket throttling (ThrottlingException, HTTP 400),
// a fraction of HTTP 500 InternalFailure and 503 ServiceUnavailable
// answers, latency with jitter, and connections closed before or after the
// operation runs. They apply to SageMaker operations, and to SQS
// operations when Faults.IncludeSQS is set or a rate limit names the SQS
// operation; Faults.SQSLatency (with its jitter) sets SQS operations' own
// latency, apart from SageMaker's, with or without IncludeSQS. Random
// choices are deterministic for a given Config.Seed and request order
// (each Region draws from its own generator: Config.Region's seeded with
// Config.Seed, the others with Config.Seed mixed with their name). The
// faults are the same in every Region; the token buckets are per Region
// (see Regions and partitions).
//
// Counters let tests assert protocol properties: Requests and Counters
// (requests per operation in one Region; TotalRequests and RegionCounters
// for all), StopTokens, AcceptedStopToken, EffectiveStops
// and StopCalls per execution ("exactly one effective stop"), and Answers
// per callback token ("no step answered twice with different outcomes"),
// CallbackMessages (every callback step message sent, in order) and the
// Requests key StaleDeletes (deletes that succeeded without effect).
// Operations lists the operation names they and Faults.RateLimits take.
//
// # EventBridge
//
// EventBridge operations (AWS JSON 1.1, X-Amz-Target: AWSEvents.<Operation>)
// on the default bus only: PutRule, DescribeRule, ListRules, DeleteRule,
// PutTargets, ListTargetsByRule and RemoveTargets. Another EventBusName
// (by name or ARN) is ResourceNotFoundException "Event bus <name> does not
// exist."; an unknown rule is ResourceNotFoundException "Rule <name> does
// not exist on EventBus default."; errors carry {"__type", "message"}.
// Rule ARNs are arn:aws:events:<region>:<account>:rule/<name>. Names and
// target Ids are checked against [\.\-_A-Za-z0-9]{1,64}, a rule holds at
// most 5 targets and a PutTargets call 1 to 10 (LimitExceededException,
// ValidationException), a bus at most 300 rules. ListRules (NamePrefix)
// and ListTargetsByRule page in name and Id order with Limit 1 to 100 and
// an opaque NextToken.
//
// Event patterns: exact values (strings, numbers compared as numbers,
// booleans, null) in lists, nested objects for nested fields (detail's
// included), an array field matching when any element does, and the
// matchers prefix, suffix, equals-ignore-case, anything-but (a value, a
// list, or {"prefix": ...}), exists and numeric. Anything else (wildcard,
// cidr, $or) is InvalidEventPatternException, as are a pattern that is not
// a JSON object, an empty object or list, and a leaf that is not a list.
// anything-but and values never match an absent field; exists false does.
//
// Targets: the emulator's own SQS queues, by queue ARN. An event goes to
// every target of every ENABLED rule whose pattern matches it, as a
// SendMessage would put it (the queue's DelaySeconds applies): the event
// JSON, or the target's Input, or the part its InputPath ($ or
// $.field.field...) selects. RoleArn, SqsParameters, DeadLetterConfig and
// RetryPolicy are stored and echoed, not used.
//
// # SageMaker events
//
// Every execution and step status change emits one event on the default
// bus (the emulator's only two places that change a status, setExecution
// and setStep, emit it), with the envelope version "0", id (a random
// UUID), detail-type, source "aws.sagemaker", account, time (RFC 3339 UTC,
// whole seconds), region and resources [pipeline ARN, execution ARN].
// detail-type is exactly "SageMaker Model Building Pipeline Execution
// Status Change" (detail: pipelineArn, pipelineExecutionArn,
// pipelineExecutionDisplayName, currentPipelineExecutionStatus,
// previousPipelineExecutionStatus, executionStartTime, executionEndTime
// once Stopped, Failed or Succeeded, pipelineExecutionDescription when
// set) or "SageMaker Model Building Pipeline Execution Step Status Change"
// (detail: pipelineArn, pipelineExecutionArn, stepName, stepType,
// currentStepStatus, previousStepStatus, stepStartTime, stepEndTime once
// ended, metadata, failureReason when Failed). EmittedEvents and
// EventStats let tests see what was emitted and delivered.
//
// # Choices where AWS documents nothing (EventBridge and events)
//
//   - The first event of an execution (Executing) and of each step run
//     (Executing) has no previous status member: there was none.
//     RetryPipelineExecution emits Failed -> Executing for the execution and
//     a first event for each rerun step.
//   - Detail timestamps are ISO 8601 UTC with milliseconds
//     (2006-01-02T15:04:05.000Z); stepType is the definition's step Type
//     (Callback, Lambda, Condition, Fail, Training ...). cacheHitResult is
//     never sent (the emulator has no step caching).
//   - metadata is ListPipelineExecutionSteps' Metadata for the step at the
//     time of the change (Condition's Outcome once Succeeded, Lambda's Arn
//     and outputs, Fail's ErrorMessage), except that a callback step's
//     metadata carries SqsQueueUrl and OutputParameters but never the
//     CallbackToken: a token answers the step, and events go to queues
//     that more readers may share.
//   - Events are put on the bus synchronously with the change, in order,
//     unless EventFaults delay them; a delivery that fails (no such queue,
//     a target that is not one of the emulator's queues, a message SQS
//     refuses) is lost, counted in EventStats.Undeliverable and logged at
//     Debug level: no retries, no dead-letter queue.
//   - Queue policies are not checked unless Config.RequireQueuePolicy is
//     set. Then a queue receives events only when its Policy has a
//     statement allowing the principal events.amazonaws.com (or "*") the
//     action sqs:SendMessage (or sqs:*, *) on the queue's ARN (or a
//     wildcard matching it), whose conditions, if any, are ArnEquals,
//     ArnLike, StringEquals or StringLike on aws:SourceArn matching the
//     rule's ARN, and no Deny statement matches; any other condition key is
//     taken as not met.
//   - PutRule of an existing rule replaces its pattern, state, description
//     and role (what is not given is cleared) and keeps its targets;
//     ScheduleExpression is refused (ValidationException) as not
//     supported, and so are InputTransformer and InputPaths other than $
//     and $.a.b...; Tags are accepted and ignored. DeleteRule of an unknown
//     rule succeeds; DeleteRule of a rule with targets is a
//     ValidationException ("Rule can't be deleted since it has targets.")
//     whatever Force says; RemoveTargets of an unknown Id succeeds.
//   - EventBridge operations count in Requests and take faults like SQS
//     operations: only with Faults.IncludeSQS, or a rate limit naming them.
//
// # Event faults
//
// EventFaults (Config.EventFaults, SetEventFaults) act on each emitted
// event before it reaches the bus: DropRate loses it, DuplicateRate sends
// a second copy with its own id (SageMaker "may send multiple events for
// each state change"; a consumer that de-duplicates by id alone is
// caught), and each copy waits Delay plus a uniform random extra of up to
// DelaySpread, so that events reorder. The random choices come from a
// generator seeded with Config.Seed, separate from the API faults', drawn
// in emission order: the same scenario loses and repeats the same events
// on every run. Delayed events are cancelled by Close.
//
// # Callback messages to another SQS
//
// With Config.CallbackQueueEndpoint (or Config.CallbackSender) callback
// messages are sent with SendMessage to that endpoint, in order, from one
// goroutine, using the step's SqsQueueUrl unchanged, for example a queue of
// a moto_server.
//
// # Lambda: local functions and SQS event sources
//
// AddFunction (or AddFunctionConfig, or stopctl emulator --function
// NAME=PATH) makes an executable a local Lambda function: a custom runtime
// started with AWS_LAMBDA_RUNTIME_API pointing at a Lambda Runtime API
// (2018-06-01: GET /runtime/invocation/next, POST
// /runtime/invocation/{id}/response and /error, POST /runtime/init/error)
// on 127.0.0.1. The process starts on the first invocation and serves one
// invocation at a time (one execution environment; concurrent invocations
// and several event sources on one function wait their turn). Its
// environment is Lambda's and nothing of the emulator's own but PATH:
// AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION ($LATEST),
// AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_FUNCTION_TIMEOUT (seconds; the
// runtime interface emulator's variable, Lambda itself does not document
// it), AWS_LAMBDA_INITIALIZATION_TYPE, AWS_LAMBDA_LOG_GROUP_NAME and
// _STREAM_NAME, _HANDLER (the executable's name unless given), AWS_REGION
// and AWS_DEFAULT_REGION, credentials test/test/test, AWS_ENDPOINT_URL
// (the emulator, so the SDKs in the function call it), LAMBDA_TASK_ROOT
// (the executable's directory, also its working directory), TZ=:UTC, plus
// the function's Environment (Lambda's reserved names are refused). /next
// answers with Lambda-Runtime-Aws-Request-Id, Lambda-Runtime-Deadline-Ms,
// Lambda-Runtime-Invoked-Function-Arn and Lambda-Runtime-Trace-Id; the
// answers are 202 {"status":"OK"}, 400 InvalidRequestID for an ID that is
// not the invocation in progress, 413 for a response over 6 MB.
//
// Choices where Lambda documents nothing: the deadline is counted from the
// moment the process takes the invocation (/next), and the process must
// take it within 10 seconds of its start (Runtime.InitTimeout otherwise).
// An invocation not answered by its deadline fails with errorType
// Sandbox.Timedout ("Task timed out after N.NN seconds") and the process is
// killed, as Lambda resets the environment; one that exits fails with
// Runtime.ExitError; a /next while an invocation is unanswered fails that
// invocation with Runtime.NoResponse; an init error fails the waiting
// invocation with the posted document and the process is killed; an
// executable that cannot start fails with Runtime.InvalidEntrypoint. The
// next invocation starts a new process. Functions keep running between
// invocations (no freezing) and until Close, which kills them and waits for
// them, their servers and the pollers. Output lines are logged at Info
// level and kept (FunctionLogs); FunctionStats counts invocations, errors,
// timeouts and process starts.
//
// The Lambda API is served under /2015-03-31/ (REST-JSON; errors carry
// X-Amzn-ErrorType and {"Type", "Message"}): CreateEventSourceMapping,
// GetEventSourceMapping, ListEventSourceMappings (by EventSourceArn and
// FunctionName, name or ARN; Marker is an offset), UpdateEventSourceMapping
// (Enabled, BatchSize, MaximumBatchingWindowInSeconds,
// FunctionResponseTypes, FunctionName), DeleteEventSourceMapping,
// GetFunctionConfiguration, GetFunction, ListFunctions and Invoke
// (RequestResponse, Event, DryRun). Functions are created only with the Go
// API or the stopctl flag (no CreateFunction). An SQS event source mapping
// (AddEventSource, the API or --event-source QUEUE=FUNCTION) is checked as
// Lambda checks it: the queue must exist, its visibility timeout must be at
// least the function timeout, one mapping per queue and function
// (ResourceConflictException), BatchSize 1 to 10000 (default 10) and above
// 10 only with MaximumBatchingWindowInSeconds (0 to 300) set,
// FunctionResponseTypes only ReportBatchItemFailures. Create answers State
// Creating, then Enabled once its poller runs; Update answers Enabling,
// Disabling or Updating; Delete answers Deleting and the mapping is gone.
// The poller long-polls the emulator's own queue (10 messages a receive,
// the queue's visibility timeout) and, with a batching window, keeps
// receiving until BatchSize records or the window has passed since the
// first record (the window is counted from the first record: Lambda does
// not say). The event is Lambda's: {"Records": [{messageId, receiptHandle,
// body, attributes (ApproximateReceiveCount, SentTimestamp, SenderId,
// ApproximateFirstReceiveTimestamp, in that order, then AWSTraceHeader
// and any other by name), messageAttributes ({stringValue or binaryValue,
// stringListValues: [], binaryListValues: [], dataType}),
// md5OfMessageAttributes (only when there are attributes), md5OfBody,
// eventSource "aws:sqs", eventSourceARN, awsRegion}]}. After the
// invocation: a failure (error, timeout, exit) leaves the whole batch on
// the queue, to come back when its visibility timeout ends; a success
// deletes every record, unless ReportBatchItemFailures is set: then a
// null, empty or {} response or a null or empty batchItemFailures deletes
// every record, a list deletes the records it does not name, and a
// response that is not a JSON object or an entry whose itemIdentifier is
// missing, empty or not a messageId of the batch leaves the whole batch.
// A batch gathered when its mapping is deleted or the emulator closes is
// not delivered (it comes back after its visibility timeout); a batch being
// delivered finishes. The 6 MB limit on a batch's payload is not applied.
// EventSourceStats counts batches, records, deletions, records returned
// and function errors. FIFO queues are not supported (see SQS above).
// Lambda API calls are counted in Requests under their operation names;
// Faults do not apply to them, nor to the Runtime API.
package emulator
