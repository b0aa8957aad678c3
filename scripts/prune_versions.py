"""Delete the reward function versions nothing may call any more
(``make prune-versions ENV=<env> [APPLY=1]``).

Every deploy that changes the reward function publishes a new version, and the stack retains
the old ones: a running job, a job kept by ``job.on_delete = retain`` and the evaluation (which
grades with the version the job record names) may still call them. This command lists the
function's published versions and keeps every one that is, or may be, in use:

- the stack's current version (output ``RewardFunctionVersionArn``),
- the version the job record (``/bedrock-rft/<env>/job``, ``reward_function_arn``) names,
- the version the promoted model's evaluation graded with (``/bedrock-rft/<env>/model`` ->
  its ``summary.json`` -> ``sources.reward_function_arn``),
- the versions an alias of the function points to,
- the grader of every active fine-tuning job of the environment's backend that names this
  function (native: ``GetModelCustomizationJob``'s ``lambdaArn``; OpenAI-compatible: the job's
  ``method``).

Nothing is deleted when a use cannot be ruled out: a record that cannot be read, an active job
whose grader the service does not show, a running evaluation. ``$LATEST`` is never a
candidate. Without ``--apply`` (``APPLY=1``) it only prints what it would delete and why each
kept version is kept. Bad input (an unknown environment, no credentials, no deployed stack) is
one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.preconditions import (  # noqa: E402
    PreconditionError,
    aws_access_problem,
    credentials_problem,
    read_environments,
    read_json_parameter,
)
from stacks.config import ConfigError, EnvironmentConfig, load_environments  # noqa: E402

VERSION_OUTPUT = "RewardFunctionVersionArn"
EVALUATION_OUTPUT = "EvaluationStateMachine"
# Job statuses in which the service still invokes the grader.
BEDROCK_ACTIVE = ("InProgress", "Stopping")
OPENAI_ACTIVE = frozenset({"validating_files", "queued", "running"})


class PruneError(Exception):
    """A user error or an unreadable state: its text is the one line to print."""


def split_arn(arn: str) -> tuple[str, str | None]:
    """(unqualified function ARN, qualifier or None) of a Lambda function ARN."""
    parts = arn.split(":")
    if len(parts) == 8 and parts[5] == "function":  # arn:aws:lambda:<r>:<a>:function:<n>:<q>
        return ":".join(parts[:7]), parts[7]
    return arn, None


@dataclass
class Plan:
    """The function's published versions, which are kept (and why), which may go."""

    function: str
    versions: list[str]
    kept: dict[str, list[str]] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)

    def keep(self, arn: str | None, why: str) -> None:
        """Keep the version ``arn`` names, if it is one of this function's."""
        if not arn:
            return
        function, qualifier = split_arn(arn)
        if function == self.function and qualifier and qualifier != "$LATEST":
            self.kept.setdefault(qualifier, []).append(why)

    @property
    def deletable(self) -> list[str]:
        """The versions nothing names (none while a use cannot be ruled out)."""
        if self.blocked:
            return []
        return [version for version in self.versions if version not in self.kept]


@dataclass
class Clients:
    """The AWS clients the command reads with (and deletes with)."""

    cloudformation: Any
    lambda_: Any
    ssm: Any
    s3: Any
    stepfunctions: Any
    bedrock: Any | None = None
    # The OpenAI-compatible API's client, built only when needed.
    openai: Callable[[], Any] | None = None


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """The outputs of the deployed ``stack``."""
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except Exception as err:
        error = getattr(err, "response", {}).get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", ""):
            raise PruneError(f"stack {stack} is not deployed here: nothing to prune") from None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in described[0].get("Outputs", [])}


def _name(function: str) -> str:
    """The function's name (its ARN's last part): every Lambda call takes it."""
    return function.rsplit(":", 1)[-1]


def published_versions(lambda_: Any, function: str) -> list[str]:
    """The function's published versions, oldest first ($LATEST left out)."""
    versions = []
    paginator = lambda_.get_paginator("list_versions_by_function")
    for page in paginator.paginate(FunctionName=_name(function)):
        versions += [v["Version"] for v in page["Versions"] if v["Version"] != "$LATEST"]
    return sorted(versions, key=int)


def read_record(ssm: Any, name: str) -> dict[str, Any] | None:
    """The JSON record in SSM parameter ``name`` (None when absent)."""
    try:
        return read_json_parameter(ssm, name)
    except PreconditionError as err:
        raise PruneError(str(err)) from None


def summary_version(s3: Any, summary_uri: str) -> str | None:
    """``sources.reward_function_arn`` of an evaluation's summary.json."""
    bucket, _, key = summary_uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    sources = json.loads(body).get("sources") or {}
    arn = sources.get("reward_function_arn")
    return arn if isinstance(arn, str) else None


def alias_versions(lambda_: Any, function: str) -> Iterator[tuple[str, str]]:
    """(version, alias name) for every version an alias routes to."""
    for page in lambda_.get_paginator("list_aliases").paginate(FunctionName=_name(function)):
        for alias in page["Aliases"]:
            yield alias["FunctionVersion"], alias["Name"]
            weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
            for version in weights:
                yield version, alias["Name"]


def bedrock_graders(bedrock: Any) -> Iterator[tuple[str, str | None]]:
    """(job ARN, its grader's Lambda ARN) of every active native customization job."""
    paginator = bedrock.get_paginator("list_model_customization_jobs")
    for status in BEDROCK_ACTIVE:
        for page in paginator.paginate(statusEquals=status):
            for summary in page.get("modelCustomizationJobSummaries", []):
                job = bedrock.get_model_customization_job(jobIdentifier=summary["jobArn"])
                config = (job.get("customizationConfig") or {}).get("rftConfig") or {}
                grader = (config.get("graderConfig") or {}).get("lambdaGrader") or {}
                yield summary["jobArn"], grader.get("lambdaArn")


def openai_graders(client: Any) -> Iterator[tuple[str, str | None]]:
    """(job id, its grader's function ARN, None when the service does not show it) of every
    active OpenAI-compatible fine-tuning job.

    Whether Bedrock returns a job's ``method`` on list is not documented [open]: a job without
    one blocks deletion rather than being assumed harmless.
    """
    for job in client.fine_tuning.jobs.list():
        if job.status not in OPENAI_ACTIVE:
            continue
        # The SDK's typed grader union has no ``lambda`` member: read the fields as sent.
        method = job.model_dump(warnings=False).get("method") or {}
        grader = (method.get("reinforcement") or {}).get("grader") or {}
        function = (grader.get("lambda") or {}).get("function")
        yield job.id, function if isinstance(function, str) else None


def running_evaluations(stepfunctions: Any, state_machine: str) -> list[str]:
    """The names of the evaluation's running executions."""
    paginator = stepfunctions.get_paginator("list_executions")
    pages = paginator.paginate(stateMachineArn=state_machine, statusFilter="RUNNING")
    return [e["name"] for page in pages for e in page["executions"]]


def plan(config: EnvironmentConfig, clients: Clients) -> Plan:
    """What may be deleted, and why everything else is kept."""
    outputs = stack_outputs(clients.cloudformation, config.stack_name)
    current = outputs.get(VERSION_OUTPUT)
    if not current:
        raise PruneError(f"stack {config.stack_name} has no output {VERSION_OUTPUT}")
    function, _ = split_arn(current)
    result = Plan(function, published_versions(clients.lambda_, function))
    result.keep(current, f"the stack's current version (output {VERSION_OUTPUT})")
    _keep_recorded(result, config, outputs, clients)
    for version, alias in alias_versions(clients.lambda_, function):
        result.keep(f"{function}:{version}", f"alias {alias} points to it")
    _keep_active_jobs(result, config, clients)
    state_machine = outputs.get(EVALUATION_OUTPUT)
    if state_machine:
        running = running_evaluations(clients.stepfunctions, state_machine)
        if running:
            result.blocked.append(
                f"evaluation {', '.join(running)} is running (it grades with the version its "
                "job record named when it started)"
            )
    return result


def _keep_recorded(
    result: Plan, config: EnvironmentConfig, outputs: dict[str, str], clients: Clients
) -> None:
    """Keep the versions of the job record and of the promoted model's evaluation."""
    job_parameter = f"/bedrock-rft/{config.name}/job"
    job = read_record(clients.ssm, job_parameter)
    if job is not None:
        result.keep(
            job.get("reward_function_arn"),
            f"the job record {job_parameter} (job {job.get('job_id')}) grades with it",
        )
    model_parameter = outputs.get("ModelParameter") or f"/bedrock-rft/{config.name}/model"
    model = read_record(clients.ssm, model_parameter)
    if model is None:
        return
    uri = model.get("summary_uri")
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        result.blocked.append(f"{model_parameter} names no evaluation summary_uri")
        return
    try:
        graded = summary_version(clients.s3, uri)
    except Exception as err:
        if aws_access_problem(err, "S3") is not None:
            raise
        code = getattr(err, "response", {}).get("Error", {}).get("Code")
        result.blocked.append(f"cannot read {uri} ({code or type(err).__name__})")
        return
    if graded is None:
        result.blocked.append(f"{uri} names no sources.reward_function_arn")
    result.keep(
        graded,
        f"the promoted model's evaluation ({model_parameter}, job {model.get('job_id')}) "
        "graded with it",
    )


def _keep_active_jobs(result: Plan, config: EnvironmentConfig, clients: Clients) -> None:
    """Keep the grader of every active job of the backend (block on one not shown)."""
    graders: Iterator[tuple[str, str | None]] = iter(())
    if config.backend == "bedrock" and clients.bedrock is not None:
        graders = bedrock_graders(clients.bedrock)
    elif config.backend == "openai" and clients.openai is not None:
        graders = openai_graders(clients.openai())
    for job_id, grader in graders:
        if grader is None:
            result.blocked.append(f"active job {job_id}: the service does not show its grader")
        else:
            result.keep(grader, f"active job {job_id} grades with it")


def apply(lambda_: Any, result: Plan) -> list[str]:
    """Delete the deletable versions; the ones deleted."""
    deleted = []
    for version in result.deletable:
        lambda_.delete_function(FunctionName=_name(result.function), Qualifier=version)
        deleted.append(version)
    return deleted


def report(config: EnvironmentConfig, result: Plan, applied: bool) -> list[str]:
    """The lines printed: every version, kept (why) or deleted / to delete."""
    name = _name(result.function)
    lines = [
        f"prune-versions {config.name}: {name} has "
        f"{len(result.versions)} published version(s) ($LATEST is never deleted)"
    ]
    for version in result.versions:
        if version in result.kept:
            lines.append(f"  keep {version}: {'; '.join(result.kept[version])}")
    lines += [f"  nothing is deleted: {why}" for why in result.blocked]
    deletable = result.deletable
    if not deletable:
        if not result.blocked:
            lines.append("  nothing to delete: every version is named by a record")
        return lines
    verb = "deleted" if applied else "would delete (dry run; APPLY=1 deletes)"
    lines.append(f"  {verb}: {', '.join(deletable)} (named by no record, alias or active job)")
    return lines


def environment(name: str, cdk_json: Path) -> EnvironmentConfig:
    """The named environment of ``cdk_json``, validated as synth validates it."""
    try:
        environments = read_environments(cdk_json)
    except PreconditionError as err:
        raise PruneError(str(err)) from None
    defined = ", ".join(environments)
    if not name:
        raise PruneError(f"set ENV=<environment> (defined in cdk.json: {defined})")
    if name not in environments:
        raise PruneError(f"ENV={name}: no such environment in cdk.json; defined: {defined}")
    try:
        return load_environments({"environments": environments}, ROOT, only=name)[0]
    except ConfigError as err:
        raise PruneError("; ".join(err.lines)) from None


def aws_clients(config: EnvironmentConfig) -> Clients:
    """boto3 clients in the environment's region."""
    import boto3

    def client(service: str) -> Any:
        return boto3.client(service, region_name=config.region)

    def openai() -> Any:
        for folder in (ROOT / "lambda" / "common",):
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
        from rft_common.mantle import openai_client

        return openai_client(config.region, route=config.mantle.route)

    return Clients(
        cloudformation=client("cloudformation"),
        lambda_=client("lambda"),
        ssm=client("ssm"),
        s3=client("s3"),
        stepfunctions=client("stepfunctions"),
        bedrock=client("bedrock") if config.backend == "bedrock" else None,
        openai=openai if config.backend == "openai" else None,
    )


def run(
    env: str,
    do_apply: bool,
    cdk_json: Path = ROOT / "cdk.json",
    clients: Callable[[EnvironmentConfig], Clients] = aws_clients,
) -> list[str]:
    """The report lines of a dry run (or of the deletion with ``do_apply``)."""
    config = environment(env, cdk_json)
    problem = credentials_problem(config.region)
    if problem is not None:
        why, remedy = problem
        raise PruneError(f"{why} (environment {config.name}, region {config.region}): {remedy}")
    connected = clients(config)
    try:
        result = plan(config, connected)
        applied = bool(result.deletable) and do_apply
        if applied:
            apply(connected.lambda_, result)
    except PruneError:
        raise
    except Exception as err:
        line = aws_access_problem(err, f"AWS in {config.region}")
        if line is None:
            raise  # a bug: keep the traceback
        raise PruneError(line) from None
    return report(config, result, applied)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the plan (or what was deleted); a user error is one line on stderr (exit 2)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="", help="the environment of cdk.json")
    parser.add_argument("--apply", action="store_true", help="delete (default: dry run)")
    parser.add_argument("--cdk-json", type=Path, default=ROOT / "cdk.json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        lines = run(args.env.strip(), args.apply, args.cdk_json)
    except PruneError as err:
        print(f"make prune-versions: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
