package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// lambdaFlags are the flags of "stopctl emulator" that run local Lambda
// functions and their SQS event sources.
type lambdaFlags struct {
	functions    []functionFlag
	timeout      durationFlag
	eventSources []eventSourceFlag
}

type functionFlag struct{ name, path string }

// eventSourceFlag is QUEUE=FUNCTION[,batch-size=N][,window=DURATION][,report-batch-item-failures].
type eventSourceFlag struct {
	queue, function string
	opts            emulator.EventSourceOptions
}

func (f *lambdaFlags) register(fs *flag.FlagSet) {
	f.timeout = durationFlag{d: emulator.DefaultFunctionTimeout}
	fs.Func("function", "run the executable at PATH as the local Lambda function NAME over the Lambda Runtime API: `NAME=PATH` (repeatable)", func(s string) error {
		name, path, ok := strings.Cut(s, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("want NAME=PATH, such as approver=./bootstrap, got %q", s)
		}
		for _, fn := range f.functions {
			if fn.name == name {
				return fmt.Errorf("function %s given twice", name)
			}
		}
		f.functions = append(f.functions, functionFlag{name, path})
		return nil
	})
	fs.Var(&f.timeout, "function-timeout", "timeout (a `duration`) of the --function functions")
	fs.Func("event-source", "deliver the emulator queue's messages to a --function as Lambda's SQS event source mapping does: "+
		"`QUEUE=FUNCTION[,batch-size=N][,window=DURATION][,report-batch-item-failures]` (repeatable; the queue is created if missing)", func(s string) error {
		es, err := parseEventSource(s)
		if err != nil {
			return err
		}
		f.eventSources = append(f.eventSources, es)
		return nil
	})
}

func parseEventSource(s string) (eventSourceFlag, error) {
	spec, rest, _ := strings.Cut(s, ",")
	queue, function, ok := strings.Cut(spec, "=")
	if !ok || queue == "" || function == "" {
		return eventSourceFlag{}, fmt.Errorf("want QUEUE=FUNCTION[,batch-size=N][,window=DURATION][,report-batch-item-failures], got %q", s)
	}
	es := eventSourceFlag{queue: queue, function: function}
	for opt := range strings.SplitSeq(rest, ",") {
		key, val, _ := strings.Cut(opt, "=")
		switch key {
		case "":
		case "batch-size":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 10000 {
				return eventSourceFlag{}, fmt.Errorf("%s: batch-size %q is not a number from 1 to 10000", queue, val)
			}
			es.opts.BatchSize = n
		case "window":
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 || d > 300*time.Second {
				return eventSourceFlag{}, fmt.Errorf("%s: window %q is not a duration from 0 to 300s", queue, val)
			}
			es.opts.MaximumBatchingWindow = d
		case "report-batch-item-failures":
			es.opts.ReportBatchItemFailures = true
		default:
			return eventSourceFlag{}, fmt.Errorf("%s: unknown option %q; want batch-size=N, window=DURATION or report-batch-item-failures", queue, opt)
		}
	}
	return es, nil
}

// check validates the flags together.
func (f *lambdaFlags) check() error {
	if f.timeout.d <= 0 || f.timeout.d > emulator.MaxFunctionTimeout {
		return usagef("emulator: --function-timeout %s is not between 0 and %s", f.timeout.d, emulator.MaxFunctionTimeout)
	}
	for _, es := range f.eventSources {
		known := false
		for _, fn := range f.functions {
			known = known || fn.name == es.function
		}
		if !known {
			return usagef("emulator: --event-source %s=%s: no --function %s", es.queue, es.function, es.function)
		}
	}
	return nil
}

// start adds the functions and event sources to a running emulator and
// describes them on w; the functions' output goes to logs.
func (f *lambdaFlags) start(emu *emulator.Emulator, w, logs io.Writer, quiet bool) error {
	for _, fn := range f.functions {
		if err := emu.AddFunctionConfig(emulator.FunctionConfig{Name: fn.name, Path: fn.path, Timeout: f.timeout.d, Output: logs}); err != nil {
			return fmt.Errorf("emulator: %w", err)
		}
		if !quiet {
			fmt.Fprintf(w, "Lambda function %s runs %s (timeout %s)\n", fn.name, fn.path, f.timeout.d)
		}
	}
	for _, es := range f.eventSources {
		if _, err := emu.CreateQueue(es.queue); err != nil {
			return fmt.Errorf("emulator: --event-source queue %s: %w", es.queue, err)
		}
		uuid, err := emu.AddEventSource(es.queue, es.function, es.opts)
		if err != nil {
			return fmt.Errorf("emulator: %w", err)
		}
		if !quiet {
			fmt.Fprintf(w, "Queue %s feeds %s (event source mapping %s)\n", emu.QueueURL(es.queue), es.function, uuid)
		}
	}
	return nil
}
