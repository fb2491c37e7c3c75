package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/pipelinestop/pipelinestop"
)

// runAck is "stopctl ack": answer a callback step with success (and output
// parameters) or failure (and a reason). The answer is idempotent: its
// ClientRequestToken is derived from the callback token and the answer, so
// running the same ack twice is one request. A different answer to a step
// that was already answered (or no longer waits) was not taken: it is an
// error (exit 1).
func runAck(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("ack", flag.ContinueOnError)
	token := fs.String("token", "", `the step's callback token; "-" reads it from standard input (keeps it out of the process list)`)
	success := fs.Bool("success", false, "answer SendPipelineExecutionStepSuccess")
	failure := fs.Bool("failure", false, "answer SendPipelineExecutionStepFailure")
	reason := fs.String("reason", "", "failure reason (cut to 256 bytes)")
	outputs := map[string]string{}
	fs.Func("output", "output parameter NAME=VALUE for --success (repeatable)", func(s string) error {
		name, value, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return fmt.Errorf("want NAME=VALUE, got %q", s)
		}
		if _, dup := outputs[name]; dup {
			return fmt.Errorf("output %q given twice", name)
		}
		outputs[name] = value
		return nil
	})
	rest, err := e.parse(fs, args, false)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usagef("ack: unexpected argument %q", rest[0])
	case *token == "":
		return usagef("ack: --token is required")
	case *success == *failure:
		return usagef("ack: give exactly one of --success and --failure")
	case *failure && len(outputs) > 0:
		return usagef("ack: --output goes with --success only")
	case *success && *reason != "":
		return usagef("ack: --reason goes with --failure only")
	}
	if *token == "-" {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && line == "" {
			return usagef("ack: --token -: no token on standard input")
		}
		*token = strings.TrimSpace(line)
	}
	t := pipelinestop.CallbackToken(*token)
	if err := t.Validate(); err != nil {
		return usagef("ack: --token: %v", err)
	}
	client, err := e.sageMaker(ctx)
	if err != nil {
		return err
	}
	ack := pipelinestop.NewAcknowledger(client)
	answer := "success"
	if *success {
		err = ack.Succeed(ctx, t, outputs)
	} else {
		answer = "failure"
		err = ack.Fail(ctx, t, *reason)
	}
	if errors.Is(err, pipelinestop.ErrAlreadyAnswered) {
		// The same answer is replayed with success (its token is derived
		// from it): this one differs from the step's answer, or the step
		// no longer waits. Either way it was not taken.
		return fmt.Errorf("ack: callback step %s: the %s was not taken: %w", t, answer, err)
	}
	if err != nil {
		return err
	}
	if e.g.json() {
		return e.printJSON(map[string]any{"token": t.String(), "answer": answer, "outputs": len(outputs), "alreadyAnswered": false})
	}
	fmt.Fprintf(e.stdout, "answered callback step %s with %s", t, answer)
	if len(outputs) > 0 {
		fmt.Fprintf(e.stdout, " (%d output%s)", len(outputs), plural(len(outputs)))
	}
	fmt.Fprintln(e.stdout)
	return nil
}
