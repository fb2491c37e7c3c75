package pipelinestop_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pipelinestop/pipelinestop"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		kind      error
		code      string
		retryable bool
	}{
		{"conflict", conflictErr("StopPipelineExecution"), pipelinestop.ErrConflict, "ConflictException", true},
		{"not found", notFoundErr("StopPipelineExecution"), pipelinestop.ErrNotFound, "ResourceNotFound", false},
		{"not running", notRunningErr(), pipelinestop.ErrNotRunning, "ValidationException", false},
		{"other validation", apiErr("StopPipelineExecution", 400, "ValidationException", "1 validation error detected"), nil, "ValidationException", false},
		{"throttling", apiErr("StopPipelineExecution", 400, "ThrottlingException", "Rate exceeded"), pipelinestop.ErrThrottled, "ThrottlingException", true},
		{"too many requests", apiErr("DescribePipelineExecution", 429, "TooManyRequestsException", "slow down"), pipelinestop.ErrThrottled, "TooManyRequestsException", true},
		{"internal failure", apiErr("StopPipelineExecution", 500, "InternalFailure", "oops"), pipelinestop.ErrUnavailable, "InternalFailure", true},
		{"unknown 503", apiErr("StopPipelineExecution", 503, "SomethingNew", "down"), pipelinestop.ErrUnavailable, "SomethingNew", true},
		{"access denied", apiErr("StopPipelineExecution", 400, "AccessDeniedException", "no"), nil, "AccessDeniedException", false},
		{"connection refused", &smithy.OperationError{OperationName: "StopPipelineExecution",
			Err: &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}},
			pipelinestop.ErrUnavailable, "", true},
		{"already answered", sdkError("SendPipelineExecutionStepSuccess", 400, &types.ConflictException{Message: ptr("Step is already in a terminal status")}),
			pipelinestop.ErrAlreadyAnswered, "ConflictException", false},
		{"conflict on answer", sdkError("SendPipelineExecutionStepFailure", 400, &types.ConflictException{Message: ptr("try again")}),
			pipelinestop.ErrConflict, "ConflictException", true},
		{"already answered as validation", apiErr("SendPipelineExecutionStepFailure", 400, "ValidationException", "Step already completed"),
			pipelinestop.ErrAlreadyAnswered, "ValidationException", false},
	}
	sentinels := []error{pipelinestop.ErrConflict, pipelinestop.ErrNotFound, pipelinestop.ErrNotRunning,
		pipelinestop.ErrThrottled, pipelinestop.ErrUnavailable, pipelinestop.ErrAlreadyAnswered}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pipelinestop.Classify(tt.err)
			var e *pipelinestop.Error
			if !errors.As(err, &e) {
				t.Fatalf("Classify(%v) = %T, want *Error", tt.err, err)
			}
			if e.Kind != tt.kind || e.Code != tt.code {
				t.Errorf("Kind, Code = %v, %q; want %v, %q", e.Kind, e.Code, tt.kind, tt.code)
			}
			for _, s := range sentinels {
				if got, want := errors.Is(err, s), s == tt.kind; got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v", s, got, want)
				}
			}
			if !errors.Is(err, tt.err) {
				t.Error("the classified error does not unwrap to the SDK's error")
			}
			var opErr *smithy.OperationError
			if !errors.As(err, &opErr) {
				t.Error("errors.As to *smithy.OperationError fails")
			}
			if got := pipelinestop.DefaultRetryable(err); got != tt.retryable {
				t.Errorf("DefaultRetryable = %v, want %v", got, tt.retryable)
			}
			if pipelinestop.Classify(err) != err {
				t.Error("Classify of a classified error is not the same error")
			}
		})
	}
}

// TestClassifyThrottlesLikeTheSDK checks that every API error code the
// SDK's retryer treats as throttling is ErrThrottled (retried, and slowing
// StopAll's pacer down), and that a code outside that set is not.
func TestClassifyThrottlesLikeTheSDK(t *testing.T) {
	if len(awsretry.DefaultThrottleErrorCodes) == 0 {
		t.Fatal("the SDK has no throttle codes")
	}
	for code := range awsretry.DefaultThrottleErrorCodes {
		err := pipelinestop.Classify(apiErr("StopPipelineExecution", 400, code, "slow down"))
		if !errors.Is(err, pipelinestop.ErrThrottled) || !pipelinestop.DefaultRetryable(err) {
			t.Errorf("%s: %v is not a retryable ErrThrottled", code, err)
		}
	}
	err := pipelinestop.Classify(apiErr("StopPipelineExecution", 400, "AccessDeniedException", "no"))
	if errors.Is(err, pipelinestop.ErrThrottled) {
		t.Errorf("AccessDeniedException classified as throttling: %v", err)
	}
}

func TestClassifyKeepsSDKTypes(t *testing.T) {
	err := pipelinestop.Classify(notFoundErr("StopPipelineExecution"))
	var nf *types.ResourceNotFound
	if !errors.As(err, &nf) || !errors.Is(err, pipelinestop.ErrNotFound) {
		t.Fatalf("want both errors.As(*types.ResourceNotFound) and errors.Is(ErrNotFound): %v", err)
	}
	var ce *types.ConflictException
	err = pipelinestop.Classify(conflictErr("StopPipelineExecution"))
	if !errors.As(err, &ce) || !errors.Is(err, pipelinestop.ErrConflict) {
		t.Fatalf("want both errors.As(*types.ConflictException) and errors.Is(ErrConflict): %v", err)
	}
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ConflictException" {
		t.Fatalf("errors.As(smithy.APIError) fails: %v", err)
	}
}

func TestClassifyPassesThrough(t *testing.T) {
	if pipelinestop.Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
	for _, err := range []error{context.Canceled, fmt.Errorf("call: %w", context.DeadlineExceeded)} {
		if got := pipelinestop.Classify(err); got != err {
			t.Errorf("Classify(%v) = %v, want it unchanged", err, got)
		}
	}
	plain := errors.New("something else")
	var e *pipelinestop.Error
	if got := pipelinestop.Classify(plain); !errors.As(got, &e) || e.Kind != nil || !errors.Is(got, plain) {
		t.Errorf("Classify(plain) = %#v", got)
	}
}

func TestErrorMessage(t *testing.T) {
	err := pipelinestop.Classify(conflictErr("StopPipelineExecution"))
	msg := err.Error()
	for _, want := range []string{"stop pipeline execution", "ConflictException", "transitioning", "req-0001"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	e := &pipelinestop.Error{Op: "StopPipelineExecution", ExecutionARN: testARN, Code: "ConflictException",
		Attempts: 4, Canceled: context.DeadlineExceeded, Kind: pipelinestop.ErrConflict}
	msg = e.Error()
	for _, want := range []string{testARN, "context deadline exceeded after 4 attempts", "ConflictException"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if !errors.Is(e, context.DeadlineExceeded) || !errors.Is(e, pipelinestop.ErrConflict) {
		t.Error("a canceled *Error must match both the context error and its kind")
	}
}

func ptr[T any](v T) *T { return &v }
