"""Hypothesis fuzzing of the reward handler: random events never raise, every rollout is
answered once and in order, and every score is a finite number in [0, 1]."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reward_support import GRADERS, check_contract, load_reward, reward_module, rollout

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
numbers = st.integers(-(10**6), 10**6).map(str) | st.sampled_from(
    ["72", "1,234", "-5", "0.5", "18.00"]
)
texts = (
    st.text(max_size=300)
    | st.builds(lambda a, n: f"{a}\n#### {n}", st.text(max_size=100), numbers)
    | st.builds(lambda a, n: f"{a} The answer is {n}.", st.text(max_size=100), numbers)
    | st.builds(lambda n: f"\\boxed{{{n}}}", numbers)
    | st.lists(numbers, max_size=30).map(" ".join)
)
# What a collapsing policy repeats: markers, boxes, math delimiters, braces, digits, powers.
pieces = st.sampled_from(
    [
        *("\\boxed{", "}", "{", "\\boxed{1} ", "\\fbox{", "#### ", "The answer is ", "Answer: "),
        *("\\(", "\\)", "\\[", "\\]", "$", "$$", "1", "7 ", "12,345", "\n", " ", "^{10^{8}}"),
        *("\\frac{1}{2}", " or ", "<answer>", "</answer>", "between 1 and 2 ", "\\text{", "x=2"),
    ]
) | st.text(min_size=1, max_size=20)
units = st.lists(pieces, min_size=1, max_size=6).map("".join)
BIG = 100_000


def _repeated(head: str, unit: str, count: int, tail: str) -> str:
    body = unit * min(count, BIG // len(unit) + 1)
    return (head + body)[: max(0, BIG - len(tail))] + tail


# Responses up to 100 KB: Hypothesis draws short data, and repetition makes it long, as a
# collapsing policy does.
big_texts = st.builds(_repeated, st.text(max_size=50), units, st.integers(1, BIG), texts)
contents = (
    texts
    | st.none()
    | st.integers()
    | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts}), max_size=3)
    | st.lists(json_values, max_size=3)
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant", "nova_assistant", "tool", 7])},
        optional={"content": contents},
    )
    | json_values,
    max_size=4,
)
references = (
    numbers
    | texts
    | st.fixed_dictionaries({"final_answer": numbers | json_values})
    | st.fixed_dictionaries({"text": texts})
    | json_values
)
rollouts = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=10) | st.integers() | json_values,
        "messages": messages | json_values,
        "metadata": st.fixed_dictionaries({}, optional={"reference_answer": references})
        | json_values,
        "reference_answer": references,
    },
)
events = st.lists(rollouts | json_values, max_size=12)

MULTI = {
    "type": "multi",
    "graders": {
        "math": {"type": "math_answer"},
        "echo": {
            "type": "string_check",
            "input": "{{ sample.output_json.answer }}",
            "reference": "{{ item.reference_answer }}",
            "operation": "ilike",
        },
        "similar": {
            "type": "text_similarity",
            "reference": "{{ item.reference_answer }}",
            "evaluation_metric": "rouge_l",
        },
        "shape": {"type": "format", "required_tags": ["answer"], "scoring": "fraction"},
        "size": {"type": "length", "unit": "words", "max": 50, "falloff": 50},
    },
    "calculate_output": "0.5 * math + 0.2 * echo + 0.1 * similar + 0.1 * shape + 0.1 * size",
}


@pytest.fixture(scope="module")
def handlers() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        gsm8k = load_reward(monkeypatch, GRADERS / "gsm8k.json").handler
        multi = load_reward(monkeypatch, MULTI).handler
        latex = load_reward(monkeypatch, {"type": "math_answer", "name": "latex"}).handler
    return {"gsm8k": gsm8k, "multi": multi, "latex": latex}


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(event=events)
@pytest.mark.parametrize("name", ["gsm8k", "multi"])
def test_random_events_never_raise(handlers: dict[str, Any], name: str, event: list[Any]) -> None:
    outputs = handlers[name](event, None)
    check_contract(event, outputs)


@FUZZ
@given(event=events)
def test_a_round_trip_through_json_changes_nothing(
    handlers: dict[str, Any], event: list[Any]
) -> None:
    """What Bedrock sends is JSON: the handler answers the decoded event the same way."""
    try:
        decoded = json.loads(json.dumps(event))
    except ValueError:
        return
    assert handlers["gsm8k"](decoded, None) == handlers["gsm8k"](event, None)


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=500) | texts | big_texts)
def test_final_answer_is_total(text: str) -> None:
    answers = reward_module("grading.answers")
    answer = answers.final_answer(text)
    assert answer.value is None or math.isfinite(answer.value)
    assert answer.reason in {
        "plain_marker",
        "marker",
        "last_number",
        "empty",
        "no_number",
        "spray",
        "hedge",
        "conflict",
    }


LATEX_REFERENCES = st.sampled_from(["1", "72", "\\frac{1}{2}", "(0,1]", "x=2", "\\text{(B)}"])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    responses=st.lists(big_texts, min_size=1, max_size=4),
    reference=LATEX_REFERENCES,
)
@pytest.mark.parametrize("name", ["gsm8k", "latex"])
def test_responses_up_to_100_kb_keep_the_contract(
    handlers: dict[str, Any], name: str, responses: list[str], reference: str
) -> None:
    event = [rollout(f"r{index}", text, reference) for index, text in enumerate(responses)]
    check_contract(event, handlers[name](event, None))


@settings(max_examples=200, deadline=None)
@given(text=big_texts)
def test_boxes_are_found_in_linear_characters(text: str) -> None:
    answers = reward_module("grading.answers")
    spans = answers.boxed(text)
    assert sum(len(content) + len(after) for content, after in spans) <= 2 * len(text)
    assert len(answers.answer_part(text)) <= answers.MAX_ANSWER_CHARS
