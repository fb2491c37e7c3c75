package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop"
)

// queueNamePattern is SQS's pattern of a queue name (a FIFO queue's ends
// in .fifo).
var queueNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,75}(\.fifo)?$|^[a-zA-Z0-9_-]{1,80}$`)

// Limits of a hook command's output.
const (
	// maxHookStdout bounds what an --on-executing command may print: 50
	// outputs of the largest size fit many times over.
	maxHookStdout = 1 << 20
	// maxHookStderr bounds the standard error kept for a failure reason.
	maxHookStderr = 64 << 10
	// maxReasonStderr is how much of the standard error (its end, where
	// errors usually are) goes into a failure reason; the reason is cut to
	// pipelinestop.MaxFailureReasonLength anyway.
	maxReasonStderr = 200
	// hookWaitDelay is how long a hook whose context ended (or that exited
	// while a background process still holds its output) gets before it is
	// killed and its pipes are closed.
	hookWaitDelay = 3 * time.Second
)

// runConsume is "stopctl consume": run a pipelinestop.Consumer on a
// callback steps' queue, answering Executing messages through the
// --on-executing command and Stopping messages through --on-stopping.
func runConsume(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	queue := fs.String("queue", "", "URL or name of the SQS queue the callback steps send their messages to (required; a name is resolved with GetQueueUrl)")
	onExec := fs.String("on-executing", "", "shell command (sh -c) for each Executing message: the message as JSON on standard input; "+
		"exit 0 and a JSON object of outputs (or nothing) on standard output answers success, any other exit answers failure "+
		"with its standard error as the reason (default: leave the step pending for another system to answer)")
	onStop := fs.String("on-stopping", "", "shell command (sh -c) for each Stopping message, the cleanup: the message as JSON on standard input; "+
		"exit 0 answers success, any other exit failure (default: nothing to clean up, answer success)")
	concurrency := fs.Int("concurrency", pipelinestop.DefaultConsumerConcurrency, "most hook commands running at once")
	visibility := fs.Duration("visibility-timeout", pipelinestop.DefaultVisibilityTimeout, "visibility timeout of messages in hand, extended while a hook runs (1s to 12h); receives ask for at most 5s (what a lost receive costs) and extend what is still held")
	drain := fs.Duration("drain-timeout", pipelinestop.DefaultDrainTimeout, "on SIGINT/SIGTERM, how long running hooks may go on before they are ended (0: end them at once)")
	rest, err := e.parse(fs, args, awsGlobals)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usagef("consume: unexpected argument %q", rest[0])
	case *queue == "":
		return usagef("consume: --queue URL|NAME is required")
	case *concurrency < 1:
		return usagef("consume: --concurrency must be at least 1")
	case *visibility < time.Second || *visibility > 12*time.Hour:
		return usagef("consume: --visibility-timeout must be between 1s and 12h, not %s", *visibility)
	case *drain < 0:
		return usagef("consume: --drain-timeout must not be negative")
	}
	byName := queueNamePattern.MatchString(*queue)
	if u, err := url.Parse(*queue); !byName && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return usagef("consume: --queue %q is neither a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME) nor a queue name", *queue)
	}
	log := newConsumeLog(e)
	var sh string
	if *onExec != "" || *onStop != "" {
		if sh, err = exec.LookPath("sh"); err != nil {
			return fmt.Errorf("consume: the hook commands run with sh, which was not found: %w", err)
		}
	}
	handler := pipelinestop.Handler{Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
		return nil, pipelinestop.ErrPending
	}}
	if *onExec != "" {
		h := &hook{name: "--on-executing", sh: sh, command: *onExec, log: log}
		handler.Execute = h.execute
	}
	if *onStop != "" {
		h := &hook{name: "--on-stopping", sh: sh, command: *onStop, log: log}
		handler.Cleanup = h.cleanup
	}

	sm, err := e.sageMaker(ctx)
	if err != nil {
		return err
	}
	sq, err := e.sqsClient(ctx)
	if err != nil {
		return err
	}
	if byName {
		out, err := sq.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: queue})
		if err != nil {
			return fmt.Errorf("consume: find the URL of queue %s: %w", *queue, err)
		}
		*queue = aws.ToString(out.QueueUrl)
	}
	ack := pipelinestop.NewAcknowledger(sm, func(o *pipelinestop.Options) {
		o.OnEvent = log.event
		o.Logger = log.slog
	})
	drainTimeout := *drain
	if drainTimeout == 0 {
		drainTimeout = -1 // ConsumerOptions: negative ends handlers at once
	}
	c, err := pipelinestop.NewConsumer(sq, *queue, ack, handler, func(o *pipelinestop.ConsumerOptions) {
		o.Concurrency = *concurrency
		o.VisibilityTimeout = *visibility
		o.DrainTimeout = drainTimeout
	})
	if err != nil {
		return err
	}
	what := "Executing messages are left pending"
	if *onExec != "" {
		what = "Executing messages run --on-executing"
	}
	log.info("consuming callback messages", "queue", *queue, "handling", what, "concurrency", *concurrency)

	printed := make(chan struct{})
	stopNotice := context.AfterFunc(ctx, func() {
		defer close(printed)
		log.info("shutting down: no new messages; running hooks may finish", "drain_timeout", drain.String())
	})
	err = c.Run(ctx)
	if !stopNotice() {
		<-printed
	}
	if err != nil {
		return fmt.Errorf("consume %s: %w", *queue, err)
	}
	log.info("stopped")
	return nil
}

// consumeLog writes the consumer's log on standard error: plain lines, or
// JSON records with --output json. Callback tokens
// appear redacted only.
type consumeLog struct {
	mu   sync.Mutex
	w    io.Writer    // text mode
	slog *slog.Logger // json mode; discards in text mode
}

func newConsumeLog(e *env) *consumeLog {
	if e.g.json() {
		return &consumeLog{slog: slog.New(slog.NewJSONHandler(e.stderr, nil))}
	}
	return &consumeLog{w: e.stderr, slog: slog.New(slog.DiscardHandler)}
}

// info logs msg with key-value attributes.
func (l *consumeLog) info(msg string, kv ...any) { l.log(slog.LevelInfo, msg, kv...) }
func (l *consumeLog) warn(msg string, kv ...any) { l.log(slog.LevelWarn, msg, kv...) }

func (l *consumeLog) log(level slog.Level, msg string, kv ...any) {
	if l.w == nil {
		l.slog.Log(context.Background(), level, msg, kv...)
		return
	}
	var b strings.Builder
	b.WriteString(msg)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], quoteIfSpace(fmt.Sprint(kv[i+1])))
	}
	l.line(b.String())
}

func quoteIfSpace(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// line writes one timestamped line in text mode; a multi-line message
// (an SDK error) is joined into one line.
func (l *consumeLog) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s  %s\n", time.Now().Format("15:04:05.000 MST"), oneLine(pipelinestop.RedactCredentials(s)))
}

// event is the Acknowledger's and Consumer's OnEvent hook in text mode (in
// JSON mode the library logs the same events through slog).
func (l *consumeLog) event(ev pipelinestop.Event) {
	if l.w == nil {
		return
	}
	tok := ev.CallbackToken // prints redacted
	switch ev.Type {
	case pipelinestop.EventAnswered:
		answer := "success"
		if ev.Op == "SendPipelineExecutionStepFailure" {
			answer = "failure"
		}
		if ev.Err != nil {
			l.line(fmt.Sprintf("step %v: already answered or gone (%s): %v", tok, answer, ev.Err))
			return
		}
		l.line(fmt.Sprintf("step %v: answered %s", tok, answer))
	case pipelinestop.EventPending:
		l.line(fmt.Sprintf("step %v: left pending (no --on-executing): another system must answer it; message %s deleted", tok, ev.MessageID))
	case pipelinestop.EventHandlerCanceled:
		l.line(fmt.Sprintf("step %v: a Stopping message arrived; the running --on-executing was canceled", tok))
	case pipelinestop.EventRetry:
		l.line(fmt.Sprintf("step %v: %s failed: %s; retrying in %s", tok, ev.Op, shortErr(ev.Err), ev.Delay.Round(time.Millisecond)))
	case pipelinestop.EventRetryLater:
		l.line(fmt.Sprintf("message %s (step %v): not finished: %v; visible again in %s", ev.MessageID, tok, ev.Err, ev.Delay))
	case pipelinestop.EventMalformed:
		if ev.Delay == 0 {
			l.line(fmt.Sprintf("message %s: not a callback message, deleted: %v", ev.MessageID, ev.Err))
			return
		}
		l.line(fmt.Sprintf("message %s: not a callback message: %v; visible again in %s (for the queue's redrive policy)", ev.MessageID, ev.Err, ev.Delay))
	case pipelinestop.EventPanic:
		l.line(fmt.Sprintf("step %v: handler panicked: %v", tok, ev.Err))
	case pipelinestop.EventQueueError:
		l.line(fmt.Sprintf("%s failed: %v; retrying in %s", ev.Op, ev.Err, ev.Delay.Round(time.Millisecond)))
	}
}

// hook runs a shell command for a callback message.
type hook struct {
	name    string // the flag: "--on-executing" or "--on-stopping"
	sh      string
	command string
	log     *consumeLog
}

// hookInput is the JSON a hook reads on standard input: the callback
// message as SageMaker sent it (the token is needed to answer the step by
// other means, so it is given in full, but never logged).
type hookInput struct {
	Token                string                     `json:"token"`
	PipelineExecutionARN string                     `json:"pipelineExecutionArn"`
	Arguments            map[string]json.RawMessage `json:"arguments"`
	Status               string                     `json:"status"`
}

// execute is Handler.Execute: run --on-executing and turn its result into
// outputs or a failure.
func (h *hook) execute(ctx context.Context, msg *pipelinestop.CallbackMessage) (map[string]string, error) {
	stdout, err := h.run(ctx, msg)
	if err != nil {
		return nil, err
	}
	outputs, err := parseOutputs(msg.Token, stdout)
	if err != nil {
		err = fmt.Errorf("%s %w", h.name, err)
		h.log.warn("hook failed", "hook", h.name, "callback_token", msg.Token, "reason", msg.Token.Redact(err.Error()))
		return nil, err
	}
	h.log.info("hook succeeded", "hook", h.name, "callback_token", msg.Token, "outputs", len(outputs))
	return outputs, nil
}

// cleanup is Handler.Cleanup: run --on-stopping.
func (h *hook) cleanup(ctx context.Context, msg *pipelinestop.CallbackMessage) error {
	if _, err := h.run(ctx, msg); err != nil {
		return err
	}
	h.log.info("hook succeeded", "hook", h.name, "callback_token", msg.Token)
	return nil
}

// run runs the command with the message on standard input and returns its
// standard output. A non-zero exit is an error whose text is the end of the
// command's standard error; a command that could not be started is
// pipelinestop.RetryLater (a local problem, not the step's); a command cut
// short by ctx returns ctx's error.
func (h *hook) run(ctx context.Context, msg *pipelinestop.CallbackMessage) ([]byte, error) {
	args := msg.Arguments
	if args == nil {
		args = map[string]json.RawMessage{}
	}
	input, err := json.Marshal(hookInput{Token: string(msg.Token), PipelineExecutionARN: msg.PipelineExecutionARN,
		Arguments: args, Status: msg.Status})
	if err != nil {
		return nil, fmt.Errorf("%s: encode the message: %w", h.name, err)
	}
	h.log.info("running hook", "hook", h.name, "status", msg.Status, "execution", msg.PipelineExecutionARN, "callback_token", msg.Token)
	stdout := &cappedBuffer{max: maxHookStdout}
	stderr := &cappedBuffer{max: maxHookStderr, keepTail: true}
	cmd := exec.CommandContext(ctx, h.sh, "-c", h.command)
	cmd.Stdin = bytes.NewReader(input)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(os.Environ(),
		"PIPELINESTOP_EXECUTION_ARN="+msg.PipelineExecutionARN,
		"PIPELINESTOP_STATUS="+msg.Status)
	cmd.WaitDelay = hookWaitDelay
	setProcessGroup(cmd)
	err = cmd.Run()
	killProcessGroup(cmd) // nothing the hook started outlives it
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s ended early: %w", h.name, ctx.Err())
	case errors.As(err, &exitErr):
		reason := hookFailure(h.name, msg.Token, exitErr, stderr)
		h.log.warn("hook failed", "hook", h.name, "callback_token", msg.Token, "reason", msg.Token.Redact(reason))
		return nil, errors.New(reason)
	case errors.Is(err, exec.ErrWaitDelay):
		// It exited 0 but something it started held its output open.
	case err != nil:
		h.log.warn("hook could not run", "hook", h.name, "callback_token", msg.Token, "error", err.Error())
		return nil, pipelinestop.RetryLater(fmt.Errorf("%s could not run: %w", h.name, err))
	}
	if stdout.overflow {
		return nil, fmt.Errorf("%s printed more than %d bytes on standard output", h.name, maxHookStdout)
	}
	return stdout.buf.Bytes(), nil
}

// hookFailure is the failure reason for a hook that exited non-zero: the
// end of its standard error and its exit status. The token and any
// credentials (a failed aws command can print them) are redacted before
// the standard error is cut, so that no piece of them is left at the cut.
func hookFailure(name string, token pipelinestop.CallbackToken, exitErr *exec.ExitError, stderr *cappedBuffer) string {
	status := exitErr.String() // "exit status 3" or "signal: killed"
	text := strings.TrimSpace(stderr.buf.String())
	if text == "" {
		return fmt.Sprintf("%s failed (%s) without a message on standard error", name, status)
	}
	cut := stderr.overflow || len(text) > maxReasonStderr
	text = token.RedactedSuffix(pipelinestop.RedactCredentials(text), maxReasonStderr)
	if cut {
		text = "..." + text
	}
	return fmt.Sprintf("%s (%s)", oneLine(text), status)
}

// parseOutputs reads a hook's standard output: nothing (no outputs) or a
// JSON object whose values are strings (numbers and booleans are taken as
// their JSON text). Errors quote the output with token redacted.
func parseOutputs(token pipelinestop.CallbackToken, stdout []byte) (map[string]string, error) {
	outputs := map[string]string{}
	if len(bytes.TrimSpace(stdout)) == 0 {
		return outputs, nil
	}
	dec := json.NewDecoder(bytes.NewReader(stdout))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, fmt.Errorf("printed %s on standard output, not a JSON object of outputs such as {\"name\": \"value\"}", describeJSON(token, stdout))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("printed more than one JSON value on standard output; want one object of outputs")
	}
	for name, v := range raw {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("output %q: %v", name, err)
			}
			outputs[name] = s
		case bytes.Equal(v, []byte("true")), bytes.Equal(v, []byte("false")),
			len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9'):
			outputs[name] = string(v)
		default:
			return nil, fmt.Errorf("output %q is %s; output values must be strings (numbers and booleans are sent as text)", name, describeJSON(token, v))
		}
	}
	return outputs, nil
}

// describeJSON names the kind of a JSON text for an error message; text
// that is not JSON is quoted, its start only, with token redacted before
// it is cut.
func describeJSON(token pipelinestop.CallbackToken, b []byte) string {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return "nothing"
	case !json.Valid(b):
		const maxQuote = 40
		s := token.RedactedPrefix(pipelinestop.RedactCredentials(string(b)), maxQuote)
		if len(b) > maxQuote {
			s += "..."
		}
		return fmt.Sprintf("%q (not JSON)", strings.ToValidUTF8(s, "?"))
	case b[0] == '[':
		return "a JSON array"
	case b[0] == '{':
		return "a JSON object"
	case b[0] == '"':
		return "a JSON string"
	case bytes.Equal(b, []byte("null")):
		return "null"
	case b[0] == 't' || b[0] == 'f':
		return "a JSON boolean"
	default:
		return "a JSON number"
	}
}

// cappedBuffer keeps at most max bytes written to it: the first ones, or
// with keepTail the last ones. It never fails a write, so the command is
// not killed by a full pipe.
type cappedBuffer struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	max      int
	keepTail bool
	overflow bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if b.keepTail {
		b.buf.Write(p)
		if over := b.buf.Len() - b.max; over > 0 {
			b.overflow = true
			rest := bytes.Clone(b.buf.Bytes()[over:])
			b.buf.Reset()
			b.buf.Write(rest)
		}
		return n, nil
	}
	if room := b.max - b.buf.Len(); len(p) > room {
		b.overflow = true
		p = p[:max(room, 0)]
	}
	b.buf.Write(p)
	return n, nil
}
