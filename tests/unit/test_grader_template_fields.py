"""Template fields never shadow item fields: ``{{ item.data }}`` is the dataset's field named
``data``, whatever the template does to reach it, and never the view object's internals (which
held the whole item: a judge prompt with ``{{ item.data }}`` carried the reference answer)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.lambda_loader import LambdaContext
from tests.openai_server import OpenAIServer, rubric_judge
from tests.reward_support import check_contract, load_reward, reward_module, rollout, scores

SECRET = "SECRET-REFERENCE-42"
ITEM = {
    "reference_answer": SECRET,
    "data": "the data field",
    "sample": "the sample field",
    "nested": {"data": "nested data", "x": 1},
}


def render(source: str, item: dict[str, Any]) -> str:
    templates = reward_module("grading.templates")
    samples = reward_module("grading.samples")
    sample = samples.Sample(id="s", output_text="the response", item=item)
    text: str = templates.Template(source, "$.input").render(sample)
    return text


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ item.data }}", "the data field"),
        ("{{ item.sample }}", "the sample field"),
        ("{{ item['data'] }}", "the data field"),
        ('{{ item["sample"] }}', "the sample field"),
        ("{{ item|attr('data') }}", "the data field"),
        ("{{ item.nested.data }}", "nested data"),
        ("{{ item.nested['data'] }}", "nested data"),
        ("{{ item.nested|attr('data') }}", "nested data"),
        ("{% set d = item.data %}{{ d }}", "the data field"),
    ],
)
def test_item_fields_named_like_internals_are_the_fields(source: str, expected: str) -> None:
    assert render(source, ITEM) == expected


@pytest.mark.parametrize(
    "source",
    [
        "{{ item.data }}",
        "{{ item.sample }}",
        "{{ item['data'] }}",
        "{{ item|attr('data') }}",
        "{{ item|attr('_data') }}",
        "{{ item|attr('_sample') }}",
        "{{ item._data }}",
        "{{ item._sample }}",
        "{{ item.as_json }}",
        "{{ item.nested.data.data }}",
        "{{ item.other.data }}",
        "{{ item[0] }}",
    ],
)
def test_a_hostile_template_never_reaches_the_whole_item(source: str) -> None:
    """Without such fields, every way to reach the view's internals is a missing field (the
    sample fails, naming it); nothing renders the item or its reference answer."""
    errors = reward_module("grading.errors")
    item = {"reference_answer": SECRET, "nested": {"data": {"x": 1}}}
    try:
        text = render(source, item)
    except errors.SampleError as err:
        assert "has no field" in str(err)
        assert SECRET not in str(err)
    else:
        pytest.fail(f"{source} rendered {text!r}")


def test_the_whole_item_renders_only_when_asked_for() -> None:
    assert SECRET in render("{{ item }}", ITEM)  # the template's own choice
    assert render("{{ item.nested }}", ITEM) == '{"data": "nested data", "x": 1}'


def test_a_judge_prompt_with_item_data_carries_the_field_not_the_reference(
    monkeypatch: pytest.MonkeyPatch, openai_server: OpenAIServer
) -> None:
    openai_server.chat.behaviour = rubric_judge(lambda text: 10.0)
    definition = {
        "type": "score_model",
        "name": "judge",
        "model": "test-judge",
        "input": [
            {"role": "system", "content": "Context: {{ item.data }} / {{ item.sample }}"},
            {"role": "user", "content": "{{ sample.output_text }}"},
        ],
        "range": [0, 10],
        "max_retries": 0,
    }
    module = load_reward(monkeypatch, definition)
    event = [
        rollout("s0", "an answer", SECRET, data="the data field", sample="the sample field"),
        rollout("s1", "an answer", SECRET),  # no such fields: the sample fails, named
    ]
    outputs = module.handler(event, LambdaContext())
    check_contract(event, outputs)
    assert scores(outputs) == [1.0, 0.0]
    assert len(openai_server.requests) == 1
    prompt = "\n".join(message["content"] for message in openai_server.requests[0].body["messages"])
    assert "Context: the data field / the sample field" in prompt
    assert SECRET not in prompt
