package pipelinestop_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"go.uber.org/mock/gomock"

	"github.com/pipelinestop/pipelinestop"
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
			if aws.ToString(in.ClientRequestToken) != pipelinestop.DeriveToken(cbOpFailure, cbToken, pipelinestop.FailureReason(long)) {
				t.Errorf("ClientRequestToken %q", aws.ToString(in.ClientRequestToken))
			}
			return &sagemaker.SendPipelineExecutionStepFailureOutput{}, nil
		})
	if err := pipelinestop.NewAcknowledger(client, cbOpts()).Fail(context.Background(), cbToken, long); err != nil {
		t.Fatal(err)
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
