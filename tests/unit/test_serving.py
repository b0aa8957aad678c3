"""Serving the tuned model (native backend): find-or-create of the on-demand custom model
deployment, its status, and the clean-up that deletes the environment's deployments. Every
Bedrock call runs through botocore's Stubber, which checks each request against the real
service model (``bedrock/2023-04-20``) of the pinned botocore."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from tests.lambda_loader import LambdaContext, load_handler

REGION = "us-east-1"
ACCOUNT = "123456789012"
ENVIRONMENT = "nova-dev"
MODEL = "amazon.nova-2-lite-v1:0:256k"
JOB_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-customization-job/{MODEL}/a1b2c3d4e5f6"
MODEL_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/{MODEL}/f6e5d4c3b2a1"
DEPLOYMENT_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model-deployment/abcdefghijkl"
OTHER_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model-deployment/mnopqrstuvwx"
THIRD_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model-deployment/yz0123456789"
CREATED = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
NAME = "rft-nova-dev-a1b2c3d4e5f6"


def shape_pattern(shape: str) -> tuple[re.Pattern[str], int]:
    """The pattern (anchored, as the service applies it) and maximum length of a request
    shape of botocore's Bedrock model."""
    model = botocore.session.get_session().get_service_model("bedrock")
    metadata = model.shape_for(shape).metadata
    return re.compile(f"(?:{metadata['pattern']})"), int(metadata["max"])


@pytest.fixture
def modules(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``rft_eval.serving`` with fake credentials and a fresh client cache."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    load_handler("evaluation")
    from rft_eval import serving

    serving.bedrock_client.cache_clear()
    yield serving
    serving.bedrock_client.cache_clear()


@pytest.fixture
def stub(modules: ModuleType) -> Iterator[Stubber]:
    """The serving module's Bedrock client under a Stubber; every stubbed call must happen."""
    with Stubber(modules.bedrock_client(REGION)) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def summary(arn: str, name: str, status: str = "Active", **extra: Any) -> dict[str, Any]:
    return {
        "customModelDeploymentArn": arn,
        "customModelDeploymentName": name,
        "modelArn": MODEL_ARN,
        "createdAt": CREATED,
        "status": status,
        **extra,
    }


def got(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "customModelDeploymentArn": DEPLOYMENT_ARN,
        "modelDeploymentName": NAME,
        "modelArn": MODEL_ARN,
        "createdAt": CREATED,
        "status": status,
        **extra,
    }


def model(status: str | None = "Active", **extra: Any) -> dict[str, Any]:
    """GetCustomModel's answer for the job's custom model."""
    found = {"modelArn": MODEL_ARN, "modelName": "tuned", "creationTime": CREATED, **extra}
    return found if status is None else {**found, "modelStatus": status}


def expect_model(stub: Stubber, status: str | None = "Active", **extra: Any) -> None:
    stub.add_response("get_custom_model", model(status, **extra), {"modelIdentifier": MODEL_ARN})


def expect_create(stub: Stubber, serving: ModuleType, *, looked_up: bool = False) -> None:
    """The first attempt: nothing of that name, the model Active, one create, its status
    (``looked_up``: the listing and the model check were stubbed already)."""
    if not looked_up:
        stub.add_response(
            "list_custom_model_deployments",
            {"modelDeploymentSummaries": []},
            {"nameContains": NAME},
        )
        expect_model(stub)
    stub.add_response(
        "create_custom_model_deployment",
        {"customModelDeploymentArn": DEPLOYMENT_ARN},
        {
            "modelDeploymentName": NAME,
            "modelArn": MODEL_ARN,
            "description": f"bedrock-rft environment {ENVIRONMENT}: tuned model of {JOB_ARN}",
            "tags": [
                {"key": "bedrock-rft:environment", "value": ENVIRONMENT},
                {"key": "bedrock-rft:job", "value": "a1b2c3d4e5f6"},
            ],
            "clientRequestToken": serving.request_token(ENVIRONMENT, JOB_ARN, MODEL_ARN),
        },
    )
    stub.add_response(
        "get_custom_model_deployment",
        got("Creating"),
        {"customModelDeploymentIdentifier": DEPLOYMENT_ARN},
    )


def context(**overrides: Any) -> dict[str, Any]:
    """The evaluation context as ``prepare`` hands it to ``serve`` (the contract's keys)."""
    return {
        "environment": ENVIRONMENT,
        "region": REGION,
        "backend": "bedrock",
        "job_id": JOB_ARN,
        "base_model": MODEL,
        "tuned_model": None,
        "custom_model_arn": MODEL_ARN,
        **overrides,
    }


# -- names and tokens -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "job_id"),
    [
        (ENVIRONMENT, JOB_ARN),
        ("dev", "ftjob-0123456789abcdef"),
        ("a--b-", "job__with..odd//chars-"),
        ("e" * 20, "x" * 200),
        ("prod", "arn:aws:bedrock:us-east-1:1:model-customization-job/m/" + "_" * 5),
    ],
)
def test_names_and_tokens_fit_the_service_model(
    modules: ModuleType, environment: str, job_id: str
) -> None:
    name_pattern, name_max = shape_pattern("ModelDeploymentName")
    name = modules.deployment_name(environment, job_id)
    assert name_pattern.fullmatch(name) and len(name) <= name_max, name
    assert name.startswith(f"rft-{environment.strip('-').split('--')[0]}")
    token_pattern, token_max = shape_pattern("IdempotencyToken")
    token = modules.request_token(environment, job_id, MODEL_ARN)
    assert token_pattern.fullmatch(token) and len(token) <= token_max
    assert token == modules.request_token(environment, job_id, MODEL_ARN)


def test_names_are_per_job_even_when_shortened(modules: ModuleType) -> None:
    assert modules.deployment_name(ENVIRONMENT, JOB_ARN) == NAME
    long_a, long_b = "j" * 100 + "a", "j" * 100 + "b"
    assert modules.deployment_name("dev", long_a) != modules.deployment_name("dev", long_b)
    assert modules.request_token("dev", long_a, MODEL_ARN) != modules.request_token(
        "dev", long_b, MODEL_ARN
    )
    assert modules.deployment_name("dev", "job-1") != modules.deployment_name("staging", "job-1")


# -- find or create -------------------------------------------------------------------------


def test_serve_creates_one_tagged_deployment(modules: ModuleType, stub: Stubber) -> None:
    expect_create(stub, modules)
    handler = load_handler("evaluation")
    result = handler.serve(context(), LambdaContext())
    assert result == {"deployment_arn": DEPLOYMENT_ARN, "status": "Creating", "failure": None}


def test_a_retried_serve_finds_the_deployment_instead_of_creating_another(
    modules: ModuleType, stub: Stubber
) -> None:
    expect_create(stub, modules)
    first = modules.serve(context())
    # the retry: the listing (a name filter that also matches longer names) has it
    stub.add_response(
        "list_custom_model_deployments",
        {
            "modelDeploymentSummaries": [
                summary(OTHER_ARN, NAME + "-copy"),
                summary(DEPLOYMENT_ARN, NAME, "Active"),
            ]
        },
        {"nameContains": NAME},
    )
    second = modules.serve(context())
    assert second == {
        "deployment_arn": first["deployment_arn"],
        "status": "Active",
        "failure": None,
    }


def test_a_name_taken_by_a_concurrent_attempt_is_found(modules: ModuleType, stub: Stubber) -> None:
    stub.add_response(
        "list_custom_model_deployments", {"modelDeploymentSummaries": []}, {"nameContains": NAME}
    )
    expect_model(stub)
    stub.add_client_error(
        "create_custom_model_deployment",
        service_error_code="ValidationException",
        service_message=f"Deployment name {NAME} already exists",
    )
    stub.add_response(
        "list_custom_model_deployments",
        {"modelDeploymentSummaries": [summary(DEPLOYMENT_ARN, NAME, "Creating")]},
        {"nameContains": NAME},
    )
    assert modules.serve(context()) == {
        "deployment_arn": DEPLOYMENT_ARN,
        "status": "Creating",
        "failure": None,
    }


def test_other_create_errors_are_raised(modules: ModuleType, stub: Stubber) -> None:
    from botocore.exceptions import ClientError

    stub.add_response(
        "list_custom_model_deployments", {"modelDeploymentSummaries": []}, {"nameContains": NAME}
    )
    expect_model(stub)
    stub.add_client_error("create_custom_model_deployment", "AccessDeniedException", "denied")
    with pytest.raises(ClientError, match="AccessDeniedException"):
        modules.serve(context())


def test_a_deployment_of_that_name_serving_another_model_is_an_error(
    modules: ModuleType, stub: Stubber
) -> None:
    other_model = MODEL_ARN.replace("f6e5d4c3b2a1", "000000000000")
    stub.add_response(
        "list_custom_model_deployments",
        {"modelDeploymentSummaries": [summary(DEPLOYMENT_ARN, NAME) | {"modelArn": other_model}]},
        {"nameContains": NAME},
    )
    with pytest.raises(RuntimeError, match=f"serves {re.escape(other_model)}, not"):
        modules.serve(context())


def test_serve_waits_for_the_model_to_be_active_before_deploying_it(
    modules: ModuleType, stub: Stubber
) -> None:
    stub.add_response(
        "list_custom_model_deployments", {"modelDeploymentSummaries": []}, {"nameContains": NAME}
    )
    # read-after-write: the job's model is not visible yet, then Creating, then Active
    stub.add_client_error("get_custom_model", "ResourceNotFoundException", "no such model")
    expect_model(stub, "Creating")
    expect_model(stub, None)  # a model made before modelStatus existed counts as Active
    expect_create(stub, modules, looked_up=True)
    slept: list[float] = []
    result = modules.serve(context(), lambda: 60.0, slept.append)
    assert result["deployment_arn"] == DEPLOYMENT_ARN
    assert slept == [modules.MODEL_POLL_SECONDS] * 2


def test_a_model_not_active_when_time_runs_low_is_retried_by_the_state_machine(
    modules: ModuleType, stub: Stubber
) -> None:
    stub.add_response(
        "list_custom_model_deployments", {"modelDeploymentSummaries": []}, {"nameContains": NAME}
    )
    expect_model(stub, "Creating")
    # no create: the state machine retries the step on this error's name
    with pytest.raises(modules.ModelNotActive, match="is Creating, not Active yet"):
        modules.serve(context(), lambda: 10.0, lambda _: None)
    assert modules.ModelNotActive.__name__ == "ModelNotActive"


def test_a_failed_model_is_an_error_naming_its_reason(modules: ModuleType, stub: Stubber) -> None:
    stub.add_response(
        "list_custom_model_deployments", {"modelDeploymentSummaries": []}, {"nameContains": NAME}
    )
    expect_model(stub, "Failed", failureMessage="training diverged")
    with pytest.raises(RuntimeError, match="is Failed: training diverged; nothing to deploy"):
        modules.serve(context(), lambda: 60.0, lambda _: None)


def test_other_model_errors_are_raised(modules: ModuleType, stub: Stubber) -> None:
    from botocore.exceptions import ClientError

    stub.add_response(
        "list_custom_model_deployments", {"modelDeploymentSummaries": []}, {"nameContains": NAME}
    )
    stub.add_client_error("get_custom_model", "AccessDeniedException", "denied")
    with pytest.raises(ClientError, match="AccessDeniedException"):
        modules.serve(context(), lambda: 60.0, lambda _: None)


def test_serve_needs_the_custom_model_and_skips_the_openai_backend(modules: ModuleType) -> None:
    with pytest.raises(ValueError, match="no custom_model_arn"):
        modules.serve(context(custom_model_arn=None))
    openai = context(backend="openai", job_id="ftjob-1", custom_model_arn=None)
    assert modules.serve(openai) == {"deployment_arn": None, "status": "Active", "failure": None}


@pytest.mark.parametrize(
    ("status", "failure"), [("Creating", None), ("Active", None), ("Failed", "quota exceeded")]
)
def test_serve_status(modules: ModuleType, stub: Stubber, status: str, failure: str | None) -> None:
    extra = {"failureMessage": failure} if failure else {}
    stub.add_response(
        "get_custom_model_deployment",
        got(status, **extra),
        {"customModelDeploymentIdentifier": DEPLOYMENT_ARN},
    )
    handler = load_handler("evaluation")
    result = handler.serve_status({"deployment_arn": DEPLOYMENT_ARN}, LambdaContext())
    assert result == {"deployment_arn": DEPLOYMENT_ARN, "status": status, "failure": failure}


# -- the environment's deployments and the clean-up -----------------------------------------


def expect_listing(stub: Stubber) -> None:
    """Two pages: this environment's deployment, another environment's, an untagged one, and
    one deleted between the listing and its tags."""
    stub.add_response(
        "list_custom_model_deployments",
        {
            "modelDeploymentSummaries": [
                summary(DEPLOYMENT_ARN, NAME),
                summary(OTHER_ARN, "rft-dev-ftjob-1"),
            ],
            "nextToken": "page-2",
        },
        {},
    )
    stub.add_response(
        "list_custom_model_deployments",
        {"modelDeploymentSummaries": [summary(THIRD_ARN, "someone-elses")]},
        {"nextToken": "page-2"},
    )
    tags = {
        DEPLOYMENT_ARN: [
            {"key": "bedrock-rft:environment", "value": ENVIRONMENT},
            {"key": "bedrock-rft:job", "value": "a1b2c3d4e5f6"},
        ],
        OTHER_ARN: [{"key": "bedrock-rft:environment", "value": "dev"}],
    }
    for arn in (DEPLOYMENT_ARN, OTHER_ARN):
        stub.add_response("list_tags_for_resource", {"tags": tags[arn]}, {"resourceARN": arn})
    stub.add_client_error("list_tags_for_resource", "ResourceNotFoundException", "gone")


def test_environment_deployments_are_found_by_tag(modules: ModuleType, stub: Stubber) -> None:
    expect_listing(stub)
    found = modules.environment_deployments(modules.bedrock_client(REGION), ENVIRONMENT)
    assert [d.arn for d in found] == [DEPLOYMENT_ARN]
    assert found[0].tag("bedrock-rft:job") == "a1b2c3d4e5f6"


def delete_event(request: str = "Delete", on_delete: str = "delete") -> dict[str, Any]:
    return {
        "RequestType": request,
        "PhysicalResourceId": f"bedrock-rft-{ENVIRONMENT}-deployments",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
            "Environment": ENVIRONMENT,
            "Region": REGION,
            "OnDelete": on_delete,
        },
    }


def test_destroy_deletes_the_deployment_serve_created(modules: ModuleType, stub: Stubber) -> None:
    expect_create(stub, modules)
    created = modules.serve(context())["deployment_arn"]
    expect_listing(stub)
    stub.add_response(
        "delete_custom_model_deployment", {}, {"customModelDeploymentIdentifier": created}
    )
    handler = load_handler("evaluation")
    result = handler.cleanup(delete_event(), LambdaContext())
    assert result == {
        "PhysicalResourceId": f"bedrock-rft-{ENVIRONMENT}-deployments",
        "Data": {"Deleted": "1"},
    }


@pytest.mark.parametrize(
    ("request_type", "on_delete"),
    [("Create", "delete"), ("Update", "delete"), ("Delete", "retain")],
)
def test_cleanup_touches_nothing_unless_deleting(
    modules: ModuleType, stub: Stubber, request_type: str, on_delete: str
) -> None:
    handler = load_handler("evaluation")
    result = handler.cleanup(delete_event(request_type, on_delete), LambdaContext())
    assert result["PhysicalResourceId"] == f"bedrock-rft-{ENVIRONMENT}-deployments"
    assert result["Data"] == {"Deleted": "0"}  # and no Bedrock call (the Stubber has none)


def test_a_deployment_still_creating_is_deleted_once_it_may_be(
    modules: ModuleType, stub: Stubber
) -> None:
    expect_listing(stub)
    stub.add_client_error("delete_custom_model_deployment", "ConflictException", "Creating")
    stub.add_response(
        "delete_custom_model_deployment", {}, {"customModelDeploymentIdentifier": DEPLOYMENT_ARN}
    )
    waits: list[float] = []
    deleted = modules.delete_environment_deployments(
        modules.bedrock_client(REGION), ENVIRONMENT, seconds_left=lambda: 600, sleep=waits.append
    )
    assert deleted == [DEPLOYMENT_ARN]
    assert waits == [modules.CONFLICT_WAIT_SECONDS]


def test_a_deployment_refused_until_the_end_fails_the_delete_naming_it(
    modules: ModuleType, stub: Stubber
) -> None:
    expect_listing(stub)
    stub.add_client_error("delete_custom_model_deployment", "ConflictException", "Creating")
    with pytest.raises(RuntimeError, match=f"could not be deleted yet: {DEPLOYMENT_ARN}"):
        modules.delete_environment_deployments(
            modules.bedrock_client(REGION), ENVIRONMENT, seconds_left=lambda: 5
        )


def test_a_deployment_already_gone_counts_as_deleted(modules: ModuleType, stub: Stubber) -> None:
    expect_listing(stub)
    stub.add_client_error("delete_custom_model_deployment", "ResourceNotFoundException", "gone")
    deleted = modules.delete_environment_deployments(
        modules.bedrock_client(REGION), ENVIRONMENT, seconds_left=lambda: 600
    )
    assert deleted == [DEPLOYMENT_ARN]
