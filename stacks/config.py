"""The typed, validated configuration of one deployment environment.

Environments live in ``cdk.json`` under ``context.environments.<name>``. Everything that may
differ between environments is a field here, and nothing else does: constructs take the
validated model, never raw context. A bad value fails synth with one line per problem that
names the environment, the key, the value and what is allowed (:class:`ConfigError`).
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from stacks.extra_packages import KEY as EXTRA_PACKAGES_KEY
from stacks.extra_packages import (
    ExtraPackagesError,
    installed,
    normalized,
    pins_problem,
    top_level_modules,
)
from stacks.grader_check import grader_problem

Backend = Literal["openai", "bedrock"]

# Which base models each backend offers for RFT, by region (reference: bedrock-rft.md §1).
# A model missing here fails synth unless the environment sets ``allow_unlisted_model``:
# Bedrock adds models faster than this table can follow.
BACKEND_MODELS: dict[str, dict[str, tuple[str, ...]]] = {
    "openai": {"us-west-2": ("openai.gpt-oss-20b", "qwen.qwen3-32b")},
    "bedrock": {"us-east-1": ("amazon.nova-2-lite-v1:0:256k",)},
}

ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
# GitHub environment names as they appear in the OIDC token's ``sub`` claim; GitHub allows
# more characters, these are the ones that cannot be mistaken in a trust condition.
GITHUB_ENVIRONMENT = re.compile(r"^[A-Za-z0-9._-]{1,255}$")
GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")
GITHUB_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
)
# Rule packs an environment may require on top of AwsSolutions and Serverless (which gate
# every stack): cdk-nag 3.x's pack classes without their ``Checks`` suffix (stacks/nag.py).
COMPLIANCE_PACKS = ("HIPAASecurity", "NIST80053R4", "NIST80053R5", "PCIDSS321")
ACCOUNT = re.compile(r"^\d{12}$")
BOOTSTRAP_QUALIFIER = re.compile(r"^[a-z0-9]{1,10}$")
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# CloudWatch Logs accepts only these retention periods (days).
# The evaluation worker (a Distributed Map child, stacks/evaluation.py): Lambda's maximum.
# Within it, model calls end before one grader invocation (the reward function's timeout plus
# a read margin) and the part's write (lambda/evaluation/rft_eval/cloud.py, grading.py).
EVALUATION_WORKER_SECONDS = 900
EVALUATION_WORKER_FIXED_SECONDS = 5 + 30  # grader read margin + writing the part
EVALUATION_MIN_SAMPLING_SECONDS = 60  # the least time a worker has to start model calls
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class ConfigError(ValueError):
    """Configuration problems, worded for the person editing ``cdk.json``: one line each
    (``lines``); the message is those lines joined by newlines."""

    def __init__(self, problems: str | list[str]) -> None:
        self.lines = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.lines))


class _Strict(BaseModel):
    # strict: a value of the wrong JSON type is refused, not coerced ("n_epochs": "2" is not
    # 2, "start": "false" is not False); only a JSON array becomes a tuple (LIST).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# JSON has arrays, not tuples: the tuple fields take one (and stay immutable).
LIST = Field(strict=False)


# The reinforcement hyperparameters Bedrock documents for its OpenAI-compatible API (reference
# §9.3); the other fields of ``OpenAIHyperparameters`` are OpenAI's and are sent only with
# ``job.send_undocumented_fields``. Mirrors ``rft_job.spec``.
OPENAI_DOCUMENTED_HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier")


class OpenAIHyperparameters(_Strict):
    """Hyperparameters in the OpenAI-compatible API's own names.

    Bedrock documents the first three names but not their ranges or defaults [open; a bound
    is settled by the service's 400 for a value beyond it]: the bounds below only reject
    values that cannot be right (zero, negative, absurd); the service has the last word. The
    defaults are sent explicitly.
    """

    # AWS's gpt-oss RFT sample notebook sends n_epochs 1 and batch_size 4.
    n_epochs: Annotated[int, Field(ge=1, le=50)] = 1
    batch_size: Annotated[int, Field(ge=1, le=512)] = 4
    # AWS's walkthrough: "We recommend using a value <1.0 for stability" (no figure given);
    # half the base rate keeps clear of 1.0 [open: AWS names no value].
    learning_rate_multiplier: Annotated[float, Field(gt=0, le=10)] = 0.5
    # Not documented by Bedrock (OpenAI's names): sent only with job.send_undocumented_fields.
    eval_interval: Annotated[int, Field(ge=1, le=100)] | None = None
    eval_samples: Annotated[int, Field(ge=1)] | None = None
    compute_multiplier: Annotated[float, Field(gt=0, le=10)] | None = None
    reasoning_effort: Literal["low", "medium", "high"] | None = None


class BedrockHyperparameters(_Strict):
    """RFT hyperparameters of ``CreateModelCustomizationJob`` (ranges from the API model).

    Defaults are the API documentation's example, except ``evalInterval``: omitted, the
    service computes min(10, data size / batch size) itself [AWS blog], which suits a small
    dataset better than a fixed 10. Early stopping is on by default (no setting exists), so a
    job may end before its last step.
    """

    epochCount: Annotated[int, Field(ge=1, le=50)] = 2  # noqa: N815 (the API's name)
    batchSize: Annotated[int, Field(ge=16, le=512)] = 64  # noqa: N815
    learningRate: Annotated[float, Field(ge=1e-7, le=1e-3)] = 1e-5  # noqa: N815
    trainingSamplePerPrompt: Annotated[int, Field(ge=2, le=16)] = 4  # noqa: N815
    evalInterval: Annotated[int, Field(ge=1, le=100)] | None = None  # noqa: N815
    reasoningEffort: Literal["low", "medium", "high"] | None = None  # noqa: N815
    inferenceMaxTokens: Annotated[int, Field(ge=1)] | None = None  # noqa: N815
    maxPromptLength: Annotated[int, Field(ge=1)] | None = None  # noqa: N815


class RewardFunctionConfig(_Strict):
    """Sizing of the reward (grader) Lambda."""

    timeout_seconds: Annotated[int, Field(ge=60, le=900)] = 300
    memory_mb: Annotated[int, Field(ge=128, le=10240)] = 512
    reserved_concurrency: Annotated[int, Field(ge=1)] | None = None
    # Pinned distributions (name==version) the python grader imports beyond the reward lock,
    # bundled for Lambda on top of it (stacks/extra_packages.py).
    extra_packages: Annotated[tuple[str, ...], LIST] = ()

    @field_validator("extra_packages")
    @classmethod
    def _pinned(cls, pins: tuple[str, ...]) -> tuple[str, ...]:
        if (problem := pins_problem(pins)) is not None:
            raise ValueError(problem)
        return tuple(sorted(pins, key=normalized))


OrphanAction = Literal["alarm", "stop", "alarm_then_stop"]


class OrphansConfig(_Strict):
    """What the reconciler does with a running job of this environment that the job record
    does not name (an *orphan*; docs/observability.md, "Orphaned jobs").

    Jobs are never touched before they are ``grace_minutes`` old (from the creation time the
    service reports) nor while the environment's stack is deploying, so the job of a deploy
    that has not recorded it yet is safe.
    """

    # alarm: report only. stop: report and stop at once. alarm_then_stop: report, and stop
    # once it has been reported for grace_minutes. Unset: alarm_then_stop, or alarm where
    # job.on_delete is retain (replaced jobs are then kept running on purpose).
    action: OrphanAction | None = None
    grace_minutes: Annotated[int, Field(ge=15, le=1440)] = 60
    # How often the reconciler runs.
    schedule_minutes: Annotated[int, Field(ge=5, le=60)] = 15


class JobConfig(_Strict):
    """Whether and how the stack starts the fine-tuning job (the job custom resource)."""

    start: bool = True
    # Wait (within CloudFormation's 1-hour limit) until the service has accepted the data,
    # so that a bad dataset fails the deploy with the service's own message (native jobs that
    # report no validation status: until the service runs the job, see the README).
    wait_for_validation: bool = True
    # OpenAI-compatible backend: also send what Bedrock does not document (OpenAI's other
    # hyperparameters, the dataset's validation.jsonl as validation_file). Unverified.
    send_undocumented_fields: bool = False
    # What a stack deletion does to a job that is still running (a rollback or the clean-up
    # after an update always stops it: lambda/job/rft_job/lifecycle.py).
    on_delete: Literal["cancel", "retain"] = "cancel"
    # Completed custom models are kept unless an environment opts in to deleting them.
    delete_model_on_destroy: bool = False
    # Native backend only: run the customization job inside these subnets / security groups.
    subnet_ids: Annotated[
        tuple[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")], ...],
        Field(max_length=16, strict=False),
    ] = ()
    security_group_ids: Annotated[
        tuple[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")], ...],
        Field(max_length=5, strict=False),
    ] = ()
    # Running jobs of this environment that the record does not name (the reconciler).
    orphans: OrphansConfig = OrphansConfig()

    @property
    def orphan_action(self) -> OrphanAction:
        """The reconciler's action: the one set, else the default for ``on_delete``."""
        if self.orphans.action is not None:
            return self.orphans.action
        return "alarm" if self.on_delete == "retain" else "alarm_then_stop"

    @model_validator(mode="after")
    def _vpc_pair(self) -> JobConfig:
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            raise ValueError("subnet_ids and security_group_ids: set both or neither")
        return self


class PromoteWhen(_Strict):
    """When an evaluated tuned model replaces ``/bedrock-rft/<env>/model`` (the promotion gate)."""

    # The tuned model's mean reward minus the base model's, over the same prompts, must be
    # at least this much (never negative: a gate that promotes a worse model is none).
    min_improvement: Annotated[float, Field(ge=0, le=1)] = 0.0
    # ... and the 95% bootstrap confidence interval of that difference must lie above 0.
    require_ci_above_zero: bool = True
    # Fewer prompts compared than this: nothing is promoted.
    min_prompts: Annotated[int, Field(ge=1)] = 30
    # A larger share of prompts excluded (the base model failed on them, or their batch never
    # finished): nothing is promoted. The tuned model's failures are never excluded: they
    # score 0 (docs/evaluation.md).
    max_excluded_share: Annotated[float, Field(ge=0, le=1)] = 0.05
    # Also require beating the promoted model's recorded mean reward when it was evaluated on
    # the same prompts with the same grader version and sampling settings.
    compare_with_promoted: bool = True


class EvaluationConfig(_Strict):
    """After a job succeeds: the tuned model against the base model, graded by the job's own
    reward Lambda version over the staged validation.jsonl (a Step Functions Distributed Map).
    """

    # Evaluate (and gate promotion) in every environment whose job starts.
    enabled: bool = True
    samples_per_prompt: Annotated[int, Field(ge=1, le=16)] = 1
    # Sampling settings of both models. 0.0 makes one sample per prompt nearly deterministic;
    # raise it together with samples_per_prompt to measure a distribution.
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.0
    max_tokens: Annotated[int, Field(ge=1, le=65536)] = 4096
    # A sample passes when its reward is at least this.
    pass_threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    # Only the first ``limit`` prompts of validation.jsonl (None: all of them).
    limit: Annotated[int, Field(ge=1)] | None = None
    # Distributed Map: prompts per child execution, children at once, failed children allowed.
    items_per_batch: Annotated[int, Field(ge=1, le=100)] = 10
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] = 10
    tolerated_failure_percentage: Annotated[float, Field(ge=0, le=100)] = 5.0
    # The paired bootstrap of the mean difference: resamples and seed (same inputs, same CI).
    bootstrap_resamples: Annotated[int, Field(ge=1000, le=100000)] = 10000
    seed: int = 0
    promote_when: PromoteWhen = PromoteWhen()
    # Seconds one model call may take (the client's read timeout). A call must end before the
    # worker grades, so this plus reward_function.timeout_seconds must fit the 15-minute worker
    # (checked: see EnvironmentConfig).
    request_timeout_seconds: Annotated[int, Field(ge=10, le=800)] = 300
    # Native backend: what CloudFormation's Delete does to the on-demand deployments of the
    # tuned models this environment created (an idle deployment is billed; see the README).
    deployment_on_delete: Literal["delete", "retain"] = "delete"
    # The id the base model is called by for inference, where it differs from the id jobs
    # are trained from (None: derived, see stacks/evaluation_models.py). Nova 2 Lite, for
    # one, is trained as amazon.nova-2-lite-v1:0:256k and called through the inference
    # profile us.amazon.nova-2-lite-v1:0.
    base_inference_model: (
        Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")] | None
    ) = None


class ObservabilityConfig(_Strict):
    """Collector schedule and alarm thresholds."""

    collector_schedule_minutes: Annotated[int, Field(ge=1, le=60)] = 5
    entropy_floor: Annotated[float, Field(ge=0)] = 0.2
    entropy_points: Annotated[int, Field(ge=1, le=100)] = 3
    response_length_ceiling: Annotated[float, Field(gt=0)] = 4096
    stall_minutes: Annotated[int, Field(ge=5, le=1440)] = 60
    reward_lambda_duration_ratio: Annotated[float, Field(gt=0, le=1)] = 0.8
    # Errors / throttles of the reward Lambda within 5 minutes that raise the alarm: any
    # failed invocation is a batch of rollouts Bedrock could not score.
    reward_lambda_errors: Annotated[int, Field(ge=1, le=10000)] = 1
    reward_lambda_throttles: Annotated[int, Field(ge=1, le=10000)] = 1
    # Rollout samples (docs/observability.md): the share of graded rollouts the reward
    # function keeps in the artifacts bucket besides every grader error (0 turns sampling
    # off), and how long they stay (a lifecycle expiry on the rollouts/ prefix).
    rollout_sample_rate: Annotated[float, Field(ge=0, le=1)] = 0.02
    rollout_retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    # Reward hacking: UnparsedShare or RepetitionShare rising while the grader's reward mean
    # rises, in each of ``reward_hacking_periods`` consecutive periods, with the share at or
    # above ``reward_hacking_share_floor``.
    reward_hacking_alarm: bool = True
    reward_hacking_period_minutes: Literal[5, 10, 15, 30, 60] = 15
    reward_hacking_periods: Annotated[int, Field(ge=2, le=24)] = 3
    reward_hacking_share_floor: Annotated[float, Field(ge=0, le=1)] = 0.05
    # No learning signal: ZeroVarianceShare above the ceiling for this many 5-minute periods.
    zero_variance_alarm: bool = True
    zero_variance_ceiling: Annotated[float, Field(gt=0, lt=1)] = 0.8
    zero_variance_periods: Annotated[int, Field(ge=1, le=288)] = 6


class MantleConfig(_Strict):
    """How the stack talks to, and grants, Bedrock's OpenAI-compatible API (``bedrock-mantle``).

    The IAM condition keys ``bedrock-mantle:Model`` and ``bedrock-mantle:BearerTokenType`` are
    documented, their values are not [open]: the grants assume the model id as requests send
    it (``openai.gpt-oss-20b``) and ``SHORT_TERM`` (the documented value of Bedrock's own
    ``bedrock:bearerTokenType``). An AccessDenied naming ``bedrock-mantle:CreateFineTuningJob``
    or ``bedrock-mantle:CreateInference`` (model) or ``bedrock-mantle:CallWithBearerToken``
    (token type) on a first deploy means the assumption is wrong: the switch drops that
    condition, which widens the grant to every model (or token type).
    """

    condition_on_model: bool = True
    condition_on_token_type: bool = True
    # The endpoint's path prefix for every call of this environment's functions; None: per
    # model (rft_common.mantle.MODEL_ROUTES). A judge's own "route" still wins for that judge.
    route: Literal["/v1", "/openai/v1"] | None = None


class PricingConfig(_Strict):
    """Prices that ``make review`` multiplies its training-volume estimate by (USD). Bedrock's
    RFT prices differ by model, region and agreement: they come from the user, none is built in.
    """

    training_per_million_tokens: Annotated[float, Field(gt=0)]
    # Rollouts per prompt where the backend does not say (the OpenAI-compatible API documents
    # none; the native backend's trainingSamplePerPrompt wins).
    samples_per_prompt: Annotated[int, Field(ge=1, le=64)] | None = None


class EnvironmentConfig(_Strict):
    """One deployment environment: where it deploys and what it trains."""

    name: str
    account: str | None = None
    region: str
    backend: Backend = "openai"
    base_model: str
    allow_unlisted_model: bool = False
    dataset: str = "datasets/gsm8k"
    grader: str = "graders/gsm8k.json"
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    removal_policy: Literal["destroy", "retain"] = "retain"
    log_retention_days: int = 30
    noncurrent_version_expiration_days: Annotated[int, Field(ge=1, le=3650)] = 30
    permissions_boundary_arn: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    alarm_email: str | None = None
    reward_function: RewardFunctionConfig = RewardFunctionConfig()
    job: JobConfig = JobConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    mantle: MantleConfig = MantleConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    # Extra cdk-nag packs that gate this environment's stack (COMPLIANCE_PACKS).
    compliance_packs: Annotated[tuple[str, ...], LIST] = ()
    # The GitHub environment whose deploy job may assume this environment's deploy role
    # (the ``ci`` block, stacks/ci_stack.py); None: the environment's own name.
    github_environment: str | None = None
    # The CDK bootstrap qualifier this environment deploys through (``make bootstrap
    # ENV=<name>`` creates it): its own deploy, publishing and CloudFormation execution roles,
    # so the deploy role of one environment cannot reach another's. None: the app-wide
    # qualifier (the CDK's default, shared by every environment of an account and region).
    bootstrap_qualifier: str | None = None
    # Per-token prices for make review's cost estimate (none shipped: no price is invented).
    pricing: PricingConfig | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ENV_NAME.match(value):
            raise ValueError("must be lower-case letters, digits and '-', at most 20 characters")
        return value

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not ACCOUNT.match(value):
            raise ValueError("must be a 12-digit AWS account id")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION.match(value):
            raise ValueError("must be an AWS region name such as us-west-2")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
        return value

    @field_validator("compliance_packs")
    @classmethod
    def _packs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [pack for pack in value if pack not in COMPLIANCE_PACKS]
        if unknown:
            raise ValueError(
                f"unknown pack {', '.join(unknown)}; allowed: {', '.join(COMPLIANCE_PACKS)} "
                "(AwsSolutions and Serverless gate every environment already)"
            )
        if len(set(value)) != len(value):
            raise ValueError("lists a pack twice")
        return value

    @field_validator("github_environment")
    @classmethod
    def _github_environment(cls, value: str | None) -> str | None:
        if value is not None and not GITHUB_ENVIRONMENT.match(value):
            raise ValueError("must be 1 to 255 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("bootstrap_qualifier")
    @classmethod
    def _qualifier(cls, value: str | None) -> str | None:
        # The CDK's own rule: it names S3 buckets and IAM roles (cdk-<qualifier>-...).
        if value is not None and not BOOTSTRAP_QUALIFIER.match(value):
            raise ValueError("must be 1 to 10 lower-case letters or digits")
        return value

    @field_validator("permissions_boundary_arn")
    @classmethod
    def _boundary(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:policy/.+", value):
            raise ValueError("must be an IAM managed policy ARN")
        return value

    @field_validator("alarm_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError("must be an e-mail address")
        return value

    @model_validator(mode="after")
    def _model_offered(self) -> EnvironmentConfig:
        offered = BACKEND_MODELS[self.backend]
        if self.allow_unlisted_model:
            return self
        if self.region not in offered:
            raise ValueError(
                f"region: backend '{self.backend}' offers RFT in {', '.join(offered)}, "
                f"not in {self.region} (set allow_unlisted_model to override)"
            )
        if self.base_model not in offered[self.region]:
            raise ValueError(
                f"base_model: '{self.base_model}' is not offered by backend '{self.backend}' "
                f"in {self.region}; allowed: {', '.join(offered[self.region])} "
                "(set allow_unlisted_model to override)"
            )
        return self

    @model_validator(mode="after")
    def _evaluation_fits_worker(self) -> EnvironmentConfig:
        # A model call started by the worker must end before its grading, which must end
        # before it writes its part: else Lambda kills the worker and its batch is lost.
        if not (self.job.start and self.evaluation.enabled):
            return self
        reward = self.reward_function.timeout_seconds
        room = EVALUATION_WORKER_SECONDS - EVALUATION_WORKER_FIXED_SECONDS - reward
        most = room - EVALUATION_MIN_SAMPLING_SECONDS
        if self.evaluation.request_timeout_seconds > most:
            allowed = (
                f"at most {most} with reward_function.timeout_seconds = {reward}"
                if most >= 10
                else f"lower reward_function.timeout_seconds (now {reward}) to at most "
                f"{EVALUATION_WORKER_SECONDS - EVALUATION_WORKER_FIXED_SECONDS - 70}"
            )
            raise ValueError(
                "evaluation.request_timeout_seconds: a model call and a grader call "
                f"(reward_function.timeout_seconds) must fit the {EVALUATION_WORKER_SECONDS} s "
                f"evaluation worker with {EVALUATION_MIN_SAMPLING_SECONDS} s to sample; "
                f"{allowed}"
            )
        return self

    def undocumented_problem(self) -> str | None:
        """Why the job settings would send an undocumented field without the opt-in (or
        opt in where nothing is undocumented), worded as one config error; else ``None``."""
        if self.backend == "bedrock":
            if self.job.send_undocumented_fields:
                return (
                    "job.send_undocumented_fields = true: applies to backend openai only "
                    "(the native API documents every field it takes)"
                )
            return None
        if self.job.send_undocumented_fields:
            return None
        for name, value in sorted(self.hyperparameters.items()):
            if name not in OPENAI_DOCUMENTED_HYPERPARAMETERS:
                return (
                    f"hyperparameters.{name} = {json.dumps(value)}: not documented by Bedrock's "
                    "OpenAI-compatible API (documented: "
                    f"{', '.join(OPENAI_DOCUMENTED_HYPERPARAMETERS)}); set "
                    "job.send_undocumented_fields to true to send it anyway (unverified)"
                )
        return None

    @property
    def typed_hyperparameters(self) -> OpenAIHyperparameters | BedrockHyperparameters:
        """The hyperparameters validated in the backend's own names."""
        if self.backend == "bedrock":
            return BedrockHyperparameters(**self.hyperparameters)
        return OpenAIHyperparameters(**self.hyperparameters)

    @property
    def stack_name(self) -> str:
        """The CloudFormation stack name of this environment."""
        return f"BedrockRft-{self.name}"

    @property
    def github_environment_name(self) -> str:
        """The GitHub environment that deploys this environment (default: its own name)."""
        return self.github_environment or self.name


class CiConfig(_Strict):
    """Delivery from GitHub Actions (``context.ci``): the repository whose deploy jobs may
    assume the per-environment deploy roles, and an existing GitHub OIDC provider, if any."""

    github_repository: str
    # GitHub's numeric ids of the owner and the repository (the API's ``owner.id`` and
    # ``id``): with them the deploy roles also trust the immutable ``sub`` forms that GitHub
    # issues to repositories created, renamed or transferred since mid-2026 (docs/delivery.md).
    github_owner_id: Annotated[int, Field(strict=True, gt=0)] | None = None
    github_repository_id: Annotated[int, Field(strict=True, gt=0)] | None = None
    # The name-only ``sub`` form; false once the repository issues the immutable form only,
    # so a recycled owner or repository name can no longer match.
    legacy_subject: bool = True
    # The ``sub`` must also carry ``job_workflow_ref`` of main's deploy workflow: needs the
    # repository's OIDC subject customization (include_claim_keys, docs/delivery.md).
    require_deploy_workflow: bool = False
    # An account holds one provider per issuer URL: name it here when the account has one.
    oidc_provider_arn: str | None = None

    @field_validator("github_repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not GITHUB_REPOSITORY.match(value):
            raise ValueError("must be the GitHub repository as owner/name")
        return value

    @field_validator("oidc_provider_arn")
    @classmethod
    def _provider(cls, value: str | None) -> str | None:
        if value is not None and not GITHUB_OIDC_PROVIDER_ARN.match(value):
            raise ValueError(
                "must be the ARN of the account's OIDC provider for "
                "token.actions.githubusercontent.com"
            )
        return value

    @model_validator(mode="after")
    def _ids(self) -> CiConfig:
        if (self.github_owner_id is None) != (self.github_repository_id is None):
            missing = "github_owner_id" if self.github_owner_id is None else "github_repository_id"
            raise ValueError(
                f"{missing}: required with the other id (the immutable subject names both)"
            )
        if not self.legacy_subject and self.github_owner_id is None:
            raise ValueError(
                "legacy_subject: can be false only with github_owner_id and "
                "github_repository_id (else no subject is trusted)"
            )
        return self


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(environment)"


def _problems(
    err: ValidationError,
    raw: dict[str, Any],
    prefix: tuple[str, ...],
    root: type[BaseModel] | None = None,
) -> list[str]:
    """One phrase per validation error: where, the value given, and what is allowed (a
    misspelled key: the key ``root``, default the environment's model, allows closest to it)."""
    lines = []
    for error in err.errors():
        loc = tuple(error["loc"])
        where = _location(prefix + loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            if prefix == ("hyperparameters",):
                model = _hyper_model(raw.get("__backend__"))
                allowed = ", ".join(model.model_fields)
                close = _did_you_mean(str(loc[-1]), list(model.model_fields))
                hint = f' (did you mean "{close}"?)' if close else ""
                lines.append(f"{where}: unknown hyperparameter{hint}; allowed: {allowed}")
            else:
                close = _did_you_mean(str(loc[-1]), _keys_at(root or EnvironmentConfig, loc[:-1]))
                lines.append(
                    f'{where}: unknown key; did you mean "{close}"?'
                    if close
                    else f"{where}: unknown key"
                )
            continue
        if error["type"] == "missing":
            lines.append(f"{where}: required key is missing")
            continue
        if not loc and (keyed := re.match(r"^([\w.]+): (.*)$", message)):
            # a cross-field check names its key (dotted when nested) at the front
            loc, message = tuple(keyed.group(1).split(".")), keyed.group(2)
            where = _location(prefix + loc)
        message = _range_message(error, prefix, raw) or message
        if error["type"] in _TYPE_ERRORS and isinstance(error.get("input"), str):
            message += " (a JSON string: write the value without quotes)"
        value: Any = raw
        for part in loc:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            lines.append(f"{where}: {message}")
        else:
            lines.append(f"{where} = {json.dumps(value)}: {message}")
    return lines


_TYPE_ERRORS = {"int_type", "float_type", "bool_type"}


def _did_you_mean(key: str, allowed: list[str]) -> str | None:
    """The allowed key closest to a misspelled one, if one is close."""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if not close:
        close = [name for name in allowed if name.lower() == key.lower()]
    return close[0] if close else None


def _keys_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the (nested) model at ``loc`` below ``model`` allows; [] where unknown."""
    for part in loc:
        field = model.model_fields.get(str(part))
        nested = field and next(
            (
                kind
                for kind in (field.annotation, *typing.get_args(field.annotation))
                if isinstance(kind, type) and issubclass(kind, BaseModel)
            ),
            None,
        )
        if not nested:
            return []
        model = nested
    return list(model.model_fields)


_RANGE_ERRORS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}


def _range_message(error: Any, prefix: tuple[str, ...], raw: dict[str, Any]) -> str | None:
    """'allowed: 16 to 512' for a number outside a field's declared bounds."""
    if error["type"] not in _RANGE_ERRORS or len(error["loc"]) != 1:
        return None
    if prefix == ("hyperparameters",):
        model: type[BaseModel] = _hyper_model(raw.get("__backend__"))
    elif not prefix:
        model = EnvironmentConfig
    else:
        return None
    field = model.model_fields.get(str(error["loc"][0]))
    if field is None:
        return None
    low = high = None
    low_op, high_op = ">=", "<="
    for meta in field.metadata:
        for attr, op in (("ge", ">="), ("gt", ">")):
            if getattr(meta, attr, None) is not None:
                low, low_op = getattr(meta, attr), op
        for attr, op in (("le", "<="), ("lt", "<")):
            if getattr(meta, attr, None) is not None:
                high, high_op = getattr(meta, attr), op
    if low is not None and high is not None and low_op == ">=" and high_op == "<=":
        return f"out of range; allowed: {low} to {high}"
    bounds = [f"{op} {v}" for v, op in ((low, low_op), (high, high_op)) if v is not None]
    return f"out of range; allowed: {' and '.join(bounds)}" if bounds else None


def _hyper_model(backend: str | None) -> type[BaseModel]:
    return BedrockHyperparameters if backend == "bedrock" else OpenAIHyperparameters


def parse_environment(name: str, raw: dict[str, Any], project_root: Path) -> EnvironmentConfig:
    """Validate one environment's raw settings; raise :class:`ConfigError` listing every problem
    (model fields, the backend's hyperparameters, the dataset folder and the grader definition)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"environment '{name}': must be an object, got {type(raw).__name__}")
    data = {"name": name, **raw}
    problems: list[str] = []
    config: EnvironmentConfig | None = None
    try:
        config = EnvironmentConfig.model_validate(data)
    except ValidationError as err:
        problems += _problems(err, data, ())
    problems += _hyperparameter_problems(data)
    if config is not None and not problems and (undocumented := config.undocumented_problem()):
        problems.append(undocumented)
    problems += _path_problems(data, project_root)
    if problems or config is None:
        raise ConfigError([f"environment '{name}': {line}" for line in problems])
    return config


def _hyperparameter_problems(data: dict[str, Any]) -> list[str]:
    """The hyperparameters checked in the backend's own names, even when other keys are bad."""
    backend = data.get("backend", EnvironmentConfig.model_fields["backend"].default)
    hyperparameters = data.get("hyperparameters", {})
    if backend not in ("openai", "bedrock") or not isinstance(hyperparameters, dict):
        return []  # the model's own errors name these
    try:
        _hyper_model(backend).model_validate(hyperparameters)
    except ValidationError as err:
        return _problems(err, {**hyperparameters, "__backend__": backend}, ("hyperparameters",))
    return []


def _path_problems(data: dict[str, Any], project_root: Path) -> list[str]:
    """The dataset folder and the grader file, the grader loaded by the reward Lambda's loader."""
    fields = EnvironmentConfig.model_fields
    dataset = data.get("dataset", fields["dataset"].default)
    grader = data.get("grader", fields["grader"].default)
    problems = []
    if isinstance(dataset, str) and not (project_root / dataset / "train.jsonl").is_file():
        problems.append(
            f"dataset = {json.dumps(dataset)}: "
            "must be a folder holding train.jsonl (and optionally validation.jsonl)"
        )
    if isinstance(grader, str):
        if not (project_root / grader).is_file():
            problems.append(f"grader = {json.dumps(grader)}: no such file")
        # The grader's imports are checked only once the extra packages they need are in.
        elif (extra := _extra_modules(data, problems)) is not None and (
            problem := grader_problem(project_root / grader, extra)
        ) is not None:
            problems.append(f"grader {grader}: {problem}")
    return problems


def load_ci(context: dict[str, Any]) -> CiConfig | None:
    """The ``ci`` block of the context, validated; ``None`` where there is none (delivery from
    GitHub Actions is opt-in)."""
    raw = context.get("ci")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"ci: must be an object, got {type(raw).__name__}")
    try:
        return CiConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError([f"ci: {line}" for line in _problems(err, raw, (), CiConfig)]) from None


def _extra_modules(data: dict[str, Any], problems: list[str]) -> frozenset[str] | None:
    """The top-level modules of the environment's extra packages, installed for Lambda (once),
    or None after adding their problem to ``problems``."""
    settings = data.get("reward_function")
    pins = settings.get("extra_packages") if isinstance(settings, dict) else None
    if not pins:
        return frozenset()
    if pins_problem(pins) is not None:
        return None  # the model's validation names the bad entry
    try:
        return top_level_modules(installed(tuple(sorted(pins, key=normalized))))
    except ExtraPackagesError as err:
        problems.append(f"{EXTRA_PACKAGES_KEY}: {err}")
        return None


def load_environments(
    context: dict[str, Any], project_root: Path, only: str | None = None
) -> list[EnvironmentConfig]:
    """All environments from the ``environments`` context (or just ``only``), validated; the
    :class:`ConfigError` lists the problems of every environment, not only the first, and of
    the ``ci`` block where the context has one."""
    try:
        load_ci(context)
        ci_problems: list[str] = []
    except ConfigError as err:
        ci_problems = err.lines
    environments = context.get("environments")
    if not isinstance(environments, dict) or not environments:
        raise ConfigError("cdk.json: context.environments must define at least one environment")
    if only is not None:
        if only not in environments:
            raise ConfigError(
                f'env = "{only}": no such environment; defined: {", ".join(environments)}'
            )
        selected = {only: environments[only]}
    else:
        selected = environments
    configs, problems = [], list(ci_problems)
    for name, raw in selected.items():
        try:
            configs.append(parse_environment(name, raw, project_root))
        except ConfigError as err:
            problems += err.lines
    if problems:
        raise ConfigError(problems)
    return configs
