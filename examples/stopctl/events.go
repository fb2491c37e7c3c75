package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// eventsSetup is what `stopctl events setup` creates: a queue, its policy
// (EventBridge may send to it, for this rule only), a rule on the default
// bus matching SageMaker's pipeline status events, and the queue as the
// rule's target. SQS targets take no role.
type eventsSetup struct {
	QueueName   string          `json:"queueName"`
	QueueURL    string          `json:"queueUrl,omitempty"`
	QueueARN    string          `json:"queueArn"`
	QueuePolicy json.RawMessage `json:"queuePolicy"`
	RuleName    string          `json:"ruleName"`
	RuleARN     string          `json:"ruleArn"`
	Pattern     json.RawMessage `json:"eventPattern"`
	TargetID    string          `json:"targetId"`
}

// eventTargetID is the Id of the queue among the rule's targets.
const eventTargetID = "pipelinestop-events"

// runEvents runs `stopctl events setup`.
func runEvents(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "setup" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintf(e.stdout, "Usage: stopctl events %s\n\nRun 'stopctl events setup -h' for its flags.\n", commandUsage("events"))
			return errHelp
		}
		return usagef("events: want the subcommand setup (stopctl events setup --queue NAME)")
	}
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	queue := fs.String("queue", "", "name of the SQS queue that receives the events (required; created if missing)")
	rule := fs.String("rule", "pipelinestop-pipeline-events", "name of the EventBridge rule on the default bus")
	var pipelines stringList
	fs.Var(&pipelines, "pipeline", "only events of this pipeline (repeatable; default: every pipeline)")
	dryRun := fs.Bool("dry-run", false, "print what would be created, as JSON for infrastructure code, and make no call")
	account := fs.String("account", "", "the AWS account ID, for --dry-run (default: ACCOUNT_ID as a placeholder)")
	rest, err := e.parse(fs, args[1:], awsGlobals)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usagef("events: unexpected argument %q", rest[0])
	case *queue == "":
		return usagef("events: --queue NAME is required")
	case strings.Contains(*queue, "/"):
		return usagef("events: --queue takes a queue name, not a URL")
	}
	cfg, err := e.awsConfig(ctx, "")
	if err != nil && !*dryRun {
		return err
	}
	region := cfg.Region
	if region == "" {
		region = "REGION"
	}
	if *dryRun {
		acct := *account
		if acct == "" {
			acct = "ACCOUNT_ID"
		}
		// ARNs in the Region's partition (arn:aws-cn:... in China); the
		// emulator's table is AWS's.
		part := emulator.Partition(region)
		var pipelineARNs []string
		for _, p := range pipelines {
			pipelineARNs = append(pipelineARNs, fmt.Sprintf("arn:%s:sagemaker:%s:%s:pipeline/%s", part, region, acct, strings.ToLower(p)))
		}
		s := newEventsSetup(*queue, *rule, fmt.Sprintf("arn:%s:sqs:%s:%s:%s", part, region, acct, *queue),
			fmt.Sprintf("arn:%s:events:%s:%s:rule/%s", part, region, acct, *rule), pipelineARNs)
		return e.printJSON(s)
	}
	sq, err := e.sqsClient(ctx)
	if err != nil {
		return err
	}
	sm, err := e.sageMaker(ctx)
	if err != nil {
		return err
	}
	eb := eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) {
		if e.g.endpoint != "" {
			o.BaseEndpoint = aws.String(e.g.endpoint)
		}
	})
	s, err := setUpEvents(ctx, sq, eb, sm, *queue, *rule, pipelines)
	if err != nil {
		return fmt.Errorf("events setup: %w", err)
	}
	if e.g.json() {
		return e.printJSON(s)
	}
	fmt.Fprintf(e.stdout, "rule %s sends SageMaker pipeline status events to queue %s\n", s.RuleARN, s.QueueURL)
	fmt.Fprintf(e.stdout, "wait on them with: stopctl wait --events-queue %s ARN (or stop --wait --events-queue %s ...)\n", *queue, *queue)
	return nil
}

// newEventsSetup builds the policy and the pattern for a queue and a rule.
func newEventsSetup(queueName, ruleName, queueARN, ruleARN string, pipelineARNs []string) *eventsSetup {
	policy, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid":       "AllowEventBridgeRule",
			"Effect":    "Allow",
			"Principal": map[string]any{"Service": "events.amazonaws.com"},
			"Action":    "sqs:SendMessage",
			"Resource":  queueARN,
			"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": ruleARN}},
		}},
	})
	pattern := map[string]any{
		"source":      []string{pipelinestop.EventSource},
		"detail-type": []string{pipelinestop.ExecutionStatusChangeType, pipelinestop.StepStatusChangeType},
	}
	if len(pipelineARNs) > 0 {
		pattern["detail"] = map[string]any{"pipelineArn": pipelineARNs}
	}
	p, _ := json.Marshal(pattern)
	return &eventsSetup{QueueName: queueName, QueueARN: queueARN, QueuePolicy: policy, RuleName: ruleName,
		RuleARN: ruleARN, Pattern: p, TargetID: eventTargetID}
}

// setUpEvents creates, idempotently, the queue, the rule, the queue's
// policy and the target. Each call is safe to repeat: CreateQueue returns
// an existing queue, PutRule and PutTargets replace, SetQueueAttributes
// sets.
func setUpEvents(ctx context.Context, sq *sqs.Client, eb *eventbridge.Client, sm *sagemaker.Client, queue, rule string, pipelines []string) (*eventsSetup, error) {
	var pipelineARNs []string
	for _, p := range pipelines {
		d, err := sm.DescribePipeline(ctx, &sagemaker.DescribePipelineInput{PipelineName: aws.String(p)})
		if err != nil {
			return nil, fmt.Errorf("find pipeline %s: %w", p, err)
		}
		pipelineARNs = append(pipelineARNs, aws.ToString(d.PipelineArn))
	}
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(queue)})
	if err != nil {
		return nil, fmt.Errorf("create queue %s: %w", queue, err)
	}
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return nil, fmt.Errorf("read the ARN of queue %s: %w", queue, err)
	}
	queueARN := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if queueARN == "" {
		return nil, errors.New("the queue has no QueueArn attribute")
	}
	s := newEventsSetup(queue, rule, queueARN, "", pipelineARNs)
	r, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventPattern: aws.String(string(s.Pattern)),
		State: ebtypes.RuleStateEnabled, Description: aws.String("SageMaker pipeline status events for pipelinestop waits")})
	if err != nil {
		return nil, fmt.Errorf("put rule %s: %w", rule, err)
	}
	s = newEventsSetup(queue, rule, queueARN, aws.ToString(r.RuleArn), pipelineARNs)
	s.QueueURL = aws.ToString(q.QueueUrl)
	if _, err := sq.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: q.QueueUrl,
		Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): string(s.QueuePolicy)}}); err != nil {
		return nil, fmt.Errorf("set the policy of queue %s: %w", queue, err)
	}
	t, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule),
		Targets: []ebtypes.Target{{Id: aws.String(eventTargetID), Arn: aws.String(queueARN)}}})
	if err != nil {
		return nil, fmt.Errorf("put the queue as the target of rule %s: %w", rule, err)
	}
	if t.FailedEntryCount > 0 && len(t.FailedEntries) > 0 {
		f := t.FailedEntries[0]
		return nil, fmt.Errorf("put the queue as the target of rule %s: %s: %s", rule, aws.ToString(f.ErrorCode), aws.ToString(f.ErrorMessage))
	}
	return s, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// eventsFlags are the flags of the commands that wait (wait, stop --wait):
// an events queue, and what to do about unanswered callback steps.
type eventsFlags struct {
	queue           *string
	answerCallbacks *string
	grace           *time.Duration
}

func addEventsFlags(fs *flag.FlagSet) *eventsFlags {
	return &eventsFlags{
		queue: fs.String("events-queue", "", "URL or name of an SQS queue that receives SageMaker's pipeline events "+
			"(see stopctl events setup): wait on events instead of polling"),
		answerCallbacks: fs.String("answer-callbacks", "", "fail: answer the callback steps that still hold a Stopping "+
			"execution after --grace with a failure, so the stop finishes (default: wait for their consumer)"),
		grace: fs.Duration("grace", pipelinestop.DefaultCallbackGrace, "with --answer-callbacks: the time a consumer has to answer first"),
	}
}

// check validates the flags.
func (f *eventsFlags) check(cmd string) error {
	switch *f.answerCallbacks {
	case "", "fail":
	default:
		return usagef("%s: --answer-callbacks takes fail (got %q)", cmd, *f.answerCallbacks)
	}
	if *f.grace <= 0 {
		return usagef("%s: --grace must be positive", cmd)
	}
	return nil
}

// start applies the flags to o: it starts a Watcher of the events queue
// (stopped by the returned function) and sets the callback policy.
func (f *eventsFlags) start(ctx context.Context, e *env, o *[]func(*pipelinestop.Options)) (stop func(), err error) {
	if *f.answerCallbacks == "fail" {
		grace := *f.grace
		*o = append(*o, func(o *pipelinestop.Options) { o.Callbacks, o.CallbackGrace = pipelinestop.CallbackFail, grace })
	}
	if *f.queue == "" {
		return func() {}, nil
	}
	sq, err := e.sqsClient(ctx)
	if err != nil {
		return nil, err
	}
	url := *f.queue
	if !strings.Contains(url, "/") {
		out, err := sq.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(url)})
		if err != nil {
			return nil, fmt.Errorf("find the URL of queue %s: %w", url, err)
		}
		url = aws.ToString(out.QueueUrl)
	}
	w, err := pipelinestop.NewWatcher(sq, url)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(wctx); err != nil {
			fmt.Fprintf(e.stderr, "stopctl: events queue %s: %v (waits go on polling)\n", *f.queue, e.errorText(err))
		}
	}()
	*o = append(*o, func(o *pipelinestop.Options) { o.Watcher = w })
	return func() {
		cancel()
		<-done
	}, nil
}
