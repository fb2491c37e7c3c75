"""Regions conformance: boto3 clients of several Regions and partitions
against one emulator. Each Region keeps its own pipelines and queues (the
Region of the request's signature), ARNs are in the Region's partition and
pass botocore's model patterns, and another Region's execution or queue is
answered with the operation's modelled not-found error.

Run by TestConformanceRegions (conformance_regions_test.go) with
PIPELINESTOP_ENDPOINT (the emulator). Exit status 0 on success; every
problem is printed on its own line starting "FAIL".
"""

import json
import os

import boto3
import botocore.config

import botomodel
from botomodel import answer_hook, error_checker, fail, finish

ENDPOINT = os.environ["PIPELINESTOP_ENDPOINT"]
ROLE = "arn:aws:iam::123456789012:role/conformance"
REGIONS = {"us-east-1": "aws", "eu-west-1": "aws", "cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov",
           "us-iso-east-1": "aws-iso", "us-isob-east-1": "aws-iso-b"}
DEFINITION = json.dumps({"Version": "2020-12-01", "Steps": [{"Name": "Work", "Type": "Processing", "Arguments": {}}]})


_clients = {}
_session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test")


def client(service, region):
    """Returns the client of service in region, made once (loading a
    service model is slow)."""
    if (service, region) in _clients:
        return _clients[service, region]
    c = _session.client(service, region_name=region, endpoint_url=ENDPOINT,
                        config=botocore.config.Config(retries={"max_attempts": 1}))
    c.meta.events.register(f"after-call.{service}", answer_hook())
    _clients[service, region] = c
    return c


executions, queues = {}, {}
for region, partition in REGIONS.items():
    sm = client("sagemaker", region)
    sm.create_pipeline(PipelineName="train", PipelineDefinition=DEFINITION, RoleArn=ROLE, ClientRequestToken="c" * 32)
    arn = sm.start_pipeline_execution(PipelineName="train", ClientRequestToken="s" * 32)["PipelineExecutionArn"]
    want = f"arn:{partition}:sagemaker:{region}:123456789012:pipeline/train/execution/"
    if not arn.startswith(want):
        fail(f"{region}: execution ARN {arn}, want prefix {want}")
    executions[region] = arn
    pipelines = sm.list_pipelines()["PipelineSummaries"]
    if [p["PipelineArn"] for p in pipelines] != [arn.split("/execution/")[0]]:
        fail(f"{region}: ListPipelines {pipelines}, want this Region's pipeline only")
    sqs = client("sqs", region)
    url = sqs.create_queue(QueueName="callbacks")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if queue_arn != f"arn:{partition}:sqs:{region}:123456789012:callbacks":
        fail(f"{region}: QueueArn {queue_arn}")
    queues[region] = url

# Another Region's execution and queue are not found, with the modelled
# error classes.
for region in REGIONS:
    other = "eu-west-1" if region != "eu-west-1" else "us-east-1"
    sm, sqs = client("sagemaker", region), client("sqs", region)
    error_checker(sm)("ResourceNotFound", sm.describe_pipeline_execution, PipelineExecutionArn=executions[other])
    error_checker(sm)("ResourceNotFound", sm.stop_pipeline_execution,
                      PipelineExecutionArn=executions[other], ClientRequestToken="t" * 32)
    error_checker(sqs, require_message=False)("QueueDoesNotExist", sqs.send_message, QueueUrl=queues[other], MessageBody="x")
    sm.stop_pipeline_execution(PipelineExecutionArn=executions[region], ClientRequestToken="t" * 32)
    status = sm.describe_pipeline_execution(PipelineExecutionArn=executions[region])["PipelineExecutionStatus"]
    if status not in ("Stopping", "Stopped"):
        fail(f"{region}: status after stop {status}")

finish(f"{len(REGIONS)} Regions, {botomodel.checks} shape checks")
