"""The rule-based grader types, each through ``handler()`` with a definition of its own."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.reward_support import (
    definition_error,
    load_reward,
    reward_module,
    rollout,
    scores,
)


def grade(
    monkeypatch: pytest.MonkeyPatch,
    definition: dict[str, Any],
    responses: list[str],
    reference: Any = None,
    **metadata: Any,
) -> list[dict[str, Any]]:
    module = load_reward(monkeypatch, definition)
    event = [rollout(str(i), text, reference, **metadata) for i, text in enumerate(responses)]
    outputs: list[dict[str, Any]] = module.handler(event, None)
    return outputs


def metric(output: dict[str, Any], name: str) -> float | None:
    values = [m["value"] for m in output["metrics_list"] if m["name"] == name]
    return values[0] if values else None


# string_check ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("eq", [1.0, 0.0, 0.0, 0.0]),
        ("ne", [0.0, 1.0, 1.0, 1.0]),
        ("like", [1.0, 0.0, 1.0, 0.0]),
        ("ilike", [1.0, 1.0, 1.0, 0.0]),
    ],
)
def test_string_check(
    monkeypatch: pytest.MonkeyPatch, operation: str, expected: list[float]
) -> None:
    definition = {
        "type": "string_check",
        "name": "label",
        "input": "{{ sample.output_text }}",
        "reference": "{{ item.reference_answer }}",
        "operation": operation,
    }
    outputs = grade(monkeypatch, definition, ["Paris", "PARIS", "It is Paris.", "Lyon"], "Paris")
    assert scores(outputs) == expected


def test_like_with_an_empty_reference_rewards_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = {
        "type": "string_check",
        "reference": "{{ item.reference_answer }}",
        "operation": "like",
    }
    outputs = grade(monkeypatch, definition, ["anything"], "")
    assert scores(outputs) == [0.0]
    assert metric(outputs[0], "grader_error") == 1.0


def test_string_check_reads_output_json(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = {
        "type": "string_check",
        "input": "{{ sample.output_json.city }}",
        "reference": "{{ item.reference_answer.city }}",
        "operation": "eq",
    }
    responses = [
        '{"city": "Paris"}',
        '```json\n{"city": "Paris"}\n```',
        '{"town": "Paris"}',
        "Paris",
    ]
    outputs = grade(monkeypatch, definition, responses, {"city": "Paris"})
    assert scores(outputs) == [1.0, 1.0, 0.0, 0.0]
    assert all(metric(output, "grader_error") is None for output in outputs)


def test_a_missing_item_field_is_a_grader_error_not_an_empty_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    definition = {"type": "string_check", "reference": "{{ item.expected }}", "operation": "eq"}
    outputs = grade(monkeypatch, definition, [""], "x")
    assert scores(outputs) == [0.0]
    assert metric(outputs[0], "grader_error") == 1.0


def test_templates_cannot_reach_python_internals(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox refuses dunder attributes: they render as nothing, never as Python objects."""
    for reference, expected in (("<class 'str'>", 0.0), ("", 1.0)):
        definition = {
            "type": "string_check",
            "input": "{{ sample.output_text.__class__ }}{{ sample.__init__.__globals__ }}",
            "reference": reference,
            "operation": "eq",
        }
        assert scores(grade(monkeypatch, definition, ["hello"], "x")) == [expected]


def test_item_fields_named_like_dict_methods(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = {"type": "string_check", "reference": "{{ item.items }}", "operation": "eq"}
    outputs = grade(monkeypatch, definition, ["apples", "pears"], None, items="apples")
    assert scores(outputs) == [1.0, 0.0]


# text_similarity ------------------------------------------------------------------------


REFERENCE = "The cat sat on the mat near the door."


@pytest.mark.parametrize(
    "metric_name",
    [
        "fuzzy_match",
        "bleu",
        "gleu",
        "meteor",
        "rouge_1",
        "rouge_2",
        "rouge_3",
        "rouge_4",
        "rouge_5",
        "rouge_l",
    ],
)
def test_text_similarity_orders_candidates(
    monkeypatch: pytest.MonkeyPatch, metric_name: str
) -> None:
    definition = {
        "type": "text_similarity",
        "input": "{{ sample.output_text }}",
        "reference": "{{ item.reference_answer }}",
        "evaluation_metric": metric_name,
    }
    candidates = [
        REFERENCE,
        "The cat sat on the mat near the window.",
        "A dog slept under a table.",
        "",
    ]
    values = scores(grade(monkeypatch, definition, candidates, REFERENCE))
    # METEOR's fragmentation penalty keeps even an identical sentence just below 1
    assert values[0] == pytest.approx(1.0, abs=1e-2 if metric_name == "meteor" else 1e-9)
    assert values[0] > values[1] > values[2] >= values[3] == 0.0
    assert all(0.0 <= value <= 1.0 for value in values)


def test_text_similarity_known_values() -> None:
    metrics = reward_module("grading.textmetrics")
    # ROUGE-1: 5 of 6 words shared -> precision 5/6, recall 5/6
    assert metrics.rouge_n(1)("a b c d e f", "a b c d e g") == pytest.approx(5 / 6)
    # ROUGE-L: LCS "a c e" of 5 and 4 words -> P 3/5, R 3/4
    assert metrics.rouge_l("a b c d e", "a c x e") == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert metrics.fuzzy_match("kitten", "sitting") == pytest.approx(1 - 5 / 13)
    # METEOR matches stems without WordNet: "running" ~ "runs"
    assert metrics.meteor("the dog runs", "the dog running") > metrics.meteor(
        "the dog", "the dog running"
    )


def test_pass_threshold_adds_a_passed_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = {
        "type": "text_similarity",
        "name": "sim",
        "reference": "{{ item.reference_answer }}",
        "evaluation_metric": "fuzzy_match",
        "pass_threshold": 0.9,
    }
    outputs = grade(monkeypatch, definition, [REFERENCE, "something else"], REFERENCE)
    assert [metric(output, "sim_passed") for output in outputs] == [1.0, 0.0]


# regex, format, length ------------------------------------------------------------------


def test_regex(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = {"type": "regex", "pattern": "^#### -?[0-9,]+$", "flags": ["m"]}
    outputs = grade(monkeypatch, definition, ["work\n#### 72", "work\n#### 72 apples", "72"])
    assert scores(outputs) == [1.0, 0.0, 0.0]
    negated = {"type": "regex", "pattern": "as an ai", "flags": ["i"], "negate": True}
    assert scores(grade(monkeypatch, negated, ["As an AI, I...", "Sure."])) == [0.0, 1.0]
    full = {"type": "regex", "pattern": "[A-D]", "mode": "fullmatch"}
    assert scores(grade(monkeypatch, full, ["B", "B.", "b"])) == [1.0, 0.0, 0.0]


def test_format_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = {"type": "format", "required_tags": ["think", "answer"], "only_tags": True}
    responses = [
        "<think>9 * 2</think>\n<answer>18</answer>",
        "<answer>18</answer><think>9 * 2</think>",  # wrong order
        "<think>9 * 2</think><answer>  </answer>",  # empty answer
        "<think>a</think><answer>18</answer><answer>20</answer>",  # twice
        "Sure! <think>a</think><answer>18</answer>",  # text outside the tags
        "<think>a</think>",
    ]
    assert scores(grade(monkeypatch, definition, responses)) == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    fraction = {**definition, "scoring": "fraction"}
    values = scores(grade(monkeypatch, fraction, responses))
    assert values[0] == 1.0
    assert 0.0 < values[1] < 1.0
    assert values[5] == pytest.approx(2 / 4)  # think ok, answer missing, order fails, outside ok


def test_format_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = {"type": "format", "required_sections": ["## Reasoning", "## Answer"]}
    responses = [
        "## Reasoning\nx\n## Answer\n18",
        "## Answer\n18\n## Reasoning\nx",
        "## Answer\n18",
    ]
    assert scores(grade(monkeypatch, definition, responses)) == [1.0, 0.0, 0.0]


def test_length_band_and_falloff(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = {"type": "length", "unit": "words", "min": 3, "max": 5, "falloff": 4}
    responses = [
        "one two three",
        "1 2 3 4 5",
        "1 2 3 4 5 6 7",
        "one",
        " ".join("w" * 1 for _ in range(20)),
    ]
    assert scores(grade(monkeypatch, definition, responses)) == [1.0, 1.0, 0.5, 0.5, 0.0]
    hard = {"type": "length", "unit": "characters", "max": 10}
    assert scores(grade(monkeypatch, hard, ["short", "far too long here"])) == [1.0, 0.0]
    tokens = {"type": "length", "unit": "tokens", "max": 4}
    assert scores(grade(monkeypatch, tokens, ["Hi, there!", "Hi, there, you!"])) == [1.0, 0.0]


# json_schema ----------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["name", "age"],
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
}


def test_json_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = {"type": "json_schema", "schema": SCHEMA}
    responses = [
        '{"name": "Ada", "age": 36}',
        '```json\n{"name": "Ada", "age": 36}\n```',
        '{"name": "Ada", "age": -1}',
        '{"name": "Ada"}',
        "Ada is 36",
        "null",
    ]
    assert scores(grade(monkeypatch, definition, responses)) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    partial = {**definition, "partial_credit": 0.2}
    assert scores(grade(monkeypatch, partial, responses))[2:5] == [0.2, 0.2, 0.0]


def test_an_invalid_schema_fails_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    grading = reward_module()
    bad = {
        "type": "json_schema",
        "schema": {"type": "object", "properties": {"age": {"type": "integr"}}},
    }
    with pytest.raises(
        grading.DefinitionError, match=r"\$\.schema\.properties\.age\.type: invalid JSON Schema"
    ):
        load_reward(monkeypatch, bad)


# python ---------------------------------------------------------------------------------

SOURCE = """
import math

def grade(sample, item):
    expected = item["reference_answer"]
    if sample["output_text"].strip() == expected:
        return 1.0
    return 0.25 if expected.lower() in sample["output_text"].lower() else 0.0
"""


def test_python_grader(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = {"type": "python", "source": SOURCE}
    outputs = grade(monkeypatch, definition, ["Paris", "it's paris", "Lyon"], "Paris")
    assert scores(outputs) == [1.0, 0.25, 0.0]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("    return 'yes'", "returned str"),
        ("    return float('nan')", "returned nan"),
        ("    raise KeyError('x')", "KeyError"),
        ("    return None", "returned NoneType"),
    ],
)
def test_python_grader_failures_are_per_sample(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], body: str, problem: str
) -> None:
    head = "def grade(sample, item):\n    if sample['output_text'] == 'ok':\n        return 1\n"
    source = f"{head}{body}\n"
    outputs = grade(monkeypatch, {"type": "python", "source": source}, ["ok", "bad"])
    assert scores(outputs) == [1.0, 0.0]
    assert metric(outputs[1], "grader_error") == 1.0
    assert problem in capsys.readouterr().out


def test_python_grader_gets_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    source = (
        "def grade(sample, item):\n"
        "    item['reference_answer'] = 'changed'\n"
        "    sample['messages'].clear()\n"
        "    return 1.0\n"
    )
    definition = {
        "type": "multi",
        "graders": {
            "mutate": {"type": "python", "source": source},
            "check": {
                "type": "string_check",
                "reference": "{{ item.reference_answer }}",
                "operation": "eq",
            },
        },
        "calculate_output": "mutate * check",
    }
    assert scores(grade(monkeypatch, definition, ["Paris"], "Paris")) == [1.0]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("def grade(sample, item) return 1", "syntax error on line 1"),
        ("def score(sample, item):\n    return 1", "defines no function grade"),
        ("def grade(sample):\n    return 1", "must accept two arguments"),
        ("raise RuntimeError('boom')", "raised RuntimeError: boom"),
    ],
)
def test_python_source_problems_fail_at_load(
    monkeypatch: pytest.MonkeyPatch, source: str, problem: str
) -> None:
    message = definition_error(monkeypatch, {"type": "python", "source": source})
    assert "$.source: " in message
    assert problem in message


# multi and formulas ---------------------------------------------------------------------


def multi(formula: str) -> dict[str, Any]:
    return {
        "type": "multi",
        "name": "combo",
        "graders": {
            "accuracy": {"type": "math_answer"},
            "format": {"type": "regex", "pattern": "^#### ", "flags": ["m"]},
            "brevity": {"type": "length", "unit": "words", "max": 10},
        },
        "calculate_output": formula,
    }


def test_multi_combines_and_reports_sub_graders(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = multi("0.7 * accuracy + 0.2 * format + 0.1 * brevity")
    responses = ["#### 18", "The answer is 18.", "#### 20", "#### 18 " + "word " * 20]
    outputs = grade(monkeypatch, definition, responses, "18")
    assert scores(outputs) == pytest.approx([1.0, 0.8, 0.3, 0.9])
    assert {m["name"]: m["value"] for m in outputs[1]["metrics_list"]} == {
        "combo": pytest.approx(0.8),
        "accuracy": 1.0,
        "format": 0.0,
        "brevity": 1.0,
    }
    assert outputs[1]["metrics_list"][0]["type"] == "Reward"
    assert all(m["type"] == "Metric" for m in outputs[1]["metrics_list"][1:])


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("accuracy ^ 2", 1.0),
        ("min(accuracy, format)", 0.0),
        ("max(accuracy, format, 0.5)", 1.0),
        ("(accuracy + format) / 2", 0.5),
        ("-accuracy + 1.5", 0.5),
        ("sqrt(accuracy) * 0.25 + floor(0.9) + ceil(0.1) * 0.5", 0.75),
        ("abs(format - accuracy) * exp(0) * log(exp(1))", 1.0),
        ("accuracy * 3", 1.0),  # the reward is limited to [0, 1]
        ("format - 1", 0.0),
    ],
)
def test_formulas(monkeypatch: pytest.MonkeyPatch, formula: str, expected: float) -> None:
    outputs = grade(monkeypatch, multi(formula), ["The answer is 18."], "18")
    assert scores(outputs) == [pytest.approx(expected)]


def test_arithmetic_errors_are_sample_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = grade(monkeypatch, multi("accuracy / format"), ["The answer is 18.", "#### 18"], "18")
    assert scores(outputs) == [0.0, 1.0]
    assert metric(outputs[0], "grader_error") == 1.0


@pytest.mark.parametrize(
    ("formula", "problem"),
    [
        ("__import__('os').system('true')", "only these functions exist"),
        ("accuracy.real", "Attribute is not allowed"),
        ("[accuracy][0]", "is not allowed"),
        ("'a' * 3", "only numbers are allowed"),
        ("accuracy if format else 0", "IfExp is not allowed"),
        ("accuracy > format", "Compare is not allowed"),
        ("speed * 2", "'speed' is not a grader of this multi"),
        ("min()", "min() takes 1 to 64 positional arguments"),
        ("sqrt(accuracy, format)", "sqrt() takes 1 to 1"),
        ("accuracy +", "formula syntax error"),
        ("accuracy << 2", "operator LShift is not allowed"),
        ("(lambda: 1)()", "only these functions exist"),
    ],
)
def test_unsafe_or_wrong_formulas_fail_at_load(
    monkeypatch: pytest.MonkeyPatch, formula: str, problem: str
) -> None:
    message = definition_error(monkeypatch, multi(formula))
    assert "$.calculate_output: " in message
    assert problem in message


def test_errors_inside_multi_name_the_sub_grader_path(monkeypatch: pytest.MonkeyPatch) -> None:
    grading = reward_module()
    definition = multi("accuracy")
    definition["graders"]["format"]["pattern"] = "(unclosed"
    with pytest.raises(
        grading.DefinitionError, match=r"\$\.graders\.format\.pattern: invalid regular"
    ):
        load_reward(monkeypatch, definition)
    definition = multi("accuracy")
    definition["graders"]["my grader"] = {"type": "math_answer"}
    with pytest.raises(grading.DefinitionError, match=r'\$\.graders\["my grader"\]: a grader'):
        load_reward(monkeypatch, definition)


def test_a_sub_grader_error_fails_the_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = grade(monkeypatch, multi("accuracy + format"), ["#### 18"], None)
    assert scores(outputs) == [0.0]
    assert metric(outputs[0], "grader_error") == 1.0


def test_sub_grader_means_are_emf_metrics(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.reward_support import emf_records

    capsys.readouterr()
    grade(monkeypatch, multi("accuracy"), ["#### 18", "#### 18 " + "w " * 30], "18")
    records = emf_records(capsys.readouterr().out)
    subs = {r["SubGrader"]: r["SubGraderMean"] for r in records if "SubGrader" in r}
    assert subs == {"accuracy": [1.0], "format": [1.0], "brevity": [0.5]}
    for record in records:
        dims = record["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        assert dims in ([["Environment", "Grader"]], [["Environment", "Grader", "SubGrader"]])


def test_the_definition_json_is_what_openai_users_bring(monkeypatch: pytest.MonkeyPatch) -> None:
    """An OpenAI RFT multi grader, unchanged (image_tag and pass_threshold accepted)."""
    openai_grader = json.loads(
        """{
          "type": "multi",
          "graders": {
            "exact": {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
                      "reference": "{{item.reference_answer}}", "operation": "eq"},
            "close": {"type": "text_similarity", "name": "close", "input": "{{sample.output_text}}",
                      "reference": "{{item.reference_answer}}", "evaluation_metric": "fuzzy_match",
                      "pass_threshold": 0.8},
            "code": {"type": "python", "name": "code", "image_tag": "2025-05-08",
                     "source": "def grade(sample, item):\\n    return sample['output_text'] > ''"}
          },
          "calculate_output": "0.5 * exact + 0.4 * close + 0.1 * code"
        }"""
    )
    outputs = grade(monkeypatch, openai_grader, ["Paris", "Pariss"], "Paris")
    values = scores(outputs)
    assert values[0] == pytest.approx(1.0)
    assert 0.4 < values[1] < 0.6
