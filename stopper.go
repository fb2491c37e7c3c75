package pipelinestop

import (
	"context"
	"errors"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

//go:generate go tool mockgen -typed -destination internal/mocks/stopper.go -package mocks github.com/pipelinestop/pipelinestop StopAPIClient

// StopAPIClient is the part of the SageMaker API a Stopper uses.
// *sagemaker.Client satisfies it. The SDK's clients never return a nil
// output with a nil error; a client that does is broken, and the Stopper
// treats such an answer where it needs the output
// (DescribePipelineExecution, ListPipelineExecutionSteps) as an *Error that
// matches no sentinel and is not retried, since the same client would
// answer the same again. StopPipelineExecution's output is not read: its
// (nil, nil) counts as accepted, and the status lookup after it tells what
// became of the execution.
type StopAPIClient interface {
	StopPipelineExecution(ctx context.Context, in *sagemaker.StopPipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error)
	DescribePipelineExecution(ctx context.Context, in *sagemaker.DescribePipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error)
	ListPipelineExecutionSteps(ctx context.Context, in *sagemaker.ListPipelineExecutionStepsInput, optFns ...func(*sagemaker.Options)) (*sagemaker.ListPipelineExecutionStepsOutput, error)
}

var _ StopAPIClient = (*sagemaker.Client)(nil)

// Stopper stops SageMaker pipeline executions and waits for them to end.
// It is safe for concurrent use.
type Stopper struct {
	client StopAPIClient
	opts   Options
}

// New returns a Stopper that calls SageMaker through client, usually a
// *sagemaker.Client, each call in the Region of its execution's ARN (see
// Options.DisableRegionRouting). The option functions change the defaults
// for every call.
func New(client StopAPIClient, optFns ...func(*Options)) *Stopper {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	return &Stopper{client: client, opts: o}
}

// orZero returns s, or a zero Stopper when s is nil, so that every method
// of a nil *Stopper returns errNilClient instead of panicking.
func (s *Stopper) orZero() *Stopper {
	if s == nil {
		return &Stopper{}
	}
	return s
}

// options returns a copy of the Stopper's options with optFns applied.
func (s *Stopper) options(optFns []func(*Options)) Options {
	o := s.opts
	o.ClientOptions = slices.Clone(o.ClientOptions)
	for _, fn := range optFns {
		fn(&o)
	}
	return o.withDefaults()
}

// errNilClient is the error of every method of a Stopper without a client:
// a zero Stopper, a nil *Stopper, or New(nil).
var errNilClient = errors.New("pipelinestop: Stopper has no SageMaker client (make it with New and a non-nil client)")

// IsTerminal reports whether an execution with this status will not change
// any more: every status other than Executing and Stopping, including
// CompletedWithFailures and values this SDK version does not know yet.
func IsTerminal(status types.PipelineExecutionStatus) bool {
	return status != "" && status != types.PipelineExecutionStatusExecuting &&
		status != types.PipelineExecutionStatusStopping
}

// Operation names used in events and errors.
const (
	opStop      = "StopPipelineExecution"
	opDescribe  = "DescribePipelineExecution"
	opListSteps = "ListPipelineExecutionSteps"
)
