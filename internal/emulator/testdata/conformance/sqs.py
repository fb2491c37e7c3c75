"""SQS conformance: drive every SQS operation the emulator serves through
boto3/botocore, check every raw response against botocore's service model
(members, types, enums, lengths, ranges, patterns, required members) and
check that each error parses into the modelled exception class.

Run by TestConformanceSQS (conformance_sqs_test.go) with the emulator's
endpoint in PIPELINESTOP_ENDPOINT. Exit status 0 on success; every problem
is printed on its own line starting with "FAIL".
"""

import base64
import json
import os
import re
import sys

import boto3
import botocore.config
import botocore.exceptions

ENDPOINT = os.environ["PIPELINESTOP_ENDPOINT"]
SERVED = set(filter(None, os.environ.get("PIPELINESTOP_SQS_OPERATIONS", "").split(",")))

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
            rest = {k: v for k, v in body.items() if k != "__type"}
            check(shapes[shape_name], rest, f"{model.name} error {shape_name}")
        return
    if model.output_shape is None:
        if body not in ({}, None):
            fail(f"{model.name}: answer {body!r}; the model has no output")
        return
    check(model.output_shape, body, model.name)


def client():
    c = boto3.client(
        "sqs", endpoint_url=ENDPOINT, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    c.meta.events.register("after-call.sqs", on_after_call)
    return c


def expect_error(exc_name, fn, *args, **kwargs):
    """Calls fn and checks that it raises the modelled exception exc_name
    (or, for codes the model does not define, a ClientError with that code)."""
    try:
        fn(*args, **kwargs)
    except botocore.exceptions.ClientError as err:
        cls = getattr(sqs.exceptions, exc_name, None)
        if cls is not None and not isinstance(err, cls):
            fail(f"{fn.__name__}: raised {type(err).__name__} ({err}); want the modelled {exc_name}")
        if cls is None and err.response["Error"]["Code"] != exc_name:
            fail(f"{fn.__name__}: error code {err.response['Error']['Code']}; want {exc_name}")
        return err
    fail(f"{fn.__name__}: no error; want {exc_name}")


sqs = client()

# Queues.
dlq = sqs.create_queue(QueueName="conf-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
url = sqs.create_queue(QueueName="conf-main", tags={"team": "ml"}, Attributes={
    "VisibilityTimeout": "30", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})["QueueUrl"]
sqs.get_queue_url(QueueName="conf-main")
sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
sqs.get_queue_attributes(QueueUrl=url)
sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "0", "MaximumMessageSize": "1048576"})
sqs.list_queues()
sqs.list_queues(QueueNamePrefix="conf-", MaxResults=1)
sqs.list_queues(QueueNamePrefix="nothing-matches")
sqs.list_dead_letter_source_queues(QueueUrl=dlq)
sqs.tag_queue(QueueUrl=url, Tags={"env": "test"})
sqs.untag_queue(QueueUrl=url, TagKeys=["env"])
sqs.list_queue_tags(QueueUrl=url)
sqs.list_queue_tags(QueueUrl=dlq)

# Messages.
sqs.send_message(QueueUrl=url, MessageBody="hello", MessageAttributes={
    "s": {"DataType": "String", "StringValue": "v"},
    "n": {"DataType": "Number", "StringValue": "1.5"},
    "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
}, MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793"}})
sqs.send_message_batch(QueueUrl=url, Entries=[
    {"Id": "a", "MessageBody": "one"},
    {"Id": "b", "MessageBody": "two", "DelaySeconds": 0},
    {"Id": "bad", "MessageBody": "x", "MessageAttributes": {"AWS.reserved": {"DataType": "String", "StringValue": "v"}}},
])
got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                          MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])["Messages"]
sqs.receive_message(QueueUrl=dlq)  # empty
handles = [m["ReceiptHandle"] for m in got]
sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handles[0], VisibilityTimeout=60)
sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
    {"Id": "ok", "ReceiptHandle": handles[0], "VisibilityTimeout": 60},
    {"Id": "bad", "ReceiptHandle": "not-a-handle", "VisibilityTimeout": 60},
])
sqs.delete_message(QueueUrl=url, ReceiptHandle=handles[0])
sqs.delete_message(QueueUrl=url, ReceiptHandle=handles[0])  # again: succeeds
sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": f"e{i}", "ReceiptHandle": h} for i, h in enumerate(handles[1:])] +
                         [{"Id": "bad", "ReceiptHandle": "not-a-handle"}])
sqs.purge_queue(QueueUrl=dlq)

# Modelled errors parse into their exception classes.
missing = url.rsplit("/", 1)[0] + "/no-such-queue"
expect_error("QueueDoesNotExist", sqs.get_queue_url, QueueName="no-such-queue")
expect_error("QueueDoesNotExist", sqs.send_message, QueueUrl=missing, MessageBody="x")
expect_error("QueueDoesNotExist", sqs.receive_message, QueueUrl=missing)
expect_error("QueueDoesNotExist", sqs.delete_queue, QueueUrl=missing)
expect_error("QueueNameExists", sqs.create_queue, QueueName="conf-main", Attributes={"VisibilityTimeout": "31"})
expect_error("UnsupportedOperation", sqs.create_queue, QueueName="conf.fifo", Attributes={"FifoQueue": "true"})
expect_error("InvalidAttributeName", sqs.create_queue, QueueName="conf-x", Attributes={"Frobnication": "1"})
expect_error("InvalidAttributeName", sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["FifoQueue", "Frobnication"])
expect_error("InvalidAttributeValue", sqs.set_queue_attributes, QueueUrl=url, Attributes={"VisibilityTimeout": "43201"})
expect_error("InvalidAttributeValue", sqs.set_queue_attributes, QueueUrl=url, Attributes={"RedrivePolicy": '{"maxReceiveCount": 1}'})
expect_error("ReceiptHandleIsInvalid", sqs.delete_message, QueueUrl=url, ReceiptHandle="not-a-handle")
expect_error("ReceiptHandleIsInvalid", sqs.change_message_visibility, QueueUrl=url, ReceiptHandle="not-a-handle", VisibilityTimeout=1)
expect_error("EmptyBatchRequest", sqs.delete_message_batch, QueueUrl=url, Entries=[])
expect_error("TooManyEntriesInBatchRequest", sqs.send_message_batch, QueueUrl=url,
             Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(11)])
expect_error("BatchEntryIdsNotDistinct", sqs.send_message_batch, QueueUrl=url,
             Entries=[{"Id": "same", "MessageBody": "x"}, {"Id": "same", "MessageBody": "y"}])
expect_error("InvalidBatchEntryId", sqs.send_message_batch, QueueUrl=url, Entries=[{"Id": "has space", "MessageBody": "x"}])
expect_error("BatchRequestTooLong", sqs.send_message_batch, QueueUrl=url,
             Entries=[{"Id": str(i), "MessageBody": "x" * 600_000} for i in range(2)])
expect_error("InvalidMessageContents", sqs.send_message, QueueUrl=url, MessageBody="bad \x01 byte")
expect_error("PurgeQueueInProgress", sqs.purge_queue, QueueUrl=dlq)
sqs.send_message(QueueUrl=dlq, MessageBody="x")
m = sqs.receive_message(QueueUrl=dlq)["Messages"][0]
sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
expect_error("MessageNotInflight", sqs.change_message_visibility, QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=5)
sqs.delete_queue(QueueUrl=url)
expect_error("QueueDeletedRecently", sqs.create_queue, QueueName="conf-main")
# Errors the model does not define: a ClientError with the code.
expect_error("InvalidParameterValue", sqs.receive_message, QueueUrl=dlq, MaxNumberOfMessages=11)
expect_error("InvalidParameterValue", sqs.send_message, QueueUrl=dlq, MessageBody="x" * (1 << 20 | 1))

if SERVED:
    for op in sorted(SERVED - called):
        fail(f"operation {op} is served but the conformance script never called it")
print(f"conformance: {len(called)} SQS operations checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
