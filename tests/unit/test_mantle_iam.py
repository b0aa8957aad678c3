"""bedrock-mantle grants in the synthesized templates: scoped to the account's projects in the
region, model calls conditioned on bedrock-mantle:Model (unless the environment drops it), the
bearer token conditioned on its type, and cosine embeddings on exactly one foundation model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import build_app
from stacks.config import ConfigError, parse_environment
from stacks.nag import rule_packs
from stacks.reward import embedding_models, judge_models
from tests.conftest import cdk_context, template_text
from tests.lambda_loader import ROOT

FIXTURES = "tests/fixtures/mantle"
ACCOUNT = "111122223333"
BASE = {
    "account": ACCOUNT,
    "region": "us-west-2",
    "base_model": "openai.gpt-oss-20b",
    "dataset": f"{FIXTURES}/dataset",
    "grader": f"{FIXTURES}/judge_and_cosine.json",
}
ENVIRONMENTS: dict[str, dict[str, Any]] = {
    "conditioned": BASE,
    "unconditioned": {
        **BASE,
        "mantle": {
            "condition_on_model": False,
            "condition_on_token_type": False,
            "route": "/openai/v1",
        },
    },
    "rules": {**BASE, "grader": f"{FIXTURES}/rules.json"},
    "native": {
        **BASE,
        "region": "us-east-1",
        "backend": "bedrock",
        "base_model": "amazon.nova-2-lite-v1:0:256k",
    },
}
PROJECTS = f"arn:aws:bedrock-mantle:{{region}}:{ACCOUNT}:project/*"


# The module-scoped synthesis is made once: every test of this module runs on one xdist worker.
pytestmark = pytest.mark.xdist_group("mantle-iam")


@pytest.fixture(scope="module")
def app_and_templates(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[cdk.App, dict[str, Template]]]:
    context = {**cdk_context(), "environments": ENVIRONMENTS}
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out")), context=context)
    stacks = build_app(app)
    yield app, {stack.config.name: Template.from_stack(stack) for stack in stacks}


@pytest.fixture(scope="module")
def templates(app_and_templates: tuple[cdk.App, dict[str, Template]]) -> dict[str, Template]:
    return app_and_templates[1]


def _actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return value if isinstance(value, list) else [value]


def statements(template: Template, role: str | None = None) -> list[dict[str, Any]]:
    """Every policy statement of the template (of the roles whose logical id has ``role``)."""
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if role is None or role in json.dumps(policy["Properties"].get("Roles", [])):
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def by_sid(template: Template, role: str) -> dict[str, dict[str, Any]]:
    return {s.get("Sid", ""): s for s in statements(template, role)}


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_no_mantle_action_on_star_but_the_bearer_token(
    templates: dict[str, Template], env: str
) -> None:
    region = ENVIRONMENTS[env]["region"]
    for statement in statements(templates[env]):
        mantle = [a for a in _actions(statement) if a.startswith("bedrock-mantle:")]
        if not mantle:
            continue
        if statement["Resource"] == "*":
            assert mantle == ["bedrock-mantle:CallWithBearerToken"], statement
        else:
            assert template_text(statement["Resource"]) == PROJECTS.format(region=region)
        # the bedrock-runtime endpoint's key action is never needed: no call uses a key there
        assert "bedrock:CallWithBearerToken" not in _actions(statement)


def test_model_calls_are_conditioned_on_the_model(templates: dict[str, Template]) -> None:
    template = templates["conditioned"]
    job = by_sid(template, "JobHandlerRole")
    create = job["CreateFineTuningJobOfBaseModel"]
    assert _actions(create) == ["bedrock-mantle:CreateFineTuningJob"]
    assert create["Condition"] == {"StringEquals": {"bedrock-mantle:Model": ["openai.gpt-oss-20b"]}}
    files = job["FilesAndFineTuningJobs"]
    assert "bedrock-mantle:CreateFineTuningJob" not in _actions(files)
    assert "Condition" not in files  # the Model key is absent from these requests
    token = job["UseShortTermApiKey"]
    assert token["Condition"] == {"StringEquals": {"bedrock-mantle:BearerTokenType": "SHORT_TERM"}}

    reward = by_sid(template, "RewardRole")
    assert reward["JudgeInference"]["Condition"] == {
        "StringEquals": {"bedrock-mantle:Model": ["openai.gpt-oss-120b"]}
    }
    assert sorted(_actions(reward["JudgeProjectReads"])) == [
        "bedrock-mantle:GetProject",
        "bedrock-mantle:ListProjects",
        "bedrock-mantle:ListTagsForResource",
    ]
    assert reward["JudgeShortTermApiKey"]["Condition"] == token["Condition"]

    collector = by_sid(template, "CollectorRole")
    assert _actions(collector["ReadFineTuningJobs"]) == ["bedrock-mantle:GetFineTuningJob"]
    assert collector["UseShortTermApiKey"]["Condition"] == token["Condition"]

    reconciler = by_sid(template, "ReconcilerRole")
    assert "Condition" not in reconciler["FindAndCancelFineTuningJobs"]
    assert reconciler["UseShortTermApiKey"]["Condition"] == token["Condition"]


def test_the_switches_drop_the_conditions(templates: dict[str, Template]) -> None:
    template = templates["unconditioned"]
    job = by_sid(template, "JobHandlerRole")
    reward = by_sid(template, "RewardRole")
    collector = by_sid(template, "CollectorRole")
    reconciler = by_sid(template, "ReconcilerRole")
    for statement in (
        reconciler["UseShortTermApiKey"],
        job["CreateFineTuningJobOfBaseModel"],
        job["UseShortTermApiKey"],
        reward["JudgeInference"],
        reward["JudgeShortTermApiKey"],
        collector["UseShortTermApiKey"],
    ):
        assert "Condition" not in statement, statement


def test_cosine_embeddings_invoke_exactly_their_foundation_model(
    templates: dict[str, Template],
) -> None:
    for env, region in (("conditioned", "us-west-2"), ("native", "us-east-1")):
        embeddings = by_sid(templates[env], "RewardRole")["EmbeddingsInvokeModel"]
        assert _actions(embeddings) == ["bedrock:InvokeModel"]
        assert template_text(embeddings["Resource"]) == (
            f"arn:aws:bedrock:{region}::foundation-model/amazon.titan-embed-text-v2:0"
        )
    reward = by_sid(templates["rules"], "RewardRole")
    assert not {"JudgeInference", "JudgeShortTermApiKey", "EmbeddingsInvokeModel"} & set(reward)


def test_route_override_reaches_every_function(templates: dict[str, Template]) -> None:
    def routes(template: Template) -> list[str | None]:
        functions = template.find_resources("AWS::Lambda::Function")
        return [
            f["Properties"].get("Environment", {}).get("Variables", {}).get("BEDROCK_MANTLE_ROUTE")
            for f in functions.values()
            if f["Properties"].get("Handler", "").startswith(("handler.", "reconcile."))
            and "Provider" not in json.dumps(f["Properties"].get("Role", ""))
        ]

    assert set(routes(templates["conditioned"])) == {None}
    # the reward function, the job's two handlers, the collector and the reconciler
    assert routes(templates["unconditioned"]).count("/openai/v1") == 5
    outputs = templates["unconditioned"].find_outputs("*")
    command = outputs["JobStatusCommand"]
    assert "api.aws/openai/v1/fine_tuning/jobs/" in template_text(command["Value"])


def test_the_compliance_packs_accept_the_scoped_grants(
    app_and_templates: tuple[cdk.App, dict[str, Template]],
) -> None:
    app = app_and_templates[0]
    for pack in rule_packs():
        report = pack.validate_scope(app)
        assert report.success, [(v.rule_name, v.violating_resources) for v in report.violations]


def test_models_of_a_definition_at_any_depth() -> None:
    definition = json.loads(Path(FIXTURES, "judge_and_cosine.json").read_text())
    nested = {"type": "multi", "graders": {"inner": [definition, {"type": "label_model"}]}}
    assert judge_models(definition) == {"openai.gpt-oss-120b"}
    assert embedding_models(definition) == {"amazon.titan-embed-text-v2:0"}
    assert judge_models(nested) == {"openai.gpt-oss-120b"}  # a judge without a model: none
    rouge = {"type": "text_similarity", "evaluation_metric": "rouge_l", "model": "x"}
    assert embedding_models(rouge) == judge_models(rouge) == set()


@pytest.mark.parametrize(
    ("mantle", "message"),
    [
        ({"route": "/v2"}, "mantle.route = \"/v2\": Input should be '/v1' or '/openai/v1'"),
        ({"condition_on_model": "maybe"}, 'mantle.condition_on_model = "maybe": Input'),
        ({"conditon_on_model": False}, "mantle.conditon_on_model: unknown key"),
    ],
)
def test_mantle_settings_are_validated(mantle: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_environment("bad", {**BASE, "mantle": mantle}, ROOT)
    assert str(raised.value).startswith(f"environment 'bad': {message}")
    assert "\n" not in str(raised.value)
