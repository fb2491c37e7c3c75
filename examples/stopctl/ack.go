package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/pipelinestop/pipelinestop"
)

// runAck is "stopctl ack": answer a callback step with success (and output
// parameters) or failure (and a reason). The step is named by its callback
// token, or by its execution and name (--execution ARN --step NAME: the
// token is looked up with ListPipelineExecutionSteps and never printed).
// The answer is idempotent: its ClientRequestToken is derived from the
// callback token and the answer, so running the same ack twice is one
// request. A different answer to a step that was already answered (or no
// longer waits) was not taken: it is an error (exit 1).
func runAck(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("ack", flag.ContinueOnError)
	token := fs.String("token", "", `the step's callback token; "-" reads it from standard input (keeps it out of the process list)`)
	execution := fs.String("execution", "", "the execution ARN of the callback step to answer (with --step; instead of --token)")
	step := fs.String("step", "", "the name of the callback step to answer (with --execution)")
	success := fs.Bool("success", false, "answer SendPipelineExecutionStepSuccess")
	failure := fs.Bool("failure", false, "answer SendPipelineExecutionStepFailure")
	reason := fs.String("reason", "", "failure reason (cut to 256 bytes)")
	outputs := map[string]string{}
	fs.Func("param", "output parameter `NAME=VALUE` for --success (repeatable)", func(s string) error {
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
	noRouting := fs.Bool("no-region-routing", false, noRoutingUsage)
	rest, err := e.parse(fs, args, awsGlobals)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usagef("ack: unexpected argument %q", rest[0])
	case *token != "" && (*execution != "" || *step != ""):
		return usagef("ack: give --token, or --execution and --step, not both")
	case *token == "" && (*execution == "") != (*step == ""):
		return usagef("ack: --execution and --step go together")
	case *token == "" && *execution == "":
		return usagef("ack: give --token, or --execution ARN --step NAME")
	case *success == *failure:
		return usagef("ack: give exactly one of --success and --failure")
	case *failure && len(outputs) > 0:
		return usagef("ack: --param goes with --success only")
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
	if *execution != "" {
		if err := parseARNs([]string{*execution}); err != nil {
			return err
		}
	}
	t := pipelinestop.CallbackToken(*token)
	if *execution == "" {
		if err := t.Validate(); err != nil {
			return usagef("ack: --token: %v", err)
		}
	}
	client, err := e.sageMakerFor(ctx, *execution)
	if err != nil {
		return err
	}
	ackOpts := func(o *pipelinestop.Options) { o.DisableRegionRouting = *noRouting }
	if *execution != "" {
		// The step's token, and the answer, are in the execution's Region.
		route, err := routeTo(client, *execution, *noRouting)
		if err != nil {
			return err
		}
		if t, err = findCallbackToken(ctx, client, *execution, *step, route...); err != nil {
			return err
		}
		ackOpts = func(o *pipelinestop.Options) {
			o.DisableRegionRouting, o.CallbackExecutionARN = *noRouting, *execution
		}
	}
	ack := pipelinestop.NewAcknowledger(client, ackOpts)
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
	name := t.String() // redacted
	if *execution != "" {
		name = fmt.Sprintf("%q of %s", *step, shortARN(*execution))
	}
	if e.g.json() {
		rep := map[string]any{"token": t.String(), "answer": answer, "outputs": len(outputs), "alreadyAnswered": false}
		if *execution != "" {
			rep["executionArn"], rep["step"] = *execution, *step
		}
		return e.printJSON(rep)
	}
	fmt.Fprintf(e.stdout, "answered callback step %s with %s", name, answer)
	if len(outputs) > 0 {
		fmt.Fprintf(e.stdout, " (%d output%s)", len(outputs), plural(len(outputs)))
	}
	fmt.Fprintln(e.stdout)
	return nil
}

// findCallbackToken finds the callback token of the named callback step of
// an execution, with ListPipelineExecutionSteps. The token is a secret: it
// is returned, never printed.
func findCallbackToken(ctx context.Context, client *sagemaker.Client, arn, step string, optFns ...func(*sagemaker.Options)) (pipelinestop.CallbackToken, error) {
	p := sagemaker.NewListPipelineExecutionStepsPaginator(client, &sagemaker.ListPipelineExecutionStepsInput{
		PipelineExecutionArn: aws.String(arn), MaxResults: aws.Int32(100)})
	var names []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx, optFns...)
		if err != nil {
			return "", fmt.Errorf("ack: list steps of %s: %w", shortARN(arn), pipelinestop.Classify(err))
		}
		for _, st := range page.PipelineExecutionSteps {
			name := aws.ToString(st.StepName)
			names = append(names, name)
			if name != step {
				continue
			}
			if st.Metadata == nil || st.Metadata.Callback == nil || aws.ToString(st.Metadata.Callback.CallbackToken) == "" {
				return "", usagef("ack: step %q of %s is not a callback step that has started (status %s)", step, shortARN(arn), orDash(string(st.StepStatus)))
			}
			return pipelinestop.CallbackToken(aws.ToString(st.Metadata.Callback.CallbackToken)), nil
		}
	}
	if len(names) == 0 {
		return "", usagef("ack: execution %s has no step that has started", shortARN(arn))
	}
	return "", usagef("ack: execution %s has no step %q (its steps: %s)", shortARN(arn), step, strings.Join(names, ", "))
}
