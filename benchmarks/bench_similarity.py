"""Benchmark: the text_similarity metrics against their reference libraries, and their speed.

On 400 seeded generated pairs (tests/similarity_oracles.py): per metric, how many pairs were
compared with the reference (rouge-score for ROUGE, NLTK for BLEU-4 and GLEU on texts of 4 words
or more, an independent Indel ratio for fuzzy_match), the largest absolute difference, and the
mean time of one call. tests/unit/test_parity_similarity.py holds the differences under 1e-9.
Usage: ``python benchmarks/bench_similarity.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reward_support import reward_module  # noqa: E402
from tests.similarity_oracles import PAIRS, SEED, differences, generated_pairs  # noqa: E402


def main() -> None:
    """Print the agreement and the cost of each metric."""
    pairs = generated_pairs()
    metrics = reward_module("grading.textmetrics").METRICS
    print(f"Similarity metrics: {PAIRS} generated pairs (seed {SEED}) against the references")
    agreement = {name: (compared, largest) for name, compared, largest in differences(pairs)}
    for name, metric in metrics.items():
        metric(*pairs[0])  # imports (NLTK, rapidfuzz) outside the timing
        started = time.perf_counter()
        for candidate, reference in pairs:
            metric(candidate, reference)
        per_call = (time.perf_counter() - started) / len(pairs) * 1e6
        if name in agreement:
            compared, largest = agreement[name]
            versus = f"max difference {largest:.2e} over {compared} pairs"
        else:
            versus = "no reference run here (see README)"
        print(f"   {name:12s} {per_call:8.1f} us/call   {versus}")


if __name__ == "__main__":
    main()
