// Package pipelinestoptest runs a local Amazon SageMaker Pipelines and
// Amazon SQS emulator for tests, as net/http/httptest runs a local HTTP
// server: code under test talks to it with the real aws-sdk-go-v2 clients
// over 127.0.0.1, and the test reads what happened.
//
// It exists so that services which stop pipeline executions on shutdown,
// or answer callback steps from an SQS queue, can test that code end to
// end without an AWS account. Neither moto nor any other local emulator
// runs callback and Lambda steps or StopPipelineExecution.
//
//	srv := pipelinestoptest.New(t, pipelinestoptest.Config{})
//	queueURL, _ := srv.CreateQueue("approvals")
//	srv.CreatePipeline("train", pipelinestoptest.Definition(
//		pipelinestoptest.Step{Name: "Approve", Type: pipelinestoptest.StepTypeCallback, SqsQueueURL: queueURL}))
//	arn, _ := srv.StartExecution("train")
//	// ... run the code under test with srv.SageMakerClient() and srv.SQSClient() ...
//	if srv.EffectiveStops(arn) != 1 { t.Fatal("want exactly one effective stop") }
//
// New stops the server in the test's Cleanup; Start and Close do the same
// outside a test. "stopctl emulator" (in examples/stopctl) serves the same
// emulator out of process, for the AWS CLI, boto3 or a service under test
// in another process.
//
// # What it serves
//
// One HTTP server speaks SageMaker (AWS JSON 1.1) and SQS (AWS JSON 1.0) as
// AWS does, so the SDK's own serializers, error types and retries are
// exercised. Credentials and signatures are accepted unchecked; the
// signature's Region picks the Region (see Regions).
//
// SageMaker: CreatePipeline, UpdatePipeline, DeletePipeline,
// DescribePipeline, ListPipelines, StartPipelineExecution,
// DescribePipelineExecution, DescribePipelineDefinitionForExecution,
// ListPipelineExecutions, ListPipelineExecutionSteps (stable page tokens),
// ListPipelineParametersForExecution, StopPipelineExecution,
// RetryPipelineExecution, SendPipelineExecutionStepSuccess and
// SendPipelineExecutionStepFailure. Definitions are validated as SageMaker
// validates them; property references (Parameters, Execution, step
// outputs, Std:Join) are resolved and order the steps; Condition steps run
// one branch and Fail steps fail the execution.
// Callback steps send their {"token", "pipelineExecutionArn", "arguments",
// "status"} message to their queue when they start, and a second message
// with status "Stopping" when the execution is stopped while they wait;
// the execution stays Stopping until the step is answered. Lambda steps
// hold a stopping execution until their function finishes or times out.
// Generic steps run for Timing.StepDuration.
//
// SQS (standard queues): CreateQueue, GetQueueUrl, GetQueueAttributes,
// SetQueueAttributes, DeleteQueue, ListQueues, ListDeadLetterSourceQueues,
// TagQueue, UntagQueue, ListQueueTags, SendMessage, SendMessageBatch,
// ReceiveMessage (long polling), DeleteMessage, DeleteMessageBatch,
// ChangeMessageVisibility, ChangeMessageVisibilityBatch and PurgeQueue,
// with message attributes, RedrivePolicy and dead-letter queues. FIFO
// queues are refused with UnsupportedOperation.
//
// EventBridge (AWS JSON 1.1, the default bus): PutRule, DescribeRule,
// ListRules, DeleteRule, PutTargets, ListTargetsByRule and RemoveTargets,
// with event patterns and the server's queues as targets (EventBridgeClient
// builds the client). The server emits SageMaker's status-change events
// (source EventSource, detail types DetailTypeExecutionStatus and
// DetailTypeStepStatus) at every execution and step status change;
// EventFaults delay (with a spread that reorders), duplicate and drop
// them, and EventStats counts them. Config.RequireQueuePolicy makes
// delivery need the queue policy AWS needs.
//
// It is as strict as SQS where leniency hides bugs: only a message's latest
// receipt handle deletes it (an older one succeeds and deletes nothing,
// counted as StaleDeletes), a visibility change needs the latest handle of
// a message in flight, visibility ends at most 12 hours after the receive,
// and a message received maxReceiveCount times moves to the dead-letter
// queue.
//
// # Regions
//
// The server keeps separate state per Region, taken from each request's
// SigV4 signature: a pipeline named "train" in eu-west-1 and one in
// us-east-1 are two pipelines, an execution ARN of one Region is not found
// through a client of another, and ARNs are built in the Region's
// partition (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, ...). InRegion
// returns the server in another Region, with its clients, queues,
// pipelines and counters:
//
//	eu, _ := srv.InRegion("eu-west-1")
//	eu.CreatePipeline("train", def)
//	arn, _ := eu.StartExecution("train") // arn:aws:sagemaker:eu-west-1:...
//	_ = eu.Requests("StopPipelineExecution") // eu-west-1's; srv.TotalRequests counts all
//
// Rate limits (Faults.RateLimits) apply per Region, each with its own
// buckets, as throttling is per account and Region. Queue URLs of Regions
// other than Config.Region have the form URL/queue/REGION/ACCOUNT/NAME.
//
// # What the test reads
//
// Counters: Requests per operation, EffectiveStops and StopTokens per
// execution ("exactly one effective stop"), Answers per callback token
// ("no step answered twice"), CallbackMessages (every message sent), and
// the statuses of executions and steps, with waits on them.
//
// # Choices where AWS documents nothing
//
// SQS:
//   - A delete with a receipt handle of a message deleted, purged, expired
//     or moved to its dead-letter queue succeeds without effect; a handle
//     the queue never gave is ReceiptHandleIsInvalid.
//   - A visibility change with an older handle, or a handle of a message
//     no longer in the queue, is InvalidParameterValue "The receipt handle
//     has expired"; with the latest handle of a message not in flight
//     (its timeout passed, or it was set to 0) it is MessageNotInflight.
//     The latest handle still deletes a message that is no longer in
//     flight.
//   - The 12-hour limit counts whole seconds since the latest receive.
//   - A message moves to the dead-letter queue when a receive finds it
//     visible with ApproximateReceiveCount already at maxReceiveCount; it
//     keeps its MessageId, body, attributes, SentTimestamp and receive
//     count, and gains the system attribute DeadLetterQueueSourceArn. When
//     the dead-letter queue has been deleted, messages stay.
//   - maxReceiveCount may be a number or a numeric string and reads back as
//     a number; attribute value errors are InvalidAttributeValue.
//   - MD5OfMessageAttributes on a receive is computed over the attributes
//     returned (those MessageAttributeNames selected).
//   - FifoQueue "false" is accepted and ignored; the FIFO-only attributes
//     are InvalidAttributeName on a standard queue; MessageGroupId is
//     stored and returned as a system attribute, MessageDeduplicationId is
//     InvalidParameterValue.
//   - SqsManagedSseEnabled reads "true" unless set; no encryption happens.
//   - ListQueues pages in name order; NextToken only when MaxResults is
//     given.
//   - A request body over 16 MiB is answered HTTP 413 with a
//     RequestEntityTooLarge error; a body that cannot be read is answered
//     HTTP 400 SerializationException.
//
// SageMaker (the implementation's package documentation has the full list):
//   - A repeated stop with the accepted ClientRequestToken answers the same
//     success in any later status; another stop of an execution that is not
//     Executing is a ValidationException containing "Only pipelines with
//     'Executing' status can be stopped".
//   - A second Success or Failure for an answered callback step returns the
//     same success when it repeats the accepted outcome and non-empty
//     ClientRequestToken; otherwise, and for a step that no longer waits,
//     it is a ConflictException containing "already in a terminal status".
//   - A callback step waits for its answer without a timeout.
//   - ConflictException on stop happens only inside Timing.ConflictWindow
//     after a transition.
package pipelinestoptest
