"""Read the rollout samples the reward function kept, newest first
(``make samples ENV=<env> [JOB=] [SINCE=] [LIMIT=] [MIN_SCORE= MAX_SCORE=] [GREP=] [SOURCE=]``).

The samples are in the environment's artifacts bucket under ``rollouts/<env>/<date>/<hour>/``
(the stack output ``RolloutSamplesUri``); they are read with your own AWS credentials.
``SOURCE=`` reads another place instead: an ``s3://bucket/prefix`` or a local folder of
``*.jsonl.gz`` files in the same layout (no AWS needed).

Filters: ``SINCE`` (``6h``, ``2d``, ``90m``, or a UTC date/time ``2026-12-01``,
``2026-12-01T10:00``; default 24h), ``MIN_SCORE``/``MAX_SCORE`` (0 to 1), ``GREP`` (a
case-insensitive regular expression searched in the id, prompt, response and grader error),
``JOB`` (the environment's current job, by the reward function version it grades with; the
samples do not name a job, Bedrock does not tell the grader), ``LIMIT`` (default 20).

Prints a table (score, sub-scores, the response's start and end, why the grader decided) and
writes a self-contained HTML page to ``reports/``; the last line is its path. Bad input,
missing credentials or an environment without samples is one line on stderr (exit 1).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

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
from scripts.preconditions import environment as raw_environment  # noqa: E402
from stacks.config import ConfigError, EnvironmentConfig, load_environments  # noqa: E402

DEFAULT_LIMIT = 20
DEFAULT_SINCE = timedelta(hours=24)
OUTPUT_NAME = "RolloutSamplesUri"
SHOWN = 60  # characters of a response's start and of its end in the table
_RELATIVE = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class SamplesError(Exception):
    """Something the user can fix: the one line to print."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise SamplesError(message)


@dataclass(frozen=True)
class Filters:
    """What to show."""

    since: datetime
    limit: int
    min_score: float
    max_score: float
    grep: re.Pattern[str] | None
    function_arn: str | None  # JOB: the reward version the job grades with

    def keeps(self, line: dict[str, Any]) -> bool:
        """Whether one stored rollout passes every filter."""
        score = line.get("score")
        if not isinstance(score, int | float) or not self.min_score <= score <= self.max_score:
            return False
        if _time_of(line) < self.since:
            return False
        if self.function_arn is not None and line.get("function") != self.function_arn:
            return False
        if self.grep is not None:
            text = "\n".join(
                [str(line.get("id", "")), _prompt_text(line), _response(line), _why(line)]
            )
            if not self.grep.search(text):
                return False
        return True


def parse_since(text: str, now: datetime) -> datetime:
    """``SINCE`` as a UTC time (see the module docstring for the forms)."""
    text = text.strip()
    if not text:
        return now - DEFAULT_SINCE
    relative = _RELATIVE.match(text)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SamplesError(
            f"SINCE={text}: not a time; use e.g. 6h, 2d, 90m, 2026-12-01 or 2026-12-01T10:00 (UTC)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _score(name: str, text: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise SamplesError(f"{name}={text}: not a number (0 to 1)") from None
    if not 0.0 <= value <= 1.0:
        raise SamplesError(f"{name}={text}: must be between 0 and 1")
    return value


def filters_of(args: argparse.Namespace, now: datetime, function_arn: str | None) -> Filters:
    """The filters the command line asks for (one line for each bad value)."""
    limit_text = args.limit.strip()
    limit = DEFAULT_LIMIT
    if limit_text:
        if not limit_text.isdigit() or int(limit_text) < 1:
            raise SamplesError(f"LIMIT={limit_text}: must be a positive integer")
        limit = int(limit_text)
    low = _score("MIN_SCORE", args.min_score)
    high = _score("MAX_SCORE", args.max_score)
    if low is not None and high is not None and low > high:
        raise SamplesError(f"MIN_SCORE={low:g} is above MAX_SCORE={high:g}")
    grep = None
    if args.grep:
        try:
            grep = re.compile(args.grep, re.IGNORECASE)
        except re.error as err:
            raise SamplesError(f"GREP={args.grep}: not a regular expression ({err})") from None
    return Filters(
        since=parse_since(args.since, now),
        limit=limit,
        min_score=0.0 if low is None else low,
        max_score=1.0 if high is None else high,
        grep=grep,
        function_arn=function_arn,
    )


def environment(name: str, cdk_json: Path) -> EnvironmentConfig:
    """The named environment of ``cdk_json``, validated as synth validates it."""
    try:
        raw_environment(name, True, cdk_json)  # one line: no ENV, unknown ENV
        environments = read_environments(cdk_json)
    except PreconditionError as err:
        raise SamplesError(str(err)) from None
    try:
        return load_environments({"environments": environments}, ROOT, only=name)[0]
    except ConfigError as err:
        raise SamplesError(err.lines[0]) from None


# --- where the samples are -------------------------------------------------------------------


def _client(service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3})
    return boto3.client(service, region_name=region, config=config)


def stack_samples_uri(config: EnvironmentConfig) -> str:
    """The environment's ``RolloutSamplesUri`` stack output."""
    cloudformation = _client("cloudformation", config.region)
    try:
        stacks = cloudformation.describe_stacks(StackName=config.stack_name)["Stacks"]
    except Exception as err:
        code = getattr(err, "response", {}).get("Error", {}).get("Code")
        if code == "ValidationError":
            raise SamplesError(
                f"stack {config.stack_name} is not deployed in {config.region}: "
                f"make deploy ENV={config.name} first (or set SOURCE=)"
            ) from None
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if OUTPUT_NAME not in outputs:
        raise SamplesError(
            f"stack {config.stack_name} has no {OUTPUT_NAME} output: deploy this version "
            f"(make deploy ENV={config.name}) or set SOURCE=s3://<bucket>/rollouts/{config.name}"
        )
    return str(outputs[OUTPUT_NAME])


def job_function(config: EnvironmentConfig, job: str) -> str:
    """The reward version ``job`` grades with, from the environment's job record."""
    name = f"/bedrock-rft/{config.name}/job"
    try:
        record = read_json_parameter(_client("ssm", config.region), name)
    except PreconditionError:
        raise SamplesError(f"SSM parameter {name} does not hold a job record") from None
    if record is None:
        raise SamplesError(f"JOB={job}: environment {config.name} has no job yet")
    if record.get("job_id") != job:
        raise SamplesError(
            f"JOB={job}: not the current job of {config.name} ({record.get('job_id')}); the "
            "samples name the reward version, not the job: use SINCE= for older jobs"
        )
    arn = record.get("reward_function_arn")
    if not isinstance(arn, str) or not arn:
        raise SamplesError(f"JOB={job}: its record names no reward function version")
    return arn


def s3_objects(uri: str, region: str, since: datetime) -> Iterator[bytes]:
    """The batches under ``uri`` written since ``since``'s hour, newest first.

    Keys are ``<prefix>/<date>/<hour>/<batch>``, so their order is the order of time: one
    listing that starts after ``since``'s hour folder finds them all, however old the bucket.
    """
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    root = f"{prefix}/" if prefix else ""
    first = f"{root}{since:%Y-%m-%d}/{since:%H}/"
    s3 = _client("s3", region)
    keys: list[tuple[str, Any, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=root, StartAfter=first[:-1]
    ):
        for item in page.get("Contents", []):
            key = item["Key"]
            folder = key[len(root) : len(root) + 13]  # "YYYY-MM-DD/HH"
            if key >= first and len(folder) == 13:
                keys.append((folder, item["LastModified"], key))
    for _, _, key in sorted(keys, reverse=True):
        yield s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def local_objects(folder: Path) -> Iterator[bytes]:
    """The ``*.jsonl.gz`` files under ``folder``, newest path first."""
    if not folder.is_dir():
        raise SamplesError(f"SOURCE={folder}: no such folder")
    for path in sorted(folder.rglob("*.jsonl.gz"), reverse=True):
        yield path.read_bytes()


def read_lines(objects: Iterator[bytes], filters: Filters) -> tuple[list[dict[str, Any]], int]:
    """Up to ``filters.limit`` stored rollouts that pass the filters, and the batches read."""
    found: list[dict[str, Any]] = []
    batches = 0
    for body in objects:
        batches += 1
        try:
            text = gzip.decompress(body).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError):
            continue  # not a samples object: skipped, as a folder may hold anything
        for raw in text.splitlines():
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(line, dict) and filters.keeps(line):
                found.append(line)
                if len(found) >= filters.limit:
                    return found, batches
    return found, batches


# --- showing them ----------------------------------------------------------------------------


def _time_of(line: dict[str, Any]) -> datetime:
    try:
        when = datetime.fromisoformat(str(line.get("time", "")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _response(line: dict[str, Any]) -> str:
    response = line.get("response")
    return response if isinstance(response, str) else ""


def _prompt_text(line: dict[str, Any]) -> str:
    prompt = line.get("prompt")
    if not isinstance(prompt, list):
        return ""
    parts = []
    for message in prompt:
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(
                    str(block.get("text", "")) for block in content if isinstance(block, dict)
                )
            parts.append(f"{message.get('role', '?')}: {content}")
    return "\n".join(parts)


def _why(line: dict[str, Any]) -> str:
    """Why the grader decided, as far as the sample says."""
    if line.get("error"):
        return f"grader error: {line['error']}"
    reasons = []
    if line.get("unparsed"):
        reasons.append("no answer found")
    if line.get("repetitive"):
        reasons.append("repetitive response")
    if not reasons:
        reasons.append("graded" if "response" in line else "not a rollout")
    return "; ".join(reasons)


def _sub_scores(line: dict[str, Any]) -> str:
    metrics = line.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        return "-"
    return " ".join(f"{name}={_number(value)}" for name, value in metrics.items())


def _number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _ends(text: str) -> str:
    flat = _one_line(text)
    if len(flat) <= 2 * SHOWN + 5:
        return flat
    return f"{flat[:SHOWN]} ... {flat[-SHOWN:]}"


def table(lines: Sequence[dict[str, Any]]) -> str:
    """The readable table (one block per rollout)."""
    blocks = []
    for line in lines:
        when = _time_of(line).strftime("%Y-%m-%d %H:%M") if line.get("time") else "?"
        head = (
            f"score {_number(line.get('score'))}  id {line.get('id')}  {when}  "
            f"sub-scores: {_sub_scores(line)}  chars {len(_response(line))}"
        )
        blocks.append(
            f"{head}\n  response: {_ends(_response(line)) or '(none)'}\n  why: {_why(line)}"
        )
    return "\n\n".join(blocks)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.4em;
vertical-align:top;text-align:left}th{background:#f4f4f4}pre{white-space:pre-wrap;
margin:0;max-height:30em;overflow:auto}.err{color:#b00}.num{text-align:right}
"""


def page(title: str, lines: Sequence[dict[str, Any]], description: str) -> str:
    """A self-contained HTML page of the rollouts (no script, no external resource)."""
    rows = []
    for line in lines:
        why = html.escape(_why(line))
        css = ' class="err"' if line.get("error") else ""
        rows.append(
            "<tr>"
            f'<td class="num">{html.escape(_number(line.get("score")))}</td>'
            f"<td>{html.escape(str(line.get('id')))}<br><small>"
            f"{html.escape(str(line.get('time', '')))}</small></td>"
            f"<td>{html.escape(_sub_scores(line))}</td>"
            f"<td{css}>{why}</td>"
            f"<td><details><summary>prompt</summary><pre>{html.escape(_prompt_text(line))}"
            "</pre></details>"
            f"<details><summary>reference</summary><pre>"
            f"{html.escape(json.dumps(line.get('reference'), ensure_ascii=False, indent=1))}"
            "</pre></details></td>"
            f"<td><pre>{html.escape(_response(line) or json.dumps(line.get('rollout')))}"
            "</pre></td></tr>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(description)}</p>"
        "<table><thead><tr><th>score</th><th>id, time</th><th>sub-scores</th><th>why</th>"
        "<th>prompt, reference</th><th>response</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>\n"
    )


def write_page(out_dir: Path, env: str, content: str) -> Path:
    """Write the page under a name made of its content (same samples, same file)."""
    digest = hashlib.sha256(content.encode()).hexdigest()[:12]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"samples-{env}-{digest}.html"
    path.write_text(content, encoding="utf-8")
    return path


# --- the command -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = _Parser(prog="samples", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--env", default="")
    parser.add_argument("--job", default="")
    parser.add_argument("--since", default="")
    parser.add_argument("--limit", default="")
    parser.add_argument("--min-score", default="")
    parser.add_argument("--max-score", default="")
    parser.add_argument("--grep", default="")
    parser.add_argument("--source", default="", help="s3://bucket/prefix or a local folder")
    parser.add_argument("--cdk-json", type=Path, default=ROOT / "cdk.json")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "reports")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, now: datetime | None = None) -> tuple[str, Path]:
    """(the table, the page's path) for the command line."""
    now = now or datetime.now(UTC)
    config = environment(args.env.strip(), args.cdk_json)
    filters_of(args, now, None)  # every bad value is reported before AWS is asked
    source = args.source.strip()
    local = bool(source) and not source.startswith("s3://")
    if not local:
        problem = credentials_problem(config.region)
        if problem is not None:
            why, remedy = problem
            raise SamplesError(
                f"{why} (region {config.region}) to read the rollout samples: {remedy} "
                "(or set SOURCE=<folder>)"
            )
    where = f"AWS in {config.region}"
    try:
        function_arn = job_function(config, args.job.strip()) if args.job.strip() else None
        filters = filters_of(args, now, function_arn)
        if local:
            objects = local_objects(Path(source))
            origin = source
        else:
            origin = source or stack_samples_uri(config)
            objects = s3_objects(origin, config.region, filters.since)
        lines, batches = read_lines(objects, filters)
    except SamplesError:
        raise
    except Exception as err:
        line = aws_access_problem(err, where)
        error = getattr(err, "response", {}).get("Error", {})
        if line is None and error.get("Code"):
            line = f"{where} answered {error['Code']}: {error.get('Message', '')}"
        if line is None:
            raise  # a bug: keep the traceback
        raise SamplesError(line) from None
    description = (
        f"{len(lines)} rollouts from {batches} batches of {origin} since "
        f"{filters.since:%Y-%m-%d %H:%M} UTC, scores {filters.min_score:g} to "
        f"{filters.max_score:g}" + (f", matching /{args.grep}/" if args.grep else "")
    )
    text = table(lines) if lines else "(no rollout samples match)"
    path = write_page(
        args.out_dir, config.name, page(f"Rollout samples: {config.name}", lines, description)
    )
    return f"{description}\n\n{text}", path


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table, then the page's path (last line); a user error is one line."""
    try:
        text, path = run(parse_args(argv))
    except SamplesError as err:
        raise SystemExit(f"samples: {err}") from None
    print(text)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
