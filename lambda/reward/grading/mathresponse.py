"""The final answer of a response as text, for references that are not plain numbers.

The rules of :mod:`grading.answers`, for answers that are not a single number:

1. Boxed answers (``\\boxed{...}``) win; then the other markers (``#### ...``,
   ``<answer>...</answer>``, "the answer is ...", "Answer: ..."); without any, the last
   displayed or inline math (``\\[...\\]``, ``$$...$$``, ``$...$``, ``\\(...\\)``), else the
   last line. A value mentioned mid-text is not the answer when a marker or a later one
   follows.
2. Several marked answers must all be the same answer (the grader compares each with the
   reference: some right and some wrong is a hedge, scored 0).
3. An answer offered with an alternative ("2 or 3", "either ...", a box followed by "or ...")
   is a hedge.
"""

from __future__ import annotations

import re
from typing import Final

from grading.answers import _marker_spans, boxed
from grading.mathkinds import hedged

_SENTENCE_END: Final = re.compile(r"(?<![0-9\\])\.(?=\s|$)|\n")
_MATH: Final = re.compile(
    r"\\\[([\s\S]+?)\\\]|\$\$([\s\S]+?)\$\$|(?<![\\$])\$([^$\n]+?)\$|\\\(([\s\S]+?)\\\)"
)
_OR_AFTER: Final = re.compile(r"^\s*\$?\s*[.,;]?\s*(?:or|either|alternatively)\b", re.IGNORECASE)
HEDGE: Final = "hedge"


def _sentence(span: str) -> str:
    """A marker's text up to the end of its sentence."""
    end = _SENTENCE_END.search(span)
    return span if end is None else span[: end.start()]


def final_answers(text: str) -> tuple[list[str], str]:
    """The candidate final answers of ``text`` (all must agree), and how they were found
    (``boxed``, ``marker``, ``math``, ``last_line``), or no candidates with the reason
    (``empty``, ``hedge``)."""
    if not text or text.isspace():
        return [], "empty"
    boxes = boxed(text) if "\\" in text and "box" in text else []
    if boxes:
        for content, rest in boxes:
            if _OR_AFTER.match(rest) or hedged(content):
                return [], HEDGE
        return [content for content, _ in boxes], "boxed"
    hashes = "#" in text and "####" in text
    words = "nswer" in text or "NSWER" in text
    if hashes or words:
        spans = [
            _sentence(span).strip(" \t*_:") for span in _marker_spans(text, hashes, False, words)
        ]
        spans = [span for span in spans if span]
        if spans:
            if any(hedged(span) for span in spans):
                return [], HEDGE
            return spans, "marker"
    last = None
    for match in _MATH.finditer(text):
        last = match
    if last is not None:
        span = next(group for group in last.groups() if group is not None)
        after = text[
            last.end() : text.find("\n", last.end()) if "\n" in text[last.end() :] else None
        ]
        if hedged(span) or _OR_AFTER.match(after):
            return [], HEDGE
        return [span], "math"
    line = text.strip().rsplit("\n", 1)[-1].strip()
    if hedged(line):
        return [], HEDGE
    return [line], "last_line"
