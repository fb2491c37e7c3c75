package pipelinestop

import "fmt"

// This file holds the Consumer's per-token state machine: what the Consumer
// does with the messages of one callback token, as a pure type (no I/O, no
// goroutines, no clock). A Run feeds each token's tokenState the events
// below and carries out the effects it returns, all under the Run's lock,
// so that a token whose work has ended is forgotten in the same step: a
// delivery can never join work that has already ended.
//
// Phases (a token in phaseIdle is not tracked at all):
//
//	idle          nothing of the token is in hand
//	execQueued    an Executing message waits for a handler slot
//	executing     Execute runs
//	answering     the step is being answered with Execute's result
//	answerStop    answering, and a Stopping message arrived meanwhile
//	stopQueued    a Stopping message waits for a handler slot
//	stopWaiting   a Stopping message arrived while Execute ran: Execute's
//	              context is canceled, and its slot runs Cleanup next
//	cleaning      Cleanup runs and the stop answers the step
//
// Every message of the token that arrives while it is tracked is held (its
// visibility extended) and shares the token's fate: when the token returns
// to idle, every held message gets one disposition: delete, visible later
// (after the retry-later delay, which grows with its receive count) or
// visible now. Remembered tokens (answered, or handed off with ErrPending)
// decide what a delivery to an idle token does.
//
// The table: phase × event → next phase, disposition of the held messages,
// and the work the handler slot does next ("-" keeps the phase and holds the
// message; "invalid" cannot happen and is a bug).
//
//	event                       idle               execQueued         executing                answering          answerStop        stopQueued      stopWaiting         cleaning
//	Executing, not remembered   execQueued +queue  -                  -                        -                  -                 -               -                   -
//	Executing, remembered       idle, delete       -                  -                        -                  -                 -               -                   -
//	Stopping, not answered      stopQueued +urgent stopQueued +urgent stopWaiting, cancel Exec answerStop         -                 -               -                   -
//	Stopping, answered          idle, delete       (as above)         (as above)               (as above)         -                 -               -                   -
//	start (a slot is free)      invalid            executing: Execute invalid                  invalid            invalid           cleaning: Clean invalid             invalid
//	Execute: outputs or error   invalid            invalid            answering: Answer        invalid            invalid           invalid         cleaning: Clean     invalid
//	Execute: ErrPending         invalid            invalid            idle, delete, pending    invalid            invalid           invalid         cleaning: Clean     invalid
//	Execute: retry later        invalid            invalid            idle, later              invalid            invalid           invalid         cleaning: Clean     invalid
//	Execute: cut by shutdown    invalid            invalid            idle, now                invalid            invalid           invalid         idle, now           invalid
//	answer: accepted or gone    invalid            invalid            invalid                  idle, delete, answ idle, delete, answ invalid        invalid             idle, delete, answ
//	answer: failed              invalid            invalid            invalid                  idle, later        cleaning: Clean   invalid         invalid             idle, later
//	answer: cut by shutdown     invalid            invalid            invalid                  idle, now          idle, now         invalid         invalid             idle, now
//	shutdown                    -                  idle, now          -                        -                  -                 idle, now       -                   -
//
// "Remembered" is the Run's memory of recent tokens, consulted only for an
// idle token: an answered token's late messages are deleted without running
// anything; a token handed off with ErrPending has its late Executing
// duplicates deleted, but a Stopping message still runs Cleanup and
// answers, so a stop is never blocked. "answ" remembers the token as
// answered, "pending" as handed off. "+queue" and "+urgent" queue the token
// for a handler slot, a stop ahead of every Execute. Once a Stopping
// message is held, the step is answered by the stop (or by an Execute answer
// already under way), never both ways.

// tokenPhase is where a token is in its lifecycle; see the table above.
type tokenPhase int

const (
	phaseIdle tokenPhase = iota
	phaseExecQueued
	phaseExecuting
	phaseAnswering
	phaseAnswerStop
	phaseStopQueued
	phaseStopWaiting
	phaseCleaning
)

var phaseNames = [...]string{"idle", "execQueued", "executing", "answering", "answerStop", "stopQueued", "stopWaiting", "cleaning"}

func (p tokenPhase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("tokenPhase(%d)", int(p))
}

// tokenEvent is what happens to a token; see the table above.
type tokenEvent int

const (
	evExecuting      tokenEvent = iota + 1 // an Executing message arrived
	evStopping                             // a Stopping message arrived
	evStart                                // a handler slot took the token
	evExecOutcome                          // Execute returned outputs or an error: answer it
	evExecPending                          // Execute returned ErrPending
	evExecRetryLater                       // Execute returned ErrRetryLater
	evExecCut                              // Execute ended because the drain period ended
	evAnswerDone                           // the answer was accepted, or the step was answered already or is gone
	evAnswerFailed                         // the answer failed
	evAnswerCut                            // the answer was cut short by the end of the drain period
	evShutdown                             // Run is shutting down: queued work never starts
)

var eventNamesToken = [...]string{"", "Executing", "Stopping", "start", "Execute outcome", "Execute pending",
	"Execute retry later", "Execute cut", "answer done", "answer failed", "answer cut", "shutdown"}

func (e tokenEvent) String() string {
	if int(e) < len(eventNamesToken) && e > 0 {
		return eventNamesToken[e]
	}
	return fmt.Sprintf("tokenEvent(%d)", int(e))
}

// tokenMemory is what a Run remembers of a token that is no longer in
// hand.
type tokenMemory int

const (
	memNone     tokenMemory = iota // not remembered
	memAnswered                    // the step was answered (or is gone)
	memPending                     // Execute handed the step off (ErrPending)
)

// disposition is what becomes of a message the Consumer holds: one of
// three, decided once for every message of a token.
type disposition int

const (
	dispKeep         disposition = iota // still held: nothing to do yet
	dispDelete                          // delete it: the step is done with
	dispVisibleLater                    // make it visible after the retry-later delay
	dispVisibleNow                      // make it visible at once (shutdown)
)

var dispositionNames = [...]string{"keep", "delete", "visible later", "visible now"}

func (d disposition) String() string {
	if int(d) < len(dispositionNames) {
		return dispositionNames[d]
	}
	return fmt.Sprintf("disposition(%d)", int(d))
}

// tokenWork is what a handler slot does next for a token.
type tokenWork int

const (
	workNone    tokenWork = iota // nothing: the slot is free
	workExecute                  // run Handler.Execute on the Executing message
	workAnswer                   // answer the step with Execute's result
	workCleanup                  // run Handler.Cleanup on the Stopping message and answer
)

// queueKind says whether, and where, a token joins the queue of work
// waiting for a handler slot.
type queueKind int

const (
	queueNone   queueKind = iota
	queueNormal           // behind the work already waiting
	queueUrgent           // ahead of every Execute: the execution waits for the stop's answer
)

// tokenEffect is what the Run must do after an event.
type tokenEffect struct {
	// dispose applies to every message in disposed; dispKeep when none.
	dispose  disposition
	disposed []string // keys of the messages that leave the token
	// remember is set when the token became idle and is to be remembered.
	remember tokenMemory
	// work is what the slot that reported the event does next.
	work tokenWork
	// enqueue queues the token for a handler slot.
	enqueue queueKind
	// cancelExecute cancels the running Execute: a stop takes over.
	cancelExecute bool
}

// tokenState is one token's state in a Run. The zero value is idle.
type tokenState struct {
	phase tokenPhase
	// held are the keys (see queueBook) of the messages in hand.
	held []string
	// exec and stop are the token's Executing and Stopping messages, the
	// first of each that arrived.
	exec, stop *CallbackMessage
}

// errInvalidTransition reports an event that the table says cannot happen
// in the token's phase: a bug in the Run.
type errInvalidTransition struct {
	phase tokenPhase
	event tokenEvent
}

func (e errInvalidTransition) Error() string {
	return fmt.Sprintf("pipelinestop: consumer bug: event %q in phase %q", e.event, e.phase)
}

// deliver is the event of a message with key arriving. mem is what the
// Run remembers of the token; it matters only when the token is idle.
func (s *tokenState) deliver(key string, msg *CallbackMessage, mem tokenMemory) tokenEffect {
	s.held = append(s.held, key)
	if msg.IsStopping() {
		if s.stop == nil {
			s.stop = msg
		}
		return s.onStopping(mem)
	}
	if s.exec == nil {
		s.exec = msg
	}
	if s.phase != phaseIdle {
		return tokenEffect{}
	}
	if mem != memNone {
		return s.end(dispDelete, memNone)
	}
	s.phase = phaseExecQueued
	return tokenEffect{enqueue: queueNormal}
}

func (s *tokenState) onStopping(mem tokenMemory) tokenEffect {
	switch s.phase {
	case phaseIdle:
		if mem == memAnswered {
			return s.end(dispDelete, memNone)
		}
		s.phase = phaseStopQueued
		return tokenEffect{enqueue: queueUrgent}
	case phaseExecQueued:
		// Never start the work of a step that is being stopped.
		s.phase = phaseStopQueued
		return tokenEffect{enqueue: queueUrgent}
	case phaseExecuting:
		s.phase = phaseStopWaiting
		return tokenEffect{cancelExecute: true}
	case phaseAnswering:
		s.phase = phaseAnswerStop
	}
	return tokenEffect{}
}

// on applies an event other than a delivery (see deliver).
func (s *tokenState) on(ev tokenEvent) (tokenEffect, error) {
	bad := func() (tokenEffect, error) { return tokenEffect{}, errInvalidTransition{s.phase, ev} }
	switch ev {
	case evStart:
		switch s.phase {
		case phaseExecQueued:
			s.phase = phaseExecuting
			return tokenEffect{work: workExecute}, nil
		case phaseStopQueued:
			s.phase = phaseCleaning
			return tokenEffect{work: workCleanup}, nil
		}
	case evExecOutcome, evExecPending, evExecRetryLater, evExecCut:
		switch s.phase {
		case phaseStopWaiting:
			if ev == evExecCut {
				return s.end(dispVisibleNow, memNone), nil
			}
			// A stop took over: Execute's result does not count.
			s.phase = phaseCleaning
			return tokenEffect{work: workCleanup}, nil
		case phaseExecuting:
			switch ev {
			case evExecOutcome:
				s.phase = phaseAnswering
				return tokenEffect{work: workAnswer}, nil
			case evExecPending:
				return s.end(dispDelete, memPending), nil
			case evExecRetryLater:
				return s.end(dispVisibleLater, memNone), nil
			default:
				return s.end(dispVisibleNow, memNone), nil
			}
		}
	case evAnswerDone, evAnswerFailed, evAnswerCut:
		switch s.phase {
		case phaseAnswering, phaseAnswerStop, phaseCleaning:
			switch {
			case ev == evAnswerDone:
				return s.end(dispDelete, memAnswered), nil
			case ev == evAnswerCut:
				return s.end(dispVisibleNow, memNone), nil
			case s.phase == phaseAnswerStop:
				// Execute's answer failed, and the step is being
				// stopped: the stop answers it now.
				s.phase = phaseCleaning
				return tokenEffect{work: workCleanup}, nil
			default:
				return s.end(dispVisibleLater, memNone), nil
			}
		}
	case evShutdown:
		switch s.phase {
		case phaseExecQueued, phaseStopQueued:
			return s.end(dispVisibleNow, memNone), nil
		}
		return tokenEffect{}, nil
	}
	return bad()
}

// end returns the token to idle: every held message gets d.
func (s *tokenState) end(d disposition, mem tokenMemory) tokenEffect {
	eff := tokenEffect{dispose: d, disposed: s.held, remember: mem}
	*s = tokenState{}
	return eff
}
