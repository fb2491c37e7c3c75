package pipelinestop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.uber.org/mock/gomock"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
	"github.com/pipelinestop/pipelinestop/internal/mocks"
)

const (
	cbToken = "AbCdE12345"
	cbARN   = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc123"
)

func cbBody(t *testing.T, fields map[string]any) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseCallbackMessage(t *testing.T) {
	big := `{"token":"` + cbToken + `","pipelineExecutionArn":"` + cbARN + `","arguments":{"x":"` +
		strings.Repeat("a", pipelinestop.MaxCallbackMessageSize) + `"}}`
	tests := []struct {
		name       string
		body       string
		wantStatus string
		wantErr    string // substring; "" means valid
		wantARNErr bool
	}{
		{name: "lowercase", body: cbBody(t, map[string]any{"token": cbToken, "pipelineExecutionArn": cbARN,
			"arguments": map[string]any{"s": "v", "n": 3, "b": true, "o": map[string]any{"k": []int{1}}}, "status": "Executing"}),
			wantStatus: "Executing"},
		{name: "capital Status", body: cbBody(t, map[string]any{"token": cbToken, "pipelineExecutionArn": cbARN, "Status": "Stopping"}),
			wantStatus: "Stopping"},
		{name: "both spellings agree", body: cbBody(t, map[string]any{"token": cbToken, "pipelineExecutionArn": cbARN, "status": "Stopping", "Status": "Stopping"}),
			wantStatus: "Stopping"},
		{name: "both spellings differ", body: cbBody(t, map[string]any{"token": cbToken, "pipelineExecutionArn": cbARN, "status": "Executing", "Status": "Stopping"}),
			wantErr: `both "status" and "Status"`},
		{name: "no status means Executing", body: cbBody(t, map[string]any{"token": cbToken, "pipelineExecutionArn": cbARN}),
			wantStatus: "Executing"},
		{name: "status case-insensitive", body: cbBody(t, map[string]any{"token": cbToken, "pipelineExecutionArn": cbARN, "status": "STOPPING"}),
			wantStatus: "Stopping"},
		{name: "null arguments", body: `{"token":"` + cbToken + `","pipelineExecutionArn":"` + cbARN + `","arguments":null}`,
			wantStatus: "Executing"},
		{name: "unknown status", body: cbBody(t, map[string]any{"token": cbToken, "pipelineExecutionArn": cbARN, "status": "Paused"}),
			wantErr: `status "Paused"`},
		{name: "no token", body: cbBody(t, map[string]any{"pipelineExecutionArn": cbARN}), wantErr: "no token"},
		{name: "short token", body: cbBody(t, map[string]any{"token": "AbCdE1234", "pipelineExecutionArn": cbARN}), wantErr: "9 characters long"},
		{name: "token with a dash", body: cbBody(t, map[string]any{"token": "AbCdE-2345", "pipelineExecutionArn": cbARN}), wantErr: "position 5"},
		{name: "token not a string", body: `{"token":1234567890,"pipelineExecutionArn":"` + cbARN + `"}`, wantErr: `"token" is not a JSON string`},
		{name: "no ARN", body: cbBody(t, map[string]any{"token": cbToken}), wantErr: "no pipelineExecutionArn"},
		{name: "bad ARN", body: cbBody(t, map[string]any{"token": cbToken, "pipelineExecutionArn": "arn:aws:sagemaker:us-east-1:1:pipeline/p/execution/x"}),
			wantErr: "account ID", wantARNErr: true},
		{name: "arguments not an object", body: cbBody(t, map[string]any{"token": cbToken, "pipelineExecutionArn": cbARN, "arguments": []int{1}}),
			wantErr: "not a JSON object"},
		{name: "not JSON", body: "hello " + cbToken, wantErr: "invalid JSON at byte"},
		{name: "JSON array", body: `["` + cbToken + `"]`, wantErr: "found a JSON array"},
		{name: "too big", body: big, wantErr: "more than the SQS limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := pipelinestop.ParseCallbackMessage(tt.body)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("got %+v, want an error", m)
				}
				if !errors.Is(err, pipelinestop.ErrInvalidCallback) {
					t.Errorf("error %v does not match ErrInvalidCallback", err)
				}
				if errors.Is(err, pipelinestop.ErrInvalidARN) != tt.wantARNErr {
					t.Errorf("errors.Is(err, ErrInvalidARN) = %v, want %v", !tt.wantARNErr, tt.wantARNErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				assertNoToken(t, err.Error(), cbToken, "AbCdE1234", "AbCdE-2345")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Token != cbToken || m.PipelineExecutionARN != cbARN || m.Status != tt.wantStatus {
				t.Errorf("got %+v", m)
			}
			if m.IsStopping() != (tt.wantStatus == "Stopping") {
				t.Errorf("IsStopping() = %v", m.IsStopping())
			}
		})
	}
}

func TestParseCallbackMessageArguments(t *testing.T) {
	m, err := pipelinestop.ParseCallbackMessage(`{"token":"` + cbToken + `","pipelineExecutionArn":"` + cbARN +
		`","arguments":{"n":1.5,"s":"x","l":[1,2],"z":null}}`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"n": "1.5", "s": `"x"`, "l": "[1,2]", "z": "null"}
	for k, v := range want {
		if string(m.Arguments[k]) != v {
			t.Errorf("Arguments[%q] = %s, want %s", k, m.Arguments[k], v)
		}
	}
	if (*pipelinestop.CallbackMessage)(nil).IsStopping() {
		t.Error("nil message is stopping")
	}
}

// assertNoToken fails when s holds any of the raw tokens.
func assertNoToken(t *testing.T, s string, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		if strings.Contains(s, tok) {
			t.Errorf("%q contains the raw callback token %q", s, tok)
		}
	}
}

// apiErr builds an error the way the SDK returns it.
func cbErr(op string, err error) error {
	return &smithy.OperationError{ServiceID: "SageMaker", OperationName: op, Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 400}}, Err: err},
		RequestID:     "req-cb",
	}}
}

func cbOpts(extra ...func(*pipelinestop.Options)) func(*pipelinestop.Options) {
	return func(o *pipelinestop.Options) {
		o.Clock = fakeclock.NewAuto(time.Unix(0, 0))
		o.RetryJitter = -1
		for _, fn := range extra {
			fn(o)
		}
	}
}

const (
	cbOpSuccess = "SendPipelineExecutionStepSuccess"
	cbOpFailure = "SendPipelineExecutionStepFailure"
)

func TestSucceed(t *testing.T) {
	ctrl := gomock.NewController(t)
	client := mocks.NewMockCallbackAPIClient(ctrl)
	wantToken := pipelinestop.DeriveToken(cbOpSuccess, cbToken)
	calls := 0
	client.EXPECT().SendPipelineExecutionStepSuccess(gomock.Any(), gomock.Any(), gomock.Any()).Times(3).
		DoAndReturn(func(_ context.Context, in *sagemaker.SendPipelineExecutionStepSuccessInput, _ ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepSuccessOutput, error) {
			calls++
			if got := aws.ToString(in.ClientRequestToken); got != wantToken {
				t.Errorf("attempt %d: ClientRequestToken %q, want %q", calls, got, wantToken)
			}
			if aws.ToString(in.CallbackToken) != cbToken {
				t.Errorf("CallbackToken %q", aws.ToString(in.CallbackToken))
			}
			var names []string
			for _, p := range in.OutputParameters {
				names = append(names, aws.ToString(p.Name)+"="+aws.ToString(p.Value))
			}
			if got := strings.Join(names, ","); got != "a=1,b=2" {
				t.Errorf("outputs %s, want sorted a=1,b=2", got)
			}
			switch calls {
			case 1:
				return nil, cbErr(cbOpSuccess, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"})
			case 2:
				return nil, cbErr(cbOpSuccess, &types.ConflictException{Message: aws.String("busy")})
			}
			return &sagemaker.SendPipelineExecutionStepSuccessOutput{}, nil
		})
	var events []pipelinestop.Event
	ack := pipelinestop.NewAcknowledger(client, cbOpts(func(o *pipelinestop.Options) {
		o.OnEvent = func(e pipelinestop.Event) { events = append(events, e) }
	}))
	if err := ack.Succeed(context.Background(), cbToken, map[string]string{"b": "2", "a": "1"}); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type.String())
	}
	if got := strings.Join(types, ","); got != "attempt,retry,attempt,retry,attempt,answered" {
		t.Errorf("events %s", got)
	}
}

func TestAnswerErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		want     error
		attempts int
	}{
		{"already answered", &types.ConflictException{Message: aws.String("Step s of pipeline execution x is already in a terminal status (Succeeded).")},
			pipelinestop.ErrAlreadyAnswered, 1},
		{"not found", &types.ResourceNotFound{Message: aws.String("Callback token " + cbToken + " does not exist.")},
			pipelinestop.ErrNotFound, 1},
		{"conflict until the budget is spent", &types.ConflictException{Message: aws.String("busy")},
			pipelinestop.ErrConflict, 0},
		{"validation", &smithy.GenericAPIError{Code: "ValidationException", Message: "bad " + cbToken},
			nil, 1},
	}
	for _, tt := range tests {
		for _, op := range []string{cbOpSuccess, cbOpFailure} {
			t.Run(tt.name+"/"+op, func(t *testing.T) {
				ctrl := gomock.NewController(t)
				client := mocks.NewMockCallbackAPIClient(ctrl)
				calls := 0
				client.EXPECT().SendPipelineExecutionStepSuccess(gomock.Any(), gomock.Any(), gomock.Any()).AnyTimes().
					DoAndReturn(func(context.Context, *sagemaker.SendPipelineExecutionStepSuccessInput, ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepSuccessOutput, error) {
						calls++
						return nil, cbErr(cbOpSuccess, tt.err)
					})
				client.EXPECT().SendPipelineExecutionStepFailure(gomock.Any(), gomock.Any(), gomock.Any()).AnyTimes().
					DoAndReturn(func(context.Context, *sagemaker.SendPipelineExecutionStepFailureInput, ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepFailureOutput, error) {
						calls++
						return nil, cbErr(cbOpFailure, tt.err)
					})
				ack := pipelinestop.NewAcknowledger(client, cbOpts(func(o *pipelinestop.Options) { o.RetryBudget = 5 * time.Second }))
				var err error
				if op == cbOpSuccess {
					err = ack.Succeed(context.Background(), cbToken, nil)
				} else {
					err = ack.Fail(context.Background(), cbToken, "boom")
				}
				if err == nil {
					t.Fatal("no error")
				}
				if tt.want != nil && !errors.Is(err, tt.want) {
					t.Errorf("error %v does not match %v", err, tt.want)
				}
				var e *pipelinestop.Error
				if !errors.As(err, &e) || e.Op != op {
					t.Errorf("error %#v is not an *Error for %s", err, op)
				}
				if tt.attempts > 0 && calls != tt.attempts {
					t.Errorf("%d calls, want %d", calls, tt.attempts)
				}
				if tt.attempts == 0 && calls < 5 {
					t.Errorf("%d calls: the conflict was not retried", calls)
				}
				assertNoToken(t, err.Error(), cbToken)
			})
		}
	}
}

func TestSucceedLimits(t *testing.T) {
	many := map[string]string{}
	for i := range 51 {
		many[fmt.Sprintf("o%02d", i)] = "v"
	}
	tests := []struct {
		name    string
		token   pipelinestop.CallbackToken
		outputs map[string]string
		want    string
	}{
		{"too many", cbToken, many, "51 output parameters"},
		{"long name", cbToken, map[string]string{strings.Repeat("n", 257): "v"}, "name of 257 characters"},
		{"empty name", cbToken, map[string]string{"": "v"}, "empty name"},
		{"long value", cbToken, map[string]string{"out": strings.Repeat("é", 1025)}, `output parameter "out" has a value of 1025 characters`},
		{"bad token", "short", nil, "callback token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No EXPECT: any call fails the test.
			ack := pipelinestop.NewAcknowledger(mocks.NewMockCallbackAPIClient(gomock.NewController(t)), cbOpts())
			err := ack.Succeed(context.Background(), tt.token, tt.outputs)
			if !errors.Is(err, pipelinestop.ErrInvalidCallback) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrInvalidCallback saying %q", err, tt.want)
			}
		})
	}
	t.Run("at the limits", func(t *testing.T) {
		client := mocks.NewMockCallbackAPIClient(gomock.NewController(t))
		client.EXPECT().SendPipelineExecutionStepSuccess(gomock.Any(), gomock.Any(), gomock.Any()).
			Return(&sagemaker.SendPipelineExecutionStepSuccessOutput{}, nil)
		outputs := map[string]string{strings.Repeat("n", 256): strings.Repeat("é", 1024)}
		for i := range 49 {
			outputs[fmt.Sprint(i)] = ""
		}
		if err := pipelinestop.NewAcknowledger(client, cbOpts()).Succeed(context.Background(), cbToken, outputs); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFailureReason(t *testing.T) {
	long := strings.Repeat("a", 250) + "ééééé" // 260 bytes
	got := pipelinestop.FailureReason(long)
	if len(got) > pipelinestop.MaxFailureReasonLength || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") {
		t.Errorf("FailureReason cut to %d bytes %q", len(got), got)
	}
	if got != strings.Repeat("a", 250)+"é"+"..." {
		t.Errorf("cut at the wrong place: %q", got)
	}
	if got := pipelinestop.FailureReason(" "); got != pipelinestop.DefaultFailureReason {
		t.Errorf("empty reason: %q", got)
	}
	if got := pipelinestop.FailureReason("bad \xff"); !utf8.ValidString(got) {
		t.Errorf("invalid UTF-8 kept: %q", got)
	}
	if got := pipelinestop.FailureReason(strings.Repeat("x", 256)); len(got) != 256 || strings.HasSuffix(got, "...") {
		t.Errorf("a reason at the limit was changed")
	}

	client := mocks.NewMockCallbackAPIClient(gomock.NewController(t))
	client.EXPECT().SendPipelineExecutionStepFailure(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(_ context.Context, in *sagemaker.SendPipelineExecutionStepFailureInput, _ ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepFailureOutput, error) {
			if r := aws.ToString(in.FailureReason); r != pipelinestop.FailureReason(long) {
				t.Errorf("FailureReason %q", r)
			}
			if aws.ToString(in.ClientRequestToken) != pipelinestop.DeriveToken(cbOpFailure, cbToken) {
				t.Errorf("ClientRequestToken %q", aws.ToString(in.ClientRequestToken))
			}
			return &sagemaker.SendPipelineExecutionStepFailureOutput{}, nil
		})
	if err := pipelinestop.NewAcknowledger(client, cbOpts()).Fail(context.Background(), cbToken, long); err != nil {
		t.Fatal(err)
	}
}

func TestAckStopping(t *testing.T) {
	msg := &pipelinestop.CallbackMessage{Token: cbToken, PipelineExecutionARN: cbARN, Status: "Stopping"}
	tests := []struct {
		name       string
		cleanup    func(context.Context, *pipelinestop.CallbackMessage) error
		want       pipelinestop.Answer
		wantReason string
		wantPanic  bool
	}{
		{"nil cleanup", nil, pipelinestop.AnsweredSuccess, "", false},
		{"cleanup ok", func(context.Context, *pipelinestop.CallbackMessage) error { return nil }, pipelinestop.AnsweredSuccess, "", false},
		{"cleanup error", func(_ context.Context, m *pipelinestop.CallbackMessage) error {
			return fmt.Errorf("cancel job for %s: %w", string(m.Token), errors.New("denied"))
		}, pipelinestop.AnsweredFailure, "cancel job for AbCdE12345: denied", false},
		{"cleanup panic", func(context.Context, *pipelinestop.CallbackMessage) error { panic("oops") },
			pipelinestop.AnsweredFailure, "panic: oops", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := mocks.NewMockCallbackAPIClient(gomock.NewController(t))
			var sentReason string
			if tt.want == pipelinestop.AnsweredSuccess {
				client.EXPECT().SendPipelineExecutionStepSuccess(gomock.Any(), gomock.Any(), gomock.Any()).
					Return(&sagemaker.SendPipelineExecutionStepSuccessOutput{}, nil)
			} else {
				client.EXPECT().SendPipelineExecutionStepFailure(gomock.Any(), gomock.Any(), gomock.Any()).
					DoAndReturn(func(_ context.Context, in *sagemaker.SendPipelineExecutionStepFailureInput, _ ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepFailureOutput, error) {
						sentReason = aws.ToString(in.FailureReason)
						return nil, cbErr(cbOpFailure, &types.ConflictException{Message: aws.String("already in a terminal status")})
					})
			}
			res, err := pipelinestop.NewAcknowledger(client, cbOpts()).AckStopping(context.Background(), msg, tt.cleanup)
			if res.Answer != tt.want {
				t.Errorf("Answer %v, want %v", res.Answer, tt.want)
			}
			if tt.want == pipelinestop.AnsweredFailure {
				if !errors.Is(err, pipelinestop.ErrAlreadyAnswered) {
					t.Errorf("error %v, want ErrAlreadyAnswered", err)
				}
				wantReason := strings.ReplaceAll(tt.wantReason, cbToken, "Ab********")
				if res.Reason != wantReason || sentReason != wantReason {
					t.Errorf("reason %q sent %q, want %q", res.Reason, sentReason, wantReason)
				}
			} else if err != nil {
				t.Error(err)
			}
			var perr *pipelinestop.PanicError
			if errors.As(res.CleanupErr, &perr) != tt.wantPanic {
				t.Errorf("CleanupErr %v", res.CleanupErr)
			}
		})
	}
	t.Run("nil message", func(t *testing.T) {
		ack := pipelinestop.NewAcknowledger(mocks.NewMockCallbackAPIClient(gomock.NewController(t)))
		if _, err := ack.AckStopping(context.Background(), nil, nil); !errors.Is(err, pipelinestop.ErrInvalidCallback) {
			t.Errorf("error %v", err)
		}
	})
}

func TestAnswerCanceled(t *testing.T) {
	client := mocks.NewMockCallbackAPIClient(gomock.NewController(t))
	ctx, cancel := context.WithCancel(context.Background())
	client.EXPECT().SendPipelineExecutionStepSuccess(gomock.Any(), gomock.Any(), gomock.Any()).
		DoAndReturn(func(context.Context, *sagemaker.SendPipelineExecutionStepSuccessInput, ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepSuccessOutput, error) {
			cancel()
			return nil, cbErr(cbOpSuccess, &smithy.GenericAPIError{Code: "ThrottlingException"})
		})
	err := pipelinestop.NewAcknowledger(client, cbOpts()).Succeed(ctx, cbToken, nil)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, pipelinestop.ErrThrottled) {
		t.Errorf("error %v, want context.Canceled and the last error", err)
	}
}

func TestCallbackTokenNeverPrinted(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var events []string
	client := mocks.NewMockCallbackAPIClient(gomock.NewController(t))
	client.EXPECT().SendPipelineExecutionStepFailure(gomock.Any(), gomock.Any(), gomock.Any()).Times(2).
		Return(nil, cbErr(cbOpFailure, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down " + cbToken}))
	client.EXPECT().SendPipelineExecutionStepFailure(gomock.Any(), gomock.Any(), gomock.Any()).
		Return(nil, cbErr(cbOpFailure, &types.ResourceNotFound{Message: aws.String("Callback token " + cbToken + " does not exist.")}))
	ack := pipelinestop.NewAcknowledger(client, cbOpts(func(o *pipelinestop.Options) {
		o.Logger = logger
		o.OnEvent = func(e pipelinestop.Event) { events = append(events, fmt.Sprintf("%+v %v %#v", e, e, e)) }
	}))
	err := ack.Fail(context.Background(), cbToken, "reason mentions "+cbToken)
	if !errors.Is(err, pipelinestop.ErrNotFound) {
		t.Fatalf("error %v", err)
	}
	msg := &pipelinestop.CallbackMessage{Token: cbToken}
	all := strings.Join(append(events, logs.String(), err.Error(), fmt.Sprintf("%v %+v %#v %s %q", msg, msg, msg, msg.Token, msg.Token)), "\n")
	assertNoToken(t, all, cbToken)
	if !strings.Contains(logs.String(), `"callback_token":"Ab********"`) {
		t.Errorf("logs lack the redacted token:\n%s", logs.String())
	}
}

// FuzzParseCallbackMessage checks that ParseCallbackMessage never panics;
// that a message it accepts has a valid token, a parsable ARN, and the
// token, ARN, status and argument names the body gives (read here with a
// plain json.Unmarshal); that it rejects every error with ErrInvalidCallback
// and a short message that never holds the body's token;
// and that a body over MaxCallbackMessageSize is rejected however valid.
// Seeds: testdata/fuzz/FuzzParseCallbackMessage.
func FuzzParseCallbackMessage(f *testing.F) {
	f.Add(`{"token":"` + cbToken + `","pipelineExecutionArn":"` + cbARN + `","arguments":{"a":1},"status":"Executing"}`)
	f.Add(`{"Token":"` + cbToken + `","PipelineExecutionArn":"` + cbARN + `","Status":"Stopping"}`)
	f.Add(`{"token":"` + cbToken + `","pipelineExecutionArn":"arn:aws:sagemaker:us-east-1:1:pipeline/p/execution/x"}`)
	pad := strings.Repeat(" ", pipelinestop.MaxCallbackMessageSize)
	f.Fuzz(func(t *testing.T, body string) {
		m, err := pipelinestop.ParseCallbackMessage(body)

		// A plain reading of the body: each key lowercase or capitalised.
		var fields map[string]any
		isObject := json.Unmarshal([]byte(body), &fields) == nil && fields != nil
		get := func(key string) (any, bool) {
			if v, ok := fields[key]; ok {
				return v, true
			}
			v, ok := fields[strings.ToUpper(key[:1])+key[1:]]
			return v, ok
		}

		if err != nil {
			if m != nil {
				t.Fatalf("got both %+v and %v", m, err)
			}
			if !errors.Is(err, pipelinestop.ErrInvalidCallback) {
				t.Fatalf("error %v does not match ErrInvalidCallback", err)
			}
			msg := err.Error()
			if len(msg) > 1536 {
				t.Fatalf("error message of %d bytes for a %d-byte body", len(msg), len(body))
			}
			// A token of the documented shape (under either spelling of
			// the key) never appears whole in the error, even when the
			// body repeats it in another field.
			for _, key := range []string{"token", "Token"} {
				s, ok := fields[key].(string)
				if !ok || pipelinestop.CallbackToken(s).Validate() != nil || !strings.Contains(msg, s) {
					continue
				}
				// Unless the error's own words hold it ("pipelinest..."):
				// then the error for the same body with another token
				// holds it too.
				other := "Zq0Zq0Zq0Z"
				if s == other {
					other = "Yp1Yp1Yp1Y"
				}
				_, err2 := pipelinestop.ParseCallbackMessage(strings.ReplaceAll(body, s, other))
				if err2 == nil || !strings.Contains(err2.Error(), s) {
					t.Fatalf("error %q holds the body's callback token %q", msg, s)
				}
			}
			return
		}
		if len(body) > pipelinestop.MaxCallbackMessageSize || !isObject {
			t.Fatalf("accepted a %d-byte body that is not a small JSON object", len(body))
		}
		if m.Token.Validate() != nil {
			t.Fatalf("accepted token %q", string(m.Token))
		}
		if tok, _ := get("token"); tok != string(m.Token) {
			t.Fatalf("token %q, the body says %q", string(m.Token), tok)
		}
		if arn, _ := get("pipelineExecutionArn"); arn != m.PipelineExecutionARN {
			t.Fatalf("ARN %q, the body says %q", m.PipelineExecutionARN, arn)
		}
		if _, err := pipelinestop.ParseExecutionARN(m.PipelineExecutionARN); err != nil {
			t.Fatalf("accepted ARN %q: %v", m.PipelineExecutionARN, err)
		}
		status, ok := get("status")
		switch s, _ := status.(string); {
		case !ok || status == nil || s == "" || strings.EqualFold(s, "Executing"):
			if m.Status != pipelinestop.CallbackStatusExecuting || m.IsStopping() {
				t.Fatalf("status %q, the body says %v", m.Status, status)
			}
		case strings.EqualFold(s, "Stopping"):
			if m.Status != pipelinestop.CallbackStatusStopping || !m.IsStopping() {
				t.Fatalf("status %q, the body says %v", m.Status, status)
			}
		default:
			t.Fatalf("accepted status %v as %q", status, m.Status)
		}
		args, _ := get("arguments")
		if obj, ok := args.(map[string]any); ok {
			if len(obj) != len(m.Arguments) {
				t.Fatalf("%d arguments, the body has %d", len(m.Arguments), len(obj))
			}
			for k, v := range obj {
				var got any
				if err := json.Unmarshal(m.Arguments[k], &got); err != nil || fmt.Sprint(got) != fmt.Sprint(v) {
					t.Fatalf("argument %q = %s, the body says %v", k, m.Arguments[k], v)
				}
			}
		} else if args != nil || len(m.Arguments) != 0 {
			t.Fatalf("accepted arguments %v as %v", args, m.Arguments)
		}
		// The same message padded with JSON white space: accepted up to
		// the limit, rejected past it.
		if n := pipelinestop.MaxCallbackMessageSize - len(body); n >= 0 {
			if _, err := pipelinestop.ParseCallbackMessage(body + pad[:n]); err != nil {
				t.Fatalf("rejected the message padded to the limit: %v", err)
			}
			if _, err := pipelinestop.ParseCallbackMessage(body + pad[:n] + " "); !errors.Is(err, pipelinestop.ErrInvalidCallback) ||
				!strings.Contains(err.Error(), "more than the SQS limit") {
				t.Fatalf("accepted the message padded past the limit: %v", err)
			}
		}
	})
}

func TestCallbackTokenRedact(t *testing.T) {
	tok := pipelinestop.CallbackToken("AbCdEf1234")
	got := tok.Redact("job for AbCdEf1234 failed; retry AbCdEf1234 later (AbCdEf123 is another)")
	want := "job for Ab******** failed; retry Ab******** later (AbCdEf123 is another)"
	if got != want {
		t.Fatalf("Redact = %q, want %q", got, want)
	}
	if got := pipelinestop.CallbackToken("").Redact("nothing to hide"); got != "nothing to hide" {
		t.Fatalf("an empty token changed the text: %q", got)
	}
}
