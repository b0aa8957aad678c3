"""Templates that render as OpenAI's do: a JSON key wins over a dict method name at any depth
(also in judge prompts), ``item.messages`` is the prompt, ``sample.output_tools`` and
``sample.choices`` come from the rollout's tool calls, and a python grader's ``sample`` carries
OpenAI's documented keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.lambda_loader import LambdaContext
from tests.openai_server import OpenAIServer, Reply
from tests.reward_support import load_reward, reward_module, rollout, scores

METHOD_NAMES = ("items", "keys", "values", "get", "copy", "update", "pop")


def check(input_template: str, reference: str, name: str = "check") -> dict[str, Any]:
    return {
        "type": "string_check",
        "name": name,
        "input": input_template,
        "reference": reference,
        "operation": "eq",
    }


@pytest.mark.parametrize("key", METHOD_NAMES)
def test_a_json_key_wins_over_a_dict_method(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    definition = check(
        f"{{{{ sample.output_json.{key} }}}}/{{{{ sample.output_json.order.{key}.{key} }}}}",
        "{{ item.reference_answer }}",
    )
    module = load_reward(monkeypatch, definition)
    response = json.dumps({key: "3", "order": {key: {key: "4"}}})
    outputs = module.handler(
        [rollout("a", response, "3/4"), rollout("b", response, "3/5")], LambdaContext()
    )
    assert scores(outputs) == [1.0, 0.0]


def test_a_json_key_wins_inside_a_judge_prompt(
    monkeypatch: pytest.MonkeyPatch, openai_server: OpenAIServer
) -> None:
    openai_server.chat.behaviour = lambda body, number: Reply(content='{"result": 1}')
    definition = {
        "type": "score_model",
        "name": "order",
        "model": "test-judge",
        "input": [
            {
                "role": "user",
                "content": "Items: {{ sample.output_json.items }}; "
                "values: {{ sample.output_json.totals.values }}",
            },
        ],
    }
    module = load_reward(monkeypatch, definition)
    response = json.dumps({"items": ["pen", "ink"], "totals": {"values": "12"}})
    assert scores(module.handler([rollout("a", response)], LambdaContext())) == [1.0]
    prompt = openai_server.requests[0].body["messages"][-1]["content"]
    assert '["<response-' in prompt and "pen" in prompt and "ink" in prompt
    assert "values: <response-" in prompt and "\n12\n</response-" in prompt
    assert "built-in method" not in prompt


def test_item_messages_is_the_prompt(
    monkeypatch: pytest.MonkeyPatch, openai_server: OpenAIServer
) -> None:
    # HealthBench's score model reads the conversation from the item
    openai_server.chat.behaviour = lambda body, number: Reply(content='{"result": 1}')
    definition = {
        "type": "score_model",
        "name": "rubric",
        "model": "test-judge",
        "input": [
            {
                "role": "user",
                "content": "Conversation: {{ item.messages }}\n"
                "Last turn: {{ item.messages[-1].content }}\nResponse: {{ sample.output_text }}",
            },
        ],
    }
    module = load_reward(monkeypatch, definition)
    event = [rollout("a", "Rest and fluids.", prompt="I have a cold. What helps?")]
    assert scores(module.handler(event, LambdaContext())) == [1.0]
    prompt = openai_server.requests[0].body["messages"][-1]["content"]
    expected = json.dumps([{"role": "user", "content": "I have a cold. What helps?"}])
    assert f"Conversation: {expected}\n" in prompt
    assert "Last turn: I have a cold. What helps?\n" in prompt
    assert "Rest and fluids" not in prompt.split("Response:")[0]


def test_a_dataset_field_named_messages_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_reward(monkeypatch, check("{{ item.messages }}", "{{ sample.output_text }}"))
    outputs = module.handler([rollout("a", "mine", messages="mine")], LambdaContext())
    assert scores(outputs) == [1.0]


def tool_rollout(sample_id: str, name: str, call_arguments: str, **metadata: Any) -> dict[str, Any]:
    """A rollout whose response is a tool call (chat-completions shape)."""
    return {
        "id": sample_id,
        "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": name, "arguments": call_arguments},
                    }
                ],
            },
        ],
        "metadata": metadata,
    }


def test_tool_calls_through_output_tools_and_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    # A tool-call check in the style of OpenAI's graders guide: name and arguments
    definition = {
        "type": "multi",
        "name": "tool_use",
        "graders": {
            "tool": check("{{ sample.output_tools[0].function.name }}", "{{ item.tool }}"),
            "city": check(
                "{{ sample.choices[0].message.tool_calls[0].function.arguments }}",
                "{{ item.arguments }}",
            ),
        },
        "calculate_output": "0.5 * tool + 0.5 * city",
    }
    module = load_reward(monkeypatch, definition)
    arguments = '{"city": "Paris"}'
    expected = {"tool": "get_weather", "arguments": arguments}
    outputs = module.handler(
        [
            tool_rollout("a", "get_weather", arguments, **expected),
            tool_rollout("b", "get_weather", '{"city": "Lyon"}', **expected),
            tool_rollout("c", "get_time", arguments, **expected),
            rollout("d", "It is sunny.", **expected),
        ],
        LambdaContext(),
    )
    assert scores(outputs) == [1.0, 0.5, 0.5, 0.0]


def test_a_python_grader_sees_openai_sample_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    source = (
        "import json\n"
        "def grade(sample, item):\n"
        "    assert set(sample) >= {'output_text', 'output_json', 'output_tools',\n"
        "                           'output_audio', 'choices'}\n"
        "    assert sample['output_audio'] == {}\n"
        "    assert item['messages'][0]['role'] == 'user'\n"
        "    message = sample['choices'][0]['message']\n"
        "    calls = message.get('tool_calls') or []\n"
        "    if not calls:\n"
        "        return 0.0\n"
        "    assert calls == sample['output_tools']\n"
        "    args = json.loads(calls[0]['function']['arguments'])\n"
        "    return float(calls[0]['function']['name'] == item['tool'] and\n"
        "                 args == json.loads(item['arguments']))\n"
    )
    module = load_reward(monkeypatch, {"type": "python", "name": "tool", "source": source})
    expected = {"tool": "get_weather", "arguments": '{"city":"Paris"}'}
    outputs = module.handler(
        [
            tool_rollout("a", "get_weather", '{"city": "Paris"}', **expected),
            tool_rollout("b", "get_weather", '{"city": "Lyon"}', **expected),
            rollout("c", "sunny", **expected),
        ],
        LambdaContext(),
    )
    assert scores(outputs) == [1.0, 0.0, 0.0]
    assert all(m["name"] != "grader_error" for o in outputs for m in o["metrics_list"])


def test_tool_calls_are_built_only_when_a_template_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    samples = reward_module("grading.samples")
    templates = reward_module("grading.templates")

    def forbidden(self: Any) -> Any:
        raise AssertionError("built without being read")

    sample = samples.parse_rollout(rollout("a", '{"x": 1}', "1"))
    monkeypatch.setattr(samples.Sample, "output_tools", property(forbidden))
    monkeypatch.setattr(samples.Sample, "choices", property(forbidden))
    template = templates.Template("{{ sample.output_json.x }}={{ item.reference_answer }}", "$")
    assert template.render(sample) == "1=1"
    assert template.render(sample, lambda text: text) == "1=1"
