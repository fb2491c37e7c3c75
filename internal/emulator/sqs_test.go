package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/pipelinestop/pipelinestop/internal/motoserver"
)

// sqsScenarios is one suite of observable SQS behaviour. It runs against
// the emulator and against moto_server, which must agree.
func sqsScenarios(t *testing.T, q *sqs.Client) {
	ctx := testContext(t)
	create := func(t *testing.T, name string, vis int) string {
		t.Helper()
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name),
			Attributes: map[string]string{"VisibilityTimeout": strconv.Itoa(vis)}})
		if err != nil {
			t.Fatal(err)
		}
		return *out.QueueUrl
	}
	attrs := func(t *testing.T, url string) (visible, inflight string) {
		t.Helper()
		out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]
	}
	send := func(t *testing.T, url, body string) {
		t.Helper()
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err) // the SDK also checks MD5OfMessageBody
		}
	}
	recv := func(t *testing.T, url string, n, vis int32) []sqstypes.Message {
		t.Helper()
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: n, VisibilityTimeout: vis, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount, sqstypes.MessageSystemAttributeNameSentTimestamp}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}

	t.Run("send receive delete", func(t *testing.T) {
		url := create(t, "basic", 30)
		got, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("basic")})
		if err != nil || *got.QueueUrl != url {
			t.Fatalf("GetQueueUrl %v %v", got, err)
		}
		send(t, url, `{"hello": "wörld"}`)
		if v, i := attrs(t, url); v != "1" || i != "0" {
			t.Fatalf("after send visible=%s inflight=%s", v, i)
		}
		msgs := recv(t, url, 10, 0)
		if len(msgs) != 1 || *msgs[0].Body != `{"hello": "wörld"}` || msgs[0].Attributes["ApproximateReceiveCount"] != "1" || msgs[0].Attributes["SentTimestamp"] == "" {
			t.Fatalf("received %+v", msgs)
		}
		if v, i := attrs(t, url); v != "0" || i != "1" {
			t.Fatalf("in flight visible=%s inflight=%s", v, i)
		}
		if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: msgs[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
		if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: msgs[0].ReceiptHandle}); err != nil {
			t.Fatalf("second delete: %v", err)
		}
		if v, i := attrs(t, url); v != "0" || i != "0" {
			t.Fatalf("after delete visible=%s inflight=%s", v, i)
		}
	})

	t.Run("visibility expiry and redelivery", func(t *testing.T) {
		url := create(t, "redeliver", 1)
		send(t, url, "again")
		first := recv(t, url, 1, 0)
		if len(first) != 1 {
			t.Fatal("no message")
		}
		start := time.Now()
		second := recv(t, url, 1, 0) // long poll of 1 s sees it come back
		for i := 0; len(second) == 0 && i < 3; i++ {
			second = recv(t, url, 1, 0)
		}
		if len(second) != 1 || time.Since(start) < 500*time.Millisecond {
			t.Fatalf("redelivery: %d messages after %v", len(second), time.Since(start))
		}
		if *second[0].ReceiptHandle == *first[0].ReceiptHandle || second[0].Attributes["ApproximateReceiveCount"] != "2" {
			t.Fatalf("redelivered message %+v", second[0])
		}
		// Visibility 0 makes it visible at once.
		if _, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: second[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
		third := recv(t, url, 1, 0)
		if len(third) != 1 || third[0].Attributes["ApproximateReceiveCount"] != "3" {
			t.Fatalf("after visibility 0: %+v", third)
		}
	})

	t.Run("batches", func(t *testing.T) {
		url := create(t, "batch", 30)
		for i := range 3 {
			send(t, url, fmt.Sprint("m", i))
		}
		var msgs []sqstypes.Message
		for i := 0; len(msgs) < 3 && i < 5; i++ {
			msgs = append(msgs, recv(t, url, 10, 0)...)
		}
		if len(msgs) != 3 {
			t.Fatalf("received %d of 3", len(msgs))
		}
		cv, err := q.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &url, Entries: []sqstypes.ChangeMessageVisibilityBatchRequestEntry{
			{Id: aws.String("a"), ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 60},
			{Id: aws.String("bad"), ReceiptHandle: aws.String("not-a-handle"), VisibilityTimeout: 60},
		}})
		if err != nil || len(cv.Successful) != 1 || len(cv.Failed) != 1 || *cv.Failed[0].Id != "bad" || !cv.Failed[0].SenderFault {
			t.Fatalf("ChangeMessageVisibilityBatch %+v %v", cv, err)
		}
		var entries []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range msgs {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("e", i)), ReceiptHandle: m.ReceiptHandle})
		}
		entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String("bad"), ReceiptHandle: aws.String("not-a-handle")})
		del, err := q.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: entries})
		if err != nil {
			t.Fatal(err)
		}
		var ok []string
		for _, s := range del.Successful {
			ok = append(ok, *s.Id)
		}
		sort.Strings(ok)
		if fmt.Sprint(ok) != "[e0 e1 e2]" || len(del.Failed) != 1 || *del.Failed[0].Code != "ReceiptHandleIsInvalid" {
			t.Fatalf("DeleteMessageBatch ok=%v failed=%+v", ok, del.Failed)
		}
		_, err = q.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: []sqstypes.DeleteMessageBatchRequestEntry{}})
		var empty *sqstypes.EmptyBatchRequest
		if !errors.As(err, &empty) {
			t.Fatalf("empty batch: %v", err)
		}
	})

	t.Run("purge", func(t *testing.T) {
		url := create(t, "purge", 30)
		send(t, url, "x")
		if _, err := q.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: &url}); err != nil {
			t.Fatal(err)
		}
		if v, _ := attrs(t, url); v != "0" {
			t.Fatalf("after purge %s visible", v)
		}
	})

	t.Run("errors", func(t *testing.T) {
		url := create(t, "exists", 30)
		missing := strings.TrimSuffix(url, "exists") + "missing-queue"
		var dne *sqstypes.QueueDoesNotExist
		if _, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("missing-queue")}); !errors.As(err, &dne) {
			t.Fatalf("GetQueueUrl of a missing queue: %v; want *types.QueueDoesNotExist", err)
		}
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &missing, MessageBody: aws.String("x")}); !errors.As(err, &dne) {
			t.Fatalf("SendMessage to a missing queue: %v", err)
		}
		var invalid *sqstypes.ReceiptHandleIsInvalid
		if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: aws.String("bogus")}); !errors.As(err, &invalid) {
			t.Fatalf("DeleteMessage with a bogus handle: %v", err)
		}
		_, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 11})
		requireCode(t, err, "InvalidParameterValue", "MaxNumberOfMessages")
		var exists *sqstypes.QueueNameExists
		if _, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("exists"), Attributes: map[string]string{"VisibilityTimeout": "31"}}); !errors.As(err, &exists) {
			t.Fatalf("CreateQueue with other attributes: %v; want *types.QueueNameExists", err)
		}
	})
}

// sqsMoreScenarios covers the queue management operations, message
// attributes, batches and redrive; like sqsScenarios it runs against the
// emulator and against moto_server, which must agree.
//
// Where moto departs from SQS's documented behaviour the emulator follows
// SQS and the test is emulator-only (sqs_strict_test.go,
// sqs_fidelity_test.go): moto deletes with any receipt handle a message
// ever had and changes visibility with it, counts the 12-hour limit from
// the send, accepts a second PurgeQueue at once, lets a deleted queue's
// name be reused at once and supports FIFO queues.
func sqsMoreScenarios(t *testing.T, q *sqs.Client) {
	ctx := testContext(t)
	t.Run("list get set delete queues", func(t *testing.T) {
		var urls []string
		for _, name := range []string{"lq-b", "lq-a", "lq-c", "other-lq"} {
			out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			urls = append(urls, *out.QueueUrl)
		}
		all, err := q.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("lq-")})
		if err != nil {
			t.Fatal(err)
		}
		got := append([]string(nil), all.QueueUrls...)
		sort.Strings(got)
		if len(got) != 3 || !strings.HasSuffix(got[0], "/lq-a") || !strings.HasSuffix(got[2], "/lq-c") {
			t.Fatalf("ListQueues lq-: %v", all.QueueUrls)
		}
		var paged []string
		in := &sqs.ListQueuesInput{QueueNamePrefix: aws.String("lq-"), MaxResults: aws.Int32(2)}
		for i := 0; i < 5; i++ {
			page, err := q.ListQueues(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, page.QueueUrls...)
			if page.NextToken == nil {
				break
			}
			in.NextToken = page.NextToken
		}
		sort.Strings(paged)
		if fmt.Sprint(paged) != fmt.Sprint(got) {
			t.Fatalf("paged ListQueues %v; want %v", paged, got)
		}
		none, err := q.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("no-such-prefix")})
		if err != nil || len(none.QueueUrls) != 0 {
			t.Fatalf("ListQueues with no match: %v %v", none, err)
		}

		if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: &urls[0], Attributes: map[string]string{
			"VisibilityTimeout": "45", "DelaySeconds": "2", "MessageRetentionPeriod": "3600"}}); err != nil {
			t.Fatal(err)
		}
		attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &urls[0], AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"VisibilityTimeout": "45", "DelaySeconds": "2", "MessageRetentionPeriod": "3600"} {
			if attrs.Attributes[k] != want {
				t.Errorf("%s = %q after SetQueueAttributes, want %q", k, attrs.Attributes[k], want)
			}
		}
		if !strings.HasSuffix(attrs.Attributes["QueueArn"], ":lq-b") {
			t.Errorf("QueueArn %q", attrs.Attributes["QueueArn"])
		}

		if _, err := q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &urls[3]}); err != nil {
			t.Fatal(err)
		}
		var dne *sqstypes.QueueDoesNotExist
		if _, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("other-lq")}); !errors.As(err, &dne) {
			t.Fatalf("GetQueueUrl of a deleted queue: %v", err)
		}
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &urls[3], MessageBody: aws.String("x")}); !errors.As(err, &dne) {
			t.Fatalf("SendMessage to a deleted queue: %v", err)
		}
	})

	t.Run("tags", func(t *testing.T) {
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("tagged"), Tags: map[string]string{"team": "ml"}})
		if err != nil {
			t.Fatal(err)
		}
		url := *out.QueueUrl
		if _, err := q.TagQueue(ctx, &sqs.TagQueueInput{QueueUrl: &url, Tags: map[string]string{"env": "test", "team": "data"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := q.UntagQueue(ctx, &sqs.UntagQueueInput{QueueUrl: &url, TagKeys: []string{"env"}}); err != nil {
			t.Fatal(err)
		}
		tags, err := q.ListQueueTags(ctx, &sqs.ListQueueTagsInput{QueueUrl: &url})
		if err != nil || fmt.Sprint(tags.Tags) != "map[team:data]" {
			t.Fatalf("ListQueueTags %v %v", tags, err)
		}
	})

	t.Run("message attributes", func(t *testing.T) {
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("attrs")})
		if err != nil {
			t.Fatal(err)
		}
		url := *out.QueueUrl
		sent, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("with attributes"),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				"step":      {DataType: aws.String("String"), StringValue: aws.String("Approve")},
				"attempt":   {DataType: aws.String("Number"), StringValue: aws.String("3")},
				"blob":      {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2, 255}},
				"step.kind": {DataType: aws.String("String.custom"), StringValue: aws.String("callback")},
			}})
		if err != nil {
			t.Fatal(err)
		}
		// The MD5 over the attributes as SQS defines it; moto computes the
		// same value independently.
		const wantMD5 = "61476e2a6a7ea2974e33e3b38bd65176"
		if aws.ToString(sent.MD5OfMessageAttributes) != wantMD5 {
			t.Errorf("MD5OfMessageAttributes %s, want %s", aws.ToString(sent.MD5OfMessageAttributes), wantMD5)
		}
		got, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MessageAttributeNames: []string{"All"}, WaitTimeSeconds: 1})
		if err != nil || len(got.Messages) != 1 {
			t.Fatalf("receive: %v %v", got, err)
		}
		m := got.Messages[0]
		if len(m.MessageAttributes) != 4 || aws.ToString(m.MessageAttributes["step"].StringValue) != "Approve" ||
			aws.ToString(m.MessageAttributes["attempt"].DataType) != "Number" || fmt.Sprint(m.MessageAttributes["blob"].BinaryValue) != "[0 1 2 255]" ||
			aws.ToString(m.MD5OfMessageAttributes) != wantMD5 {
			t.Fatalf("received attributes %+v md5 %s", m.MessageAttributes, aws.ToString(m.MD5OfMessageAttributes))
		}
		if _, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
		none, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 1})
		if err != nil || len(none.Messages) != 1 || len(none.Messages[0].MessageAttributes) != 0 {
			t.Fatalf("receive without MessageAttributeNames: %+v %v", none, err)
		}
	})

	t.Run("send message batch", func(t *testing.T) {
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("sendbatch")})
		if err != nil {
			t.Fatal(err)
		}
		url := *out.QueueUrl
		res, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: []sqstypes.SendMessageBatchRequestEntry{
			{Id: aws.String("a"), MessageBody: aws.String("one")},
			{Id: aws.String("b"), MessageBody: aws.String("two"), DelaySeconds: 1},
		}})
		if err != nil || len(res.Successful) != 2 || len(res.Failed) != 0 {
			t.Fatalf("SendMessageBatch %+v %v", res, err)
		}
		for _, s := range res.Successful {
			want := map[string]string{"a": md5Hex("one"), "b": md5Hex("two")}[*s.Id]
			if aws.ToString(s.MD5OfMessageBody) != want || aws.ToString(s.MessageId) == "" {
				t.Errorf("entry %s: %+v", *s.Id, s)
			}
		}
		_, err = q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: []sqstypes.SendMessageBatchRequestEntry{
			{Id: aws.String("same"), MessageBody: aws.String("x")}, {Id: aws.String("same"), MessageBody: aws.String("y")}}})
		var distinct *sqstypes.BatchEntryIdsNotDistinct
		if !errors.As(err, &distinct) {
			t.Fatalf("repeated batch IDs: %v", err)
		}
	})

	t.Run("redrive", func(t *testing.T) {
		dlq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("redrive-dlq")})
		if err != nil {
			t.Fatal(err)
		}
		a, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		src, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("redrive-src"), Attributes: map[string]string{
			"RedrivePolicy": `{"deadLetterTargetArn":"` + a.Attributes["QueueArn"] + `","maxReceiveCount":"1"}`}})
		if err != nil {
			t.Fatal(err)
		}
		pol, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: src.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameRedrivePolicy}})
		if err != nil {
			t.Fatal(err)
		}
		var policy struct {
			DeadLetterTargetArn string `json:"deadLetterTargetArn"`
			MaxReceiveCount     int    `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(pol.Attributes["RedrivePolicy"]), &policy); err != nil || policy.DeadLetterTargetArn != a.Attributes["QueueArn"] || policy.MaxReceiveCount != 1 {
			t.Fatalf("RedrivePolicy read back %q (%v)", pol.Attributes["RedrivePolicy"], err)
		}
		sent, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: src.QueueUrl, MessageBody: aws.String("poison")})
		if err != nil {
			t.Fatal(err)
		}
		first, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: src.QueueUrl, WaitTimeSeconds: 1})
		if err != nil || len(first.Messages) != 1 {
			t.Fatalf("first receive %v %v", first, err)
		}
		if _, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: src.QueueUrl, ReceiptHandle: first.Messages[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
		again, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: src.QueueUrl})
		if err != nil || len(again.Messages) != 0 {
			t.Fatalf("second receive from the source: %v %v; want nothing (moved)", again, err)
		}
		moved, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: dlq.QueueUrl, WaitTimeSeconds: 1})
		if err != nil || len(moved.Messages) != 1 || *moved.Messages[0].MessageId != *sent.MessageId || *moved.Messages[0].Body != "poison" {
			t.Fatalf("dead-letter queue: %+v %v", moved, err)
		}
	})

	t.Run("attribute errors", func(t *testing.T) {
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("attrerrs")})
		if err != nil {
			t.Fatal(err)
		}
		var name *sqstypes.InvalidAttributeName
		if _, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"Frobnication"}}); !errors.As(err, &name) {
			t.Fatalf("GetQueueAttributes of an unknown attribute: %v; want *types.InvalidAttributeName", err)
		}
	})
}

func TestSQSScenariosEmulator(t *testing.T) {
	e := StartTest(t, Config{})
	sqsScenarios(t, e.SQSClient())
	sqsMoreScenarios(t, e.SQSClient())
}

func TestSQSScenariosMoto(t *testing.T) {
	endpoint := motoserver.Start(t)
	e := StartTest(t, Config{}) // only for its aws.Config
	client := sqs.NewFromConfig(e.AWSConfig(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	sqsScenarios(t, client)
	sqsMoreScenarios(t, client)
}

func TestLongPollReturnsEarly(t *testing.T) {
	e := StartTest(t, Config{})
	q := e.SQSClient()
	url, _ := e.CreateQueue("poll")
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = e.queues.send(url, "late", -1)
	}()
	start := time.Now()
	out, err := q.ReceiveMessage(testContext(t), &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 10})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(out.Messages))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("long poll took %v; want an early return", d)
	}
}

func TestLongPollEndsOnClose(t *testing.T) {
	e, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := e.CreateQueue("closing")
	q := e.SQSClient(func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	done := make(chan error, 1)
	go func() {
		_, err := q.ReceiveMessage(testContext(t), &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 20})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("long poll still running after Close")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
}
