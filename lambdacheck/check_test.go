package lambdacheck_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop/lambdacheck"
)

const queueARN = "arn:aws:sqs:us-east-1:123456789012:callbacks"

// fakeLambda serves one function and its mappings, two per page.
type fakeLambda struct {
	timeout  int32
	mappings []ltypes.EventSourceMappingConfiguration
	err      error
}

func (f *fakeLambda) GetFunctionConfiguration(_ context.Context, in *lambda.GetFunctionConfigurationInput, _ ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &lambda.GetFunctionConfigurationOutput{FunctionName: in.FunctionName, FunctionArn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:" + aws.ToString(in.FunctionName)), Timeout: aws.Int32(f.timeout)}, nil
}

func (f *fakeLambda) ListEventSourceMappings(_ context.Context, in *lambda.ListEventSourceMappingsInput, _ ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error) {
	start := 0
	if in.Marker != nil {
		start = int(aws.ToString(in.Marker)[0] - '0')
	}
	end := min(start+2, len(f.mappings))
	out := &lambda.ListEventSourceMappingsOutput{EventSourceMappings: f.mappings[start:end]}
	if end < len(f.mappings) {
		out.NextMarker = aws.String(string(rune('0' + end)))
	}
	return out, nil
}

// fakeQueue serves one queue's attributes.
type fakeQueue struct {
	attrs map[string]string
	err   error
}

func (q *fakeQueue) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	if q.err != nil {
		return nil, q.err
	}
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String("https://sqs.us-east-1.amazonaws.com/" + aws.ToString(in.QueueOwnerAWSAccountId) + "/" + aws.ToString(in.QueueName))}, nil
}

func (q *fakeQueue) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return &sqs.GetQueueAttributesOutput{Attributes: q.attrs}, nil
}

func goodMapping() ltypes.EventSourceMappingConfiguration {
	return ltypes.EventSourceMappingConfiguration{
		UUID: aws.String("uuid-1"), EventSourceArn: aws.String(queueARN), State: aws.String("Enabled"), BatchSize: aws.Int32(10),
		MaximumBatchingWindowInSeconds: aws.Int32(0), FunctionResponseTypes: []ltypes.FunctionResponseType{ltypes.FunctionResponseTypeReportBatchItemFailures},
	}
}

func goodQueue() *fakeQueue {
	return &fakeQueue{attrs: map[string]string{"VisibilityTimeout": "360", "RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":"5"}`}}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name        string
		change      func(l *fakeLambda, q *fakeQueue)
		messageTime time.Duration
		want        []lambdacheck.Problem
		wantText    []string
	}{
		{name: "all well", change: func(*fakeLambda, *fakeQueue) {}},
		{name: "no mapping", change: func(l *fakeLambda, _ *fakeQueue) { l.mappings = nil },
			want: []lambdacheck.Problem{lambdacheck.ProblemNoMapping}, wantText: []string{"--function-response-types ReportBatchItemFailures"}},
		{name: "only a Kinesis mapping", change: func(l *fakeLambda, _ *fakeQueue) {
			l.mappings[0].EventSourceArn = aws.String("arn:aws:kinesis:us-east-1:123456789012:stream/s")
		}, want: []lambdacheck.Problem{lambdacheck.ProblemNoMapping}},
		{name: "no ReportBatchItemFailures", change: func(l *fakeLambda, _ *fakeQueue) { l.mappings[0].FunctionResponseTypes = nil },
			want: []lambdacheck.Problem{lambdacheck.ProblemNoPartialResponses}, wantText: []string{"silently ignores", "--uuid uuid-1 --function-response-types ReportBatchItemFailures"}},
		{name: "disabled", change: func(l *fakeLambda, _ *fakeQueue) { l.mappings[0].State = aws.String("Disabled") },
			want: []lambdacheck.Problem{lambdacheck.ProblemMappingDisabled}, wantText: []string{"--enabled"}},
		{name: "visibility under six timeouts", change: func(_ *fakeLambda, q *fakeQueue) { q.attrs["VisibilityTimeout"] = "359" },
			want: []lambdacheck.Problem{lambdacheck.ProblemVisibilityTimeout}, wantText: []string{"VisibilityTimeout=360", "6m0s"}},
		{name: "batching window counts", change: func(l *fakeLambda, _ *fakeQueue) { l.mappings[0].MaximumBatchingWindowInSeconds = aws.Int32(20) },
			want: []lambdacheck.Problem{lambdacheck.ProblemVisibilityTimeout}, wantText: []string{"VisibilityTimeout=380"}},
		{name: "no redrive policy", change: func(_ *fakeLambda, q *fakeQueue) { delete(q.attrs, "RedrivePolicy") },
			want: []lambdacheck.Problem{lambdacheck.ProblemNoRedrivePolicy}, wantText: []string{"deadLetterTargetArn"}},
		{name: "maxReceiveCount 1", change: func(_ *fakeLambda, q *fakeQueue) {
			q.attrs["RedrivePolicy"] = `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":1}`
		}, want: []lambdacheck.Problem{lambdacheck.ProblemLowMaxReceiveCount}, wantText: []string{"after 1 receive(s)", "at least 5"}},
		{name: "timeout within the margin", change: func(l *fakeLambda, q *fakeQueue) { l.timeout = 2; q.attrs["VisibilityTimeout"] = "12" },
			want: []lambdacheck.Problem{lambdacheck.ProblemBatchTooSlow}, wantText: []string{"no message is ever handled"}},
		{name: "batch too slow", messageTime: 20 * time.Second, change: func(l *fakeLambda, _ *fakeQueue) { l.mappings[0].BatchSize = aws.Int32(100) },
			// 10 rounds of 20 s + 2 s > 60 s; 2 rounds fit: 20 messages.
			want: []lambdacheck.Problem{lambdacheck.ProblemBatchTooSlow}, wantText: []string{"--batch-size 20", "at least 202 s"}},
		{name: "batch fits", messageTime: 20 * time.Second, change: func(*fakeLambda, *fakeQueue) {}},
		{name: "queue unreadable", change: func(_ *fakeLambda, q *fakeQueue) { q.err = errors.New("AccessDenied") },
			want: []lambdacheck.Problem{lambdacheck.ProblemQueueUnreadable}, wantText: []string{"AccessDenied"}},
		{name: "second page", change: func(l *fakeLambda, _ *fakeQueue) {
			other := goodMapping()
			other.EventSourceArn = aws.String("arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x")
			bad := goodMapping()
			bad.UUID, bad.FunctionResponseTypes = aws.String("uuid-3"), nil
			l.mappings = append(l.mappings, other, bad)
		}, want: []lambdacheck.Problem{lambdacheck.ProblemNoPartialResponses}, wantText: []string{"uuid-3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &fakeLambda{timeout: 60, mappings: []ltypes.EventSourceMappingConfiguration{goodMapping()}}
			q := goodQueue()
			tt.change(l, q)
			r, err := lambdacheck.Check(context.Background(), l, q, "answer", func(o *lambdacheck.Options) { o.MessageTime = tt.messageTime })
			if err != nil {
				t.Fatal(err)
			}
			var got []lambdacheck.Problem
			for _, f := range r.Findings {
				got = append(got, f.Problem)
				if !strings.HasSuffix(f.Message, ".") || f.Message[0] < 'A' || f.Message[0] > 'Z' {
					t.Errorf("finding is not a sentence: %q", f.Message)
				}
			}
			if strings.Join(problems(got), ",") != strings.Join(problems(tt.want), ",") {
				t.Fatalf("findings = %v, want %v\n%s", got, tt.want, r)
			}
			if r.OK() != (len(tt.want) == 0) {
				t.Fatalf("OK() = %v with findings %v", r.OK(), got)
			}
			text := r.String()
			for _, w := range tt.wantText {
				if !strings.Contains(text, w) {
					t.Errorf("report does not say %q:\n%s", w, text)
				}
			}
		})
	}
}

func problems(ps []lambdacheck.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, string(p))
	}
	return out
}

func TestCheckErrors(t *testing.T) {
	l := &fakeLambda{timeout: 60}
	q := goodQueue()
	for name, call := range map[string]func() error{
		"nil lambda": func() error { _, err := lambdacheck.Check(context.Background(), nil, q, "f"); return err },
		"nil sqs":    func() error { _, err := lambdacheck.Check(context.Background(), l, nil, "f"); return err },
		"no name":    func() error { _, err := lambdacheck.Check(context.Background(), l, q, ""); return err },
	} {
		if err := call(); !errors.Is(err, lambdacheck.ErrInvalidCheck) {
			t.Errorf("%s: err = %v, want ErrInvalidCheck", name, err)
		}
	}
	boom := errors.New("ResourceNotFoundException: Function not found")
	_, err := lambdacheck.Check(context.Background(), &fakeLambda{err: boom}, q, "f")
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "get function configuration: ") {
		t.Fatalf("err = %v, want the wrapped Lambda error", err)
	}
}
