"""``make samples``: the rollouts the reward handler kept, read back from S3 (moto) and from a
local folder; filters; the page; one line for every user error."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from scripts import samples
from tests.conftest import fake_credentials, write_fixture_cdk_json
from tests.lambda_loader import ROOT, LambdaContext
from tests.reward_support import GRADERS, load_reward, rollout

REGION = "us-west-2"
BUCKET = "artifacts"
URI = f"s3://{BUCKET}/rollouts/dev"
VERSION_ARN = "arn:aws:lambda:us-west-2:123456789012:function:test-function:7"


@pytest.fixture
def cdk_json(tmp_path: Path) -> Path:
    return write_fixture_cdk_json(tmp_path)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto with the artifacts bucket and a batch kept by the real reward handler."""
    fake_credentials(monkeypatch, REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        monkeypatch.setenv("ROLLOUT_SAMPLES_URI", URI)
        monkeypatch.setenv("ROLLOUT_SAMPLE_RATE", "1")
        module = load_reward(monkeypatch, GRADERS / "gsm8k.json", environment="dev")
        event = [
            rollout("right", "6 * 7 = 42\n#### 42", "42", prompt="6 * 7?"),
            rollout("wrong", "#### 41", "42", prompt="6 * 7?"),
            rollout("silent", "I would rather not say.", "42", prompt="6 * 7?"),
            {"id": "broken"},
        ]
        module.handler(event, LambdaContext(request_id="batch-one"))
        yield s3


def _args(cdk_json: Path, out_dir: Path, **values: str) -> list[str]:
    argv = ["--env", values.pop("env", "dev"), "--cdk-json", str(cdk_json)]
    argv += ["--out-dir", str(out_dir)]
    for name, value in values.items():
        argv += [f"--{name.replace('_', '-')}", value]
    return argv


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[list[str], Path]:
    assert samples.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    return lines, Path(lines[-1])


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        samples.main(argv)
    message = str(caught.value.code)
    assert "\n" not in message and message.startswith("samples: ")
    return message


def test_reads_the_batch_the_handler_kept_from_the_stack_output(
    aws: Any, cdk_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"RolloutSamplesUri": {"Value": URI}},
    }
    cloudformation.create_stack(StackName="BedrockRft-dev", TemplateBody=json.dumps(template))
    lines, page = _run(capsys, _args(cdk_json, tmp_path / "reports"))
    text = "\n".join(lines)
    assert lines[0].startswith(f"4 rollouts from 1 batches of {URI} since ")
    for sample_id in ("right", "wrong", "silent", "broken"):
        assert f"id {sample_id} " in text
    assert "why: no answer found" in text
    assert "why: grader error: rollout [3]" in text
    assert "6 * 7 = 42 #### 42" in text  # the response, on one line
    assert page.parent == tmp_path / "reports" and page.suffix == ".html"
    content = page.read_text()
    assert content.startswith("<!DOCTYPE html>") and "<script" not in content
    assert "http" not in content.replace("http-equiv", "")  # nothing fetched from elsewhere
    assert "6 * 7 = 42\n#### 42" in content


def test_filters_by_score_grep_and_limit(
    aws: Any, cdk_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _args(cdk_json, tmp_path, source=URI)
    lines, _ = _run(capsys, [*base, "--min-score", "1"])
    assert lines[0].startswith("1 rollouts") and "id right " in "\n".join(lines)
    lines, _ = _run(capsys, [*base, "--max-score", "0", "--grep", "RATHER"])
    assert lines[0].startswith("1 rollouts") and "id silent " in "\n".join(lines)
    lines, _ = _run(capsys, [*base, "--limit", "2"])
    assert lines[0].startswith("2 rollouts")
    lines, _ = _run(capsys, [*base, "--grep", "nothing like this"])
    assert "(no rollout samples match)" in lines


def test_since_skips_older_hours_without_reading_them(
    aws: Any, cdk_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = {"id": "old", "score": 1.0, "time": "2020-01-01T00:00:00+00:00", "response": "x"}
    body = gzip.compress((json.dumps(old) + "\n").encode())
    aws.put_object(Bucket=BUCKET, Key="rollouts/dev/2020-01-01/00/b.jsonl.gz", Body=body)
    lines, _ = _run(capsys, _args(cdk_json, tmp_path, source=URI, since="2h"))
    assert lines[0].startswith("4 rollouts from 1 batches")
    lines, _ = _run(capsys, _args(cdk_json, tmp_path, source=URI, since="2020-01-01T01:00"))
    assert "id old " not in "\n".join(lines)
    lines, _ = _run(capsys, _args(cdk_json, tmp_path, source=URI, since="2019-12-31"))
    assert lines[0].startswith("5 rollouts from 2 batches") and "id old " in "\n".join(lines)
    assert lines[-2].endswith("why: graded")  # the oldest batch comes last


def test_job_keeps_the_samples_of_the_version_it_grades_with(
    aws: Any, cdk_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    record = {"job_id": "ftjob-1", "backend": "openai", "reward_function_arn": VERSION_ARN}
    ssm.put_parameter(Name="/bedrock-rft/dev/job", Value=json.dumps(record), Type="String")
    lines, _ = _run(capsys, _args(cdk_json, tmp_path, source=URI, job="ftjob-1"))
    assert lines[0].startswith("0 rollouts")  # the batch was graded by $LATEST, not version 7
    record["reward_function_arn"] = "arn:aws:lambda:us-west-2:123456789012:function:test-function"
    ssm.put_parameter(
        Name="/bedrock-rft/dev/job", Value=json.dumps(record), Type="String", Overwrite=True
    )
    lines, _ = _run(capsys, _args(cdk_json, tmp_path, source=URI, job="ftjob-1"))
    assert lines[0].startswith("4 rollouts")
    message = _error(capsys, _args(cdk_json, tmp_path, source=URI, job="ftjob-0"))
    assert "not the current job of dev (ftjob-1)" in message


def test_a_local_folder_needs_no_aws(
    aws: Any,
    cdk_json: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [key] = [o["Key"] for o in aws.list_objects_v2(Bucket=BUCKET)["Contents"]]
    local = tmp_path / "copy" / key
    local.parent.mkdir(parents=True)
    local.write_bytes(aws.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    first, page = _run(capsys, _args(cdk_json, tmp_path / "r", source=str(tmp_path / "copy")))
    again, same = _run(capsys, _args(cdk_json, tmp_path / "r", source=str(tmp_path / "copy")))
    assert first[0].startswith("4 rollouts") and first == again and page == same


def test_the_stack_must_be_deployed(
    aws: Any, cdk_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = _error(capsys, _args(cdk_json, tmp_path))
    assert "stack BedrockRft-dev is not deployed in us-west-2" in message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"env": ""}, "set ENV=<environment>"),
        ({"env": "nope"}, "ENV=nope: no such environment"),
        ({"limit": "ten"}, "LIMIT=ten: must be a positive integer"),
        ({"limit": "0"}, "LIMIT=0: must be a positive integer"),
        ({"min_score": "high"}, "MIN_SCORE=high: not a number"),
        ({"max_score": "1.5"}, "MAX_SCORE=1.5: must be between 0 and 1"),
        ({"min_score": "0.8", "max_score": "0.2"}, "MIN_SCORE=0.8 is above MAX_SCORE=0.2"),
        ({"since": "yesterday"}, "SINCE=yesterday: not a time"),
        ({"grep": "(unclosed"}, "GREP=(unclosed: not a regular expression"),
        ({"source": "/no/such/folder"}, "SOURCE=/no/such/folder: no such folder"),
    ],
)
def test_bad_input_is_one_line(
    cdk_json: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    values: dict[str, str],
    expected: str,
) -> None:
    assert expected in _error(capsys, _args(cdk_json, tmp_path, **values))


def test_without_credentials_one_line_and_no_traceback(cdk_json: Path, tmp_path: Path) -> None:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key in ("AWS_REGION", "AWS_DEFAULT_REGION")
    }
    environ.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "samples.py"), *_args(cdk_json, tmp_path)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("samples: no AWS credentials found (region us-west-2)")


def test_since_forms() -> None:
    now = datetime(2026, 12, 6, 12, 30, tzinfo=UTC)
    assert samples.parse_since("", now) == datetime(2026, 12, 5, 12, 30, tzinfo=UTC)
    assert samples.parse_since("90m", now) == datetime(2026, 12, 6, 11, 0, tzinfo=UTC)
    assert samples.parse_since("2d", now) == datetime(2026, 12, 4, 12, 30, tzinfo=UTC)
    assert samples.parse_since("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert samples.parse_since("2026-12-01T10:00+02:00", now) == datetime(
        2026, 12, 1, 8, tzinfo=UTC
    )


def test_a_local_run_keeps_samples_in_a_folder_make_samples_reads(
    monkeypatch: pytest.MonkeyPatch,
    cdk_json: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``ROLLOUT_SAMPLES_URI=file:///<folder>`` (a demo without AWS), read by SOURCE=."""
    folder = tmp_path / "rollouts"
    monkeypatch.setenv("ROLLOUT_SAMPLES_URI", f"file://{folder}")
    monkeypatch.setenv("ROLLOUT_SAMPLE_RATE", "1")
    module = load_reward(monkeypatch, GRADERS / "gsm8k.json", environment="dev")
    module.handler([rollout("local", "#### 4", "4", prompt="2 + 2?")], LambdaContext())
    capsys.readouterr()  # the handler's own EMF records and logs
    [stored] = list(folder.rglob("*.jsonl.gz"))
    assert stored.relative_to(folder).parts[0] == datetime.now(UTC).strftime("%Y-%m-%d")
    lines, _ = _run(capsys, _args(cdk_json, tmp_path / "r", source=str(folder)))
    assert lines[0].startswith("1 rollouts") and "id local " in "\n".join(lines)
