package bench_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// wireObserver is the SDK's HTTP client with counters of the faults the
// emulator injected, as the client saw them. It changes nothing.
type wireObserver struct {
	base                                 sagemaker.HTTPClient
	requests, dropped, server, throttled atomic.Int64
}

func (o *wireObserver) Do(req *http.Request) (*http.Response, error) {
	o.requests.Add(1)
	resp, err := o.base.Do(req)
	if err != nil {
		if req.Context().Err() == nil {
			o.dropped.Add(1)
		}
		return resp, err
	}
	switch {
	case resp.StatusCode >= 500:
		o.server.Add(1)
	case resp.StatusCode == http.StatusBadRequest:
		body, rerr := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr != nil {
			return nil, rerr
		}
		if bytes.Contains(body, []byte(`"ThrottlingException"`)) {
			o.throttled.Add(1)
		}
	}
	return resp, nil
}

// soakFaults are issue 6's faults for n concurrent stops. Of the requests
// that are not throttled, 20% get a 5xx answer and 5% a dropped connection
// (half before the operation runs, half after it ran, when only the
// answer is lost); the emulator draws them in that order, hence the
// adjusted rates. Every answer waits 1 to 21 ms. The emulator throttles
// with a token bucket per operation, not at random: the buckets are sized
// so that the first waves of stops, polls and step listings overflow them;
// StopPipelineExecution's own bucket (burst 1, n/2 a second) is overflowed
// by the first wave of stops however slowly a loaded machine sends it, so
// that throttling always happens (a quarter to a third of the requests at
// 20 executions). The test logs the shares it saw on the wire.
func soakFaults(n int) emulator.Faults {
	const drop, errs, dropResp = 0.025, 0.20, 0.025
	return emulator.Faults{
		RateLimits: map[string]emulator.RateLimit{emulator.AllOperations: {PerSecond: 1.5 * float64(n), Burst: n * 3 / 5},
			// The first wave of stops always overflows this bucket, however
			// slowly a loaded machine sends it (n stops within 2 s).
			"StopPipelineExecution": {PerSecond: float64(n) / 2, Burst: 1}},
		DropRate:         drop,
		ErrorRate:        errs / (1 - drop),
		DropResponseRate: dropResp / ((1 - drop) * (1 - errs/(1-drop))),
		Latency:          time.Millisecond,
		LatencyJitter:    20 * time.Millisecond,
	}
}

// TestSoakStopAndWait runs concurrent StopAndWait calls (20, or 200 with
// -full) of one Stopper with default options under soakFaults. Every
// execution must end Stopped, through exactly one distinct stop token
// (the one StopAndWait reports), with no error. It runs in plain go test.
func TestSoakStopAndWait(t *testing.T) {
	n := size(20, 200)
	em := emulator.StartTest(t, emulator.Config{Seed: 6})
	em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: time.Second})
	arns := startExecutions(t, em, "soak", "Train", n)
	wire := &wireObserver{base: awshttp.NewBuildableClient()}
	client := em.SageMakerClient(func(o *sagemaker.Options) { o.HTTPClient = wire })
	s := pipelinestop.New(client)
	em.SetFaults(soakFaults(n))
	ctx := boundedCtx(t, size(time.Minute, 5*time.Minute))

	outs := make([]*pipelinestop.Outcome, n)
	errs := make([]error, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i, arn := range arns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = s.StopAndWait(ctx, arn)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	em.SetFaults(emulator.Faults{})

	for i, arn := range arns {
		out, err := outs[i], errs[i]
		if err != nil {
			t.Errorf("execution %d: unexpected error: %v", i, err)
			continue
		}
		if out.Status != types.PipelineExecutionStatusStopped || out.Stop == nil {
			t.Errorf("execution %d: outcome %+v, want Stopped", i, out)
			continue
		}
		if st, _, err := em.ExecutionStatus(arn); err != nil || st != "Stopped" {
			t.Errorf("execution %d: the emulator says %q (%v), want Stopped", i, st, err)
		}
		tokens := em.StopTokens(arn)
		if len(tokens) != 1 || em.EffectiveStops(arn) != 1 || em.AcceptedStopToken(arn) != out.Stop.Token {
			t.Errorf("execution %d: %d distinct stop tokens, %d effective stops, accepted token %q; want one, one, %q",
				i, len(tokens), em.EffectiveStops(arn), em.AcceptedStopToken(arn), out.Stop.Token)
		}
	}

	req := wire.requests.Load()
	share := func(v *atomic.Int64) string { return fmt.Sprintf("%d (%.1f%%)", v.Load(), 100*ratio(v.Load(), req)) }
	t.Logf("%d concurrent StopAndWait in %v: %d requests; throttled %s, 5xx %s, dropped connections %s",
		n, elapsed.Round(time.Millisecond), req, share(&wire.throttled), share(&wire.server), share(&wire.dropped))
	// A soak whose faults did not happen proves nothing.
	if wire.throttled.Load() == 0 || wire.server.Load() == 0 || wire.dropped.Load() == 0 {
		t.Errorf("faults did not bite: throttled %d, 5xx %d, dropped %d", wire.throttled.Load(), wire.server.Load(), wire.dropped.Load())
	}
}
