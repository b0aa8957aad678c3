"""``make prune-versions``: old reward versions are deleted only when nothing may call them.

AWS is moto (CloudFormation outputs, Lambda versions and aliases, SSM records, S3 summaries,
Step Functions executions); the native backend's jobs come through botocore's Stubber (moto
keeps no ``customizationConfig``); the OpenAI-compatible jobs through the real SDK against the
local test server.
"""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.prune_versions import Clients, PruneError, aws_clients, main, run
from stacks.config import EnvironmentConfig
from tests.conftest import fake_credentials, write_fixture_cdk_json
from tests.lambda_loader import ROOT
from tests.openai_server import OpenAIServer

ACCOUNT = "123456789012"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return []\n")
    return buffer.getvalue()


class Deployed:
    """An environment's deployed stack in moto: the reward function with published versions,
    the stack's outputs, and the records."""

    def __init__(self, config: EnvironmentConfig, versions: int) -> None:
        import boto3

        self.config = config
        region = config.region
        self.lambda_ = boto3.client("lambda", region_name=region)
        self.ssm = boto3.client("ssm", region_name=region)
        self.s3 = boto3.client("s3", region_name=region)
        self.sfn = boto3.client("stepfunctions", region_name=region)
        iam = boto3.client("iam", region_name=region)
        role = iam.create_role(
            RoleName="reward",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        self.name = f"{config.stack_name}-RewardFunction-Ab12"
        self.function = self.lambda_.create_function(
            FunctionName=self.name,
            Runtime="python3.13",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": _zip()},
        )["FunctionArn"]
        for number in range(1, versions + 1):
            memory = 128 * number  # a new configuration, as a memory-only deploy makes
            self.lambda_.update_function_configuration(FunctionName=self.name, MemorySize=memory)
            self.lambda_.publish_version(FunctionName=self.name)
        self.state_machine = self.sfn.create_state_machine(
            name=f"{config.stack_name}-Evaluation",
            definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
            roleArn=role,
        )["stateMachineArn"]
        self.stack(versions)

    def arn(self, version: int) -> str:
        return f"{self.function}:{version}"

    def stack(self, current: int) -> None:
        import boto3

        template = {
            "Resources": {
                "Marker": {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": {"Name": "/marker", "Type": "String", "Value": "deployed"},
                }
            },
            "Outputs": {
                "RewardFunctionVersionArn": {"Value": self.arn(current)},
                "EvaluationStateMachine": {"Value": self.state_machine},
                "ModelParameter": {"Value": f"/bedrock-rft/{self.config.name}/model"},
            },
        }
        cloudformation = boto3.client("cloudformation", region_name=self.config.region)
        cloudformation.create_stack(
            StackName=self.config.stack_name, TemplateBody=json.dumps(template)
        )

    def job_record(self, version: int, job_id: str = "job-now") -> None:
        record = {"job_id": job_id, "status": "running", "reward_function_arn": self.arn(version)}
        self.ssm.put_parameter(
            Name=f"/bedrock-rft/{self.config.name}/job", Value=json.dumps(record), Type="String"
        )

    def promoted(self, version: int | None, job_id: str = "job-before") -> None:
        bucket = "artifacts"
        self.s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.config.region}
        )
        key = f"evaluations/{job_id}/summary.json"
        sources = {"reward_function_arn": self.arn(version)} if version else {}
        self.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({"sources": sources}).encode())
        record = {"model_id": "ft:x", "job_id": job_id, "summary_uri": f"s3://{bucket}/{key}"}
        self.ssm.put_parameter(
            Name=f"/bedrock-rft/{self.config.name}/model", Value=json.dumps(record), Type="String"
        )

    def versions(self) -> list[str]:
        found = self.lambda_.list_versions_by_function(FunctionName=self.name)["Versions"]
        return [v["Version"] for v in found]


@pytest.fixture
def cdk_json(tmp_path: Path) -> Path:
    return write_fixture_cdk_json(tmp_path)


def _config(cdk_json: Path, name: str) -> EnvironmentConfig:
    from scripts.prune_versions import environment

    return environment(name, cdk_json)


@pytest.fixture
def staging(
    cdk_json: Path, monkeypatch: pytest.MonkeyPatch, openai_server: OpenAIServer
) -> Iterator[Deployed]:
    from moto import mock_aws

    config = _config(cdk_json, "staging")
    assert config.backend == "openai"
    fake_credentials(monkeypatch, config.region)
    with mock_aws():
        yield Deployed(config, versions=6)


def _active_job(server: OpenAIServer, function: str | None, status: str = "running") -> str:
    job = server.fine_tuning.add_job(status=status)
    if function is not None:
        grader = {"type": "lambda", "lambda": {"function": function}}
        job["method"] = {"type": "reinforcement", "reinforcement": {"grader": grader}}
    return str(job["id"])


def test_dry_run_lists_what_it_would_delete_and_why_each_kept_version_is_kept(
    staging: Deployed, cdk_json: Path, openai_server: OpenAIServer
) -> None:
    staging.job_record(4)
    staging.promoted(2)
    active = _active_job(openai_server, staging.arn(5))
    _active_job(openai_server, staging.arn(1), status="succeeded")  # no longer calls it
    staging.lambda_.create_alias(FunctionName=staging.name, Name="pinned", FunctionVersion="3")

    lines = run("staging", False, cdk_json)
    assert lines[0] == f"prune-versions staging: {staging.name} has 6 published version(s) " + (
        "($LATEST is never deleted)"
    )
    assert lines[1:] == [
        "  keep 2: the promoted model's evaluation (/bedrock-rft/staging/model, job "
        "job-before) graded with it",
        "  keep 3: alias pinned points to it",
        "  keep 4: the job record /bedrock-rft/staging/job (job job-now) grades with it",
        f"  keep 5: active job {active} grades with it",
        "  keep 6: the stack's current version (output RewardFunctionVersionArn)",
        "  would delete (dry run; APPLY=1 deletes): 1 (named by no record, alias or active job)",
    ]
    assert staging.versions() == ["$LATEST", "1", "2", "3", "4", "5", "6"]

    lines = run("staging", True, cdk_json)
    assert lines[-1] == "  deleted: 1 (named by no record, alias or active job)"
    assert staging.versions() == ["$LATEST", "2", "3", "4", "5", "6"]
    assert run("staging", True, cdk_json)[-1] == (
        "  nothing to delete: every version is named by a record"
    )


def test_without_records_only_the_current_version_stays(staging: Deployed, cdk_json: Path) -> None:
    run("staging", True, cdk_json)
    assert staging.versions() == ["$LATEST", "6"]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("evaluation", "evaluation job-x is running"),
        ("hidden grader", "the service does not show its grader"),
        ("summary without version", "names no sources.reward_function_arn"),
        ("summary missing", "(NoSuchKey)"),
    ],
)
def test_nothing_is_deleted_while_a_use_cannot_be_ruled_out(
    staging: Deployed, cdk_json: Path, openai_server: OpenAIServer, setup: str, reason: str
) -> None:
    if setup == "evaluation":
        staging.sfn.start_execution(stateMachineArn=staging.state_machine, name="job-x")
    elif setup == "hidden grader":
        _active_job(openai_server, None)
    elif setup == "summary without version":
        staging.promoted(None)
    else:
        staging.promoted(2)
        staging.s3.delete_object(Bucket="artifacts", Key="evaluations/job-before/summary.json")
    lines = run("staging", True, cdk_json)
    assert any(line.startswith("  nothing is deleted: ") and reason in line for line in lines)
    assert staging.versions() == ["$LATEST", "1", "2", "3", "4", "5", "6"]


def test_native_jobs_keep_the_version_their_grader_names(
    cdk_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from botocore.stub import Stubber
    from moto import mock_aws

    config = _config(cdk_json, "nova-dev")
    assert config.backend == "bedrock"
    fake_credentials(monkeypatch, config.region)
    bedrock = boto3.client("bedrock", region_name=config.region)
    stubber = Stubber(bedrock)
    job = f"arn:aws:bedrock:{config.region}:{ACCOUNT}:model-customization-job/nova/abc123"
    with mock_aws():
        deployed = Deployed(config, versions=3)
        summary = {
            "jobArn": job,
            "baseModelArn": f"arn:aws:bedrock:{config.region}::foundation-model/nova",
            "jobName": "rft-nova-dev-1",
            "status": "InProgress",
            "creationTime": "2026-12-01T00:00:00Z",
        }
        stubber.add_response(
            "list_model_customization_jobs",
            {"modelCustomizationJobSummaries": [summary]},
            {"statusEquals": "InProgress"},
        )
        stubber.add_response(
            "get_model_customization_job",
            {
                "jobArn": job,
                "jobName": "rft-nova-dev-1",
                "outputModelName": "rft-nova-dev-1",
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/service",
                "creationTime": "2026-12-01T00:00:00Z",
                "baseModelArn": summary["baseModelArn"],
                "trainingDataConfig": {"s3Uri": "s3://datasets/train.jsonl"},
                "validationDataConfig": {"validators": []},
                "outputDataConfig": {"s3Uri": "s3://artifacts/output/"},
                "customizationConfig": {
                    "rftConfig": {"graderConfig": {"lambdaGrader": {"lambdaArn": deployed.arn(1)}}}
                },
            },
            {"jobIdentifier": job},
        )
        stubber.add_response(
            "list_model_customization_jobs",
            {"modelCustomizationJobSummaries": []},
            {"statusEquals": "Stopping"},
        )

        def clients(found: EnvironmentConfig) -> Clients:
            real = aws_clients(found)
            real.bedrock = bedrock
            return real

        with stubber:
            lines = run("nova-dev", True, cdk_json, clients)
        stubber.assert_no_pending_responses()
        assert f"  keep 1: active job {job} grades with it" in lines
        assert lines[-1] == "  deleted: 2 (named by no record, alias or active job)"
        assert deployed.versions() == ["$LATEST", "1", "3"]


def test_bad_input_is_one_line(
    cdk_json: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from moto import mock_aws

    with pytest.raises(PruneError, match=r"^ENV=nope: no such environment in cdk.json; defined"):
        run("nope", False, cdk_json)
    with pytest.raises(PruneError, match=r"^set ENV=<environment> \(defined in cdk.json: dev,"):
        run("", False, cdk_json)
    fake_credentials(monkeypatch, "us-west-2")
    with mock_aws(), pytest.raises(PruneError) as caught:
        run("staging", False, cdk_json)
    assert str(caught.value) == "stack BedrockRft-staging is not deployed here: nothing to prune"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(cdk_json.parent / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(cdk_json.parent / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["--env", "staging", "--cdk-json", str(cdk_json)]) == 2
    error = capsys.readouterr().err
    assert error == (
        "make prune-versions: no AWS credentials found (environment staging, region "
        "us-west-2): run aws configure / set AWS_PROFILE\n"
    )


def test_make_target_is_documented_and_checks_env() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "prune-versions", "ENV=Not_An_Env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[0].startswith(
        "make prune-versions: ENV=Not_An_Env: no such environment in cdk.json"
    )
    help_text = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "make prune-versions" in help_text and "APPLY=1" in help_text
    docs = (ROOT / "docs" / "fine-tuning-job.md").read_text(encoding="utf-8")
    assert "make prune-versions ENV=" in docs
