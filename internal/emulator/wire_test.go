package emulator

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func debugLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// rawRequest writes req on a new connection and returns the response
// status.
func rawRequest(t *testing.T, e *Emulator, req string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.URL(), "http://"), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A body that cannot be read is an error answer, never 200 with an empty
// body (which an SDK reads as success).
func TestMalformedChunkedBody(t *testing.T) {
	e := StartTest(t, Config{})
	status := rawRequest(t, e, "POST / HTTP/1.1\r\nHost: emulator\r\nX-Amz-Target: AmazonSQS.CreateQueue\r\n"+
		"Content-Type: application/x-amz-json-1.0\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
	if status != http.StatusBadRequest {
		t.Fatalf("malformed chunked body answered HTTP %d; want 400", status)
	}
}

func TestRequestBodyTooLarge(t *testing.T) {
	e := StartTest(t, Config{})
	body := `{"QueueName":"` + strings.Repeat("a", maxRequestBody) + `"}`
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, e.URL(), strings.NewReader(body))
	req.Header.Set("X-Amz-Target", "AmazonSQS.CreateQueue")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body answered HTTP %d; want 413", resp.StatusCode)
	}
}

// Unsupported calls are logged; callback tokens in logged error messages
// are redacted.
func TestVerboseLogging(t *testing.T) {
	var logs syncBuffer
	e := StartTest(t, Config{Logger: debugLogger(&logs)})
	ctx := testContext(t)
	sm := e.SageMakerClient(func(o *sagemaker.Options) { o.RetryMaxAttempts = 1 })
	_, err := sm.DescribeTrainingJob(ctx, &sagemaker.DescribeTrainingJobInput{TrainingJobName: aws.String("job")})
	requireCode(t, err, "UnknownOperationException", "")
	if !strings.Contains(logs.String(), "DescribeTrainingJob") {
		t.Errorf("unsupported SageMaker call not logged:\n%s", logs.String())
	}
	status := rawRequest(t, e, "POST / HTTP/1.1\r\nHost: emulator\r\nX-Amz-Target: Nope.Op\r\nContent-Length: 2\r\n\r\n{}")
	if status != http.StatusBadRequest || !strings.Contains(logs.String(), "Nope.Op") {
		t.Errorf("unknown target: HTTP %d, logs:\n%s", status, logs.String())
	}

	const secret = "AbCdEfGhIj"
	_, err = sm.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: aws.String(secret)})
	requireCode(t, err, "ResourceNotFound", "")
	if out := logs.String(); strings.Contains(out, secret) || !strings.Contains(out, "Ab********") {
		t.Fatalf("the unknown callback token is not redacted in the logs:\n%s", out)
	}
}

// Every answer is framed by Content-Length, never chunked, however large
// (here a ReceiveMessage of 10 messages, over 6 KiB), and error answers
// too.
func TestAnswersFramedByContentLength(t *testing.T) {
	e := StartTest(t, Config{})
	ctx := testContext(t)
	q := e.SQSClient()
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("framed")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		body := fmt.Sprintf(`{"message":%d,"pad":%q}`, i, strings.Repeat("p", 600))
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: out.QueueUrl, MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name, target, body string
		status, minLen     int
	}{
		{"receive of 10", "AmazonSQS.ReceiveMessage", fmt.Sprintf(`{"QueueUrl":%q,"MaxNumberOfMessages":10}`, *out.QueueUrl), http.StatusOK, 6 << 10},
		{"error", "AmazonSQS.ReceiveMessage", `{"QueueUrl":"nope"}`, http.StatusBadRequest, 1},
		{"unknown target", "Nope.Op", `{}`, http.StatusBadRequest, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.URL(), strings.NewReader(c.body))
			req.Header.Set("X-Amz-Target", c.target)
			req.Header.Set("Content-Type", "application/x-amz-json-1.0")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status || len(body) < c.minLen {
				t.Fatalf("HTTP %d with %d bytes; want %d with at least %d", resp.StatusCode, len(body), c.status, c.minLen)
			}
			if len(resp.TransferEncoding) > 0 || resp.ContentLength != int64(len(body)) {
				t.Fatalf("answer framed by Transfer-Encoding %v, Content-Length %d, for %d bytes; want Content-Length only",
					resp.TransferEncoding, resp.ContentLength, len(body))
			}
		})
	}
}
