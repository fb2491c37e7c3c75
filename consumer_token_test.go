package pipelinestop

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// tokenTable is the table at the head of consumer_token.go, as data: for
// each event (rows) the outcome in each phase (columns, in tokenPhase
// order). An outcome is "-" (phase unchanged, message held), "invalid", or
// the next phase followed by effects: delete/later/now (disposition of
// every held message), answ/pending (memory), +queue/+urgent, cancel, and
// the next work (execute, answer, cleanup).
var tokenTable = []struct {
	event    string
	outcomes [8]string
}{
	{"Executing/none", [8]string{"execQueued +queue", "-", "-", "-", "-", "-", "-", "-"}},
	{"Executing/answered", [8]string{"idle delete", "-", "-", "-", "-", "-", "-", "-"}},
	{"Executing/pending", [8]string{"idle delete", "-", "-", "-", "-", "-", "-", "-"}},
	{"Stopping/none", [8]string{"stopQueued +urgent", "stopQueued +urgent", "stopWaiting cancel", "answerStop", "-", "-", "-", "-"}},
	{"Stopping/answered", [8]string{"idle delete", "stopQueued +urgent", "stopWaiting cancel", "answerStop", "-", "-", "-", "-"}},
	{"Stopping/pending", [8]string{"stopQueued +urgent", "stopQueued +urgent", "stopWaiting cancel", "answerStop", "-", "-", "-", "-"}},
	{"start", [8]string{"invalid", "executing execute", "invalid", "invalid", "invalid", "cleaning cleanup", "invalid", "invalid"}},
	{"Execute outcome", [8]string{"invalid", "invalid", "answering answer", "invalid", "invalid", "invalid", "cleaning cleanup", "invalid"}},
	{"Execute pending", [8]string{"invalid", "invalid", "idle delete pending", "invalid", "invalid", "invalid", "cleaning cleanup", "invalid"}},
	{"Execute retry later", [8]string{"invalid", "invalid", "idle later", "invalid", "invalid", "invalid", "cleaning cleanup", "invalid"}},
	{"Execute cut", [8]string{"invalid", "invalid", "idle now", "invalid", "invalid", "invalid", "idle now", "invalid"}},
	{"answer done", [8]string{"invalid", "invalid", "invalid", "idle delete answ", "idle delete answ", "invalid", "invalid", "idle delete answ"}},
	{"answer failed", [8]string{"invalid", "invalid", "invalid", "idle later", "cleaning cleanup", "invalid", "invalid", "idle later"}},
	{"answer cut", [8]string{"invalid", "invalid", "invalid", "idle now", "idle now", "invalid", "invalid", "idle now"}},
	{"shutdown", [8]string{"-", "idle now", "-", "-", "-", "idle now", "-", "-"}},
}

var testExecMsg = &CallbackMessage{Token: "AAAAAAAAAA", Status: CallbackStatusExecuting}
var testStopMsg = &CallbackMessage{Token: "AAAAAAAAAA", Status: CallbackStatusStopping}

// stateIn builds a token state in phase p holding the messages a real Run
// would have given it.
func stateIn(p tokenPhase) tokenState {
	s := tokenState{phase: p}
	switch p {
	case phaseIdle:
	case phaseExecQueued, phaseExecuting, phaseAnswering:
		s.held, s.exec = []string{"e1"}, testExecMsg
	case phaseStopQueued, phaseCleaning:
		s.held, s.stop = []string{"s1"}, testStopMsg
	default: // answerStop, stopWaiting
		s.held, s.exec, s.stop = []string{"e1", "s1"}, testExecMsg, testStopMsg
	}
	return s
}

// describe renders a transition in the table's notation.
func describe(before tokenState, after tokenState, eff tokenEffect) string {
	if after.phase == before.phase && eff.dispose == dispKeep && eff.remember == memNone && eff.enqueue == queueNone && !eff.cancelExecute && eff.work == workNone {
		return "-"
	}
	parts := []string{after.phase.String()}
	switch eff.dispose {
	case dispDelete:
		parts = append(parts, "delete")
	case dispVisibleLater:
		parts = append(parts, "later")
	case dispVisibleNow:
		parts = append(parts, "now")
	}
	switch eff.remember {
	case memAnswered:
		parts = append(parts, "answ")
	case memPending:
		parts = append(parts, "pending")
	}
	switch eff.enqueue {
	case queueNormal:
		parts = append(parts, "+queue")
	case queueUrgent:
		parts = append(parts, "+urgent")
	}
	if eff.cancelExecute {
		parts = append(parts, "cancel")
	}
	switch eff.work {
	case workExecute:
		parts = append(parts, "execute")
	case workAnswer:
		parts = append(parts, "answer")
	case workCleanup:
		parts = append(parts, "cleanup")
	}
	return strings.Join(parts, " ")
}

var testEvents = map[string]tokenEvent{
	"start": evStart, "Execute outcome": evExecOutcome, "Execute pending": evExecPending,
	"Execute retry later": evExecRetryLater, "Execute cut": evExecCut, "answer done": evAnswerDone,
	"answer failed": evAnswerFailed, "answer cut": evAnswerCut, "shutdown": evShutdown,
}

// TestTokenStateTable checks every phase × event against the table, and
// the invariants of every transition: an idle token holds nothing and is
// forgotten; a token that ends disposes of every message it held (the new
// one too), all alike; one that goes on disposes of none.
func TestTokenStateTable(t *testing.T) {
	if len(tokenTable) != 15 {
		t.Fatalf("the table has %d rows; every event and memory must have one", len(tokenTable))
	}
	for _, row := range tokenTable {
		for p, want := range row.outcomes {
			phase := tokenPhase(p)
			t.Run(fmt.Sprintf("%s/%s", row.event, phase), func(t *testing.T) {
				s := stateIn(phase)
				before := s
				heldBefore := slices.Clone(s.held)
				var eff tokenEffect
				var err error
				delivered := ""
				if kind, mem, ok := strings.Cut(row.event, "/"); ok {
					m := map[string]tokenMemory{"none": memNone, "answered": memAnswered, "pending": memPending}[mem]
					msg := testExecMsg
					if kind == "Stopping" {
						msg = testStopMsg
					}
					delivered = "new"
					eff = s.deliver(delivered, msg, m)
				} else {
					ev, known := testEvents[row.event]
					if !known {
						t.Fatalf("unknown event %q", row.event)
					}
					eff, err = s.on(ev)
				}
				if want == "invalid" {
					if err == nil {
						t.Fatalf("want an invalid transition, got %q", describe(before, s, eff))
					}
					if !slices.Equal(s.held, heldBefore) || s.phase != phase {
						t.Fatalf("an invalid event changed the state to %+v", s)
					}
					return
				}
				if err != nil {
					t.Fatalf("want %q, got error %v", want, err)
				}
				if got := describe(before, s, eff); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
				allHeld := heldBefore
				if delivered != "" {
					allHeld = append(allHeld, delivered)
				}
				if s.phase == phaseIdle {
					if !slices.Equal(eff.disposed, allHeld) && len(allHeld) > 0 {
						t.Fatalf("ended holding %v but disposed of %v", allHeld, eff.disposed)
					}
					if len(allHeld) > 0 && eff.dispose == dispKeep {
						t.Fatal("ended without a disposition")
					}
					if s.held != nil || s.exec != nil || s.stop != nil {
						t.Fatalf("an idle token keeps state: %+v", s)
					}
					if eff.work != workNone || eff.enqueue != queueNone {
						t.Fatal("an idle token has work")
					}
				} else {
					if eff.dispose != dispKeep || len(eff.disposed) > 0 {
						t.Fatalf("a token that goes on disposed of %v", eff.disposed)
					}
					if !slices.Equal(s.held, allHeld) {
						t.Fatalf("holds %v, want %v", s.held, allHeld)
					}
				}
				if (eff.remember != memNone) != (s.phase == phaseIdle && eff.dispose == dispDelete && delivered == "") {
					t.Fatalf("remembers %v on %q", eff.remember, want)
				}
			})
		}
	}
}

// TestTokenStateNeverBothWays walks every sequence of up to six events from
// idle and checks that once a Stopping message is held, no Execute answer
// is started, and that an Execute never starts for a token holding one.
func TestTokenStateNeverBothWays(t *testing.T) {
	type step struct {
		name string
		do   func(*tokenState) (tokenEffect, error)
	}
	var steps []step
	for _, mem := range []tokenMemory{memNone, memAnswered, memPending} {
		steps = append(steps,
			step{fmt.Sprintf("Executing/%d", mem), func(s *tokenState) (tokenEffect, error) { return s.deliver("k", testExecMsg, mem), nil }},
			step{fmt.Sprintf("Stopping/%d", mem), func(s *tokenState) (tokenEffect, error) { return s.deliver("k", testStopMsg, mem), nil }})
	}
	for name, ev := range testEvents {
		steps = append(steps, step{name, func(s *tokenState) (tokenEffect, error) { return s.on(ev) }})
	}
	var walk func(s tokenState, depth int, path []string)
	walks := 0
	walk = func(s tokenState, depth int, path []string) {
		walks++
		if depth == 0 {
			return
		}
		for _, st := range steps {
			next := s
			next.held = slices.Clone(s.held)
			stopHeld := next.stop != nil
			eff, err := st.do(&next)
			if err != nil {
				continue
			}
			p := append(slices.Clone(path), st.name)
			if stopHeld && (eff.work == workExecute || eff.work == workAnswer) {
				t.Fatalf("after %v: work %v although a Stopping message is held", p, eff.work)
			}
			if next.phase == phaseIdle && len(next.held) > 0 {
				t.Fatalf("after %v: idle but holds %v", p, next.held)
			}
			walk(next, depth-1, p)
		}
	}
	walk(tokenState{}, 6, nil)
	if walks < 1000 {
		t.Fatalf("only %d states walked", walks)
	}
}
