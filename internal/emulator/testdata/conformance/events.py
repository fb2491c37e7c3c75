"""EventBridge conformance: drive every EventBridge operation the emulator
serves through boto3/botocore ("events"), check every raw response against
botocore's service model (members, types, enums, lengths, ranges, patterns,
required members) and check that each error parses into the modelled
exception class. Then check that a SageMaker status-change event delivered
to a queue by a rule has the envelope EventBridge documents.

Run by TestConformanceEvents (conformance_events_test.go) with the
emulator's endpoint in PIPELINESTOP_ENDPOINT. Exit status 0 on success;
every problem is printed on its own line starting with "FAIL".
"""

import json
import os
import re
import time

import boto3
import botocore.config

from botomodel import answer_hook, called, check_served, error_checker, fail, finish

ENDPOINT = os.environ["PIPELINESTOP_ENDPOINT"]
SERVED = set(filter(None, os.environ.get("PIPELINESTOP_EVENTS_OPERATIONS", "").split(",")))
EXECUTION_ARN = os.environ.get("PIPELINESTOP_EXECUTION_ARN", "")


def client(service):
    c = boto3.client(
        service, endpoint_url=ENDPOINT, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    if service == "events":
        # EventBridge's error shapes model no members: botocore reads
        # "message" generically, so it is checked as a string.
        c.meta.events.register("after-call.events", answer_hook(generic_members=("message",)))
    return c


events = client("events")
sqs = client("sqs")
expect_error = error_checker(events)

PATTERN = json.dumps({
    "source": ["aws.sagemaker"],
    "detail-type": ["SageMaker Model Building Pipeline Execution Status Change",
                    "SageMaker Model Building Pipeline Execution Step Status Change"],
    "resources": [{"prefix": "arn:aws:sagemaker:"}],
})

# Rules.
arn = events.put_rule(Name="conf-rule", EventPattern=PATTERN, State="ENABLED", Description="conformance")["RuleArn"]
events.put_rule(Name="conf-rule", EventPattern=PATTERN)
events.put_rule(Name="conf-other", EventPattern=json.dumps({"source": [{"prefix": "aws."}]}), EventBusName="default")
d = events.describe_rule(Name="conf-rule")
if d["Arn"] != arn or d["EventPattern"] != PATTERN or d["State"] != "ENABLED":
    fail(f"describe_rule: {d}")
events.describe_rule(Name="conf-rule", EventBusName="default")
page = events.list_rules(Limit=1)
if len(page["Rules"]) != 1 or "NextToken" not in page:
    fail(f"list_rules Limit=1: {page}")
events.list_rules(Limit=1, NextToken=page["NextToken"])
events.list_rules(NamePrefix="conf-")
expect_error("ResourceNotFoundException", events.describe_rule, Name="missing")
expect_error("InvalidEventPatternException", events.put_rule, Name="bad", EventPattern='{"source": "not a list"}')
expect_error("ResourceNotFoundException", events.put_rule, Name="bad", EventPattern=PATTERN, EventBusName="custom")

# Targets.
queue = sqs.create_queue(QueueName="conf-events")["QueueUrl"]
queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                   "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": arn}}}]})})
out = events.put_targets(Rule="conf-rule", Targets=[{"Id": "queue", "Arn": queue_arn}])
if out["FailedEntryCount"] != 0:
    fail(f"put_targets: {out}")
events.put_targets(Rule="conf-other", Targets=[{"Id": "a", "Arn": queue_arn, "Input": "{}"}, {"Id": "b", "Arn": queue_arn}])
lt = events.list_targets_by_rule(Rule="conf-other", Limit=1)
if len(lt["Targets"]) != 1 or "NextToken" not in lt:
    fail(f"list_targets_by_rule Limit=1: {lt}")
events.list_targets_by_rule(Rule="conf-other", Limit=1, NextToken=lt["NextToken"])
events.list_targets_by_rule(Rule="conf-rule")
expect_error("ResourceNotFoundException", events.put_targets, Rule="missing", Targets=[{"Id": "q", "Arn": queue_arn}])
expect_error("ResourceNotFoundException", events.list_targets_by_rule, Rule="missing")
expect_error("LimitExceededException", events.put_targets, Rule="conf-other",
             Targets=[{"Id": f"t{i}", "Arn": queue_arn} for i in range(5)])
expect_error("ValidationException", events.delete_rule, Name="conf-other")
out = events.remove_targets(Rule="conf-other", Ids=["a", "b"])
if out["FailedEntryCount"] != 0:
    fail(f"remove_targets: {out}")
expect_error("ResourceNotFoundException", events.remove_targets, Rule="missing", Ids=["a"])
events.delete_rule(Name="conf-other")
events.delete_rule(Name="conf-other")  # deleting again succeeds

# A SageMaker event, as the rule delivers it: the Go test stops an
# execution once the rule exists (it waits for the marker file).
if EXECUTION_ARN:
    marker = os.environ["PIPELINESTOP_MARKER"]
    with open(marker, "w") as f:
        f.write("rule ready")
    got = []
    deadline = time.time() + 30
    while time.time() < deadline and not any(
            e["detail"].get("currentPipelineExecutionStatus") == "Stopped" for e in got):
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    if not got:
        fail("no event reached the queue")
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
    for e in got:
        for key in ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"):
            if key not in e:
                fail(f"event without {key}: {e}")
        if e["version"] != "0" or e["source"] != "aws.sagemaker" or e["account"] != "123456789012" or e["region"] != "us-east-1":
            fail(f"envelope: {e}")
        if not re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", e["id"]) or not iso.match(e["time"]):
            fail(f"id or time: {e['id']} {e['time']}")
        if len(e["resources"]) != 2 or e["resources"][1] != EXECUTION_ARN or not EXECUTION_ARN.startswith(e["resources"][0] + "/"):
            fail(f"resources: {e['resources']}")
        det = e["detail"]
        if e["detail-type"] == "SageMaker Model Building Pipeline Execution Status Change":
            need = ("pipelineArn", "pipelineExecutionArn", "pipelineExecutionDisplayName", "currentPipelineExecutionStatus",
                    "previousPipelineExecutionStatus", "executionStartTime")
            if det.get("currentPipelineExecutionStatus") == "Stopped":
                need += ("executionEndTime",)
        else:
            need = ("pipelineArn", "pipelineExecutionArn", "stepName", "stepType", "currentStepStatus", "previousStepStatus",
                    "stepStartTime")
        for key in need:
            if key not in det:
                fail(f"{e['detail-type']} detail without {key}: {det}")
        for key in ("executionStartTime", "executionEndTime", "stepStartTime", "stepEndTime"):
            if key in det and not iso.match(det[key]):
                fail(f"{key} {det[key]!r} is not ISO 8601 UTC")
    print(f"conformance: {len(got)} SageMaker events checked", flush=True)

events.remove_targets(Rule="conf-rule", Ids=["queue"])
events.delete_rule(Name="conf-rule")

check_served(SERVED)
finish(f"conformance: {len(called)} EventBridge operations checked")
