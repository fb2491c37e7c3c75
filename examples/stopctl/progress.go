package main

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
)

// progress shows a Stopper's events on a console: retries, status
// changes and the steps that hold a Stopping execution.
type progress struct {
	c *console
	// multi prefixes each line with the execution, when several are
	// stopped at once.
	multi bool

	mu     sync.Mutex
	states map[string]string // execution ARN -> its part of the live line
	order  []string          // the executions in the order first seen
}

// newProgress returns a progress writer on the command's standard error:
// live when it is a terminal, plain lines otherwise.
func (e *env) newProgress(multi bool) *progress {
	return &progress{c: newConsole(e.stderr, isTerminal(e.stderr)), multi: multi, states: map[string]string{}}
}

// setStatus sets one execution's part of the live line. With several
// executions the line shows them all, each as "PIPELINE/ID: state", the
// console cutting it to the terminal's width.
func (p *progress) setStatus(arn, state string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.states == nil {
		p.states = map[string]string{}
	}
	if _, seen := p.states[arn]; !seen {
		p.order = append(p.order, arn)
	}
	p.states[arn] = state
	p.c.SetStatus(p.statusLine())
}

// statusLine is the live line of every execution; p.mu is held.
func (p *progress) statusLine() string {
	if !p.multi && len(p.order) == 1 {
		return p.states[p.order[0]]
	}
	parts := make([]string, 0, len(p.order))
	for _, arn := range p.order {
		parts = append(parts, shortARN(arn)+": "+p.states[arn])
	}
	return fmt.Sprintf("%d executions · %s", len(p.order), strings.Join(parts, " · "))
}

// Close ends the live status line.
func (p *progress) Close() { p.c.Close() }

// event is a pipelinestop Options.OnEvent hook.
func (p *progress) event(ev pipelinestop.Event) {
	who := ""
	if p.multi {
		who = shortARN(ev.ExecutionARN) + ": "
	}
	switch ev.Type {
	case pipelinestop.EventAttempt:
		if ev.Op == "StopPipelineExecution" {
			p.setStatus(ev.ExecutionARN, fmt.Sprintf("stopping (attempt %d)", ev.Attempt))
		}
	case pipelinestop.EventRetry:
		p.line("%s%s failed: %s; retrying with the same token in %s", who, ev.Op, shortErr(ev.Err), ev.Delay.Round(time.Millisecond))
	case pipelinestop.EventStopped:
		if ev.Status == types.PipelineExecutionStatusStopping {
			p.line("%sStopPipelineExecution succeeded after %d attempt%s; status Stopping", who, ev.Attempt, plural(ev.Attempt))
		} else {
			p.line("%sthe execution is already %s: nothing to stop", who, ev.Status)
		}
		p.setStatus(ev.ExecutionARN, string(ev.Status))
	case pipelinestop.EventStatus:
		p.line("%sstatus %s", who, ev.Status)
		p.setStatus(ev.ExecutionARN, string(ev.Status))
	case pipelinestop.EventBlocked:
		if len(ev.Blocking) == 0 {
			p.line("%snothing blocks the stop any more", who)
			p.setStatus(ev.ExecutionARN, orStatus(ev.Status))
			break
		}
		for _, b := range ev.Blocking {
			p.line("%sheld by %s", who, b)
		}
		p.setStatus(ev.ExecutionARN, fmt.Sprintf("%s, held by %s", orStatus(ev.Status), blockingNames(ev.Blocking)))
	}
}

func (p *progress) line(format string, args ...any) {
	p.c.Printf("%7s  %s", p.c.elapsed(), fmt.Sprintf(format, args...))
}

func orStatus(s types.PipelineExecutionStatus) string {
	if s == "" {
		return string(types.PipelineExecutionStatusStopping)
	}
	return string(s)
}

// blockingNames lists blocking steps briefly: `"Approve" (Callback)`.
func blockingNames(bs []pipelinestop.BlockingStep) string {
	names := make([]string, 0, len(bs))
	for _, b := range bs {
		t := b.Type
		if t == "" {
			t = "step"
		}
		names = append(names, fmt.Sprintf("%q (%s)", b.Name, t))
	}
	return strings.Join(names, ", ")
}

// shortErr is an error's API code and message when it has them.
func shortErr(err error) string {
	var pe *pipelinestop.Error
	if errors.As(err, &pe) && pe.Code != "" {
		return pe.Code + ": " + pe.Message
	}
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}
