package pipelinestop_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/testlog"
)

// The secrets tests run whole flows against the emulator and check that
// nothing this package prints (slog records at Debug level, Events
// formatted with %v, %+v and %#v, and every error it returns) holds a
// full callback token or a credential. Each check first asserts that the
// secret really went through the flow, so that the absence means
// something.

// Distinctive credentials for the clients of these tests: the emulator
// accepts any. A leak of the request's signature (Authorization header)
// or of the credentials shows up as one of these strings.
const (
	leakAccessKeyID     = "AKIAPSTOPLEAKCHECK01"
	leakSecretAccessKey = "pStopS3cretK3yNeverInLogs0123456789abcdef"
)

// leakCapture records everything a flow prints.
type leakCapture struct {
	mu     sync.Mutex
	logs   testlog.Buffer // JSON and text records
	texts  []string
	events []pipelinestop.Event
}

// logger writes JSON and text records of every level to the capture.
func (c *leakCapture) logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	return slog.New(slog.NewMultiHandler(slog.NewJSONHandler(&c.logs, opts), slog.NewTextHandler(&c.logs, opts)))
}

// onEvent records an Event formatted the ways a user might print it.
func (c *leakCapture) onEvent(ev pipelinestop.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, ev)
	c.texts = append(c.texts, fmt.Sprintf("%v", ev), fmt.Sprintf("%+v", ev), fmt.Sprintf("%#v", ev))
	if ev.Err != nil {
		c.texts = append(c.texts, ev.Err.Error())
	}
}

// observe makes a flow log to and report events to the capture.
func (c *leakCapture) observe(o *pipelinestop.Options) {
	o.Logger, o.OnEvent = c.logger(), c.onEvent
}

// addErr records an error as printed with %v, %+v and %#v.
func (c *leakCapture) addErr(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.texts = append(c.texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
}

// text is everything captured.
func (c *leakCapture) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs.String() + "\n" + strings.Join(c.texts, "\n")
}

// eventsWith returns the captured events for which keep is true.
func (c *leakCapture) eventsWith(keep func(pipelinestop.Event) bool) []pipelinestop.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []pipelinestop.Event
	for _, ev := range c.events {
		if keep(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// emulatorCredentialWords matches the emulator's own dummy credentials as
// whole words; they are too common ("test") to look for as substrings.
var emulatorCredentialWords *regexp.Regexp

// leaks returns a line for each secret found in text, quoting where.
func leaks(text string, secrets ...string) []string {
	var found []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 {
			found = append(found, fmt.Sprintf("%q found in ...%s...", s, text[max(i-120, 0):min(i+len(s)+40, len(text))]))
		}
	}
	if emulatorCredentialWords != nil {
		if loc := emulatorCredentialWords.FindStringIndex(text); loc != nil {
			found = append(found, fmt.Sprintf("an emulator credential found in ...%s...",
				text[max(loc[0]-120, 0):min(loc[1]+40, len(text))]))
		}
	}
	return found
}

// checkNoLeak fails when text holds a secret. name is the case checked.
func checkNoLeak(t *testing.T, name, text string, secrets ...string) {
	t.Helper()
	if found := leaks(text, secrets...); len(found) > 0 {
		t.Errorf("%s: secret printed:\n%s", name, strings.Join(found, "\n"))
	}
}

// authRecorder is an HTTP client that remembers whether requests were
// signed with leakAccessKeyID, proving the credentials were used.
type authRecorder struct {
	inner aws.HTTPClient
	used  *atomic.Bool
}

func (a authRecorder) Do(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.Header.Get("Authorization"), "Credential="+leakAccessKeyID+"/") {
		a.used.Store(true)
	}
	return a.inner.Do(r)
}

// leakClients returns SageMaker and SQS clients of em that sign with the
// distinctive credentials, and a flag set once they have been used.
func leakClients(em *emulator.Emulator) (*sagemaker.Client, *sqs.Client, *atomic.Bool) {
	used := &atomic.Bool{}
	cfg := em.AWSConfig()
	cfg.Credentials = aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: leakAccessKeyID, SecretAccessKey: leakSecretAccessKey, Source: "leakcheck"}, nil
	}))
	cfg.HTTPClient = authRecorder{inner: awshttp.NewBuildableClient(), used: used}
	return sagemaker.NewFromConfig(cfg), sqs.NewFromConfig(cfg), used
}

func TestSecretsLeakCheckerFindsLeaks(t *testing.T) {
	// The checker itself: a secret anywhere in the text is found.
	for _, text := range []string{"token AbCdE12345 here", `{"k":"AbCdE12345"}`, "AbCdE12345"} {
		if len(leaks(text, "AbCdE12345")) != 1 {
			t.Errorf("leaks(%q) found nothing", text)
		}
	}
	if len(leaks("token Ab******** here", "AbCdE12345")) != 0 {
		t.Error("the redacted form counts as a leak")
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	ctx := testCtx(t, 20*time.Second)

	// The emulator's own dummy credentials, as its AWSConfig gives them.
	creds, err := em.AWSConfig().Credentials.Retrieve(ctx)
	if err != nil || creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		t.Fatalf("emulator credentials: %+v, %v", creds, err)
	}
	words := []string{regexp.QuoteMeta(creds.AccessKeyID), regexp.QuoteMeta(creds.SecretAccessKey)}
	emulatorCredentialWords = regexp.MustCompile(`(^|[^A-Za-z0-9])(` + strings.Join(words, "|") + `)([^A-Za-z0-9]|$)`)
	t.Cleanup(func() { emulatorCredentialWords = nil })
	if len(leaks("Authorization: AWS4-HMAC-SHA256 Credential="+creds.AccessKeyID+"/20260101/us-east-1")) != 1 {
		t.Fatal("the check for the emulator's credentials finds nothing")
	}
	leakSM, leakSQS, credsUsed := leakClients(em)
	credentialSecrets := []string{leakAccessKeyID, leakSecretAccessKey}

	// callbackExecution starts a pipeline of one callback step whose
	// messages go to the named queue, and returns the execution and the
	// step's token.
	callbackExecution := func(t *testing.T, name, queueName string, args map[string]any) (arn, token string) {
		t.Helper()
		queue, err := em.CreateQueue(queueName)
		if err != nil {
			t.Fatal(err)
		}
		arn = startPipeline(t, em, name, emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback,
			SqsQueueURL: queue, Arguments: args, Outputs: []string{"result"}})
		if err := em.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
			t.Fatal(err)
		}
		token, err = em.CallbackToken(arn, "Approve")
		if err != nil || pipelinestop.CallbackToken(token).Validate() != nil {
			t.Fatalf("callback token %q, %v", token, err)
		}
		return arn, token
	}

	t.Run("StopBlockedByCallback", func(t *testing.T) {
		// The emulator's own client: its credentials are the ones checked
		// as words.
		arn, token := callbackExecution(t, "secrets-stop", "secrets-stop", map[string]any{"job": "stop-me"})
		c := &leakCapture{}
		s := pipelinestop.New(em.SageMakerClient(), fastWait, c.observe)

		short, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
		defer cancel()
		_, err := s.StopAndWait(short, arn)
		c.addErr(err)
		var we *pipelinestop.WaitError
		if !errors.As(err, &we) || len(we.Blocking) != 1 {
			t.Fatalf("err = %v, want a *WaitError with the blocking callback step", err)
		}
		// The token went through: the error carries it (redacted) and
		// its message is where a careless format would print it.
		if string(we.Blocking[0].CallbackToken) != token || !strings.Contains(err.Error(), `callback step "Approve"`) {
			t.Fatalf("wait error %+v does not carry the step and its token", we)
		}
		if len(c.eventsWith(func(ev pipelinestop.Event) bool {
			return ev.Type == pipelinestop.EventBlocked && len(ev.Blocking) == 1 && string(ev.Blocking[0].CallbackToken) == token
		})) == 0 {
			t.Fatal("no EventBlocked carried the callback token")
		}

		// StopAll with Wait: the joined errors.
		short2, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel2()
		results, err := s.StopAll(short2, []string{arn, arn}, func(o *pipelinestop.Options) { o.Wait = true })
		c.addErr(err)
		if !errors.Is(err, pipelinestop.ErrWaitTimeout) || len(results) != 2 {
			t.Fatalf("StopAll: %v", err)
		}
		for _, r := range results {
			c.addErr(r.Err)
		}
		if !strings.Contains(c.text(), token[:2]+"********") {
			t.Errorf("the redacted token is never shown:\n%s", c.text())
		}
		checkNoLeak(t, "StopBlockedByCallback", c.text(), token)
	})

	t.Run("AcknowledgerErrors", func(t *testing.T) {
		_, tokA := callbackExecution(t, "secrets-ack-a", "secrets-ack", nil)
		_, tokB := callbackExecution(t, "secrets-ack-b", "secrets-ack", nil)
		const unknown = "Zz9Yy8Xx7W" // valid-looking, never issued
		ack := pipelinestop.NewAcknowledger(leakSM, fastWait)
		long := strings.Repeat("the job of "+tokA+" failed; ", 30)

		tests := []struct {
			name    string
			call    func(c *leakCapture) error
			want    error
			secrets []string
			// wireHasToken: SageMaker's own message held the token,
			// so the scrubbing was needed.
			wireHasToken string
		}{
			{name: "succeed not found", want: pipelinestop.ErrNotFound, secrets: []string{unknown}, wireHasToken: unknown,
				call: func(c *leakCapture) error { return ack.Succeed(ctx, unknown, nil, c.observe) }},
			{name: "fail not found with the token in the reason", want: pipelinestop.ErrNotFound, secrets: []string{unknown}, wireHasToken: unknown,
				call: func(c *leakCapture) error { return ack.Fail(ctx, unknown, "cannot run "+unknown, c.observe) }},
			{name: "succeed", secrets: []string{tokA},
				call: func(c *leakCapture) error {
					return ack.Succeed(ctx, pipelinestop.CallbackToken(tokA), map[string]string{"result": "ok"}, c.observe)
				}},
			{name: "already answered, long reason holding the token", want: pipelinestop.ErrAlreadyAnswered, secrets: []string{tokA},
				call: func(c *leakCapture) error { return ack.Fail(ctx, pipelinestop.CallbackToken(tokA), long, c.observe) }},
			{name: "too many outputs", want: pipelinestop.ErrInvalidCallback, secrets: []string{tokB},
				call: func(c *leakCapture) error {
					outs := map[string]string{}
					for i := range pipelinestop.MaxOutputParameters + 1 {
						outs[fmt.Sprint("o", i)] = tokB
					}
					return ack.Succeed(ctx, pipelinestop.CallbackToken(tokB), outs, c.observe)
				}},
			{name: "output value too long holding the token", want: pipelinestop.ErrInvalidCallback, secrets: []string{tokB},
				call: func(c *leakCapture) error {
					return ack.Succeed(ctx, pipelinestop.CallbackToken(tokB),
						map[string]string{"result": strings.Repeat(tokB, 110)}, c.observe)
				}},
			{name: "empty output name", want: pipelinestop.ErrInvalidCallback, secrets: []string{tokB},
				call: func(c *leakCapture) error {
					return ack.Succeed(ctx, pipelinestop.CallbackToken(tokB), map[string]string{"": tokB}, c.observe)
				}},
			{name: "output name too long holding the token", want: pipelinestop.ErrInvalidCallback, secrets: []string{tokB},
				call: func(c *leakCapture) error {
					return ack.Succeed(ctx, pipelinestop.CallbackToken(tokB),
						map[string]string{"out-" + tokB + strings.Repeat("x", 300): "v"}, c.observe)
				}},
			{name: "token with an extra character", want: pipelinestop.ErrInvalidCallback, secrets: []string{tokB},
				call: func(c *leakCapture) error {
					return ack.Fail(ctx, pipelinestop.CallbackToken(tokB+"x"), long, c.observe)
				}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := &leakCapture{}
				err := tt.call(c)
				c.addErr(err)
				if (tt.want == nil) != (err == nil) || tt.want != nil && !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if tt.wireHasToken != "" {
					var apiErr smithy.APIError
					if !errors.As(err, &apiErr) || !strings.Contains(apiErr.ErrorMessage(), tt.wireHasToken) {
						t.Fatalf("SageMaker's message %v does not hold the token: the check proves nothing", apiErr)
					}
				}
				if len(c.eventsWith(func(ev pipelinestop.Event) bool { return ev.CallbackToken != "" })) == 0 && err != nil &&
					!errors.Is(err, pipelinestop.ErrInvalidCallback) {
					t.Error("no event carried the callback token")
				}
				checkNoLeak(t, "AcknowledgerErrors/"+tt.name, c.text(), append(tt.secrets, credentialSecrets...)...)
			})
		}
		// The answer of tokA went to SageMaker as given (the caller's
		// reason is the caller's business), signed with our credentials.
		if a := em.Answers(tokA); len(a) != 1 || a[0].Outcome != "Success" {
			t.Errorf("answers of the step: %+v", a)
		}
		if !credsUsed.Load() {
			t.Error("the distinctive credentials were never used: the credential check proves nothing")
		}
	})

	t.Run("ParseCallbackMessage", func(t *testing.T) {
		const tok = "Qw3Er5Ty7U"
		const arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc123"
		bodies := map[string]string{
			"short account": `{"token":"` + tok + `","pipelineExecutionArn":"arn:aws:sagemaker:us-east-1:1:pipeline/p/execution/x"}`,
			"no ARN":        `{"token":"` + tok + `"}`,
			"long ARN":      `{"token":"` + tok + `","pipelineExecutionArn":"arn:aws:sagemaker:us-east-1:123456789012:pipeline/` + strings.Repeat("p", 200) + `/run/x"}`,
			"bad status":    `{"token":"` + tok + `","pipelineExecutionArn":"` + arn + `","status":"Paused"}`,
			"bad arguments": `{"token":"` + tok + `","pipelineExecutionArn":"` + arn + `","arguments":[1]}`,
			"not JSON":      `{"token":"` + tok + `",`,
			"both spellings": `{"token":"` + tok + `","Token":"` + tok + `","pipelineExecutionArn":"` + arn +
				`","status":"Executing","Status":"Stopping"}`,
			// Fields mixed up: the token is also where the ARN or status
			// should be.
			"token as ARN":       `{"token":"` + tok + `","pipelineExecutionArn":"` + tok + `"}`,
			"token in ARN":       `{"token":"` + tok + `","pipelineExecutionArn":"arn:aws:sagemaker:` + tok + `:123456789012:pipeline/p/execution/x"}`,
			"token in ARN parts": `{"token":"` + tok + `","pipelineExecutionArn":"arn:aws:sagemaker:us_` + tok + `:1:pipeline/p/execution/x"}`,
			"token as status":    `{"token":"` + tok + `","pipelineExecutionArn":"` + arn + `","status":"` + tok + `"}`,
			// The token where the quoted ARN (128 bytes) or the quoted
			// part (40 characters) is cut.
			"token at the ARN's cut": `{"token":"` + tok + `","pipelineExecutionArn":"arn:aws:sagemaker:us-east-1:1:pipeline/` +
				strings.Repeat("p", 123-len("arn:aws:sagemaker:us-east-1:1:pipeline/")) + tok + `/execution/x"}`,
			"token at the region's cut": `{"token":"` + tok + `","pipelineExecutionArn":"arn:aws:sagemaker:` + strings.Repeat("a", 35) + tok +
				`:123456789012:pipeline/p/execution/x"}`,
		}
		for name, body := range bodies {
			t.Run(name, func(t *testing.T) {
				if !strings.Contains(body, tok) {
					t.Fatal("the body lacks the token")
				}
				m, err := pipelinestop.ParseCallbackMessage(body)
				if !errors.Is(err, pipelinestop.ErrInvalidCallback) {
					t.Fatalf("got %+v, %v; want ErrInvalidCallback", m, err)
				}
				c := &leakCapture{}
				c.addErr(err)
				// Nor a piece of it: five characters hold three hidden ones.
				checkNoLeak(t, "ParseCallbackMessage/"+name, c.text(), tok, tok[:5], tok[5:])
			})
		}
	})

	t.Run("Consumer", func(t *testing.T) {
		queue, err := em.CreateQueue("secrets-consumer")
		if err != nil {
			t.Fatal(err)
		}
		testConsumerSecrets(t, ctx, em, queue, callbackExecution, leakSM, leakSQS, credsUsed, credentialSecrets)
	})
}

// testConsumerSecrets runs a Consumer over good messages, messages whose
// handler fails with the token in its error (plainly, as retry-later, and
// as a panic), and poison messages; then it checks the logs, events and
// the failure reasons SageMaker received.
func testConsumerSecrets(t *testing.T, ctx context.Context, em *emulator.Emulator, queue string,
	callbackExecution func(*testing.T, string, string, map[string]any) (string, string),
	sm *sagemaker.Client, queueClient *sqs.Client, credsUsed *atomic.Bool, credentialSecrets []string) {
	// Executing messages whose Execute succeeds, fails with the token in
	// its error, asks to retry later (the same), or panics (the same); and
	// executions stopped before the consumer runs, whose Cleanup fails or
	// panics with the token in its error.
	kinds := []string{"good", "error", "retry-later", "panic", "cleanup-error", "cleanup-panic"}
	tokens := map[string]string{} // kind -> token
	for _, kind := range kinds {
		var arn string
		arn, tokens[kind] = callbackExecution(t, "secrets-consumer-"+kind, "secrets-consumer", map[string]any{"kind": kind, "n": 1, "ok": true})
		if strings.HasPrefix(kind, "cleanup-") {
			if _, err := sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: aws.String(arn),
				ClientRequestToken: aws.String(pipelinestop.NewToken())}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Poison messages, each with a token-shaped value in it.
	poison := map[string]string{
		"poison-not-json":     "Xc4Vb6Nm8L",
		"poison-bad-arn":      "Lk2Jh4Gf6D",
		"poison-token-as-arn": "Hg5Fd7Sa9P",
	}
	bodies := map[string]string{
		"poison-not-json":     `{"token":"Xc4Vb6Nm8L", oops`,
		"poison-bad-arn":      `{"token":"Lk2Jh4Gf6D","pipelineExecutionArn":"arn:aws:sagemaker:us-east-1:42:pipeline/p/execution/x"}`,
		"poison-token-as-arn": `{"token":"Hg5Fd7Sa9P","pipelineExecutionArn":"Hg5Fd7Sa9P"}`,
	}
	for kind, body := range bodies {
		if _, err := queueClient.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String(body)}); err != nil {
			t.Fatalf("send %s: %v", kind, err)
		}
	}

	var (
		mu       sync.Mutex
		seen     = map[string]bool{}   // kind -> Execute saw the token
		herrText = map[string]string{} // kind -> the handler's error text
		retried  atomic.Int32
	)
	handler := pipelinestop.Handler{}
	handler.Cleanup = func(_ context.Context, msg *pipelinestop.CallbackMessage) error {
		var kind string
		_ = json.Unmarshal(msg.Arguments["kind"], &kind)
		raw := string(msg.Token)
		text := "cleanup of callback " + raw + " failed"
		mu.Lock()
		seen[kind] = raw == tokens[kind]
		herrText[kind] = text
		mu.Unlock()
		switch kind {
		case "cleanup-error":
			return errors.New(text)
		case "cleanup-panic":
			panic(text)
		}
		return nil
	}
	handler.Execute = func(ctx context.Context, msg *pipelinestop.CallbackMessage) (map[string]string, error) {
		var kind string
		_ = json.Unmarshal(msg.Arguments["kind"], &kind)
		raw := string(msg.Token)
		if strings.HasPrefix(kind, "cleanup-") {
			// A stopped step: its Stopping message cancels this.
			<-ctx.Done()
			return nil, ctx.Err()
		}
		mu.Lock()
		seen[kind] = raw == tokens[kind]
		mu.Unlock()
		var err error
		switch kind {
		case "good":
			return map[string]string{"result": "done"}, nil
		case "error":
			err = fmt.Errorf("backend refused callback %s: quota", raw)
		case "retry-later":
			if retried.Add(1) > 1 {
				return map[string]string{"result": "second try"}, nil
			}
			err = pipelinestop.RetryLater(fmt.Errorf("backend busy for callback %s", raw))
		case "panic":
			mu.Lock()
			herrText[kind] = "job for callback " + raw + " exploded"
			mu.Unlock()
			panic("job for callback " + raw + " exploded")
		}
		mu.Lock()
		herrText[kind] = err.Error()
		mu.Unlock()
		return nil, err
	}

	c := &leakCapture{}
	ack := pipelinestop.NewAcknowledger(sm, fastWait, c.observe)
	consumer, err := pipelinestop.NewConsumer(queueClient, queue, ack, handler, func(o *pipelinestop.ConsumerOptions) {
		o.WaitTimeSeconds = 1
		o.RetryLaterMinDelay = time.Second
		o.DeleteMalformed = true
		o.DrainTimeout = time.Second
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consumer.Run(runCtx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			c.addErr(err)
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	}
	t.Cleanup(stop)

	// Every step answered and every message gone, within a bounded time.
	deadline := time.Now().Add(8 * time.Second)
	for {
		answered := 0
		for _, tok := range tokens {
			if len(em.Answers(tok)) > 0 {
				answered++
			}
		}
		left, err := queueClient.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queue),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		empty := left.Attributes["ApproximateNumberOfMessages"] == "0" && left.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
		if answered == len(tokens) && empty {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 8 s: %d of %d steps answered, queue %v", answered, len(tokens), left.Attributes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()

	// The tokens went through: the handler saw each, its errors held it.
	mu.Lock()
	for _, kind := range kinds {
		if !seen[kind] {
			t.Errorf("%s: Execute never saw the token", kind)
		}
		if kind != "good" && !strings.Contains(herrText[kind], tokens[kind]) {
			t.Errorf("%s: the handler's error %q lacks the token: the check proves nothing", kind, herrText[kind])
		}
	}
	mu.Unlock()
	if n := len(c.eventsWith(func(ev pipelinestop.Event) bool { return ev.Type == pipelinestop.EventMalformed })); n != len(poison) {
		t.Errorf("%d malformed events, want %d", n, len(poison))
	}
	if !credsUsed.Load() {
		t.Error("the distinctive credentials were never used")
	}

	// What SageMaker received as failure reasons is scrubbed too: it is
	// shown in the console and in DescribePipelineExecution.
	for _, kind := range []string{"error", "panic", "cleanup-error", "cleanup-panic"} {
		a := em.Answers(tokens[kind])
		if len(a) != 1 || a[0].Outcome != "Failure" {
			t.Errorf("%s: answers %+v, want one failure", kind, a)
			continue
		}
		if reason := a[0].FailureReason; strings.Contains(reason, tokens[kind]) || !strings.Contains(reason, tokens[kind][:2]+"********") {
			t.Errorf("%s: failure reason sent to SageMaker %q: want the token redacted", kind, reason)
		}
	}

	text := c.text()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) { checkNoLeak(t, "Consumer/"+kind, text, tokens[kind]) })
	}
	for kind, tok := range poison {
		t.Run(kind, func(t *testing.T) { checkNoLeak(t, "Consumer/"+kind, text, tok) })
	}
	t.Run("credentials", func(t *testing.T) { checkNoLeak(t, "Consumer/credentials", text, credentialSecrets...) })
}

// Credentials a broken credential_process prints: the SDK's error quotes
// its output when it is not valid JSON.
const (
	processAccessKeyID     = "AKIAPSTOPPROCESS0001"
	processSecretAccessKey = "pStopProc3ssS3cretK3y/NeverPrinted+0123456"
	processSessionToken    = "IQoJpStopProcessSessionT0ken/NeverPrinted+abcdefghijklmnop=="
)

// brokenCredentialProcess writes a shared config file whose profile
// "leakproc" gets its credentials from a credential_process that prints
// malformed JSON holding the secret key and session token, and returns
// the file's path. It skips the test where sh is missing.
func brokenCredentialProcess(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("credential_process scripts run with sh, which is missing")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "creds.sh")
	out := `{"Version": 1, "AccessKeyId": "` + processAccessKeyID + `", "SecretAccessKey": "` + processSecretAccessKey +
		`", "SessionToken": "` + processSessionToken + `", "Expiration": 2026-12-31T00:00:00Z}`
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncat <<'EOF'\n"+out+"\nEOF\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgFile, []byte("[profile leakproc]\ncredential_process = "+script+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgFile
}

// TestSecretsCredentialProcess configures the SDK the standard way
// (config.LoadDefaultConfig with a shared config file) with a
// credential_process that prints malformed JSON, and checks that the
// Stopper's and Acknowledger's errors, events and logs never show the
// secret key or session token the SDK's own error quotes.
func TestSecretsCredentialProcess(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	ctx := testCtx(t, 20*time.Second)
	cfgFile := brokenCredentialProcess(t)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithSharedConfigFiles([]string{cfgFile}),
		config.WithSharedCredentialsFiles([]string{filepath.Join(t.TempDir(), "none")}),
		config.WithSharedConfigProfile("leakproc"), config.WithRegion(em.Region()))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BaseEndpoint = aws.String(em.URL())
	sm := sagemaker.NewFromConfig(cfg)
	secrets := []string{processSecretAccessKey, processSessionToken}

	queue, err := em.CreateQueue("secrets-process")
	if err != nil {
		t.Fatal(err)
	}
	arn := startPipeline(t, em, "secrets-process", emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, SqsQueueURL: queue})
	if err := em.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
		t.Fatal(err)
	}
	token, err := em.CallbackToken(arn, "Approve")
	if err != nil {
		t.Fatal(err)
	}
	s := func(c *leakCapture) *pipelinestop.Stopper { return pipelinestop.New(sm, fastWait, c.observe) }
	ack := func(c *leakCapture) *pipelinestop.Acknowledger {
		return pipelinestop.NewAcknowledger(sm, fastWait, c.observe)
	}
	calls := map[string]func(c *leakCapture) error{
		"Stop": func(c *leakCapture) error { _, err := s(c).Stop(ctx, arn); return err },
		"Wait": func(c *leakCapture) error { _, err := s(c).Wait(ctx, arn); return err },
		"StopAll": func(c *leakCapture) error {
			rs, err := s(c).StopAll(ctx, []string{arn}, func(o *pipelinestop.Options) { o.Wait = true })
			for _, r := range rs {
				c.addErr(r.Err)
			}
			return err
		},
		"Succeed": func(c *leakCapture) error {
			return ack(c).Succeed(ctx, pipelinestop.CallbackToken(token), map[string]string{"result": "ok"})
		},
		"Fail": func(c *leakCapture) error { return ack(c).Fail(ctx, pipelinestop.CallbackToken(token), "no") },
		"Consumer": func(c *leakCapture) error {
			consumer, err := pipelinestop.NewConsumer(sqs.NewFromConfig(cfg), queue, ack(c), pipelinestop.Handler{
				Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) { return nil, nil },
			}, func(o *pipelinestop.ConsumerOptions) { o.WaitTimeSeconds = 1 })
			if err != nil {
				return err
			}
			short, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return consumer.Run(short)
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			c := &leakCapture{}
			err := call(c)
			c.addErr(err)
			// The SDK's own error quotes the secrets: the check means
			// something, and errors.As still reaches it.
			var opErr *smithy.OperationError
			if !errors.As(err, &opErr) || !strings.Contains(opErr.Error(), processSecretAccessKey) {
				t.Fatalf("err = %v; want the SDK's error, quoting the credential_process output", err)
			}
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("err = %v; want the credentials shown redacted", err)
			}
			checkNoLeak(t, "CredentialProcess/"+name, c.text(), secrets...)
		})
	}
	if n := em.Requests("StopPipelineExecution") + em.Requests("SendPipelineExecutionStepSuccess"); n != 0 {
		t.Errorf("%d requests reached the emulator unsigned", n)
	}
}
