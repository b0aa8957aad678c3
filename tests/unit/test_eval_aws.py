"""The evaluation's AWS side: the work and aggregate handlers against moto (S3, SSM, CloudWatch,
SNS + SQS to read it) and the local OpenAI-compatible server; botocore's Stubber for the calls
moto cannot serve (Converse, Lambda Invoke), validated against the real service models."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws

from tests.eval_support import (
    BUCKET,
    JOB_ID,
    REGION,
    REWARD_VERSION_ARN,
    STAGING,
    VALIDATION,
    context,
    ensure_paths,
    local_grader,
    students_server,
    validation_rows,
)
from tests.lambda_loader import LambdaContext, load_handler
from tests.openai_server import OpenAIServer, Students

ensure_paths()

from rft_eval.cloud import aggregate, run_batch  # noqa: E402
from rft_eval.evaluate import evaluate  # noqa: E402
from rft_eval.grading import GradingError, LambdaGrader, grade, rollout  # noqa: E402
from rft_eval.retry import Backoff  # noqa: E402
from rft_eval.sampling import BedrockSampler, OpenAISampler  # noqa: E402
from rft_eval.settings import Settings, parse_context  # noqa: E402

FAST = Backoff(base=0.001, cap=0.01)
PARAMETER = "/bedrock-rft/dev/model"
PREFIX = f"evaluations/{JOB_ID}/"
VALIDATION_KEY = "datasets/abc/validation.jsonl"  # as in tests.eval_support.context


@dataclass
class Aws:
    """moto's clients, and the queue subscribed to the topic."""

    s3: Any
    ssm: Any
    cloudwatch: Any
    sns: Any
    sqs: Any
    topic_arn: str
    queue_url: str

    def messages(self) -> list[dict[str, Any]]:
        """The notifications the topic delivered (subject and message)."""
        found = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in found.get("Messages", [])]

    def parameter(self) -> dict[str, Any] | None:
        try:
            value = self.ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
        except self.ssm.exceptions.ParameterNotFound:
            return None
        parsed: dict[str, Any] = json.loads(value)
        return parsed

    def text(self, key: str) -> str:
        return str(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode())


@pytest.fixture(name="aws")
def aws_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (BUCKET, STAGING):
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        s3.put_object(Bucket=STAGING, Key=VALIDATION_KEY, Body=VALIDATION.read_bytes())
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        topic_arn = sns.create_topic(Name="rft-dev")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"]
        )
        yield Aws(
            s3=s3,
            ssm=boto3.client("ssm", region_name=REGION),
            cloudwatch=boto3.client("cloudwatch", region_name=REGION),
            sns=sns,
            sqs=sqs,
            topic_arn=topic_arn,
            queue_url=queue_url,
        )


def _point_at(monkeypatch: pytest.MonkeyPatch, server: OpenAIServer) -> None:
    for name, value in server.sdk_environment().items():
        monkeypatch.setenv(name, value)


def _evaluate_in_batches(
    aws: Aws, raw: dict[str, Any], rows: list[dict[str, Any]], size: int
) -> list[dict[str, Any]]:
    ctx = parse_context(raw)
    sampler = OpenAISampler(REGION, route=ctx.mantle_route, backoff=FAST)
    return [
        run_batch(ctx, rows[i : i + size], s3=aws.s3, sampler=sampler, grader=local_grader())
        for i in range(0, len(rows), size)
    ]


def test_workers_write_parts_and_the_aggregation_promotes_a_better_model(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = validation_rows(30)
    raw = context(topic_arn=aws.topic_arn, settings={"bootstrap_resamples": 500, "limit": 30})
    with students_server({"base": 0.3, "tuned": 0.9}, rows) as (server, students):
        _point_at(monkeypatch, server)
        outputs = _evaluate_in_batches(aws, raw, rows, 10)
        calls = dict(students.calls)
        # A retried child finds its part and calls no model again.
        again = _evaluate_in_batches(aws, raw, rows[:10], 10)
        assert dict(students.calls) == calls == {"base": 30, "tuned": 30}
    assert again[0] == outputs[0]
    assert [o["prompts"] for o in outputs] == [10, 10, 10]
    assert all(o["part"].startswith(PREFIX + "records/part-") for o in outputs)

    summary = aggregate(
        parse_context(raw), outputs, s3=aws.s3, ssm=aws.ssm, cloudwatch=aws.cloudwatch, sns=aws.sns
    )
    assert summary["n_prompts"] == 30
    assert (summary["base"]["mean_reward"], summary["tuned"]["mean_reward"]) == (0.3, 0.9)
    assert summary["promoted"] is True
    stored = json.loads(aws.text(PREFIX + "summary.json"))
    assert {k: stored[k] for k in ("n_prompts", "wins", "ties", "losses", "promoted")} == {
        k: summary[k] for k in ("n_prompts", "wins", "ties", "losses", "promoted")
    }
    lines = aws.text(PREFIX + "records.jsonl").splitlines()
    assert len(lines) == 60
    keys = [(r["prompt_id"], r["model"]) for r in map(json.loads, lines)]
    assert keys == sorted(keys)
    assert aws.text(PREFIX + "report.md").startswith(f"# Evaluation of {JOB_ID}")
    png = aws.s3.get_object(Bucket=BUCKET, Key=PREFIX + "report.png")
    assert png["ContentType"] == "image/png" and png["Body"].read()[:8] == b"\x89PNG\r\n\x1a\n"

    parameter = aws.parameter()
    assert parameter is not None
    assert parameter["model_id"] == "tuned" and parameter["job_id"] == JOB_ID
    assert parameter["summary_uri"] == f"s3://{BUCKET}/{PREFIX}summary.json"
    assert parameter["difference_mean"] == pytest.approx(0.6)
    assert parameter["ci95"] == summary["difference"]["ci95"] and parameter["backend"] == "openai"

    metrics = aws.cloudwatch.list_metrics(Namespace="BedrockRft/Evaluation")["Metrics"]
    found = {
        (m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])))
        for m in metrics
    }
    assert found == {
        (name, (("Environment", "dev"), ("Model", model)))
        for name in ("EvalRewardMean", "EvalPassRate")
        for model in ("base", "tuned")
    } | {("EvalPromoted", (("Environment", "dev"),))}

    (message,) = aws.messages()
    assert "tuned model promoted" in message["Subject"]
    assert "0.300 (base) vs 0.900 (tuned)" in message["Message"]
    assert "\n" not in message["Message"]


def test_a_model_no_better_is_not_promoted_and_the_parameter_keeps_its_value(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = json.dumps({"model_id": "older", "job_id": "ftjob-older"})
    aws.ssm.put_parameter(Name=PARAMETER, Value=previous, Type="String")
    rows = validation_rows(20)
    raw = context(topic_arn=aws.topic_arn, settings={"limit": 20})
    with students_server({"base": 0.5, "tuned": 0.5}, rows) as (server, _students):
        _point_at(monkeypatch, server)
        _evaluate_in_batches(aws, raw, rows, 7)
    # No Map output (a ResultWriter's manifest instead): the parts are listed.
    summary = aggregate(
        parse_context(raw),
        {"ResultWriterDetails": {}},
        s3=aws.s3,
        ssm=aws.ssm,
        cloudwatch=aws.cloudwatch,
        sns=aws.sns,
    )
    assert summary["n_prompts"] == 20 and summary["promoted"] is False
    assert aws.ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"] == previous
    (message,) = aws.messages()
    assert "NOT promoted" in message["Message"]
    assert summary["promotion_reason"] in message["Message"]
    promoted = aws.cloudwatch.get_metric_statistics(
        Namespace="BedrockRft/Evaluation",
        MetricName="EvalPromoted",
        Dimensions=[{"Name": "Environment", "Value": "dev"}],
        StartTime="2000-01-01T00:00:00Z",
        EndTime="2100-01-01T00:00:00Z",
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [p["Maximum"] for p in promoted] == [0.0]


def test_a_later_job_must_beat_the_promoted_model_on_the_same_prompts(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first job is promoted (0.9 against a base of 0.3); a second one, better than the
    base (0.8) but worse than the promoted model on the same prompts, grader version and
    sampling, is not (rule beats_promoted), and the parameter keeps the first."""
    rows = validation_rows(30)
    settings = {"bootstrap_resamples": 300, "limit": 30}
    first = context(topic_arn=aws.topic_arn, settings=settings)
    with students_server({"base": 0.3, "tuned": 0.9}, rows) as (server, _students):
        _point_at(monkeypatch, server)
        outputs = _evaluate_in_batches(aws, first, rows, 10)
    promoted = aggregate(
        parse_context(first), outputs, s3=aws.s3, ssm=aws.ssm, cloudwatch=aws.cloudwatch, sns=None
    )
    assert promoted["decision"]["rule"] == "ci_above_zero" and promoted["promoted"]
    assert promoted["promoted_model"] is None
    kept = aws.ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    assert json.loads(kept)["evaluation"]["tuned_mean_reward"] == 0.9

    second = context(
        job_id="ftjob-second",
        artifacts={"bucket": BUCKET, "prefix": "evaluations/ftjob-second/"},
        topic_arn=aws.topic_arn,
        settings=settings,
    )
    with students_server({"base": 0.3, "tuned": 0.8}, rows) as (server, _students):
        _point_at(monkeypatch, server)
        outputs = _evaluate_in_batches(aws, second, rows, 10)
    summary = aggregate(
        parse_context(second),
        outputs,
        s3=aws.s3,
        ssm=aws.ssm,
        cloudwatch=aws.cloudwatch,
        sns=aws.sns,
    )
    assert summary["difference"]["ci95"][0] > 0  # better than the base, clearly
    assert summary["promoted_model"]["comparable"] is True
    assert summary["promoted_model"]["job_id"] == JOB_ID
    assert summary["decision"]["rule"] == "beats_promoted" and not summary["promoted"]
    assert aws.ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"] == kept
    stored = json.loads(aws.text("evaluations/ftjob-second/summary.json"))
    assert stored["decision"] == summary["decision"]
    (message,) = aws.messages()
    assert "Gate (rule beats_promoted)" in message["Message"]
    assert "0.8000 against 0.9000 of the promoted model tuned" in message["Message"]
    assert "rule `beats_promoted`" in aws.text("evaluations/ftjob-second/report.md")


class _RewardLambda:
    """A Lambda client whose Invoke runs the reward handler in-process (moto's Lambda needs
    Docker); it checks that the recorded version is invoked and the payload is Bedrock's."""

    def __init__(self) -> None:
        self.grader = local_grader()
        self.invocations = 0

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        assert FunctionName == REWARD_VERSION_ARN
        assert InvocationType == "RequestResponse"
        rollouts = json.loads(Payload)
        assert isinstance(rollouts, list) and {"id", "messages", "metadata"} <= set(rollouts[0])
        self.invocations += 1
        answer = json.dumps(self.grader(rollouts)).encode()
        return {"StatusCode": 200, "Payload": io.BytesIO(answer)}


def test_the_handlers_work_and_aggregate(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = validation_rows(8)
    raw = context(settings={"bootstrap_resamples": 100, "limit": 8})
    reward = _RewardLambda()
    real_client = boto3.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        return reward if service == "lambda" else real_client(service, *args, **kwargs)

    monkeypatch.setattr(boto3, "client", client)
    handler = load_handler("evaluation")
    with students_server({"base": 0.25, "tuned": 0.75}, rows) as (server, _students):
        _point_at(monkeypatch, server)
        outputs = [
            # The worker's 15 minutes: model calls (300 s read timeout) end before one grader
            # call (the reward function's 300 s) and the part's write.
            handler.work(
                {"Items": rows[i : i + 4], "BatchInput": raw},
                LambdaContext(remaining_ms=900_000),
            )
            for i in (0, 4)
        ]
    assert reward.invocations == 2  # one batch of 8 rollouts per child
    assert [o["failed_prompts"] for o in outputs] == [0, 0]
    # The aggregation is the report function's (its own bundle, issue 21).
    report = load_handler("evaluation_report")
    summary = report.aggregate({**raw, "map": outputs}, LambdaContext())
    assert summary["base"]["mean_reward"] == 0.25 and summary["tuned"]["mean_reward"] == 0.75
    assert summary["summary_uri"] == f"s3://{BUCKET}/{PREFIX}summary.json"
    assert json.loads(json.dumps(summary)) == summary  # the state's output is JSON


def test_a_worker_without_time_for_a_call_and_a_grading_calls_nothing(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 + 60 s left: a model call (60 s) could not end before a grader call (the reward
    function's 300 s + 5 s) and the write (30 s) must start; no call starts, every sample is
    recorded as failed, and the worker returns."""
    rows = validation_rows(4)
    raw = context(settings={"bootstrap_resamples": 100, "limit": 4})
    reward = _RewardLambda()
    real_client = boto3.client
    monkeypatch.setattr(
        boto3,
        "client",
        lambda service, *a, **k: reward if service == "lambda" else real_client(service, *a, **k),
    )
    monkeypatch.setenv("REQUEST_TIMEOUT_SECONDS", "60")
    monkeypatch.setenv("REWARD_TIMEOUT_SECONDS", "300")
    handler = load_handler("evaluation")
    with students_server({"base": 1.0, "tuned": 1.0}, rows) as (server, students):
        _point_at(monkeypatch, server)
        result = handler.work(
            {"Items": rows, "BatchInput": raw}, LambdaContext(remaining_ms=360_000)
        )
        assert students.calls == {} and reward.invocations == 0
        # With a minute more, the calls fit and are made.
        more = handler.work(
            {"Items": validation_rows(5)[4:], "BatchInput": raw},
            LambdaContext(remaining_ms=420_000),
        )
        assert dict(students.calls) == {"base": 1, "tuned": 1} and reward.invocations == 1
    assert result["failed_prompts"] == 4 and more["failed_prompts"] == 0
    assert aws.text(result["part"]).count("the worker's time ran out") == 8


def test_the_grader_client_waits_for_the_reward_function_and_does_not_retry() -> None:
    from rft_eval.cloud import worker_deadlines
    from rft_eval.grading import lambda_client

    client = lambda_client(REGION, 300)
    assert client.meta.config.read_timeout == 305
    assert client.meta.config.retries["total_max_attempts"] == 1
    deadlines = worker_deadlines(900, request_timeout=120, reward_timeout=300, now=0.0)
    assert deadlines.grading == 870 and deadlines.sampling == 870 - 305
    assert deadlines.last_call_start == 870 - 305 - 120


def test_a_batch_that_never_finished_is_counted_as_missing(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = validation_rows(30)
    raw = context(settings={"bootstrap_resamples": 100, "limit": 30})
    with students_server({"base": 0.0, "tuned": 1.0}, rows) as (server, _students):
        _point_at(monkeypatch, server)
        outputs = _evaluate_in_batches(aws, raw, rows[:20], 10)  # the third child failed
    summary = aggregate(
        parse_context(raw), outputs, s3=aws.s3, ssm=aws.ssm, cloudwatch=aws.cloudwatch, sns=None
    )
    assert summary["n_prompts"] == 20
    assert summary["excluded_prompts"] == summary["missing_prompts"] == 10
    assert summary["excluded_prompt_ids"] == [row["id"] for row in rows[20:]]
    assert "10 of them were never evaluated" in aws.text(PREFIX + "report.md")


def test_a_worker_out_of_time_records_its_calls_as_failed(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = validation_rows(4)
    ctx = parse_context(context())
    with students_server({"base": 1.0, "tuned": 1.0}, rows) as (server, students):
        _point_at(monkeypatch, server)
        sampler = OpenAISampler(REGION, route="/v1", backoff=FAST)
        result = run_batch(
            ctx, rows, s3=aws.s3, sampler=sampler, grader=local_grader(), deadline=0.0
        )
    assert students.calls == {} and result["failed_prompts"] == 4
    part = aws.text(result["part"])
    assert part.count("the worker's time ran out") == 8


def test_a_worker_that_may_not_list_the_bucket_reads_a_403_as_no_part_yet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = validation_rows(2)
    ctx = parse_context(context())
    s3 = boto3.client(
        "s3", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(s3) as stub, students_server({"base": 1.0, "tuned": 1.0}, rows) as (server, _):
        _point_at(monkeypatch, server)
        stub.add_client_error(
            "get_object",
            "AccessDenied",
            http_status_code=403,
            expected_params={"Bucket": BUCKET, "Key": ANY},
        )
        stub.add_response(
            "put_object",
            {},
            {"Bucket": BUCKET, "Key": ANY, "Body": ANY, "ContentType": "application/x-ndjson"},
        )
        sampler = OpenAISampler(REGION, route="/v1", backoff=FAST)
        result = run_batch(ctx, rows, s3=s3, sampler=sampler, grader=local_grader())
        stub.assert_no_pending_responses()
    assert result["prompts"] == 2 and result["failed_prompts"] == 0


def test_a_bad_context_fails_the_worker_before_any_call(aws: Aws) -> None:
    handler = load_handler("evaluation")
    event = {"Items": [], "BatchInput": context(backend="sagemaker")}
    with pytest.raises(ValueError, match="backend = 'sagemaker'"):
        handler.work(event, LambdaContext())


def _converse_answer(text: str) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
        "metrics": {"latencyMs": 12},
    }


def test_the_bedrock_backend_calls_converse_and_waits_when_throttled() -> None:
    rows = validation_rows(2)
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    models = {
        "base": "us.amazon.nova-2-lite-v1:0",
        "tuned": "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abc123def456",
    }
    settings = Settings(max_tokens=512, temperature=0.0, bootstrap_resamples=100)
    answers = {row["id"]: str(row["reference_answer"]["final_answer"]) for row in rows}
    waits: list[float] = []
    sampler = BedrockSampler(client, backoff=Backoff(sleep=waits.append))
    with Stubber(client) as stub:
        for row in rows:
            for model in ("base", "tuned"):
                expected = {
                    "modelId": models[model],
                    "system": [{"text": row["messages"][0]["content"]}],
                    "messages": [
                        {"role": "user", "content": [{"text": row["messages"][1]["content"]}]}
                    ],
                    "inferenceConfig": {"maxTokens": 512, "temperature": 0.0},
                }
                if model == "tuned" and row is rows[0]:
                    stub.add_client_error(
                        "converse",
                        service_error_code="ThrottlingException",
                        http_status_code=429,
                        expected_params=expected,
                        response_meta={"HTTPHeaders": {"retry-after": "2"}},
                    )
                right = answers[row["id"]] if model == "tuned" else "0"
                stub.add_response("converse", _converse_answer(f"#### {right}"), expected)
        records = evaluate(rows, models, settings, sampler, local_grader(), concurrency=1)
        stub.assert_no_pending_responses()
    assert waits == [2.0]
    assert [(r.model, r.reward) for r in records] == [
        ("base", 0.0),
        ("tuned", 1.0),
        ("base", 0.0),
        ("tuned", 1.0),
    ]
    assert {r.model_id for r in records if r.model == "tuned"} == {models["tuned"]}


def _lambda_client() -> Any:
    return boto3.client(
        "lambda", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def _payload(value: Any) -> StreamingBody:
    data = json.dumps(value).encode()
    return StreamingBody(io.BytesIO(data), len(data))


def test_the_lambda_grader_invokes_the_version_with_bedrocks_event() -> None:
    row = validation_rows(1)[0]
    rollouts = [rollout(row, "#### 18", "p/base/0"), rollout(row, "#### 3", "p/tuned/0")]
    assert rollouts[0]["messages"][-1] == {"role": "assistant", "content": "#### 18"}
    assert rollouts[0]["metadata"] == {"reference_answer": {"final_answer": "18"}}
    answer = local_grader()(rollouts)
    client = _lambda_client()
    grader = LambdaGrader(client, REWARD_VERSION_ARN, backoff=FAST)
    expected = {
        "FunctionName": REWARD_VERSION_ARN,
        "InvocationType": "RequestResponse",
        "Payload": json.dumps(rollouts).encode(),
    }
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke", "TooManyRequestsException", http_status_code=429, expected_params=expected
        )
        stub.add_response("invoke", {"StatusCode": 200, "Payload": _payload(answer)}, expected)
        stub.add_response(
            "invoke",
            {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": _payload({"errorMessage": "boom", "errorType": "RuntimeError"}),
            },
            {**expected, "Payload": ANY},
        )
        graded = grade(rollouts, grader)
        failed = grade(rollouts, grader)
        stub.assert_no_pending_responses()
    assert graded["p/base/0"].reward == 1.0  # type: ignore[union-attr]
    assert graded["p/tuned/0"].reward == 0.0  # type: ignore[union-attr]
    assert failed == {
        r["id"]: "grading: GradingError: the reward function failed: boom" for r in rollouts
    }
    with pytest.raises(GradingError, match="no item"):
        from rft_eval.grading import read_answer

        read_answer(rollouts, answer[:1])


def test_a_grading_failure_excludes_the_prompt_like_a_failed_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = validation_rows(3)
    real = local_grader()

    def flaky(rollouts: list[dict[str, Any]]) -> Any:
        if any(r["id"].startswith(rows[1]["id"]) for r in rollouts):
            raise RuntimeError("the function timed out")
        return real(rollouts)

    with students_server({"base": 1.0, "tuned": 1.0}, rows) as (server, _students):
        _point_at(monkeypatch, server)
        sampler = OpenAISampler(REGION, route="/v1", backoff=FAST)
        records = evaluate(
            rows, {"base": "base", "tuned": "tuned"}, Settings(), sampler, flaky, batch_size=2
        )
    errors = {r.prompt_id for r in records if r.error}
    assert rows[1]["id"] in errors
    assert all(r.reward == 1.0 for r in records if r.prompt_id not in errors)


def test_students_are_deterministic_per_prompt() -> None:
    rows = validation_rows(20)
    first, second = Students(rows, {"m": 0.35}), Students(rows, {"m": 0.35})
    assert first.right("m") == second.right("m") and len(first.right("m")) == 7
