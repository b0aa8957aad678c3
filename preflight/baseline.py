"""Baseline sampling: does the base model already earn some reward on these prompts?

RFT learns from differences between rewarded and unrewarded rollouts: a base model that never
earns a reward gives it nothing to learn from, one that always does leaves nothing to learn
(AWS guidance, bedrock-rft.md §3). This samples one response per prompt for a sample of the
prompts from an OpenAI-compatible endpoint (Bedrock's by default, under the model's path
prefix; ``OPENAI_BASE_URL`` overrides, through ``rft_common.mantle.openai_client``),
concurrently, then grades them with the reward handler.

With more than one response per prompt (``--per-prompt``, ``make preflight PER_PROMPT=4``),
it also reports the **expected ZeroVarianceShare**: the share of sampled prompts whose
responses all earned the same reward, the reward function's own training-signal metric
(grading/signal_health.py) on the base model. A group-relative (GRPO) update learns nothing
from such a prompt: a high share before the job starts means a dataset that teaches little.
"""

from __future__ import annotations

import random
import statistics
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from preflight.dataset import Record
from preflight.findings import Findings, plural
from preflight.grader_checks import distribution, rollout
from preflight.reward import GraderContractError, RewardHandler, ensure_lambda_paths

if TYPE_CHECKING:
    from openai import OpenAI

# Below this share of prompts with a non-zero reward, RFT has (almost) no signal.
NEAR_ZERO_SHARE = 0.05
# At or above this mean reward, there is little left to learn.
NEAR_ONE_MEAN = 0.95
# Stop sending requests when this many failed before any succeeded (bad key, wrong model).
FAIL_FAST_AFTER = 5
# At or above this share of prompts whose responses all earned the same reward, the job has
# little to learn from (the default of the NoLearningSignal alarm, observability config).
ZERO_VARIANCE_CEILING = 0.8
_EQUAL = 1e-9  # as grading/signal_health.py compares rewards


@dataclass
class Sample:
    """One prompt's sampled response and its reward (or why there is none)."""

    record: Record
    response: str | None = None
    error: str | None = None
    reward: float | None = None


@dataclass
class BaselineResult:
    """The sampled responses and what they earned."""

    model: str
    requested: int
    samples: list[Sample] = field(default_factory=list)
    aborted: bool = False
    per_prompt: int = 1  # responses sampled per prompt

    @property
    def zero_variance_share(self) -> float | None:
        """The share of prompts with two or more graded responses whose rewards are all equal
        (None when no prompt has two): the expected ZeroVarianceShare of a job."""
        groups: dict[int, list[float]] = {}
        for sample in self.samples:
            if sample.reward is not None:
                groups.setdefault(id(sample.record), []).append(sample.reward)
        scored = [rewards for rewards in groups.values() if len(rewards) >= 2]
        if not scored:
            return None
        flat = sum(1 for rewards in scored if max(rewards) - min(rewards) <= _EQUAL)
        return flat / len(scored)

    @property
    def rewards(self) -> list[float]:
        """Rewards of the graded samples."""
        return [s.reward for s in self.samples if s.reward is not None]

    @property
    def failed(self) -> int:
        """Samples whose request failed."""
        return sum(s.error is not None for s in self.samples)

    def to_dict(self) -> dict[str, Any]:
        """Summary as plain JSON data, with the first few failures."""
        return {
            "model": self.model,
            "requested": self.requested,
            "sampled": len(self.samples) - self.failed,
            "failed": self.failed,
            "aborted": self.aborted,
            "per_prompt": self.per_prompt,
            "zero_variance_share": self.zero_variance_share,
            "rewards": distribution(self.rewards),
            "first_errors": [s.error for s in self.samples if s.error][:3],
        }


def make_client(
    region: str | None,
    timeout: float = 120.0,
    *,
    model: str | None = None,
    route: str | None = None,
) -> OpenAI:
    """The project's OpenAI SDK client for Bedrock's endpoint (or ``OPENAI_BASE_URL``), under
    ``model``'s path prefix (``route``: the environment's ``mantle.route`` overrides it)."""
    ensure_lambda_paths("reward")
    from rft_common.mantle import openai_client  # lambda/common, as bundled in the Lambdas

    client: OpenAI = openai_client(region, model=model, route=route, max_retries=2, timeout=timeout)
    return client


def choose(records: Sequence[Record], count: int, seed: int) -> list[Record]:
    """A reproducible random sample of ``count`` records, in file order."""
    if count >= len(records):
        return list(records)
    picked = random.Random(seed).sample(range(len(records)), count)  # noqa: S311
    return [records[i] for i in sorted(picked)]


def sample_responses(
    client: OpenAI,
    model: str,
    records: Sequence[Record],
    *,
    concurrency: int = 8,
    max_tokens: int | None = None,
    temperature: float | None = None,
    on_done: Callable[[], None] | None = None,
) -> tuple[list[Sample], bool]:
    """One chat completion per record, ``concurrency`` at a time; (samples, aborted)."""
    from openai import OpenAIError

    samples = [Sample(record=r) for r in records]
    lock = threading.Lock()
    state = {"ok": 0, "failed": 0}
    stop = threading.Event()
    options: dict[str, Any] = {}
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    if temperature is not None:
        options["temperature"] = temperature

    def work(sample: Sample) -> None:
        if stop.is_set():
            return
        try:
            answer = client.chat.completions.create(
                model=model,
                messages=sample.record.messages,  # type: ignore[arg-type]
                **options,
            )
            if not answer.choices:
                raise ValueError("the answer has no choices")
            sample.response = answer.choices[0].message.content or ""
            with lock:
                state["ok"] += 1
        except (OpenAIError, ValueError) as err:
            sample.error = f"{sample.record.label}: {type(err).__name__}: {err}"[:400]
            with lock:
                state["failed"] += 1
                if state["ok"] == 0 and state["failed"] >= FAIL_FAST_AFTER:
                    stop.set()
        finally:
            if on_done is not None:
                on_done()

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for future in [pool.submit(work, s) for s in samples]:
            future.result()
    done = [s for s in samples if s.response is not None or s.error is not None]
    return done, stop.is_set()


def grade_samples(handler: RewardHandler, samples: Sequence[Sample]) -> None:
    """Set each answered sample's reward, through the reward handler."""
    answered = [s for s in samples if s.response is not None]
    scores = handler.scores(
        [rollout(s.record, s.response or "", f"baseline-{i}") for i, s in enumerate(answered)]
    )
    for sample, score in zip(answered, scores, strict=True):
        sample.reward = score


def judge_baseline(result: BaselineResult, findings: Findings) -> None:
    """Findings about the sampled rewards and failed requests."""
    model = result.model
    if result.failed:
        first = next(s.error for s in result.samples if s.error)
        if result.failed == len(result.samples):
            findings.error(
                "baseline-failed",
                "baseline sampling failed",
                f"{model}: all {plural(result.failed, 'request')} failed"
                + (" (stopped early)" if result.aborted else "")
                + f"; first: {first}",
            )
        else:
            findings.warning(
                "baseline-request-failed",
                "baseline requests failed",
                f"{model}: {result.failed:,} of {plural(len(result.samples), 'request')} "
                f"failed; first: {first}",
            )
    rewards = result.rewards
    if not rewards:
        return
    nonzero = sum(r > 0 for r in rewards) / len(rewards)
    mean = statistics.fmean(rewards)
    if nonzero < NEAR_ZERO_SHARE:
        findings.warning(
            "baseline-near-zero",
            "base model earns (almost) no reward",
            f"{model}: {nonzero:.0%} of {plural(len(rewards), 'prompt')} earn a non-zero "
            "reward; RFT needs the base model to succeed sometimes (easier "
            "prompts, a more lenient grader, or a stronger base model)",
        )
    share = result.zero_variance_share
    if share is not None and share >= ZERO_VARIANCE_CEILING:
        findings.warning(
            "baseline-zero-variance",
            "most prompts give every response the same reward",
            f"{model}: for {share:.0%} of the prompts all {result.per_prompt} responses "
            "earned the same reward (expected ZeroVarianceShare); RFT learns only from "
            "prompts whose responses differ (prompts of mixed difficulty, or a grader with "
            "partial credit)",
        )
    if mean >= NEAR_ONE_MEAN:
        findings.warning(
            "baseline-near-one",
            "base model already earns full reward",
            f"{model}: mean reward {mean:.2f} over {plural(len(rewards), 'prompt')}; "
            "little left to learn (harder prompts or a stricter grader)",
        )


def run_baseline(
    handler: RewardHandler,
    client: OpenAI,
    model: str,
    records: Sequence[Record],
    *,
    count: int,
    findings: Findings,
    concurrency: int = 8,
    max_tokens: int | None = None,
    temperature: float | None = None,
    seed: int = 0,
    on_done: Callable[[], None] | None = None,
    per_prompt: int = 1,
) -> BaselineResult:
    """Sample ``count`` prompts from ``model`` (``per_prompt`` responses each), grade them,
    and report on the rewards."""
    chosen = choose(records, count, seed)
    result = BaselineResult(model=model, requested=len(chosen) * per_prompt, per_prompt=per_prompt)
    result.samples, result.aborted = sample_responses(
        client,
        model,
        [record for record in chosen for _ in range(per_prompt)],
        concurrency=concurrency,
        max_tokens=max_tokens,
        temperature=temperature,
        on_done=on_done,
    )
    try:
        grade_samples(handler, result.samples)
    except GraderContractError as err:
        findings.error(
            "grader-contract",
            "the reward handler broke its contract",
            f"{handler.grader}: grading the baseline: {err}",
        )
        return result
    judge_baseline(result, findings)
    return result
