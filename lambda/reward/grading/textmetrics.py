"""Text similarity metrics, each a function ``(candidate, reference) -> float`` in [0, 1].

Libraries where a well-kept one exists for the Lambda platform: rapidfuzz (fuzzy match) and
NLTK (BLEU, GLEU, METEOR), each imported on first use (NLTK costs about 0.2 s). ROUGE is computed
here: the reference implementation (``rouge-score``) ships no wheel, only a source archive, and
the bundle installs binary wheels only; the tests and ``make bench`` hold it to rouge-score.
Texts are lower-cased and split into ``\\w+`` words, so no tokenizer data has to be downloaded.

Identical texts score 1.0 under every metric (the same words in the same order, after that
tokenization; ``fuzzy_match`` compares the strings as they are). The libraries do not all
agree: sentence BLEU-4 of a text shorter than 4 words has no 4-grams to match (NLTK gives an
identical one word 0.18), METEOR's fragmentation penalty is never 0 (an identical word scores
0.5), and ROUGE-N of a text shorter than N words has no N-grams (rouge-score gives 0). A user's
pass threshold on an exact match must pass, so those cases are 1.0 here; BLEU also uses n-gram
orders only up to the shorter text's length (uniform weights), so a short answer is scored on
the orders it has.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from functools import cache
from typing import Any

_WORD = re.compile(r"\w+")
Metric = Callable[[str, str], float]


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return _WORD.findall(text.lower())


def fuzzy_match(candidate: str, reference: str) -> float:
    """Normalized Indel similarity of the two strings (rapidfuzz ``fuzz.ratio`` / 100)."""
    from rapidfuzz import fuzz

    return float(fuzz.ratio(candidate, reference)) / 100.0


@cache
def _bleu_smoothing() -> Any:
    from nltk.translate.bleu_score import SmoothingFunction

    # Sentence-level BLEU is 0 whenever some n-gram order has no match; method 1 (epsilon
    # counts) keeps partial credit for short answers.
    return SmoothingFunction().method1


def bleu(candidate: str, reference: str) -> float:
    """Sentence BLEU (NLTK, smoothing method 1) over n-gram orders 1 to 4, fewer when a text is
    shorter than 4 words (uniform weights over the orders it has)."""
    from nltk.translate.bleu_score import sentence_bleu

    hypothesis, expected = words(candidate), words(reference)
    if not hypothesis or not expected:
        return 1.0 if hypothesis == expected else 0.0
    orders = min(4, len(hypothesis), len(expected))
    weights = (1.0 / orders,) * orders
    return float(
        sentence_bleu([expected], hypothesis, weights=weights, smoothing_function=_bleu_smoothing())
    )


def gleu(candidate: str, reference: str) -> float:
    """Sentence GLEU (NLTK: Google-BLEU, n-grams of 1 to 4)."""
    from nltk.translate.gleu_score import sentence_gleu

    hypothesis, expected = words(candidate), words(reference)
    if not hypothesis or not expected:
        return 1.0 if hypothesis == expected else 0.0
    return float(sentence_gleu([expected], hypothesis))


class _NoSynonyms:
    """Stands in for WordNet: the bundle carries no NLTK corpora (nothing is downloaded at
    run time), so METEOR matches exact words and Porter stems only."""

    def synsets(self, word: str) -> list[Any]:
        """No synonyms for any word."""
        return []


def meteor(candidate: str, reference: str) -> float:
    """METEOR (NLTK) with exact and stem matching; no synonym stage (see :class:`_NoSynonyms`)."""
    from nltk.translate.meteor_score import single_meteor_score

    hypothesis, expected = words(candidate), words(reference)
    if not hypothesis or not expected:
        return 1.0 if hypothesis == expected else 0.0
    return float(single_meteor_score(expected, hypothesis, wordnet=_NoSynonyms()))


def _ngrams(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _f1(overlap: int, candidate_total: int, reference_total: int) -> float:
    if overlap == 0:
        return 0.0
    precision, recall = overlap / candidate_total, overlap / reference_total
    return 2 * precision * recall / (precision + recall)


def rouge_n(n: int) -> Metric:
    """ROUGE-N F-measure: overlap of word n-grams."""

    def metric(candidate: str, reference: str) -> float:
        hypothesis, expected = _ngrams(words(candidate), n), _ngrams(words(reference), n)
        overlap = sum((hypothesis & expected).values())
        return _f1(overlap, sum(hypothesis.values()), sum(expected.values()))

    return metric


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F-measure: the longest common subsequence of words."""
    hypothesis, expected = words(candidate), words(reference)
    if not hypothesis or not expected:
        return 0.0
    previous = [0] * (len(expected) + 1)
    for token in hypothesis:
        current = [0]
        for index, other in enumerate(expected):
            current.append(
                previous[index] + 1 if token == other else max(previous[index + 1], current[-1])
            )
        previous = current
    return _f1(previous[-1], len(hypothesis), len(expected))


def _identical_is_one(metric: Metric) -> Metric:
    """``metric``, with 1.0 for texts of the same words (see the module's docstring)."""

    def scored(candidate: str, reference: str) -> float:
        if candidate == reference or words(candidate) == words(reference):
            return 1.0
        return metric(candidate, reference)

    scored.__doc__ = metric.__doc__
    return scored


METRICS: dict[str, Metric] = {
    "fuzzy_match": fuzzy_match,  # identical strings are 100 in rapidfuzz already
    **{
        name: _identical_is_one(metric)
        for name, metric in (
            ("bleu", bleu),
            ("gleu", gleu),
            ("meteor", meteor),
            *((f"rouge_{n}", rouge_n(n)) for n in range(1, 6)),
            ("rouge_l", rouge_l),
        )
    },
}
