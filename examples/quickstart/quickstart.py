"""The README's emulator quickstart with boto3: stop an execution of
pipeline.json that a callback step and a Lambda step hold.

    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
        python3 examples/quickstart/quickstart.py http://127.0.0.1:4599

boto3 (like the AWS CLI v1) reads the Region from AWS_DEFAULT_REGION, not
AWS_REGION. It prints one line per step and exits 0 when the execution
ended Stopped.
"""

import json
import os
import sys
import time
import uuid

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))
DEADLINE = time.monotonic() + 60


def until(what, probe):
    """Poll probe() every 0.1 s until it returns a true value or the deadline passes."""
    while time.monotonic() < DEADLINE:
        got = probe()
        if got:
            return got
        time.sleep(0.1)
    sys.exit("quickstart: timed out waiting for " + what)


def main():
    endpoint = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:4599"
    sm = boto3.client("sagemaker", endpoint_url=endpoint)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    print("region", sm.meta.region_name)

    queue = sqs.create_queue(QueueName="model-approvals")["QueueUrl"]
    with open(os.path.join(HERE, "pipeline.json")) as f:
        definition = f.read()
    name = "quickstart-" + uuid.uuid4().hex[:8]
    sm.create_pipeline(PipelineName=name, PipelineDefinition=definition,
                       RoleArn="arn:aws:iam::123456789012:role/quickstart")
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    listed = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    print("started", arn, "listed", len(listed))

    def step(step_name):
        for s in sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]:
            if s["StepName"] == step_name:
                return s
        return None

    until("the callback step to run", lambda: (step("Approve") or {}).get("StepStatus") == "Executing")
    sm.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=uuid.uuid4().hex)
    print("stop sent:", sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"])

    def stopping_message():
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for m in got.get("Messages", []):
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            body = json.loads(m["Body"])
            if body.get("pipelineExecutionArn") == arn and body.get("status") == "Stopping":
                return body
        return None

    body = until("the Stopping message", stopping_message)
    sm.send_pipeline_execution_step_success(CallbackToken=body["token"],
                                            OutputParameters=[{"Name": "verdict", "Value": "stopped"}])
    print("answered the callback step's Stopping message")

    status = until("a terminal status", lambda: (lambda s: s if s not in ("Executing", "Stopping") else None)(
        sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]))
    print("final status", status)
    return 0 if status == "Stopped" else 1


if __name__ == "__main__":
    sys.exit(main())
