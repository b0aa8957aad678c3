"""A chat behaviour for evaluation tests: models that answer a known share of math prompts right.

:class:`Students` knows a validation set (rows with ``messages`` and
``reference_answer.final_answer``, as the GSM8K fixture has them) and, per model name, the
share of its prompts that model answers correctly. The prompts a model gets right are fixed,
not drawn at each call: the first ``round(share * n)`` prompts in the order of
``sha256(model + prompt)``. So a model's accuracy over the whole set is exactly
``round(share * n) / n``, whatever the temperature, and the same prompt gets the same answer
every time. A right answer ends in ``#### <reference>``, a wrong one in ``#### <reference + 1>``
(what a math-answer grader scores 1 and 0).

Prompts named in ``failing`` (by their user text) are answered with a 500 for every model,
those in ``rejecting[model]`` with a 400 for that model only (a permanent failure, such as a
prompt longer than the model's context), and every request is recorded per model in ``calls``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.openai_server.chat import Reply


def user_text(messages: Sequence[dict[str, Any]]) -> str:
    """The last user turn's text: what identifies a prompt."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
            return str(content)
    return ""


def wrong_answer(reference: str) -> str:
    """A number that is not ``reference`` (reference + 1, or a fixed other one)."""
    try:
        return str(Decimal(reference.replace(",", "")) + 1)
    except InvalidOperation:
        return "-1"


class Students:
    """The behaviour (callable as ``Chat.behaviour``); see the module docstring."""

    def __init__(
        self,
        rows: Sequence[dict[str, Any]],
        shares: dict[str, float],
        *,
        failing: Iterable[str] = (),
        rejecting: dict[str, Iterable[str]] | None = None,
    ) -> None:
        self.answers = {
            user_text(row["messages"]): str(row["reference_answer"]["final_answer"]) for row in rows
        }
        self.shares = dict(shares)
        self.failing = set(failing)
        self.rejecting = {model: set(texts) for model, texts in (rejecting or {}).items()}
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._right = {model: self._choose(model, share) for model, share in shares.items()}

    def _choose(self, model: str, share: float) -> frozenset[str]:
        ordered = sorted(
            self.answers,
            key=lambda text: hashlib.sha256(f"{model}\n{text}".encode()).hexdigest(),
        )
        return frozenset(ordered[: round(share * len(ordered))])

    def right(self, model: str) -> frozenset[str]:
        """The prompts (user texts) ``model`` answers correctly."""
        return self._right[model]

    def accuracy(self, model: str, prompts: Iterable[str] | None = None) -> float:
        """The share of ``prompts`` (default: all) that ``model`` answers correctly."""
        chosen = list(self.answers if prompts is None else prompts)
        return sum(p in self._right[model] for p in chosen) / len(chosen)

    def __call__(self, body: dict[str, Any], number: int) -> Reply:
        """Answer one chat completion."""
        model = str(body.get("model"))
        with self._lock:
            self.calls[model] += 1
        if model not in self._right:
            return Reply(status=404, error=f"The model `{model}` does not exist")
        text = user_text(body.get("messages") or [])
        if text in self.failing:
            return Reply(status=500, error="the model failed on this prompt")
        if text in self.rejecting.get(model, ()):
            return Reply(status=400, error="the prompt is longer than the model's context")
        if text not in self.answers:
            return Reply(content="I do not know.\n#### 0")
        reference = self.answers[text]
        answer = reference if text in self._right[model] else wrong_answer(reference)
        return Reply(content=f"Let me work it out step by step.\n#### {answer}")
