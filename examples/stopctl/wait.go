package main

import (
	"context"
	"flag"

	"github.com/pipelinestop/pipelinestop"
)

// runWait is "stopctl wait": wait for an execution to reach a terminal
// status, showing its progress and what holds it in Stopping.
func runWait(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 0, "give up after this long, exit 3 (0: no limit)")
	noRouting := fs.Bool("no-region-routing", false, noRoutingUsage)
	ev := addEventsFlags(fs)
	arns, err := e.parse(fs, args, awsGlobals)
	if err != nil {
		return err
	}
	if len(arns) != 1 {
		return usagef("wait: give exactly one execution ARN")
	}
	if *timeout < 0 {
		return usagef("wait: --timeout must not be negative")
	}
	if err := ev.check("wait"); err != nil {
		return err
	}
	if err := parseARNs(arns); err != nil {
		return err
	}
	ctx, cancel := e.withTimeout(ctx, *timeout)
	defer cancel()
	client, err := e.sageMakerFor(ctx, arns[0])
	if err != nil {
		return err
	}
	p := e.newProgress(false)
	opts := []func(*pipelinestop.Options){func(o *pipelinestop.Options) {
		o.OnEvent = p.event
		o.DisableRegionRouting = *noRouting
	}}
	stopEvents, err := ev.start(ctx, e, &opts)
	if err != nil {
		return err
	}
	defer stopEvents()
	s := pipelinestop.New(client, opts...)
	r := pipelinestop.BatchResult{ExecutionARN: arns[0]}
	r.Outcome, r.Err = s.Wait(ctx, arns[0])
	p.Close()
	return e.report([]pipelinestop.BatchResult{r})
}
