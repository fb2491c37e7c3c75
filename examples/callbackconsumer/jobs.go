package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pipelinestop/pipelinestop"
)

// errJobCanceled is the result of a job that was canceled while someone
// waited for it.
var errJobCanceled = errors.New("the job was canceled")

// jobKey names a callback step: an execution can run several callback
// steps at once, so the execution ARN alone is not enough.
type jobKey struct {
	executionARN string
	token        pipelinestop.CallbackToken
}

// job is one unit of work in the jobs registry.
type job struct {
	id       string
	input    string
	finishAt time.Time
	canceled chan struct{} // closed by cancel
}

// jobs stands for the system that does a callback step's work: a batch
// service, a cluster, a workflow engine. Execute submits a job to it and
// waits for the result; Cleanup cancels it. Replace it with the client of
// your own system.
//
// Jobs are keyed by pipeline execution ARN and callback step, and
// submitting the same step twice returns the job already running: SQS
// delivers at least once, and a message delivered again after a shutdown
// (or to another replica, in a real shared system) finds the job that the
// first delivery started, so the work is not done twice. A job runs on its
// own, whether or not anyone waits for it, until it finishes or is
// canceled; it needs no goroutine.
type jobs struct {
	mu      sync.Mutex
	running map[jobKey]*job
	nextID  int
	// Counts, for the logs and the tests.
	submitted, resumed, finished, canceled int
}

// newJobs returns an empty registry.
func newJobs() *jobs { return &jobs{running: map[jobKey]*job{}} }

// submit starts a job for the step that runs for d, or returns the job
// already running for it (resumed is then true).
func (r *jobs) submit(key jobKey, input string, d time.Duration) (j *job, resumed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j := r.running[key]; j != nil {
		r.resumed++
		return j, true
	}
	r.nextID++
	r.submitted++
	j = &job{id: fmt.Sprintf("job-%04d", r.nextID), input: input, finishAt: time.Now().Add(d), canceled: make(chan struct{})}
	r.running[key] = j
	return j, false
}

// wait waits until the job finishes and returns its result, or returns
// errJobCanceled when it is canceled, or ctx's error when ctx ends first
// (the job goes on).
func (r *jobs) wait(ctx context.Context, key jobKey, j *job) (string, error) {
	t := time.NewTimer(time.Until(j.finishAt))
	defer t.Stop()
	select {
	case <-t.C:
	case <-j.canceled:
		return "", errJobCanceled
	case <-ctx.Done():
		return "", ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-j.canceled:
		// Canceled at the very moment it finished: canceled wins.
		return "", errJobCanceled
	default:
	}
	if r.running[key] == j {
		delete(r.running, key)
		r.finished++
	}
	return "processed " + j.input, nil
}

// cancel cancels the step's job and returns it, or nil when no job runs
// for the step (it finished, never started, or ran elsewhere).
func (r *jobs) cancel(key jobKey) *job {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.running[key]
	if j == nil {
		return nil
	}
	delete(r.running, key)
	close(j.canceled)
	r.canceled++
	return j
}

// stats returns the number of running jobs and the counts.
func (r *jobs) stats() (running, submitted, resumed, finished, canceled int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running), r.submitted, r.resumed, r.finished, r.canceled
}
