#!/usr/bin/env python3
"""Read cdk.json before the CDK CLI does, so a syntax error names its line and column.

The CLI reports a broken cdk.json by character offset ("... in JSON at position 550"); this
check runs first (``make synth``, ``diff``, ``deploy``) with the standard library only, so it
costs a few milliseconds and needs no virtual environment. The settings themselves are checked
by app.py (stacks/config.py), which lists every problem.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


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


def main(argv: list[str]) -> int:
    """Exit 1 with one ``error:`` line when cdk.json (or the path given) is not usable."""
    path = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "cdk.json"
    found = problem(path)
    if found is None:
        return 0
    print(f"error: {found}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
