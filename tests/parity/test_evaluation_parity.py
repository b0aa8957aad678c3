"""The evaluation report bundle on CPython 3.13: the aggregation (numpy, matplotlib, boto3 and
the evaluation's rft_eval from the bundle) merges a worker's part from S3 (a local moto
server) into the same summary and the same report bytes as the development interpreter's run
of the same sources."""

from __future__ import annotations

import json

import boto3

from tests.eval_support import JOB_ID, context, ensure_paths
from tests.parity.test_runtime_parity import (
    FAKE_CREDENTIALS,
    moto_endpoint,  # noqa: F401 (fixture)
    run_bundle,
)

ensure_paths()

from rft_eval.outputs import render  # noqa: E402
from rft_eval.records import Record, to_jsonl  # noqa: E402
from rft_eval.settings import parse_context  # noqa: E402


def _records() -> list[Record]:
    found = []
    for index in range(24):
        pid = f"q{index:03d}"
        found.append(Record(pid, "base", "base", 0, "a", float(index % 2 == 0), {"acc": 1.0}))
        found.append(Record(pid, "tuned", "tuned", 0, "b", float(index % 5 != 0), {}))
    return found


def test_the_aggregation_gives_the_same_summary_and_report(moto_endpoint: str) -> None:  # noqa: F811
    raw = context(settings={"bootstrap_resamples": 1000})
    ctx = parse_context(raw)
    s3 = boto3.client(
        "s3",
        region_name="us-west-2",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in (ctx.artifacts.bucket, ctx.validation.bucket):
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
    records = _records()
    rows = [{"id": f"q{index:03d}", "messages": []} for index in range(26)]  # 2 never done
    validation = "".join(json.dumps(row) + "\n" for row in rows).encode()
    s3.put_object(Bucket=ctx.validation.bucket, Key=ctx.validation.key, Body=validation)
    part = ctx.key("records/part-parity.jsonl")
    s3.put_object(Bucket=ctx.artifacts.bucket, Key=part, Body=to_jsonl(records).encode())
    environment = {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "POWERTOOLS_SERVICE_NAME": "evaluation",
    }
    event = {**raw, "map": [{"part": part}]}
    answer = run_bundle("evaluation_report", event, environment, "aggregate")
    assert "error" not in answer, answer
    summary = answer["result"]
    assert summary.pop("summary_uri") == f"s3://{ctx.artifacts.bucket}/{ctx.key('summary.json')}"
    assert summary["job_id"] == JOB_ID and summary["n_prompts"] == 24
    assert summary["missing_prompts"] == 2
    expected = render(summary, records)
    for name in ("summary.json", "records.jsonl", "report.md", "report.png"):
        stored = s3.get_object(Bucket=ctx.artifacts.bucket, Key=ctx.key(name))["Body"].read()
        assert stored == expected[name], name
