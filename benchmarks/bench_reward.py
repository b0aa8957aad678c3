"""Benchmarks of the reward Lambda: rule graders against a naive scorer, cold start, judge.

Run with ``make bench``. Prints figures; asserts nothing (speed targets are read, not tested):

1. A 1,024-sample GSM8K batch through ``handler()`` with ``graders/gsm8k.json``, against a
   naive scorer (``#### N`` on the tail, else the last number, exact match) over the same
   batch in the same run: warm, rounds interleaved (so both see the same load from other
   processes), best of the rounds each, and the ratio. To explain the figures, the naive
   scorer also runs as the grader of the same ``handler()`` (rollout parsing, response
   building and metrics included).
   Each figure is printed next to the last run's (``reports/bench_reward.json``).
2. Cold start: importing ``handler`` with a rule-based definition, over a bare interpreter
   (median of fresh processes, interleaved).
3. Judge: 64 samples through ``handler()`` with a ``score_model`` definition against a local
   OpenAI-compatible server answering after 200 ms (default concurrency, 16).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lambda_loader import SHARED_DATA, load_handler  # noqa: E402
from tests.openai_server import Chat, OpenAIServer, Reply  # noqa: E402

BATCH = 1024
STYLES = (
    "{working}#### {final}",
    "{working}The answer is {final}.",
    "{working}**Answer:** {final}",
    "{working}So the final answer is $\\boxed{{{final}}}$.",
    "{working}In total that makes {final}.",
)
_CALCULATOR = re.compile(r"<<[^<>]*>>")


def gsm8k_batch(styles: tuple[str, ...]) -> list[dict[str, Any]]:
    """1,024 rollouts: GSM8K test solutions as responses (calculator annotations removed, the
    final answer phrased in one of ``styles``), a third graded against a neighbour's answer."""
    with (SHARED_DATA / "gsm8k" / "test.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines][:BATCH]
    finals = [row["answer"].rsplit("####", 1)[1].strip() for row in rows]
    event = []
    for index, row in enumerate(rows):
        working = _CALCULATOR.sub("", row["answer"]).rsplit("####", 1)[0]
        response = styles[index % len(styles)].format(working=working, final=finals[index])
        reference = finals[index] if index % 3 else finals[(index + 1) % len(rows)]
        event.append(
            {
                "id": f"gsm8k-test-{index:05d}",
                "messages": [
                    {"role": "system", "content": "Solve the problem."},
                    {"role": "user", "content": row["question"]},
                    {"role": "assistant", "content": response},
                ],
                "metadata": {"reference_answer": {"final_answer": reference}},
            }
        )
    return event


_TAIL = re.compile(r"####\s*(-?[\d,.]+)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def naive_scorer(event: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The baseline: ``#### N`` in the last 100 characters, else the last number; exact match."""
    outputs = []
    for rollout in event:
        text = rollout["messages"][-1]["content"]
        reference = rollout["metadata"]["reference_answer"]["final_answer"]
        tail = _TAIL.search(text[-100:])
        if tail is not None:
            answer = tail.group(1)
        else:
            numbers = _NUMBER.findall(text)
            answer = numbers[-1] if numbers else ""
        score = 1.0 if answer.replace(",", "").rstrip(".") == reference.replace(",", "") else 0.0
        outputs.append(
            {
                "id": rollout["id"],
                "aggregate_reward_score": score,
                "metrics_list": [{"name": "naive", "value": score, "type": "Reward"}],
            }
        )
    return outputs


def best_of(rounds: int, run: Callable[[], object]) -> float:
    """The fastest of ``rounds`` runs, in seconds (the least disturbed by other processes)."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def interleaved(rounds: int, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """The fastest of ``rounds`` timings of every run, taken in turn in each round; a run
    returns its own timing in seconds (so that it can leave its set-up out)."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            best[name] = min(best[name], run())
    return best


def timed(run: Callable[[], object]) -> Callable[[], float]:
    """``run`` as a run of :func:`interleaved`."""

    def timing() -> float:
        started = time.perf_counter()
        run()
        return time.perf_counter() - started

    return timing


class NaiveGrader:
    """The naive scorer as the grader of a definition: what ``handler()`` costs around it."""

    name = "naive"
    remote = False

    def grade_batch(self, samples: list[Any], batch: Any) -> list[Any]:
        """The naive scorer's rule on each sample (the handler's PASS/FAIL grades)."""
        base = sys.modules["grading.base"]
        grades = []
        for sample in samples:
            text = sample.output_text
            reference = sample.item["reference_answer"]["final_answer"]
            tail = _TAIL.search(text[-100:])
            if tail is not None:
                answer = tail.group(1)
            else:
                numbers = _NUMBER.findall(text)
                answer = numbers[-1] if numbers else ""
            same = answer.replace(",", "").rstrip(".") == reference.replace(",", "")
            grades.append(base.PASS if same else base.FAIL)
        return grades

    def children(self) -> list[Any]:
        """No sub-graders."""
        return []


# The figures of the last run, to print next to this run's (reports/ is not versioned).
LAST_RUN = ROOT / "reports" / "bench_reward.json"


def _last_run(label: str, figures: dict[str, float]) -> dict[str, float] | None:
    """The figures ``label`` had in the last run (None if none); records this run's."""
    try:
        runs = json.loads(LAST_RUN.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        runs = {}
    last = runs.get(label)
    runs[label] = {key: round(value, 4) for key, value in figures.items()}
    LAST_RUN.parent.mkdir(exist_ok=True)
    LAST_RUN.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return last if isinstance(last, dict) else None


def bench_rule_graders(rounds: int = 40) -> None:
    os.environ["GRADER_CONFIG"] = str(ROOT / "graders" / "gsm8k.json")
    module: Any = load_handler("reward", fresh=True)  # its DEFINITION is swapped below
    handler = module.handler
    rules = module.DEFINITION
    naive_rules = type(rules)(name="naive", grader=NaiveGrader(), source="benchmark")
    # References are parsed once per distinct text (cached across batches); every round
    # starts with an empty cache, as if each batch's prompts were new.
    references = sys.modules["grading.graders.math_answer"]._reference_from_text

    def through_handler() -> float:
        references.cache_clear()
        started = time.perf_counter()
        handler(event, None)
        return time.perf_counter() - started

    def naive_through_handler() -> float:
        module.DEFINITION = naive_rules
        try:
            return timed(lambda: handler(event, None))()
        finally:
            module.DEFINITION = rules

    print(f"1. Rule graders: {BATCH}-sample GSM8K batch, best of {rounds} interleaved rounds")
    for label, styles in (("mixed answer styles", STYLES), ("all '#### N'", STYLES[:1])):
        event = gsm8k_batch(styles)
        with contextlib.redirect_stdout(io.StringIO()):  # the EMF record of each batch
            graded = handler(event, None)
            best = interleaved(
                rounds,
                {
                    "handler": through_handler,
                    "naive": timed(functools.partial(naive_scorer, event)),
                    "naive in handler": naive_through_handler,
                },
            )
        ours, naive, contract = best["handler"], best["naive"], best["naive in handler"]
        last = _last_run(label, {"handler_ms": ours * 1000, "ratio": ours / naive})
        mean = sum(output["aggregate_reward_score"] for output in graded) / len(graded)
        naive_mean = sum(o["aggregate_reward_score"] for o in naive_scorer(event)) / len(event)
        indent = " " * 25
        print(
            f"   {label:22s}handler() {ours * 1000:5.2f} ms ({ours / BATCH * 1e6:4.1f} us/sample)"
            f"   naive {naive * 1000:5.2f} ms ({naive / BATCH * 1e6:4.1f} us/sample)"
            f"   handler/naive {ours / naive:4.2f}\n"
            f"{indent}the naive scorer as handler()'s grader {contract * 1000:5.2f} ms"
            f" (rollout parsing, responses, metrics: {(contract - naive) * 1000:+5.2f} ms)\n"
            f"{indent}mean reward: handler() {mean:.3f}, naive {naive_mean:.3f}\n"
            f"{indent}last run: "
            + (
                "none recorded"
                if last is None
                else f"handler() {last['handler_ms']:5.2f} ms, handler/naive {last['ratio']:4.2f}"
            )
        )


def _process_seconds(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def bench_cold_start(runs: int = 21) -> None:
    importing = "import sys; sys.path[:0] = ['lambda/reward', 'lambda/common']; import handler"
    print(f"2. Cold start: a fresh interpreter per run, median of {runs} (interleaved)")
    for label, definition in (
        ("gsm8k.json (rule-based)", "graders/gsm8k.json"),
        ("invoice_extraction.json", "graders/invoice_extraction.json"),
        ("rubric_judge.json (+openai)", "graders/rubric_judge.json"),
    ):
        env = {**os.environ, "GRADER_CONFIG": definition}
        bare, loaded = [], []
        _process_seconds(importing, env)  # bytecode cache warm, as for every later run
        for _ in range(runs):
            bare.append(_process_seconds("pass", env))
            loaded.append(_process_seconds(importing, env))
        extra = (statistics.median(loaded) - statistics.median(bare)) * 1000
        print(
            f"   {label:28s} bare {statistics.median(bare) * 1000:6.1f} ms   with handler "
            f"{statistics.median(loaded) * 1000:6.1f} ms   import adds {extra:6.1f} ms"
        )
    env = {**os.environ, "GRADER_CONFIG": "graders/gsm8k.json", "PYTHONDONTWRITEBYTECODE": "1"}
    openai = [_process_seconds("import openai", env) for _ in range(5)]
    bare = [_process_seconds("pass", env) for _ in range(5)]
    cost = (statistics.median(openai) - statistics.median(bare)) * 1000
    print(f"   for comparison, 'import openai' alone adds {cost:6.1f} ms")


def bench_judge(samples: int = 64, latency: float = 0.2) -> None:
    def judge(body: dict[str, Any], number: int) -> Reply:
        return Reply(content='{"score": 7}')

    definition = {
        "type": "score_model",
        "name": "bench-judge",
        "model": "bench",
        "input": [{"role": "user", "content": "Rate 0-10: {{ sample.output_text }}"}],
        "range": [0, 10],
    }
    event = [
        {
            "id": f"j{i}",
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": f"a{i}"},
            ],
        }
        for i in range(samples)
    ]
    with OpenAIServer(chat=Chat(judge, latency=latency)) as server:
        os.environ.update(server.sdk_environment())
        os.environ["GRADER_CONFIG"] = json.dumps(definition)
        handler = load_handler("reward", fresh=True).handler
        with contextlib.redirect_stdout(io.StringIO()):
            handler(event[:1], None)  # first use: imports the SDK, opens a connection
            runs = [best_of(1, lambda: handler(event, None)) for _ in range(5)]
        in_flight = server.max_in_flight
    print(
        f"3. Judge: {samples} samples, server latency {latency * 1000:.0f} ms, concurrency 16:"
        f" median {statistics.median(runs):.3f} s, best {min(runs):.3f} s"
        f" (lower bound {samples / 16 * latency:.1f} s), at most {in_flight} requests in flight"
    )


def main() -> int:
    """Run every benchmark and print its figures."""
    print(f"Python {sys.version.split()[0]} on {os.cpu_count()} CPUs\n")
    bench_rule_graders()
    print()
    bench_cold_start()
    print()
    bench_judge()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
