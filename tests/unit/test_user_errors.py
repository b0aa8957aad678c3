"""Every make target that takes user input answers bad input with one line and no traceback.

Each case runs the real make target (the virtualenv is not rebuilt) with no AWS credentials
(an empty shared-config location, the instance metadata service disabled) and asserts: a
non-zero exit status, no "Traceback" anywhere, and stderr, apart from make's own closing
``make: *** [...] Error N`` line, is exactly one line naming the problem.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import cdk_context
from tests.lambda_loader import ROOT
from tests.metrics_fixtures import synthetic_run
from tests.openai_server import OpenAIServer

AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
)


# The fixture environments, for targets that take another cdk.json (cdk.json is the user's).
FIXTURE_CDK_JSON = "tests/fixtures/cdk.json"

# make's own closing line ("make[1]: ***" when make runs inside make, as under make test)
MAKE_TRAILER = re.compile(r"^make(\[\d+\])?: \*\*\* ")


def no_credentials(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any AWS credentials or OpenAI endpoint."""
    env = {k: v for k, v in os.environ.items() if k not in AWS_VARIABLES}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra)
    return env


def make(target: str, *variables: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``make <target> <variables>`` with this interpreter, bounded in time."""
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            target,
            *variables,
            f"PY={sys.executable}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line(run: subprocess.CompletedProcess[str], expected: str) -> str:
    """Failed, no traceback, stderr (but make's own trailer) one line containing ``expected``."""
    assert run.returncode != 0
    assert "Traceback" not in run.stdout + run.stderr
    lines = [line for line in run.stderr.splitlines() if not MAKE_TRAILER.match(line)]
    assert len(lines) == 1, run.stderr
    assert expected in lines[0], lines[0]
    return lines[0]


def an_environment() -> str:
    """Any environment of the user's cdk.json (its name is theirs, not the test's)."""
    return str(next(iter(cdk_context()["environments"])))


@pytest.mark.parametrize(
    ("target", "variables", "expected"),
    [
        ("report", (), "make report: set JOB=<fine-tuning job id>"),
        ("report", ("JOB=ftjob-abc123",), "report: no region for Bedrock's endpoint: set ENV="),
        ("report", ("JOB=ftjob-abc123", "ENV=nope"), "report: ENV=nope: no such environment"),
        (
            "report",
            ("JOB=ftjob-abc123", "AWS_REGION=us-west-2"),
            "report: no AWS credentials found (region us-west-2): run aws configure",
        ),
        ("acknowledgments", ("ENV=nope",), "make acknowledgments: ENV=nope: no such environment"),
        ("synth", ("ENV=nope",), "make synth: ENV=nope: no such environment in cdk.json"),
        ("diff", (), "make diff: set ENV=<environment> (defined in cdk.json: "),
        ("deploy", (), "make deploy: set ENV=<environment>"),
        ("deploy", ("ENV=nope",), "make deploy: ENV=nope: no such environment in cdk.json"),
        ("preflight", ("DATASET=x.jsonl",), "make preflight: set DATASET=<jsonl> GRADER=<json>"),
        (
            "preflight",
            ("DATASET=missing.jsonl", "GRADER=missing.json"),
            "preflight: --dataset missing.jsonl: no such file",
        ),
        (
            "preflight",
            ("DATASET=tests/fixtures/preflight/good.jsonl", "GRADER=g.json", "MODEL=m"),
            "preflight: --grader g.json: no such file",
        ),
        (
            "preflight",
            (
                "DATASET=tests/fixtures/preflight/good.jsonl",
                "GRADER=tests/fixtures/reward/shape_text_reference.json",  # any file: not read
                "MODEL=openai.gpt-oss-20b",
            ),
            "preflight: --model openai.gpt-oss-20b: no region for Bedrock's endpoint: set ENV=",
        ),
        ("convert", ("INPUT=x.csv",), "make convert: set INPUT=<jsonl|csv> OUTPUT=<jsonl>"),
        (
            "review",
            ("BASE=no-such-ref",),
            "error: review: BASE=no-such-ref: not a commit, branch or tag of this repository",
        ),
        (
            "convert",
            ("INPUT=missing.csv", "OUTPUT=out.jsonl"),
            "convert: missing.csv: no such file",
        ),
        ("eval", (), "eval: set ENV=<environment> (defined in cdk.json: "),
        ("eval", ("ENV=nope",), "eval: ENV=nope: no such environment in cdk.json; defined: "),
        ("eval", ("ENV=dev", "LIMIT=0"), "eval: LIMIT=0: must be a positive integer"),
        ("eval", ("ENV=dev", "SAMPLES=two"), "eval: SAMPLES=two: must be a positive integer"),
        (
            "eval",
            ("ENV=dev", f"CDK_JSON={FIXTURE_CDK_JSON}"),
            "eval: no AWS credentials found (region us-west-2) to read /bedrock-rft/dev/job (or "
            "set MODEL=<tuned model id>): run aws configure",
        ),
        (
            "eval",
            ("ENV=nova-dev", "JOB=x", f"CDK_JSON={FIXTURE_CDK_JSON}"),
            "eval: JOB=x: the bedrock backend calls a tuned model through its on-demand "
            "deployment: set MODEL=<deployment ARN>",
        ),
        (
            "eval",
            ("ENV=dev", "MODEL=m", f"CDK_JSON={FIXTURE_CDK_JSON}"),
            "eval: no AWS credentials found (region us-west-2) to call Bedrock's OpenAI-compatible "
            "endpoint (or set OPENAI_API_KEY): run aws configure",
        ),
    ],
)
def test_bad_input_is_one_line(
    target: str, variables: tuple[str, ...], expected: str, tmp_path: Path
) -> None:
    assert_one_line(make(target, *variables, env=no_credentials(tmp_path)), expected)


def test_diff_without_credentials_names_the_environment_fast(tmp_path: Path) -> None:
    name = an_environment()
    started = time.perf_counter()
    run = make("diff", f"ENV={name}", env=no_credentials(tmp_path))
    elapsed = time.perf_counter() - started
    line = assert_one_line(run, f"make diff: no AWS credentials found for environment '{name}'")
    assert line.endswith("run aws configure / set AWS_PROFILE")
    assert "bundle_lambdas" not in run.stdout  # checked before the bundles are built
    assert elapsed < 30  # was over 20 s of bundling and CLI retries; well under 1 s unloaded


def test_deploy_with_an_unknown_profile_says_so(tmp_path: Path) -> None:
    run = make("deploy", f"ENV={an_environment()}", env=no_credentials(tmp_path, AWS_PROFILE="x"))
    assert_one_line(run, "make deploy: AWS profile 'x' is not configured for environment")


def test_preflight_environment_and_csv(tmp_path: Path) -> None:
    csv = tmp_path / "qa.csv"
    csv.write_text("question,answer\nWhat is 2+2?,4\n", encoding="utf-8")
    grader = ROOT / "tests" / "fixtures" / "reward" / "malformed_samples.json"
    env = no_credentials(tmp_path)
    run = make("preflight", f"DATASET={csv}", f"GRADER={grader}", env=env)
    line = assert_one_line(run, f"preflight: --dataset {csv}: CSV, not RFT JSONL")
    assert line.endswith(f"make convert INPUT={csv} OUTPUT={tmp_path / 'qa.jsonl'}")
    good = ROOT / "tests" / "fixtures" / "preflight" / "good.jsonl"
    run = make("preflight", f"DATASET={good}", f"GRADER={grader}", "ENV=nope", env=env)
    assert_one_line(run, 'preflight: env = "nope": no such environment')


def test_convert_to_a_directory_or_under_a_file(tmp_path: Path) -> None:
    source = tmp_path / "qa.csv"
    source.write_text("question,answer\nWhat is 2+2?,4\n", encoding="utf-8")
    env = no_credentials(tmp_path)
    run = make("convert", f"INPUT={source}", f"OUTPUT={tmp_path}", env=env)
    assert_one_line(run, f"convert: --output {tmp_path}: is a directory")
    run = make("convert", f"INPUT={source}", f"OUTPUT={source}/out.jsonl", env=env)
    assert_one_line(run, f"cannot write it ({source}: ")
    run = make("convert", f"INPUT={source}", f"OUTPUT={tmp_path / 'o.jsonl'}", "LIMIT=0", env=env)
    assert_one_line(run, "convert: --limit must be at least 1")


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    """The local OpenAI-compatible server with one finished synthetic job."""
    with OpenAIServer() as running:
        synthetic_run(running.fine_tuning, "ftjob-known", steps=5)
        yield running


def test_report_names_an_unknown_job_and_a_wrong_key(server: OpenAIServer, tmp_path: Path) -> None:
    env = no_credentials(tmp_path, **server.sdk_environment())
    run = make("report", "JOB=ftjob-unknown", env=env)
    assert_one_line(run, "report: job ftjob-unknown not found at http://127.0.0.1:")
    env["OPENAI_API_KEY"] = "wrong-key"
    run = make("report", "JOB=ftjob-known", env=env)
    line = assert_one_line(run, "refused the key (")
    assert "401" in line and "check OPENAI_API_KEY" in line


def test_report_of_an_unreachable_endpoint_fails_within_seconds(tmp_path: Path) -> None:
    # nothing listens on port 9 of localhost: the connection is refused at once, retried once
    env = no_credentials(tmp_path, OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY="k")
    started = time.perf_counter()
    run = make("report", "JOB=ftjob-x", env=env)
    assert_one_line(run, "report: cannot reach http://127.0.0.1:9/v1")
    assert time.perf_counter() - started < 60


def test_eval_of_an_unreachable_endpoint_fails_within_seconds(tmp_path: Path) -> None:
    env = no_credentials(tmp_path, OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY="k")
    started = time.perf_counter()
    run = make("eval", "ENV=dev", "MODEL=m", f"CDK_JSON={FIXTURE_CDK_JSON}", "LIMIT=3", env=env)
    line = assert_one_line(run, "eval: http://127.0.0.1:9/v1: the base model openai.gpt-oss-20b ")
    assert line.endswith("cannot be called (APIConnectionError: Connection error.)")
    assert time.perf_counter() - started < 60


@pytest.mark.synth
def test_an_error_inside_the_app_is_the_last_line_of_synth(tmp_path: Path) -> None:
    """Past the argument check (here by setting the CLI's context directly), the app's own
    one-line error ends the output, not the CLI's "Subprocess exited with error 1"."""
    # -o bundle: the app stops at its configuration, before it would read a bundle
    run = make("synth", "-o", "bundle", "CDK_CONTEXT=-c env=nope", env=no_credentials(tmp_path))
    assert_one_line(run, 'error: env = "nope": no such environment')


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (("PROMPT=hi",), "chat: set ENV=<environment>"),
        (("ENV=nope", "PROMPT=hi"), "chat: ENV=nope: no such environment; defined: "),
    ],
)
def test_chat_names_a_missing_or_unknown_environment(
    variables: tuple[str, ...], expected: str, tmp_path: Path
) -> None:
    assert_one_line(make("chat", *variables, env=no_credentials(tmp_path)), expected)


def test_chat_without_a_prompt_or_credentials(tmp_path: Path) -> None:
    env = no_credentials(tmp_path)
    name = an_environment()
    assert_one_line(make("chat", f"ENV={name}", env=env), 'chat: set PROMPT="<what to ask')
    line = assert_one_line(make("chat", f"ENV={name}", "PROMPT=hi", env=env), "chat: no AWS ")
    assert "run aws configure / set AWS_PROFILE" in line


def test_chat_with_an_openai_key_but_no_model_says_to_give_model(tmp_path: Path) -> None:
    """The key reaches the endpoint, but the tuned model's id is read from SSM: say MODEL=."""
    env = no_credentials(tmp_path, OPENAI_API_KEY="k")
    run = make("chat", "ENV=dev", "PROMPT=hi", f"CDK_JSON={FIXTURE_CDK_JSON}", env=env)
    line = assert_one_line(run, "chat: no AWS credentials found (region us-west-2) to read")
    assert "give MODEL=<fine-tuned model id> to call it with OPENAI_API_KEY alone" in line


def test_chat_with_no_job_yet_says_so(tmp_path: Path) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = no_credentials(
            tmp_path,
            AWS_ENDPOINT_URL=f"http://{host}:{port}",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
        )
        name = an_environment()
        run = make("chat", f"ENV={name}", "PROMPT=hi", "MODEL=tuned", env=env)
        assert_one_line(run, f"chat: MODEL=tuned: environment {name} has no job yet (SSM ")
    finally:
        server.stop()


def test_chat_with_an_unreachable_endpoint_fails_within_seconds(tmp_path: Path) -> None:
    # port 9 of localhost refuses at once; whichever the environment's backend, its endpoint
    # is there (the OpenAI-compatible one, or Bedrock's)
    env = no_credentials(
        tmp_path,
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        OPENAI_API_KEY="k",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    started = time.perf_counter()
    run = make("chat", f"ENV={an_environment()}", "PROMPT=hi", "MODEL=base", env=env)
    assert_one_line(run, "chat: cannot reach http://127.0.0.1:9")
    assert time.perf_counter() - started < 60
