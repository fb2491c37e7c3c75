package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ErrNotFound is returned by the scenario helpers for an unknown pipeline,
// execution or step.
var ErrNotFound = errors.New("emulator: not found")

// Step describes one step for Definition.
type Step struct {
	Name string
	// Type is StepTypeCallback, StepTypeLambda, StepTypeCondition,
	// StepTypeFail or a generic step type such as "Training". Empty means
	// "Processing".
	Type      string
	DependsOn []string
	// SqsQueueURL is required for callback steps.
	SqsQueueURL string
	// FunctionArn is required for Lambda steps; empty means a made-up ARN.
	FunctionArn string
	// Arguments are the step's arguments; values may be any JSON value,
	// property references such as map[string]any{"Get": "Parameters.X"}
	// included.
	Arguments map[string]any
	// Outputs names the step's String output parameters.
	Outputs []string
	// Conditions are a Condition step's conditions, for example
	// map[string]any{"Type": "Equals", "LeftValue": ..., "RightValue": ...};
	// IfSteps and ElseSteps are its branches.
	Conditions         []any
	IfSteps, ElseSteps []Step
	// ErrorMessage is a Fail step's message: a string or an expression.
	ErrorMessage any
}

// Definition returns a pipeline definition JSON with the given steps.
func Definition(steps ...Step) string {
	def := struct {
		Version string
		Steps   []stepObject
	}{Version: DefinitionVersion, Steps: stepObjects(steps)}
	buf, _ := json.Marshal(def) // only strings, slices and caller's JSON values
	return string(buf)
}

// stepObject is a definition step object, its members in the order
// SageMaker's own examples write them.
type stepObject struct {
	Name             string
	Type             string
	DependsOn        []string          `json:",omitempty"`
	Arguments        map[string]any    `json:",omitempty"`
	SqsQueueUrl      string            `json:",omitempty"`
	FunctionArn      string            `json:",omitempty"`
	OutputParameters []outputParamDecl `json:",omitempty"`
}

// stepObjects renders steps as definition step objects.
func stepObjects(steps []Step) []stepObject {
	out := []stepObject{}
	for _, s := range steps {
		o := stepObject{Name: s.Name, Type: s.Type, DependsOn: s.DependsOn, SqsQueueUrl: s.SqsQueueURL, FunctionArn: s.FunctionArn}
		if o.Type == "" {
			o.Type = "Processing"
		}
		if o.Type == StepTypeLambda && o.FunctionArn == "" {
			o.FunctionArn = "arn:aws:lambda:us-east-1:123456789012:function:" + s.Name
		}
		if len(s.Arguments) > 0 || o.Type == StepTypeCondition || (o.Type == StepTypeFail && s.ErrorMessage != nil) {
			o.Arguments = maps.Clone(s.Arguments)
			if o.Arguments == nil {
				o.Arguments = map[string]any{}
			}
		}
		switch o.Type {
		case StepTypeCondition:
			o.Arguments["Conditions"] = s.Conditions
			o.Arguments["IfSteps"] = stepObjects(s.IfSteps)
			o.Arguments["ElseSteps"] = stepObjects(s.ElseSteps)
		case StepTypeFail:
			if s.ErrorMessage != nil {
				o.Arguments["ErrorMessage"] = s.ErrorMessage
			}
		}
		for _, name := range s.Outputs {
			o.OutputParameters = append(o.OutputParameters, outputParamDecl{OutputName: name, OutputType: "String"})
		}
		out = append(out, o)
	}
	return out
}

// CreatePipeline creates a pipeline directly, without an API call, and
// returns its ARN. The definition is checked as CreatePipeline checks it.
func (e *Emulator) CreatePipeline(name, definitionJSON string) (string, error) {
	if err := checkPattern("PipelineName", name, pipelineNamePattern); err != nil {
		return "", err
	}
	def, err := parseDefinition(definitionJSON)
	if err != nil {
		return "", fmt.Errorf("emulator: invalid definition: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.state.pipelines[name]; ok {
		return p.arn, fmt.Errorf("emulator: pipeline %s already exists", name)
	}
	p := e.newPipeline(name, definitionJSON, def, e.arnPrefix("iam", true)+"role/emulator")
	return p.arn, nil
}

// StartExecution starts an execution of the named pipeline directly and
// returns its ARN.
func (e *Emulator) StartExecution(pipelineName string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.state.pipelines[pipelineName]
	if !ok {
		return "", fmt.Errorf("%w: pipeline %s", ErrNotFound, pipelineName)
	}
	arn, aerr := e.startExecution(p, startRequest{token: newRequestID() + "-direct"})
	if aerr != nil {
		return "", aerr
	}
	return arn, nil
}

// SetLambdaOutputs sets the output parameters that the function of every
// Lambda step named stepName, in any Region, returns when it finishes, for
// steps that finish after the call. Only outputs the step declares are
// kept; nil removes the setting (the function then returns no outputs).
func (e *Emulator) SetLambdaOutputs(stepName string, outputs map[string]string) {
	e.regions.each(func(c *Emulator) { c.setLambdaOutputs(stepName, outputs) })
}

func (e *Emulator) setLambdaOutputs(stepName string, outputs map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if outputs == nil {
		delete(e.state.lambdaOutputs, stepName)
		return
	}
	e.state.lambdaOutputs[stepName] = maps.Clone(outputs)
}

// CreateQueue creates one of the emulator's queues (standard, default
// attributes) and returns its URL. An existing queue's URL is returned.
func (e *Emulator) CreateQueue(name string) (string, error) {
	u, err := e.queues.createQueue(name, nil)
	if err != nil {
		return "", err
	}
	return u, nil
}

// ExecutionStatus returns an execution's status and failure reason.
func (e *Emulator) ExecutionStatus(executionARN string) (status, failureReason string, err error) {
	e = e.forARN(executionARN)
	e.mu.Lock()
	defer e.mu.Unlock()
	ex, ok := e.state.executions[executionARN]
	if !ok {
		return "", "", fmt.Errorf("%w: execution %s", ErrNotFound, executionARN)
	}
	return ex.status, ex.failureReason, nil
}

// ExecutionEnded returns when the execution reached its terminal status,
// to the nanosecond (LastModifiedTime is sent in milliseconds), and
// whether it has: a zero time and false while it runs or stops.
func (e *Emulator) ExecutionEnded(executionARN string) (time.Time, bool, error) {
	e = e.forARN(executionARN)
	e.mu.Lock()
	defer e.mu.Unlock()
	ex, ok := e.state.executions[executionARN]
	if !ok {
		return time.Time{}, false, fmt.Errorf("%w: execution %s", ErrNotFound, executionARN)
	}
	return ex.ended, !ex.ended.IsZero(), nil
}

// StepStatus returns a step's status, or "" when the step has not started.
func (e *Emulator) StepStatus(executionARN, stepName string) (string, error) {
	e = e.forARN(executionARN)
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.step(executionARN, stepName)
	if err != nil || s == nil {
		return "", err
	}
	return s.status, nil
}

// StepArguments returns the JSON of a started step's Arguments with its
// expressions resolved, as the step saw them when it started (for a
// callback step, the message's "arguments"; for a Lambda step, the
// function's input).
func (e *Emulator) StepArguments(executionARN, stepName string) (string, error) {
	e = e.forARN(executionARN)
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.step(executionARN, stepName)
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", fmt.Errorf("%w: step %s of %s has not started", ErrNotFound, stepName, executionARN)
	}
	buf, err := json.Marshal(s.args)
	if err != nil {
		return "", fmt.Errorf("emulator: encode arguments: %w", err)
	}
	return string(buf), nil
}

// CallbackToken returns the callback token of a started callback step.
func (e *Emulator) CallbackToken(executionARN, stepName string) (string, error) {
	e = e.forARN(executionARN)
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.step(executionARN, stepName)
	if err != nil {
		return "", err
	}
	if s == nil || s.token == "" {
		return "", fmt.Errorf("%w: no started callback step %s in %s", ErrNotFound, stepName, executionARN)
	}
	return s.token, nil
}

// CompleteStep ends the work of a running generic or Lambda step now, as if
// its run time had passed: it succeeds, or is Stopped when the execution is
// stopping. Callback steps are answered through the API instead.
func (e *Emulator) CompleteStep(executionARN, stepName string) error {
	e = e.forARN(executionARN)
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.step(executionARN, stepName)
	if err != nil {
		return err
	}
	if s == nil || !s.running() || s.def.Type == StepTypeCallback {
		return fmt.Errorf("emulator: step %s of %s is not a running generic or Lambda step", stepName, executionARN)
	}
	if s.def.Type != StepTypeLambda && s.status == StatusStopping {
		return nil // already stopping on its own delay
	}
	e.finishWork(s)
	return nil
}

// TimeOutLambdaStep ends a running Lambda step now as if its
// LambdaTimeout had passed: the step fails with the reason "Lambda step
// <name> timed out after <d>" (d is the step's LambdaTimeout, or the time
// it ran when that is Forever) and the execution Failed, also when it was
// Stopping. With LambdaTimeout Forever, tests decide when a step times
// out instead of racing a timer.
func (e *Emulator) TimeOutLambdaStep(executionARN, stepName string) error {
	e = e.forARN(executionARN)
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.step(executionARN, stepName)
	if err != nil {
		return err
	}
	if s == nil || !s.running() || s.def.Type != StepTypeLambda {
		return fmt.Errorf("emulator: step %s of %s is not a running Lambda step", stepName, executionARN)
	}
	_, _, timeout := e.stepTiming(stepName, true)
	if timeout == Forever {
		timeout = time.Since(s.start).Round(time.Millisecond)
	}
	e.cancelTimers(s)
	e.failStep(s, fmt.Sprintf("Lambda step %s timed out after %s", stepName, timeout))
	return nil
}

// step finds a step; nil without error when it has not started. Callers
// hold e.mu.
func (e *Emulator) step(executionARN, stepName string) (*stepRun, error) {
	ex, ok := e.state.executions[executionARN]
	if !ok {
		return nil, fmt.Errorf("%w: execution %s", ErrNotFound, executionARN)
	}
	if !slices.ContainsFunc(ex.def.steps, func(d *stepDef) bool { return d.Name == stepName }) {
		return nil, fmt.Errorf("%w: step %s in %s", ErrNotFound, stepName, executionARN)
	}
	return ex.byName[stepName], nil
}

// WaitStepStatus waits until the step has one of statuses. It returns the
// context's error (wrapped, with the last status seen) when ctx ends first,
// and ErrNotFound for an unknown execution or step.
func (e *Emulator) WaitStepStatus(ctx context.Context, executionARN, stepName string, statuses ...string) error {
	e = e.forARN(executionARN)
	return e.waitFor(ctx, func() (string, bool, error) {
		s, err := e.step(executionARN, stepName)
		if err != nil || s == nil {
			return "", false, err
		}
		return s.status, slices.Contains(statuses, s.status), nil
	})
}

// WaitExecutionStatus waits until the execution has one of statuses and
// returns it. It returns the context's error (wrapped, with the last status
// seen) when ctx ends first.
func (e *Emulator) WaitExecutionStatus(ctx context.Context, executionARN string, statuses ...string) (string, error) {
	e = e.forARN(executionARN)
	var last string
	err := e.waitFor(ctx, func() (string, bool, error) {
		ex, ok := e.state.executions[executionARN]
		if !ok {
			return "", false, fmt.Errorf("%w: execution %s", ErrNotFound, executionARN)
		}
		last = ex.status
		return ex.status, slices.Contains(statuses, ex.status), nil
	})
	return last, err
}

// waitFor calls check with e.mu held after every state change until it
// reports done, fails, ctx ends or the emulator closes.
func (e *Emulator) waitFor(ctx context.Context, check func() (status string, done bool, err error)) error {
	for {
		e.mu.Lock()
		status, done, err := check()
		changed := e.state.changed
		e.mu.Unlock()
		if err != nil || done {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("emulator: wait ended with status %q: %w", status, ctx.Err())
		case <-e.done:
			return errors.New("emulator: closed")
		}
	}
}

// QueueURLIfExists returns the URL of the emulator's queue with the given
// name, or ErrNotFound.
func (e *Emulator) QueueURLIfExists(name string) (string, error) {
	e.queues.mu.Lock()
	defer e.queues.mu.Unlock()
	q, ok := e.queues.queues[name]
	if !ok {
		return "", fmt.Errorf("%w: queue %s", ErrNotFound, name)
	}
	return q.url, nil
}
