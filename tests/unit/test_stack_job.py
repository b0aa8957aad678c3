"""The job custom resource as synthesized: timeouts, handler placement, least privilege, and
the contract with the handler (the fixtures' properties are what the stacks send)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import build_app
from stacks.config import ConfigError, EnvironmentConfig
from stacks.job import (
    CREATE_JOB_ACTION,
    MANTLE_ACTIONS,
    QUERY_INTERVAL,
    SERVICE_TIMEOUT,
    TOTAL_TIMEOUT,
    WAIT_TIMEOUT,
    check_job_settings,
)
from tests.conftest import cdk_context, resources_of, template_text
from tests.job_support import fixture_event

STARTING = {"staging": "openai", "prod": "openai", "nova-dev": "bedrock"}
RESOURCE_TYPE = "Custom::BedrockRftJob"


def job_resource(template: Any) -> dict[str, Any]:
    [resource] = resources_of(template, RESOURCE_TYPE).values()
    return resource


def handler_functions(template: Any) -> dict[str, dict[str, Any]]:
    return {
        k: v
        for k, v in resources_of(template, "AWS::Lambda::Function").items()
        if k.startswith(("JobOnEvent", "JobIsComplete"))
    }


def handler_statements(template: Any) -> list[dict[str, Any]]:
    """Every statement of every policy attached to the job handler role."""
    [role_id] = [
        k for k in resources_of(template, "AWS::IAM::Role") if k.startswith("JobHandlerRole")
    ]
    statements = []
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def by_sid(statements: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in statements if "Sid" in s}


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else list(value)


# -- timeouts and placement ------------------------------------------------------------------


def test_a_job_resource_exactly_where_the_environment_starts_one(
    templates: dict[str, Any],
) -> None:
    assert resources_of(templates["dev"], RESOURCE_TYPE) == {}  # dev: job.start is false
    for env in STARTING:
        assert job_resource(templates[env])


@pytest.mark.parametrize("env", list(STARTING))
def test_service_timeout_is_within_cloudformations_hour(
    templates: dict[str, Any], env: str
) -> None:
    props = job_resource(templates[env])["Properties"]
    assert 0 < int(props["ServiceTimeout"]) <= 3600


def test_the_waits_nest_inside_each_other() -> None:
    """Handler deadline < Provider timeout < custom resource timeout, with polls to spare."""
    assert WAIT_TIMEOUT.to_seconds() + 2 * QUERY_INTERVAL.to_seconds() < TOTAL_TIMEOUT.to_seconds()
    assert TOTAL_TIMEOUT.to_seconds() < SERVICE_TIMEOUT.to_seconds() <= 3600


@pytest.mark.parametrize("env", list(STARTING))
def test_handler_functions_run_outside_a_vpc_on_the_bundled_runtime(
    templates: dict[str, Any], env: str
) -> None:
    functions = handler_functions(templates[env])
    handlers = sorted(f["Properties"]["Handler"] for f in functions.values())
    assert handlers == ["handler.is_complete", "handler.on_event"]
    for function in functions.values():
        props = function["Properties"]
        assert "VpcConfig" not in props
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "KmsKeyArn" in props
        variables = props["Environment"]["Variables"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == "job"
        assert float(variables["JOB_WAIT_TIMEOUT_SECONDS"]) == WAIT_TIMEOUT.to_seconds()


@pytest.mark.parametrize("env", list(STARTING))
def test_the_job_waits_for_the_dataset_upload(templates: dict[str, Any], env: str) -> None:
    depends = job_resource(templates[env]).get("DependsOn", [])
    assert any(d.startswith("StagingDatasetCustomResource") for d in depends), depends


@pytest.mark.parametrize("env", list(STARTING))
def test_the_handler_keeps_its_permissions_until_the_job_is_deleted(
    templates: dict[str, Any], env: str
) -> None:
    """CloudFormation deletes in reverse dependency order: every policy of the handler role
    must outlive the job resource, or Delete could not stop the job."""
    depends = set(job_resource(templates[env]).get("DependsOn", []))
    [role_id] = [
        k for k in resources_of(templates[env], "AWS::IAM::Role") if k.startswith("JobHandlerRole")
    ]
    policies = {
        k
        for k, v in resources_of(templates[env], "AWS::IAM::Policy").items()
        if {"Ref": role_id} in v["Properties"]["Roles"]
    }
    assert len(policies) == 2
    assert policies | {role_id} <= depends


@pytest.mark.parametrize("env", list(STARTING))
def test_the_job_resource_keeps_its_logical_id(templates: dict[str, Any], env: str) -> None:
    """A new logical id would make CloudFormation create a second job and delete the first."""
    assert set(resources_of(templates[env], RESOURCE_TYPE)) == {"JobB9D00F9F"}


@pytest.mark.parametrize("env", list(STARTING))
def test_outputs_name_the_job_and_where_it_is_recorded(templates: dict[str, Any], env: str) -> None:
    outputs = templates[env].to_json()["Outputs"]
    job_id = outputs["JobId"]
    [resource_id] = resources_of(templates[env], RESOURCE_TYPE)
    assert job_id["Value"] == {"Ref": resource_id}
    assert outputs["JobBackend"]["Value"] == STARTING[env]
    assert outputs["JobRecordParameter"]["Value"] == f"/bedrock-rft/{env}/job"
    command = template_text(outputs["JobStatusCommand"]["Value"])
    assert f"<{resource_id}>" in command


# -- least privilege -----------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_openai_handler_permissions(templates: dict[str, Any], env: str) -> None:
    statements = handler_statements(templates[env])
    sids = by_sid(statements)
    every_action = {a for s in statements for a in actions(s)}
    assert not any(a.endswith("*") for a in every_action)
    assert not any(a.startswith(("bedrock:Create", "bedrock:Stop", "iam:")) for a in every_action)

    read = sids["ReadDataset"]
    assert actions(read) == ["s3:GetObject"]
    digest = job_resource(templates[env])["Properties"]["DatasetDigest"]
    assert template_text(read["Resource"]).startswith("<StagingDatasets")
    assert template_text(read["Resource"]).endswith(f".Arn>/datasets/gsm8k/{digest}/*")
    assert actions(sids["InvokeGrader"]) == ["lambda:InvokeFunction"]
    grader = sids["InvokeGrader"]["Resource"]
    assert "Ref" in grader and grader["Ref"].startswith("RewardFunctionCurrentVersion")
    assert sorted(actions(sids["FilesAndFineTuningJobs"])) == sorted(MANTLE_ACTIONS)
    assert actions(sids["UseShortTermApiKey"]) == ["bedrock-mantle:CallWithBearerToken"]
    assert actions(sids["CreateFineTuningJobOfBaseModel"]) == [CREATE_JOB_ACTION]
    assert sids["DecryptDatasetThroughS3"]["Condition"]["StringEquals"]["kms:ViaService"] == (
        "s3.us-west-2.amazonaws.com"
    )
    record = sids["JobRecord"]
    assert template_text(record["Resource"]).endswith(f":parameter/bedrock-rft/{env}/job")


def test_bedrock_handler_permissions(templates: dict[str, Any]) -> None:
    statements = handler_statements(templates["nova-dev"])
    sids = by_sid(statements)
    every_action = {a for s in statements for a in actions(s)}
    assert not any(a.endswith("*") for a in every_action)
    assert not any(a.startswith(("bedrock-mantle:", "s3:")) for a in every_action)
    assert "bedrock:DeleteCustomModel" not in every_action  # the model is kept by default

    create = sids["CreateJob"]
    assert sorted(actions(create)) == ["bedrock:CreateModelCustomizationJob", "bedrock:TagResource"]
    resources = [template_text(r) for r in create["Resource"]]
    assert any(r.endswith("::foundation-model/amazon.nova-2-lite-v1:0:256k") for r in resources)
    assert all(":bedrock:us-east-1:" in r for r in resources)
    follow = sids["FollowAndStopJob"]
    assert template_text(follow["Resource"]).endswith(":model-customization-job/*")

    passrole = sids["PassServiceRole"]
    assert actions(passrole) == ["iam:PassRole"]
    assert template_text(passrole["Resource"]).startswith("<BedrockServiceRole")
    assert passrole["Condition"] == {
        "StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}
    }
    assert actions(sids["FindJobsOfThisIdentity"]) == ["bedrock:ListModelCustomizationJobs"]
    key = sids["UseModelKeyThroughBedrock"]
    assert key["Condition"]["StringEquals"]["kms:ViaService"] == "bedrock.us-east-1.amazonaws.com"


@pytest.mark.parametrize("env", list(STARTING))
def test_wildcard_resources_only_where_no_resource_level_permission_exists(
    templates: dict[str, Any], env: str
) -> None:
    allowed = {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "bedrock:ListModelCustomizationJobs",
        "bedrock-mantle:CallWithBearerToken",
    }
    for statement in handler_statements(templates[env]):
        if statement["Resource"] == "*":
            assert set(actions(statement)) <= allowed, statement


@pytest.mark.parametrize("env", list(STARTING))
def test_the_handler_reads_only_its_own_stacks_status(templates: dict[str, Any], env: str) -> None:
    statements = handler_statements(templates[env])
    stack_statements = [
        s for s in statements if any(a.startswith("cloudformation:") for a in actions(s))
    ]
    assert [s["Sid"] for s in stack_statements] == ["ReadOwnStackStatus"]
    (statement,) = stack_statements
    assert actions(statement) == ["cloudformation:DescribeStacks"]
    assert statement["Resource"] == {"Ref": "AWS::StackId"}


# -- the contract with the handler ---------------------------------------------------------------


FIXTURE_ENV = {"openai": "staging", "bedrock": "nova-dev"}
# Values that are content digests or deploy-time references differ from the fixtures'
# example values by design; everything else must match the synthesized stack exactly.
EXAMPLE_VALUES = {
    "ServiceToken",
    "TrainingDataUri",
    "ValidationDataUri",
    "OutputDataUri",
    "GraderFunctionArn",
    "RoleArn",
    "KmsKeyArn",
    "DatasetDigest",
    "GraderDigest",
}


@pytest.mark.parametrize("backend", ["openai", "bedrock"])
def test_fixture_properties_match_the_synthesized_resource(
    templates: dict[str, Any], backend: str
) -> None:
    synthesized = job_resource(templates[FIXTURE_ENV[backend]])["Properties"]
    fixture = fixture_event(backend)
    assert set(fixture["ResourceProperties"]) == set(synthesized), (
        "tests/fixtures/cfn/job-create-{backend}.json drifted from the template"
    )
    for key, value in synthesized.items():
        if key not in EXAMPLE_VALUES:
            expected = value if isinstance(value, (dict, list)) else str(value)
            assert fixture["ResourceProperties"][key] == expected, key
    assert fixture["ResourceType"] == "AWS::CloudFormation::CustomResource"


@pytest.mark.parametrize("backend", ["openai", "bedrock"])
def test_the_handler_accepts_what_the_stack_sends(templates: dict[str, Any], backend: str) -> None:
    """The synthesized properties (references replaced by the fixture's examples) parse."""
    from tests.job_support import job_modules

    job_modules()
    from rft_job.spec import parse_spec

    synthesized = job_resource(templates[FIXTURE_ENV[backend]])["Properties"]
    example = fixture_event(backend)["ResourceProperties"]
    resolved = {
        k: (example[k] if isinstance(v, dict) and k != "JobTags" else v)
        for k, v in synthesized.items()
    }
    resolved["ServiceTimeout"] = str(resolved["ServiceTimeout"])
    spec = parse_spec(resolved)
    assert spec.backend == backend
    assert spec.hyperparameters == json.loads(synthesized["Hyperparameters"])


# -- synth-time checks ---------------------------------------------------------------------------


def config(env: str, **changes: Any) -> EnvironmentConfig:
    raw = {**cdk_context()["environments"][env], **changes}
    return EnvironmentConfig.model_validate({"name": env, **raw})


def test_the_openai_backend_cannot_delete_models() -> None:
    with pytest.raises(ConfigError, match=r"job.delete_model_on_destroy = true: .*bedrock"):
        check_job_settings(config("staging", job={"delete_model_on_destroy": True}))


def test_a_vpc_applies_to_the_native_backend_only() -> None:
    vpc = {"subnet_ids": ["subnet-0a1b2c3d"], "security_group_ids": ["sg-0a1b2c3d"]}
    with pytest.raises(ConfigError, match=r"job.subnet_ids: a VPC applies to backend bedrock"):
        check_job_settings(config("staging", job=vpc))
    check_job_settings(config("nova-dev", job=vpc))


def test_subnets_and_security_groups_come_together() -> None:
    with pytest.raises(ValueError, match="set both or neither"):
        config("nova-dev", job={"subnet_ids": ["subnet-0a1b2c3d"]})


def test_hyperparameters_out_of_range_fail_synth() -> None:
    with pytest.raises(ValueError, match="batchSize"):
        check_job_settings(config("nova-dev", hyperparameters={"batchSize": 8}))


def test_undocumented_hyperparameters_fail_synth_without_the_opt_in() -> None:
    with pytest.raises(ConfigError, match=r"hyperparameters\.reasoning_effort = \"high\": not "):
        check_job_settings(config("staging", hyperparameters={"reasoning_effort": "high"}))
    check_job_settings(
        config(
            "staging",
            hyperparameters={"reasoning_effort": "high"},
            job={"send_undocumented_fields": True},
        )
    )


def test_only_an_opted_in_openai_environment_sends_the_validation_split(
    templates: dict[str, Any], tmp_path: Path
) -> None:
    """The OpenAI-compatible API documents no validation_file: without the opt-in the split
    is neither sent nor part of the job's identity; the native API always takes it."""
    staging = job_resource(templates["staging"])["Properties"]
    assert "ValidationDataUri" not in staging
    assert staging["SendUndocumentedFields"] == "false"
    assert "ValidationDataUri" in job_resource(templates["nova-dev"])["Properties"]

    context = cdk_context()
    opted = {**context["environments"]["staging"], "job": {"send_undocumented_fields": True}}
    context["environments"] = {"staging": opted}
    [stack] = build_app(cdk.App(outdir=str(tmp_path), context=context))
    sent = job_resource(Template.from_stack(stack))["Properties"]
    assert "ValidationDataUri" in sent
    assert sent["SendUndocumentedFields"] == "true"
