package pipelinestoptest_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/pipelinestop/pipelinestop/pipelinestoptest"
)

func TestInvalidConfig(t *testing.T) {
	for _, f := range []pipelinestoptest.Faults{
		{ErrorRate: math.NaN()},
		{DropRate: 1.5},
		{DropResponseRate: -0.1},
		{Latency: -time.Second},
		{SQSLatency: -time.Millisecond},
		{SQSLatencyJitter: -time.Millisecond},
		{RateLimits: map[string]pipelinestoptest.RateLimit{"StopPipelineExecutions": {PerSecond: 1}}},
		{RateLimits: map[string]pipelinestoptest.RateLimit{"ReceiveMessage": {PerSecond: math.Inf(1)}}},
		{RateLimits: map[string]pipelinestoptest.RateLimit{pipelinestoptest.AllOperations: {PerSecond: 1, Burst: -1}}},
	} {
		if _, err := pipelinestoptest.Start(pipelinestoptest.Config{Faults: f}); !errors.Is(err, pipelinestoptest.ErrInvalidConfig) {
			t.Errorf("Start with Faults %+v: %v; want ErrInvalidConfig", f, err)
		}
		srv := pipelinestoptest.New(t, pipelinestoptest.Config{})
		if err := srv.SetFaults(f); !errors.Is(err, pipelinestoptest.ErrInvalidConfig) {
			t.Errorf("SetFaults(%+v): %v; want ErrInvalidConfig", f, err)
		}
	}
	if _, err := pipelinestoptest.Start(pipelinestoptest.Config{AccountID: "12"}); err == nil {
		t.Error("Start with a 2-digit account: no error")
	}
	srv := pipelinestoptest.New(t, pipelinestoptest.Config{})
	if err := srv.SetFaults(pipelinestoptest.Faults{ErrorRate: 1, RateLimits: map[string]pipelinestoptest.RateLimit{"SendMessageBatch": {PerSecond: 2}}}); err != nil {
		t.Errorf("valid faults: %v", err)
	}
}
