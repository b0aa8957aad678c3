"""Each function's bundle, built for this machine from the same lock, run on CPython 3.13 with
only the bundle and the standard library on ``sys.path`` (``driver.py``), answers the handler
tests' events as the development interpreter's run of the same sources does."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stacks.bundle_store import read_record
from tests.job_support import delete_event, fixture_event, on_event
from tests.lambda_loader import SHARED_DATA, LambdaContext
from tests.openai_server import OpenAIServer
from tests.parity.conftest import PARITY_PYTHON
from tests.reward_support import (
    FIXTURES,
    check_contract,
    fixture,
    load_reward,
    rollouts,
    scores,
)

DRIVER = Path(__file__).with_name("driver.py")
# A GSM8K grader of the tests' own (the shipped graders/ belong to the user).
MATH_GRADER = {"name": "parity-math", "type": "math_answer", "tolerance": 1e-6}
# Credentials that sign requests (short-term API keys, SigV4) and reach no account.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REWARD_ENVIRONMENT = {
    "RFT_ENVIRONMENT": "parity",
    "POWERTOOLS_SERVICE_NAME": "reward",
    "POWERTOOLS_METRICS_NAMESPACE": "BedrockRft/Grader",
}


def run_bundle(
    name: str,
    event: Any,
    environment: dict[str, str],
    function: str = "handler",
    module: str = "handler",
) -> dict[str, Any]:
    """The driver's answer for ``event`` sent to function ``name``'s parity bundle (entry
    point ``module.function``)."""
    record = read_record(name, "parity")
    assert record is not None, f"no parity bundle of {name}: run `make parity`"
    request: dict[str, Any] = {
        "bundle": str(record.folder),
        "module": module,
        "function": function,
        "event": event,
    }
    request["environment"] = {"AWS_DEFAULT_REGION": "us-west-2", **environment}
    completed = subprocess.run(
        [os.environ[PARITY_PYTHON], "-I", "-S", str(DRIVER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    answer: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "error" not in answer, answer["error"]
    assert str(answer["origin"]).startswith(str(record.folder)), answer["origin"]
    return answer


def _gsm8k_event(count: int = 200) -> list[dict[str, Any]]:
    """GSM8K rollouts: reference solutions, every third graded against a neighbour's answer."""
    with (SHARED_DATA / "gsm8k" / "test.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line, _ in zip(lines, range(count), strict=False)]
    finals = [row["answer"].rsplit("####", 1)[1].strip() for row in rows]
    event = []
    for index, row in enumerate(rows):
        reference = finals[(index + 1) % count] if index % 3 == 0 else finals[index]
        event.append(
            {
                "id": f"gsm8k-{index:05d}",
                "messages": [
                    {"role": "user", "content": row["question"]},
                    {"role": "assistant", "content": row["answer"]},
                ],
                "reference_answer": {"final_answer": reference},
            }
        )
    return event


def _source_outputs(monkeypatch: pytest.MonkeyPatch, config: Any, event: Any) -> Any:
    for key, value in REWARD_ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    module = load_reward(monkeypatch, config, environment="parity")
    return module.handler(event, LambdaContext())


def test_reward_scores_gsm8k_rollouts_as_the_sources_do(monkeypatch: pytest.MonkeyPatch) -> None:
    event = _gsm8k_event()
    answer = run_bundle(
        "reward", event, {**REWARD_ENVIRONMENT, "GRADER_CONFIG": json.dumps(MATH_GRADER)}
    )
    check_contract(event, answer["result"])
    bundle_scores = scores(answer["result"])
    # Same numbers: a reference earns 1 against its own answer, 0 against a neighbour's.
    assert bundle_scores == [0.0 if i % 3 == 0 else 1.0 for i in range(len(event))]
    assert answer["result"] == _source_outputs(monkeypatch, MATH_GRADER, event)


# Competition-style pairs that go to Math-Verify (and sympy, and the ANTLR runtime) in the
# bundle: (reference, response, whether it is right).
LATEX_PAIRS = [
    ("\\frac{10}{9}", "So $\\boxed{\\frac{10}{9}}$.", True),
    ("\\frac{10}{9}", "So $\\boxed{\\frac{9}{10}}$.", False),
    ("2\\sqrt{3}", "It is $\\sqrt{12}$.", True),
    ("[0,1)", "The set is $\\boxed{[0,1)}$.", True),
    ("[0,1)", "The set is $\\boxed{[0,1]}$.", False),
    ("(3,-1)", "Final Answer: The final answer is $(3,-1)$. I hope it is correct.", True),
    ("x^2+2x+1", "$\\boxed{(x+1)^2}$", True),
    (
        "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
        "$\\boxed{\\begin{pmatrix}1\\\\2\\end{pmatrix}}$",
        True,
    ),
    ("\\text{(B)}", "\\boxed{C}", False),
    ("10^{10^{8}}+1", "$\\boxed{10^{10^{8}}}$", False),
]


def test_reward_grades_latex_with_math_verify_as_the_sources_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = [
        {
            "id": f"latex-{index}",
            "messages": [
                {"role": "user", "content": "Solve it."},
                {"role": "assistant", "content": response},
            ],
            "metadata": {"reference_answer": {"final_answer": reference}},
        }
        for index, (reference, response, _) in enumerate(LATEX_PAIRS)
    ]
    answer = run_bundle(
        "reward", event, {**REWARD_ENVIRONMENT, "GRADER_CONFIG": json.dumps(MATH_GRADER)}
    )
    check_contract(event, answer["result"])
    assert scores(answer["result"]) == [float(right) for _, _, right in LATEX_PAIRS]
    assert answer["result"] == _source_outputs(monkeypatch, MATH_GRADER, event)


SHAPES = sorted(p.name for p in FIXTURES.glob("*.json") if p.name.startswith(("shape_", "malf")))


@pytest.mark.parametrize("name", SHAPES)
def test_reward_answers_the_fixture_events_as_the_sources_do(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    event = fixture(name)["event"]
    config = {**REWARD_ENVIRONMENT, "GRADER_CONFIG": json.dumps(MATH_GRADER)}
    answer = run_bundle("reward", event, config)
    check_contract(rollouts(event), answer["result"])
    assert answer["result"] == _source_outputs(monkeypatch, MATH_GRADER, event)


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    """A moto server on the loopback interface (SSM, CloudWatch, SNS as the collector uses)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_job_deletes_over_the_openai_api_as_the_sources_do(
    openai_server: OpenAIServer, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Delete of a job the service does not know: the bundled openai SDK asks the local
    OpenAI-compatible server, learns it is unknown, looks for a job of the event's identity by
    its training file (as after a cancelled create), finds none, and the Delete succeeds (AWS
    calls go to a local moto server)."""
    event = delete_event(fixture_event("openai"), "ftjob-never-existed")
    aws = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": moto_endpoint}
    environment = {**openai_server.sdk_environment(), **aws}
    answer = run_bundle("job", event, {**environment, "POWERTOOLS_SERVICE_NAME": "job"}, "on_event")
    asked = [r.path for r in openai_server.requests if r.method == "GET"]
    assert asked == ["/v1/fine_tuning/jobs/ftjob-never-existed", "/v1/files"]
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    assert answer["result"] == on_event(event)


def test_job_completes_a_delete_without_calling_aws() -> None:
    event = {"RequestType": "Delete", "PhysicalResourceId": "ftjob-parity", "Data": {}}
    answer = run_bundle("job", event, {"POWERTOOLS_SERVICE_NAME": "job"}, "is_complete")
    assert answer["result"] == {"IsComplete": True}


def test_metrics_collector_reads_the_job_record_over_aws_apis(moto_endpoint: str) -> None:
    import boto3

    environment = {
        "RFT_ENVIRONMENT": "parity",
        "AWS_ENDPOINT_URL": moto_endpoint,
        **FAKE_CREDENTIALS,
        "POWERTOOLS_SERVICE_NAME": "metrics",
    }
    assert run_bundle("metrics", {}, environment)["result"] == {
        "action": "idle",
        "reason": "no job recorded",
    }
    ssm = boto3.client(
        "ssm",
        region_name="us-west-2",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    record = {"job_id": "ftjob-parity", "backend": "openai", "status": "succeeded"}
    ssm.put_parameter(Name="/bedrock-rft/parity/job", Value=json.dumps(record), Type="String")
    result = run_bundle("metrics", {}, environment)["result"]
    assert result == {"action": "idle", "job_id": "ftjob-parity", "status": "succeeded"}


def test_reconciler_cancels_an_unrecorded_job_over_the_openai_api(
    openai_server: OpenAIServer, moto_endpoint: str
) -> None:
    """The reconciler's entry point in the metrics bundle on CPython 3.13: the bundled openai
    SDK lists files and jobs on the local server and cancels the old job no record names."""
    service = openai_server.fine_tuning
    hours_ago = service.now() - 3 * 3600
    files = []
    for n in range(2):
        file_id = service.new_id("file")
        service.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": 1,
            "created_at": hours_ago,
            "filename": f"rft-orphans-{n:064x}-train.jsonl",
            "purpose": "fine-tune",
            "status": "processed",
            "status_details": None,
        }
        files.append(file_id)
    service.add_job("ftjob-recorded", training_file=files[0], created_at=hours_ago)
    service.add_job("ftjob-orphan", training_file=files[1], created_at=hours_ago)
    environment = {
        **openai_server.sdk_environment(),
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": moto_endpoint,
        # an environment of its own: moto's server keeps its state across the tests
        "RFT_ENVIRONMENT": "orphans",
        "ORPHAN_ACTION": "stop",
        "POWERTOOLS_SERVICE_NAME": "reconciler",
    }
    import boto3

    boto3.client(
        "ssm",
        region_name="us-west-2",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).put_parameter(
        Name="/bedrock-rft/orphans/job",
        Value=json.dumps({"job_id": "ftjob-recorded", "backend": "openai"}),
        Type="String",
    )
    result = run_bundle("metrics", {}, environment, module="reconcile")["result"]
    assert result["stopped"] == ["ftjob-orphan"]
    assert [service.jobs[j]["status"] for j in ("ftjob-recorded", "ftjob-orphan")] == [
        "running",
        "cancelled",
    ]


def test_evaluation_starts_once_and_prepares_over_aws_apis(moto_endpoint: str) -> None:
    """The evaluation bundle's start and prepare handlers on CPython 3.13: one execution per
    job (a second trigger finds it), and the context from the job record."""
    import boto3

    clients = {
        "region_name": "us-west-2",
        "endpoint_url": moto_endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    sfn = boto3.client("stepfunctions", **clients)
    machine = sfn.create_state_machine(
        name="bedrock-rft-parity-evaluation",
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/evaluation",
    )["stateMachineArn"]
    base = {
        "RFT_ENVIRONMENT": "parity",
        "RFT_BACKEND": "openai",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": "us-west-2",
        **FAKE_CREDENTIALS,
        "POWERTOOLS_SERVICE_NAME": "evaluation",
    }
    trigger = {"job_id": "ftjob-parity", "backend": "openai", "fine_tuned_model": "ft:m:1"}
    start = {**base, "STATE_MACHINE_ARN": machine}
    first = run_bundle("evaluation", trigger, start, "start")["result"]
    again = run_bundle("evaluation", trigger, start, "start")["result"]
    assert first["execution_name"] == again["execution_name"] == "ftjob-parity"
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1

    record = {"job_id": "ftjob-parity", "backend": "openai", "reward_function_arn": "arn:r:3"}
    boto3.client("ssm", **clients).put_parameter(
        Name="/bedrock-rft/parity/job", Value=json.dumps(record), Type="String", Overwrite=True
    )
    settings = {
        "samples_per_prompt": 1,
        "temperature": 0.0,
        "max_tokens": 64,
        "pass_threshold": 0.5,
        "limit": None,
        "bootstrap_resamples": 1000,
        "seed": 0,
        "promote_when": {"min_improvement": 0.0, "require_ci_above_zero": True},
    }
    prepare = {
        **base,
        "BASE_MODEL": "openai.gpt-oss-20b",
        "REWARD_FUNCTION_ARN": "arn:r:1",
        "VALIDATION_BUCKET": "datasets",
        "VALIDATION_KEY": "datasets/x/validation.jsonl",
        "ARTIFACTS_BUCKET": "artifacts",
        "EVALUATION_SETTINGS": json.dumps(settings),
    }
    context = run_bundle("evaluation", trigger, prepare, "prepare")["result"]
    assert context["reward_function_arn"] == "arn:r:3"
    assert context["tuned_model"] == "ft:m:1"
    assert context["artifacts"] == {"bucket": "artifacts", "prefix": "evaluations/ftjob-parity/"}
