package pipelinestop_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
)

// batchEnv is a BatchHandler over an answerLog, with counted handlers.
type batchEnv struct {
	answers          *answerLog
	executed, cleans atomic.Int64
	b                *pipelinestop.BatchHandler
}

func newBatchEnv(t *testing.T, execute func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error), optFns ...func(*pipelinestop.ConsumerOptions)) *batchEnv {
	t.Helper()
	env := &batchEnv{answers: newAnswerLog()}
	h := pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			env.executed.Add(1)
			return execute(ctx, m)
		},
		Cleanup: func(context.Context, *pipelinestop.CallbackMessage) error {
			env.cleans.Add(1)
			return nil
		},
	}
	var err error
	env.b, err = pipelinestop.NewBatchHandler(pipelinestop.NewAcknowledger(env.answers), h, optFns...)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func dispositions(outs []pipelinestop.MessageOutcome) []string {
	var s []string
	for _, o := range outs {
		s = append(s, o.ID+":"+o.Disposition.String())
	}
	return s
}

func TestBatchHandlerRules(t *testing.T) {
	ok := func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
		return map[string]string{"done": "yes"}, nil
	}
	t0, t1 := accountToken(0), accountToken(1)
	tests := []struct {
		name         string
		execute      func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error)
		msgs         []pipelinestop.BatchMessage
		want         []string
		answers      map[string][]string
		executed     int64
		deleteMalfmd bool
	}{
		{name: "Executing is answered", execute: ok,
			msgs:    []pipelinestop.BatchMessage{{ID: "a", Body: cbMsgBody(t0, "Executing")}},
			want:    []string{"a:delete"},
			answers: map[string][]string{t0: {"success"}}, executed: 1},
		{name: "both messages of a token: one answer, by the stop, Execute not run", execute: ok,
			msgs: []pipelinestop.BatchMessage{{ID: "a", Body: cbMsgBody(t0, "Executing")}, {ID: "b", Body: cbMsgBody(t0, "Stopping")}},
			want: []string{"a:delete", "b:delete"}, answers: map[string][]string{t0: {"success"}}, executed: 0},
		{name: "duplicates answered once", execute: ok,
			msgs: []pipelinestop.BatchMessage{{ID: "a", Body: cbMsgBody(t0, "Executing")}, {ID: "b", Body: cbMsgBody(t0, "Executing")},
				{ID: "a", Body: cbMsgBody(t0, "Executing")}},
			want: []string{"a:delete", "b:delete", "a:delete"}, answers: map[string][]string{t0: {"success"}}, executed: 1},
		{name: "ErrPending: done, not answered",
			execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
				return nil, pipelinestop.ErrPending
			},
			msgs: []pipelinestop.BatchMessage{{ID: "a", Body: cbMsgBody(t0, "Executing")}},
			want: []string{"a:delete"}, answers: map[string][]string{}, executed: 1},
		{name: "RetryLater: that record alone",
			execute: func(_ context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
				if string(m.Token) == t0 {
					return nil, pipelinestop.RetryLater(errors.New("busy"))
				}
				return nil, nil
			},
			msgs: []pipelinestop.BatchMessage{{ID: "a", Body: cbMsgBody(t0, "Executing"), ReceiveCount: 2}, {ID: "b", Body: cbMsgBody(t1, "Executing")}},
			want: []string{"a:retry later", "b:delete"}, answers: map[string][]string{t1: {"success"}}, executed: 2},
		{name: "malformed: retry later for the redrive policy", execute: ok,
			msgs: []pipelinestop.BatchMessage{{ID: "a", Body: "{not json"}},
			want: []string{"a:retry later"}, answers: map[string][]string{}},
		{name: "malformed deleted by option", execute: ok, deleteMalfmd: true,
			msgs: []pipelinestop.BatchMessage{{ID: "a", Body: "{not json"}},
			want: []string{"a:delete"}, answers: map[string][]string{}},
		{name: "panic: the step fails",
			execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) { panic("boom") },
			msgs:    []pipelinestop.BatchMessage{{ID: "a", Body: cbMsgBody(t0, "Executing")}},
			want:    []string{"a:delete"}, answers: map[string][]string{t0: {"failure"}}, executed: 1},
		{name: "no ID", execute: ok,
			msgs: []pipelinestop.BatchMessage{{Body: cbMsgBody(t0, "Executing")}},
			want: []string{":retry now"}, answers: map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newBatchEnv(t, tt.execute, func(o *pipelinestop.ConsumerOptions) {
				o.DeleteMalformed = tt.deleteMalfmd
				o.RetryLaterMinDelay = 10 * time.Second
			})
			outs := env.b.HandleBatch(context.Background(), tt.msgs)
			if got := dispositions(outs); !slices.Equal(got, tt.want) {
				t.Fatalf("outcomes %v, want %v", got, tt.want)
			}
			for _, o := range outs {
				if (o.Disposition == pipelinestop.DispositionDelete) != (o.Err == nil) {
					t.Errorf("outcome %+v: an error must come with every other disposition, and only then", o)
				}
				if o.Disposition == pipelinestop.DispositionRetryLater && o.Delay < 10*time.Second {
					t.Errorf("outcome %+v: delay under RetryLaterMinDelay", o)
				}
			}
			for _, tok := range []string{t0, t1} {
				if got := env.answers.get(tok); !slices.Equal(got, tt.answers[tok]) {
					t.Errorf("answers for %s: %v, want %v", tok, got, tt.answers[tok])
				}
			}
			if n := env.executed.Load(); n != tt.executed {
				t.Errorf("Execute ran %d times, want %d", n, tt.executed)
			}
		})
	}
}

// TestBatchHandlerRemembersAcrossBatches: a late duplicate in a later batch
// (a warm Lambda container) is deleted without running the handler.
func TestBatchHandlerRemembersAcrossBatches(t *testing.T) {
	env := newBatchEnv(t, func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) { return nil, nil })
	tok := accountToken(7)
	env.b.HandleBatch(context.Background(), []pipelinestop.BatchMessage{{ID: "a", Body: cbMsgBody(tok, "Executing")}})
	outs := env.b.HandleBatch(context.Background(), []pipelinestop.BatchMessage{
		{ID: "b", Body: cbMsgBody(tok, "Executing")}, {ID: "c", Body: cbMsgBody(tok, "Stopping")}})
	if got := dispositions(outs); !slices.Equal(got, []string{"b:delete", "c:delete"}) {
		t.Fatalf("outcomes %v", got)
	}
	if env.executed.Load() != 1 || env.cleans.Load() != 0 || len(env.answers.get(tok)) != 1 {
		t.Fatalf("Execute %d, Cleanup %d, answers %v: want the late duplicates deleted unhandled",
			env.executed.Load(), env.cleans.Load(), env.answers.get(tok))
	}
}

// TestBatchHandlerDeadline: DeadlineMargin before the context's deadline
// the running handler is canceled (cause ErrDeadline), work not started
// never starts, and both come back as DispositionRetryNow, unanswered.
func TestBatchHandlerDeadline(t *testing.T) {
	clock := fakeclock.NewManual(time.Unix(1000, 0))
	started := make(chan struct{})
	var once sync.Once
	var cause atomic.Value
	env := newBatchEnv(t, func(ctx context.Context, _ *pipelinestop.CallbackMessage) (map[string]string, error) {
		once.Do(func() { close(started) })
		<-ctx.Done()
		cause.Store(context.Cause(ctx))
		return nil, ctx.Err()
	}, func(o *pipelinestop.ConsumerOptions) {
		o.Concurrency = 1
		o.Clock = clock
		o.DeadlineMargin = 2 * time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	done := make(chan []pipelinestop.MessageOutcome, 1)
	go func() {
		done <- env.b.HandleBatch(ctx, []pipelinestop.BatchMessage{
			{ID: "a", Body: cbMsgBody(accountToken(0), "Executing")}, {ID: "b", Body: cbMsgBody(accountToken(1), "Executing")}})
	}()
	<-started
	if !clock.WaitForWaiter(5 * time.Second) {
		t.Fatal("HandleBatch set no timer for its deadline")
	}
	clock.Advance(time.Hour)
	var outs []pipelinestop.MessageOutcome
	select {
	case outs = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("HandleBatch did not return after its deadline")
	}
	if got := dispositions(outs); !slices.Equal(got, []string{"a:retry now", "b:retry now"}) {
		t.Fatalf("outcomes %v", got)
	}
	if c, _ := cause.Load().(error); !errors.Is(c, pipelinestop.ErrDeadline) {
		t.Errorf("Execute's context cause %v, want ErrDeadline", c)
	}
	if env.executed.Load() != 1 {
		t.Errorf("Execute ran %d times; the second message must not start after the deadline", env.executed.Load())
	}
	for _, tok := range []string{accountToken(0), accountToken(1)} {
		if a := env.answers.get(tok); len(a) > 0 {
			t.Errorf("answered %v after the deadline", a)
		}
	}
}

func TestNewBatchHandlerValidates(t *testing.T) {
	if _, err := pipelinestop.NewBatchHandler(nil, pipelinestop.Handler{Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) { return nil, nil }}); !errors.Is(err, pipelinestop.ErrInvalidConsumer) {
		t.Errorf("nil Acknowledger: %v", err)
	}
	if _, err := pipelinestop.NewBatchHandler(pipelinestop.NewAcknowledger(newAnswerLog()), pipelinestop.Handler{}); !errors.Is(err, pipelinestop.ErrInvalidConsumer) {
		t.Errorf("nil Execute: %v", err)
	}
	var zero pipelinestop.BatchHandler
	outs := zero.HandleBatch(context.Background(), []pipelinestop.BatchMessage{{ID: "a", Body: "{}"}})
	if len(outs) != 1 || outs[0].Disposition != pipelinestop.DispositionRetryNow || !errors.Is(outs[0].Err, pipelinestop.ErrInvalidConsumer) {
		t.Errorf("zero BatchHandler: %+v", outs)
	}
}

// TestBatchHandlerShortDeadline: a deadline shorter than DeadlineMargin
// (a Lambda function with a 1-second timeout) still lets the batch work:
// the margin is at most half the time left. It cut everything at once
// before, and a Lambda function redelivered the same records for ever.
func TestBatchHandlerShortDeadline(t *testing.T) {
	env := newBatchEnv(t, func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) { return nil, nil })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	outs := env.b.HandleBatch(ctx, []pipelinestop.BatchMessage{{ID: "a", Body: cbMsgBody(accountToken(0), "Executing")}})
	if got := dispositions(outs); !slices.Equal(got, []string{"a:delete"}) {
		t.Fatalf("outcomes %v with a 1 s deadline and the default 2 s margin", got)
	}
}
