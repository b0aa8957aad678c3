"""Load and validate a grader definition (once per cold start).

``GRADER_CONFIG`` holds inline JSON (it starts with ``{``) or a path: absolute, relative to the
Lambda's root (where ``graders/<file>.json`` is deployed), or relative to the working directory
(tests and ``make preflight`` run from the repository).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grading.base import Grader
from grading.errors import DefinitionError
from grading.registry import build_grader
from grading.spec import Spec

ENV_VAR = "GRADER_CONFIG"


@dataclass(frozen=True, slots=True)
class Definition:
    """A validated grader definition."""

    name: str  # the Grader metric dimension: the definition's name, else the file's stem
    grader: Grader
    source: str  # the file it came from, or "inline"

    def graders(self) -> Iterator[Grader]:
        """Every grader of the definition, the root first."""
        pending = [self.grader]
        while pending:
            grader = pending.pop(0)
            yield grader
            pending.extend(grader.children())

    @property
    def remote(self) -> bool:
        """Whether any grader calls a model endpoint."""
        return any(grader.remote for grader in self.graders())


def parse_definition(data: Any, *, default_name: str, source: str = "inline") -> Definition:
    """Validate a definition already decoded from JSON."""
    spec = Spec(data, "$")
    grader = build_grader(spec, default_name)
    return Definition(name=grader.name, grader=grader, source=source)


def load_definition(value: str | Path, *, root: Path | None = None) -> Definition:
    """Load inline JSON or a definition file (see the module's docstring for the lookup)."""
    text = str(value).strip()
    if text.startswith(("{", "[")):  # inline JSON (an array is reported as such)
        return parse_definition(_decode(text, "inline JSON"), default_name="inline")
    path = _find(Path(text), root)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DefinitionError("$", f"cannot read {path}: {err}") from None
    return parse_definition(_decode(raw, path.name), default_name=path.stem, source=str(path))


def definition_from_env(root: Path) -> Definition:
    """The definition ``GRADER_CONFIG`` names; a missing variable is an error, not a default."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        raise DefinitionError("$", f"{ENV_VAR} is not set (a path to a grader JSON, or JSON)")
    return load_definition(value, root=root)


def _find(path: Path, root: Path | None) -> Path:
    candidates = [path] if path.is_absolute() else [*(([root / path]) if root else []), path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(candidate) for candidate in candidates)
    raise DefinitionError("$", f"{ENV_VAR}={path}: no such file (looked at {looked})")


def _decode(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DefinitionError(
            "$", f"{where} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
