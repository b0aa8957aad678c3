"""Problems found by the checks, grouped so that thousands of bad lines stay readable.

Every occurrence is counted, but only the first few messages of each kind are kept: a file
with 5,000 broken lines gives one group "5,000 lines are not valid JSON" with its first
examples, not 5,000 lines of output (and not 5,000 strings in memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]

# How many example messages each group keeps for the report.
DEFAULT_EXAMPLES = 5

# What a finding means and what to do, printed under it, for the findings whose title alone
# leaves a newcomer guessing (the grader probes: preflight/grader_checks.py).
HINTS: dict[str, str] = {
    "prompt-copy-rewarded": (
        "the last number in these prompts is also their answer (the grader reads the last"
        " number), so a policy that repeats the prompt earns reward there. A few records are"
        " harmless; if many, reword them or require an answer format such as '#### N'."
    ),
    "wrong-answer-rewarded": (
        "another record's reference answer is accepted here: the references may coincide"
        " (fine) or the grader may compare too loosely (check its tolerance)."
    ),
    "spray-rewarded": (
        "a list of candidate answers is accepted here, so a policy can learn to guess many;"
        " grade the final answer only (math_answer does) or penalise length."
    ),
}


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 error``, ``2 errors``, ``1,000 records`` (``nouns`` when the plural is irregular)."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


@dataclass
class FindingGroup:
    """All occurrences of one kind of problem (``code``) at one severity."""

    code: str
    severity: Severity
    title: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The group as plain JSON data."""
        return {
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "count": self.count,
            "examples": list(self.examples),
            **({"hint": HINTS[self.code]} if self.code in HINTS else {}),
        }


class Findings:
    """Collects problems by kind, keeping counts and the first few messages of each."""

    def __init__(self, max_examples: int = DEFAULT_EXAMPLES) -> None:
        self.max_examples = max_examples
        self._groups: dict[tuple[str, str], FindingGroup] = {}

    def add(self, severity: Severity, code: str, title: str, message: str) -> None:
        """Record one occurrence; ``message`` names the file and line where there is one."""
        key = (severity, code)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = FindingGroup(code=code, severity=severity, title=title)
        group.count += 1
        if len(group.examples) < self.max_examples:
            group.examples.append(message)

    def error(self, code: str, title: str, message: str) -> None:
        """Record an error (makes preflight exit 1)."""
        self.add("error", code, title, message)

    def warning(self, code: str, title: str, message: str) -> None:
        """Record a warning (reported, does not fail)."""
        self.add("warning", code, title, message)

    @property
    def groups(self) -> list[FindingGroup]:
        """Errors first, then warnings, each in the order first seen."""
        ordered = list(self._groups.values())
        return [g for g in ordered if g.severity == "error"] + [
            g for g in ordered if g.severity == "warning"
        ]

    @property
    def error_count(self) -> int:
        """Occurrences of errors, over all groups."""
        return sum(g.count for g in self._groups.values() if g.severity == "error")

    @property
    def warning_count(self) -> int:
        """Occurrences of warnings, over all groups."""
        return sum(g.count for g in self._groups.values() if g.severity == "warning")

    def codes(self, severity: Severity | None = None) -> set[str]:
        """The codes of the groups present (optionally of one severity)."""
        return {g.code for g in self._groups.values() if severity in (None, g.severity)}

    def group(self, code: str, severity: Severity = "error") -> FindingGroup | None:
        """The group of ``code`` at ``severity``, if any occurrence was recorded."""
        return self._groups.get((severity, code))
