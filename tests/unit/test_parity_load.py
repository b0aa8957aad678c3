"""Fields of OpenAI's published grader definitions that the loader accepts: pass_threshold on a
python grader, every reasoning_effort of the openai SDK, multi.graders as one grader object,
cosine without a model, input_image parts in judge inputs (and a text-only judge refused)."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from openai.types.shared.reasoning_effort import ReasoningEffort

from stacks.reward import DEFAULT_EMBEDDING_MODEL, embedding_models
from tests.lambda_loader import LambdaContext
from tests.openai_server import OpenAIServer, Reply
from tests.reward_support import (
    definition_error,
    expect_embedding,
    load_reward,
    reward_module,
    rollout,
    runtime_stubber,
    scores,
)

CAPITAL = "What is the capital of France?"


def event(*responses: str, **fields: Any) -> list[dict[str, Any]]:
    return [
        rollout(f"s{i}", text, "Paris", prompt=CAPITAL, **fields)
        for i, text in enumerate(responses)
    ]


def metrics(output: dict[str, Any]) -> dict[str, float]:
    return {m["name"]: m["value"] for m in output["metrics_list"]}


def test_python_grader_pass_threshold_is_a_passed_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    # The shape of an evals python grader (image_tag and pass_threshold beside the source).
    definition = {
        "type": "python",
        "name": "overlap",
        "image_tag": "2025-05-08",
        "pass_threshold": 0.5,
        "source": (
            "def grade(sample, item) -> float:\n"
            "    expected = set(item['reference_answer'].lower().split())\n"
            "    got = set(sample['output_text'].lower().split())\n"
            "    return len(expected & got) / len(expected)\n"
        ),
    }
    module = load_reward(monkeypatch, definition)
    outputs = module.handler(
        [
            rollout("a", "paris france", "Paris France"),
            rollout("b", "paris", "Paris France Europe"),
        ],
        LambdaContext(),
    )
    assert scores(outputs) == [1.0, pytest.approx(1 / 3)]  # the reward is the value itself
    assert [metrics(output)["overlap_passed"] for output in outputs] == [1.0, 0.0]


def test_reasoning_effort_takes_every_value_of_the_sdk(
    monkeypatch: pytest.MonkeyPatch, openai_server: OpenAIServer
) -> None:
    efforts = [value for value in typing.get_args(typing.get_args(ReasoningEffort)[0])]
    assert {"none", "minimal", "xhigh"} <= set(efforts)
    openai_server.chat.behaviour = lambda body, number: Reply(content='{"result": 1}')
    for effort in efforts:
        definition = {
            "type": "score_model",
            "name": "judge",
            "model": "test-judge",
            "input": [{"role": "user", "content": "Is {{ sample.output_text }} right?"}],
            "sampling_params": {"reasoning_effort": effort, "seed": 42},
        }
        module = load_reward(monkeypatch, definition)
        assert scores(module.handler(event("Paris"), LambdaContext())) == [1.0]
        assert openai_server.requests[-1].body["reasoning_effort"] == effort


def test_reasoning_effort_outside_the_sdk_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = {
        "type": "score_model",
        "name": "judge",
        "model": "test-judge",
        "input": [{"role": "user", "content": "{{ sample.output_text }}"}],
        "sampling_params": {"reasoning_effort": "extreme"},
    }
    message = definition_error(monkeypatch, definition)
    assert message.startswith(
        "grader definition $.sampling_params.reasoning_effort: 'extreme' is not allowed"
    )
    assert "xhigh" in message


def single_grader_multi(**overrides: Any) -> dict[str, Any]:
    """multi with graders as one grader object (the openai SDK's MultiGrader.graders type)."""
    inner = {
        "type": "string_check",
        "name": "compliant",
        "input": "{{ sample.output_json.compliant }}",
        "reference": "{{ item.compliant }}",
        "operation": "eq",
        **overrides,
    }
    return {"type": "multi", "name": "policy", "graders": inner, "calculate_output": "compliant"}


def test_multi_with_one_grader_object_names_it_by_its_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = load_reward(monkeypatch, single_grader_multi())
    outputs = module.handler(
        [
            rollout("a", '{"compliant": "yes"}', compliant="yes"),
            rollout("b", '{"compliant": "no"}', compliant="yes"),
        ],
        LambdaContext(),
    )
    assert scores(outputs) == [1.0, 0.0]
    assert metrics(outputs[0])["compliant"] == 1.0


def test_multi_with_one_grader_object_needs_an_identifier_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = definition_error(monkeypatch, single_grader_multi(name="is compliant"))
    assert message.startswith(
        "grader definition $.graders.name: a single grader under graders needs an identifier"
    )
    message = definition_error(
        monkeypatch, {**single_grader_multi(), "calculate_output": "0.5 * other"}
    )
    assert "'other' is not a grader of this multi; graders: compliant" in message


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """A Stubber on a real bedrock-runtime client, used by the cosine grader."""
    with runtime_stubber(monkeypatch) as stub:
        yield stub


def embedding(stub: Stubber, text: str, vector: list[float]) -> None:
    expect_embedding(stub, DEFAULT_EMBEDDING_MODEL, text, vector, tokens=2)


COSINE = {
    "type": "text_similarity",
    "name": "meaning",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.reference_answer }}",
    "evaluation_metric": "cosine",
    "pass_threshold": 0.9,
    "concurrency": 1,
}


def test_cosine_without_a_model_uses_titan_v2(
    monkeypatch: pytest.MonkeyPatch, runtime: Stubber
) -> None:
    embedding(runtime, "It is Paris", [0.6, 0.8])
    embedding(runtime, "Paris", [1.0, 0.0])
    module = load_reward(monkeypatch, COSINE)
    outputs = module.handler(event("It is Paris", "Paris"), LambdaContext())
    # the identical text needs no call: cosine 1 exactly
    assert scores(outputs) == [pytest.approx(0.6), 1.0]
    assert [metrics(output)["meaning_passed"] for output in outputs] == [0.0, 1.0]


def test_the_stack_grants_the_default_embeddings_model() -> None:
    assert reward_module("grading.graders.embedding").DEFAULT_MODEL == DEFAULT_EMBEDDING_MODEL
    assert embedding_models(COSINE) == {DEFAULT_EMBEDDING_MODEL}
    nested = {"type": "multi", "graders": {"a": COSINE, "b": {**COSINE, "model": "cohere.x"}}}
    assert embedding_models(nested) == {DEFAULT_EMBEDDING_MODEL, "cohere.x"}


IMAGE_URL = "https://example.com/receipt.png"


def image_judge(model: str) -> dict[str, Any]:
    """A score_model whose user message holds text and an input_image part (the SDK's
    GraderInputs), the image URL from the dataset item."""
    return {
        "type": "score_model",
        "name": "receipt",
        "model": model,
        "input": [
            {"role": "system", "content": "Score 1 if the total matches the receipt, else 0."},
            {
                "role": "user",
                "type": "message",
                "content": [
                    {"type": "input_text", "text": "Total given: {{ sample.output_text }}"},
                    {"type": "input_image", "image_url": "{{ item.image_url }}", "detail": "low"},
                ],
            },
        ],
        "range": [0, 1],
    }


def test_input_image_parts_reach_the_judge(
    monkeypatch: pytest.MonkeyPatch, openai_server: OpenAIServer
) -> None:
    def behaviour(body: dict[str, Any], number: int) -> Reply:
        parts = body["messages"][-1]["content"]
        text = parts[0]["text"]
        return Reply(content='{"score": 1}' if "42.50" in text else '{"score": 0}')

    openai_server.chat.behaviour = behaviour
    module = load_reward(monkeypatch, image_judge("us.amazon.nova-pro-v1:0"))
    outputs = module.handler(event("42.50", "17.00", image_url=IMAGE_URL), LambdaContext())
    assert scores(outputs) == [1.0, 0.0]
    parts = openai_server.requests[0].body["messages"][-1]["content"]
    assert [part["type"] for part in parts] == ["text", "image_url"]
    assert parts[1]["image_url"] == {"url": IMAGE_URL, "detail": "low"}
    assert parts[0]["text"].startswith("Total given: <response-")


@pytest.mark.parametrize(
    "model", ["openai.gpt-oss-120b-1:0", "us.qwen.qwen3-32b-v1:0", "deepseek.v3-v1:0"]
)
def test_a_text_only_judge_with_images_is_a_definition_error(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    message = definition_error(monkeypatch, image_judge(model))
    assert message == (
        f"grader definition $.model: model '{model}' takes text only; "
        "input_image parts need a vision model"
    )


def test_an_image_url_from_the_response_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = image_judge("us.amazon.nova-pro-v1:0")
    definition["input"][1]["content"][1]["image_url"] = "{{ sample.output_text }}"
    message = definition_error(monkeypatch, definition)
    assert message.startswith(
        "grader definition $.input[1].content[1].image_url: an image URL may use item fields"
    )
