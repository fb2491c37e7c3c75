package emulator

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// AllOperations is the RateLimits key that applies to every operation
// without its own entry (each operation still gets its own bucket).
const AllOperations = "*"

// Faults are injected failures. The zero value injects nothing. Random
// choices come from one generator seeded with Config.Seed, so a sequential
// client sees the same faults on every run; concurrent clients may see them
// in a different order.
type Faults struct {
	// RateLimits maps an operation name (for example
	// "StopPipelineExecution", or AllOperations) to a token bucket. A
	// request that finds the bucket empty is answered ThrottlingException
	// (HTTP 400).
	RateLimits map[string]RateLimit

	// ErrorRate is the fraction (0 to 1) of requests answered with a server
	// error: half HTTP 500 InternalFailure, half HTTP 503 ServiceUnavailable.
	// The operation does not run.
	ErrorRate float64

	// Latency is added before every answer, plus a uniform random extra of
	// up to LatencyJitter: of SageMaker operations, and of SQS operations
	// when IncludeSQS is set and SQSLatency and SQSLatencyJitter are 0.
	Latency       time.Duration
	LatencyJitter time.Duration

	// SQSLatency is added before every answer of an SQS (and EventBridge)
	// operation, plus a uniform random extra of up to SQSLatencyJitter,
	// whether or not IncludeSQS is set; when either is positive it takes
	// the place of Latency and LatencyJitter for those operations. With
	// both, SageMaker and SQS calls can take different times (for example
	// 60 ms per SageMaker call and 20 ms per SQS call).
	SQSLatency       time.Duration
	SQSLatencyJitter time.Duration

	// DropRate is the fraction of requests whose connection is closed before
	// the operation runs (the request is lost).
	DropRate float64

	// DropResponseRate is the fraction of requests whose connection is
	// closed after the operation ran (the answer is lost, the effect is
	// not): what idempotency tokens are for.
	DropResponseRate float64

	// IncludeSQS applies ErrorRate, latency, drops and the AllOperations
	// rate limit to SQS operations too. By default they apply to SageMaker
	// operations only; a RateLimits entry naming an SQS operation always
	// applies.
	IncludeSQS bool

	// Operations, when not empty, limits ErrorRate, DropRate and
	// DropResponseRate to the operations it names (an SQS operation named
	// here gets them with or without IncludeSQS), for example
	// []string{"ReceiveMessage"} to lose only receives' answers. Latency
	// and rate limits are not affected.
	Operations []string
}

// RateLimit is a token bucket: PerSecond tokens are added each second up to
// Burst (at least 1).
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// SetFaults replaces the injected faults in every Region. Rate limit
// buckets start full; each Region has its own (throttling is per account
// and Region).
func (e *Emulator) SetFaults(f Faults) { e.regions.each(func(c *Emulator) { c.faults.set(f) }) }

// DroppedResponses returns how many answers of op the faults dropped after
// the operation ran (DropResponseRate), since the emulator started.
func (e *Emulator) DroppedResponses(op string) int {
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	return e.faults.droppedResponses[op]
}

// CurrentFaults returns the faults in force.
func (e *Emulator) CurrentFaults() Faults {
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	return e.faults.f
}

type faultInjector struct {
	mu      sync.Mutex
	f       Faults
	rng     *rand.Rand
	buckets map[string]*bucket
	// droppedResponses counts answers dropped by DropResponseRate, by
	// operation.
	droppedResponses map[string]int
}

type bucket struct {
	tokens float64
	last   time.Time
}

// fault is the decision for one request.
type fault struct {
	latency      time.Duration
	err          *apiError
	drop         bool
	dropResponse bool
}

func newFaultInjector(f Faults, seed int64) *faultInjector {
	fi := &faultInjector{rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)), droppedResponses: map[string]int{}}
	fi.set(f)
	return fi
}

func (fi *faultInjector) set(f Faults) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	fi.f = f
	fi.buckets = map[string]*bucket{}
}

func (fi *faultInjector) decide(op string, isSQS bool) fault {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	var out fault
	if fi.throttled(op, isSQS) {
		out.err = errorf(http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return out
	}
	f := fi.f
	base, jitter := f.Latency, f.LatencyJitter
	if isSQS && (f.SQSLatency > 0 || f.SQSLatencyJitter > 0) {
		base, jitter = f.SQSLatency, f.SQSLatencyJitter
	} else if isSQS && !f.IncludeSQS {
		base, jitter = 0, 0
	}
	out.latency = max(base, 0)
	if jitter > 0 {
		out.latency += time.Duration(fi.rng.Int64N(int64(jitter) + 1))
	}
	if len(f.Operations) > 0 {
		if !slices.Contains(f.Operations, op) {
			return out
		}
	} else if isSQS && !f.IncludeSQS {
		return out
	}
	switch {
	case fi.hit(f.DropRate):
		out.drop = true
	case fi.hit(f.ErrorRate):
		if fi.rng.IntN(2) == 0 {
			out.err = errorf(http.StatusInternalServerError, "InternalFailure", "We encountered an internal error. Please try again.")
		} else {
			out.err = errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "Service is unavailable. Please try again.")
		}
		out.err.server = true
	case fi.hit(f.DropResponseRate):
		out.dropResponse = true
		fi.droppedResponses[op]++
	}
	return out
}

func (fi *faultInjector) hit(rate float64) bool {
	return rate > 0 && fi.rng.Float64() < rate
}

// throttled takes a token from op's bucket and reports whether none was
// left. Callers hold fi.mu.
func (fi *faultInjector) throttled(op string, isSQS bool) bool {
	rl, ok := fi.f.RateLimits[op]
	if !ok {
		if isSQS && !fi.f.IncludeSQS {
			return false
		}
		if rl, ok = fi.f.RateLimits[AllOperations]; !ok {
			return false
		}
	}
	burst := float64(max(rl.Burst, 1))
	now := time.Now()
	b, ok := fi.buckets[op]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		fi.buckets[op] = b
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rl.PerSecond)
	b.last = now
	if b.tokens < 1 {
		return true
	}
	b.tokens--
	return false
}
