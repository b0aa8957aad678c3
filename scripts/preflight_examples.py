#!/usr/bin/env python3
"""Preflight what cdk.json deploys: each environment's dataset with its grader.

``make test`` runs this, so the checks follow the user's cdk.json instead of a fixed example:
each distinct (dataset, grader, prompt-length limit) is checked once, with the first
environment that uses it as ``--env`` (its ``maxPromptLength``). ``--env NAME`` (repeatable;
``make check`` passes the environments an edit touches) checks only those environments'.
Exit status 1 when any check fails or the configuration does not load (one ``error:`` line
per problem).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from preflight.__main__ import main as preflight  # noqa: E402 (after the path is set)
from stacks.config import ConfigError, EnvironmentConfig, load_environments  # noqa: E402


def checks(configs: list[EnvironmentConfig]) -> dict[tuple[str, str, object], list[str]]:
    """The environments of each distinct (dataset, grader, prompt-length limit), in order."""
    found: dict[tuple[str, str, object], list[str]] = {}
    for config in configs:
        limit = config.hyperparameters.get("maxPromptLength")
        found.setdefault((config.dataset, config.grader, limit), []).append(config.name)
    return found


def main(argv: list[str] | None = None) -> int:
    """Run preflight once per distinct check; 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", action="append", default=[], help="only this environment")
    only = parser.parse_args(argv).env
    os.chdir(ROOT)  # the paths in the report read as cdk.json writes them
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    try:
        configs = load_environments(context, ROOT)
        unknown = [name for name in only if name not in {c.name for c in configs}]
        if unknown:
            raise ConfigError([f"--env {n}: no such environment in cdk.json" for n in unknown])
    except ConfigError as err:
        print("\n".join(f"error: {line}" for line in err.lines), file=sys.stderr)
        return 1
    failed = []
    selected = [c for c in configs if c.name in only] if only else configs
    for (dataset, grader, _), names in checks(selected).items():
        print(f"preflight: {dataset} with {grader} (environments: {', '.join(names)})")
        folder = Path(dataset)
        args = ["--dataset", str(folder / "train.jsonl"), "--grader", grader]
        if (folder / "validation.jsonl").is_file():
            args += ["--validation", str(folder / "validation.jsonl")]
        if preflight([*args, "--env", names[0]]) != 0:
            failed.append(names[0])
    if failed:
        print(f"error: preflight failed for environment(s) {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
