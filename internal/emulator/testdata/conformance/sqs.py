"""SQS conformance: drive every SQS operation the emulator serves through
boto3/botocore, check every raw response against botocore's service model
(members, types, enums, lengths, ranges, patterns, required members) and
check that each error parses into the modelled exception class.

Run by TestConformanceSQS (conformance_sqs_test.go) with the emulator's
endpoint in PIPELINESTOP_ENDPOINT. Exit status 0 on success; every problem
is printed on its own line starting with "FAIL".
"""

import json
import os

import boto3
import botocore.config

from botomodel import answer_hook, called, check_served, error_checker, finish

ENDPOINT = os.environ["PIPELINESTOP_ENDPOINT"]
SERVED = set(filter(None, os.environ.get("PIPELINESTOP_SQS_OPERATIONS", "").split(",")))

def client():
    c = boto3.client(
        "sqs", endpoint_url=ENDPOINT, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    c.meta.events.register("after-call.sqs", answer_hook())
    return c


sqs = client()
expect_error = error_checker(sqs, require_message=False)

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

check_served(SERVED)
finish(f"conformance: {len(called)} SQS operations checked")
