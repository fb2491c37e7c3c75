"""Drives the emulator's Lambda API with boto3: event source mappings and
function configuration, the way a user's script would. Exits non-zero on
the first difference."""
import json
import os
import sys

import boto3

endpoint = os.environ["PIPELINESTOP_ENDPOINT"]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
lam = boto3.client("lambda", **kw)
sqs = boto3.client("sqs", **kw)


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


sqs.create_queue(QueueName="boto")
arn = "arn:aws:sqs:us-east-1:123456789012:boto"
m = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn", BatchSize=4,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])
check(m["ResponseMetadata"]["HTTPStatusCode"] == 202 and m["State"] == "Creating", "create answers 202 Creating")
check(m["BatchSize"] == 4 and m["FunctionResponseTypes"] == ["ReportBatchItemFailures"], "create echoes the settings")
check(hasattr(m["LastModified"], "year"), "LastModified parses as a timestamp")
uuid = m["UUID"]
got = lam.get_event_source_mapping(UUID=uuid)
check(got["EventSourceArn"] == arn and got["FunctionArn"].endswith(":function:fn"), "get")
pages = list(lam.get_paginator("list_event_source_mappings").paginate(FunctionName="fn", PaginationConfig={"PageSize": 1}))
check(sum(len(p["EventSourceMappings"]) for p in pages) == 1, "list by function, paginated")
up = lam.update_event_source_mapping(UUID=uuid, BatchSize=2)
check(up["BatchSize"] == 2, "update")
try:
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn")
    check(False, "a duplicate mapping is refused")
except lam.exceptions.ResourceConflictException:
    check(True, "a duplicate mapping is ResourceConflictException")
try:
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fn", BatchSize=50)
    check(False, "BatchSize 50 without a window is refused")
except lam.exceptions.InvalidParameterValueException:
    check(True, "BatchSize 50 without a window is InvalidParameterValueException")
cfg = lam.get_function_configuration(FunctionName="fn")
check(cfg["Timeout"] == 3 and cfg["FunctionName"] == "fn" and cfg["State"] == "Active", "get_function_configuration")
out = lam.invoke(FunctionName="fn", Payload=json.dumps({"x": 1}).encode())
check(out["StatusCode"] == 200 and json.loads(out["Payload"].read()) == {"x": 1} and "FunctionError" not in out, "invoke")
d = lam.delete_event_source_mapping(UUID=uuid)
check(d["State"] == "Deleting", "delete answers Deleting")
try:
    lam.get_event_source_mapping(UUID=uuid)
    check(False, "get after delete fails")
except lam.exceptions.ResourceNotFoundException:
    check(True, "get after delete is ResourceNotFoundException")
try:
    lam.get_function_configuration(FunctionName="nope")
    check(False, "an unknown function fails")
except lam.exceptions.ResourceNotFoundException:
    check(True, "an unknown function is ResourceNotFoundException")
