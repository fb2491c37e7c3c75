"""SageMaker conformance: drive every SageMaker operation the emulator serves
through boto3/botocore, check every raw response body against botocore's
service model (members, required members, types, enums, lengths, ranges,
patterns) and check that each error parses into the modelled exception
class of the operation (or, for the unmodelled ValidationException, into a
plain ClientError with that code).

Run by TestConformanceSageMaker (conformance_sagemaker_test.go) with
PIPELINESTOP_ENDPOINT (the emulator), PIPELINESTOP_QUEUE_URL (an emulator
queue for callback steps) and PIPELINESTOP_SAGEMAKER_OPERATIONS (the
operations the emulator serves, all of which must be called). Exit status
0 on success; every problem is printed on its own line starting "FAIL".
"""

import json
import os
import sys
import time

import boto3
import botocore.config
import botocore.exceptions

import botomodel
from botomodel import answer_hook, called, check_served, fail, finish

ENDPOINT = os.environ["PIPELINESTOP_ENDPOINT"]
QUEUE_URL = os.environ["PIPELINESTOP_QUEUE_URL"]
SERVED = set(filter(None, os.environ.get("PIPELINESTOP_SAGEMAKER_OPERATIONS", "").split(",")))
ROLE = "arn:aws:iam::123456789012:role/conformance"
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:notify"

session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
sm = session.client("sagemaker", endpoint_url=ENDPOINT,
                    config=botocore.config.Config(retries={"max_attempts": 1}, parameter_validation=False))
# parameter_validation=False: the emulator, not botocore, must refuse bad input.
sm.meta.events.register("after-call.sagemaker", answer_hook(
    content_type="application/x-amz-json-1.1", unmodelled_errors=("ValidationException", "ThrottlingException")))


def expect_error(code, call, **kwargs):
    """Calls and checks that the error parses into the right class."""
    op = sm.meta.method_to_api_mapping.get(call.__name__, call.__name__)
    modelled = {s.name for s in sm.meta.service_model.operation_model(op).error_shapes}
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        if got != code:
            return fail(f"{op}: error {got!r} ({e}), want {code!r}")
        if code in modelled:
            cls = getattr(sm.exceptions, code)
            if type(e) is not cls:
                fail(f"{op}: {code} parsed into {type(e).__name__}, want the modelled {cls.__name__}")
        elif type(e) is not botocore.exceptions.ClientError:
            fail(f"{op}: unmodelled {code} parsed into {type(e).__name__}, want ClientError")
        if not e.response["Error"].get("Message"):
            fail(f"{op}: {code} without a message")
        return e
    fail(f"{op}: succeeded, want {code}")


def wait_for(what, predicate, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.05)
    fail(f"timed out waiting for {what}")
    sys.exit(1)


def steps(arn):
    return sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]


def callback_token(arn, name):
    def find():
        for s in steps(arn):
            if s["StepName"] == name and s["StepStatus"] == "Executing":
                return s["Metadata"]["Callback"]["CallbackToken"]
    return wait_for(f"callback step {name}", find)


def status(arn):
    return sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]


definition = {
    "Version": "2020-12-01",
    "Parameters": [
        {"Name": "Mode", "Type": "String", "DefaultValue": "pass"},
        {"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5},
    ],
    "PipelineExperimentConfig": {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": "Execution.PipelineExecutionId"},
    },
    "Steps": [
        {"Name": "Prepare", "Type": "Processing", "Arguments": {}},
        {"Name": "Approve", "Type": "Callback", "DependsOn": ["Prepare"], "SqsQueueUrl": QUEUE_URL,
         "Arguments": {"mode": {"Get": "Parameters.Mode"}},
         "OutputParameters": [{"OutputName": "score", "OutputType": "Float"}]},
        {"Name": "Notify", "Type": "Lambda", "FunctionArn": LAMBDA,
         "Arguments": {"score": {"Get": "Steps.Approve.OutputParameters['score']"}}},
        {"Name": "Check", "Type": "Condition", "DependsOn": ["Notify"], "Arguments": {
            "Conditions": [{"Type": "Equals", "LeftValue": {"Get": "Parameters.Mode"}, "RightValue": "fail"}],
            "IfSteps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "asked to fail"}}],
            "ElseSteps": [{"Name": "Register", "Type": "RegisterModel", "Arguments": {}}],
        }},
    ],
}
body = json.dumps(definition)

# Pipelines.
sm.create_pipeline(PipelineName="conformance", PipelineDefinition=body, RoleArn=ROLE,
                   PipelineDescription="conformance run", ParallelismConfiguration={"MaxParallelExecutionSteps": 4})
sm.create_pipeline(PipelineName="conformance-spare", PipelineDefinition=body, RoleArn=ROLE)
expect_error("ValidationException", sm.create_pipeline, PipelineName="conformance", PipelineDefinition=body, RoleArn=ROLE)
expect_error("ValidationException", sm.create_pipeline, PipelineName="bad", RoleArn=ROLE,
             PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": [{"Name": "a b", "Type": "Processing"}]}))
sm.describe_pipeline(PipelineName="conformance")
expect_error("ResourceNotFound", sm.describe_pipeline, PipelineName="missing")
sm.update_pipeline(PipelineName="conformance", PipelineDefinition=body, PipelineDisplayName="conformance-v2")
expect_error("ResourceNotFound", sm.update_pipeline, PipelineName="missing", PipelineDefinition=body)
listed = sm.list_pipelines(PipelineNamePrefix="conformance", SortBy="Name", SortOrder="Ascending", MaxResults=1)
if not listed.get("NextToken"):
    fail("ListPipelines: no NextToken with MaxResults 1 and two pipelines")
sm.list_pipelines(NextToken=listed["NextToken"], PipelineNamePrefix="conformance", SortBy="Name", SortOrder="Ascending", MaxResults=1)

# An execution run to the end: callback answered with an output that the
# Lambda step reads, then the condition takes the else branch.
run = sm.start_pipeline_execution(PipelineName="conformance", PipelineExecutionDisplayName="run-1",
                                  PipelineParameters=[{"Name": "Threshold", "Value": "0.7"}])["PipelineExecutionArn"]
expect_error("ValidationException", sm.start_pipeline_execution, PipelineName="conformance",
             PipelineParameters=[{"Name": "Undeclared", "Value": "x"}])
expect_error("ResourceNotFound", sm.start_pipeline_execution, PipelineName="missing")
token = callback_token(run, "Approve")
sm.send_pipeline_execution_step_success(CallbackToken=token, OutputParameters=[{"Name": "score", "Value": "0.9"}],
                                        ClientRequestToken="a" * 32)
expect_error("ConflictException", sm.send_pipeline_execution_step_failure, CallbackToken=token, FailureReason="late")
expect_error("ResourceNotFound", sm.send_pipeline_execution_step_success, CallbackToken="ZZZZZZZZZZ")
expect_error("ValidationException", sm.send_pipeline_execution_step_success, CallbackToken="short")
wait_for("run to succeed", lambda: status(run) == "Succeeded")
sm.describe_pipeline_execution(PipelineExecutionArn=run)
sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=run)
sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=run)
sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=run, MaxResults=1)
page = sm.list_pipeline_execution_steps(PipelineExecutionArn=run, MaxResults=2, SortOrder="Ascending")
sm.list_pipeline_execution_steps(PipelineExecutionArn=run, MaxResults=2, SortOrder="Ascending", NextToken=page["NextToken"])
expect_error("ResourceNotFound", sm.describe_pipeline_execution,
             PipelineExecutionArn=run.replace("/execution/", "/execution/x"))
expect_error("ResourceNotFound", sm.describe_pipeline_definition_for_execution,
             PipelineExecutionArn=run.replace("/execution/", "/execution/x"))
expect_error("ResourceNotFound", sm.list_pipeline_parameters_for_execution,
             PipelineExecutionArn=run.replace("/execution/", "/execution/x"))
expect_error("ValidationException", sm.describe_pipeline_execution, PipelineExecutionArn="not-an-arn")

# An execution stopped while its callback step waits.
held = sm.start_pipeline_execution(PipelineName="conformance")["PipelineExecutionArn"]
token = callback_token(held, "Approve")
sm.stop_pipeline_execution(PipelineExecutionArn=held, ClientRequestToken="s" * 32)
sm.stop_pipeline_execution(PipelineExecutionArn=held, ClientRequestToken="s" * 32)
expect_error("ConflictException", sm.delete_pipeline, PipelineName="conformance", ClientRequestToken="d" * 32)
sm.send_pipeline_execution_step_success(CallbackToken=token)
wait_for("held to stop", lambda: status(held) == "Stopped")
expect_error("ValidationException", sm.stop_pipeline_execution, PipelineExecutionArn=held, ClientRequestToken="t" * 32)
expect_error("ResourceNotFound", sm.stop_pipeline_execution,
             PipelineExecutionArn=held.replace("/execution/", "/execution/x"), ClientRequestToken="t" * 32)

# A failed execution (the Fail step) retried under the same ARN.
failing = sm.start_pipeline_execution(PipelineName="conformance",
                                      PipelineParameters=[{"Name": "Mode", "Value": "fail"}])["PipelineExecutionArn"]
sm.send_pipeline_execution_step_success(CallbackToken=callback_token(failing, "Approve"),
                                        OutputParameters=[{"Name": "score", "Value": "0.1"}])
wait_for("failing to fail", lambda: status(failing) == "Failed")
sm.list_pipeline_executions(PipelineName="conformance")
sm.list_pipeline_executions(PipelineName="conformance", SortBy="PipelineExecutionArn", SortOrder="Ascending", MaxResults=1)
sm.list_pipeline_execution_steps(PipelineExecutionArn=failing)
sm.retry_pipeline_execution(PipelineExecutionArn=failing, ClientRequestToken="r" * 32)
if status(failing) not in ("Executing", "Failed"):
    fail(f"retried execution is {status(failing)}")
expect_error("ValidationException", sm.retry_pipeline_execution, PipelineExecutionArn=run, ClientRequestToken="q" * 32)
expect_error("ResourceNotFound", sm.retry_pipeline_execution,
             PipelineExecutionArn=run.replace("/execution/", "/execution/x"), ClientRequestToken="q" * 32)
expect_error("ResourceNotFound", sm.list_pipeline_executions, PipelineName="missing")

# Deletion.
sm.delete_pipeline(PipelineName="conformance-spare", ClientRequestToken="e" * 32)
expect_error("ResourceNotFound", sm.delete_pipeline, PipelineName="conformance-spare", ClientRequestToken="f" * 32)

check_served(SERVED)
unserved = sorted(called - SERVED)
if SERVED and unserved:
    fail(f"operations called that the emulator does not serve: {unserved}")
finish(f"{len(called)} operations, {botomodel.checks} shape checks")
