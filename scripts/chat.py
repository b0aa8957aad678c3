"""One on-demand call to an environment's model, printing the reply
(``make chat ENV=<env> PROMPT="..." [MODEL=base|tuned|<id>]``).

``MODEL=tuned`` (the default) is the promoted model of ``/bedrock-rft/<env>/model`` when the
promotion gate has written one, else the environment's current job (``/bedrock-rft/<env>/job``):
on the ``openai`` backend its ``fine_tuned_model``, on the ``bedrock`` backend the ARN of the
job's Active on-demand deployment (found by the tags the evaluation gives it). ``MODEL=base``
is the environment's base model; anything else is used as the model id as it is.

The ``openai`` backend is called with the openai SDK's chat completions at Bedrock's
OpenAI-compatible endpoint of the environment's region (``OPENAI_BASE_URL`` /
``OPENAI_API_KEY`` override it, as everywhere in this project); the ``bedrock`` backend with
``bedrock-runtime`` ``Converse``. Temperature and maximum tokens are the environment's
``evaluation`` settings, so the reply is sampled as the evaluation samples it.

The reply goes to stdout; one line on stderr says which model answered. Bad input (an unknown
environment, an empty prompt, no job yet, no credentials, an unreachable endpoint) is one line
on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _folder in (ROOT / "lambda" / "common", ROOT / "lambda" / "evaluation", ROOT):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from rft_eval import serving  # noqa: E402
from rft_eval.ids import safe_job_id  # noqa: E402

from scripts.preconditions import (  # noqa: E402
    PreconditionError,
    aws_access_problem,
    credentials_problem,
    read_environments,
    read_json_parameter,
)
from stacks.config import ConfigError, EnvironmentConfig, load_environments  # noqa: E402

# A person waits at a terminal: an unreachable endpoint fails in seconds; a long answer may
# take a while to generate.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 300.0
ATTEMPTS = 2  # one retry


class ChatError(Exception):
    """A user error: its text is the one line to print."""


def environment(name: str, cdk_json: Path) -> EnvironmentConfig:
    """The named environment of ``cdk_json``, validated as synth validates it."""
    if not name:
        raise ChatError("set ENV=<environment>")
    try:
        environments = read_environments(cdk_json)
    except PreconditionError as err:
        raise ChatError(str(err)) from None
    if name not in environments:
        raise ChatError(f"ENV={name}: no such environment; defined: {', '.join(environments)}")
    try:
        return load_environments({"environments": environments}, ROOT, only=name)[0]
    except ConfigError as err:
        raise ChatError("; ".join(err.lines)) from None


def _boto_config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"max_attempts": ATTEMPTS, "mode": "standard"},
    )


def aws_client(service: str, region: str) -> Any:
    """A boto3 client with the script's short timeouts and one retry."""
    import boto3

    return boto3.client(service, region_name=region, config=_boto_config())


def read_parameter(ssm: Any, name: str) -> dict[str, Any] | None:
    """The JSON object in SSM parameter ``name``, or None when there is none."""
    try:
        return read_json_parameter(ssm, name)
    except PreconditionError as err:
        raise ChatError(str(err)) from None


def tuned_model(config: EnvironmentConfig, ssm: Any, bedrock: Any | None) -> tuple[str, str]:
    """(model id, what it is) of the environment's tuned model; ``bedrock`` is the control
    plane client the native backend needs to find the job's deployment."""
    promoted = read_parameter(ssm, f"/bedrock-rft/{config.name}/model")
    if promoted and promoted.get("model_id"):
        return str(promoted["model_id"]), f"promoted model (job {promoted.get('job_id')})"
    parameter = f"/bedrock-rft/{config.name}/job"
    record = read_parameter(ssm, parameter)
    if not record or not record.get("job_id"):
        raise ChatError(
            f"MODEL=tuned: environment {config.name} has no job yet (SSM {parameter} in "
            f"{config.region}): deploy one with job.start, or set MODEL=base or MODEL=<id>"
        )
    job_id = str(record["job_id"])
    if config.backend == "openai":
        model = record.get("fine_tuned_model")
        if not model:
            raise ChatError(
                f"MODEL=tuned: job {job_id} has no fine-tuned model yet (status "
                f"{record.get('status', 'unknown')}): wait until it succeeds, or set MODEL=base"
            )
        return str(model), f"tuned model of job {job_id}"
    assert bedrock is not None
    active = [
        d for d in serving.environment_deployments(bedrock, config.name) if d.status == "Active"
    ]
    # the current job's deployment, else the newest Active one of the environment
    ours = [d for d in active if d.tag(serving.TAG_JOB) == safe_job_id(job_id)]
    chosen = next(iter(ours or active), None)
    if chosen is None:
        raise ChatError(
            f"MODEL=tuned: no Active on-demand deployment of environment {config.name} in "
            f"{config.region} (job {job_id}): the evaluation creates one after the job "
            "completes; or set MODEL=base"
        )
    return chosen.arn, f"deployment {chosen.name} of job {chosen.tag(serving.TAG_JOB)}"


def ask_openai(config: EnvironmentConfig, model: str, prompt: str) -> tuple[str, str]:
    """(reply, endpoint) of one chat completion."""
    from openai import Timeout
    from rft_common.mantle import openai_client

    client = openai_client(
        config.region,
        model=model,
        route=config.mantle.route,
        max_retries=ATTEMPTS - 1,
        timeout=Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
    )
    where = str(client.base_url).rstrip("/")
    try:
        completion = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            temperature=config.evaluation.temperature,
            max_tokens=config.evaluation.max_tokens,
        )
    except Exception as err:
        line = openai_error(err, model, where)
        if line is None:
            raise
        raise ChatError(line) from None
    return completion.choices[0].message.content or "", where


def ask_bedrock(runtime: Any, config: EnvironmentConfig, model: str, prompt: str) -> str:
    """The reply of one ``Converse`` call (its text blocks, reasoning left out)."""
    response = runtime.converse(
        modelId=model,
        messages=[{"role": "user", "content": [{"text": prompt}]}],
        inferenceConfig={
            "maxTokens": config.evaluation.max_tokens,
            "temperature": config.evaluation.temperature,
        },
    )
    blocks = response["output"]["message"]["content"]
    return "".join(block["text"] for block in blocks if "text" in block)


def openai_error(err: Exception, model: str, where: str) -> str | None:
    """The one line for an OpenAI SDK error the user can fix, else None (a bug)."""
    import openai

    if isinstance(err, openai.AuthenticationError | openai.PermissionDeniedError):
        return (
            f"{where} refused the key (HTTP {err.status_code}: {err.message}): check "
            "OPENAI_API_KEY, or your AWS credentials when it is unset"
        )
    if isinstance(err, openai.APIStatusError):
        return f"{where} answered HTTP {err.status_code} for model {model}: {err.message}"
    if isinstance(err, openai.APIConnectionError):  # timeouts included
        return f"cannot reach {where} ({err}): check the network, the region or OPENAI_BASE_URL"
    return None


def aws_error(err: Exception, model: str, where: str) -> str | None:
    """The one line for a botocore error the user can fix, else None (a bug)."""
    import botocore.exceptions

    line = aws_access_problem(err, where)
    if line is not None or not isinstance(err, botocore.exceptions.ClientError):
        return line
    error = err.response.get("Error", {})
    code, message = error.get("Code", "?"), error.get("Message", "")
    return f"{where} answered {code} for model {model}: {message}"


def needs_aws(config: EnvironmentConfig, which: str) -> bool:
    """Whether the call needs AWS credentials (SSM, Bedrock, or a key minted from them)."""
    return which == "tuned" or config.backend == "bedrock" or not os.environ.get("OPENAI_API_KEY")


def _check_credentials(config: EnvironmentConfig, which: str) -> None:
    """A one-line :class:`ChatError` when the call needs AWS credentials and none are found."""
    if not needs_aws(config, which):
        return
    problem = credentials_problem(config.region)
    if problem is None:
        return
    why, remedy = problem
    if which == "tuned" and config.backend == "openai" and os.environ.get("OPENAI_API_KEY"):
        # The key reaches the endpoint, but the tuned model's id is in SSM.
        raise ChatError(
            f"{why} (region {config.region}) to read the tuned model's id from SSM: "
            "give MODEL=<fine-tuned model id> to call it with OPENAI_API_KEY alone, "
            f"or {remedy}"
        )
    extra = ", or set OPENAI_API_KEY" if config.backend == "openai" else ""
    raise ChatError(f"{why} (region {config.region}): {remedy}{extra}")


def chat(config: EnvironmentConfig, which: str, prompt: str) -> tuple[str, str]:
    """(reply, which model answered) of one on-demand call."""
    if not prompt.strip():
        raise ChatError('set PROMPT="<what to ask the model>" (it is empty)')
    _check_credentials(config, which)
    where = f"AWS in {config.region}"
    model = which
    try:
        if which == "base":
            model, what = config.base_model, "base model"
            if config.backend == "bedrock":
                model = serving.base_inference_model(model)
        elif which == "tuned":
            ssm = aws_client("ssm", config.region)
            where = ssm.meta.endpoint_url
            bedrock = aws_client("bedrock", config.region) if config.backend == "bedrock" else None
            model, what = tuned_model(config, ssm, bedrock)
        else:
            what = "model"
        if config.backend == "openai":
            reply, _ = ask_openai(config, model, prompt)
        else:
            runtime = aws_client("bedrock-runtime", config.region)
            where = runtime.meta.endpoint_url
            reply = ask_bedrock(runtime, config, model, prompt)
    except ChatError:
        raise
    except Exception as err:
        line = aws_error(err, model, where)
        if line is None:
            raise  # a bug: keep the traceback
        raise ChatError(line) from None
    return reply, f"{what} {model}" if what != "model" else model


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reply; a user error is one line on stderr (exit status 1)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="", help="environment in cdk.json")
    parser.add_argument("--prompt", default="", help="what to ask")
    parser.add_argument(
        "--model", default="tuned", help="tuned (default), base, or a model id / deployment ARN"
    )
    parser.add_argument(
        "--cdk-json", type=Path, default=ROOT / "cdk.json", help="the app's cdk.json"
    )
    args = parser.parse_args(argv)
    try:
        config = environment(args.env, args.cdk_json)
        reply, answered = chat(config, args.model or "tuned", args.prompt)
    except ChatError as err:
        raise SystemExit(f"chat: {err}") from None
    print(f"chat: {config.name} ({config.backend}): {answered}", file=sys.stderr)
    print(reply)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
