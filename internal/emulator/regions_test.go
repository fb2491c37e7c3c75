package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// inRegion returns e's state in region, failing the test on error.
func inRegion(t *testing.T, e *Emulator, region string) *Emulator {
	t.Helper()
	r, err := e.InRegion(region)
	if err != nil {
		t.Fatalf("InRegion(%q): %v", region, err)
	}
	return r
}

func TestRegionsSamePipelineNameAreTwoPipelines(t *testing.T) {
	e := StartTest(t, Config{Timing: Timing{StepDuration: Forever}})
	eu := inRegion(t, e, "eu-west-1")
	def := Definition(Step{Name: "Train"})
	usARN := createAndStart(t, e.SageMakerClient(), "train", def)
	euARN := createAndStart(t, eu.SageMakerClient(), "train", def)
	if !strings.HasPrefix(usARN, "arn:aws:sagemaker:us-east-1:123456789012:pipeline/train/execution/") ||
		!strings.HasPrefix(euARN, "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/train/execution/") {
		t.Fatalf("execution ARNs %s and %s; want one per Region", usARN, euARN)
	}
	ctx := testContext(t)
	for _, r := range []*Emulator{e, eu} {
		out, err := r.SageMakerClient().ListPipelines(ctx, &sagemaker.ListPipelinesInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.PipelineSummaries) != 1 || !strings.Contains(aws.ToString(out.PipelineSummaries[0].PipelineArn), ":"+r.Region()+":") {
			t.Errorf("%s: ListPipelines = %+v; want its own pipeline only", r.Region(), out.PipelineSummaries)
		}
	}
	// Stopping one leaves the other running.
	if _, err := eu.SageMakerClient().StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{
		PipelineExecutionArn: aws.String(euARN), ClientRequestToken: aws.String(token('a'))}); err != nil {
		t.Fatal(err)
	}
	waitExecution(t, e, euARN, StatusStopped) // helpers act in the ARN's Region
	if st, _, err := e.ExecutionStatus(usARN); err != nil || st != StatusExecuting {
		t.Errorf("us-east-1 execution: %s %v; want Executing", st, err)
	}
	if e.EffectiveStops(euARN) != 1 || eu.EffectiveStops(usARN) != 0 {
		t.Errorf("EffectiveStops: eu %d, us %d", e.EffectiveStops(euARN), eu.EffectiveStops(usARN))
	}
	if got := e.Regions(); len(got) != 2 || got[0] != "eu-west-1" || got[1] != "us-east-1" {
		t.Errorf("Regions() = %v", got)
	}
}

func TestRegionsResourcesOfAnotherRegionAreNotFound(t *testing.T) {
	e := StartTest(t, Config{Timing: Timing{StepDuration: Forever}})
	// A client that names its Region only in its signature, as a user's
	// does: the emulator takes the Region from the credential scope.
	eu := sagemaker.NewFromConfig(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(e.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")})
	euARN := createAndStart(t, eu, "p", Definition(Step{Name: "A"}))
	if !strings.Contains(euARN, ":eu-west-1:") {
		t.Fatalf("execution ARN %s; want eu-west-1", euARN)
	}
	us := e.SageMakerClient(func(o *sagemaker.Options) { o.RetryMaxAttempts = 1 })
	ctx := testContext(t)
	_, err := us.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: aws.String(euARN)})
	requireCode(t, err, "ResourceNotFound", euARN)
	_, err = us.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: aws.String(euARN), ClientRequestToken: aws.String(token('s'))})
	requireCode(t, err, "ResourceNotFound", "")
	pipelineARN, _, _ := strings.Cut(euARN, "/execution/")
	_, err = us.DescribePipeline(ctx, &sagemaker.DescribePipelineInput{PipelineName: aws.String(pipelineARN)})
	requireCode(t, err, "ResourceNotFound", pipelineARN)
	_, err = us.DescribePipeline(ctx, &sagemaker.DescribePipelineInput{PipelineName: aws.String("p")})
	requireCode(t, err, "ResourceNotFound", "")
	if _, err := eu.DescribePipeline(ctx, &sagemaker.DescribePipelineInput{PipelineName: aws.String(pipelineARN)}); err != nil {
		t.Errorf("eu-west-1 DescribePipeline by ARN: %v", err)
	}
	// The same ARN with another partition is not this Region's either.
	wrongPartition := strings.Replace(euARN, "arn:aws:", "arn:aws-cn:", 1)
	_, err = eu.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: aws.String(wrongPartition)})
	requireCode(t, err, "ResourceNotFound", "")
	if regionRequests(t, e, "eu-west-1", "CreatePipeline") != 1 || e.Requests("CreatePipeline") != 0 {
		t.Errorf("CreatePipeline counted in %v", e.RegionCounters())
	}
}

// regionRequests is Requests of region.
func regionRequests(t *testing.T, e *Emulator, region, op string) int {
	t.Helper()
	return inRegion(t, e, region).Requests(op)
}

func TestRegionsQueuesAndCallbacks(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	eu := inRegion(t, e, "eu-west-1")
	euURL, err := eu.CreateQueue("callbacks")
	if err != nil {
		t.Fatal(err)
	}
	if want := e.URL() + "/queue/eu-west-1/123456789012/callbacks"; euURL != want {
		t.Errorf("eu-west-1 queue URL %s; want %s", euURL, want)
	}
	if want := e.URL() + "/123456789012/callbacks"; e.QueueURL("callbacks") != want {
		t.Errorf("home queue URL %s; want %s (unchanged)", e.QueueURL("callbacks"), want)
	}
	ctx := testContext(t)
	usSQS := e.SQSClient(func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	_, err = usSQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(euURL), MessageBody: aws.String("x")})
	requireCode(t, err, "AWS.SimpleQueueService.NonExistentQueue", "")
	for _, u := range []string{euURL, "https://sqs.eu-west-1.amazonaws.com/123456789012/callbacks"} {
		if _, err := eu.SQSClient().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(u), MessageBody: aws.String("x")}); err != nil {
			t.Errorf("eu-west-1 SendMessage to %s: %v", u, err)
		}
	}
	attrs, err := eu.SQSClient().GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(euURL), AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if err != nil || attrs.Attributes["QueueArn"] != "arn:aws:sqs:eu-west-1:123456789012:callbacks" {
		t.Errorf("QueueArn %v %v", attrs, err)
	}

	// A callback step of an eu-west-1 execution sends to its Region's
	// queue; its token is answered in that Region only.
	def := Definition(Step{Name: "Wait", Type: StepTypeCallback, SqsQueueURL: euURL})
	arn := createAndStart(t, eu.SageMakerClient(), "cb", def)
	waitStep(t, e, arn, "Wait", StatusExecuting)
	tok, err := e.CallbackToken(arn, "Wait")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(eu.CallbackMessages()); n != 1 {
		t.Errorf("eu-west-1 sent %d callback messages; want 1", n)
	}
	_, err = e.SageMakerClient().SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: aws.String(tok)})
	requireCode(t, err, "ResourceNotFound", "")
	if _, err := eu.SageMakerClient().SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: aws.String(tok)}); err != nil {
		t.Fatalf("answer in eu-west-1: %v", err)
	}
	if got := e.Answers(tok); len(got) != 1 || got[0].Outcome != OutcomeSuccess {
		t.Errorf("Answers(token) = %+v; want the eu-west-1 answer", got)
	}
}

func TestRegionsPartitionARNs(t *testing.T) {
	e := StartTest(t, Config{Timing: Timing{StepDuration: Forever}})
	for _, tc := range []struct{ region, partition string }{
		{"us-west-2", "aws"},
		{"cn-north-1", "aws-cn"},
		{"cn-northwest-1", "aws-cn"},
		{"us-gov-west-1", "aws-us-gov"},
		{"us-gov-east-1", "aws-us-gov"},
		{"us-iso-east-1", "aws-iso"},
		{"us-isob-east-1", "aws-iso-b"},
		{"eu-isoe-west-1", "aws-iso-e"},
		{"us-isof-south-1", "aws-iso-f"},
	} {
		t.Run(tc.region, func(t *testing.T) {
			if got := Partition(tc.region); got != tc.partition {
				t.Fatalf("Partition = %s; want %s", got, tc.partition)
			}
			r := inRegion(t, e, tc.region)
			arn := createAndStart(t, r.SageMakerClient(), "p", Definition(Step{Name: "A"}))
			if want := "arn:" + tc.partition + ":sagemaker:" + tc.region + ":123456789012:pipeline/p/execution/"; !strings.HasPrefix(arn, want) {
				t.Errorf("execution ARN %s; want prefix %s", arn, want)
			}
			ctx := testContext(t)
			out, err := r.SageMakerClient().DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: aws.String(arn)})
			if err != nil {
				t.Fatal(err)
			}
			if u := aws.ToString(out.CreatedBy.IamIdentity.Arn); !strings.HasPrefix(u, "arn:"+tc.partition+":iam::123456789012:user/") {
				t.Errorf("CreatedBy %s; want the partition's IAM ARN", u)
			}
			rule, err := r.EventBridgeClient().PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(sageMakerPattern)})
			if err != nil || aws.ToString(rule.RuleArn) != "arn:"+tc.partition+":events:"+tc.region+":123456789012:rule/r" {
				t.Errorf("RuleArn %v %v", rule, err)
			}
			if q := r.QueueARN("q"); q != "arn:"+tc.partition+":sqs:"+tc.region+":123456789012:q" {
				t.Errorf("QueueARN %s", q)
			}
			if f := r.FunctionARN("f"); f != "arn:"+tc.partition+":lambda:"+tc.region+":123456789012:function:f" {
				t.Errorf("FunctionARN %s", f)
			}
			// The aws partition's spelling of this ARN is another resource.
			if tc.partition != "aws" {
				_, err = r.SageMakerClient().DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{
					PipelineExecutionArn: aws.String(strings.Replace(arn, "arn:"+tc.partition+":", "arn:aws:", 1))})
				requireCode(t, err, "ResourceNotFound", "")
			}
		})
	}
}

func TestRegionsRateLimitsPerRegion(t *testing.T) {
	e := StartTest(t, Config{Faults: Faults{RateLimits: map[string]RateLimit{"ListPipelines": {PerSecond: 1e-6, Burst: 1}}}})
	ctx := testContext(t)
	for _, region := range []string{"us-east-1", "eu-west-1", "cn-north-1"} {
		sm := inRegion(t, e, region).SageMakerClient(func(o *sagemaker.Options) { o.RetryMaxAttempts = 1 })
		if _, err := sm.ListPipelines(ctx, &sagemaker.ListPipelinesInput{}); err != nil {
			t.Fatalf("%s: first ListPipelines: %v (each Region has its own bucket)", region, err)
		}
		_, err := sm.ListPipelines(ctx, &sagemaker.ListPipelinesInput{})
		requireCode(t, err, "ThrottlingException", "")
	}
	if e.Requests("ListPipelines") != 2 || e.TotalRequests("ListPipelines") != 6 {
		t.Errorf("Requests %d, TotalRequests %d; want 2 and 6", e.Requests("ListPipelines"), e.TotalRequests("ListPipelines"))
	}
	if c := e.RegionCounters(); len(c) != 3 || c["cn-north-1"]["ListPipelines"] != 2 {
		t.Errorf("RegionCounters = %v", c)
	}
	// SetFaults reaches every Region, and Regions created later.
	e.SetFaults(Faults{})
	for _, region := range []string{"eu-west-1", "ap-south-1"} {
		if f := inRegion(t, e, region).CurrentFaults(); f.RateLimits != nil {
			t.Errorf("%s faults %+v after SetFaults", region, f)
		}
	}
}

func TestRegionsEventsGoToRulesOfTheirRegion(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	eu := inRegion(t, e, "eu-west-1")
	for _, r := range []*Emulator{e, eu} {
		ctx := testContext(t)
		if _, err := r.CreateQueue("events"); err != nil {
			t.Fatal(err)
		}
		eb := r.EventBridgeClient()
		if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("sm"), EventPattern: aws.String(sageMakerPattern)}); err != nil {
			t.Fatal(err)
		}
		out, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("sm"),
			Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(r.QueueARN("events"))}}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutTargets: %v %+v", err, out)
		}
	}
	arn := createAndStart(t, eu.SageMakerClient(), "p", Definition(Step{Name: "A"}))
	waitExecution(t, e, arn, StatusSucceeded)
	if s := e.EventStats(); s.Emitted != 0 || s.Delivered != 0 {
		t.Errorf("us-east-1 event stats %+v; want none", s)
	}
	if s := eu.EventStats(); s.Emitted == 0 || s.Delivered != s.Emitted || s.Undeliverable != 0 {
		t.Errorf("eu-west-1 event stats %+v; want every event delivered", s)
	}
	out, err := eu.SQSClient().ReceiveMessage(testContext(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(eu.QueueURL("events"))})
	if err != nil || len(out.Messages) == 0 {
		t.Fatalf("receive: %v %v", out, err)
	}
	var ev struct {
		Region    string
		Resources []string
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Region != "eu-west-1" || len(ev.Resources) != 2 || ev.Resources[1] != arn {
		t.Errorf("event region %q resources %v", ev.Region, ev.Resources)
	}
	if n, err := e.SQSClient().GetQueueAttributes(testContext(t), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(e.QueueURL("events")),
		AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages"}}); err != nil || n.Attributes["ApproximateNumberOfMessages"] != "0" {
		t.Errorf("us-east-1 queue: %v %v; want empty", n, err)
	}
}

// regionRawRequest posts a ListPipelines request with the given Authorization
// header and query, and returns the status and body.
func regionRawRequest(t *testing.T, e *Emulator, query, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), http.MethodPost, e.URL()+"/"+query, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "SageMaker.ListPipelines")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestRegionsOfUnsignedPresignedAndBadRequests(t *testing.T) {
	e := StartTest(t, Config{Region: "eu-central-1"})
	if code, body := regionRawRequest(t, e, "", ""); code != http.StatusOK {
		t.Fatalf("unsigned: %d %s", code, body)
	}
	if code, body := regionRawRequest(t, e, "?X-Amz-Credential=AKID%2F20261201%2Fap-southeast-2%2Fsagemaker%2Faws4_request", ""); code != http.StatusOK {
		t.Fatalf("presigned: %d %s", code, body)
	}
	auth := "AWS4-HMAC-SHA256 Credential=AKID/20261201/sa-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=abc"
	if code, body := regionRawRequest(t, e, "", auth); code != http.StatusOK {
		t.Fatalf("signed: %d %s", code, body)
	}
	if e.Requests("ListPipelines") != 1 || regionRequests(t, e, "ap-southeast-2", "ListPipelines") != 1 ||
		regionRequests(t, e, "sa-east-1", "ListPipelines") != 1 {
		t.Errorf("counters %v; want one request in each Region (unsigned in Config.Region)", e.RegionCounters())
	}
	code, body := regionRawRequest(t, e, "", strings.Replace(auth, "sa-east-1", "Not_A_Region", 1))
	if code != http.StatusForbidden || !strings.Contains(body, "InvalidSignatureException") {
		t.Errorf("bad Region: %d %s; want 403 InvalidSignatureException", code, body)
	}
	if _, err := e.InRegion("Not_A_Region"); !errors.Is(err, ErrInvalidRegion) {
		t.Errorf("InRegion(bad) error %v; want ErrInvalidRegion", err)
	}
	if _, err := Start(Config{Region: "EU-WEST-1"}); !errors.Is(err, ErrInvalidRegion) {
		t.Errorf("Start with Region EU-WEST-1: %v; want ErrInvalidRegion", err)
	}
	if r := inRegion(t, e, "eu-central-1"); r != e {
		t.Errorf("InRegion(Config.Region) is not the value Start returned")
	}
}

func TestRegionsAreBounded(t *testing.T) {
	e := StartTest(t, Config{})
	for i := range MaxRegions - 1 {
		if _, err := e.InRegion("r-" + strings.Repeat("a", i%20+1) + "-" + string(rune('0'+i/20))); err != nil {
			t.Fatalf("Region %d: %v", i, err)
		}
	}
	if _, err := e.InRegion("one-more-1"); !errors.Is(err, ErrInvalidRegion) {
		t.Errorf("Region %d: %v; want ErrInvalidRegion", MaxRegions+1, err)
	}
}

func TestRegionsLambdaFunctionsAndMappings(t *testing.T) {
	tf := buildTestFunction(t)
	e := StartTest(t, Config{})
	eu := inRegion(t, e, "eu-west-1")
	tf.add(t, eu, "fn", 3*time.Second, nil)
	ctx := testContext(t)
	fnARN := eu.FunctionARN("fn")
	if fnARN != "arn:aws:lambda:eu-west-1:123456789012:function:fn" {
		t.Fatalf("FunctionARN %s", fnARN)
	}
	us := e.LambdaClient(func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
	for _, ref := range []string{"fn", fnARN} {
		_, err := us.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(ref)})
		requireCode(t, err, "ResourceNotFoundException", "")
	}
	got, err := eu.LambdaClient().GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fnARN)})
	if err != nil || aws.ToString(got.Configuration.FunctionArn) != fnARN {
		t.Fatalf("eu-west-1 GetFunction: %v %v", got, err)
	}
	queueURL, err := eu.CreateQueue("q")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateQueue("q"); err != nil {
		t.Fatal(err)
	}
	lc := eu.LambdaClient(func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
	if _, err := lc.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		EventSourceArn: aws.String(e.QueueARN("q")), FunctionName: aws.String("fn")}); err == nil {
		t.Error("an eu-west-1 mapping from a us-east-1 queue was created")
	}
	m, err := lc.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		EventSourceArn: aws.String(eu.QueueARN("q")), FunctionName: aws.String("fn")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(m.EventSourceMappingArn), "arn:aws:lambda:eu-west-1:123456789012:event-source-mapping:") {
		t.Errorf("EventSourceMappingArn %s", aws.ToString(m.EventSourceMappingArn))
	}
	if _, err := eu.SQSClient().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(`{"ok":true}`)}); err != nil {
		t.Fatal(err)
	}
	var inv []loggedInvocation
	eventually(t, "an invocation", func() bool { inv = tf.invocations(t); return len(inv) > 0 })
	var ev struct {
		Records []struct{ EventSourceARN, AWSRegion string }
	}
	if err := json.Unmarshal(inv[0].Event, &ev); err != nil || len(ev.Records) != 1 {
		t.Fatalf("event %s: %v", inv[0].Event, err)
	}
	if r := ev.Records[0]; r.AWSRegion != "eu-west-1" || r.EventSourceARN != eu.QueueARN("q") || inv[0].Env["AWS_REGION"] != "eu-west-1" {
		t.Errorf("record %+v, AWS_REGION %q; want eu-west-1's", r, inv[0].Env["AWS_REGION"])
	}
}

// Regions are created by concurrent requests while emulator-wide settings
// change (run with -race); after Close no Region is created.
func TestRegionsConcurrentCreationAndClose(t *testing.T) {
	e, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	regions := []string{"eu-west-1", "eu-west-2", "ap-south-1", "cn-north-1", "us-gov-east-1", "sa-east-1"}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(regions))
	for _, region := range regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := testContext(t)
			sqsc := sqs.NewFromConfig(aws.Config{Region: region, BaseEndpoint: aws.String(e.URL()),
				Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")})
			for i := range 5 {
				if _, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q" + strconv.Itoa(i))}); err != nil {
					errs <- fmt.Errorf("%s: %w", region, err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			e.SetFaults(Faults{RateLimits: map[string]RateLimit{"ListPipelines": {PerSecond: float64(i + 1), Burst: 1}}})
			e.SetStepTiming("A", StepTiming{Duration: time.Duration(i+1) * time.Millisecond})
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, region := range regions {
		r := inRegion(t, e, region)
		if n := r.Requests("CreateQueue"); n != 5 {
			t.Errorf("%s: %d CreateQueue; want 5", region, n)
		}
		if f := r.CurrentFaults(); f.RateLimits["ListPipelines"].PerSecond != 20 {
			t.Errorf("%s: faults %+v; want the last SetFaults", region, f)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.InRegion("af-south-1"); err == nil {
		t.Error("a Region was created after Close")
	}
	if err := inRegion(t, e, "eu-west-1").Close(); err != nil { // closing again, through another Region, is harmless
		t.Errorf("second Close: %v", err)
	}
}

// Settings made before a Region exists reach it: a step timing and a
// Lambda step's outputs set on the home Region apply in a Region created
// afterwards.
func TestRegionsInheritSettings(t *testing.T) {
	e := StartTest(t, Config{Timing: Timing{StepDuration: Forever, LambdaRunTime: -1}})
	e.SetStepTiming("Work", StepTiming{Duration: -1}) // at once, instead of forever
	e.SetLambdaOutputs("Score", map[string]string{"score": "0.93"})
	eu := inRegion(t, e, "eu-west-1")
	arn := createAndStart(t, eu.SageMakerClient(), "p", Definition(Step{Name: "Work"},
		Step{Name: "Score", Type: StepTypeLambda, Outputs: []string{"score"}, DependsOn: []string{"Work"}}))
	waitExecution(t, e, arn, StatusSucceeded)
	out, err := eu.SageMakerClient().ListPipelineExecutionSteps(testContext(t), &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range out.PipelineExecutionSteps {
		if aws.ToString(s.StepName) != "Score" {
			continue
		}
		if o := s.Metadata.Lambda.OutputParameters; len(o) != 1 || aws.ToString(o[0].Value) != "0.93" {
			t.Errorf("Score outputs %+v; want score=0.93", o)
		}
	}
}
