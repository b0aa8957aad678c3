"""The evaluation's state machine definition (Step Functions, JSONPath).

Prepare -> [current job?] -> (native backend: Serve -> poll ServeStatus until Active) ->
EvaluatePrompts (a Distributed Map over the staged validation.jsonl, batches of prompts per
child, the context as every batch's BatchInput) -> Aggregate. The state carries the context at
``$.context``; the Map's result (its ResultWriter manifest) goes to ``$.mapped.map`` and
Aggregate takes the context merged with it (``States.JsonMerge``), whose response (the
summary) is the execution's output.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.config import EnvironmentConfig

# The context's keys (lambda/evaluation/rft_eval/prepare.py CONTEXT_KEYS; a unit test keeps
# the two equal): every batch gets exactly the context as its BatchInput.
CONTEXT_KEYS = (
    "environment",
    "region",
    "backend",
    "job_id",
    "base_model",
    "tuned_model",
    "custom_model_arn",
    "reward_function_arn",
    "validation",
    "artifacts",
    "settings",
    "model_parameter",
    "topic_arn",
    "metrics_namespace",
    "mantle_route",
)
EVALUATIONS_PREFIX = "evaluations/"
# The Map's own result files (manifest and per-child results), per Map Run under this prefix.
MAP_RESULTS_PREFIX = f"{EVALUATIONS_PREFIX}map-runs"
# Retries of the serve step while the custom model is not Active yet (about half an hour).
MODEL_ACTIVE_ATTEMPTS = 30
# A new on-demand deployment is polled once a minute, for at most this many polls.
DEPLOYMENT_POLL = Duration.minutes(1)
DEPLOYMENT_MAX_POLLS = 90
# Lambda's own throttling and transient service errors: retried with backoff, never failed.
LAMBDA_TRANSIENT = [
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ClientExecutionTimeoutException",
]


class ValidationReader(sfn.S3JsonLItemReader):
    """The JSON Lines reader, granted the one validation file it reads (aws-cdk-lib's own
    reader grants every object of the bucket)."""

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        """``s3:GetObject`` on the validation file only."""
        assert self.bucket is not None
        return [
            iam.PolicyStatement(
                sid="ReadValidation",
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(self.key)],
            )
        ]


class MapResultWriter(sfn.ResultWriterV2):
    """The Map's result writer, granted its own prefix only (aws-cdk-lib's grants every
    object of the bucket)."""

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        """Writes (multipart included) and reads back under :data:`MAP_RESULTS_PREFIX` only:
        the actions aws-cdk-lib's ResultWriterV2 grants (reading matters on a redrive)."""
        assert self.bucket is not None
        return [
            iam.PolicyStatement(
                sid="WriteMapResults",
                actions=[
                    "s3:PutObject",
                    "s3:GetObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                resources=[self.bucket.arn_for_objects(f"{MAP_RESULTS_PREFIX}/*")],
            )
        ]


@dataclass(frozen=True)
class FlowFunctions:
    """The functions the states invoke (``serve`` / ``serve_status``: native backend only)."""

    prepare: lambda_.IFunction
    work: lambda_.IFunction
    aggregate: lambda_.IFunction
    serve: lambda_.IFunction | None = None
    serve_status: lambda_.IFunction | None = None


def _invoke(
    scope: Construct,
    state_id: str,
    function: lambda_.IFunction,
    *,
    payload: sfn.TaskInput | None = None,
    input_path: str | None = None,
    result_path: str | None = None,
) -> tasks.LambdaInvoke:
    """A Lambda task whose result is the function's response (no invocation metadata); the
    payload is the state's input (after ``input_path``) unless ``payload`` is an object."""
    task = tasks.LambdaInvoke(
        scope,
        state_id,
        lambda_function=function,
        payload=payload,
        input_path=input_path,
        payload_response_only=True,
        retry_on_service_exceptions=False,  # one retry policy of our own, below
        result_path=result_path,
    )
    task.add_retry(
        errors=LAMBDA_TRANSIENT,
        interval=Duration.seconds(2),
        max_attempts=8,
        backoff_rate=2,
        max_delay=Duration.minutes(2),
        jitter_strategy=sfn.JitterType.FULL,
    )
    return task


def _serve_states(
    scope: Construct, functions: FlowFunctions, then: sfn.IChainable
) -> sfn.IChainable:
    """Serve the tuned custom model, wait until its deployment is Active, then ``then``."""
    assert functions.serve is not None and functions.serve_status is not None
    serve = _invoke(
        scope,
        "Serve",
        functions.serve,
        input_path="$.context",
        result_path="$.deployment",
    )
    # The job's custom model may not be Active (or visible) the moment the job completed:
    # serve waits while its invocation lasts, then fails with ModelNotActive, retried here.
    serve.add_retry(
        errors=["ModelNotActive"],
        interval=Duration.minutes(1),
        max_attempts=MODEL_ACTIVE_ATTEMPTS,
        backoff_rate=1,
    )
    start_polls = sfn.Pass(
        scope, "StartPolling", result=sfn.Result.from_object({"count": 0}), result_path="$.polls"
    )
    wait = sfn.Wait(scope, "WaitForDeployment", time=sfn.WaitTime.duration(DEPLOYMENT_POLL))
    status = _invoke(
        scope,
        "ServeStatus",
        functions.serve_status,
        payload=sfn.TaskInput.from_object(
            {"deployment_arn": sfn.JsonPath.string_at("$.deployment.deployment_arn")}
        ),
        result_path="$.deployment",
    )
    count = sfn.Pass(
        scope,
        "CountPoll",
        parameters={"count": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.polls.count"), 1)},
        result_path="$.polls",
    )
    use = sfn.Pass(
        scope,
        "UseDeployment",
        comment="The deployment ARN is the tuned model's modelId for inference.",
        input_path="$.deployment.deployment_arn",
        result_path="$.context.tuned_model",
    )
    ready = (
        sfn.Choice(scope, "DeploymentReady")
        .when(sfn.Condition.string_equals("$.deployment.status", "Active"), use.next(then))
        .when(
            sfn.Condition.string_equals("$.deployment.status", "Failed"),
            sfn.Fail(
                scope,
                "DeploymentFailed",
                error="DeploymentFailed",
                cause="The tuned model's on-demand deployment failed (see the ServeStatus output).",
            ),
        )
        .when(
            sfn.Condition.number_greater_than_equals("$.polls.count", DEPLOYMENT_MAX_POLLS),
            sfn.Fail(
                scope,
                "DeploymentTimedOut",
                error="DeploymentTimedOut",
                cause=f"The tuned model's deployment was not Active after {DEPLOYMENT_MAX_POLLS} "
                "polls.",
            ),
        )
        .otherwise(wait)
    )
    wait.next(status).next(count).next(ready)
    return serve.next(start_polls).next(ready)


def build_definition(
    scope: Construct,
    *,
    config: EnvironmentConfig,
    functions: FlowFunctions,
    validation_bucket: s3.IBucket,
    validation_key: str,
    artifacts_bucket: s3.IBucket,
) -> sfn.IChainable:
    """The evaluation's states, first to last."""
    settings = config.evaluation
    prepare = _invoke(scope, "Prepare", functions.prepare, result_path="$.context")
    evaluate = sfn.DistributedMap(
        scope,
        "EvaluatePrompts",
        comment="Samples both models on each batch of validation prompts and grades them.",
        item_reader=ValidationReader(
            bucket=validation_bucket, key=validation_key, max_items=settings.limit
        ),
        item_batcher=sfn.ItemBatcher(
            max_items_per_batch=settings.items_per_batch,
            batch_input={f"{key}.$": f"$.context.{key}" for key in CONTEXT_KEYS},
        ),
        max_concurrency=settings.max_concurrency,
        tolerated_failure_percentage=settings.tolerated_failure_percentage,
        # A child samples, retries with backoff and grades for minutes: longer than the
        # five minutes an Express child may run.
        map_execution_type=sfn.StateMachineType.STANDARD,
        result_writer_v2=MapResultWriter(bucket=artifacts_bucket, prefix=MAP_RESULTS_PREFIX),
        result_path="$.mapped.map",
    )
    evaluate.item_processor(_invoke(scope, "Work", functions.work))
    # Aggregate takes the context and the Map's result ("map") as one object; its response
    # (the summary) is the execution's output.
    collect = sfn.Pass(
        scope,
        "CollectResults",
        parameters={"merged.$": "States.JsonMerge($.context, $.mapped, false)"},
    )
    aggregate = _invoke(scope, "Aggregate", functions.aggregate, input_path="$.merged")
    body: sfn.IChainable = evaluate.next(collect).next(aggregate)
    if config.backend == "bedrock":
        body = _serve_states(scope, functions, body)
    skipped = sfn.Succeed(
        scope,
        "NotCurrentJob",
        comment="Only the environment's current job is evaluated (see the Prepare output).",
    )
    current = (
        sfn.Choice(scope, "CurrentJob")
        .when(sfn.Condition.is_present("$.context.skip"), skipped)
        .otherwise(body)
    )
    return prepare.next(current)
