package pipelinestoptest

import (
	"testing"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// The public constants are written out for the documentation; they must
// stay equal to the implementation's.
func TestConstantsMatchTheImplementation(t *testing.T) {
	for _, c := range []struct{ public, internal any }{
		{DefaultRegion, emulator.DefaultRegion}, {DefaultAccountID, emulator.DefaultAccountID}, {DefaultAddr, emulator.DefaultAddr},
		{StatusExecuting, emulator.StatusExecuting}, {StatusStopping, emulator.StatusStopping}, {StatusStopped, emulator.StatusStopped},
		{StatusFailed, emulator.StatusFailed}, {StatusSucceeded, emulator.StatusSucceeded},
		{StepTypeCallback, emulator.StepTypeCallback}, {StepTypeLambda, emulator.StepTypeLambda},
		{OutcomeSuccess, emulator.OutcomeSuccess}, {OutcomeFailure, emulator.OutcomeFailure},
		{AllOperations, emulator.AllOperations}, {StaleDeletes, emulator.StaleDeletes},
		{DefaultStepDuration, emulator.DefaultStepDuration}, {DefaultStopDelay, emulator.DefaultStopDelay},
		{DefaultLambdaRunTime, emulator.DefaultLambdaRunTime}, {DefaultLambdaTimeout, emulator.DefaultLambdaTimeout},
		{Forever, emulator.Forever},
		{EventSource, emulator.EventSource}, {DetailTypeExecutionStatus, emulator.DetailTypeExecutionStatus},
		{DetailTypeStepStatus, emulator.DetailTypeStepStatus},
	} {
		if c.public != c.internal {
			t.Errorf("public constant %v differs from the implementation's %v", c.public, c.internal)
		}
	}
}
