"""The evaluation's roles, one per function (serve and serve_status share one) and the state
machine's, each granted exactly what the contract of issue 9 lists, scoped to ARNs and
prefixes, with every remaining wildcard acknowledged where it is granted."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.bedrock_arns import profile_foundation_arn
from stacks.config import EnvironmentConfig
from stacks.evaluation_flow import EVALUATIONS_PREFIX, MAP_RESULTS_PREFIX
from stacks.evaluation_models import (
    PROFILE_PREFIXES,
    base_inference_model,
    bedrock_inference_statements,
    mantle_inference_statement,
    tuned_model_pattern,
)
from stacks.log_groups import encrypted_log_group, function_role
from stacks.mantle import (
    INFERENCE_PROJECT_ACTIONS,
    bearer_token_statement,
    model_scope_text,
    project_statement,
    projects_arn,
    token_scope_text,
)
from stacks.nag import acknowledge, checkov_skip, nag_text
from stacks.staging import Staging

# The functions that share a role (and a log group): serve_status polls what serve created.
ROLE_OF = {"ServeStatus": "Serve"}
EVALUATION_NAMESPACE = "BedrockRft/Evaluation"
XRAY = "X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions"


class EvaluationRoles(Construct):
    """The roles (and log groups) of the evaluation's functions and state machine."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        staging: Staging,
        reward_function: lambda_.IFunction,
        topic: sns.ITopic,
        state_machine_arn: str,
        job_parameter: str,
        model_parameter: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.staging = staging
        self.key: kms.IKey = staging.key
        self.reward_function = reward_function
        self.topic = topic
        self.state_machine_arn = state_machine_arn
        self.job_parameter = job_parameter
        self.model_parameter = model_parameter
        self._roles: dict[str, tuple[iam.Role, logs.LogGroup]] = {}
        self.state_machine = iam.Role(
            self,
            "StateMachineRole",
            description=f"Evaluation state machine of environment {config.name}",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
        )
        self._grant_state_machine_data()

    # -- helpers --------------------------------------------------------------------------

    @property
    def _stack(self) -> Stack:
        return Stack.of(self)

    def _arn(self, resource: str, name: str, *, account: str | None = None) -> str:
        return self._stack.format_arn(
            service="bedrock", resource=resource, resource_name=name, account=account
        )

    def _parameter_arn(self, name: str) -> str:
        return self._stack.format_arn(
            service="ssm", resource="parameter", resource_name=name.lstrip("/")
        )

    def _evaluations(self) -> str:
        return self.staging.artifacts_bucket.arn_for_objects(f"{EVALUATIONS_PREFIX}*")

    def _validation(self) -> str:
        key = self.staging.validation_key
        assert key is not None
        return self.staging.datasets_bucket.arn_for_objects(key)

    def _s3_key_statement(self, sid: str, actions: list[str]) -> iam.PolicyStatement:
        """The environment's key, only through S3 (both buckets use it)."""
        return iam.PolicyStatement(
            sid=sid,
            actions=actions,
            resources=[self.key.key_arn],
            conditions={
                "StringEquals": {"kms:ViaService": f"s3.{self._stack.region}.amazonaws.com"}
            },
        )

    def _bedrock_key_statement(self) -> iam.PolicyStatement:
        """The environment's key, only through Bedrock: the tuned Nova model is encrypted with
        it (the job's customModelKmsKeyId), and whoever deploys or invokes the model uses the
        key through Bedrock (Nova user guide, encryption of custom models)."""
        return iam.PolicyStatement(
            sid="TunedModelKeyThroughBedrock",
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=[self.key.key_arn],
            conditions={
                "StringEquals": {"kms:ViaService": f"bedrock.{self._stack.region}.amazonaws.com"}
            },
        )

    def _ack(self, role: iam.Role, finding: str, reason: str) -> None:
        acknowledge(role.node.find_child("DefaultPolicy"), f"AwsSolutions-IAM5[{finding}]", reason)

    def _ack_resource(self, role: iam.Role, arn: str, reason: str) -> None:
        self._ack(role, f"Resource::{nag_text(self._stack, arn)}", reason)

    # -- the functions' roles -------------------------------------------------------------

    def for_function(self, function_id: str) -> tuple[iam.Role, logs.LogGroup]:
        """The role and log group of the function ``function_id`` (created on first use)."""
        name = ROLE_OF.get(function_id, function_id)
        if name not in self._roles:
            log_group = encrypted_log_group(self, f"{name}Logs", config=self.config, key=self.key)
            role = function_role(
                self,
                f"{name}Role",
                description=f"Evaluation {name.lower()} function of environment {self.config.name}",
                log_group=log_group,
            )
            getattr(self, f"_grant_{name.lower()}")(role)
            self._roles[name] = (role, log_group)
        return self._roles[name]

    def _grant_start(self, role: iam.Role) -> None:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StartEvaluation",
                actions=["states:StartExecution"],
                resources=[self.state_machine_arn],
            )
        )
        self._ack(role, "Resource::*", XRAY + ".")

    def _grant_prepare(self, role: iam.Role) -> None:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadJobRecord",
                actions=["ssm:GetParameter"],
                resources=[self._parameter_arn(self.job_parameter)],
            )
        )
        self._ack(role, "Resource::*", XRAY + ".")

    def _grant_serve(self, role: iam.Role) -> None:
        deployments = self._arn("custom-model-deployment", "*")
        models = self._arn("custom-model", "*")
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DeployCustomModels",
                actions=["bedrock:CreateCustomModelDeployment"],
                resources=[models, deployments],
            )
        )
        role.add_to_policy(self._bedrock_key_statement())
        role.add_to_policy(
            iam.PolicyStatement(
                sid="FollowModels",
                # the custom model must be Active before it can be deployed
                actions=["bedrock:GetCustomModel"],
                resources=[models],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="FollowAndTagDeployments",
                actions=["bedrock:GetCustomModelDeployment", "bedrock:TagResource"],
                resources=[deployments],
            )
        )
        # List actions name no resource type in Bedrock (as ListModelCustomizationJobs):
        # granted on "*" [open: settled by the Service Authorization Reference's entry].
        role.add_to_policy(
            iam.PolicyStatement(
                sid="FindDeployments",
                actions=["bedrock:ListCustomModelDeployments"],
                resources=["*"],
            )
        )
        reason = (
            "Custom models and their deployments get ids generated by Bedrock per job and per "
            "deployment; the functions deploy the custom model the job produced in this account "
            "and region, tag the deployment with the environment and follow it."
        )
        self._ack_resource(role, deployments, reason)
        self._ack_resource(role, models, reason)
        self._ack(
            role,
            "Resource::*",
            XRAY + "; nor has bedrock:ListCustomModelDeployments, which finds a deployment "
            "of the job an earlier attempt created (find-or-create).",
        )

    def _grant_work(self, role: iam.Role) -> None:
        stack = self._stack
        config = self.config
        versions = f"{self.reward_function.function_arn}:*"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeRewardVersions",
                actions=["lambda:InvokeFunction"],
                resources=[versions],
            )
        )
        self._ack_resource(
            role,
            versions,
            "The reward Lambda's published versions only (':*', never the unqualified "
            "function): the worker grades with the version the evaluated job trained with, "
            "known only at run time.",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadValidation", actions=["s3:GetObject"], resources=[self._validation()]
            )
        )
        self._grant_evaluations(role, ["s3:GetObject", "s3:PutObject"])
        wildcard = XRAY
        if config.backend == "openai":
            role.add_to_policy(mantle_inference_statement(stack, config))
            role.add_to_policy(
                project_statement(stack, config, "InferenceProjectReads", INFERENCE_PROJECT_ACTIONS)
            )
            role.add_to_policy(bearer_token_statement(config, "UseShortTermApiKey"))
            self._ack_resource(
                role,
                projects_arn(stack),
                "bedrock-mantle authorizes inference on the project a request runs in (an "
                "account project of this region, whose id the stack cannot know); inference is "
                + model_scope_text(config, [config.base_model, tuned_model_pattern(config)])
                + "; the project reads are those of AWS's minimal inference policy.",
            )
            wildcard += (
                "; nor has bedrock-mantle:CallWithBearerToken, the use of the short-term "
                "Bedrock API key the worker calls both models with ("
                + token_scope_text(config)
                + ")"
            )
        else:
            for statement in bedrock_inference_statements(stack, config):
                role.add_to_policy(statement)
            role.add_to_policy(self._bedrock_key_statement())
            self._ack_resource(
                role,
                self._arn("custom-model-deployment", "*"),
                "The tuned model is served by an on-demand deployment of this account and "
                "region whose id Bedrock generates when the evaluation deploys it.",
            )
            model = base_inference_model(config)
            if model.startswith(PROFILE_PREFIXES):
                self._ack_resource(
                    role,
                    profile_foundation_arn(stack, model),
                    "The base model's cross-Region inference profile routes a call to the "
                    "foundation model in any Region of its geography; the grant holds only "
                    "through this environment's profile (bedrock:InferenceProfileArn).",
                )
        self._ack(role, "Resource::*", wildcard + ".")

    def _grant_aggregate(self, role: iam.Role) -> None:
        bucket = self.staging.artifacts_bucket
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListEvaluationParts",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{EVALUATIONS_PREFIX}*"]}},
            )
        )
        self._grant_evaluations(role, ["s3:GetObject", "s3:PutObject"])
        # The validation file: the prompts of Map children that failed for good are counted
        # as missing from its ids, never silently dropped.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadValidation", actions=["s3:GetObject"], resources=[self._validation()]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishEvaluationMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource-level permissions
                conditions={"StringEquals": {"cloudwatch:namespace": EVALUATION_NAMESPACE}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PromotionGate",
                actions=["ssm:GetParameter", "ssm:PutParameter"],
                resources=[self._parameter_arn(self.model_parameter)],
            )
        )
        self.topic.grant_publish(role)
        self._ack(
            role,
            "Resource::*",
            "Wildcard resource only where the action has no resource-level permissions: "
            f"PutMetricData (limited to the {EVALUATION_NAMESPACE} namespace by condition) and "
            "X-Ray trace upload.",
        )
        self._ack(
            role,
            "Action::kms:GenerateDataKey*",
            "Publishing to the encrypted notification topic needs data keys of the topic's own "
            "key (granted on that one key by grant_publish).",
        )

    def _grant_evaluations(self, role: iam.Role, actions: list[str]) -> None:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EvaluationObjects", actions=actions, resources=[self._evaluations()]
            )
        )
        role.add_to_policy(
            self._s3_key_statement("EncryptedObjects", ["kms:Decrypt", "kms:GenerateDataKey"])
        )
        self._ack_resource(
            role,
            self._evaluations(),
            "Reads and writes the evaluation results under the artifacts bucket's "
            "evaluations/ prefix; each evaluation writes a folder named after its job.",
        )

    # -- the state machine's role ---------------------------------------------------------

    def _grant_state_machine_data(self) -> None:
        """The key for the Distributed Map's reads (validation.jsonl) and result writes
        (their own statements, scoped in ``stacks.evaluation_flow``)."""
        role = self.state_machine
        role.add_to_policy(
            self._s3_key_statement("EncryptedObjects", ["kms:Decrypt", "kms:GenerateDataKey"])
        )

    def finish_state_machine(self, state_machine: sfn.StateMachine) -> None:
        """Acknowledge what aws-cdk-lib grants the state machine's role on its own."""
        stack = self._stack
        policy = self.state_machine.node.find_child("DefaultPolicy")
        for child in self.node.scope.node.children if self.node.scope else []:
            if isinstance(child, lambda_.Function):
                acknowledge(
                    policy,
                    f"AwsSolutions-IAM5[Resource::{nag_text(stack, child.function_arn)}:*]",
                    "aws-cdk-lib's LambdaInvoke grant covers the function's versions (':*'); "
                    "the state machine invokes the unqualified function only.",
                )
        results = self.staging.artifacts_bucket.arn_for_objects(f"{MAP_RESULTS_PREFIX}/*")
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{nag_text(stack, results)}]",
            "The Distributed Map's ResultWriter writes its manifest and result files under "
            f"{MAP_RESULTS_PREFIX}/ in the artifacts bucket, in a folder named after the Map Run.",
        )
        executions = (
            "The Distributed Map runs its children as executions of this state machine "
            "(names generated by Step Functions per Map Run): it describes, stops and "
            "redrives only those."
        )
        map_policy = state_machine.node.find_child("DistributedMapPolicy")
        machine = stack.get_logical_id(state_machine.node.default_child)  # type: ignore[arg-type]
        name = '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"' + machine + '"}]}]}'
        for child_executions in (":*", "/*:*"):
            acknowledge(
                map_policy,
                f"AwsSolutions-IAM5[Resource::arn:{nag_text(stack, stack.partition)}:states:"
                f"{stack.region}:{nag_text(stack, stack.account)}:execution:{name}"
                f"{child_executions}]",
                executions,
            )
        log_delivery = (
            "CloudWatch Logs delivery for the state machine (CreateLogDelivery and the other "
            "log-delivery actions) and X-Ray trace upload have no resource-level permissions."
        )
        acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", log_delivery)
        checkov_skip(policy, "CKV_AWS_111", log_delivery)
