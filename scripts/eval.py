"""``make eval``: the tuned model against the base model from a laptop, with the evaluation's
own code (``lambda/evaluation/rft_eval``: the same sampling, records, figures, report and gate
as the state machine's workers and aggregation).

- Environment: ``ENV`` in cdk.json (backend, region, base model, dataset, grader, the
  ``evaluation`` block); ``--cdk-json`` reads another file (its paths are still the
  project's, as synth reads them).
- Models: ``MODEL`` (the tuned model id; on the bedrock backend, its deployment ARN, which
  is required there), else ``JOB``'s fine-tuned model (asked of the endpoint), else the
  environment's job record ``/bedrock-rft/<env>/job`` (AWS credentials needed). ``BASE``
  replaces the environment's base model.
- Calls: the ``openai`` SDK on Bedrock's OpenAI-compatible endpoint of the environment's
  region (``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` override it), or Converse on the bedrock
  backend; 429s are waited out as in the cloud.
- Grading: the reward Lambda's own handler, in-process, with the environment's grader
  definition, invoked with Bedrock's event shape (``preflight.reward``).
- Prompts: the dataset's local ``validation.jsonl`` (the first ``LIMIT``).

Writes ``records.jsonl``, ``summary.json``, ``report.md`` and ``report.png`` under
``reports/eval-<job or model>-<digest of the inputs>/`` and prints the path of
``summary.json`` as its last line. Exit status 0 whether or not the gate would promote; 2 with
one line on stderr for anything the user can fix.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
for _folder in (ROOT / "lambda" / "common", ROOT / "lambda" / "evaluation", ROOT):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from rft_eval.evaluate import EndpointError, evaluate  # noqa: E402
from rft_eval.ids import canonical_json, safe_job_id  # noqa: E402
from rft_eval.outputs import build_summary, render  # noqa: E402
from rft_eval.retry import Backoff  # noqa: E402
from rft_eval.sampling import (  # noqa: E402
    REQUEST_TIMEOUT_SECONDS,
    BedrockSampler,
    OpenAISampler,
    Sampler,
)
from rft_eval.settings import MODELS, PromoteWhen, Settings  # noqa: E402

from scripts import preconditions  # noqa: E402
from scripts.preconditions import (  # noqa: E402
    PreconditionError,
    credentials_problem,
    read_environments,
)
from stacks.config import ConfigError, EnvironmentConfig, load_environments  # noqa: E402

# A person at a terminal: an unreachable endpoint fails in seconds, a throttled one is waited
# out as in the cloud.
LOCAL_BACKOFF = Backoff(attempts=3, base=0.5, cap=30.0)
CONNECT_TIMEOUT = 10.0


def _shown(path: object) -> str:
    """A path as the summary records it: relative to the project when inside it, so that the
    same inputs give the same summary on every machine."""
    resolved = Path(str(path)).resolve()
    try:
        return resolved.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


class EvalError(Exception):
    """Something the user can fix: the one line to print."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise EvalError(message)


def positive(name: str) -> Any:
    """An argparse type: a positive integer, named as the make variable in errors."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise EvalError(f"{name}={text}: must be a positive integer") from None
        if value < 1:
            raise EvalError(f"{name}={text}: must be a positive integer")
        return value

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = _Parser(prog="eval", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--env", default="", help="the environment in cdk.json")
    parser.add_argument("--job", default="", help="the fine-tuning job id")
    parser.add_argument("--model", default="", help="the tuned model id (or deployment ARN)")
    parser.add_argument("--base", default="", help="the base model id (default: the env's)")
    parser.add_argument("--limit", type=positive("LIMIT"), help="the first N prompts")
    parser.add_argument("--samples", type=positive("SAMPLES"), help="samples per prompt")
    parser.add_argument("--cdk-json", type=Path, default=ROOT / "cdk.json")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "reports")
    parser.add_argument(
        "--keep-rollouts",
        type=Path,
        help="keep every graded rollout in this folder, as the deployed function keeps its "
        "samples (read them with make samples SOURCE=<folder>)",
    )
    return parser.parse_args(argv)


def environment(name: str, cdk_json: Path) -> EnvironmentConfig:
    """The named environment of ``cdk_json``, validated as synth validates it."""
    try:
        preconditions.environment(name, True, cdk_json)  # one line: no ENV, unknown ENV
        environments = read_environments(cdk_json)
    except PreconditionError as err:
        raise EvalError(str(err)) from None
    try:
        # Paths in it are the project's (as synth reads them), wherever the file is.
        return load_environments({"environments": environments}, ROOT, only=name)[0]
    except ConfigError as err:
        raise EvalError(err.lines[0]) from None


def _needs_credentials(env: EnvironmentConfig, why: str) -> None:
    problem = credentials_problem(env.region)
    if problem is not None:
        reason, remedy = problem
        raise EvalError(f"{reason} (region {env.region}) {why}: {remedy}")


def tuned_model(env: EnvironmentConfig, job: str, model: str) -> tuple[str, str | None]:
    """(the tuned model id, the job id if known)."""
    if model:
        return model, job or None
    if env.backend == "bedrock":
        # The custom model itself is not invocable on demand: its deployment is, and where
        # the deployment's ARN is recorded is the serving step's (not settled here).
        raise EvalError(
            f"{f'JOB={job}: ' if job else ''}the bedrock backend calls a tuned model through "
            "its on-demand deployment: set MODEL=<deployment ARN>"
        )
    if job:
        return _fine_tuned_model_of(env, job), job
    parameter = f"/bedrock-rft/{env.name}/job"
    _needs_credentials(env, f"to read {parameter} (or set MODEL=<tuned model id>)")
    record = _job_record(env, parameter)
    found = record.get("fine_tuned_model")
    if not isinstance(found, str) or not found:
        raise EvalError(
            f"{parameter}: job {record.get('job_id')} has no tuned model yet (status "
            f"{record.get('status')}): wait for it, or set MODEL=<tuned model id>"
        )
    return found, str(record.get("job_id") or "") or None


def _job_record(env: EnvironmentConfig, parameter: str) -> dict[str, Any]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        ssm = boto3.client("ssm", region_name=env.region)
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "?")
        if code == "ParameterNotFound":
            raise EvalError(
                f"{parameter} does not exist in {env.region}: deploy ENV={env.name} with a job, "
                "or set MODEL=<tuned model id>"
            ) from None
        raise EvalError(
            f"{parameter}: {code}: {err.response['Error'].get('Message', '')}"
        ) from None
    except BotoCoreError as err:
        raise EvalError(f"cannot read {parameter} ({err})") from None
    try:
        record = json.loads(value)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        raise EvalError(f"{parameter}: not a job record; set MODEL=<tuned model id>")
    return record


def _fine_tuned_model_of(env: EnvironmentConfig, job: str) -> str:
    import openai
    from rft_common.mantle import openai_client

    if not os.environ.get("OPENAI_API_KEY"):
        _needs_credentials(env, f"to ask for job {job} (or set OPENAI_API_KEY)")
    client = openai_client(env.region, max_retries=1, timeout=openai.Timeout(60, connect=10))
    try:
        found = client.fine_tuning.jobs.retrieve(job)
    except openai.NotFoundError:
        raise EvalError(f"JOB={job}: not found at {client.base_url}") from None
    except openai.APIConnectionError as err:
        raise EvalError(f"cannot reach {client.base_url} ({err})") from None
    except openai.APIStatusError as err:
        raise EvalError(f"{client.base_url} answered {err.status_code} for JOB={job}") from None
    if not found.fine_tuned_model:
        raise EvalError(f"JOB={job} has no fine-tuned model (status {found.status})")
    return str(found.fine_tuned_model)


def read_rows(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """The first ``limit`` rows of the validation file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise EvalError(f"{path}: cannot read it ({err.strerror})") from None
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise EvalError(f"{path} line {number}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
            raise EvalError(f"{path} line {number}: not an object with messages")
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise EvalError(f"{path}: no prompts")
    return rows


def sampler_for(env: EnvironmentConfig) -> tuple[Sampler, str]:
    """The model caller of the environment's backend and where it calls (for messages)."""
    if env.backend == "bedrock":
        _needs_credentials(env, "to call Bedrock")
        return BedrockSampler.for_region(
            env.region, backoff=LOCAL_BACKOFF
        ), f"Bedrock in {env.region}"
    if not os.environ.get("OPENAI_API_KEY"):
        _needs_credentials(
            env, "to call Bedrock's OpenAI-compatible endpoint (or set OPENAI_API_KEY)"
        )
    from openai import Timeout
    from rft_common.mantle import base_url

    timeout = Timeout(REQUEST_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT)
    sampler = OpenAISampler(
        env.region, route=env.mantle.route, backoff=LOCAL_BACKOFF, timeout=timeout
    )
    return sampler, base_url(env.region, route=env.mantle.route)


def settings_of(env: EnvironmentConfig, args: argparse.Namespace) -> Settings:
    """The environment's evaluation settings, with LIMIT and SAMPLES applied."""
    config = env.evaluation
    return Settings(
        samples_per_prompt=args.samples or config.samples_per_prompt,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        pass_threshold=config.pass_threshold,
        limit=args.limit or config.limit,
        bootstrap_resamples=config.bootstrap_resamples,
        seed=config.seed,
        promote_when=PromoteWhen(**config.promote_when.model_dump()),
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def out_folder(
    out_dir: Path,
    name: str,
    *,
    models: dict[str, str],
    settings: Settings,
    env: EnvironmentConfig,
    files: Sequence[Path],
) -> Path:
    """``reports/eval-<name>-<digest>``: the same inputs, the same folder."""
    inputs = {
        "environment": env.name,
        "backend": env.backend,
        "models": models,
        "settings": settings.to_dict(),
        "files": [_digest(path) for path in files],
    }
    digest = hashlib.sha256(canonical_json(inputs).encode()).hexdigest()[:8]
    return out_dir / f"eval-{safe_job_id(name)}-{digest}"


def probe(
    sampler: Sampler, models: dict[str, str], row: dict[str, Any], settings: Settings, where: str
) -> None:
    """One call of each model before the run: an unreachable endpoint, a refused key or an
    unknown model is one line, not a progress bar of failures."""
    for model in MODELS:
        try:
            sampler.complete(models[model], row["messages"], settings)
        except Exception as err:
            text = " ".join(str(err).split())[:300]
            raise EvalError(
                f"{where}: the {model} model {models[model]} cannot be called "
                f"({type(err).__name__}: {text})"
            ) from None


def run(args: argparse.Namespace) -> Path:
    """The evaluation; the path of summary.json."""
    from preflight.reward import GraderLoadError, RewardHandler

    env = environment(args.env, args.cdk_json)
    tuned, job_id = tuned_model(env, args.job, args.model)
    models = {"base": args.base or env.base_model, "tuned": tuned}
    settings = settings_of(env, args)
    dataset = Path(env.dataset)
    dataset = dataset if dataset.is_absolute() else ROOT / dataset
    validation = dataset / "validation.jsonl"
    rows = read_rows(validation, settings.limit)
    grader_path = Path(env.grader)
    grader_path = grader_path if grader_path.is_absolute() else ROOT / grader_path
    try:
        grader = RewardHandler(grader_path, environment=env.name, keep_rollouts=args.keep_rollouts)
    except GraderLoadError as err:
        raise EvalError(str(err)) from None
    sampler, where = sampler_for(env)
    calls = len(rows) * len(MODELS) * settings.samples_per_prompt
    from tqdm import tqdm

    print(
        f"eval: {len(rows)} prompts x {settings.samples_per_prompt} sample(s), base "
        f"{models['base']} vs tuned {models['tuned']} at {where}"
    )
    probe(sampler, models, rows[0], settings, where)
    with tqdm(total=calls, unit="call", file=sys.stderr, desc="eval") as bar:
        try:
            records = evaluate(
                rows, models, settings, sampler, grader.invoke, on_call=bar.update, fail_fast=True
            )
        except EndpointError as err:
            raise EvalError(f"{where}: {err}") from None
    summary = build_summary(
        records,
        settings,
        job_id=job_id,
        environment=env.name,
        backend=env.backend,
        sources={"grader": _shown(env.grader), "validation": _shown(validation), "reward": "local"},
    )
    folder = out_folder(
        args.out_dir,
        job_id or tuned,
        models=models,
        settings=settings,
        env=env,
        files=(validation, grader_path),
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in render(summary, records).items():
        (folder / name).write_bytes(body)
    for line in _lines(summary):
        print(line)
    return folder / "summary.json"


def _lines(summary: dict[str, Any]) -> list[str]:
    base, tuned, diff = summary["base"], summary["tuned"], summary["difference"]
    ci = diff["ci95"]
    return [
        f"prompts compared: {summary['n_prompts']} (excluded: {summary['excluded_prompts']}, "
        f"failed calls: {summary['failed_calls']}, tuned samples scored 0 for a failure: "
        f"{tuned['scored_as_failed']})",
        f"mean reward: base {base['mean_reward']}, tuned {tuned['mean_reward']}; pass rate: base "
        f"{base['pass_rate']}, tuned {tuned['pass_rate']}",
        f"difference: {diff['mean']} (95% CI {ci}); wins/ties/losses {summary['wins']}/"
        f"{summary['ties']}/{summary['losses']}",
        f"gate: {'would promote' if summary['promoted'] else 'would not promote'} "
        f"(rule {summary['decision']['rule']}: {summary['promotion_reason']}; the promoted "
        "model is not compared from a laptop)",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``make eval``; 0 on success (promoted or not), 2 with one line on a user error."""
    try:
        path = run(parse_args(argv))
    except EvalError as err:
        print(f"eval: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
