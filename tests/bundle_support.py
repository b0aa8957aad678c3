"""Reading the Lambda locks (``lambda/<name>/requirements.txt``, written by ``make lock``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.lambda_loader import ROOT

FUNCTIONS = sorted(p.parent.name for p in (ROOT / "lambda").glob("*/requirements.in"))


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Pin:
    """One requirement of a lock: version, hashes, and what it is there for (``# via``)."""

    version: str
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


def read_lock(path: Path) -> dict[str, Pin]:
    """The pins of a lock in pip's requirements format, as uv writes them."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    in_via = False
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        pinned = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", line)
        if pinned:
            current = pins[canonical(pinned[1])] = Pin(pinned[2])
            in_via = False
        elif current is not None and stripped.startswith("--hash="):
            current.hashes.append(stripped.removeprefix("--hash=").rstrip(" \\"))
        elif current is not None and stripped.startswith("# via"):
            rest = stripped.removeprefix("# via").strip()
            current.via += [rest] if rest else []
            in_via = not rest
        elif current is not None and in_via and stripped.startswith("#   "):
            current.via.append(stripped.removeprefix("#").strip())
    return pins


def lock_pins(path: Path) -> dict[str, str]:
    """Name to version, for every pin of a lock."""
    return {name: pin.version for name, pin in read_lock(path).items()}


def direct_requirements(path: Path) -> dict[str, str]:
    """Name to specifier (``==1.2``) of a ``requirements.in``."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$", text)
            assert match, f"{path.name}: cannot read {line!r}"
            found[canonical(match[1])] = match[2].strip()
    return found
