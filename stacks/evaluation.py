"""The evaluation of every succeeded job: its tuned model against the base model, graded by
the reward Lambda version the job trained with, over the staged validation.jsonl.

Built where the environment starts a job and ``evaluation.enabled``:

* the ``lambda/evaluation`` functions (start, prepare, work; native backend: serve and
  serve_status) and the aggregation, ``lambda/evaluation_report`` (the same ``rft_eval``
  code in a bundle of its own, the only one with matplotlib), each with a role of its own
  (``stacks/evaluation_iam.py``; the native backend's clean-up of deployments on destroy
  is ``stacks/serving.py``);
* the state machine (``stacks/evaluation_flow.py``): a Distributed Map over the validation
  file, results under ``evaluations/<job>/`` in the artifacts bucket;
* the triggers: the native backend's EventBridge "Model Customization Job State Change"
  (Completed) for this environment's jobs, and the metrics collector, which sees
  OpenAI-compatible jobs succeed and invokes the start function (wired in ``rft_stack``);
* an alarm on failed executions, to the notification topic.

The promotion gate's parameter ``/bedrock-rft/<env>/model`` is not a stack resource: the gate
creates it at the first promotion, and a stack update or deletion never resets what
applications read.
"""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import EVALUATION_WORKER_SECONDS, ConfigError, EnvironmentConfig
from stacks.evaluation_flow import (
    EVALUATIONS_PREFIX,
    FlowFunctions,
    build_definition,
)
from stacks.evaluation_iam import EVALUATION_NAMESPACE, EvaluationRoles
from stacks.evaluation_models import base_inference_model
from stacks.job import name_prefix, record_parameter_name
from stacks.lambda_code import bundle_code
from stacks.log_groups import encrypted_log_group
from stacks.mantle import mantle_route_environment
from stacks.nag import NO_VPC_REASON, acknowledge, acknowledge_runtime, checkov_skip
from stacks.staging import Staging

JOB_STATE_DETAIL_TYPE = "Model Customization Job State Change"
# A whole evaluation (thousands of prompts at the configured concurrency) fits in a day; a
# stuck one fails then, and the failed-executions alarm says so.
EXECUTION_TIMEOUT = Duration.hours(24)
SHORT_TIMEOUT = Duration.minutes(1)  # start, prepare, serve, serve_status


def evaluation_enabled(config: EnvironmentConfig, *, has_validation: bool = True) -> bool:
    """Whether the environment evaluates its jobs: it starts one, evaluation is on, and the
    dataset has a ``validation.jsonl`` to evaluate on.

    Without one, an environment that sets ``evaluation.enabled`` explicitly fails synth (one
    line naming the fix); one that relies on the default is not evaluated (the README says
    so), so a dataset without a validation split keeps deploying as before.
    """
    if not (config.job.start and config.evaluation.enabled):
        return False
    if has_validation:
        return True
    if "enabled" in config.evaluation.model_fields_set:
        raise ConfigError(
            f"environment '{config.name}': evaluation.enabled = true: dataset "
            f"{config.dataset} has no validation.jsonl to evaluate on; add one or set "
            "evaluation.enabled to false"
        )
    return False


def model_parameter_name(environment: str) -> str:
    """The promoted model's SSM parameter (written only by the promotion gate)."""
    return f"/bedrock-rft/{environment}/model"


def state_machine_name(environment: str) -> str:
    """The evaluation state machine's name (fixed: the console and the README name it)."""
    return f"bedrock-rft-{environment}-evaluation"


class Evaluation(Construct):
    """Functions, state machine, native trigger and failure alarm of one environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        staging: Staging,
        reward_version: lambda_.IVersion,
        topic: sns.ITopic,
        code: lambda_.Code | None = None,
        report_code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if staging.validation_key is None:
            raise ConfigError(
                f"environment '{config.name}': evaluation: dataset {config.dataset} has no "
                "validation.jsonl to evaluate on"
            )
        stack = Stack.of(self)
        self.config = config
        self.model_parameter = model_parameter_name(config.name)
        self.validation_key = staging.validation_key
        code = code or bundle_code("evaluation")
        self.state_machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=state_machine_name(config.name),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.roles = EvaluationRoles(
            self,
            "Roles",
            config=config,
            staging=staging,
            reward_function=reward_version.lambda_,
            topic=topic,
            state_machine_arn=self.state_machine_arn,
            job_parameter=record_parameter_name(config.name),
            model_parameter=self.model_parameter,
        )
        common = {
            "RFT_ENVIRONMENT": config.name,
            "RFT_BACKEND": config.backend,
            "POWERTOOLS_SERVICE_NAME": "evaluation",
            "LOG_LEVEL": "INFO",
            **mantle_route_environment(config),
        }
        native = config.backend == "bedrock"
        fn = self._function
        self.start = fn(
            "Start", "handler.start", code, common | {"STATE_MACHINE_ARN": self.state_machine_arn}
        )
        self.prepare = fn(
            "Prepare",
            "handler.prepare",
            code,
            common | self._prepare_environment(staging, reward_version, topic),
        )
        self.work = fn(
            "Work",
            "handler.work",
            code,
            common
            | {
                # The worker's deadlines (rft_eval.cloud.Deadlines): a model call's read
                # timeout, and the reward function's timeout its grader calls wait for.
                "REQUEST_TIMEOUT_SECONDS": str(config.evaluation.request_timeout_seconds),
                "REWARD_TIMEOUT_SECONDS": str(config.reward_function.timeout_seconds),
            },
            timeout=Duration.seconds(EVALUATION_WORKER_SECONDS),
            memory_mb=1024,
        )
        # The aggregation draws the report with matplotlib: a bundle of its own, so that the
        # other functions' bundle stays small (issue 21); same role and settings as before.
        self.aggregate = fn(
            "Aggregate",
            "handler.aggregate",
            report_code or bundle_code("evaluation_report"),
            common | {"POWERTOOLS_METRICS_NAMESPACE": EVALUATION_NAMESPACE},
            timeout=Duration.minutes(15),
            memory_mb=2048,
        )
        self.serve = fn("Serve", "handler.serve", code, common) if native else None
        self.serve_status = (
            fn("ServeStatus", "handler.serve_status", code, common) if native else None
        )
        log_group = encrypted_log_group(self, "StateMachineLogs", config=config, key=staging.key)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name(config.name),
            comment=f"Evaluate each succeeded RFT job of environment {config.name} against its "
            "base model, and promote it when it is better",
            definition_body=sfn.DefinitionBody.from_chainable(
                build_definition(
                    Construct(self, "States"),
                    config=config,
                    functions=FlowFunctions(
                        prepare=self.prepare,
                        work=self.work,
                        aggregate=self.aggregate,
                        serve=self.serve,
                        serve_status=self.serve_status,
                    ),
                    validation_bucket=staging.datasets_bucket,
                    validation_key=staging.validation_key,
                    artifacts_bucket=staging.artifacts_bucket,
                )
            ),
            role=self.roles.state_machine,
            timeout=EXECUTION_TIMEOUT,
            tracing_enabled=True,
            # The execution data holds prompts and completions: they stay in S3 and the
            # execution history, not copied into logs.
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
        )
        self.roles.finish_state_machine(self.state_machine)
        if native:
            self.rule: events.Rule | None = self._native_trigger(config, staging)
        else:
            self.rule = None
        self.failed_alarm = self._failed_alarm(config, topic)
        self._outputs()

    # -- functions ------------------------------------------------------------------------

    def _prepare_environment(
        self, staging: Staging, reward_version: lambda_.IVersion, topic: sns.ITopic
    ) -> dict[str, str]:
        config = self.config
        settings = config.evaluation.model_dump(
            include={
                "samples_per_prompt",
                "temperature",
                "max_tokens",
                "pass_threshold",
                "limit",
                "bootstrap_resamples",
                "seed",
                "promote_when",
            }
        )
        assert self.validation_key is not None
        return {
            "BASE_MODEL": base_inference_model(config),
            "JOB_PARAMETER": record_parameter_name(config.name),
            # Only for job records written before the record named the job's reward version.
            "REWARD_FUNCTION_ARN": reward_version.function_arn,
            "VALIDATION_BUCKET": staging.datasets_bucket.bucket_name,
            "VALIDATION_KEY": self.validation_key,
            "ARTIFACTS_BUCKET": staging.artifacts_bucket.bucket_name,
            "EVALUATIONS_PREFIX": EVALUATIONS_PREFIX,
            "EVALUATION_SETTINGS": json.dumps(settings, sort_keys=True),
            "MODEL_PARAMETER": self.model_parameter,
            "TOPIC_ARN": topic.topic_arn,
            "METRICS_NAMESPACE": EVALUATION_NAMESPACE,
        }

    def _function(
        self,
        construct_id: str,
        handler: str,
        code: lambda_.Code,
        environment: dict[str, str],
        *,
        timeout: Duration = SHORT_TIMEOUT,
        memory_mb: int = 256,
    ) -> lambda_.Function:
        role, log_group = self.roles.for_function(construct_id)
        function = lambda_.Function(
            self,
            construct_id,
            role=role,
            description=f"Bedrock RFT evaluation ({self.config.name}): {handler}",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=code,
            timeout=timeout,
            memory_size=memory_mb,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment_encryption=self.roles.key,
            environment=environment,
            # The start function is invoked asynchronously (EventBridge, the collector): a
            # failed start is retried twice by Lambda; the others are invoked synchronously.
            retry_attempts=2 if construct_id == "Start" else None,
        )
        acknowledge_runtime(function)
        checkov_skip(function, "CKV_AWS_117", NO_VPC_REASON)
        if construct_id == "Start":
            dead_letter = (
                "Triggered at most a few times per job (EventBridge, the collector), retried "
                "twice by Lambda; a start that still fails raises the evaluation-start alarm, "
                'and invoking the function again with {"job_id": ...} starts the evaluation.'
            )
        else:
            dead_letter = (
                "Invoked synchronously by the evaluation state machine (or the custom resource "
                "framework), which retries and reports failures itself; no asynchronous event."
            )
        concurrency = (
            "Invoked by the evaluation state machine, whose Distributed Map bounds its "
            "concurrency (evaluation.max_concurrency); reserving capacity would take it from "
            "the account's pool."
        )
        acknowledge(function, "Serverless-LambdaDLQ", dead_letter)
        acknowledge(function, "Serverless-LambdaAsyncFailureDestination", dead_letter)
        acknowledge(function, "Serverless-LambdaDefaultReservedConcurrency", concurrency)
        checkov_skip(function, "CKV_AWS_116", dead_letter)
        checkov_skip(function, "CKV_AWS_115", concurrency)
        return function

    # -- trigger, alarm, outputs -------------------------------------------------------------

    def _native_trigger(self, config: EnvironmentConfig, staging: Staging) -> events.Rule:
        """Completed native jobs of this environment -> the start function.

        Scoped twice: the job writes under this environment's output prefix (its bucket is
        this stack's), and its name carries the environment's prefix (``rft-<env>-``, as the
        job custom resource names jobs).
        """
        rule = events.Rule(
            self,
            "JobCompletedRule",
            description=f"Evaluate completed customization jobs of environment {config.name}",
            event_pattern=events.EventPattern(
                source=["aws.bedrock"],
                detail_type=[JOB_STATE_DETAIL_TYPE],
                detail={
                    "jobStatus": ["Completed"],
                    "jobName": [{"prefix": f"{name_prefix(config.name)}-"}],
                    "outputDataConfig": {"s3Uri": [{"prefix": staging.output_s3_uri}]},
                },
            ),
            targets=[targets.LambdaFunction(self.start, retry_attempts=8)],
        )
        acknowledge(
            rule,
            "Serverless-EventBusDLQ",
            "EventBridge retries delivery to the start function; a lost event is made up by the "
            "metrics collector, which requests the evaluation when it sees the job succeed.",
        )
        return rule

    def _failed_alarm(self, config: EnvironmentConfig, topic: sns.ITopic) -> cw.Alarm:
        alarms = []
        for name, metric, description in (
            (
                "EvaluationFailed",
                self.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
                "An evaluation execution failed (or timed out): the tuned model was neither "
                "judged nor promoted. Open the execution in the Step Functions console.",
            ),
            (
                "EvaluationStartFailed",
                self.start.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                "The evaluation could not be started for a succeeded job (see the start "
                'function\'s log); invoke it again with {"job_id": ...}.',
            ),
        ):
            alarm = cw.Alarm(
                self,
                f"{name}Alarm",
                alarm_name=f"bedrock-rft-{config.name}-{name}",
                alarm_description=description,
                metric=metric,
                threshold=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarms.append(alarm)
        self.start_failed_alarm = alarms[1]
        return alarms[0]

    def _outputs(self) -> None:
        CfnOutput(
            self,
            "EvaluationStateMachine",
            value=self.state_machine.state_machine_arn,
            description="Evaluates each succeeded job (one execution per job, named after it)",
        )
        CfnOutput(
            self,
            "ModelParameter",
            value=self.model_parameter,
            description="SSM parameter with the promoted model (written only by the gate)",
        )
        for child in self.node.children:
            if isinstance(child, CfnOutput):
                child.override_logical_id(child.node.id)
