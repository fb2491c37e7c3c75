package pipelinestop_test

import (
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

const testARN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/my-pipeline/execution/abc123def456"

// sdkError wraps an API error the way the SDK returns it: an
// *smithy.OperationError around an *awshttp.ResponseError.
func sdkError(op string, status int, err error) error {
	return &smithy.OperationError{
		ServiceID:     "SageMaker",
		OperationName: op,
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      err,
			},
			RequestID: "req-0001",
		},
	}
}

func conflictErr(op string) error {
	return sdkError(op, 400, &types.ConflictException{Message: aws.String("execution is transitioning between steps")})
}

func notFoundErr(op string) error {
	return sdkError(op, 400, &types.ResourceNotFound{Message: aws.String("Pipeline execution does not exist")})
}

func apiErr(op string, status int, code, msg string) error {
	return sdkError(op, status, &smithy.GenericAPIError{Code: code, Message: msg})
}

func notRunningErr() error {
	return apiErr("StopPipelineExecution", 400, "ValidationException",
		"Only pipelines with 'Executing' status can be stopped")
}
