"""``python -m preflight``: check a dataset and a grader before an RFT job spends money.

    python -m preflight --dataset datasets/gsm8k/train.jsonl --grader graders/gsm8k.json \\
        [--validation datasets/gsm8k/validation.jsonl] [--env nova-dev] \\
        [--model openai.gpt-oss-20b --samples 100] [--json | --json-out F] [--plot F]

Exit status: 0 when no error was found (warnings allowed), 1 on any error, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from preflight.dataset import MAX_RECORDS, MIN_TRAIN_RECORDS, Limits, check_dataset, check_overlap
from preflight.findings import DEFAULT_EXAMPLES, Findings
from preflight.plot import plot_histograms
from preflight.report import PreflightReport, render_terminal, write_json
from preflight.reward import ROOT, GraderLoadError, RewardHandler

if TYPE_CHECKING:
    from rich.console import Console


class UsageError(ValueError):
    """Bad arguments or settings (exit status 2)."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m preflight",
        description="Check an RFT dataset and grader locally before training.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", required=True, type=Path, help="training JSONL file")
    data.add_argument("--validation", type=Path, help="validation JSONL file")
    data.add_argument("--grader", type=Path, help="grader definition (JSON)")
    data.add_argument("--env", help="environment in cdk.json (for maxPromptLength and region)")
    data.add_argument(
        "--max-prompt-length",
        type=int,
        help="prompt token limit (default: the environment's maxPromptLength)",
    )
    data.add_argument(
        "--grader-records",
        type=int,
        help="run the grader checks on at most this many records (default: all)",
    )
    base = parser.add_argument_group("baseline sampling (needs an endpoint)")
    base.add_argument("--model", help="base model id to sample from")
    base.add_argument("--samples", type=int, help="prompts to sample (default with --model: 100)")
    base.add_argument(
        "--per-prompt",
        type=int,
        default=1,
        help="responses per prompt (2-16: also the expected ZeroVarianceShare; default 1)",
    )
    base.add_argument("--concurrency", type=int, default=8, help="parallel requests (default 8)")
    base.add_argument("--max-tokens", type=int, help="max_tokens per response")
    base.add_argument("--temperature", type=float, help="sampling temperature")
    base.add_argument("--seed", type=int, default=0, help="seed of the prompt sample")
    base.add_argument("--region", help="Bedrock region (default: the environment's, AWS_REGION)")
    out = parser.add_argument_group("output")
    out.add_argument(
        "--json",
        action="store_true",
        help="print the JSON report on stdout instead of the terminal report",
    )
    out.add_argument("--json-out", type=Path, help="also write the JSON report to this file")
    out.add_argument("--plot", type=Path, help="write reward histograms to this PNG file")
    out.add_argument(
        "--examples",
        type=int,
        default=DEFAULT_EXAMPLES,
        help=f"examples shown per kind of problem (default {DEFAULT_EXAMPLES})",
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _environment(name: str) -> Any:
    """The validated EnvironmentConfig of ``name`` from cdk.json."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from stacks.config import ConfigError, load_environments

    try:
        context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
        return load_environments(context, ROOT, only=name)[0]
    except (OSError, KeyError, json.JSONDecodeError) as err:
        raise UsageError(f"cdk.json: cannot read the environments ({err})") from None
    except ConfigError as err:
        raise UsageError(str(err)) from None


def _looks_like_csv(path: Path) -> bool:
    """A .csv name, or a first line that is comma-separated text rather than a JSON object."""
    if path.suffix.lower() == ".csv":
        return True
    with path.open("rb") as handle:
        first = handle.readline(64 * 1024).decode("utf-8", "replace").lstrip("\ufeff").strip()
    if not first or first.startswith(("{", "[")):
        return False
    return len(next(csv.reader([first]), [])) >= 2


def _convert_command(path: Path) -> str:
    """The make convert command that turns the CSV ``path`` into RFT JSONL beside it."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        header = [name.strip() for name in next(csv.reader(handle), [])]
    command = f"make convert INPUT={path} OUTPUT={path.with_suffix('.jsonl')}"
    if path.suffix.lower() != ".csv":
        command += " FORMAT=csv"
    if "question" not in header or "answer" not in header:
        command += f" QUESTION=<column> ANSWER=<column> (columns: {', '.join(header)})"
    return command


def _check_args(args: argparse.Namespace) -> None:
    for flag, path in (
        ("--dataset", args.dataset),
        ("--validation", args.validation),
        ("--grader", args.grader),
    ):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} {path}: no such file")
        if flag != "--grader" and path is not None and _looks_like_csv(path):
            raise UsageError(
                f"{flag} {path}: CSV, not RFT JSONL; convert it first: {_convert_command(path)}"
            )
    for flag, value in (
        ("--max-prompt-length", args.max_prompt_length),
        ("--grader-records", args.grader_records),
        ("--samples", args.samples),
        ("--concurrency", args.concurrency),
        ("--max-tokens", args.max_tokens),
        ("--examples", args.examples),
    ):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1")
    if args.samples is not None and not args.model:
        raise UsageError("--samples needs --model")
    if not 1 <= args.per_prompt <= 16:
        raise UsageError("--per-prompt must be between 1 and 16")
    if args.per_prompt > 1 and not args.model:
        raise UsageError("--per-prompt needs --model")
    if args.model and args.grader is None:
        raise UsageError("--model needs --grader (the sampled responses are graded)")


@contextmanager
def _progress(
    console: Console, enabled: bool, description: str, total: int
) -> Iterator[Callable[[int], None]]:
    """A progress bar on the error console; yields advance(n)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def _route(env: str | None) -> str | None:
    """The environment's ``mantle.route`` override, if ``--env`` names one that sets it."""
    return _environment(env).mantle.route if env else None


def _require_region(model: str | None, region: str | None) -> None:
    """Sampling ``model`` needs an endpoint: said before any check runs, not after."""
    where = ("OPENAI_BASE_URL", "AWS_REGION", "AWS_DEFAULT_REGION")
    if model and not region and not any(os.environ.get(name) for name in where):
        raise UsageError(
            f"--model {model}: no region for Bedrock's endpoint: "
            "set ENV=<environment>, --region or AWS_REGION"
        )


def _client(model: str, region: str | None, env: str | None) -> Any:
    """The client that samples ``model``; a missing region or credentials is a usage error."""
    from preflight.baseline import make_client

    try:
        return make_client(region, model=model, route=_route(env))
    except Exception as err:  # no credentials: say so, as one line
        raise UsageError(f"--model {model}: cannot build the client: {err}") from None


def run(args: argparse.Namespace, err_console: Console) -> PreflightReport:
    """Run every check the arguments ask for; the report says whether it passed."""
    _check_args(args)
    findings = Findings(max_examples=args.examples)
    report = PreflightReport(findings=findings)
    max_prompt = args.max_prompt_length
    region = args.region
    environment = "preflight"
    if args.env:
        config = _environment(args.env)
        environment, region = config.name, region or config.region
        configured = getattr(config.typed_hyperparameters, "maxPromptLength", None)
        max_prompt = max_prompt or configured
        if max_prompt is None:
            report.notes.append(
                f"environment {config.name} (backend {config.backend}) sets no "
                "maxPromptLength: prompt lengths are reported, not checked"
            )
    elif max_prompt is None:
        report.notes.append(
            "no --env or --max-prompt-length: prompt lengths are reported, "
            "not checked against a limit"
        )
    _require_region(args.model, region)
    report.settings = {
        "dataset": str(args.dataset),
        "validation": args.validation and str(args.validation),
        "grader": args.grader and str(args.grader),
        "environment": args.env,
        "max_prompt_length": max_prompt,
        "model": args.model,
        "min_records": MIN_TRAIN_RECORDS,
        "max_records": MAX_RECORDS,
    }
    show = not args.no_progress

    started = time.perf_counter()
    train = check_dataset(
        args.dataset,
        "train",
        Limits(max_prompt_tokens=max_prompt),
        findings,
        display=str(args.dataset),
    )
    report.datasets.append(train)
    if args.validation is not None:
        # How many validation records Bedrock wants is [open]: at least one, at most the
        # training maximum.
        validation = check_dataset(
            args.validation,
            "validation",
            Limits(min_records=1, max_prompt_tokens=max_prompt),
            findings,
            display=str(args.validation),
        )
        report.datasets.append(validation)
        check_overlap(train, validation, findings)
    report.timings["dataset_checks"] = time.perf_counter() - started

    if args.grader is None:
        report.notes.append("no --grader: grader checks skipped")
        return report
    started = time.perf_counter()
    try:
        handler = RewardHandler(args.grader, environment=environment)
    except GraderLoadError as err:
        findings.error("grader-load", "grader cannot be loaded", str(err))
        return report
    records = train.valid[: args.grader_records] if args.grader_records else train.valid
    from preflight.grader_checks import JUDGED_RECORDS, PROBES, run_grader_checks

    with _progress(err_console, show, "grader checks", len(PROBES) * len(records)) as advance:
        report.grader = run_grader_checks(
            handler,
            records,
            findings,
            str(args.dataset),
            progress=advance,
            judged_records=None if args.grader_records else JUDGED_RECORDS,
        )
    report.notes.extend(report.grader.notes)
    report.timings["grader_checks"] = time.perf_counter() - started

    if args.model and report.grader.completed:
        from preflight.baseline import run_baseline

        started = time.perf_counter()
        count = min(args.samples or 100, len(train.valid))
        client = _client(args.model, region, args.env)
        total = count * args.per_prompt
        with _progress(err_console, show, f"sampling {args.model}", total) as advance:
            report.baseline = run_baseline(
                handler,
                client,
                args.model,
                train.valid,
                count=count,
                findings=findings,
                concurrency=args.concurrency,
                max_tokens=args.max_tokens,
                temperature=args.temperature,
                seed=args.seed,
                on_done=lambda: advance(1),
                per_prompt=args.per_prompt,
            )
        report.timings["baseline"] = time.perf_counter() - started
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 passed, 1 errors found, 2 bad usage."""
    from rich.console import Console

    args = build_parser().parse_args(argv)
    err_console = Console(stderr=True)
    try:
        report = run(args, err_console)
    except UsageError as err:
        print("\n".join(f"preflight: {line}" for line in str(err).splitlines()), file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        # Not a terminal (CI logs): wider than the default 80 columns, so paths stay whole.
        render_terminal(report, Console(width=None if sys.stdout.isatty() else 120))
    try:
        _write_outputs(report, args.json_out, args.plot)
    except OSError as err:
        print(
            f"preflight: cannot write the report: {err.filename}: {err.strerror}", file=sys.stderr
        )
        return 2
    return 0 if report.passed else 1


def _write_outputs(report: PreflightReport, json_out: Path | None, plot: Path | None) -> None:
    """Write the JSON and the PNG of this run; an older PNG without a successor is removed,
    so that the two files beside each other always describe the same run."""
    if json_out is not None:
        write_json(report, json_out)
    if plot is not None and not plot_histograms(report, plot):
        plot.unlink(missing_ok=True)
        print(f"preflight: no rewards to plot (no {plot} written)", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
