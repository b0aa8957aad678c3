"""Benchmark: what rollout samples and training-signal health add to a batch.

Run with ``make bench``. Prints figures; asserts nothing (speed targets are read, not tested).

A 1,024-rollout GSM8K batch (256 prompts of 4 rollouts, as a GRPO group of 4) through the
reward ``handler()`` with ``graders/gsm8k.json``, warm, rounds interleaved, best of the rounds:

* grading only (the observer switched off: the handler before this feature),
* plus the signal-health metrics (always on),
* plus rollout samples at the default rate (0.02) and at rate 1, written to S3 in moto
  (in-process): the figure is the work in the function (selection, JSON, gzip, the botocore
  request); a real PutObject adds its network round trip (one per batch).

Then the repetition measure alone on a 2 KB and a 100 KB response (it reads only the end).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_reward import STYLES, gsm8k_batch, interleaved  # noqa: E402
from tests.lambda_loader import LambdaContext, load_handler  # noqa: E402

GROUP = 4
BUCKET = "bench-artifacts"


def grouped_batch() -> list[dict[str, Any]]:
    """The benchmark batch with every 4 rollouts sharing one prompt and reference."""
    event = gsm8k_batch(STYLES)
    for index, rollout in enumerate(event):
        lead = event[index - index % GROUP]
        rollout["messages"] = [*lead["messages"][:2], rollout["messages"][-1]]
        rollout["metadata"] = lead["metadata"]
    return event


def main(rounds: int = 30) -> int:
    """Print the per-batch figures."""
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-west-2",
        "AWS_DEFAULT_REGION": "us-west-2",
        "GRADER_CONFIG": str(ROOT / "graders" / "gsm8k.json"),
        "RFT_ENVIRONMENT": "bench",
    }.items():
        os.environ[key] = value
    os.environ.pop("ROLLOUT_SAMPLES_URI", None)
    event = grouped_batch()
    print(f"Python {sys.version.split()[0]} on {os.cpu_count()} CPUs")
    with mock_aws():
        import boto3

        boto3.client("s3", region_name="us-west-2").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
        module: Any = load_handler("reward", fresh=True)
        observe = sys.modules["grading.observe"]
        rollouts = sys.modules["grading.rollouts"]
        definition = module.DEFINITION

        def observer(rate: float | None) -> Any:
            if rate is None:
                return observe.Observer(definition, "bench")
            destination = rollouts.Destination(bucket=BUCKET, prefix="rollouts/bench", rate=rate)
            return observe.Observer(definition, "bench", rollouts.Writer(destination))

        class Off:
            """The handler before this feature: nothing after grading."""

            def after(self, *args: Any, **kwargs: Any) -> None:
                return None

        variants = {
            "grading only": Off(),
            "+ signal health": observer(None),
            "+ samples at 0.02": observer(0.02),
            "+ samples at 1": observer(1.0),
        }
        calls = iter(range(10**9))

        def run(variant: Any) -> Callable[[], float]:
            def timing() -> float:
                module.OBSERVER = variant
                context = LambdaContext(request_id=f"bench-{next(calls)}")
                with contextlib.redirect_stdout(io.StringIO()):  # EMF records and logs
                    started = time.perf_counter()
                    module.handler(event, context)
                    return time.perf_counter() - started

            return timing

        for variant in variants.values():  # warm: clients made, caches filled
            run(variant)()
        best = interleaved(rounds, {name: run(v) for name, v in variants.items()})
        s3 = boto3.client("s3", region_name="us-west-2")
        sizes = [
            item["Size"]
            for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="rollouts/bench/")["Contents"]
        ]
    base = best["grading only"]
    print(
        f"Rollout samples and signal health: {len(event)}-rollout batch "
        f"({len(event) // GROUP} prompts x {GROUP}), best of {rounds} interleaved rounds"
    )
    for name, seconds in best.items():
        added = seconds - base
        print(
            f"   {name:<20} {seconds * 1e3:7.1f} ms per batch"
            + (
                f"   (+{added * 1e3:5.1f} ms, +{added / len(event) * 1e6:5.1f} us per rollout)"
                if name != "grading only"
                else ""
            )
        )
    print(
        f"   one batch at rate 1: {max(sizes) / 1024:.0f} KiB gzipped (one PutObject; "
        f"{len(sizes)} objects written in all)"
    )
    health = sys.modules["grading.signal_health"]
    prose = (ROOT / "datasets" / "gsm8k" / "train.jsonl").read_text(encoding="utf-8")
    for size in (2_000, 100_000):
        text = prose[:size]
        count = 2000
        started = time.perf_counter()
        for _ in range(count):
            health.repetitive(text)
        each = (time.perf_counter() - started) / count
        print(f"   repetition measure, {size // 1000:>3} KB response: {each * 1e6:6.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
