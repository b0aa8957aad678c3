"""The final answer of a response as text, for references that are not plain numbers.

The rules of :mod:`grading.answers`, for answers that are not a single number:

1. Boxed answers (``\\boxed{...}``) win; then the other markers (``#### ...``,
   ``<answer>...</answer>``, "the answer is ...", "Answer: ..."); without any, the last
   displayed or inline math (``\\[...\\]``, ``$$...$$``, ``$...$``, ``\\(...\\)``), else the
   last line. A value mentioned mid-text is not the answer when a marker or a later one
   follows.
   A marker's sentence of words states its answer after its last "is" (Minerva's "Final
   Answer: The final answer is $X$. I hope it is correct." is ``$X$``), as does a last line
   ("The largest $n$ is 34."). Boxes joined by "and" or a comma are one answer when the
   reference has several parts.
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
# Where displayed or inline math may open (``\\[``, ``\\(``, ``$$`` or ``$``), by the closers
# known to be missing from some point on (whose openers need not be looked at again).
_MATH_OPENERS: Final = {
    frozenset(): re.compile(r"\\[\[(]|\$"),
    frozenset({"\\]"}): re.compile(r"\\\(|\$"),
    frozenset({"\\)"}): re.compile(r"\\\[|\$"),
    frozenset({"\\]", "\\)"}): re.compile(r"\$"),
}
_OR_AFTER: Final = re.compile(r"^\s*\$?\s*[.,;]?\s*(?:or|either|alternatively)\b", re.IGNORECASE)
HEDGE: Final = "hedge"
# What joins boxes that together are one answer: "\\boxed{3} and \\boxed{5}".
# A separator is needed: a box at the end of a line and another on a later line are two answers.
_JOINED: Final = re.compile(r"[ \t$]*(?:[,;][ \t$]*(?:and[ \t$]+)?|and[ \t$]+)")


# A sentence that states its answer after a verb: "The final answer is $\\frac{3}{2}$", "The
# largest $n$ is 34" (the last "is" counts: "the answer is that x is 3").
_PROSE_HEAD: Final = re.compile(r"[ \t*_]*[A-Za-z]{2,}[ \t]")
_STATED: Final = re.compile(r".*\b(?:is|are|equals|was|be)[ \t]*:?[ \t]+(\S.*)", re.IGNORECASE)
# What follows the last math of a line when the sentence states its answer after it: the "is
# 34" of "The largest $n$ is 34."
_STATED_AFTER: Final = re.compile(r"[ \t]*(?:is|are|equals|=)[ \t]+([^\s$][^$]*)", re.IGNORECASE)


def _sentence(span: str) -> str:
    """A marker's text up to the end of its sentence; in a sentence of words, what it states
    after its last verb ("The final answer is $X$" states ``$X$``)."""
    end = _SENTENCE_END.search(span)
    span = span if end is None else span[: end.start()]
    return stated(span)


def stated(sentence: str) -> str:
    """What a sentence of words states after its last "is" (all of it if it opens with no
    word: ``x = 2`` is an answer as it stands)."""
    if _PROSE_HEAD.match(sentence) is None:
        return sentence
    found = _STATED.match(sentence)
    return sentence if found is None else found.group(1)


def final_answers(text: str, several: bool = False) -> tuple[list[str], str]:
    """The distinct candidate final answers of ``text`` (all must agree), and how they were found
    (``boxed``, ``marker``, ``math``, ``last_line``), or no candidates with the reason
    (``empty``, ``hedge``). When the reference has ``several`` parts (a set or tuple), boxes
    joined by "and" or a comma are one answer."""
    if not text or text.isspace():
        return [], "empty"
    boxes = boxed(text) if "\\" in text and "box" in text else []
    if boxes:
        for content, rest in boxes:
            if _OR_AFTER.match(rest) or hedged(content):
                return [], HEDGE
        contents = list(dict.fromkeys(content for content, _ in boxes))
        if several and len(contents) > 1 and all(_JOINED.fullmatch(rest) for _, rest in boxes[:-1]):
            # "$\\boxed{3}$ and $\\boxed{5}$": one answer of several parts
            return [", ".join(contents)], "boxed"
        return contents, "boxed"
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
            return list(dict.fromkeys(spans)), "marker"
    last = last_math(text)
    if last is not None:
        span, end = last
        line_end = text.find("\n", end)
        after = text[end : None if line_end < 0 else line_end]
        if hedged(span) or _OR_AFTER.match(after):
            return [], HEDGE
        value = _STATED_AFTER.fullmatch(after)
        if value is not None and any(char.isdigit() for char in value.group(1)):
            return [value.group(1).rstrip(" \t.")], "math"  # "The largest $n$ is 34."
        return [span], "math"
    line = text.strip().rsplit("\n", 1)[-1].strip()
    if hedged(line):
        return [], HEDGE
    return [stated(line)], "last_line"


def last_math(text: str) -> tuple[str, int] | None:
    """The contents of the last displayed or inline math of ``text`` and where it ends, found
    as the regular expression ``\\[(.+?)\\]|$$(.+?)$$|(?<![\\$])$([^$\n]+?)$|\\((.+?)\\)``
    (any character in the lazy groups but the inline one) would find them scanning from the
    left, in time linear in the length of ``text``.

    That expression itself is quadratic: every opener without a closer after it (``\\(``
    repeated) scans to the end of the text. Here a closer that is missing after one position
    is known to be missing after every later one, so each failed search happens once.
    """
    last: tuple[str, int] | None = None
    missing: dict[str, int] = {}  # closer -> a position after which it does not occur
    size = len(text)
    openers = _MATH_OPENERS[frozenset()]
    opener = openers.search(text)
    while opener is not None:
        at = opener.start()
        found: tuple[str, int] | None = None
        if text[at] == "\\":
            closer = "\\]" if text[at + 1] == "[" else "\\)"
            found = _closed(text, at + 2, closer, missing)
        elif at + 1 < size and text[at + 1] == "$":
            found = _closed(text, at + 2, "$$", missing)
        elif at + 1 < size and text[at + 1] != "\n" and (at == 0 or text[at - 1] not in "\\$"):
            close = text.find("$", at + 1)  # the next opener: each character is read once
            if close >= 0 and text.find("\n", at + 1, close) < 0:
                found = (text[at + 1 : close], close + 1)
        if found is None:
            # a missing bracket closer: its openers are skipped from now on (in C)
            openers = _MATH_OPENERS[frozenset(missing.keys() & {"\\]", "\\)"})]
            opener = openers.search(text, at + 1)
        else:
            last = found
            opener = openers.search(text, found[1])
    return last


def _closed(text: str, start: int, closer: str, missing: dict[str, int]) -> tuple[str, int] | None:
    """The contents from ``start`` (at least one character) to the first ``closer`` after
    them, and where the closer ends; ``None`` without one (remembered in ``missing``)."""
    if closer in missing and start >= missing[closer]:
        return None
    close = text.find(closer, start + 1)
    if close < 0:
        missing[closer] = start
        return None
    return text[start:close], close + len(closer)
