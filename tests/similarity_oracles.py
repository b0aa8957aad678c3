"""The similarity metrics of the reward Lambda against their reference libraries, on seeded
generated text pairs: shared by tests/unit/test_parity_similarity.py (which pins the agreement)
and benchmarks/bench_similarity.py (which prints the largest difference per metric).

References: rouge-score (Google's reimplementation of ROUGE-1.5.5, a test dependency only) for
ROUGE-N and ROUGE-L; NLTK's own sentence BLEU-4 and GLEU for texts of 4 words or more (the
bundle's orders and identical-text rule change only shorter or identical texts); an independent
longest-common-subsequence computation of the Indel ratio for rapidfuzz's ``fuzz.ratio``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from tests.reward_support import reward_module

# A small vocabulary, so that generated pairs share words and n-grams often.
VOCABULARY = [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "a",
    "dog",
    "ran",
    "in",
    "park",
    "paris",
    "is",
    "capital",
    "of",
    "france",
    "answer",
    "seven",
    "twelve",
    "total",
    "apples",
    "each",
    "box",
    "so",
    "we",
    "get",
]
PAIRS = 400
SEED = 20261130


def generated_pairs(count: int = PAIRS, seed: int = SEED) -> list[tuple[str, str]]:
    """``count`` (candidate, reference) pairs: the reference a random text of 1 to 14 words,
    the candidate an edit of it (words dropped, swapped, replaced) or an unrelated text."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        reference = [rng.choice(VOCABULARY) for _ in range(rng.randint(1, 14))]
        if rng.random() < 0.2:
            candidate = [rng.choice(VOCABULARY) for _ in range(rng.randint(1, 14))]
        else:
            candidate = [
                rng.choice(VOCABULARY) if rng.random() < 0.25 else word
                for word in reference
                if rng.random() > 0.15
            ] or [rng.choice(VOCABULARY)]
            if len(candidate) > 1 and rng.random() < 0.3:
                i = rng.randrange(len(candidate) - 1)
                candidate[i], candidate[i + 1] = candidate[i + 1], candidate[i]
        pairs.append((" ".join(candidate), " ".join(reference)))
    return pairs


def _rouge(kind: str) -> Callable[[str, str], float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer([kind], use_stemmer=False)

    def score(candidate: str, reference: str) -> float:
        return float(scorer.score(reference, candidate)[kind].fmeasure)

    return score


def _nltk_bleu4(candidate: str, reference: str) -> float:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    return float(
        sentence_bleu(
            [reference.split()],
            candidate.split(),
            smoothing_function=SmoothingFunction().method1,
        )
    )


def _nltk_gleu(candidate: str, reference: str) -> float:
    from nltk.translate.gleu_score import sentence_gleu

    return float(sentence_gleu([reference.split()], candidate.split()))


def _indel_ratio(candidate: str, reference: str) -> float:
    """2 * LCS / total length (the normalized Indel similarity), computed independently."""
    if not candidate and not reference:
        return 1.0
    previous = [0] * (len(reference) + 1)
    for char in candidate:
        current = [0]
        for index, other in enumerate(reference):
            current.append(
                previous[index] + 1 if char == other else max(previous[index + 1], current[-1])
            )
        previous = current
    return 2 * previous[-1] / (len(candidate) + len(reference))


def _long(candidate: str, reference: str) -> bool:
    return min(len(candidate.split()), len(reference.split())) >= 4


def _all(candidate: str, reference: str) -> bool:
    return True


# metric -> (reference implementation, which pairs it is the reference for)
ORACLES: dict[str, tuple[Callable[[str, str], float], Callable[[str, str], bool]]] = {
    **{f"rouge_{n}": (_rouge(f"rouge{n}"), _all) for n in range(1, 6)},
    "rouge_l": (_rouge("rougeL"), _all),
    "bleu": (_nltk_bleu4, _long),
    "gleu": (_nltk_gleu, _long),
    "fuzzy_match": (_indel_ratio, _all),
}


def differences(pairs: list[tuple[str, str]]) -> Iterator[tuple[str, int, float]]:
    """Per metric: how many non-identical pairs were compared, and the largest absolute
    difference between the bundle's value and the reference's."""
    metrics: dict[str, Any] = reward_module("grading.textmetrics").METRICS
    for name, (oracle, applies) in ORACLES.items():
        compared, largest = 0, 0.0
        for candidate, reference in pairs:
            if candidate == reference or not applies(candidate, reference):
                continue
            compared += 1
            largest = max(
                largest, abs(metrics[name](candidate, reference) - oracle(candidate, reference))
            )
        yield name, compared, largest
