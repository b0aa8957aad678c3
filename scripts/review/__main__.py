"""``make review [BASE=<ref>] [FORMAT=json]``: the working tree against a base ref.

``python -m scripts.review --base <ref> [--format json] [--output FILE]`` from the project
root synthesizes the base and the working tree (into ``cdk.out``) with ``make synth``. Exit
status 0 with the report; 1 when a gate fails (preflight finds errors in a changed dataset or
grader of an environment that starts a job); 2 when the review cannot be made (one
``error:`` line).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scripts.review.infra import StackChanges, template_diffs
from scripts.review.render import json_line, markdown
from scripts.review.retraining import DATA_INPUTS, retraining, volume
from scripts.review.synth import ROOT, ReviewError, resolve_base, synthesize, tool_differences
from scripts.synthesized import ManifestError, locations, templates
from stacks.config import ConfigError, EnvironmentConfig, load_environments

BASE_PACKS = ("AwsSolutions", "Serverless")


def _configs() -> dict[str, EnvironmentConfig]:
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return {config.stack_name: config for config in load_environments(context, ROOT)}


def _load(path: Path | None) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path else None


def _preflight(config: EnvironmentConfig) -> dict[str, Any]:
    """Preflight's own checks of the environment's dataset and grader (no model sampling)."""
    from rich.console import Console

    from preflight.__main__ import build_parser, run

    folder = ROOT / config.dataset
    args = ["--dataset", str(folder / "train.jsonl"), "--grader", str(ROOT / config.grader)]
    if (folder / "validation.jsonl").is_file():
        args += ["--validation", str(folder / "validation.jsonl")]
    args += ["--env", config.name, "--no-progress"]
    report = run(build_parser().parse_args(args), Console(stderr=True, quiet=True))
    return {
        "passed": report.passed,
        "errors": report.findings.error_count,
        "warnings": report.findings.warning_count,
        "findings": [
            relative(
                f"{g.severity} {g.code}: {g.title} ({g.count})"
                + (f", e.g. {g.examples[0]}" if g.examples else "")
            )
            for g in report.findings.groups
        ],
    }


def relative(text: str, root: Path = ROOT) -> str:
    """``text`` with the project's absolute path dropped (paths relative to the repository:
    the same report on every machine)."""
    return text.replace(f"{root}/", "").replace(str(root), ".")


def location_text(location: str) -> str:
    """``aws://<account>/<region>`` as a reader says it: the region, and the account if known."""
    account, _, region = location.removeprefix("aws://").partition("/")
    return region if account in ("", "unknown-account") else f"{region} (account {account})"


def gates(config: EnvironmentConfig | None, preflight: dict[str, Any] | None) -> dict[str, Any]:
    """The gates of one environment: the nag packs (synthesis fails when one does, so they
    pass here) and preflight of a changed dataset or grader; ``failed`` names the failing."""
    packs = [*BASE_PACKS, *getattr(config, "compliance_packs", ())]
    failed = ["preflight"] if preflight is not None and not preflight["passed"] else []
    if failed:
        assert preflight is not None
        text = f"**fails**: preflight ({preflight['errors']} error(s)); packs pass: " + ", ".join(
            packs
        )
    else:
        text = "gates pass: " + ", ".join(packs)
    return {"failed": failed, "text": text}


def environment_facts(
    config: EnvironmentConfig | None,
    changes: StackChanges,
    base: dict[str, Any] | None,
    head: dict[str, Any] | None,
    checked: dict[tuple[str, str], dict[str, Any]],
    *,
    moved: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the report says about one environment, as plain data. ``moved``: the
    stack's old and new location, where the change moves it (then ``base`` is None: the
    stack in the new location is a new stack)."""
    replaced_ids = {entry["logical_id"] for entry in changes.replaced}
    job = retraining(config, base, head, replaced_ids)
    facts: dict[str, Any] = {
        "resource_changes": changes.resource_changes,
        "added": changes.added,
        "removed": changes.removed,
        "modified": len(changes.modified),
        "replaced": changes.replaced,
        "data_loss": changes.data_loss,
        "iam_changes": changes.iam_changes,
        "iam_broadened": bool(changes.iam.get("broadened")),
        "iam": changes.iam,
        "retrains": job.retrains if config is not None else None,
        "job_start": config.job.start if config is not None else None,
        "retraining": job.summary,
        "identity_changes": job.identity_changes,
        "old_job": job.old_job,
        "grader_version": job.grader_version,
        "compliance": "",
        "gates_failed": [],
        "moved": moved,
        "volume": None,
        "preflight": None,
        "cdk_diff": changes.text,
    }
    if moved is not None:
        facts["old_job"] = (
            f"new stack in {location_text(moved['to'])}; the stack in "
            f"{location_text(moved['from'])} and its job are not touched (delete it yourself)"
        )
    if config is not None and job.retrains:
        facts["volume"] = volume(config, ROOT).to_dict()
        inputs = {change["input"] for change in job.identity_changes}
        if inputs & (DATA_INPUTS | {"job"}):
            key = (config.dataset, config.grader)
            if key not in checked:
                checked[key] = _preflight(config)
            facts["preflight"] = checked[key]
    verdict = gates(config, facts["preflight"])
    facts["compliance"], facts["gates_failed"] = verdict["text"], verdict["failed"]
    return facts


def review(base_ref: str | None, log: list[str]) -> dict[str, Any]:
    """The review of the working tree against ``base_ref`` (both synthesized here)."""
    base = resolve_base(base_ref)
    notes = []
    differ = tool_differences(base.commit)
    if differ:
        notes.append(
            f"the base pins other tools ({', '.join(differ)}); it was synthesized with this "
            "checkout's: a difference may come from the tools, not from the change"
        )
    base_dir, head_outdir = synthesize(base, log)
    base_templates, head_templates = templates(base_dir), templates(head_outdir)
    base_at, head_at = locations(base_dir), locations(head_outdir)
    configs = _configs()
    names = list(head_templates) + [n for n in base_templates if n not in head_templates]
    # A stack whose account or region changes is a new stack where it now deploys (a stack
    # name is unique per account and region): its diff is against nothing.
    moves = {
        n: {"from": base_at[n], "to": head_at[n]}
        for n in names
        if n in base_at and n in head_at and base_at[n] != head_at[n]
    }
    pairs = {
        n: (None if n in moves else base_templates.get(n), head_templates.get(n)) for n in names
    }
    diffs = template_diffs(pairs)
    checked: dict[tuple[str, str], dict[str, Any]] = {}
    environments, others = {}, {}
    for name in names:
        config = configs.get(name)
        old, new = pairs[name]
        moved = moves.get(name)
        facts = environment_facts(config, diffs[name], _load(old), _load(new), checked, moved=moved)
        if moved is not None:
            notes.append(f"{name}: {facts['old_job']}")
        elif old is None:
            notes.append(f"{name} is new in this change")
        if new is None:
            notes.append(f"{name} is no longer synthesized: deploying does not delete it")
        if config is not None:
            environments[config.name] = facts
        else:
            others[name] = facts
    return {
        "base": {"ref": base.ref, "commit": base.commit},
        "environments": environments,
        "other_stacks": others,
        "notes": notes,
        "gates_failed": sorted(
            name for name, facts in environments.items() if facts["gates_failed"]
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the review (markdown, or JSON on the last line); see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="", help="git ref (default: merge base with main)")
    parser.add_argument("--format", choices=("markdown", "md", "json"), default="markdown")
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    log: list[str] = []
    try:
        result = review(args.base or None, log)
    except (ReviewError, ManifestError, ConfigError) as err:
        print(f"error: review: {err}", file=sys.stderr)
        return 2
    for line in log:
        print(f"review: {line}", file=sys.stderr)
    report = markdown(result)
    if args.output:
        args.output.write_text(report, encoding="utf-8")
    print(
        json_line(result) if args.format == "json" else report,
        end="\n" if args.format == "json" else "",
    )
    return 1 if result["gates_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
