"""The evaluation as synthesized: where it exists, the state machine's Distributed Map over the
staged validation file, its trigger, the functions' and state machine's least privilege, the
dashboard row and the outputs (fixture config only)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.config import ConfigError, parse_environment
from stacks.evaluation_flow import CONTEXT_KEYS, LAMBDA_TRANSIENT, MAP_RESULTS_PREFIX
from stacks.evaluation_models import base_inference_model
from stacks.lambda_code import bundle_record
from stacks.rft_stack import RftStack
from tests.conftest import cdk_context, resources_of, role_statements, template_text
from tests.lambda_loader import ROOT, load_handler
from tests.unit.test_observability import flatten
from tests.unit.test_stack_job import actions, by_sid

EVALUATING = {"staging": "openai", "prod": "openai", "nova-dev": "bedrock"}
VALIDATION_KEY_PREFIX = "datasets/gsm8k/"


def state_machine(template: Any) -> dict[str, Any]:
    """The evaluation state machine's properties (the job Provider has a waiter of its own)."""
    found: list[dict[str, Any]] = [
        r["Properties"]
        for r in resources_of(template, "AWS::StepFunctions::StateMachine").values()
        if r["Properties"].get("StateMachineName", "").endswith("-evaluation")
    ]
    [machine] = found
    return machine


def definition(template: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(template_text(state_machine(template)["DefinitionString"]))
    return parsed


def resources(statement: dict[str, Any]) -> list[str]:
    value = statement["Resource"]
    return [template_text(v) for v in (value if isinstance(value, list) else [value])]


def synth(env: str, **changes: Any) -> Template:
    """One fixture environment with ``changes`` merged into its raw settings (no nag packs)."""
    context = cdk_context()
    raw = context["environments"][env]
    for key, value in changes.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    flags = {k: v for k, v in context.items() if k not in ("environments", "ci")}
    app = cdk.App(context=flags)
    stack = RftStack(app, f"Variant-{env}", config=parse_environment(env, raw, ROOT))
    return Template.from_stack(stack)


# -- where -------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "staging", "prod", "nova-dev"])
def test_an_evaluation_exactly_where_the_environment_starts_a_job(
    templates: dict[str, Any], env: str
) -> None:
    names = [
        r["Properties"].get("StateMachineName")
        for r in resources_of(templates[env], "AWS::StepFunctions::StateMachine").values()
    ]
    assert (f"bedrock-rft-{env}-evaluation" in names) is (env in EVALUATING)


def test_no_evaluation_when_the_environment_turns_it_off() -> None:
    template = synth("staging", evaluation={"enabled": False})
    assert not [
        r
        for r in resources_of(template, "AWS::StepFunctions::StateMachine").values()
        if r["Properties"].get("StateMachineName", "").endswith("-evaluation")
    ]
    assert "EvaluationStateMachine" not in template.to_json().get("Outputs", {})
    collector = next(
        f["Properties"]
        for k, f in resources_of(template, "AWS::Lambda::Function").items()
        if k.startswith("ObservabilityCollector")
    )
    assert "EVALUATION_START_FUNCTION" not in collector["Environment"]["Variables"]


def test_without_validation_data_an_explicit_evaluation_fails_and_the_default_skips(
    tmp_path: Path,
) -> None:
    (tmp_path / "train.jsonl").write_text(
        (ROOT / "tests/fixtures/datasets/gsm8k/train.jsonl").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"evaluation.enabled = true: dataset .* no validation"):
        synth("staging", dataset=str(tmp_path), evaluation={"enabled": True})
    template = synth("staging", dataset=str(tmp_path))
    assert "EvaluationStateMachine" not in template.to_json().get("Outputs", {})
    assert "JobId" in template.to_json()["Outputs"]


# -- the state machine -------------------------------------------------------------------------


@pytest.mark.parametrize("env", sorted(EVALUATING))
def test_distributed_map_over_the_staged_validation_file(
    templates: dict[str, Any], env: str
) -> None:
    states = definition(templates[env])["States"]
    evaluate = states["EvaluatePrompts"]
    assert evaluate["Type"] == "Map"
    assert evaluate["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    reader = evaluate["ItemReader"]
    assert reader["Resource"].endswith(":states:::s3:getObject")
    assert reader["ReaderConfig"] == {"InputType": "JSONL"}  # no MaxItems: no limit set
    assert reader["Parameters"]["Bucket"].startswith("<StagingDatasets")
    key = reader["Parameters"]["Key"]
    assert key.startswith(VALIDATION_KEY_PREFIX) and key.endswith("/validation.jsonl")
    # the content-addressed key the dataset was staged under
    deployment = next(iter(resources_of(templates[env], "Custom::CDKBucketDeployment").values()))
    assert deployment["Properties"]["DestinationBucketKeyPrefix"] == key.rsplit("/", 1)[0] + "/"
    batcher = evaluate["ItemBatcher"]
    assert batcher["MaxItemsPerBatch"] == 10
    assert batcher["BatchInput"] == {f"{k}.$": f"$.context.{k}" for k in CONTEXT_KEYS}
    assert evaluate["MaxConcurrency"] == 10
    assert evaluate["ToleratedFailurePercentage"] == 5
    writer = evaluate["ResultWriter"]
    assert writer["Resource"].endswith(":states:::s3:putObject")
    assert writer["Parameters"]["Bucket"].startswith("<StagingArtifacts")
    assert writer["Parameters"]["Prefix"] == MAP_RESULTS_PREFIX
    [work] = evaluate["ItemProcessor"]["States"].values()
    assert work["Resource"].startswith("<EvaluationWork")
    assert work["Retry"][0]["ErrorEquals"] == LAMBDA_TRANSIENT
    assert "Lambda.TooManyRequestsException" in work["Retry"][0]["ErrorEquals"]


def test_the_map_takes_its_sizing_and_limit_from_the_config() -> None:
    template = synth(
        "staging",
        evaluation={
            "limit": 50,
            "items_per_batch": 4,
            "max_concurrency": 3,
            "tolerated_failure_percentage": 2.5,
        },
    )
    evaluate = definition(template)["States"]["EvaluatePrompts"]
    assert evaluate["ItemReader"]["ReaderConfig"] == {"InputType": "JSONL", "MaxItems": 50}
    assert evaluate["ItemBatcher"]["MaxItemsPerBatch"] == 4
    assert evaluate["MaxConcurrency"] == 3
    assert evaluate["ToleratedFailurePercentage"] == 2.5


def _path(states: dict[str, Any], start: str) -> list[str]:
    """The states from ``start`` along Next / Default (the happy path)."""
    path, name = [], start
    while name:
        path.append(name)
        state = states[name]
        name = state.get("Next") or state.get("Default")
        if state["Type"] == "Choice" and name == "WaitForDeployment":
            name = state["Choices"][0]["Next"]  # Active
    return path


def test_the_openai_flow_prepares_maps_and_aggregates(templates: dict[str, Any]) -> None:
    machine = definition(templates["staging"])
    states = machine["States"]
    assert machine["StartAt"] == "Prepare"
    assert _path(states, "Prepare") == [
        "Prepare",
        "CurrentJob",
        "EvaluatePrompts",
        "CollectResults",
        "Aggregate",
    ]
    assert states["Prepare"]["ResultPath"] == "$.context"
    assert states["CurrentJob"]["Choices"] == [
        {"Variable": "$.context.skip", "IsPresent": True, "Next": "NotCurrentJob"}
    ]
    assert states["NotCurrentJob"]["Type"] == "Succeed"
    assert states["CollectResults"]["Parameters"] == {
        "merged.$": "States.JsonMerge($.context, $.mapped, false)"
    }
    assert states["EvaluatePrompts"]["ResultPath"] == "$.mapped.map"
    assert states["Aggregate"]["InputPath"] == "$.merged"
    assert states["Aggregate"]["End"] is True
    assert not {"Serve", "ServeStatus"} & set(states)


def test_the_native_flow_serves_the_tuned_model_and_polls_a_bounded_number_of_times(
    templates: dict[str, Any],
) -> None:
    states = definition(templates["nova-dev"])["States"]
    assert _path(states, "Prepare") == [
        "Prepare",
        "CurrentJob",
        "Serve",
        "StartPolling",
        "DeploymentReady",
        "UseDeployment",
        "EvaluatePrompts",
        "CollectResults",
        "Aggregate",
    ]
    assert states["Serve"]["InputPath"] == "$.context"
    # a custom model not Active yet: serve fails with ModelNotActive, retried for ~30 minutes
    load_handler("evaluation")
    from rft_eval.serving import ModelNotActive

    [active] = [r for r in states["Serve"]["Retry"] if r["ErrorEquals"] == ["ModelNotActive"]]
    assert ModelNotActive.__name__ == "ModelNotActive"
    assert active["IntervalSeconds"] == 60 and active["BackoffRate"] == 1
    assert active["MaxAttempts"] * active["IntervalSeconds"] >= 1800
    ready = {
        c.get("StringEquals", c.get("NumericGreaterThanEquals")): c
        for c in states["DeploymentReady"]["Choices"]
    }
    assert ready["Active"]["Next"] == "UseDeployment"
    assert states[ready["Failed"]["Next"]]["Type"] == "Fail"
    [bound] = [c for c in states["DeploymentReady"]["Choices"] if "NumericGreaterThanEquals" in c]
    assert bound["Variable"] == "$.polls.count" and states[bound["Next"]]["Type"] == "Fail"
    assert states["DeploymentReady"]["Default"] == "WaitForDeployment"
    assert states["WaitForDeployment"]["Next"] == "ServeStatus"
    assert states["ServeStatus"]["Parameters"] == {
        "deployment_arn.$": "$.deployment.deployment_arn"
    }
    assert states["CountPoll"]["Next"] == "DeploymentReady"
    # the deployment ARN becomes the tuned model of the context every batch gets
    assert states["UseDeployment"]["InputPath"] == "$.deployment.deployment_arn"
    assert states["UseDeployment"]["ResultPath"] == "$.context.tuned_model"


@pytest.mark.parametrize("env", sorted(EVALUATING))
def test_the_state_machine_logs_encrypted_and_traces(templates: dict[str, Any], env: str) -> None:
    props = state_machine(templates[env])
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is False
    log_group_id = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"][
        "Fn::GetAtt"
    ][0]
    log_group = resources_of(templates[env], "AWS::Logs::LogGroup")[log_group_id]
    assert "KmsKeyId" in log_group["Properties"]


def test_the_context_keys_are_the_prepare_functions() -> None:
    load_handler("evaluation")
    from rft_eval.prepare import CONTEXT_KEYS as PREPARED

    assert PREPARED == CONTEXT_KEYS


# -- the functions -----------------------------------------------------------------------------


@pytest.mark.parametrize("env", sorted(EVALUATING))
def test_the_functions_run_the_evaluation_bundle_on_arm64_python_313(
    templates: dict[str, Any], env: str
) -> None:
    functions = {
        k: v["Properties"]
        for k, v in resources_of(templates[env], "AWS::Lambda::Function").items()
        if k.startswith("Evaluation")
    }
    handlers = {p["Handler"] for p in functions.values()}
    expected = {"handler.start", "handler.prepare", "handler.work", "handler.aggregate"}
    if EVALUATING[env] == "bedrock":
        expected |= {"handler.serve", "handler.serve_status"}
    assert handlers == expected
    for props in functions.values():
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "KmsKeyArn" in props
        assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "evaluation"
    # The aggregation runs the report bundle (the only one with matplotlib), every other
    # function the evaluation bundle (issue 21).
    codes = {p["Handler"]: json.dumps(p["Code"], sort_keys=True) for p in functions.values()}
    report = codes.pop("handler.aggregate")
    assert len(set(codes.values())) == 1 and report not in codes.values()
    for name, code in (("evaluation_report", report), ("evaluation", next(iter(codes.values())))):
        # The asset's key is the sha256 of the custom hash (the bundle's digest).
        key = hashlib.sha256(bundle_record(name).digest.encode()).hexdigest()
        assert f'"{key}.zip"' in code, name
    [work] = [p for p in functions.values() if p["Handler"] == "handler.work"]
    assert work["Timeout"] == 900
    # The worker's deadlines: its model calls' read timeout and the reward function's timeout.
    variables = work["Environment"]["Variables"]
    assert (variables["REQUEST_TIMEOUT_SECONDS"], variables["REWARD_TIMEOUT_SECONDS"]) == (
        "300",
        "300",
    )


def test_prepare_gets_the_stacks_settings(templates: dict[str, Any]) -> None:
    [prepare] = [
        v["Properties"]
        for v in resources_of(templates["nova-dev"], "AWS::Lambda::Function").values()
        if v["Properties"]["Handler"] == "handler.prepare"
    ]
    variables = prepare["Environment"]["Variables"]
    assert variables["BASE_MODEL"] == "us.amazon.nova-2-lite-v1:0"
    assert variables["JOB_PARAMETER"] == "/bedrock-rft/nova-dev/job"
    assert variables["MODEL_PARAMETER"] == "/bedrock-rft/nova-dev/model"
    assert variables["VALIDATION_KEY"].endswith("/validation.jsonl")
    assert variables["EVALUATIONS_PREFIX"] == "evaluations/"
    assert variables["METRICS_NAMESPACE"] == "BedrockRft/Evaluation"
    settings = json.loads(variables["EVALUATION_SETTINGS"])
    assert settings == {
        "samples_per_prompt": 1,
        "temperature": 0.0,
        "max_tokens": 4096,
        "pass_threshold": 0.5,
        "limit": None,
        "bootstrap_resamples": 10000,
        "seed": 0,
        "promote_when": {
            "min_improvement": 0.0,
            "require_ci_above_zero": True,
            "min_prompts": 30,
            "max_excluded_share": 0.05,
            "compare_with_promoted": True,
        },
    }
    assert template_text(variables["REWARD_FUNCTION_ARN"]).startswith(
        "<RewardFunctionCurrentVersion"
    )


# -- triggers ----------------------------------------------------------------------------------


def test_the_native_trigger_matches_this_environments_completed_jobs(
    templates: dict[str, Any],
) -> None:
    template = templates["nova-dev"]
    [rule] = [
        r["Properties"]
        for k, r in resources_of(template, "AWS::Events::Rule").items()
        if k.startswith("EvaluationJobCompletedRule")
    ]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.bedrock"]
    assert pattern["detail-type"] == ["Model Customization Job State Change"]
    assert pattern["detail"]["jobStatus"] == ["Completed"]
    assert pattern["detail"]["jobName"] == [{"prefix": "rft-nova-dev-"}]
    [output] = pattern["detail"]["outputDataConfig"]["s3Uri"]
    assert template_text(output["prefix"]) == "s3://<StagingArtifactsE00614B5>/output/"
    [target] = rule["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("EvaluationStart")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_openai_environments_have_no_event_trigger(templates: dict[str, Any], env: str) -> None:
    assert not [
        k for k in resources_of(templates[env], "AWS::Events::Rule") if k.startswith("Evaluation")
    ]


@pytest.mark.parametrize("env", sorted(EVALUATING))
def test_the_collector_may_invoke_the_start_function_only(
    templates: dict[str, Any], env: str
) -> None:
    template = templates[env]
    collector = next(
        f["Properties"]
        for k, f in resources_of(template, "AWS::Lambda::Function").items()
        if k.startswith("ObservabilityCollector")
    )
    start = collector["Environment"]["Variables"]["EVALUATION_START_FUNCTION"]
    assert start["Ref"].startswith("EvaluationStart")
    statement = by_sid(role_statements(template, "ObservabilityCollectorRole"))["RequestEvaluation"]
    assert actions(statement) == ["lambda:InvokeFunction"]
    assert resources(statement) == [f"<{start['Ref']}.Arn>"]


# -- least privilege ---------------------------------------------------------------------------


def test_start_may_only_start_this_state_machine(templates: dict[str, Any]) -> None:
    statements = by_sid(role_statements(templates["staging"], "EvaluationRolesStartRole"))
    assert set(statements) == {"WriteOwnLogs", "StartEvaluation"}
    start = statements["StartEvaluation"]
    assert actions(start) == ["states:StartExecution"]
    assert resources(start) == [
        "arn:aws:states:us-west-2:<AWS::AccountId>:stateMachine:bedrock-rft-staging-evaluation"
    ]


def test_prepare_reads_only_the_job_record(templates: dict[str, Any]) -> None:
    statements = by_sid(role_statements(templates["staging"], "EvaluationRolesPrepareRole"))
    assert set(statements) == {"WriteOwnLogs", "ReadJobRecord"}
    assert actions(statements["ReadJobRecord"]) == ["ssm:GetParameter"]
    assert resources(statements["ReadJobRecord"]) == [
        "arn:aws:ssm:us-west-2:<AWS::AccountId>:parameter/bedrock-rft/staging/job"
    ]


def test_the_openai_worker_invokes_reward_versions_and_the_two_models_only(
    templates: dict[str, Any],
) -> None:
    statements = by_sid(role_statements(templates["staging"], "EvaluationRolesWorkRole"))
    assert set(statements) == {
        "WriteOwnLogs",
        "InvokeRewardVersions",
        "ReadValidation",
        "EvaluationObjects",
        "EncryptedObjects",
        "InferenceOfBaseAndTunedModels",
        "InferenceProjectReads",
        "UseShortTermApiKey",
    }
    reward = statements["InvokeRewardVersions"]
    assert actions(reward) == ["lambda:InvokeFunction"]
    assert resources(reward) == ["<RewardFunction1B502C03.Arn>:*"]  # versions, never unqualified
    inference = statements["InferenceOfBaseAndTunedModels"]
    assert actions(inference) == ["bedrock-mantle:CreateInference"]
    assert inference["Condition"] == {
        "StringLike": {"bedrock-mantle:Model": ["openai.gpt-oss-20b", "ft:openai.gpt-oss-20b:*"]}
    }
    assert resources(statements["ReadValidation"])[0].endswith("/validation.jsonl")
    assert resources(statements["EvaluationObjects"]) == [
        "<StagingArtifactsE00614B5.Arn>/evaluations/*"
    ]
    assert actions(statements["EvaluationObjects"]) == ["s3:GetObject", "s3:PutObject"]
    assert statements["EncryptedObjects"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}
    }


def test_the_native_worker_invokes_the_base_profile_and_deployments_only(
    templates: dict[str, Any],
) -> None:
    statements = by_sid(role_statements(templates["nova-dev"], "EvaluationRolesWorkRole"))
    assert not {"InferenceOfBaseAndTunedModels", "UseShortTermApiKey"} & set(statements)
    profile = (
        "arn:aws:bedrock:us-east-1:<AWS::AccountId>:inference-profile/us.amazon.nova-2-lite-v1:0"
    )
    assert resources(statements["InvokeBaseModelProfile"]) == [profile]
    through = statements["InvokeBaseModelThroughProfile"]
    assert resources(through) == ["arn:aws:bedrock:*::foundation-model/amazon.nova-2-lite-v1:0"]
    assert json.loads(json.dumps(through["Condition"]["StringEquals"])) == {
        "bedrock:InferenceProfileArn": {
            "Fn::Join": [
                "",
                [
                    "arn:aws:bedrock:us-east-1:",
                    {"Ref": "AWS::AccountId"},
                    ":inference-profile/us.amazon.nova-2-lite-v1:0",
                ],
            ]
        }
    }
    assert resources(statements["InvokeTunedDeployments"]) == [
        "arn:aws:bedrock:us-east-1:<AWS::AccountId>:custom-model-deployment/*"
    ]
    for sid in ("InvokeBaseModelThroughProfile", "InvokeTunedDeployments"):
        assert actions(statements[sid]) == ["bedrock:InvokeModel"]
    # AWS's inference prerequisites: GetInferenceProfile for inference through a profile
    assert actions(statements["InvokeBaseModelProfile"]) == [
        "bedrock:GetInferenceProfile",
        "bedrock:InvokeModel",
    ]
    assert_key_through_bedrock(statements)


def assert_key_through_bedrock(statements: dict[str, Any]) -> None:
    """The tuned model's key (the environment's), only through Bedrock in its region."""
    key = statements["TunedModelKeyThroughBedrock"]
    assert actions(key) == ["kms:Decrypt", "kms:GenerateDataKey"]
    [arn] = resources(key)
    assert arn.startswith("<StagingKey") and arn.endswith(".Arn>")
    assert key["Condition"] == {
        "StringEquals": {"kms:ViaService": "bedrock.us-east-1.amazonaws.com"}
    }


def test_aggregate_publishes_gates_and_notifies_within_its_scope(templates: dict[str, Any]) -> None:
    statements = role_statements(templates["staging"], "EvaluationRolesAggregateRole")
    named = by_sid(statements)
    assert resources(named["PromotionGate"]) == [
        "arn:aws:ssm:us-west-2:<AWS::AccountId>:parameter/bedrock-rft/staging/model"
    ]
    assert actions(named["PromotionGate"]) == ["ssm:GetParameter", "ssm:PutParameter"]
    assert named["PublishEvaluationMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "BedrockRft/Evaluation"}
    }
    assert named["ListEvaluationParts"]["Condition"] == {
        "StringLike": {"s3:prefix": ["evaluations/*"]}
    }
    [publish] = [s for s in statements if s.get("Action") == "sns:Publish"]
    assert resources(publish) == ["<ObservabilityTopicFFC7823B>"]
    # The validation file, to count the prompts of failed Map children: that file only.
    assert actions(named["ReadValidation"]) == ["s3:GetObject"]
    [validation] = resources(named["ReadValidation"])
    assert validation.startswith("<StagingDatasets525BAF9E.Arn>/datasets/gsm8k/")
    assert validation.endswith("/validation.jsonl")


def test_the_serve_role_follows_the_contract(templates: dict[str, Any]) -> None:
    template = templates["nova-dev"]
    deployments = "arn:aws:bedrock:us-east-1:<AWS::AccountId>:custom-model-deployment/*"
    serve = by_sid(role_statements(template, "EvaluationRolesServeRole"))
    assert resources(serve["DeployCustomModels"]) == [
        deployments,
        "arn:aws:bedrock:us-east-1:<AWS::AccountId>:custom-model/*",
    ]
    assert actions(serve["FollowAndTagDeployments"]) == [
        "bedrock:GetCustomModelDeployment",
        "bedrock:TagResource",
    ]
    # serve waits for the custom model to be Active before deploying it
    assert actions(serve["FollowModels"]) == ["bedrock:GetCustomModel"]
    assert resources(serve["FollowModels"]) == [
        "arn:aws:bedrock:us-east-1:<AWS::AccountId>:custom-model/*"
    ]
    assert_key_through_bedrock(serve)


def test_the_serve_function_is_deleted_before_the_deployment_clean_up_runs(
    templates: dict[str, Any],
) -> None:
    """No deployment can appear after the clean-up deleted the environment's deployments."""
    functions = resources_of(templates["nova-dev"], "AWS::Lambda::Function")
    [serve] = [f for f in functions.values() if f["Properties"]["Handler"] == "handler.serve"]
    [cleanup] = resources_of(templates["nova-dev"], "Custom::BedrockRftDeploymentCleanup")
    assert cleanup in serve["DependsOn"]


@pytest.mark.parametrize("env", sorted(EVALUATING))
def test_the_state_machine_reads_the_validation_file_and_writes_its_prefix_only(
    templates: dict[str, Any], env: str
) -> None:
    statements = role_statements(templates[env], "EvaluationRolesStateMachineRole")
    named = by_sid(statements)
    assert actions(named["ReadValidation"]) == ["s3:GetObject"]
    [validation] = resources(named["ReadValidation"])
    assert validation.startswith("<StagingDatasets525BAF9E.Arn>/datasets/gsm8k/")
    assert validation.endswith("/validation.jsonl")
    assert resources(named["WriteMapResults"]) == [
        f"<StagingArtifactsE00614B5.Arn>/{MAP_RESULTS_PREFIX}/*"
    ]
    # what aws-cdk-lib's ResultWriterV2 grants: reading back matters on a redrive
    assert actions(named["WriteMapResults"]) == [
        "s3:AbortMultipartUpload",
        "s3:GetObject",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
    ]
    # no statement on a whole bucket
    every = [r for s in statements for r in resources(s)]
    assert not [r for r in every if r.endswith((".Arn>/*", "StagingDatasets525BAF9E>/*"))]


# -- dashboard, alarms, outputs ----------------------------------------------------------------


@pytest.mark.parametrize("env", sorted(EVALUATING))
def test_the_dashboard_row_and_the_failed_executions_alarm(
    templates: dict[str, Any], env: str
) -> None:
    template = templates[env]
    [dashboard] = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    widgets = json.loads(flatten(dashboard["Properties"]["DashboardBody"]))["widgets"]
    by_title = {w["properties"].get("title"): w for w in widgets}
    reward = by_title["Evaluation: mean reward (base vs tuned)"]["properties"]["metrics"]
    assert [m[:6] for m in reward] == [
        ["BedrockRft/Evaluation", "EvalRewardMean", "Environment", env, "Model", model]
        for model in ("base", "tuned")
    ]
    assert "Evaluation: pass rate (reward >= 0.5)" in by_title
    promoted = by_title["Evaluation: promoted (1) or not (0), executions"]["properties"]["metrics"]
    assert promoted[0][:4] == ["BedrockRft/Evaluation", "EvalPromoted", "Environment", env]
    [topic_id] = resources_of(template, "AWS::SNS::Topic")
    [failed] = [
        a["Properties"]
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == f"bedrock-rft-{env}-EvaluationFailed"
    ]
    assert failed["MetricName"] == "ExecutionsFailed" and failed["Namespace"] == "AWS/States"
    assert failed["AlarmActions"] == [{"Ref": topic_id}]


@pytest.mark.parametrize("env", sorted(EVALUATING))
def test_outputs_name_the_state_machine_and_the_model_parameter(
    templates: dict[str, Any], env: str
) -> None:
    outputs = templates[env].to_json()["Outputs"]
    assert outputs["ModelParameter"]["Value"] == f"/bedrock-rft/{env}/model"
    assert outputs["EvaluationStateMachine"]["Value"]["Ref"].startswith("EvaluationStateMachine")


# -- model ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "changes", "expected"),
    [
        ("staging", {}, "openai.gpt-oss-20b"),
        ("nova-dev", {}, "us.amazon.nova-2-lite-v1:0"),
        (
            "nova-dev",
            {"base_inference_model": "global.amazon.nova-2-lite-v1:0"},
            "global.amazon.nova-2-lite-v1:0",
        ),
    ],
)
def test_the_base_model_is_called_by_its_inference_id(
    env: str, changes: dict[str, Any], expected: str
) -> None:
    raw = cdk_context()["environments"][env]
    raw["evaluation"] = changes
    assert base_inference_model(parse_environment(env, raw, ROOT)) == expected


def test_a_malformed_base_inference_model_is_one_config_line() -> None:
    raw = cdk_context()["environments"]["nova-dev"]
    raw["evaluation"] = {"base_inference_model": "two words"}
    with pytest.raises(ConfigError) as raised:
        parse_environment("nova-dev", raw, ROOT)
    assert len(raised.value.lines) == 1
    assert "evaluation.base_inference_model" in raised.value.lines[0]
