"""Lists in ``math_answer``: a list of plain numbers in prose, and candidates one per line.

Two rules Math-Verify does not have, kept on purpose (``docs/graders.md`` shows each with its
example):

* :func:`number_list` reads the list of plain numbers that ends a text ("The numbers are 19,
  46, and 82."): a reference written so is a set, and a response that states it in prose
  answers it (Math-Verify reads such a response by its last number and rejects it).
* :func:`listed_candidates` finds a response that ends in several different bare answers, one
  per line, without a marker: candidates sprayed so that one of them is right (Math-Verify
  reads the last one and may reward it). Both are linear in the text.
"""

from __future__ import annotations

import re
from typing import Final

# Longer candidate text is no answer (as in the rest of the grader).
MAX_ANSWER_LENGTH: Final = 2000

# A list of plain numbers in prose: "19, 46, and 82", "3 and 5", "1; 2; 3" that ends a text.
# Matched on the reversed text from its end, so that finding it is linear in the length of the
# text: number, join, number, ... read backwards.
_REVERSED_NUMBER: Final = r"(?:[0-9]+\.)?[0-9]+-?"
_REVERSED_JOIN: Final = r"(?:(?:\s+dna)?\s*[,;]\s*|\s+dna\s+)"
_REVERSED_LIST: Final = re.compile(
    rf"{_REVERSED_NUMBER}(?:{_REVERSED_JOIN}{_REVERSED_NUMBER})+(?![0-9A-Za-z.,\\])"
)
_LIST_ITEM: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_GROUPED: Final = re.compile(r"-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")

# Lines at the end of a response looked at for candidates, and how many different bare
# answers among them make a spray.
_LISTED_LINES: Final = 20
_LISTED_ANY: Final = 4
# The longest line read as a bare answer; a word (three letters, not a LaTeX command) makes
# a line prose; a marker anywhere in the response means it names its answer.
_BARE_LINE: Final = 40
_WORD: Final = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_MARKER: Final = re.compile(r"\\(?:boxed|fbox)|answer|ANSWER|Answer|####")
_DELIMITERS: Final = re.compile(r"\\[\[\]()]|\$")


def number_list(text: str, *, whole: bool = False) -> str | None:
    """The list of two or more plain numbers that ends ``text`` (all of it when ``whole``),
    written ``a, b, c``; None if there is none. Numbers with thousands separators are no list:
    ``1,234`` is one number."""
    if len(text) > MAX_ANSWER_LENGTH or ("," not in text and "and" not in text and ";" not in text):
        return None
    body = text.rstrip(" \t\n.$")
    match = _REVERSED_LIST.match(body[::-1])
    if match is None:
        return None
    start = len(body) - match.end()
    if whole and body[:start].strip(" $"):
        return None
    listed = body[start:]
    if _GROUPED.fullmatch(listed):
        return None  # "1,234,567": thousands separators
    return ", ".join(_LIST_ITEM.findall(listed))


def listed_candidates(text: str) -> bool:
    """Whether a response without a marker ends in :data:`_LISTED_ANY` or more different bare
    answers, one per line (``2220`` / ``\\pi`` / ``-\\frac{\\pi}{6}`` / ``9``)."""
    tail = text[-(_LISTED_LINES * (_BARE_LINE + 1) * 4) :]
    if _MARKER.search(tail):
        return False
    bare = set()
    for raw in tail.splitlines()[-_LISTED_LINES:]:
        line = _DELIMITERS.sub("", raw).strip(" \t.,;")
        if line and len(line) <= _BARE_LINE and not _WORD.search(line):
            bare.add(line.replace(" ", ""))
    return len(bare) >= _LISTED_ANY


# Boxes looked at, from the last, and the longest box content read.
_LAST_BOXES: Final = 20
_BOX_CONTENT: Final = 2000


def boxes_disagree(text: str) -> bool:
    """Whether the response's boxes on different lines hold different answers (a box per
    candidate, or a final answer changed after an earlier box): every box must agree. Boxes on
    one line are one answer (``\\boxed{3}`` and ``\\boxed{5}``, which Math-Verify reads as a
    set). Looks at the last :data:`_LAST_BOXES` boxes: linear in the text."""
    lines: dict[int, list[str]] = {}
    end = len(text)
    for _ in range(_LAST_BOXES):
        at = text.rfind("\\boxed{", 0, end)
        if at < 0:
            break
        end = at
        content = _braced(text, at + len("\\boxed{"))
        if content is None:
            continue
        lines.setdefault(text.count("\n", 0, at), []).append(content.replace(" ", ""))
    return len({tuple(sorted(contents)) for contents in lines.values()}) > 1


def _braced(text: str, start: int) -> str | None:
    """The text from ``start`` to the brace that closes the one before it (nested braces
    matched), at most :data:`_BOX_CONTENT` characters; None if it is not closed by then."""
    depth = 1
    limit = min(len(text), start + _BOX_CONTENT)
    for index in range(start, limit):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:index]
    return None
