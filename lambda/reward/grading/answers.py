"""Find the one final numeric answer of a free-text solution (GSM8K and similar).

Rules, in order:

1. An empty response has no answer.
2. A response that sprays numbers (a long run of bare numbers, or more numbers than any real
   solution needs) has no answer: listing candidates must not pay.
3. Explicit final-answer markers win over stray numbers: ``#### N``, ``\\boxed{N}``,
   ``<answer>N</answer>``, "the answer is N", "Answer: N", "Final answer: N". Every marker
   must give the same value; two that disagree are two different final answers (no answer).
4. Without a marker, the last number of the response is its answer.
5. An answer offered with an alternative ("18 or 20", "18-20", "between 18 and 20") is a hedge:
   no answer.

A number glued to a letter ("2k", "3x") is a product, not the number.

Numbers are normalized: thousands separators (``11,\\! 111``; a whole answer ``11 111 100``),
currency signs, trailing ``.0``, units or words after the number, Markdown emphasis, LaTeX
``\\frac``/``\\text``; ``a/b`` is a fraction. Whole tokens are compared, so 180 never counts
as 18.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate, repeat
from operator import add
from typing import Final

# One number token. Not glued to a word or another number, so "x3", "v1.2" and the "4" of
# "3/4" are not tokens (Markdown's "__18__" is); a minus sign counts only where it cannot be a
# subtraction ("5-3").
NUMBER: Final = (
    r"(?<![0-9A-Za-z.,/])[-\u2212]?(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?"
    r"|(?<![0-9A-Za-z.,/])\.[0-9]+"
)
_NUMBER = re.compile(NUMBER)
_FRACTION_TAIL = re.compile(r"\s*/\s*([0-9]+(?:\.[0-9]+)?)(?![0-9.,])")
_CALCULATOR = re.compile(r"<<[^<>\n]*>>")  # GSM8K calculator annotations: <<48/2=24>>
# Marker patterns start with a literal, which the regex engine skips to quickly; the phrase
# and tag patterns run on the lower-cased text (a value does not depend on case).
_HASH = re.compile(r"####+[ \t]*([^\n]*)")
_TAG = re.compile(r"<answer>([\s\S]*?)(?:</answer>|\n|$)")
# "answer is", "answer is:", "answer:", "**answer:**" ("final answer: ..." included)
# The marker's text runs to the end of its line or to the next "answer" on it, whose marker
# is read too ("The answer is 18. Final answer: 20." is a conflict, as on two lines); each
# character is read by one match, so finding every marker stays linear.
_PHRASE = re.compile(
    r"answer(?:[*_]{1,2})?[ \t]*(?:is[ \t]*(?:[*_]{1,2})?[ \t]*:?|[:\uff1a])"
    r"((?:(?!answer)[^\n])*)"
)
# A marker's text that is just one number, with emphasis, a currency sign, the "$" closing
# inline math or a full stop; or "$\\boxed{72}$." after "the answer is", whose value the
# LaTeX-stripping path would give too (the number is the only one, and nothing around it can
# hedge). The common cases.
_SIMPLE_SPAN = re.compile(
    r"[ \t*_$]*(?:"
    r"(-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?)[ \t*_$]*\.?[ \t*_$]*"
    r"|\\boxed\{(-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?)\}[ \t*_$]*\.?[ \t*_$]*"
    r")$"
)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
# Numbers for the spray rule: a comma starts a new number unless three digits follow it.
_SPLIT = re.compile(r"([0-9]+(?:,[0-9]{3}(?![0-9]))*(?:\.[0-9]+)?)")


def _list_separators() -> frozenset[str]:
    """What may stand between two numbers of a list: blanks and , ; | (up to three of them,
    as in ", " or " | "), "or" and "and"."""
    blanks = " ,;|\t\n"
    found = {a + b + c for a in blanks for b in ["", *blanks] for c in ["", *blanks]}
    for word in ("or", "and", "OR"):
        found.update({f" {word} ", f", {word} "})
    return frozenset(found)


_LIST_SEPARATORS: Final = _list_separators()
_SENTENCE_END = re.compile(r"[.!?;](?=\s|$)")
_ASIDE = re.compile(r"\([^()]*\)")
_CURRENCY = r"[$\u20ac\u00a3\u00a5]?"
_HEDGE_WORDS = r"(?:or|to|and/or|vs\.?)"
_MAYBE = r"(?:(?:maybe|perhaps|possibly|even)\s+)?"
# What may close the answer (Markdown emphasis, LaTeX "$" and "}", after blanks) and open the
# alternative ("**20**", "$\\boxed{20}$"): "**18** or 20" and "$\\boxed{18}$ or 20" hedge as
# "18 or 20".
_CLOSING = r"(?:[ \t]*[*_$}])*"  # blanks too: "$\\mathbf{18}$" reads "$ 18 $" without LaTeX
_OPENING = r"[*_$]*(?:\\boxed\s*\{)?[*_$]*"
# After the answer: another number offered as an alternative to it.
_ALTERNATIVE_AFTER = re.compile(
    rf"{_CLOSING}\s*(?:[^\W\d]+\s+){{0,2}}\(?\s*{_HEDGE_WORDS}\s+{_MAYBE}{_OPENING}"
    rf"{_CURRENCY}\s*({NUMBER})"
    rf"|{_CLOSING}(?:\s*[-\u2013,;]\s*|\s+){_OPENING}{_CURRENCY}\s*({NUMBER})",
    re.IGNORECASE,
)
_BETWEEN = re.compile(
    rf"\b(?:between|either)\s+{_CURRENCY}\s*({NUMBER})\s*(?:[^\W\d]+\s+){{0,2}}(?:and|or)\s+"
    rf"{_CURRENCY}\s*({NUMBER})",
    re.IGNORECASE,
)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
# A number token read backwards (in the reversed text): its last digit, then the digits,
# separators and sign before it.
_REVERSED_TOKEN = re.compile(r"[0-9][0-9.,]*[-\u2212]?")


# Characters of a response that its final answer is looked for in: a longer response is read
# from its last MAX_ANSWER_CHARS characters (see answer_part).
MAX_ANSWER_CHARS: Final = 8000
# How far past the cut answer_part looks for a blank to start at.
_CUT_SLACK: Final = 100
_BLANK: Final = re.compile(r"\s")


def answer_part(text: str) -> str:
    """The part of a response its final answer is looked for in: all of it up to
    :data:`MAX_ANSWER_CHARS` characters, else its last :data:`MAX_ANSWER_CHARS` characters,
    starting after a blank near the cut when there is one (no number or word is split).

    Final answers stand at the end (``#### 72``, the last box, "the answer is"); what a
    degenerate rollout repeats before them cannot change its grade, only its cost.
    """
    if len(text) <= MAX_ANSWER_CHARS:
        return text
    cut = len(text) - MAX_ANSWER_CHARS
    blank = _BLANK.search(text, cut, cut + _CUT_SLACK)
    return text[cut if blank is None else blank.end() :]


@dataclass(frozen=True, slots=True)
class Answer:
    """The final answer of a text: a value, or ``None`` with the reason there is none."""

    value: float | None
    # plain_marker | marker | last_number | empty | no_number | spray | hedge | conflict
    reason: str


@dataclass(frozen=True, slots=True)
class Limits:
    """Anti-spray limits (defaults sit well above any GSM8K reference solution)."""

    max_numbers: int = 250
    max_number_run: int = 8


def to_number(token: str) -> float:
    """The value of a :data:`NUMBER` token."""
    return float(token.replace(",", "").replace("\u2212", "-"))


def _first_value(text: str) -> tuple[float, int] | None:
    """The first number of ``text`` (``a/b`` as a fraction) and where it ends."""
    match = _NUMBER.search(text)
    if match is None:
        return None
    value = to_number(match.group())
    end = match.end()
    tail = _FRACTION_TAIL.match(text, end)
    if tail is not None:
        denominator = to_number(tail.group(1))
        if denominator != 0:
            value, end = value / denominator, tail.end()
    return value, end


def _unlatex(span: str) -> str:
    span = span.replace("{,}", ",").replace("\\,", "").replace("\\!", "").replace("\\$", "$")
    span = _LATEX_FRAC.sub(r"\1/\2", span)
    return _LATEX_COMMAND.sub(" ", span).replace("{", " ").replace("}", " ")


def _simple_value(simple: re.Match[str]) -> float:
    """The number a :data:`_SIMPLE_SPAN` match holds."""
    token = simple.group(1) or simple.group(2)
    return float(token.replace(",", "")) if "," in token else float(token)


# A comma with a LaTeX negative thin space, between digit groups: "11,\\! 111".
_THIN_GROUPS: Final = re.compile(r"(?<=[0-9]),\\!\s?(?=[0-9]{3}(?![0-9]))")
# A whole answer of digit groups separated by blanks or LaTeX spaces ("11 111 100", "1\\ 000"):
# one number (a list would be separated by commas or words).
_SPACED_GROUPS: Final = re.compile(
    r"[ \t*_$]*(-?[0-9]{1,3}(?:(?:[ \u2009\u202f~]|\\[ ,;])[0-9]{3})+(?:\.[0-9]+)?)[ \t*_$.]*"
)
# A single letter glued to a number: "2k" is two times k, never 2.
_GLUED_LETTER: Final = re.compile(r"[A-Za-z](?![A-Za-z])")


def _grouped(span: str) -> str:
    """``span`` with the digit groups of one number joined: ``11,\\! 111,\\! 100`` (LaTeX's
    thousands separators) and a whole answer ``11 111 100`` (blanks or LaTeX spaces)."""
    if "\\!" in span:
        span = _THIN_GROUPS.sub(",", span)
    spaced = _SPACED_GROUPS.fullmatch(span)
    if spaced is not None:
        return re.sub(r"[^0-9.-]", "", spaced.group(1))
    return span


def _span_value(span: str) -> float | str | None:
    """The value a marker's text that is not a :data:`_SIMPLE_SPAN` gives: a number,
    ``"hedge"``, ``"expression"`` (a number times a variable), or ``None`` (no number)."""
    span = _grouped(span)
    end = _SENTENCE_END.search(span)
    if end is not None and _NUMBER.search(span, 0, end.start()):
        span = span[: end.start()]
    if "\\" in span or "{" in span:
        span = _unlatex(span)
    if _hedged_between(span):
        return "hedge"
    head = _ASIDE.sub(" ", span) if "(" in span else span
    if "=" in head:
        head = head.rsplit("=", 1)[1]  # "15 * 8 = 120 pints": the result, not the operands
    first = _first_value(head)
    if first is None:
        return None
    value, end_at = first
    if _GLUED_LETTER.match(head, end_at):
        return "expression"  # "2k", "3x": a multiple of a variable, not the number
    if _is_alternative(_ALTERNATIVE_AFTER.match(head, end_at), value):
        return "hedge"
    for aside in _ASIDE.findall(span) if "(" in span else ():
        # "18 (or 20)": an alternative hidden in an aside
        if _is_alternative(_ALTERNATIVE_AFTER.match(" " + aside[1:-1]), value):
            return "hedge"
    return value


def _is_alternative(match: re.Match[str] | None, value: float) -> bool:
    """Whether ``match`` (of an alternative pattern) found a different number than ``value``."""
    if match is None:
        return False
    return to_number(match.group(1) or match.group(2)) != value


# Characters after a box's closing brace that may hold an alternative ("or 20"): the rest of
# its line, but never past the next box (whose text is that box's) nor beyond this many, so
# that finding every box stays linear in the length of the text.
_AFTER_BOX: Final = 200
# Characters of a box's contents; a longer "box" is not an answer.
_BOX_CONTENT: Final = 2000
_BRACE: Final = re.compile(r"[{}]")
_NOT_A_BOX: Final = r"(?:(?!\\(?:boxed|fbox)\s*\{)[^\n])"
_AFTER: Final = re.compile(rf"{_NOT_A_BOX}{{0,{_AFTER_BOX}}}")
# Contents with braces nested up to two deep inside the box (\frac{1}{2}, 10^{10^{8}}),
# matched in C; possessive, so that a failed match never backtracks.
_BRACED: Final = r"(?:[^{}]|\{(?:[^{}]|\{[^{}]*+\})*+\})*+"
# A box, and (when its braces nest at most two deep: the common case) its contents and the
# text after it (as _after_box finds it).
_BOX: Final = re.compile(
    rf"\\(?:boxed|fbox)\s*\{{(?:({_BRACED})\}}({_NOT_A_BOX}{{0,{_AFTER_BOX}}}))?"
)


def _after_box(text: str, start: int) -> str:
    """The text after a closing brace (at ``start``) where an alternative to the box would
    stand: up to the end of its line, the next box or :data:`_AFTER_BOX` characters."""
    after = _AFTER.match(text, start)
    return "" if after is None else after.group()


def _boxed_spans(text: str) -> list[str]:
    """The contents of every ``\\boxed{...}`` (nested braces allowed), each followed by the
    text after it where an alternative ("or 20") would stand."""
    return [content + rest for content, rest in boxed(text)]


def _closing_braces(text: str) -> dict[int, int]:
    """Where each ``{`` of ``text`` is closed, by its position (one pass over the braces)."""
    closing: dict[int, int] = {}
    opened: list[int] = []
    for brace in _BRACE.finditer(text):
        if brace.group() == "{":
            opened.append(brace.start())
        elif opened:
            closing[opened.pop()] = brace.start()
    return closing


def boxed(text: str) -> list[tuple[str, str]]:
    """The contents of every ``\\boxed{...}`` (nested braces allowed, at most
    :data:`_BOX_CONTENT` characters), each with the text after its closing brace up to the end
    of its line, the next box or :data:`_AFTER_BOX` characters (see :func:`_after_box`).

    Linear in the length of ``text``: no character belongs to two boxes' contents (a box
    inside a box is part of the outer one's answer), the look after each box is bounded, and
    nested braces are matched in one pass over the text, when the first nested box needs it.
    """
    spans = []
    closing: dict[int, int] | None = None
    box = _BOX.search(text) if "\\" in text else None
    while box is not None:
        content = box.group(1)
        if content is not None and len(content) < _BOX_CONTENT:  # the common case
            spans.append((content, box.group(2)))
            box = _BOX.search(text, box.end())
            continue
        start = box.start() + box.group().index("{") + 1
        if closing is None:
            closing = _closing_braces(text)
        close = closing.get(start - 1, -1)
        if not 0 <= close - start < _BOX_CONTENT:
            # unclosed, or too long to be an answer: boxes inside it may be answers
            box = _BOX.search(text, start)
            continue
        spans.append((text[start:close], _after_box(text, close + 1)))
        # A box inside this one is part of its answer: the search goes on after it, so no
        # character is part of two boxes' contents.
        box = _BOX.search(text, close + 1)
    return spans


def _marker_spans(text: str, hashes: bool, boxes: bool, words: bool) -> list[str]:
    """The text after every final-answer marker (lower-cased where case could differ).

    ``hashes``, ``boxes`` and ``words`` say whether the text has ``####``, ``box`` and
    ``answer`` (in any case) at all."""
    spans: list[str] = []
    if hashes:
        first = _HASH.search(text)
        if first is not None:
            spans.append(first.group(1))
            if text.find("####", first.end()) >= 0:
                spans.extend(match.group(1) for match in _HASH.finditer(text, first.end()))
    if boxes:
        spans.extend(_boxed_spans(text))
    if words:
        low = text.lower()
        if "<" in low and "<answer>" in low:
            spans.extend(match.group(1) for match in _TAG.finditer(low))
        # finditer, with the literal start found by str.find (several times faster)
        start = low.find("answer")
        while start >= 0:
            match = _PHRASE.match(low, start)
            if match is None:
                start = low.find("answer", start + 1)
                continue
            if start == 0 or not low[start - 1].isalnum():  # a word, not "counteranswer"
                spans.append(match.group(1))
            start = low.find("answer", match.end())
    return spans


def _shape_table() -> bytes:
    """Byte translation: digits to ``0``, list separators kept, anything else ``x``."""
    table = bytearray(b"x" * 256)
    for digit in b"0123456789":
        table[digit] = ord("0")
    for blank in b" \t\n\r;|":
        table[blank] = ord(" ")
    table[ord(",")] = ord(",")
    table[ord(".")] = ord(".")
    return bytes(table)


def _run_table() -> bytes:
    """Byte translation for the batch-wide look: ``0`` for every byte a run of numbers can be
    made of (digits, separators, and the letters of " or ", " and ", " OR "), else ``x``."""
    table = bytearray(b"x" * 256)
    for byte in b"0123456789 \t\n\r;|,.orandOR":
        table[byte] = ord("0")
    return bytes(table)


_SHAPE: Final = _shape_table()
_RUN_SHAPE: Final = _run_table()


@cache
def _stretch(run: int) -> re.Pattern[bytes]:
    """In the shape of a text: digits and separators long enough to hold ``run`` numbers."""
    return re.compile(rb"0[0 ,.]{%d,}0" % (2 * run - 3))


def spraying(texts: Sequence[str], limits: Limits = Limits()) -> set[int]:
    """Rule 2 for a whole batch: the indices of the texts that spray numbers.

    A run of ``max_number_run`` numbers needs at least ``2 * max_number_run - 1`` characters
    made only of digits, separators and the letters of "or"/"and"; the texts are translated to
    that alphabet and searched for such a stretch in C, a chunk of texts at a time (the
    common case: none). Only a text with one is examined number by number (:func:`_has_run`),
    and only a text long enough to hold too many numbers is counted.
    """
    found: set[int] = set()
    for first in range(0, len(texts), _CHUNK):
        for index in _spraying(texts[first : first + _CHUNK], limits):
            found.add(first + index)
    return found


# Texts per scan: a chunk's buffers stay small (in cache, off the mmap path of the allocator),
# which is faster than one scan of a whole 1,024-sample batch.
_CHUNK: Final = 128


def _spraying(texts: Sequence[str], limits: Limits) -> list[int]:
    """:func:`spraying` for one chunk of texts."""
    joined = "\x00".join(texts)  # NUL is no separator: nothing runs across two texts
    if "<" in joined and "<<" in joined:  # (one character is found by memchr, two are not)
        texts = [_CALCULATOR.sub("", text) if "<<" in text else text for text in texts]
        joined = "\x00".join(texts)
    least = 2 * limits.max_number_run - 1  # "1 2 3": one digit and one separator per number
    lengths = list(map(len, texts))
    # a text shorter than two characters per number cannot hold too many
    longest = max(lengths, default=0)
    if longest <= 2 * limits.max_numbers and least > longest:
        return []
    raw = joined.encode("ascii", "replace")  # one byte per character: offsets are kept
    starts = list(accumulate(map(add, lengths, repeat(1)), initial=0))
    found = _too_many_numbers(raw, starts, lengths, limits)
    if least > longest:
        return found
    shape = raw.translate(_RUN_SHAPE)
    needle = b"0" * least
    at = shape.find(needle)
    while at >= 0:  # the common case: not even once
        index = bisect_right(starts, at) - 1
        if index not in found and _has_run(texts[index], limits.max_number_run):
            found.append(index)
        at = shape.find(needle, starts[index + 1])  # on to the next text
    return found


def _too_many_numbers(
    raw: bytes, starts: list[int], lengths: list[int], limits: Limits
) -> list[int]:
    """The texts (of the chunk ``raw``, each from its ``starts`` for its ``lengths``) with
    more than ``limits.max_numbers`` numbers. A number starts wherever a digit follows
    anything but a digit, "," or "."."""
    long = [index for index, length in enumerate(lengths) if length > 2 * limits.max_numbers]
    if not long:
        return []
    shape = raw.translate(_SHAPE)
    found = []
    for index in long:
        start, end = starts[index], starts[index] + lengths[index]
        numbers = shape.count(b"x0", start, end) + shape.count(b" 0", start, end)
        if numbers + (shape[start] == ord("0")) > limits.max_numbers:
            found.append(index)
    return found


def _has_run(text: str, run: int) -> bool:
    """Whether ``text`` has ``run`` numbers in a row joined only by list separators."""
    raw = text.encode("ascii", "replace")  # one byte per character: offsets are kept
    # "12 or 14 or 16": joined by words, a list all the same (same length: offsets are kept)
    raw = raw.replace(b" or ", b"    ").replace(b" and ", b"     ").replace(b" OR ", b"    ")
    for stretch in _stretch(run).finditer(raw.translate(_SHAPE)):
        parts = _SPLIT.split(text[stretch.start() : stretch.end()])  # [text, number, ...]
        # 1 where two consecutive numbers are joined only by a list separator; a run of
        # ``run`` numbers is ``run - 1`` such joins in a row.
        joins = bytes(map(_LIST_SEPARATORS.__contains__, parts[2:-1:2]))
        if b"\x01" * (run - 1) in joins:
            return True
    return False


def final_answer(text: str, limits: Limits = Limits()) -> Answer:
    """The final numeric answer of ``text`` under all of the module's rules."""
    answer = candidate_answer(text)
    if answer.value is not None and sprays(text, limits):
        return Answer(None, "spray")
    return answer


def candidate_answer(text: str) -> Answer:
    """The answer by every rule but the spray rule (rule 2), which a grader applies to a whole
    batch at once (:func:`spraying`)."""
    value, reason = candidate(text)
    if value is not None and not math.isfinite(value):
        return Answer(None, "no_number")  # hundreds of digits: no number a float holds
    return Answer(value, reason)


# One marker whose text is just a number: whatever else the response holds (LaTeX included),
# that number is its answer.
PLAIN_MARKER: Final = "plain_marker"
# The outcomes without a value, shared (a grader sees one per sample).
_EMPTY: Final = (None, "empty")
_NO_NUMBER: Final = (None, "no_number")
_HEDGE: Final = (None, "hedge")
_CONFLICT: Final = (None, "conflict")


def candidate(text: str) -> tuple[float | None, str]:
    """:func:`candidate_answer` as a plain ``(value, reason)`` pair, for graders that find the
    answers of a whole batch (no object per sample). A number too large for a float (a run of
    hundreds of digits) is infinite here: it equals no finite reference."""
    if not text or text.isspace():
        return _EMPTY
    if "<" in text and "<<" in text:  # (a rare character first, as below)
        text = _CALCULATOR.sub("", text)
    # Which markers there are. A rare character first: one character is found by memchr,
    # several take a slower scan.
    hashes = "#" in text and "####" in text
    boxes = "\\" in text and "box" in text  # \boxed and \fbox start with a backslash
    words = "nswer" in text or ("W" in text and "NSWER" in text)
    if hashes or boxes or words:
        spans = _marker_spans(text, hashes, boxes, words)
        if len(spans) == 1 and (simple := _SIMPLE_SPAN.match(spans[0])) is not None:
            return _simple_value(simple), PLAIN_MARKER  # the common case
        marked = _marked_answer(spans)
        if marked is not None:
            return marked
    return _last_number(text)


def sprays(text: str, limits: Limits = Limits()) -> bool:
    """Rule 2: whether ``text`` sprays numbers (see :class:`Limits`)."""
    return bool(spraying([text], limits))


def _marked_answer(spans: list[str]) -> tuple[float | None, str] | None:
    """Rule 3: the value every marker (by its ``spans``) agrees on; ``None`` if no marker
    gives a number. Markers that are all just numbers ("the answer is $\\boxed{72}$": the
    phrase's text and the box) give a :data:`PLAIN_MARKER` answer."""
    values: set[float] = set()
    plain = True
    # a repeated marker gives its value once (a few markers are read as they are: cheaper)
    for span in spans if len(spans) <= 4 else dict.fromkeys(spans):
        simple = _SIMPLE_SPAN.match(span)
        if simple is not None:  # "72", " **$1,234**.", " $\\boxed{72}$."
            values.add(_simple_value(simple))
            continue
        plain = False
        value = _span_value(span)
        if value == "hedge":
            return _HEDGE
        if value == "expression":
            return _NO_NUMBER
        if isinstance(value, float):
            values.add(value)
    if len(values) > 1:
        return _CONFLICT
    if not values:
        return None
    return values.pop(), PLAIN_MARKER if plain else "marker"


def _last_token(text: str, reverse: str, end: int, begin: int = 0) -> re.Match[str] | None:
    """The last :data:`NUMBER` token that ends at or before ``end`` (and starts after
    ``begin``), found from the end: the last digit, then the token around it.

    ``reverse`` is ``text[::-1]``: a search in it finds the last digit and the digits,
    separators and sign before it in one scan, in C."""
    size = len(text)
    backwards = _REVERSED_TOKEN.search(reverse, size - end, size - begin)
    if backwards is None:
        return None
    token = _NUMBER.match(text, size - backwards.end())
    if token is not None and token.end() == size - backwards.start():
        return token
    # an unusual neighbourhood ("1,23", "gpt4"): the forward scan decides
    found = None
    for match in _NUMBER.finditer(text, begin, end):
        found = match
    return found


def _last_number(text: str) -> tuple[float | None, str]:
    """Rule 4: the last number, unless it is offered as an alternative to another one."""
    reverse = text[::-1]
    last = _last_token(text, reverse, len(text))
    if last is None:
        return _NO_NUMBER
    value = to_number(last.group())
    line_start = text.rfind("\n", 0, last.start()) + 1
    window = max(line_start, last.start() - 60)
    previous = _last_token(text, reverse, last.start(), window)
    if previous is not None:
        # "18 or 20", "18-20", "18, 20": the last number is an alternative to the one before
        alternative = _ALTERNATIVE_AFTER.match(text, previous.end())
        if (
            alternative is not None
            and alternative.end() == last.end()
            and to_number(previous.group()) != value
        ):
            return _HEDGE
        if _hedged_between(text[window : last.end()]):
            return _HEDGE
    tail = _FRACTION_TAIL.match(text, last.end())
    if tail is not None and to_number(tail.group(1)) != 0:
        value /= to_number(tail.group(1))
    return value, "last_number"


def _hedged_between(text: str) -> bool:
    """``between 18 and 20``, ``either 18 or 20`` with two different numbers."""
    lowered = text.lower()
    if "between" not in lowered and "either" not in lowered:
        return False
    between = _BETWEEN.search(text)
    return between is not None and to_number(between.group(1)) != to_number(between.group(2))
