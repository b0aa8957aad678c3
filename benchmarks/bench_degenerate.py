"""Benchmark of the reward Lambda on degenerate rollouts: what a collapsing policy produces.

Run with ``make bench``. Prints figures; asserts nothing (speed targets are read, not tested).

RL policies collapse into repetition. Each shape below is a batch of 64 rollouts of about
40 KB each, sent through ``handler()`` with the GSM8K grader (``tests/fixtures/graders/
gsm8k.json``, plain-number references) and with a ``math_answer`` grader against LaTeX
references (``\\frac{1}{2}``, ``2\\sqrt{3}``, ``(0,1]``). Every (grader, shape) pair runs in a
fresh process, so that its peak RSS is its own: the figures are the first batch's wall-clock
time, the best of ``ROUNDS`` batches, and the process's peak RSS (``ru_maxrss``) after them,
next to the RSS before them. Each rollout of a batch has its own text (a numbered first
line), so no cache sees a response twice. A batch
that does not finish within ``LIMIT_SECONDS`` is reported as such (the process is killed).
Target: every batch in well under a second, peak RSS well under the function's memory.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH = 64
SIZE = 40_000  # characters of each response
ROUNDS = 3  # batches per process: the first, and the best of them (less disturbed by load)
LIMIT_SECONDS = float(os.environ.get("BENCH_DEGENERATE_LIMIT", "60"))

SHAPES: dict[str, str] = {
    "repeated \\boxed{1}": "\\boxed{1} ",
    "repeated digits": "1",
    "repeated numbers": "7 ",
    "one giant line": "So the answer is 1 or maybe 2, between 3 and 4; ",
    "many lines": "Step: 2+2=4, the answer is 4.\n",
    "nested braces": "{",
    "repeated #### 1": "#### 1 ",
    "10^{10^8}": "$\\boxed{10^{10^{8}}}$ ",
    "unclosed \\(": "\\( 1 ",
}
LATEX_REFERENCES = ("\\frac{1}{2}", "2\\sqrt{3}", "(0,1]")


def response(shape: str) -> str:
    """About ``SIZE`` characters of ``shape``'s unit (nested braces: opened, then closed)."""
    unit = SHAPES[shape]
    if shape == "nested braces":
        half = SIZE // 2 - 10
        return "\\boxed{" + "{" * half + "1" + "}" * half + "}"
    return (unit * (SIZE // len(unit) + 1))[:SIZE]


def event(shape: str, grader: str) -> list[dict[str, Any]]:
    """``BATCH`` rollouts of ``shape``, with references for ``grader``."""
    body = response(shape)
    rollouts = []
    for index in range(BATCH):
        # each rollout its own text, as a batch's are (no cache sees the same response twice)
        text = f"Attempt {index}.\n{body}"
        if grader == "gsm8k":
            reference = str(index % 3)
        else:
            reference = LATEX_REFERENCES[index % len(LATEX_REFERENCES)]
        rollouts.append(
            {
                "id": f"{shape}-{index}",
                "messages": [
                    {"role": "user", "content": "Solve it."},
                    {"role": "assistant", "content": text},
                ],
                "metadata": {"reference_answer": {"final_answer": reference}},
            }
        )
    return rollouts


GRADERS = {
    "gsm8k": str(ROOT / "tests" / "fixtures" / "graders" / "gsm8k.json"),
    "latex": json.dumps({"type": "math_answer", "name": "latex", "tolerance": 1e-6}),
}


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def child(grader: str, shape: str) -> None:
    """One batch in this process; prints a JSON line of figures."""
    import contextlib
    import io

    from tests.lambda_loader import load_handler

    os.environ["GRADER_CONFIG"] = GRADERS[grader]
    handler = load_handler("reward", fresh=True).handler
    warm = event("many lines", grader)[:1]  # imports and caches of the first call
    with contextlib.redirect_stdout(io.StringIO()):
        handler(warm, None)
    batch = event(shape, grader)
    before = _max_rss_mb()
    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            outputs = handler(batch, None)
        timings.append(time.perf_counter() - started)
    scores = [output["aggregate_reward_score"] for output in outputs]
    answered = [output["id"] for output in outputs] == [rollout["id"] for rollout in batch]
    print(
        json.dumps(
            {
                "seconds": timings[0],
                "best": min(timings),
                "rss_before_mb": before,
                "rss_peak_mb": _max_rss_mb(),
                "answered": answered and all(0.0 <= score <= 1.0 for score in scores),
                "mean": sum(scores) / len(scores),
            }
        )
    )


def main() -> int:
    """Every (grader, shape) batch in a fresh process; print the figures."""
    print(
        f"Degenerate rollouts: {BATCH} rollouts of {SIZE // 1000} KB per batch through handler(),"
        f" one fresh process per batch (limit {LIMIT_SECONDS:.0f} s)"
    )
    worst = 0.0
    for grader in GRADERS:
        for shape in SHAPES:
            try:
                done = subprocess.run(
                    [sys.executable, __file__, grader, shape],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=LIMIT_SECONDS,
                    check=True,
                )
            except subprocess.TimeoutExpired:
                print(f"   {grader:6s} {shape:20s} over {LIMIT_SECONDS:.0f} s (killed)")
                worst = float("inf")
                continue
            except subprocess.CalledProcessError as err:
                tail = (err.stderr or "").strip().splitlines()[-1:]
                print(f"   {grader:6s} {shape:20s} failed: {' '.join(tail)}")
                continue
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            worst = max(worst, figures["seconds"])
            print(
                f"   {grader:6s} {shape:20s} {figures['seconds'] * 1000:8.1f} ms per batch"
                f" (best of {ROUNDS} {figures['best'] * 1000:7.1f} ms)"
                f"   peak RSS {figures['rss_peak_mb']:6.1f} MB"
                f" (before the batch {figures['rss_before_mb']:6.1f} MB)"
                f"   mean reward {figures['mean']:.3f}"
                + ("" if figures["answered"] else "   NOT EVERY ID ANSWERED IN [0, 1]")
            )
    print(f"   slowest batch: {worst * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3:
        child(sys.argv[1], sys.argv[2])
    else:
        raise SystemExit(main())
