"""The reward (grader) Lambda that Bedrock invokes with batches of rollouts.

Its deployed root is the ``reward`` bundle plus the environment's grader definition at
``graders/<file>.json`` (``GRADER_CONFIG`` points there), so editing one environment's grader
changes only that environment's function. ``digest`` is a content address of everything that
decides a score (code, pinned dependencies, definition): the job identity includes it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.bedrock_arns import foundation_model_arn
from stacks.bundle_store import build_root, hold, link_tree, touch
from stacks.config import EnvironmentConfig
from stacks.extra_packages import installed
from stacks.lambda_code import PROJECT_ROOT, asset_code, bundle_record
from stacks.log_groups import encrypted_log_group, function_role
from stacks.mantle import (
    INFERENCE_PROJECT_ACTIONS,
    bearer_token_statement,
    mantle_route_environment,
    model_scope_text,
    project_statement,
    projects_arn,
    token_scope_text,
)
from stacks.nag import (
    NO_VPC_REASON,
    acknowledge,
    acknowledge_runtime,
    checkov_skip,
    nag_text,
)

GRADER_NAMESPACE = "BedrockRft/Grader"


def grader_name(definition_path: Path) -> str:
    """The grader's metric dimension: the definition's ``name``, else the file's stem."""
    definition = json.loads(definition_path.read_text(encoding="utf-8"))
    name = definition.get("name") if isinstance(definition, dict) else None
    return str(name) if name else definition_path.stem


JUDGE_TYPES = frozenset({"score_model", "label_model"})


def _models_of(
    definition: object, wanted: Callable[[dict[str, Any]], bool], absent: str | None = None
) -> set[str]:
    """The ``model`` of every grader ``wanted`` picks, at any depth of a definition (``absent``
    for a picked grader without one, when given)."""
    found: set[str] = set()
    if isinstance(definition, dict):
        model = definition.get("model")
        if wanted(definition):
            if isinstance(model, str) and model:
                found.add(model)
            elif absent is not None:
                found.add(absent)
        for value in definition.values():
            found |= _models_of(value, wanted, absent)
    elif isinstance(definition, list):
        for value in definition:
            found |= _models_of(value, wanted, absent)
    return found


def judge_models(definition: object) -> set[str]:
    """The chat models a definition's LLM judges (score_model, label_model) call."""
    return _models_of(definition, lambda grader: grader.get("type") in JUDGE_TYPES)


# The reward Lambda's default for a cosine grader without "model" (grading/graders/embedding.py
# DEFAULT_MODEL; a unit test keeps the two equal).
DEFAULT_EMBEDDING_MODEL = "amazon.titan-embed-text-v2:0"


def _is_cosine(grader: dict[str, Any]) -> bool:
    return grader.get("type") == "text_similarity" and grader.get("evaluation_metric") == "cosine"


def embedding_models(definition: object) -> set[str]:
    """The embeddings models a definition's cosine text_similarity graders call (the default
    model for one that names none)."""
    return _models_of(definition, _is_cosine, DEFAULT_EMBEDDING_MODEL)


def source_digest(paths: list[Path], extra: tuple[str, ...] = ()) -> str:
    """A content address of files and folders (Python sources, requirements, JSON) and of
    extra pinned requirements."""
    digest = hashlib.sha256()
    if extra:
        digest.update(("extra packages\0" + "\0".join(extra) + "\0").encode())
    for root in paths:
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if path.is_file() and path.suffix in {".py", ".txt", ".json"}:
                digest.update(str(path.relative_to(root.parent)).encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class RolloutDestination:
    """Where the reward function keeps rollout samples: a bucket and a key prefix."""

    bucket: s3.IBucket
    prefix: str  # no trailing slash

    @property
    def uri(self) -> str:
        """``s3://bucket/prefix``, as the function reads it (``ROLLOUT_SAMPLES_URI``)."""
        return f"s3://{self.bucket.bucket_name}/{self.prefix}"


class RewardFunction(Construct):
    """The versioned reward Lambda of one environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        project_root: Path = PROJECT_ROOT,
        rollouts: RolloutDestination | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = config.reward_function
        grader_file = project_root / config.grader
        self.grader_name = grader_name(grader_file)
        # The extra packages' pins are part of what decides a score (the job identity).
        self.digest = source_digest(
            [project_root / "lambda" / "reward", project_root / "lambda" / "common", grader_file],
            extra=settings.extra_packages,
        )

        asset_dir, asset_digest = self._asset_dir(grader_file, settings.extra_packages)
        self.asset_dir = asset_dir  # the folder deployed as the function's code
        self.log_group = encrypted_log_group(self, "Logs", config=config, key=key)
        # An own role instead of AWSLambdaBasicExecutionRole: logs go to this log group only.
        self.role = function_role(
            self,
            "Role",
            description=f"Reward (grader) function of environment {config.name}",
            log_group=self.log_group,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            role=self.role,
            description=f"Bedrock RFT reward function ({config.name}, grader {self.grader_name})",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler="handler.handler",
            code=asset_code(asset_dir, asset_digest),
            timeout=Duration.seconds(settings.timeout_seconds),
            memory_size=settings.memory_mb,
            reserved_concurrent_executions=settings.reserved_concurrency,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment_encryption=key,
            # A version outlives the deploy that replaced it, in every environment (whatever its
            # removal_policy): a configuration-only change (memory, timeout) publishes a new
            # version and keeps the job, which goes on calling the old one, as do jobs kept by
            # job.on_delete = retain and the evaluation (it grades with the version the job
            # record names). Old versions are deleted by `make prune-versions`, which keeps
            # every version a record names.
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.RETAIN),
            environment={
                "GRADER_CONFIG": f"graders/{grader_file.name}",
                "RFT_ENVIRONMENT": config.name,
                "POWERTOOLS_SERVICE_NAME": "reward",
                "POWERTOOLS_METRICS_NAMESPACE": GRADER_NAMESPACE,
                "LOG_LEVEL": "INFO",
                **mantle_route_environment(config),
            },
        )
        if rollouts is not None and config.observability.rollout_sample_rate > 0:
            self._grant_rollouts(config, rollouts, key)
        # Jobs invoke a published version, so a job keeps grading with the code it started
        # with even when a later deploy changes the function (the version is retained).
        self.version = self.function.current_version
        acknowledge_runtime(self.function)
        definition = json.loads(grader_file.read_text(encoding="utf-8"))
        self.judge_models = judge_models(definition)
        self.embedding_models = embedding_models(definition)
        wildcard_reason = (
            "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions"
        )
        if self.judge_models:
            self._grant_judge(config)
            wildcard_reason += (
                "; nor has bedrock-mantle:CallWithBearerToken, the use of the short-term Bedrock "
                "API key this environment's LLM judge needs (" + token_scope_text(config) + ")"
            )
        if self.embedding_models:
            self._grant_embeddings()
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            wildcard_reason + ".",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "Bedrock invokes the grader synchronously and reads the scores from the response; "
            "there is no asynchronous event to dead-letter.",
        )
        acknowledge(
            self.function,
            "Serverless-LambdaAsyncFailureDestination",
            "Synchronous invocations only (Bedrock waits for the scores), so an on-failure "
            "destination would never fire.",
        )
        checkov_skip(
            self.function,
            "CKV_AWS_116",
            "Invoked synchronously by Bedrock, which "
            "reads the scores from the response; nothing to dead-letter.",
        )
        checkov_skip(self.function, "CKV_AWS_117", NO_VPC_REASON)
        if settings.reserved_concurrency is None:
            checkov_skip(
                self.function,
                "CKV_AWS_115",
                "Reserved concurrency is the environment "
                "setting reward_function.reserved_concurrency; unset here.",
            )
            acknowledge(
                self.function,
                "Serverless-LambdaDefaultReservedConcurrency",
                "Reserved concurrency is an environment setting (reward_function."
                "reserved_concurrency); this environment leaves the grader on the shared pool.",
            )

    def _grant_judge(self, config: EnvironmentConfig) -> None:
        """Let the grader call Bedrock's OpenAI-compatible API for its judge models.

        The judge authenticates with a short-term Bedrock API key minted from this role;
        calls are authorized as ``bedrock-mantle:CreateInference`` on the account's projects,
        conditioned on ``bedrock-mantle:Model`` (unless the environment drops the condition),
        with the project reads AWS's minimal inference policy lists.
        """
        stack = Stack.of(self)
        self.role.add_to_policy(
            project_statement(
                stack,
                config,
                "JudgeInference",
                ["bedrock-mantle:CreateInference"],
                models=self.judge_models,
            )
        )
        self.role.add_to_policy(
            project_statement(stack, config, "JudgeProjectReads", INFERENCE_PROJECT_ACTIONS)
        )
        self.role.add_to_policy(bearer_token_statement(config, "JudgeShortTermApiKey"))
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            f"AwsSolutions-IAM5[Resource::{nag_text(stack, projects_arn(stack))}]",
            "bedrock-mantle authorizes inference on the project a request runs in (an account "
            "project of this region, whose id the stack cannot know); inference is "
            + model_scope_text(config, self.judge_models)
            + "; the project reads are those of AWS's minimal inference policy.",
        )

    def _grant_rollouts(
        self, config: EnvironmentConfig, rollouts: RolloutDestination, key: kms.IKey
    ) -> None:
        """Let the function keep rollout samples: ``s3:PutObject`` under its prefix only, and
        the data key S3 asks KMS for on its behalf (the bucket's default key)."""
        self.function.add_environment("ROLLOUT_SAMPLES_URI", rollouts.uri)
        self.function.add_environment(
            "ROLLOUT_SAMPLE_RATE", f"{config.observability.rollout_sample_rate:g}"
        )
        objects = rollouts.bucket.arn_for_objects(f"{rollouts.prefix}/*")
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteRolloutSamples",
                actions=["s3:PutObject"],
                resources=[objects],
            )
        )
        stack = Stack.of(self)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptRolloutSamples",
                actions=["kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            )
        )
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            f"AwsSolutions-IAM5[Resource::{nag_text(stack, objects)}]",
            "Writes rollout samples, one object per batch named by date, hour and request id, "
            f"under this environment's prefix ({rollouts.prefix}/) only; no read, no delete.",
        )

    def _grant_embeddings(self) -> None:
        """Let the grader call its embeddings models through ``bedrock-runtime`` (SigV4)."""
        stack = Stack.of(self)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EmbeddingsInvokeModel",
                actions=["bedrock:InvokeModel"],
                resources=[
                    foundation_model_arn(stack, model) for model in sorted(self.embedding_models)
                ],
            )
        )

    def _asset_dir(self, grader_file: Path, extra_packages: tuple[str, ...]) -> tuple[Path, str]:
        """The reward bundle with this environment's grader definition (and extra packages)
        added, and its digest.

        Content-addressed (the reward bundle's digest and the definition's content) and
        written atomically, so parallel synths (tests) never see a half-built folder and an
        unchanged function keeps its asset hash; the digest is the asset's custom hash. The
        bundle's files are hard links (one copy on disk however many graders are in use). The
        folder is held for this process, so ``make bundle`` never prunes it under a synth.
        """
        bundle = bundle_record("reward")
        definition = hashlib.sha256(grader_file.read_bytes()).hexdigest()
        # The extra packages' folder is named by their pins, the platform and the lock.
        extra = installed(extra_packages) if extra_packages else None
        extra_name = extra.name if extra else "no extra packages"
        digest = hashlib.sha256(
            f"{bundle.digest}\0graders/{grader_file.name}\0{definition}\0{extra_name}".encode()
        ).hexdigest()
        # The bundle's digest leads the name: `make bundle` prunes the assets of old bundles.
        target = build_root() / "assets" / f"reward-{bundle.digest[:12]}-{digest[:16]}"
        hold(target)
        if not (target / "graders" / grader_file.name).is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
            link_tree(bundle.folder, staging)
            if extra is not None:
                link_tree(extra, staging)
            (staging / "graders").mkdir(exist_ok=True)
            shutil.copyfile(grader_file, staging / "graders" / grader_file.name)
            try:
                staging.rename(target)
            except OSError:  # another synth finished the same folder first
                shutil.rmtree(staging, ignore_errors=True)
        touch(target)
        return target, digest
