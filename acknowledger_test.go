package pipelinestop_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

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
	"github.com/pipelinestop/pipelinestop/internal/testlog"
)

// cbErr builds an error the way the SDK returns it.
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
	// The token is derived from the answer: the callback token and the
	// outputs, sorted by name.
	wantToken := pipelinestop.DeriveToken(cbOpSuccess, cbToken, "a", "1", "b", "2")
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
	var logs testlog.Buffer
	logger := logs.Logger()
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
