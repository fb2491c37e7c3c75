package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// manualClock is a settable clock for the SQS backend's rules.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// startWithClock starts an emulator whose SQS rules read a manual clock.
func startWithClock(t *testing.T) (*Emulator, *manualClock) {
	t.Helper()
	e := StartTest(t, Config{})
	c := &manualClock{now: time.Now()}
	e.SetSQSClock(c.Now)
	return e, c
}

// rawSQS posts a JSON body to an SQS operation without the SDK (whose
// types cannot express some bad inputs) and returns the status and the
// decoded error type.
func rawSQS(t *testing.T, e *Emulator, op string, body any) (int, map[string]any) {
	t.Helper()
	buf, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, e.URL(), bytes.NewReader(buf))
	req.Header.Set("X-Amz-Target", "AmazonSQS."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	data, _ := io.ReadAll(resp.Body)
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s answer %q is not JSON: %v", op, data, err)
		}
	}
	return resp.StatusCode, out
}

func receiveOne(t *testing.T, q *sqs.Client, url string, vis int32) sqstypes.Message {
	t.Helper()
	out, err := q.ReceiveMessage(testContext(t), &sqs.ReceiveMessageInput{QueueUrl: &url, VisibilityTimeout: vis,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("received %d messages, want 1", len(out.Messages))
	}
	return out.Messages[0]
}

func counts(t *testing.T, q *sqs.Client, url string) (visible, inflight string) {
	t.Helper()
	out, err := q.GetQueueAttributes(testContext(t), &sqs.GetQueueAttributesInput{QueueUrl: &url,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]
}

func makeVisible(t *testing.T, q *sqs.Client, url string, m sqstypes.Message) {
	t.Helper()
	if _, err := q.ChangeMessageVisibility(testContext(t), &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
}

// A delete with an older receipt handle succeeds and deletes nothing; a
// visibility change with it fails; only the latest handle acts.
func TestSQSStaleReceiptHandle(t *testing.T) {
	e := StartTest(t, Config{})
	q := e.SQSClient()
	ctx := testContext(t)
	url, _ := e.CreateQueue("stale")
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	first := receiveOne(t, q, url, 30)
	makeVisible(t, q, url, first)
	second := receiveOne(t, q, url, 30)

	if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: first.ReceiptHandle}); err != nil {
		t.Fatalf("delete with the older handle: %v; want success without effect", err)
	}
	if v, f := counts(t, q, url); v != "0" || f != "1" {
		t.Fatalf("after a stale delete visible=%s inflight=%s; want the message still in flight", v, f)
	}
	if n := e.Requests(StaleDeletes); n != 1 {
		t.Fatalf("Requests(StaleDeletes) = %d, want 1", n)
	}
	_, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 10})
	requireCode(t, err, "InvalidParameterValue", "receipt handle has expired")
	batch, err := q.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &url, Entries: []sqstypes.ChangeMessageVisibilityBatchRequestEntry{
		{Id: aws.String("old"), ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 10},
		{Id: aws.String("new"), ReceiptHandle: second.ReceiptHandle, VisibilityTimeout: 10},
	}})
	if err != nil || len(batch.Successful) != 1 || *batch.Successful[0].Id != "new" || len(batch.Failed) != 1 || *batch.Failed[0].Code != "InvalidParameterValue" {
		t.Fatalf("batch with an old and a new handle: %+v %v", batch, err)
	}

	// The latest handle of a message no longer in flight cannot change its
	// visibility, but still deletes it.
	makeVisible(t, q, url, second)
	_, err = q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: second.ReceiptHandle, VisibilityTimeout: 10})
	var notInflight *sqstypes.MessageNotInflight
	if !errors.As(err, &notInflight) {
		t.Fatalf("visibility change of a message not in flight: %v; want *types.MessageNotInflight", err)
	}
	if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: second.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if v, f := counts(t, q, url); v != "0" || f != "0" {
		t.Fatalf("after deleting with the latest handle visible=%s inflight=%s", v, f)
	}
	if n := e.Requests(StaleDeletes); n != 1 {
		t.Fatalf("Requests(StaleDeletes) = %d after an effective delete, want 1", n)
	}
}

// Visibility is at most 12 hours counted from the receive, and huge values
// are refused rather than overflowing.
func TestSQSVisibilityLimit(t *testing.T) {
	e, clock := startWithClock(t)
	q := e.SQSClient()
	ctx := testContext(t)
	url, _ := e.CreateQueue("limit")
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	m := receiveOne(t, q, url, 7200)
	clock.Advance(time.Hour)
	_, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 43200})
	requireCode(t, err, "InvalidParameterValue", "beyond the limit [43200 seconds]")
	if _, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 39600}); err != nil {
		t.Fatalf("extending to exactly 12 hours after the receive: %v", err)
	}
	clock.Advance(10*time.Hour + 59*time.Minute)
	_, err = q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 120})
	requireCode(t, err, "InvalidParameterValue", "beyond the limit")

	for _, op := range []string{"ChangeMessageVisibility", "ReceiveMessage"} {
		for _, v := range []int64{18446744074, 43201, -1} {
			status, out := rawSQS(t, e, op, map[string]any{"QueueUrl": url, "ReceiptHandle": *m.ReceiptHandle, "VisibilityTimeout": v})
			if status != http.StatusBadRequest || out["__type"] != "com.amazonaws.sqs#InvalidParameterValue" {
				t.Errorf("%s with VisibilityTimeout %d: HTTP %d %v; want 400 InvalidParameterValue", op, v, status, out)
			}
		}
	}
	status, out := rawSQS(t, e, "CreateQueue", map[string]any{"QueueName": "huge", "Attributes": map[string]string{"VisibilityTimeout": "18446744074"}})
	if status != http.StatusBadRequest || out["__type"] != "com.amazonaws.sqs#InvalidAttributeValue" {
		t.Errorf("CreateQueue with VisibilityTimeout 18446744074: HTTP %d %v", status, out)
	}
}

// A message received maxReceiveCount times moves to the dead-letter queue
// on its next receive, keeping its ID and body.
func TestSQSRedrive(t *testing.T) {
	e := StartTest(t, Config{})
	q := e.SQSClient()
	ctx := testContext(t)
	dlq, _ := e.CreateQueue("dead")
	dlqARN := e.queues.arnFor("dead")
	policy := `{"deadLetterTargetArn":"` + dlqARN + `","maxReceiveCount":"2"}`
	src, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("work"), Attributes: map[string]string{"RedrivePolicy": policy}})
	if err != nil {
		t.Fatal(err)
	}
	url := *src.QueueUrl
	got, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameRedrivePolicy}})
	if err != nil || got.Attributes["RedrivePolicy"] != `{"deadLetterTargetArn":"`+dlqARN+`","maxReceiveCount":2}` {
		t.Fatalf("RedrivePolicy read back: %v %v", got.Attributes, err)
	}
	sent, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("poison")})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		m := receiveOne(t, q, url, 30)
		if m.Attributes["ApproximateReceiveCount"] != strconv.Itoa(i) {
			t.Fatalf("receive %d: count %s", i, m.Attributes["ApproximateReceiveCount"])
		}
		makeVisible(t, q, url, m)
	}
	out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url})
	if err != nil || len(out.Messages) != 0 {
		t.Fatalf("third receive from the source: %d messages %v; want none (moved)", len(out.Messages), err)
	}
	moved := receiveOne(t, q, dlq, 30)
	if *moved.MessageId != *sent.MessageId || *moved.Body != "poison" || moved.Attributes["DeadLetterQueueSourceArn"] != e.queues.arnFor("work") {
		t.Fatalf("dead-lettered message %+v", moved)
	}
	srcs, err := q.ListDeadLetterSourceQueues(ctx, &sqs.ListDeadLetterSourceQueuesInput{QueueUrl: &dlq})
	if err != nil || len(srcs.QueueUrls) != 1 || srcs.QueueUrls[0] != url {
		t.Fatalf("ListDeadLetterSourceQueues %v %v", srcs, err)
	}
	// Removing the policy stops the moves.
	if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{"RedrivePolicy": ""}}); err != nil {
		t.Fatal(err)
	}
	got, _ = q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if _, ok := got.Attributes["RedrivePolicy"]; ok {
		t.Fatalf("RedrivePolicy still reported after removal: %v", got.Attributes)
	}

	for _, bad := range []struct{ policy, msg string }{
		{`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:nope","maxReceiveCount":3}`, "Dead letter target does not exist"},
		{`{"deadLetterTargetArn":"` + dlqARN + `","maxReceiveCount":0}`, "valid values are from 1 to 1000"},
		{`{"deadLetterTargetArn":"` + dlqARN + `","maxReceiveCount":1001}`, "valid values are from 1 to 1000"},
		{`{"deadLetterTargetArn":"` + dlqARN + `"}`, "maxReceiveCount"},
		{`{"maxReceiveCount":3}`, "deadLetterTargetArn"},
		{`not json`, "not a valid JSON object"},
		{`{"deadLetterTargetArn":"` + e.queues.arnFor("work") + `","maxReceiveCount":3}`, "its own dead-letter queue"},
	} {
		_, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{"RedrivePolicy": bad.policy}})
		var iav *sqstypes.InvalidAttributeValue
		if !errors.As(err, &iav) || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("RedrivePolicy %s: %v; want InvalidAttributeValue mentioning %q", bad.policy, err, bad.msg)
		}
	}
}
