#!/usr/bin/env python3
"""Read cdk.json before the CDK CLI does: a syntax error by line and column, then every
configuration problem, one line each.

The CLI reports a broken cdk.json by character offset ("... in JSON at position 550"), and a
configuration problem raised in app.py comes with the CLI's own "Subprocess exited with error"
line after it. ``make synth``, ``diff`` and ``deploy`` run this first: without options it
checks the syntax with the standard library only (no virtual environment needed, a few
milliseconds); with ``--environments`` it also validates the environments as app.py does
(stacks/config.py, graders included), before any bundle is built.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def problem(path: Path) -> str | None:
    """One line naming what is wrong with ``path`` as JSON, or None when it parses."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"{path.name}: no such file (the CDK app's settings; see README)"
    except (OSError, UnicodeDecodeError) as err:
        return f"{path.name}: cannot read it ({err})"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        return f"{path.name} line {err.lineno} column {err.colno}: {err.msg}"
    if not isinstance(document, dict) or not isinstance(document.get("context"), dict):
        return f'{path.name}: must be a JSON object with a "context" object'
    return None


def environment_problems(path: Path, only: str | None) -> list[str]:
    """Every problem of the environments in ``path`` (or of ``only``), as app.py finds them."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from stacks.config import ConfigError, load_environments

    context = json.loads(path.read_text(encoding="utf-8"))["context"]
    try:
        load_environments(context, ROOT, only=only or None)
    except ConfigError as err:
        return err.lines
    return []


def main(argv: list[str]) -> int:
    """Exit 1 with one ``error:`` line per problem of cdk.json (or the path given)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=ROOT / "cdk.json")
    parser.add_argument("--environments", action="store_true", help="validate them too")
    parser.add_argument("--env", help="only this environment (with --environments)")
    args = parser.parse_args(argv)
    found = problem(args.path)
    problems = [found] if found is not None else []
    if not problems and args.environments:
        problems = environment_problems(args.path, args.env)
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
