package bench_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// conflictSlack is issue 6's bound on the time to stop during a conflict
// race: within 20% of the window.
const conflictSlack = 1.20

// Airflow's SageMakerStopPipelineOperator policy: 5 calls, 0.3 s apart,
// retrying ConflictException only.
const (
	airflowCalls = 5
	airflowSleep = 300 * time.Millisecond
)

// bareStop is StopPipelineExecution as users call it without pipelinestop:
// once, with the SDK's default retryer and a random token.
func bareStop(ctx context.Context, client *sagemaker.Client, arn string) error {
	_, err := client.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: aws.String(arn)})
	return err
}

// airflowStop models Airflow's stop: the same boto call (a new random
// token each time, as botocore fills it per call) up to 5 times, 0.3 s
// apart, while SageMaker answers ConflictException.
func airflowStop(ctx context.Context, client *sagemaker.Client, arn string) error {
	var err error
	for i := range airflowCalls {
		if err = bareStop(ctx, client, arn); err == nil {
			return nil
		}
		var conflict *types.ConflictException
		if !errors.As(err, &conflict) || i == airflowCalls-1 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(airflowSleep):
		}
	}
	return err
}

// conflictRun is one strategy's stop of one execution.
type conflictRun struct {
	ok  bool
	tts time.Duration // from the start of the execution (and of its conflict window) to the accepted stop
}

func TestScenarioConflict(t *testing.T) {
	needScenarios(t)
	windows := size([]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second},
		[]time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second,
			3 * time.Second, 4 * time.Second, 5 * time.Second})
	reps := size(3, 10)
	strategies := []string{"bare SDK (1 call)", "Airflow (5 x 0.3 s)", "pipelinestop Stop"}

	// One emulator per window (the window is emulator-wide), every
	// strategy and repetition at once, each on its own execution started
	// when the strategy starts, so its conflict window starts then too.
	results := make([][][]conflictRun, len(windows))
	var wg sync.WaitGroup
	for wi, w := range windows {
		em := emulator.StartTest(t, emulator.Config{Timing: emulator.Timing{ConflictWindow: w}})
		em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: -1})
		if _, err := em.CreatePipeline("conflict", emulator.Definition(emulator.Step{Name: "Train", Type: "Training"})); err != nil {
			t.Fatal(err)
		}
		client := em.SageMakerClient()
		stopper := pipelinestop.New(client)
		run := []func(context.Context, string) error{
			func(ctx context.Context, arn string) error { return bareStop(ctx, client, arn) },
			func(ctx context.Context, arn string) error { return airflowStop(ctx, client, arn) },
			func(ctx context.Context, arn string) error { _, err := stopper.Stop(ctx, arn); return err },
		}
		ctx := boundedCtx(t, w+time.Minute)
		results[wi] = make([][]conflictRun, len(run))
		for si := range run {
			results[wi][si] = make([]conflictRun, reps)
			for r := range reps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					arn, err := em.StartExecution("conflict")
					if err != nil {
						t.Error(err)
						return
					}
					start := time.Now()
					err = run[si](ctx, arn)
					results[wi][si][r] = conflictRun{ok: err == nil, tts: time.Since(start)}
				}()
			}
		}
	}
	wg.Wait()

	tb := newTable(fmt.Sprintf("(2) Conflict races: %d stops per window and strategy, each started with its execution", reps),
		"window", "strategy", "success", "median time-to-stop", "median/window", "max time-to-stop", "max/window",
		"target", "verdict (median)", "verdict (every stop)")
	for wi, w := range windows {
		for si, name := range strategies {
			var ok int
			var tts []time.Duration
			for _, r := range results[wi][si] {
				if r.ok {
					ok++
					tts = append(tts, r.tts)
				}
			}
			cells := []any{"-", "-", "-", "-"}
			if ok > 0 {
				cells = []any{median(tts), ratio(median(tts), w), slices.Max(tts), ratio(slices.Max(tts), w)}
			}
			target, vMed, vAll := "", "", ""
			if si == len(strategies)-1 {
				bound := time.Duration(float64(w) * conflictSlack)
				target = fmt.Sprintf("100%%, <= %.1fx window", conflictSlack)
				vMed, vAll = verdict(ok == reps && median(tts) <= bound), verdict(ok == reps && slices.Max(tts) <= bound)
				if ok != reps {
					t.Errorf("window %v: pipelinestop stopped %d of %d executions", w, ok, reps)
				}
			}
			tb.row(append(append([]any{w.String(), name, fmt.Sprintf("%d/%d", ok, reps)}, cells...), target, vMed, vAll)...)
		}
	}
	tb.flush()
}
