"""Helpers for the job custom resource's tests: events from the fixtures, the handler driven as
the Provider framework drives it, the job record, real GSM8K data in the RFT format, and the
work-arounds for moto's Bedrock gaps."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lambda_loader import SHARED_DATA, LambdaContext, load_handler

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cfn"
ACCOUNT = "123456789012"


def fixture_event(backend: str) -> dict[str, Any]:
    """The CloudFormation Create event of ``tests/fixtures/cfn/job-create-<backend>.json``."""
    path = FIXTURES / f"job-create-{backend}.json"
    event: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return event


def update_event(previous: dict[str, Any], physical_id: str, **changes: Any) -> dict[str, Any]:
    """An Update of the resource ``previous`` describes, with some properties changed."""
    old = copy.deepcopy(previous["ResourceProperties"])
    new = {**copy.deepcopy(old), **changes}
    return {
        **copy.deepcopy(previous),
        "RequestType": "Update",
        "RequestId": f"update-{len(json.dumps(changes))}",
        "PhysicalResourceId": physical_id,
        "ResourceProperties": new,
        "OldResourceProperties": old,
    }


def delete_event(previous: dict[str, Any], physical_id: str) -> dict[str, Any]:
    """A Delete of ``physical_id`` carrying ``previous``'s properties."""
    event = {
        **copy.deepcopy(previous),
        "RequestType": "Delete",
        "PhysicalResourceId": physical_id,
    }
    event.pop("OldResourceProperties", None)
    return event


class Stack:
    """The event's stack in moto, whose status the test moves as CloudFormation would
    (the handler reads it with DescribeStacks to tell a rollback from a deletion)."""

    def __init__(self, event: dict[str, Any], status: str = "CREATE_IN_PROGRESS") -> None:
        import boto3

        region = event["StackId"].split(":")[3]
        name = event["StackId"].split("/")[1]
        cloudformation = boto3.client("cloudformation", region_name=region)
        template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
        stack_id = cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))[
            "StackId"
        ]
        event["StackId"] = stack_id
        self.region = region
        self.stack_id = stack_id
        self.status = status

    @property
    def status(self) -> str:
        """The stack's current status."""
        return str(self._model().status)

    @status.setter
    def status(self, value: str) -> None:
        self._model().status = value

    def _model(self) -> Any:
        from moto.backends import get_backend

        return get_backend("cloudformation")[ACCOUNT][self.region].stacks[self.stack_id]


def generated_id(event: dict[str, Any]) -> str:
    """A physical id as CloudFormation makes one up for a resource whose Create it cancelled
    (the stack name, the logical id and a random suffix)."""
    name = event["StackId"].split("/")[1]
    return f"{name}-{event['LogicalResourceId']}-1XQ4Z8RT0K2MB"


def hyperparameters(event: dict[str, Any]) -> dict[str, Any]:
    """The event's hyperparameters, decoded."""
    value: dict[str, Any] = json.loads(event["ResourceProperties"]["Hyperparameters"])
    return value


def with_hyperparameter(event: dict[str, Any], name: str, value: Any) -> str:
    """The ``Hyperparameters`` property of ``event`` with one value changed."""
    return json.dumps({**hyperparameters(event), name: value}, sort_keys=True)


def event_identity(event: dict[str, Any]) -> Any:
    """The job identity (``rft_job.identity.Identity``) the handler derives from ``event``."""
    job_modules()
    from rft_job.identity import identity_of
    from rft_job.spec import parse_spec

    return identity_of(parse_spec(event["ResourceProperties"]))


def _context() -> LambdaContext:
    """A fresh invocation of the job handler (10-minute timeout)."""
    return LambdaContext("BedrockRft-staging-JobHandler", remaining_ms=600_000)


def on_event(event: dict[str, Any]) -> dict[str, Any]:
    """The handler's ``on_event`` for ``event``, as the Provider framework calls it."""
    result: dict[str, Any] = job_modules().on_event(event, _context())
    return result


def is_complete(event: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The handler's ``is_complete`` for ``event`` after ``on_event`` answered ``response``."""
    result: dict[str, Any] = job_modules().is_complete({**event, **response}, _context())
    return result


def deploy(event: dict[str, Any], polls: int = 5) -> dict[str, Any]:
    """``on_event`` then ``is_complete`` until complete (at most ``polls`` times): the final
    response, its ``Data`` merged with what ``is_complete`` added."""
    response = on_event(event)
    for _ in range(polls):
        done = is_complete(event, response)
        if done["IsComplete"]:
            return {**response, "Data": {**response.get("Data", {}), **done.get("Data", {})}}
    raise AssertionError(f"not complete after {polls} polls")


def job_record(region: str, parameter: str) -> dict[str, Any] | None:
    """The job record in SSM parameter ``parameter`` (inside a moto mock), or None."""
    import boto3

    ssm = boto3.client("ssm", region_name=region)
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    parsed: dict[str, Any] = json.loads(value)
    return parsed


def gsm8k_records(count: int, *, offset: int = 0) -> list[dict[str, Any]]:
    """``count`` real GSM8K problems in the RFT JSONL format (messages + reference answer)."""
    records: list[dict[str, Any]] = []
    with (SHARED_DATA / "gsm8k" / "train.jsonl").open(encoding="utf-8") as source:
        for index, line in enumerate(source):
            if index < offset:
                continue
            if len(records) == count:
                break
            item = json.loads(line)
            final = item["answer"].rsplit("####", 1)[-1].strip()
            records.append(
                {
                    "messages": [
                        {
                            "role": "system",
                            "content": "Solve the problem. End with '#### <number>'.",
                        },
                        {"role": "user", "content": item["question"]},
                    ],
                    "reference_answer": {"final_answer": final},
                }
            )
    return records


def jsonl(records: list[dict[str, Any]]) -> bytes:
    """Records as JSON Lines."""
    return "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")


def stage_dataset(
    event: dict[str, Any],
    train: bytes | None = None,
    validation: bytes | None = None,
) -> None:
    """Put the dataset at the event's S3 URIs (inside a moto mock)."""
    import boto3

    props = event["ResourceProperties"]
    region = props["Region"]
    s3 = boto3.client("s3", region_name=region)
    for uri, body in (
        (props["TrainingDataUri"], train if train is not None else jsonl(gsm8k_records(120))),
        (
            props.get("ValidationDataUri"),
            validation if validation is not None else jsonl(gsm8k_records(20, offset=500)),
        ),
    ):
        if not uri:
            continue
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            if region == "us-east-1":
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(
                    Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
                )
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def job_modules() -> Any:
    """The job handler module (loads ``lambda/job`` and its ``rft_job`` package)."""
    return load_handler("job")


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and a clean client cache, so nothing can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    job_modules()
    from rft_job import aws

    aws.client.cache_clear()
    yield
    aws.client.cache_clear()


def moto_job_names(client: Any) -> None:
    """Work around moto's Bedrock looking jobs up by name only.

    The real service accepts a job's ARN or name; the handler uses the ARN (its physical
    id). moto's ARNs end in the job name, so the name is the ARN's last segment.
    """

    def by_name(params: dict[str, Any], **_: Any) -> None:
        identifier = params.get("jobIdentifier")
        if isinstance(identifier, str) and identifier.startswith("arn:"):
            params["jobIdentifier"] = identifier.rsplit("/", 1)[-1]

    for operation in ("GetModelCustomizationJob", "StopModelCustomizationJob"):
        client.meta.events.register(f"before-parameter-build.bedrock.{operation}", by_name)


def moto_jobs(region: str) -> dict[str, Any]:
    """moto's customization jobs in ``region``, by name (to inspect or change their state)."""
    from moto.backends import get_backend

    jobs: dict[str, Any] = get_backend("bedrock")[ACCOUNT][region].model_customization_jobs
    return jobs
