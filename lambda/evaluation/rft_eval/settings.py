"""The state machine's context (``prepare``'s output, every later state's input), parsed.

The stack's typed config (``stacks.config.EvaluationConfig``) validated these values at synth;
they are checked again here because the context is JSON passed between states (and typed by
hand for ``make eval``): a wrong value stops the run with one line naming the key, before any
model is called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Backend = Literal["openai", "bedrock"]
MODELS = ("base", "tuned")
METRICS_NAMESPACE = "BedrockRft/Evaluation"


class SettingsError(ValueError):
    """A context value is missing or wrong: the message is one line naming the key."""


@dataclass(frozen=True)
class PromoteWhen:
    """When the tuned model replaces the environment's promoted model (see
    :mod:`rft_eval.gate` for the rules, in the order they are applied)."""

    min_improvement: float = 0.0
    require_ci_above_zero: bool = True
    # Fewer compared prompts than this: nothing is promoted (an interval on 5 prompts can be
    # [1, 1] and still mean nothing).
    min_prompts: int = 30
    # A larger share of the prompts excluded (the base model failed on them, or their batch
    # never finished): nothing is promoted, the comparison is no longer of the same prompts.
    max_excluded_share: float = 0.05
    # When the environment has a promoted model evaluated on the same validation set with the
    # same grader and sampling settings, the tuned model must also beat its recorded mean.
    compare_with_promoted: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The rule in the context's JSON shape."""
        return {
            "min_improvement": self.min_improvement,
            "require_ci_above_zero": self.require_ci_above_zero,
            "min_prompts": self.min_prompts,
            "max_excluded_share": self.max_excluded_share,
            "compare_with_promoted": self.compare_with_promoted,
        }


@dataclass(frozen=True)
class Settings:
    """Sampling, grading and statistics settings (``EvaluationConfig``'s runtime part)."""

    samples_per_prompt: int = 1
    temperature: float = 0.0
    max_tokens: int = 4096
    pass_threshold: float = 0.5
    limit: int | None = None
    bootstrap_resamples: int = 10000
    seed: int = 0
    promote_when: PromoteWhen = PromoteWhen()

    def to_dict(self) -> dict[str, Any]:
        """The settings in the context's JSON shape."""
        return {
            "samples_per_prompt": self.samples_per_prompt,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "pass_threshold": self.pass_threshold,
            "limit": self.limit,
            "bootstrap_resamples": self.bootstrap_resamples,
            "seed": self.seed,
            "promote_when": self.promote_when.to_dict(),
        }


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key (or key prefix)."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Context:
    """One evaluation: which models, which grader, which prompts, where the results go."""

    environment: str
    region: str
    backend: Backend
    job_id: str
    base_model: str
    tuned_model: str
    reward_function_arn: str
    validation: S3Location
    artifacts: S3Location  # key: the prefix, ending in "/"
    settings: Settings
    model_parameter: str
    custom_model_arn: str | None = None
    topic_arn: str | None = None
    metrics_namespace: str = METRICS_NAMESPACE
    mantle_route: str | None = None

    def model_id(self, model: str) -> str:
        """The inference model id of ``"base"`` or ``"tuned"``."""
        return self.base_model if model == "base" else self.tuned_model

    def key(self, name: str) -> str:
        """The S3 key of ``name`` under the evaluation's prefix."""
        return self.artifacts.key + name


def _number(raw: dict[str, Any], key: str, where: str, low: float, high: float) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise SettingsError(f"{where}{key} = {value!r}: must be a number")
    if not low <= value <= high:
        raise SettingsError(f"{where}{key} = {value!r}: must be between {low:g} and {high:g}")
    return float(value)


def _integer(raw: dict[str, Any], key: str, where: str, low: int, high: int | None = None) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{where}{key} = {value!r}: must be an integer")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise SettingsError(f"{where}{key} = {value!r}: must be {bound}")
    return value


def _string(raw: dict[str, Any], key: str, where: str = "", *, optional: bool = False) -> Any:
    value = raw.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{where}{key} = {value!r}: must be a non-empty string")
    return value


def parse_settings(raw: Any, where: str = "settings.") -> Settings:
    """:class:`Settings` from the context's ``settings`` object (defaults for absent keys)."""
    if not isinstance(raw, dict):
        raise SettingsError(f"{where.rstrip('.')}: must be an object")
    defaults = Settings().to_dict()
    unknown = sorted(set(raw) - set(defaults))
    if unknown:
        raise SettingsError(f"{where}{unknown[0]}: unknown setting")
    merged = {**defaults, **raw}
    gate = merged["promote_when"]
    if not isinstance(gate, dict):
        raise SettingsError(f"{where}promote_when: must be an object")
    unknown = sorted(set(gate) - set(defaults["promote_when"]))
    if unknown:
        raise SettingsError(f"{where}promote_when.{unknown[0]}: unknown setting")
    gate = {**defaults["promote_when"], **gate}
    for flag in ("require_ci_above_zero", "compare_with_promoted"):
        if not isinstance(gate[flag], bool):
            raise SettingsError(f"{where}promote_when.{flag}: must be true or false")
    rule = f"{where}promote_when."
    limit = merged["limit"]
    return Settings(
        samples_per_prompt=_integer(merged, "samples_per_prompt", where, 1, 16),
        temperature=_number(merged, "temperature", where, 0, 2),
        max_tokens=_integer(merged, "max_tokens", where, 1, 65536),
        pass_threshold=_number(merged, "pass_threshold", where, 0, 1),
        limit=None if limit is None else _integer(merged, "limit", where, 1),
        # The stack asks for at least 1000; fewer are accepted here for quick local runs.
        bootstrap_resamples=_integer(merged, "bootstrap_resamples", where, 1, 100000),
        seed=_integer(merged, "seed", where, -(2**63), 2**63 - 1),
        promote_when=PromoteWhen(
            # Never negative: a "gate" that promotes a model worse than the base is none.
            min_improvement=_number(gate, "min_improvement", rule, 0, 1),
            require_ci_above_zero=gate["require_ci_above_zero"],
            min_prompts=_integer(gate, "min_prompts", rule, 1),
            max_excluded_share=_number(gate, "max_excluded_share", rule, 0, 1),
            compare_with_promoted=gate["compare_with_promoted"],
        ),
    )


def _location(raw: dict[str, Any], key: str) -> S3Location:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise SettingsError(f"{key}: must be an object with bucket and key")
    field = "prefix" if key == "artifacts" else "key"
    location = S3Location(_string(value, "bucket", f"{key}."), _string(value, field, f"{key}."))
    if key == "artifacts" and not location.key.endswith("/"):
        raise SettingsError(f"artifacts.prefix = {location.key!r}: must end in '/'")
    return location


def parse_context(raw: Any) -> Context:
    """:class:`Context` from the state machine's JSON context (see the module docstring)."""
    if not isinstance(raw, dict):
        raise SettingsError("the context must be a JSON object")
    backend = raw.get("backend")
    if backend not in ("openai", "bedrock"):
        raise SettingsError(f"backend = {backend!r}: must be 'openai' or 'bedrock'")
    reward = _string(raw, "reward_function_arn")
    # The version the job trained with: an unqualified ARN would grade with whatever the
    # function is now (ARN: arn:aws:lambda:<region>:<account>:function:<name>:<qualifier>).
    if not reward.startswith("arn:") or reward.count(":") != 7 or reward.endswith(":$LATEST"):
        raise SettingsError(
            f"reward_function_arn = {reward!r}: must be the qualified ARN of the reward "
            "Lambda version the job used"
        )
    route = _string(raw, "mantle_route", optional=True)
    if route is not None and route not in ("/v1", "/openai/v1"):
        raise SettingsError(f"mantle_route = {route!r}: must be '/v1' or '/openai/v1'")
    return Context(
        environment=_string(raw, "environment"),
        region=_string(raw, "region"),
        backend=backend,
        job_id=_string(raw, "job_id"),
        base_model=_string(raw, "base_model"),
        tuned_model=_string(raw, "tuned_model"),
        reward_function_arn=reward,
        validation=_location(raw, "validation"),
        artifacts=_location(raw, "artifacts"),
        settings=parse_settings(raw.get("settings", {})),
        model_parameter=_string(raw, "model_parameter"),
        custom_model_arn=_string(raw, "custom_model_arn", optional=True),
        topic_arn=_string(raw, "topic_arn", optional=True),
        metrics_namespace=_string(raw, "metrics_namespace", optional=True) or METRICS_NAMESPACE,
        mantle_route=route,
    )
