"""Rollout samples and training-signal health: the reward handler against S3 in moto.

What the handler keeps (every graded rollout at rate 1, the grader errors always), where
(one gzipped JSON Lines object per batch), what it publishes (the health metrics in EMF), and
that nothing about sampling can cost a batch its scores.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import fake_credentials
from tests.lambda_loader import LambdaContext
from tests.reward_support import GRADERS, emf_records, load_reward, log_records, rollout, scores

BUCKET = "artifacts-bucket"
PREFIX = "rollouts/test"
REGION = "us-west-2"
REQUEST_ID = "7f1c6a52-0d1e-4c1b-9a43-1e0f0b8b2d11"
LOOP = "Let me check again. " * 200


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto S3 with the artifacts bucket, fake credentials in the function's region."""
    fake_credentials(monkeypatch, REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield client


def _load(monkeypatch: pytest.MonkeyPatch, rate: str, uri: str = f"s3://{BUCKET}/{PREFIX}") -> Any:
    monkeypatch.setenv("ROLLOUT_SAMPLES_URI", uri)
    monkeypatch.setenv("ROLLOUT_SAMPLE_RATE", rate)
    return load_reward(monkeypatch, GRADERS / "gsm8k.json", environment="test")


def _batch() -> list[Any]:
    """Two prompts of two rollouts each (one split, one all right), a looping response, a
    response with no answer and a rollout that cannot be parsed."""
    return [
        rollout("a1", "3 + 4 = 7\n#### 7", "7", prompt="3 + 4?"),
        rollout("a2", "#### 8", "7", prompt="3 + 4?"),
        rollout("b1", "#### 12", "12", prompt="6 * 2?"),
        rollout("b2", "The answer is 12.", "12", prompt="6 * 2?"),
        rollout("c1", LOOP + " #### 5", "5", prompt="2 + 3?"),
        rollout("d1", "I cannot tell.", "9", prompt="4 + 5?"),
        {"id": "broken", "messages": "not a list"},
    ]


def _objects(s3: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return found


def _lines(s3: Any, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]


def _health(printed: str) -> dict[str, Any]:
    (record,) = [r for r in emf_records(printed) if "PromptGroups" in r]
    return record


def test_rate_one_keeps_every_rollout_in_one_object_and_publishes_health(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _load(monkeypatch, "1")
    event = _batch()
    capsys.readouterr()
    outputs = module.handler(event, LambdaContext(request_id=REQUEST_ID))
    printed = capsys.readouterr().out

    (stored,) = _objects(s3)  # one PutObject for the batch
    key = stored["Key"]
    assert key.startswith(f"{PREFIX}/") and key.endswith(f"/{REQUEST_ID}.jsonl.gz")
    date, hour = key.split("/")[2:4]
    assert len(date) == 10 and date[4] == "-" and len(hour) == 2
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentEncoding"] == "gzip"
    lines = _lines(s3, key)
    assert [line["id"] for line in lines] == [output["id"] for output in outputs]
    assert [line["score"] for line in lines] == scores(outputs)
    first = lines[0]
    assert first["response"] == "3 + 4 = 7\n#### 7"
    assert first["prompt"] == [{"role": "user", "content": "3 + 4?"}]
    assert first["reference"] == "7"
    assert first["environment"] == "test" and first["grader"] == "gsm8k"
    assert first["batch"] == REQUEST_ID
    assert first["function"].endswith(":function:test-function")
    assert first["error"] is None
    broken = lines[-1]
    assert broken["score"] == 0.0
    assert "messages" in broken["error"]
    assert broken["rollout"] == {"id": "broken", "messages": "not a list"}
    assert lines[4]["repetitive"] is True and lines[0]["repetitive"] is False
    assert lines[5]["unparsed"] is True and lines[1]["unparsed"] is False

    health = _health(printed)
    directive = health["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "BedrockRft/Grader"
    assert directive["Dimensions"] == [["Environment", "Grader"]]
    assert health["PromptGroups"] == [2.0]
    # a: 1 and 0 (a signal); b: 1 and 1 (none)
    assert health["ZeroVarianceShare"] == [0.5]
    assert health["RewardStd"] == [0.25]
    # six responses (the broken rollout has none): one without an answer, one looping
    assert health["UnparsedShare"] == [pytest.approx(1 / 6)]
    assert health["RepetitionShare"] == [pytest.approx(1 / 6)]
    assert health["RolloutSamplesWritten"] == [7.0]
    assert health["RolloutSampleWriteErrors"] == [0.0]
    (lengths,) = [r for r in emf_records(printed) if "ResponseChars" in r]
    chars = sorted(float(len(r["messages"][-1]["content"])) for r in event[:6])
    assert len(lengths["ResponseChars"]) == 21  # the 0th, 5th, ..., 100th percentiles
    assert lengths["ResponseChars"] == sorted(lengths["ResponseChars"])
    assert set(lengths["ResponseChars"]) == set(chars)
    assert (lengths["ResponseChars"][0], lengths["ResponseChars"][-1]) == (chars[0], chars[-1])


def test_a_failing_bucket_costs_the_batch_nothing(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = _load(monkeypatch, "0").handler(_batch(), LambdaContext())
    module = _load(monkeypatch, "1", uri="s3://no-such-bucket/rollouts/test")
    capsys.readouterr()
    outputs = module.handler(_batch(), LambdaContext())
    printed = capsys.readouterr().out
    assert outputs == baseline
    assert _health(printed)["RolloutSampleWriteErrors"] == [1.0]
    assert _health(printed)["RolloutSamplesWritten"] == [0.0]
    warnings = [r for r in log_records(printed) if r["message"] == "rollout samples not written"]
    assert warnings and "NoSuchBucket" in warnings[0]["error"]
    assert "#### 7" not in json.dumps(warnings)  # no rollout text in the logs


def test_rate_zero_writes_nothing_and_publishes_no_sample_counts(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _load(monkeypatch, "0")
    assert module.OBSERVER.writer is None
    capsys.readouterr()
    module.handler(_batch(), LambdaContext())
    health = _health(capsys.readouterr().out)
    assert _objects(s3) == []
    assert "RolloutSampleWriteErrors" not in health
    assert "ZeroVarianceShare" in health  # the health metrics do not depend on sampling


def test_grader_errors_are_always_kept_and_the_draw_is_seeded_by_the_batch(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _load(monkeypatch, "0.2")
    event = [rollout(str(i), f"#### {i}", str(i), prompt=f"p{i}") for i in range(200)]
    event[50] = {"id": "no-messages"}
    event[120] = rollout("no-reference", "#### 1", None)

    def kept(request_id: str) -> list[str]:
        module.handler(event, LambdaContext(request_id=request_id))
        (found,) = [o["Key"] for o in _objects(s3) if request_id in o["Key"]]
        return [line["id"] for line in _lines(s3, found)]

    first = kept("batch-1")
    assert "no-messages" in first and "no-reference" in first
    assert 20 <= len(first) <= 70  # 2 errors + about 20% of 198
    s3.delete_object(Bucket=BUCKET, Key=_objects(s3)[0]["Key"])
    assert kept("batch-1") == first  # same batch, same draw
    assert kept("batch-2") != first


def test_too_little_time_left_skips_the_write_and_counts_it(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _load(monkeypatch, "1")
    capsys.readouterr()
    outputs = module.handler(_batch(), LambdaContext(remaining_ms=10_000))
    assert len(outputs) == 7
    assert _objects(s3) == []
    assert _health(capsys.readouterr().out)["RolloutSampleWriteErrors"] == [1.0]


@pytest.mark.parametrize(
    "case",
    [
        (f"s3://{BUCKET}/x", "lots", "ROLLOUT_SAMPLE_RATE='lots'"),
        (f"s3://{BUCKET}/x", "1.5", "between 0 and 1"),
        ("https://example.com/x", "0.5", "must be s3://"),
        ("file://relative/x", "0.5", "or file:///<folder>"),
    ],
)
def test_a_bad_setting_turns_sampling_off_and_grades_on(
    s3: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, str, str],
) -> None:
    uri, rate, problem = case
    module = _load(monkeypatch, rate, uri=uri)
    assert module.OBSERVER.writer is None
    errors = [r for r in log_records(capsys.readouterr().out) if r["level"] == "ERROR"]
    assert any(problem in r["message"] for r in errors)
    assert scores(module.handler(_batch()[:2], LambdaContext())) == [1.0, 0.0]
