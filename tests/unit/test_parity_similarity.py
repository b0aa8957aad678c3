"""Similarity scores as OpenAI's graders imply them: identical texts score 1.0 under every
metric (an exact match passes any pass_threshold), and the metrics agree with their reference
libraries (rouge-score, NLTK, an independent Indel ratio) on generated pairs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.lambda_loader import LambdaContext
from tests.reward_support import load_reward, reward_module, rollout, scores
from tests.similarity_oracles import ORACLES, PAIRS, differences, generated_pairs

WORD_METRICS = ("bleu", "gleu", "meteor", *(f"rouge_{n}" for n in range(1, 6)), "rouge_l")


def similarity(metric: str) -> dict[str, Any]:
    """A text_similarity grader in the shape of OpenAI's graders guide."""
    return {
        "type": "text_similarity",
        "name": "similar",
        "input": "{{ sample.output_text }}",
        "reference": "{{ item.reference_answer }}",
        "evaluation_metric": metric,
        "pass_threshold": 0.8,
    }


@pytest.mark.parametrize("metric", ["fuzzy_match", *WORD_METRICS])
def test_identical_texts_score_one_and_pass(monkeypatch: pytest.MonkeyPatch, metric: str) -> None:
    module = load_reward(monkeypatch, similarity(metric))
    texts = ["Paris", "Paris France", "the capital is Paris", "seven apples in each box, so 42"]
    event = [rollout(f"s{i}", text, text) for i, text in enumerate(texts)]
    outputs = module.handler(event, LambdaContext())
    assert scores(outputs) == [1.0] * len(texts)
    for output in outputs:
        passed = [m["value"] for m in output["metrics_list"] if m["name"] == "similar_passed"]
        assert passed == [1.0]


@pytest.mark.parametrize("metric", WORD_METRICS)
def test_same_words_differently_cased_score_one(metric: str) -> None:
    # The word metrics compare lower-cased \w+ words (README): punctuation and case aside
    value = reward_module("grading.textmetrics").METRICS[metric]("Paris.", "paris")
    assert value == 1.0


def test_short_bleu_uses_the_orders_the_texts_have() -> None:
    bleu = reward_module("grading.textmetrics").METRICS["bleu"]
    # two words, one of them right: unigram precision 1/2, bigram 0 (smoothed, method 1)
    assert bleu("Paris France", "Paris Italy") == pytest.approx((0.5 * 0.1 / 1) ** 0.5)
    assert bleu("Lyon", "Paris") == 0.0
    assert bleu("", "") == 1.0
    assert bleu("Paris", "") == 0.0


def test_the_pairs_cover_short_and_long_texts() -> None:
    pairs = generated_pairs()
    assert len(pairs) == PAIRS
    assert pairs == generated_pairs()  # seeded: the same pairs every run
    lengths = {len(candidate.split()) for candidate, _ in pairs}
    assert {1, 2, 3, 10} <= lengths


def test_metrics_agree_with_the_reference_libraries() -> None:
    found = {
        name: (compared, largest) for name, compared, largest in differences(generated_pairs())
    }
    assert set(found) == set(ORACLES)
    for name, (compared, largest) in found.items():
        assert compared >= 100, name
        assert largest < 1e-9, f"{name} differs from its reference by {largest}"
