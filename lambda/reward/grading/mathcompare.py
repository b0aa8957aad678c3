"""Grade one response against a typed reference: find, read, compare, within a time budget."""

from __future__ import annotations

import time
from math import isclose

from grading.answers import Limits, candidate
from grading.base import FAIL, PASS, Batch, Grade
from grading.errors import SampleError
from grading.mathexpr import Node, ParseError
from grading.mathkinds import Typed, equivalent, number_list, read, reference
from grading.mathresponse import HEDGE, final_answers


def typed_reference(text: str, kind: str | None) -> Typed:
    """The typed answer of a reference's text; :class:`SampleError` (the sample scores 0 with
    ``grader_error``) when the grader cannot understand it."""
    try:
        return reference(text.strip(), kind)
    except (ParseError, RecursionError) as err:
        raise SampleError(f"the reference answer is not math this grader reads ({err})") from None


# Lines before the last one that are looked at for other candidate answers.
_LISTED_LINES = 20


# Lines that each are a bare math answer of any kind, past which the last lines are a list of
# candidates whatever the reference's kind (a choice letter after ten other answers).
_LISTED_ANY = 4


def _listed(expected: Typed, text: str) -> bool:
    """Whether the response's last lines list several different answers (one per line, no
    marker): candidates sprayed, the right one among them. Two of the reference's kind are a
    list; so are :data:`_LISTED_ANY` lines that each read as math of any kind."""
    lines = [line.strip() for line in text.strip().splitlines()[-_LISTED_LINES:]]
    answers, anything = set(), set()
    for line in lines:
        try:
            read(line, expected)
        except (ParseError, RecursionError):
            try:
                read(line)
            except (ParseError, RecursionError):
                continue
            anything.add(line)
            continue
        answers.add(line)
    return len(answers) > 1 or len(answers | anything) >= _LISTED_ANY


def _listed_with_markup(expected: Typed, text: str) -> bool:
    """:func:`_listed` for a plain-number reference whose response carries LaTeX: a spray such
    as ``2220 / \\pi / -\\frac{\\pi}{6} / 9`` (one per line) ends in a plain number, which the
    plain-number rules read alone. Responses without a backslash (GSM8K's) skip the parse."""
    return expected.kind == "number" and "\\" in text and _listed(expected, text)


class Comparison:
    """The comparison settings of one grader, applied to each sample of a batch."""

    def __init__(
        self, tolerance: float, relative: float, budget: float, limits: Limits, batch: Batch
    ) -> None:
        self.tolerance = tolerance
        self.relative = relative
        self.budget = budget
        self.limits = limits
        self.batch = batch

    def many_parts(self, expected: Typed) -> bool:
        """Whether a correct answer to ``expected`` may itself look like sprayed numbers (a
        long tuple or set): the spray rule is not applied to it."""
        return len(expected.parts) >= self.limits.max_number_run - 1

    def grade(self, expected: Typed, text: str) -> Grade:
        """PASS if every final answer of ``text`` is ``expected``; FAIL if none is, one
        disagrees with another (a hedge) or there is none; a failed grade (with its reason)
        when the time budget ran out."""
        from grading.symbolic import BudgetExceededError, OverBudgetError

        spans, how = final_answers(text, expected.kind in ("set", "tuple"))
        if how == HEDGE or not spans:
            return FAIL
        if how == "last_line":
            if _listed_with_markup(expected, text):
                return FAIL  # candidates one per line, some in LaTeX: GSM8K's rules miss them
            if expected.kind == "number" and "\\" not in spans[0]:
                return self._number(expected, text)  # prose without math markup: GSM8K's rules
            if _listed(expected, text):
                return FAIL
        budget = self.budget
        remaining = self.batch.remaining()
        if remaining is not None:  # never past the invocation's own deadline
            budget = min(budget, max(remaining, 0.0))
        ends = time.monotonic() + budget
        verdicts: set[bool | None] = set()
        try:
            for span in spans:
                if time.monotonic() > ends:
                    raise BudgetExceededError("time budget")
                verdict = self._one(expected, span, ends)
                verdicts.add(verdict)
                if verdict is False or len(verdicts) > 1:
                    return FAIL  # a wrong answer, or one right and one unreadable: a hedge
        except OverBudgetError as err:
            return Grade.failed(f"the comparison was not attempted: {err}")
        except BudgetExceededError:
            return Grade.failed(
                f"the symbolic comparison exceeded its time budget ({self.budget} s)"
            )
        if verdicts == {True}:
            return PASS
        if verdicts == {None} and expected.kind == "number" and how in ("math", "last_line"):
            return self._number(expected, text)
        return FAIL

    def _one(self, expected: Typed, span: str, ends: float) -> bool | None:
        """Whether one final answer is ``expected``; None if it cannot be read."""
        if expected.kind in ("set", "tuple"):
            # "The numbers are 19, 46, and 82.": the list, never "a*n*d*82"
            span = number_list(span) or span
        try:
            answer = read(span, expected)
        except (ParseError, RecursionError):
            return None

        def symbolic(left: Node, right: Node) -> bool:
            from grading.symbolic import BudgetExceededError, equal

            left_time = ends - time.monotonic()
            if left_time <= 0:
                raise BudgetExceededError("time budget")
            return equal(left, right, left_time)

        try:
            return equivalent(expected, answer, self.tolerance, self.relative, symbolic)
        except RecursionError:
            return None

    def _number(self, expected: Typed, text: str) -> Grade:
        """A numeric reference against the response's last number (no math markup): the
        rules of :mod:`grading.answers`."""
        from grading.mathexpr import NoValueError, evaluate

        assert expected.node is not None
        value, _ = candidate(text)
        if value is None:
            return FAIL
        try:
            target = evaluate(expected.node)
        except NoValueError:
            return FAIL
        same = isclose(value, target, rel_tol=max(self.relative, 1e-12), abs_tol=self.tolerance)
        return PASS if same else FAIL
