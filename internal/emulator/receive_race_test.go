package emulator

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

var receives = flag.Int("receives", 300, "ReceiveMessage calls of 10 messages per client kind in TestManyReceivesOfTenMessages")

// receiveBudget bounds the time TestManyReceivesOfTenMessages spends per
// client kind; the calls made by then are counted.
const receiveBudget = 20 * time.Second

// serveEnv, set in the environment of the test binary, makes it serve an
// emulator (as "stopctl emulator" does: Start with the default Config),
// print its URL and serve until its standard input closes.
const serveEnv = "EMULATOR_TEST_SERVE"

func serveForTest() int {
	e, err := Start(Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(e.URL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := e.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startEmulatorProcess serves an emulator from another process, as an
// outside harness runs "stopctl emulator", and returns its URL.
func startEmulatorProcess(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("emulator process: %v", err)
		}
		cancel()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("emulator process URL: %v", err)
	}
	return strings.TrimSpace(line)
}

// Issue 14: against an emulator in another process, 1 to 5
// ReceiveMessage calls of 10 messages in 100 lost their response while the SDK read
// it ("use of closed network connection" after the 4 KiB the client had
// buffered): the SDK closed its own connection because the emulator
// answered before the transport finished writing the request (see
// internal/sdkbody). The emulator's clients carry sdkbody.NoWriteTo, so
// none is lost, on a reused connection or on a new one per call. No retry
// hides a loss: each call makes one attempt.
func TestManyReceivesOfTenMessages(t *testing.T) {
	url := startEmulatorProcess(t)
	ctx := testContext(t)
	newClient := func() *sqs.Client {
		return sqs.NewFromConfig(clientConfig(url, DefaultRegion), func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	}
	q := newClient()
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("many-receives"),
		Attributes: map[string]string{"VisibilityTimeout": "0"}}) // received messages stay visible
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		body := fmt.Sprintf(`{"message":%d,"pad":%q}`, i, strings.Repeat("p", 600))
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: out.QueueUrl, MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []struct {
		name   string
		client func() *sqs.Client
	}{
		{"reused connection", func() *sqs.Client { return q }},
		{"new client per call", newClient},
	} {
		t.Run(kind.name, func(t *testing.T) {
			var calls, lost int
			var first error
			deadline := time.Now().Add(receiveBudget)
			for calls < *receives && time.Now().Before(deadline) {
				calls++
				got, err := kind.client().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: out.QueueUrl, MaxNumberOfMessages: 10})
				if err == nil && len(got.Messages) != 10 {
					t.Fatalf("call %d received %d messages; want 10", calls, len(got.Messages))
				}
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						t.Fatalf("call %d: %v", calls, err)
					}
					lost++
					if first == nil {
						first = err
					}
				}
			}
			if lost > 0 {
				t.Fatalf("%d of %d receives of 10 messages lost their response; first: %v", lost, calls, first)
			}
			if calls < 100 {
				t.Fatalf("only %d receives in %s: too few to show anything", calls, receiveBudget)
			}
			t.Logf("%d receives of 10 messages, none lost", calls)
		})
	}
}
