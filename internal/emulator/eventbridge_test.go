package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// sageMakerPattern is the rule setup code commonly writes.
const sageMakerPattern = `{"source":["aws.sagemaker"],"detail-type":["SageMaker Model Building Pipeline Execution Status Change","SageMaker Model Building Pipeline Execution Step Status Change"]}`

func queueARN(e *Emulator, name string) string {
	return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", e.Region(), e.AccountID(), name)
}

// routeToQueue creates a queue and a rule with pattern sending to it,
// through the SDK, and returns the queue URL.
func routeToQueue(t *testing.T, e *Emulator, rule, queue, pattern string) string {
	t.Helper()
	ctx := testContext(t)
	url, err := e.CreateQueue(queue)
	if err != nil {
		t.Fatal(err)
	}
	eb := e.EventBridgeClient()
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventPattern: aws.String(pattern)}); err != nil {
		t.Fatalf("PutRule: %v", err)
	}
	out, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(queueARN(e, queue))}}})
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutTargets: %v %+v", err, out)
	}
	return url
}

func TestEventBridgeRulesAndTargets(t *testing.T) {
	e := StartTest(t, Config{})
	eb := e.EventBridgeClient()
	ctx := testContext(t)

	put, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("sm-status"), EventPattern: aws.String(sageMakerPattern),
		Description: aws.String("SageMaker pipeline events")})
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:events:us-east-1:123456789012:rule/sm-status"; aws.ToString(put.RuleArn) != want {
		t.Errorf("RuleArn %q; want %q", aws.ToString(put.RuleArn), want)
	}
	desc, err := eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("sm-status")})
	if err != nil {
		t.Fatal(err)
	}
	if desc.State != ebtypes.RuleStateEnabled || aws.ToString(desc.EventPattern) != sageMakerPattern ||
		aws.ToString(desc.EventBusName) != "default" || aws.ToString(desc.Arn) != aws.ToString(put.RuleArn) {
		t.Errorf("DescribeRule = %+v", desc)
	}
	// PutRule again replaces the rule (idempotent setup code calls it every time).
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("sm-status"), EventPattern: aws.String(sageMakerPattern),
		State: ebtypes.RuleStateDisabled}); err != nil {
		t.Fatal(err)
	}
	if desc, _ := eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("sm-status")}); desc.State != ebtypes.RuleStateDisabled || desc.Description != nil {
		t.Errorf("after a second PutRule: %+v", desc)
	}
	for _, name := range []string{"b-rule", "a-rule"} {
		if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name), EventPattern: aws.String(`{"source":["x"]}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	var token *string
	for range 10 {
		out, err := eb.ListRules(ctx, &eventbridge.ListRulesInput{Limit: aws.Int32(1), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Rules {
			names = append(names, aws.ToString(r.Name))
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	if want := []string{"a-rule", "b-rule", "sm-status"}; !slices.Equal(names, want) {
		t.Errorf("ListRules pages: %v; want %v", names, want)
	}
	if out, _ := eb.ListRules(ctx, &eventbridge.ListRulesInput{NamePrefix: aws.String("sm-")}); len(out.Rules) != 1 {
		t.Errorf("ListRules with NamePrefix: %+v", out.Rules)
	}

	arn := queueARN(e, "events")
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("sm-status"), Targets: []ebtypes.Target{
		{Id: aws.String("queue"), Arn: aws.String(arn)}, {Id: aws.String("other"), Arn: aws.String(arn), Input: aws.String(`{"k":1}`)}}}); err != nil {
		t.Fatal(err)
	}
	lt, err := eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("sm-status")})
	if err != nil {
		t.Fatal(err)
	}
	if len(lt.Targets) != 2 || aws.ToString(lt.Targets[0].Id) != "other" || aws.ToString(lt.Targets[0].Input) != `{"k":1}` || aws.ToString(lt.Targets[1].Arn) != arn {
		t.Errorf("ListTargetsByRule = %+v", lt.Targets)
	}
	var rnf *ebtypes.ResourceNotFoundException
	if _, err := eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("sm-status")}); err == nil {
		t.Error("DeleteRule of a rule with targets succeeded")
	} else {
		requireCode(t, err, "ValidationException", "has targets")
	}
	if out, err := eb.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: aws.String("sm-status"), Ids: []string{"queue", "other", "unknown"}}); err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("RemoveTargets: %v %+v", err, out)
	}
	if _, err := eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("sm-status")}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("sm-status")}); !errors.As(err, &rnf) {
		t.Errorf("DescribeRule after DeleteRule: %v; want ResourceNotFoundException", err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("nope"), Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(arn)}}}); !errors.As(err, &rnf) {
		t.Errorf("PutTargets on an unknown rule: %v; want ResourceNotFoundException", err)
	}
	var bad *ebtypes.InvalidEventPatternException
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("bad"), EventPattern: aws.String(`{"source":"aws.sagemaker"}`)}); !errors.As(err, &bad) {
		t.Errorf("PutRule with a bad pattern: %v; want InvalidEventPatternException", err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("x"), EventPattern: aws.String(`{"source":["a"]}`), EventBusName: aws.String("custom")}); !errors.As(err, &rnf) {
		t.Errorf("PutRule on another bus: %v; want ResourceNotFoundException", err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("has space"), EventPattern: aws.String(`{"source":["a"]}`)}); err == nil {
		t.Error("PutRule with a bad name succeeded")
	} else {
		requireCode(t, err, "ValidationException", "")
	}
	var limit *ebtypes.LimitExceededException
	targets := make([]ebtypes.Target, 6)
	for i := range targets {
		targets[i] = ebtypes.Target{Id: aws.String(fmt.Sprint("t", i)), Arn: aws.String(arn)}
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("a-rule"), Targets: targets}); !errors.As(err, &limit) {
		t.Errorf("six targets on one rule: %v; want LimitExceededException", err)
	}
}

// decodedEvent is the part of an event the tests read.
type decodedEvent struct {
	Version    string         `json:"version"`
	ID         string         `json:"id"`
	DetailType string         `json:"detail-type"`
	Source     string         `json:"source"`
	Account    string         `json:"account"`
	Time       string         `json:"time"`
	Region     string         `json:"region"`
	Resources  []string       `json:"resources"`
	Detail     map[string]any `json:"detail"`
}

// transition is one status change as its event tells it.
func (ev decodedEvent) transition() string {
	if ev.DetailType == DetailTypeStepStatus {
		return fmt.Sprintf("%v %v->%v", ev.Detail["stepName"], ev.Detail["previousStepStatus"], ev.Detail["currentStepStatus"])
	}
	return fmt.Sprintf("execution %v->%v", ev.Detail["previousPipelineExecutionStatus"], ev.Detail["currentPipelineExecutionStatus"])
}

// receiveEvents receives and deletes messages from queueURL until
// done(events) holds or the test's time runs out.
func receiveEvents(t *testing.T, e *Emulator, queueURL string, done func([]decodedEvent) bool) []decodedEvent {
	t.Helper()
	ctx := testContext(t)
	c := e.SQSClient()
	var evs []decodedEvent
	for !done(evs) {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &queueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatalf("ReceiveMessage after %d events: %v", len(evs), err)
		}
		for _, m := range out.Messages {
			var ev decodedEvent
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
				t.Fatalf("message %q is not an event: %v", aws.ToString(m.Body), err)
			}
			evs = append(evs, ev)
			if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &queueURL, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return evs
}

func endsWith(status string) func([]decodedEvent) bool {
	return func(evs []decodedEvent) bool {
		return len(evs) > 0 && evs[len(evs)-1].DetailType == DetailTypeExecutionStatus &&
			evs[len(evs)-1].Detail["currentPipelineExecutionStatus"] == status
	}
}

// TestEventsAtEveryTransition runs a scenario with Condition, callback,
// Lambda and Fail steps and a stop, and checks that every status change of
// the executions and their steps produced its event, in order, with the
// full envelope.
func TestEventsAtEveryTransition(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	cbQueue, _ := e.CreateQueue("callbacks")
	url := routeToQueue(t, e, "sm", "events", sageMakerPattern)

	e.SetStepTiming("L", StepTiming{Duration: Forever})
	def := Definition(Step{Name: "Check", Type: StepTypeCondition,
		Conditions: []any{map[string]any{"Type": "Equals", "LeftValue": 1, "RightValue": 1}},
		IfSteps: []Step{
			{Name: "CB", Type: StepTypeCallback, SqsQueueURL: cbQueue},
			{Name: "L", Type: StepTypeLambda, FunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:f"},
		},
		ElseSteps: []Step{{Name: "Never"}},
	})
	arn := createAndStart(t, sm, "events-stop", def)
	waitStep(t, e, arn, "CB", StatusExecuting)
	waitStep(t, e, arn, "L", StatusExecuting)
	if _, err := sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('s'))}); err != nil {
		t.Fatal(err)
	}
	waitStep(t, e, arn, "CB", StatusStopping)
	tok, _ := e.CallbackToken(arn, "CB")
	if _, err := sm.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: &tok}); err != nil {
		t.Fatal(err)
	}
	if err := e.CompleteStep(arn, "L"); err != nil {
		t.Fatal(err)
	}
	waitExecution(t, e, arn, StatusStopped)
	evs := receiveEvents(t, e, url, endsWith(StatusStopped))

	var got []string
	for _, ev := range evs {
		got = append(got, ev.transition())
	}
	// Steps of one execution change in this order; CB and L start in
	// definition order, and the stop reaches them in start order.
	want := []string{
		"execution <nil>->Executing",
		"Check <nil>->Executing", "Check Executing->Succeeded",
		"CB <nil>->Executing", "L <nil>->Executing",
		"execution Executing->Stopping", "CB Executing->Stopping", "L Executing->Stopping",
		"CB Stopping->Stopped", "L Stopping->Stopped",
		"execution Stopping->Stopped",
	}
	if !slices.Equal(got, want) {
		t.Errorf("transitions:\n got %q\nwant %q", got, want)
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	pipelineARN := "arn:aws:sagemaker:us-east-1:123456789012:pipeline/events-stop"
	for _, ev := range evs {
		if ev.Version != "0" || !uuid.MatchString(ev.ID) || ev.Source != "aws.sagemaker" || ev.Account != "123456789012" ||
			ev.Region != "us-east-1" || !slices.Equal(ev.Resources, []string{pipelineARN, arn}) ||
			ev.Detail["pipelineArn"] != pipelineARN || ev.Detail["pipelineExecutionArn"] != arn {
			t.Errorf("envelope %+v", ev)
		}
		if _, err := time.Parse(time.RFC3339, ev.Time); err != nil || !strings.HasSuffix(ev.Time, "Z") {
			t.Errorf("time %q is not RFC 3339 UTC", ev.Time)
		}
		if ev.DetailType == DetailTypeStepStatus {
			_, hasEnd := ev.Detail["stepEndTime"]
			ended := ev.Detail["currentStepStatus"] != StatusExecuting && ev.Detail["currentStepStatus"] != StatusStopping
			if hasEnd != ended || ev.Detail["stepStartTime"] == nil || ev.Detail["stepType"] == nil {
				t.Errorf("step detail %v", ev.Detail)
			}
		} else {
			_, hasEnd := ev.Detail["executionEndTime"]
			if hasEnd != (ev.Detail["currentPipelineExecutionStatus"] == StatusStopped) || ev.Detail["executionStartTime"] == nil ||
				!strings.HasPrefix(fmt.Sprint(ev.Detail["pipelineExecutionDisplayName"]), "execution-") {
				t.Errorf("execution detail %v", ev.Detail)
			}
		}
	}
	// Metadata is the step type's, as in ListPipelineExecutionSteps; the
	// callback token stays off the bus.
	for _, ev := range evs {
		md, _ := json.Marshal(ev.Detail["metadata"])
		switch ev.Detail["stepName"] {
		case "Check":
			if ev.Detail["currentStepStatus"] == StatusSucceeded && string(md) != `{"Condition":{"Outcome":"True"}}` {
				t.Errorf("Check metadata %s", md)
			}
		case "CB":
			if string(md) != `{"Callback":{"SqsQueueUrl":"`+cbQueue+`"}}` || strings.Contains(string(md), tok) {
				t.Errorf("CB metadata %s", md)
			}
		case "L":
			if string(md) != `{"Lambda":{"Arn":"arn:aws:lambda:us-east-1:123456789012:function:f"}}` {
				t.Errorf("L metadata %s", md)
			}
		}
	}

	// A Fail step: failureReason on the step event, the execution Failed.
	arn2 := createAndStart(t, sm, "events-fail", Definition(Step{Name: "Boom", Type: StepTypeFail, ErrorMessage: "no luck"}))
	waitExecution(t, e, arn2, StatusFailed)
	evs = receiveEvents(t, e, url, endsWith(StatusFailed))
	got = got[:0]
	for _, ev := range evs {
		got = append(got, ev.transition())
		if ev.Detail["currentStepStatus"] == StatusFailed && ev.Detail["failureReason"] != "no luck" {
			t.Errorf("failed step detail %v", ev.Detail)
		}
	}
	want = []string{"execution <nil>->Executing", "Boom <nil>->Executing", "Boom Executing->Failed", "execution Executing->Failed"}
	if !slices.Equal(got, want) {
		t.Errorf("transitions:\n got %q\nwant %q", got, want)
	}
	checkChains(t, e)
}

// checkChains checks, over every event the emulator emitted, that each
// execution's and each step run's events form an unbroken chain from its
// first status to the status the API reports now: no transition was
// missed or repeated.
func checkChains(t *testing.T, e *Emulator) {
	t.Helper()
	last := map[string]string{}
	for _, ev := range e.EmittedEvents() {
		key := ev.ExecutionARN + " " + ev.StepName
		if last[key] != ev.Previous || ev.Previous == ev.Current {
			t.Errorf("%s: event %s->%s after %q", key, ev.Previous, ev.Current, last[key])
		}
		last[key] = ev.Current
	}
	for key, status := range last {
		arn, step, _ := strings.Cut(key, " ")
		var now string
		if step == "" {
			now, _, _ = e.ExecutionStatus(arn)
		} else {
			now, _ = e.StepStatus(arn, step)
		}
		if now != status {
			t.Errorf("%s is %s; its last event says %s", key, now, status)
		}
	}
}

// TestEventPatternsRouteEvents checks that a rule's pattern selects which
// events reach its queue, on the fields setup code filters on.
func TestEventPatternsRouteEvents(t *testing.T) {
	e := StartTest(t, Config{Timing: Timing{StepDuration: -1}})
	terminal := routeToQueue(t, e, "terminal", "terminal",
		`{"source":["aws.sagemaker"],"detail-type":["SageMaker Model Building Pipeline Execution Status Change"],"detail":{"currentPipelineExecutionStatus":["Stopped","Failed","Succeeded"]}}`)
	onlyP2 := routeToQueue(t, e, "p2", "p2",
		`{"resources":[{"prefix":"arn:aws:sagemaker:us-east-1:123456789012:pipeline/p2"}],"detail":{"stepName":[{"exists":true}]}}`)
	for _, p := range []string{"p1", "p2"} {
		if _, err := e.CreatePipeline(p, Definition(Step{Name: "A"})); err != nil {
			t.Fatal(err)
		}
		arn, err := e.StartExecution(p)
		if err != nil {
			t.Fatal(err)
		}
		waitExecution(t, e, arn, StatusSucceeded)
	}
	evs := receiveEvents(t, e, terminal, func(evs []decodedEvent) bool { return len(evs) >= 2 })
	for _, ev := range evs {
		if ev.transition() != "execution Executing->Succeeded" {
			t.Errorf("terminal queue got %s", ev.transition())
		}
	}
	evs = receiveEvents(t, e, onlyP2, func(evs []decodedEvent) bool { return len(evs) >= 2 })
	for _, ev := range evs {
		if ev.DetailType != DetailTypeStepStatus || !strings.Contains(ev.Resources[1], "/p2/") {
			t.Errorf("p2 queue got %s of %v", ev.transition(), ev.Resources)
		}
	}
	if st := e.EventStats(); st.Delivered != 4 || st.Emitted != 8 || st.Undeliverable != 0 {
		t.Errorf("stats %+v; want 8 emitted, 4 delivered", st)
	}
}

// runSequential starts n single-step executions one after the other and
// waits for each, so that events are emitted in a fixed order.
func runSequential(t *testing.T, e *Emulator, n int) {
	t.Helper()
	if _, err := e.CreatePipeline("seq", Definition(Step{Name: "A"})); err != nil {
		t.Fatal(err)
	}
	for range n {
		arn, err := e.StartExecution("seq")
		if err != nil {
			t.Fatal(err)
		}
		waitExecution(t, e, arn, StatusSucceeded)
	}
}

// TestEventFaultsDeterministic checks that drops and duplicates follow
// the seed: two emulators with the same seed and the same scenario lose
// and repeat the same events.
func TestEventFaultsDeterministic(t *testing.T) {
	run := func(seed int64) ([]string, EventStats) {
		e := StartTest(t, Config{Timing: Timing{StepDuration: -1}, Seed: seed,
			EventFaults: EventFaults{DropRate: 0.3, DuplicateRate: 0.3}})
		url := routeToQueue(t, e, "all", "all", `{"source":["aws.sagemaker"]}`)
		runSequential(t, e, 10)
		st := e.EventStats()
		want := st.Emitted - st.Dropped + st.Duplicated
		evs := receiveEvents(t, e, url, func(evs []decodedEvent) bool { return len(evs) >= want })
		var got []string
		ids := map[string]bool{}
		for _, ev := range evs {
			got = append(got, ev.transition())
			if ids[ev.ID] {
				t.Errorf("id %s delivered twice; a duplicate has its own id", ev.ID)
			}
			ids[ev.ID] = true
		}
		return got, st
	}
	a, sa := run(7)
	b, sb := run(7)
	if !slices.Equal(a, b) || sa != sb {
		t.Errorf("same seed, different faults:\n%q %+v\n%q %+v", a, sa, b, sb)
	}
	if sa.Emitted != 40 || sa.Dropped == 0 || sa.Duplicated == 0 || sa.Delivered != len(a) {
		t.Errorf("stats %+v for %d delivered; want 40 emitted, some dropped and duplicated", sa, len(a))
	}
}

// TestEmittedEventsMarkDropped checks that EmittedEvents marks exactly the
// events DropRate kept off the bus, and that none of them arrives.
func TestEmittedEventsMarkDropped(t *testing.T) {
	e := StartTest(t, Config{Timing: Timing{StepDuration: -1}, Seed: 3, EventFaults: EventFaults{DropRate: 0.4}})
	url := routeToQueue(t, e, "all", "all", `{"source":["aws.sagemaker"]}`)
	runSequential(t, e, 5)
	st := e.EventStats()
	evs := receiveEvents(t, e, url, func(evs []decodedEvent) bool { return len(evs) >= st.Emitted-st.Dropped })
	got := map[string]bool{}
	for _, ev := range evs {
		got[ev.ID] = true
	}
	dropped := 0
	for _, ev := range e.EmittedEvents() {
		if ev.Dropped {
			dropped++
		}
		if ev.Dropped == got[ev.ID] {
			t.Errorf("event %s (%s->%s): Dropped %v, delivered %v", ev.ID, ev.Previous, ev.Current, ev.Dropped, got[ev.ID])
		}
	}
	if st.Dropped == 0 || dropped != st.Dropped {
		t.Errorf("%d events marked dropped; stats %+v", dropped, st)
	}
}

// TestExecutionEnded checks that ExecutionEnded reports when an execution
// reached its terminal status, and nothing while it runs.
func TestExecutionEnded(t *testing.T) {
	e := StartTest(t, Config{Timing: Timing{StepDuration: -1}})
	e.SetStepTiming("L", StepTiming{Duration: Forever})
	if _, err := e.CreatePipeline("long", Definition(Step{Name: "L"})); err != nil {
		t.Fatal(err)
	}
	running, err := e.StartExecution("long")
	if err != nil {
		t.Fatal(err)
	}
	if at, ok, err := e.ExecutionEnded(running); err != nil || ok || !at.IsZero() {
		t.Errorf("running execution: ExecutionEnded = %v, %v, %v; want zero, false, nil", at, ok, err)
	}
	before := time.Now()
	runSequential(t, e, 1)
	after := time.Now()
	var done string
	for _, ev := range e.EmittedEvents() {
		if ev.Current == StatusSucceeded && ev.StepName == "" {
			done = ev.ExecutionARN
		}
	}
	at, ok, err := e.ExecutionEnded(done)
	if err != nil || !ok || at.Before(before) || at.After(after) {
		t.Errorf("ended execution: ExecutionEnded = %v, %v, %v; want a time within [%v, %v]", at, ok, err, before, after)
	}
	if _, _, err := e.ExecutionEnded(running + "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown execution: %v, want ErrNotFound", err)
	}
}

// TestEventDelaySpreadReorders checks that a delay spread delivers events
// late and out of order, and that every event still arrives.
func TestEventDelaySpreadReorders(t *testing.T) {
	e := StartTest(t, Config{Timing: Timing{StepDuration: -1}, Seed: 3,
		EventFaults: EventFaults{Delay: 20 * time.Millisecond, DelaySpread: 400 * time.Millisecond}})
	url := routeToQueue(t, e, "all", "all", `{"source":["aws.sagemaker"]}`)
	runSequential(t, e, 5)
	emitted := e.EmittedEvents()
	evs := receiveEvents(t, e, url, func(evs []decodedEvent) bool { return len(evs) >= len(emitted) })
	order := map[string]int{}
	for i, ev := range emitted {
		order[ev.ID] = i
	}
	reordered := false
	for i := 1; i < len(evs); i++ {
		if order[evs[i].ID] < order[evs[i-1].ID] {
			reordered = true
		}
	}
	if !reordered || len(evs) != len(emitted) {
		t.Errorf("%d of %d events delivered, reordered %v", len(evs), len(emitted), reordered)
	}
}

func TestEventFaultsInvalid(t *testing.T) {
	for _, f := range []EventFaults{{DropRate: -0.1}, {DuplicateRate: 1.5}, {DropRate: nan()}, {Delay: -1}, {DelaySpread: -time.Second}} {
		if _, err := Start(Config{EventFaults: f}); err == nil {
			t.Errorf("Start with %+v succeeded", f)
		}
	}
	e := StartTest(t, Config{})
	if err := e.SetEventFaults(EventFaults{DropRate: 2}); err == nil {
		t.Error("SetEventFaults with DropRate 2 succeeded")
	}
	if err := e.SetEventFaults(EventFaults{DropRate: 0.5}); err != nil || e.CurrentEventFaults().DropRate != 0.5 {
		t.Errorf("SetEventFaults: %v %+v", err, e.CurrentEventFaults())
	}
}

func nan() float64 { var z float64; return z / z }

// TestEventsQueuePolicy checks Config.RequireQueuePolicy: without a
// policy, or with one scoped to another rule, nothing is delivered; with
// the policy setup code writes, events arrive.
func TestEventsQueuePolicy(t *testing.T) {
	e := StartTest(t, Config{Timing: Timing{StepDuration: -1}, RequireQueuePolicy: true})
	url := routeToQueue(t, e, "sm", "events", `{"source":["aws.sagemaker"]}`)
	if _, err := e.CreatePipeline("p", Definition(Step{Name: "A"})); err != nil {
		t.Fatal(err)
	}
	runOnce := func() {
		arn, err := e.StartExecution("p")
		if err != nil {
			t.Fatal(err)
		}
		waitExecution(t, e, arn, StatusSucceeded)
	}
	setPolicy := func(sourceArn string) {
		policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"events","Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},`+
			`"Action":"sqs:SendMessage","Resource":%q,"Condition":{"ArnEquals":{"aws:SourceArn":%q}}}]}`, queueARN(e, "events"), sourceArn)
		if _, err := e.SQSClient().SetQueueAttributes(testContext(t), &sqs.SetQueueAttributesInput{QueueUrl: &url,
			Attributes: map[string]string{"Policy": policy}}); err != nil {
			t.Fatal(err)
		}
	}
	runOnce()
	setPolicy("arn:aws:events:us-east-1:123456789012:rule/other")
	runOnce()
	if st := e.EventStats(); st.Delivered != 0 || st.Undeliverable != 8 {
		t.Fatalf("without a fitting policy: %+v; want 8 undeliverable", st)
	}
	setPolicy("arn:aws:events:us-east-1:123456789012:rule/sm")
	runOnce()
	receiveEvents(t, e, url, func(evs []decodedEvent) bool { return len(evs) >= 4 })
	if st := e.EventStats(); st.Delivered != 4 {
		t.Errorf("with the policy: %+v; want 4 delivered", st)
	}
}

func TestPolicyAllowsEvents(t *testing.T) {
	q, rule := "arn:aws:sqs:us-east-1:123456789012:q", "arn:aws:events:us-east-1:123456789012:rule/r"
	tests := []struct {
		name, policy string
		allow        bool
	}{
		{"none", ``, false},
		{"not json", `{`, false},
		{"scoped", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"` + q + `","Condition":{"ArnEquals":{"aws:SourceArn":"` + rule + `"}}}]}`, true},
		{"one statement, lists", `{"Statement":{"Effect":"Allow","Principal":{"Service":["events.amazonaws.com"]},"Action":["sqs:*"],"Resource":["*"]}}`, true},
		{"like", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"` + q + `","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:events:*:123456789012:rule/*"}}}]}`, true},
		{"other principal", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"` + q + `"}]}`, false},
		{"other action", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:ReceiveMessage","Resource":"` + q + `"}]}`, false},
		{"other queue", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"` + q + `2"}]}`, false},
		{"deny wins", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"},{"Effect":"Deny","Principal":"*","Action":"sqs:SendMessage","Resource":"*"}]}`, false},
		{"unknown condition key", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}]}`, false},
	}
	for _, tt := range tests {
		if got := policyAllowsEvents(tt.policy, q, rule) == nil; got != tt.allow {
			t.Errorf("%s: allowed %v; want %v", tt.name, got, tt.allow)
		}
	}
}

// TestEventsOfARetry checks the events of a failed callback step and of
// RetryPipelineExecution: the execution goes Failed -> Executing and the
// rerun step has a first event of its own.
func TestEventsOfARetry(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	cbQueue, _ := e.CreateQueue("callbacks")
	url := routeToQueue(t, e, "sm", "events", sageMakerPattern)
	arn := createAndStart(t, sm, "events-retry", Definition(Step{Name: "CB", Type: StepTypeCallback, SqsQueueURL: cbQueue}))
	waitStep(t, e, arn, "CB", StatusExecuting)
	tok, _ := e.CallbackToken(arn, "CB")
	if _, err := sm.SendPipelineExecutionStepFailure(ctx, &sagemaker.SendPipelineExecutionStepFailureInput{CallbackToken: &tok, FailureReason: aws.String("rejected")}); err != nil {
		t.Fatal(err)
	}
	waitExecution(t, e, arn, StatusFailed)
	if _, err := sm.RetryPipelineExecution(ctx, &sagemaker.RetryPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('r'))}); err != nil {
		t.Fatal(err)
	}
	waitStep(t, e, arn, "CB", StatusExecuting)
	tok, _ = e.CallbackToken(arn, "CB")
	if _, err := sm.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: &tok}); err != nil {
		t.Fatal(err)
	}
	waitExecution(t, e, arn, StatusSucceeded)
	evs := receiveEvents(t, e, url, endsWith(StatusSucceeded))
	var got []string
	for _, ev := range evs {
		got = append(got, ev.transition())
		if ev.Detail["currentStepStatus"] == StatusFailed && ev.Detail["failureReason"] != "rejected" {
			t.Errorf("failed step detail %v", ev.Detail)
		}
	}
	want := []string{
		"execution <nil>->Executing", "CB <nil>->Executing", "CB Executing->Failed", "execution Executing->Failed",
		"execution Failed->Executing", "CB <nil>->Executing", "CB Executing->Succeeded", "execution Executing->Succeeded",
	}
	if !slices.Equal(got, want) {
		t.Errorf("transitions:\n got %q\nwant %q", got, want)
	}
}

// TestEventBridgeWireErrors checks the error bodies EventBridge writes:
// the bare shape name and a lowercase "message", also for an operation
// the emulator does not serve, while SageMaker keeps "Message".
func TestEventBridgeWireErrors(t *testing.T) {
	e := StartTest(t, Config{})
	post := func(target, body string) (int, map[string]string) {
		req, err := http.NewRequestWithContext(testContext(t), http.MethodPost, e.URL(), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	if code, out := post("AWSEvents.DescribeRule", `{"Name":"nope"}`); code != 400 || out["__type"] != "ResourceNotFoundException" || out["message"] == "" || out["Message"] != "" {
		t.Errorf("DescribeRule of an unknown rule: %d %v", code, out)
	}
	if code, out := post("AWSEvents.PutEvents", `{}`); code != 400 || out["__type"] != "UnknownOperationException" || out["message"] == "" {
		t.Errorf("an unserved EventBridge operation: %d %v", code, out)
	}
	if code, out := post("SageMaker.DescribePipeline", `{"PipelineName":"nope"}`); code != 400 || out["Message"] == "" {
		t.Errorf("SageMaker error: %d %v", code, out)
	}
	if n := e.Requests("DescribeRule"); n != 1 {
		t.Errorf("Requests(DescribeRule) = %d; want 1", n)
	}
}

// TestCloseCancelsDelayedEvents checks that Close ends with events still
// delayed: they are never delivered and Close does not wait for them.
func TestCloseCancelsDelayedEvents(t *testing.T) {
	e, err := Start(Config{Timing: Timing{StepDuration: -1}, EventFaults: EventFaults{Delay: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	routeToQueue(t, e, "all", "all", `{"source":["aws.sagemaker"]}`)
	if _, err := e.CreatePipeline("p", Definition(Step{Name: "A"})); err != nil {
		t.Fatal(err)
	}
	arn, err := e.StartExecution("p")
	if err != nil {
		t.Fatal(err)
	}
	waitExecution(t, e, arn, StatusSucceeded)
	closed := make(chan error, 1)
	go func() { closed <- e.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close waited for delayed events")
	}
	if st := e.EventStats(); st.Emitted != 4 || st.Delivered != 0 {
		t.Errorf("stats %+v; want 4 emitted, none delivered", st)
	}
}
