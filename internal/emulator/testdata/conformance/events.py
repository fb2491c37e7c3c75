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

import base64
import json
import os
import re
import sys
import time

import boto3
import botocore.config
import botocore.exceptions

ENDPOINT = os.environ["PIPELINESTOP_ENDPOINT"]
SERVED = set(filter(None, os.environ.get("PIPELINESTOP_EVENTS_OPERATIONS", "").split(",")))
EXECUTION_ARN = os.environ.get("PIPELINESTOP_EXECUTION_ARN", "")

problems = []
called = set()


def fail(msg):
    problems.append(msg)
    print("FAIL", msg, flush=True)


def check(shape, value, path):
    """Checks a raw JSON value against a botocore shape."""
    t = shape.type_name
    m = shape.metadata
    if t == "structure":
        if not isinstance(value, dict):
            return fail(f"{path}: {type(value).__name__}, want an object")
        wire = {mem.serialization.get("name", name): (name, mem) for name, mem in shape.members.items()}
        for key, v in value.items():
            if key not in wire:
                fail(f"{path}: member {key!r} is not in the model ({sorted(wire)})")
                continue
            check(wire[key][1], v, f"{path}.{key}")
        for req in shape.required_members:
            wname = shape.members[req].serialization.get("name", req)
            if wname not in value:
                fail(f"{path}: required member {wname!r} missing")
    elif t == "list":
        if not isinstance(value, list):
            return fail(f"{path}: {type(value).__name__}, want a list")
        if "min" in m and len(value) < m["min"] or "max" in m and len(value) > m["max"]:
            fail(f"{path}: {len(value)} items, want {m.get('min')}..{m.get('max')}")
        for i, v in enumerate(value):
            check(shape.member, v, f"{path}[{i}]")
    elif t == "map":
        if not isinstance(value, dict):
            return fail(f"{path}: {type(value).__name__}, want an object")
        for k, v in value.items():
            check(shape.key, k, f"{path}<key {k!r}>")
            check(shape.value, v, f"{path}[{k!r}]")
    elif t == "string":
        if not isinstance(value, str):
            return fail(f"{path}: {type(value).__name__} {value!r}, want a string")
        if shape.enum and value not in shape.enum:
            fail(f"{path}: {value!r} is not one of {shape.enum}")
        if "min" in m and len(value) < m["min"] or "max" in m and len(value) > m["max"]:
            fail(f"{path}: length {len(value)}, want {m.get('min')}..{m.get('max')}")
        if "pattern" in m and not re.search(m["pattern"], value):
            fail(f"{path}: {value!r} does not match {m['pattern']}")
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            return fail(f"{path}: {value!r}, want an integer")
        if "min" in m and value < m["min"] or "max" in m and value > m["max"]:
            fail(f"{path}: {value}, want {m.get('min')}..{m.get('max')}")
    elif t == "boolean":
        if not isinstance(value, bool):
            fail(f"{path}: {value!r}, want a boolean")
    elif t == "blob":
        try:
            base64.b64decode(value, validate=True)
        except Exception:
            fail(f"{path}: {value!r} is not base64")
    elif t == "timestamp":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            fail(f"{path}: {value!r}, want epoch seconds")
    elif t in ("double", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            fail(f"{path}: {value!r}, want a number")
    else:
        fail(f"{path}: unchecked shape type {t}")


def on_after_call(http_response, parsed, model, **_):
    """Checks every raw answer, success or error, against the model."""
    called.add(model.name)
    raw = http_response.content
    body = json.loads(raw) if raw else {}
    if http_response.status_code >= 300:
        code = body.get("__type", "")
        shape_name = code.rsplit("#", 1)[-1]
        shapes = {s.name: s for s in model.error_shapes}
        if shape_name in shapes:
            # EventBridge's error shapes model no members: botocore reads
            # "message" generically, so it is checked as a string here.
            rest = {k: v for k, v in body.items() if k not in ("__type", "message")}
            if not isinstance(body.get("message"), str):
                fail(f"{model.name} error {shape_name}: no string member 'message' in {body!r}")
            check(shapes[shape_name], rest, f"{model.name} error {shape_name}")
        return
    if model.output_shape is None:
        if body not in ({}, None):
            fail(f"{model.name}: answer {body!r}; the model has no output")
        return
    check(model.output_shape, body, model.name)


def client(service):
    c = boto3.client(
        service, endpoint_url=ENDPOINT, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    if service == "events":
        c.meta.events.register("after-call.events", on_after_call)
    return c


def expect_error(exc_name, fn, *args, **kwargs):
    """Calls fn and checks that it raises the modelled exception exc_name
    (or, for codes the model does not define, a ClientError with that code)."""
    try:
        fn(*args, **kwargs)
    except botocore.exceptions.ClientError as err:
        cls = getattr(events.exceptions, exc_name, None)
        if cls is not None and not isinstance(err, cls):
            fail(f"{fn.__name__}: raised {type(err).__name__} ({err}); want the modelled {exc_name}")
        if cls is None and err.response["Error"]["Code"] != exc_name:
            fail(f"{fn.__name__}: error code {err.response['Error']['Code']}; want {exc_name}")
        if not err.response["Error"].get("Message"):
            fail(f"{fn.__name__}: {exc_name} without a message")
        return err
    fail(f"{fn.__name__}: no error; want {exc_name}")


events = client("events")
sqs = client("sqs")

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

if SERVED:
    for op in sorted(SERVED - called):
        fail(f"operation {op} is served but the conformance script never called it")
print(f"conformance: {len(called)} EventBridge operations checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
