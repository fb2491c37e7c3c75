// Package lambdacheck checks how an AWS Lambda function that answers
// SageMaker Pipelines callback steps is wired to its SQS queue, and says in
// sentences a person can act on what is wrong: partial batch responses
// that Lambda ignores, a queue visibility timeout too short for the
// function, no redrive policy, batches that cannot finish within the
// function's timeout.
//
// It lives in the core module, not in the adapter module
// (github.com/pipelinestop/pipelinestop/lambda), because it needs only the
// SDK's service/lambda and service/sqs clients, not aws-lambda-go: stopctl,
// which is in the core module, runs it as "stopctl lambda check", and a
// deployment tool can run it without pulling in the Lambda runtime.
package lambdacheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop"
)

// LambdaAPIClient is the part of the Lambda API Check uses.
// *lambda.Client satisfies it.
type LambdaAPIClient interface {
	GetFunctionConfiguration(ctx context.Context, in *lambda.GetFunctionConfigurationInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error)
	ListEventSourceMappings(ctx context.Context, in *lambda.ListEventSourceMappingsInput, optFns ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error)
}

// QueueAPIClient is the part of the SQS API Check uses. *sqs.Client
// satisfies it.
type QueueAPIClient interface {
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var (
	_ LambdaAPIClient = (*lambda.Client)(nil)
	_ QueueAPIClient  = (*sqs.Client)(nil)
)

// ErrInvalidCheck means Check was given a nil client or an empty function
// name.
var ErrInvalidCheck = errors.New("lambdacheck: invalid check")

// VisibilityFactor is how many function timeouts the queue's visibility
// timeout should cover, as AWS recommends: the extra time lets Lambda
// retry a batch it could not invoke (throttling) before the messages come
// back.
const VisibilityFactor = 6

// MinMaxReceiveCount is the smallest maxReceiveCount Check accepts in a
// redrive policy, as AWS recommends for Lambda event sources: with fewer,
// a message that was retried after throttling or a transient error moves
// to the dead-letter queue, and its step is never answered.
const MinMaxReceiveCount = 5

// maxMappingPages bounds the pages of ListEventSourceMappings read.
const maxMappingPages = 100

// Problem names a kind of finding.
type Problem string

// Problems Check reports.
const (
	// ProblemNoMapping: the function has no SQS event source mapping.
	ProblemNoMapping Problem = "NoMapping"
	// ProblemMappingDisabled: the mapping exists but delivers nothing.
	ProblemMappingDisabled Problem = "MappingDisabled"
	// ProblemNoPartialResponses: FunctionResponseTypes lacks
	// ReportBatchItemFailures, so partial batch responses are ignored.
	ProblemNoPartialResponses Problem = "NoPartialResponses"
	// ProblemVisibilityTimeout: the queue's visibility timeout is under
	// VisibilityFactor times the function timeout plus the batching window.
	ProblemVisibilityTimeout Problem = "VisibilityTimeout"
	// ProblemNoRedrivePolicy: the queue has no dead-letter queue.
	ProblemNoRedrivePolicy Problem = "NoRedrivePolicy"
	// ProblemLowMaxReceiveCount: the redrive policy's maxReceiveCount is
	// under MinMaxReceiveCount.
	ProblemLowMaxReceiveCount Problem = "LowMaxReceiveCount"
	// ProblemBatchTooSlow: a full batch cannot be handled within the
	// function's timeout.
	ProblemBatchTooSlow Problem = "BatchTooSlow"
	// ProblemQueueUnreadable: the queue's attributes could not be read, so
	// its checks were not made.
	ProblemQueueUnreadable Problem = "QueueUnreadable"
)

// Finding is one thing wrong, said so that a person can act on it.
type Finding struct {
	// Problem is the kind of finding.
	Problem Problem `json:"problem"`
	// MappingUUID is the event source mapping concerned, if any.
	MappingUUID string `json:"mappingUuid,omitempty"`
	// QueueARN is the queue concerned, if any.
	QueueARN string `json:"queueArn,omitempty"`
	// Message says what is wrong, what follows from it and how to fix it.
	Message string `json:"message"`
}

// Mapping is what Check read about one SQS event source mapping.
type Mapping struct {
	// UUID identifies the mapping.
	UUID string `json:"uuid"`
	// QueueARN is the mapping's event source.
	QueueARN string `json:"queueArn"`
	// QueueURL is the queue's URL, "" when it could not be read.
	QueueURL string `json:"queueUrl,omitempty"`
	// State is the mapping's state: Enabled, Disabled, Creating, ...
	State string `json:"state"`
	// BatchSize is the most records in one invocation.
	BatchSize int `json:"batchSize"`
	// BatchingWindow is MaximumBatchingWindowInSeconds.
	BatchingWindow time.Duration `json:"batchingWindow"`
	// ReportBatchItemFailures tells whether FunctionResponseTypes has
	// ReportBatchItemFailures, without which partial batch responses are
	// ignored.
	ReportBatchItemFailures bool `json:"reportBatchItemFailures"`
	// VisibilityTimeout is the queue's, or 0 when it could not be read.
	VisibilityTimeout time.Duration `json:"visibilityTimeout"`
	// RedrivePolicy is the queue's, "" when it has none.
	RedrivePolicy string `json:"redrivePolicy,omitempty"`
}

// Report is the result of Check.
type Report struct {
	// FunctionName and FunctionARN name the function checked.
	FunctionName string `json:"functionName"`
	FunctionARN  string `json:"functionArn"`
	// Timeout is the function's timeout.
	Timeout time.Duration `json:"timeout"`
	// Mappings are the function's SQS event source mappings.
	Mappings []Mapping `json:"mappings"`
	// Findings say what is wrong; none when all is well.
	Findings []Finding `json:"findings"`
}

// OK reports whether Check found nothing wrong.
func (r Report) OK() bool { return len(r.Findings) == 0 }

// String is the report as text: one line per finding, or a line saying
// that all is well.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "function %s: timeout %s, %d SQS event source mapping(s)\n", r.FunctionName, r.Timeout, len(r.Mappings))
	if r.OK() {
		b.WriteString("ok: nothing wrong found\n")
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "- %s\n", f.Message)
	}
	return b.String()
}

// Options configure Check.
type Options struct {
	// MessageTime is about how long the function takes to handle one
	// message. When set, Check reports batches that cannot be handled
	// within the timeout; zero checks only that the timeout leaves time
	// past the deadline margin.
	MessageTime time.Duration
	// Concurrency is how many messages of a batch the function handles at
	// once (the adapter's ConsumerOptions.Concurrency). Default
	// pipelinestop.DefaultConsumerConcurrency.
	Concurrency int
	// DeadlineMargin is the time the adapter keeps before the deadline to
	// answer. Default pipelinestop.DefaultDeadlineMargin.
	DeadlineMargin time.Duration
	// LambdaOptions are passed to every Lambda call.
	LambdaOptions []func(*lambda.Options)
	// SQSOptions are passed to every SQS call.
	SQSOptions []func(*sqs.Options)
}

// Check reads the function's configuration, its SQS event source mappings
// and their queues, and reports what is wrong. The error is for what
// stops the check (the function or its mappings could not be read); a
// queue that cannot be read is a finding.
func Check(ctx context.Context, lc LambdaAPIClient, qc QueueAPIClient, functionName string, optFns ...func(*Options)) (Report, error) {
	switch {
	case lc == nil:
		return Report{}, fmt.Errorf("%w: the Lambda client is nil", ErrInvalidCheck)
	case qc == nil:
		return Report{}, fmt.Errorf("%w: the SQS client is nil", ErrInvalidCheck)
	case functionName == "":
		return Report{}, fmt.Errorf("%w: the function name is empty", ErrInvalidCheck)
	}
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = pipelinestop.DefaultConsumerConcurrency
	}
	if o.DeadlineMargin <= 0 {
		o.DeadlineMargin = pipelinestop.DefaultDeadlineMargin
	}

	fc, err := lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(functionName)}, o.LambdaOptions...)
	if err != nil {
		return Report{}, fmt.Errorf("get function configuration: %w", err)
	}
	r := Report{FunctionName: functionName, FunctionARN: aws.ToString(fc.FunctionArn), Timeout: time.Duration(aws.ToInt32(fc.Timeout)) * time.Second,
		Mappings: []Mapping{}, Findings: []Finding{}}
	if fc.FunctionName != nil {
		r.FunctionName = *fc.FunctionName
	}
	if r.Timeout <= 0 {
		r.Timeout = 3 * time.Second // Lambda's default
	}

	var mappings []ltypes.EventSourceMappingConfiguration
	var marker *string
	for page := 0; ; page++ {
		if page == maxMappingPages {
			return Report{}, fmt.Errorf("list event source mappings: more than %d pages", maxMappingPages)
		}
		out, err := lc.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String(functionName), Marker: marker}, o.LambdaOptions...)
		if err != nil {
			return Report{}, fmt.Errorf("list event source mappings: %w", err)
		}
		mappings = append(mappings, out.EventSourceMappings...)
		if aws.ToString(out.NextMarker) == "" {
			break
		}
		marker = out.NextMarker
	}

	for _, m := range mappings {
		queueARN := aws.ToString(m.EventSourceArn)
		if !isQueueARN(queueARN) {
			continue
		}
		r.checkMapping(ctx, qc, &o, m)
	}
	if len(r.Mappings) == 0 {
		r.add(Finding{Problem: ProblemNoMapping, Message: fmt.Sprintf(
			"Function %s has no SQS event source mapping, so nothing delivers the callback queue's messages to it. "+
				"Create one with partial batch responses: aws lambda create-event-source-mapping --function-name %s "+
				"--event-source-arn QUEUE_ARN --function-response-types ReportBatchItemFailures.", r.FunctionName, r.FunctionName)})
	}
	return r, nil
}

// add appends a finding.
func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

// checkMapping checks one SQS mapping and its queue.
func (r *Report) checkMapping(ctx context.Context, qc QueueAPIClient, o *Options, m ltypes.EventSourceMappingConfiguration) {
	mp := Mapping{
		UUID: aws.ToString(m.UUID), QueueARN: aws.ToString(m.EventSourceArn), State: aws.ToString(m.State),
		BatchSize: int(aws.ToInt32(m.BatchSize)), BatchingWindow: time.Duration(aws.ToInt32(m.MaximumBatchingWindowInSeconds)) * time.Second,
	}
	if mp.BatchSize <= 0 {
		mp.BatchSize = 10 // Lambda's default for SQS
	}
	for _, t := range m.FunctionResponseTypes {
		if t == ltypes.FunctionResponseTypeReportBatchItemFailures {
			mp.ReportBatchItemFailures = true
		}
	}
	finding := func(p Problem, format string, args ...any) {
		r.add(Finding{Problem: p, MappingUUID: mp.UUID, QueueARN: mp.QueueARN, Message: fmt.Sprintf(format, args...)})
	}

	switch mp.State {
	case "Disabled", "Disabling":
		finding(ProblemMappingDisabled, "The event source mapping %s from queue %s is %s, so Lambda delivers none of its messages and callback steps wait unanswered. "+
			"Enable it: aws lambda update-event-source-mapping --uuid %s --enabled.", mp.UUID, mp.QueueARN, mp.State, mp.UUID)
	}
	if !mp.ReportBatchItemFailures {
		finding(ProblemNoPartialResponses, "The event source mapping %s from queue %s does not have FunctionResponseTypes ReportBatchItemFailures, so Lambda silently ignores the "+
			"function's partial batch responses and deletes every record of the batch, the ones it reported for a retry included: those steps are never answered. "+
			"Fix: aws lambda update-event-source-mapping --uuid %s --function-response-types ReportBatchItemFailures.", mp.UUID, mp.QueueARN, mp.UUID)
	}

	// The queue.
	name, account := queueNameAccount(mp.QueueARN)
	urlOut, err := qc.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name), QueueOwnerAWSAccountId: aws.String(account)}, o.SQSOptions...)
	var attrs map[string]string
	if err == nil {
		mp.QueueURL = aws.ToString(urlOut.QueueUrl)
		var out *sqs.GetQueueAttributesOutput
		out, err = qc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl:       urlOut.QueueUrl,
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameVisibilityTimeout, sqstypes.QueueAttributeNameRedrivePolicy},
		}, o.SQSOptions...)
		if err == nil {
			attrs = out.Attributes
		}
	}
	if err != nil {
		finding(ProblemQueueUnreadable, "The attributes of queue %s could not be read (%s), so its visibility timeout and redrive policy were not checked. "+
			"Run the check with credentials allowed sqs:GetQueueUrl and sqs:GetQueueAttributes on it.", mp.QueueARN, pipelinestop.RedactCredentials(err.Error()))
	} else {
		vt, _ := strconv.Atoi(attrs[string(sqstypes.QueueAttributeNameVisibilityTimeout)])
		mp.VisibilityTimeout = time.Duration(vt) * time.Second
		mp.RedrivePolicy = attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)]
		want := VisibilityFactor*r.Timeout + mp.BatchingWindow
		if mp.VisibilityTimeout < want {
			finding(ProblemVisibilityTimeout, "Queue %s has a visibility timeout of %s, under %d times the function timeout of %s plus the batching window of %s (%s): "+
				"messages of a batch that Lambda retries or still handles become visible again and are handled twice. "+
				"Raise it: aws sqs set-queue-attributes --queue-url %s --attributes VisibilityTimeout=%d.",
				mp.QueueARN, mp.VisibilityTimeout, VisibilityFactor, r.Timeout, mp.BatchingWindow, want, orName(mp.QueueURL), int(want/time.Second))
		}
		if n, ok := maxReceiveCount(mp.RedrivePolicy); ok && n < MinMaxReceiveCount {
			finding(ProblemLowMaxReceiveCount, "Queue %s moves a message to its dead-letter queue after %d receive(s): a message retried after throttling, "+
				"a deadline or a transient error ends there unanswered. Raise maxReceiveCount in its RedrivePolicy to at least %d.",
				mp.QueueARN, n, MinMaxReceiveCount)
		}
		if mp.RedrivePolicy == "" {
			finding(ProblemNoRedrivePolicy, "Queue %s has no redrive policy, so a message that never succeeds (a malformed body, a step whose answer is always refused) "+
				"comes back until its retention period ends and is then lost, without anyone seeing it. Give it a dead-letter queue: "+
				`aws sqs set-queue-attributes --queue-url %s --attributes '{"RedrivePolicy":"{\"deadLetterTargetArn\":\"DLQ_ARN\",\"maxReceiveCount\":\"5\"}"}'.`,
				mp.QueueARN, orName(mp.QueueURL))
		}
	}

	// Time for a batch.
	switch {
	case r.Timeout <= o.DeadlineMargin:
		finding(ProblemBatchTooSlow, "The function timeout of %s leaves no time before the adapter's deadline margin of %s, so no message is ever handled and every batch comes back. "+
			"Raise the timeout: aws lambda update-function-configuration --function-name %s --timeout %d.",
			r.Timeout, o.DeadlineMargin, r.FunctionName, int((o.DeadlineMargin+o.MessageTime)/time.Second)+1)
	case o.MessageTime > 0:
		rounds := (mp.BatchSize + o.Concurrency - 1) / o.Concurrency
		need := time.Duration(rounds)*o.MessageTime + o.DeadlineMargin
		if need > r.Timeout {
			fit := int((r.Timeout-o.DeadlineMargin)/o.MessageTime) * o.Concurrency
			window := ""
			if mp.BatchingWindow > 0 {
				window = fmt.Sprintf(" (the batching window of %s lets batches fill up)", mp.BatchingWindow)
			}
			finding(ProblemBatchTooSlow, "A batch of up to %d messages%s, handled %d at a time at about %s each, needs about %s with the deadline margin of %s, "+
				"more than the function timeout of %s: the rest of every full batch is reported back and delivered again. "+
				"Lower the batch size to at most %d (aws lambda update-event-source-mapping --uuid %s --batch-size %d) or raise the function timeout to at least %d s.",
				mp.BatchSize, window, o.Concurrency, o.MessageTime, need, o.DeadlineMargin, r.Timeout,
				max(fit, 1), mp.UUID, max(fit, 1), int(math.Ceil(need.Seconds())))
		}
	}
	r.Mappings = append(r.Mappings, mp)
}

// maxReceiveCount reads a redrive policy's maxReceiveCount, which SQS
// returns as a string or a number.
func maxReceiveCount(policy string) (int, bool) {
	if policy == "" {
		return 0, false
	}
	var p struct {
		MaxReceiveCount json.RawMessage `json:"maxReceiveCount"`
	}
	if json.Unmarshal([]byte(policy), &p) != nil || len(p.MaxReceiveCount) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.Trim(string(p.MaxReceiveCount), `"`))
	return n, err == nil
}

// isQueueARN reports whether arn is an SQS queue ARN.
func isQueueARN(arn string) bool {
	parts := strings.Split(arn, ":")
	return len(parts) == 6 && parts[0] == "arn" && parts[2] == "sqs" && parts[5] != ""
}

// queueNameAccount returns the name and account of a queue ARN.
func queueNameAccount(arn string) (name, account string) {
	parts := strings.Split(arn, ":")
	return parts[5], parts[4]
}

// orName is url, or a placeholder for a command when it is unknown.
func orName(url string) string {
	if url == "" {
		return "QUEUE_URL"
	}
	return url
}
