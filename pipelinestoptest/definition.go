package pipelinestoptest

import "github.com/pipelinestop/pipelinestop/internal/emulator"

// Step describes one pipeline step for Definition.
type Step struct {
	// Name is the step's name.
	Name string
	// Type is StepTypeCallback, StepTypeLambda or any other SageMaker step
	// type (a generic step). Empty means "Processing".
	Type string
	// DependsOn names the steps that must succeed before this one starts.
	DependsOn []string
	// SqsQueueURL is the queue a callback step sends its messages to;
	// required for callback steps.
	SqsQueueURL string
	// FunctionArn is a Lambda step's function; empty means a made-up ARN.
	FunctionArn string
	// Arguments are the step's arguments; values may be any JSON value.
	Arguments map[string]any
	// Outputs names the step's String output parameters.
	Outputs []string
}

// Definition returns a pipeline definition JSON (Version "2020-12-01")
// with the given steps, for CreatePipeline.
func Definition(steps ...Step) string {
	in := make([]emulator.Step, len(steps))
	for i, s := range steps {
		in[i] = emulator.Step{Name: s.Name, Type: s.Type, DependsOn: s.DependsOn, SqsQueueURL: s.SqsQueueURL,
			FunctionArn: s.FunctionArn, Arguments: s.Arguments, Outputs: s.Outputs}
	}
	return emulator.Definition(in...)
}
