package emulator

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// FIFO queues are refused with an error that says so.
func TestSQSFIFORefused(t *testing.T) {
	e := StartTest(t, Config{})
	q := e.SQSClient()
	for _, in := range []*sqs.CreateQueueInput{
		{QueueName: aws.String("orders.fifo"), Attributes: map[string]string{"FifoQueue": "true"}},
		{QueueName: aws.String("orders.fifo")},
		{QueueName: aws.String("orders"), Attributes: map[string]string{"FifoQueue": "true"}},
	} {
		_, err := q.CreateQueue(testContext(t), in)
		var unsupported *sqstypes.UnsupportedOperation
		if !errors.As(err, &unsupported) || !strings.Contains(err.Error(), "FIFO queues are not supported") {
			t.Errorf("CreateQueue %s %v: %v; want UnsupportedOperation saying FIFO queues are not supported", *in.QueueName, in.Attributes, err)
		}
	}
}

// Unknown queue attributes are refused, at creation and later.
func TestSQSUnknownAttributes(t *testing.T) {
	e := StartTest(t, Config{})
	q := e.SQSClient()
	ctx := testContext(t)
	var name *sqstypes.InvalidAttributeName
	for _, attr := range []string{"Frobnication", "ContentBasedDeduplication", "visibilitytimeout"} {
		if _, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q"), Attributes: map[string]string{attr: "1"}}); !errors.As(err, &name) {
			t.Errorf("CreateQueue with attribute %s: %v; want InvalidAttributeName", attr, err)
		}
	}
	url, _ := e.CreateQueue("q")
	for _, attr := range []string{"Frobnication", "QueueArn", "FifoQueue"} {
		if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{attr: "1"}}); !errors.As(err, &name) {
			t.Errorf("SetQueueAttributes %s: %v; want InvalidAttributeName", attr, err)
		}
	}
	var value *sqstypes.InvalidAttributeValue
	if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{"MaximumMessageSize": "1048577"}}); !errors.As(err, &value) {
		t.Errorf("MaximumMessageSize over 1 MiB: %v; want InvalidAttributeValue", err)
	}
}

// A second purge within 60 seconds is PurgeQueueInProgress.
func TestSQSPurgeInProgress(t *testing.T) {
	e, clock := startWithClock(t)
	q := e.SQSClient()
	ctx := testContext(t)
	url, _ := e.CreateQueue("purged")
	if _, err := q.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: &url}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Second)
	_, err := q.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: &url})
	var inProgress *sqstypes.PurgeQueueInProgress
	if !errors.As(err, &inProgress) {
		t.Fatalf("second purge within 60 s: %v; want *types.PurgeQueueInProgress", err)
	}
	clock.Advance(time.Second)
	if _, err := q.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: &url}); err != nil {
		t.Fatalf("purge 60 s later: %v", err)
	}
}

// SQS leaves out empty Messages and Attributes.
func TestSQSEmptyFieldsLeftOut(t *testing.T) {
	e := StartTest(t, Config{})
	url, _ := e.CreateQueue("empty")
	status, out := rawSQS(t, e, "ReceiveMessage", map[string]any{"QueueUrl": url})
	if _, ok := out["Messages"]; status != http.StatusOK || ok {
		t.Errorf("ReceiveMessage of an empty queue: HTTP %d %v; want no Messages member", status, out)
	}
	status, out = rawSQS(t, e, "GetQueueAttributes", map[string]any{"QueueUrl": url})
	if _, ok := out["Attributes"]; status != http.StatusOK || ok {
		t.Errorf("GetQueueAttributes without names: HTTP %d %v; want no Attributes member", status, out)
	}
	status, out = rawSQS(t, e, "ListQueueTags", map[string]any{"QueueUrl": url})
	if _, ok := out["Tags"]; status != http.StatusOK || ok {
		t.Errorf("ListQueueTags of an untagged queue: HTTP %d %v", status, out)
	}
	status, out = rawSQS(t, e, "ListQueues", map[string]any{"QueueNamePrefix": "zzz"})
	if _, ok := out["QueueUrls"]; status != http.StatusOK || ok {
		t.Errorf("ListQueues with no match: HTTP %d %v", status, out)
	}
}

// Messages may be 1 MiB, as the current service model says; larger ones
// get the size error, not a cut-off body's SerializationException.
func TestSQSMessageSize(t *testing.T) {
	e := StartTest(t, Config{})
	q := e.SQSClient()
	ctx := testContext(t)
	url, _ := e.CreateQueue("big")
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(strings.Repeat("x", 1<<20))}); err != nil {
		t.Fatalf("a 1 MiB message: %v", err)
	}
	_, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("a \u0001 byte")})
	requireCode(t, err, "InvalidMessageContents", "#x1")
	_, err = q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(strings.Repeat("<", 1<<20+1))})
	requireCode(t, err, "InvalidParameterValue", "Message must be shorter than 1048576 bytes")
	_, err = q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(strings.Repeat("x", 1<<20-10)),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{"name": {DataType: aws.String("String"), StringValue: aws.String("twelve bytes")}}})
	requireCode(t, err, "InvalidParameterValue", "shorter than")

	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameMaximumMessageSize}})
	if err != nil || attrs.Attributes["MaximumMessageSize"] != "1048576" {
		t.Fatalf("MaximumMessageSize %v %v", attrs, err)
	}
	if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{"MaximumMessageSize": "1024"}}); err != nil {
		t.Fatal(err)
	}
	_, err = q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(strings.Repeat("x", 1025))})
	requireCode(t, err, "InvalidParameterValue", "shorter than 1024 bytes")

	entries := make([]sqstypes.SendMessageBatchRequestEntry, 2)
	for i := range entries {
		entries[i] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(string(rune('a' + i))), MessageBody: aws.String(strings.Repeat("x", 600))}
	}
	_, err = q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: entries})
	var tooLong *sqstypes.BatchRequestTooLong
	if !errors.As(err, &tooLong) {
		t.Fatalf("a batch over MaximumMessageSize: %v; want *types.BatchRequestTooLong", err)
	}
}

func TestSQSMessageAttributeErrors(t *testing.T) {
	e := StartTest(t, Config{})
	q := e.SQSClient()
	ctx := testContext(t)
	url, _ := e.CreateQueue("attrs")
	str := func(v string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	eleven := map[string]sqstypes.MessageAttributeValue{}
	for i := range 11 {
		eleven[string(rune('a'+i))] = str("v")
	}
	for _, tc := range []struct {
		attrs map[string]sqstypes.MessageAttributeValue
		msg   string
	}{
		{eleven, "exceeds the allowed maximum [10]"},
		{map[string]sqstypes.MessageAttributeValue{"AWS.trace": str("v")}, "reserved"},
		{map[string]sqstypes.MessageAttributeValue{"a..b": str("v")}, "'..'"},
		{map[string]sqstypes.MessageAttributeValue{"n": {DataType: aws.String("Number"), StringValue: aws.String("twelve")}}, "to a number"},
		{map[string]sqstypes.MessageAttributeValue{"t": {DataType: aws.String("Date"), StringValue: aws.String("x")}}, "supported type prefixes"},
		{map[string]sqstypes.MessageAttributeValue{"s": {DataType: aws.String("String")}}, "non-empty value"},
		{map[string]sqstypes.MessageAttributeValue{"b": {DataType: aws.String("Binary")}}, "non-empty value"},
	} {
		_, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("x"), MessageAttributes: tc.attrs})
		requireCode(t, err, "InvalidParameterValue", tc.msg)
	}
	// A batch reports a bad entry in Failed and sends the others.
	res, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: []sqstypes.SendMessageBatchRequestEntry{
		{Id: aws.String("good"), MessageBody: aws.String("x")},
		{Id: aws.String("bad"), MessageBody: aws.String("x"), MessageAttributes: map[string]sqstypes.MessageAttributeValue{"AWS.x": str("v")}},
	}})
	if err != nil || len(res.Successful) != 1 || len(res.Failed) != 1 || *res.Failed[0].Id != "bad" || *res.Failed[0].Code != "InvalidParameterValue" {
		t.Fatalf("batch with a bad entry: %+v %v", res, err)
	}
	_, err = q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: []sqstypes.SendMessageBatchRequestEntry{
		{Id: aws.String("no spaces"), MessageBody: aws.String("x")}}})
	var badID *sqstypes.InvalidBatchEntryId
	if !errors.As(err, &badID) {
		t.Fatalf("a batch entry ID with a space: %v; want *types.InvalidBatchEntryId", err)
	}
}

// A deleted queue's name can be used again after 60 seconds.
func TestSQSQueueDeletedRecently(t *testing.T) {
	e, clock := startWithClock(t)
	q := e.SQSClient()
	ctx := testContext(t)
	url, _ := e.CreateQueue("reused")
	if _, err := q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &url}); err != nil {
		t.Fatal(err)
	}
	_, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("reused")})
	var recently *sqstypes.QueueDeletedRecently
	if !errors.As(err, &recently) {
		t.Fatalf("recreate at once: %v; want *types.QueueDeletedRecently", err)
	}
	clock.Advance(time.Minute)
	if _, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("reused")}); err != nil {
		t.Fatalf("recreate a minute later: %v", err)
	}
}
