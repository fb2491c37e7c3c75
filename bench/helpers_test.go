package bench_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

var (
	scenarios = flag.Bool("scenarios", false, "run the benchmark scenarios (they print tables)")
	full      = flag.Bool("full", false, "run the scenarios at full size (minutes) instead of CI size")
)

// needScenarios skips t unless -scenarios was given.
func needScenarios(t *testing.T) {
	t.Helper()
	if !*scenarios {
		t.Skip("benchmark scenario: run with -scenarios (and -full for full size)")
	}
}

// size returns ci or, with -full, full.
func size[T any](ci, fullSize T) T {
	if *full {
		return fullSize
	}
	return ci
}

// boundedCtx returns a context that ends after d: every scenario loop is
// bounded in time as well as in count.
func boundedCtx(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// startExecutions creates a pipeline with one generic step named step and
// starts n executions of it.
func startExecutions(tb testing.TB, em *emulator.Emulator, pipeline, step string, n int) []string {
	tb.Helper()
	if _, err := em.CreatePipeline(pipeline, emulator.Definition(emulator.Step{Name: step, Type: "Training"})); err != nil {
		tb.Fatal(err)
	}
	arns := make([]string, n)
	for i := range arns {
		arn, err := em.StartExecution(pipeline)
		if err != nil {
			tb.Fatal(err)
		}
		arns[i] = arn
	}
	return arns
}

// countingClient counts the SageMaker calls made through it.
type countingClient struct {
	pipelinestop.StopAPIClient
	stops, describes, lists atomic.Int64
}

func (c *countingClient) StopPipelineExecution(ctx context.Context, in *sagemaker.StopPipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
	c.stops.Add(1)
	return c.StopAPIClient.StopPipelineExecution(ctx, in, optFns...)
}

func (c *countingClient) DescribePipelineExecution(ctx context.Context, in *sagemaker.DescribePipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
	c.describes.Add(1)
	return c.StopAPIClient.DescribePipelineExecution(ctx, in, optFns...)
}

func (c *countingClient) ListPipelineExecutionSteps(ctx context.Context, in *sagemaker.ListPipelineExecutionStepsInput, optFns ...func(*sagemaker.Options)) (*sagemaker.ListPipelineExecutionStepsOutput, error) {
	c.lists.Add(1)
	return c.StopAPIClient.ListPipelineExecutionSteps(ctx, in, optFns...)
}

// table prints an aligned table to stdout, under a title.
type table struct {
	w *tabwriter.Writer
}

func newTable(title string, header ...string) *table {
	fmt.Printf("\n%s\n", title)
	t := &table{w: tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)}
	t.row(toAny(header)...)
	seps := make([]any, len(header))
	for i, h := range header {
		seps[i] = strings.Repeat("-", len(h))
	}
	t.row(seps...)
	return t
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// row adds a row; durations print in milliseconds, floats with 2 decimals.
func (t *table) row(cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		switch v := c.(type) {
		case time.Duration:
			parts[i] = ms(v)
		case float64:
			parts[i] = fmt.Sprintf("%.2f", v)
		default:
			parts[i] = fmt.Sprint(v)
		}
	}
	fmt.Fprintln(t.w, strings.Join(parts, "\t"))
}

func (t *table) flush() { t.w.Flush() }

// ms prints d in milliseconds, or in microseconds below a millisecond.
func ms(d time.Duration) string {
	if d < time.Millisecond && d > -time.Millisecond {
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// verdict says whether a target was met.
func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// ratio returns a/b, or 0 when b is 0.
func ratio[T ~int64 | ~int | ~uint64 | ~float64](a, b T) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// median returns the median of ds (0 for none).
func median[T ~int64 | ~int | ~uint64 | ~float64](ds []T) T {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
