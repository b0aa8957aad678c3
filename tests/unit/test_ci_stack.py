"""The delivery stack: opt-in, GitHub OIDC trust limited to one repository and one GitHub
environment per role, and no permission beyond assuming the CDK bootstrap roles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import build_app
from stacks.bootstrap import QUALIFIER_CONTEXT
from stacks.ci_stack import CiStack, add_ci_stacks
from stacks.config import ConfigError, load_ci, load_environments
from stacks.nag import compliance_packs, rule_packs
from tests.conftest import cdk_context
from tests.lambda_loader import ROOT

REPOSITORY = "example-org/bedrock-rft"  # the fixture cdk.json's ci block
ISSUER = "token.actions.githubusercontent.com"
KINDS = ("deploy", "file-publishing", "image-publishing", "lookup")


def ci_template(synthesized: dict[str, Any]) -> Template:
    stack = synthesized["app"].node.try_find_child("BedrockRft-ci")
    assert isinstance(stack, CiStack)
    return Template.from_stack(stack)


def build_ci(tmp_path: Path, context: dict[str, Any]) -> tuple[cdk.App, list[CiStack]]:
    """Only the CI stacks of ``context`` (no environment stacks: fast)."""
    app = cdk.App(outdir=str(tmp_path), context=context)
    ci = load_ci(context)
    assert ci is not None
    return app, add_ci_stacks(app, ci, load_environments(context, ROOT))


def test_one_role_per_environment_trusting_its_github_environment_only(
    synthesized: dict[str, Any],
) -> None:
    roles = ci_template(synthesized).find_resources("AWS::IAM::Role")
    subjects = {}
    for role in roles.values():
        [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert set(statement["Principal"]) == {"Federated"}
        assert statement["Principal"]["Federated"] != "*"
        assert set(statement["Condition"]) == {"StringEquals"}
        condition = statement["Condition"]["StringEquals"]
        assert set(condition) == {f"{ISSUER}:aud", f"{ISSUER}:sub"}
        assert condition[f"{ISSUER}:aud"] == "sts.amazonaws.com"
        subjects[role["Properties"]["RoleName"]] = condition[f"{ISSUER}:sub"]
    assert subjects == {
        "bedrock-rft-deploy-dev": f"repo:{REPOSITORY}:environment:dev",
        "bedrock-rft-deploy-staging": f"repo:{REPOSITORY}:environment:staging",
        "bedrock-rft-deploy-prod": f"repo:{REPOSITORY}:environment:prod",
        # the fixture names another GitHub environment for nova-dev
        "bedrock-rft-deploy-nova-dev": f"repo:{REPOSITORY}:environment:nova-development",
    }


OWNER_ID, REPOSITORY_ID = 123456, 456789


def trust_admits(role: dict[str, Any], claims: dict[str, str]) -> bool:
    """Whether the role's trust policy admits a GitHub OIDC token with these claims: IAM's
    evaluation of the condition operators the stack uses (every key must hold; a list of
    values matches any one; StringEquals compares whole, case-sensitive strings)."""
    for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
        if statement["Action"] != "sts:AssumeRoleWithWebIdentity":
            continue
        admitted = True
        for operator, keys in statement.get("Condition", {}).items():
            assert operator == "StringEquals", f"unexpected condition operator {operator}"
            for key, expected in keys.items():
                values = expected if isinstance(expected, list) else [expected]
                claim = claims.get(key.removeprefix(f"{ISSUER}:"))
                admitted = admitted and claim in values
        if admitted and statement["Effect"] == "Allow":
            return True
    return False


def token(sub: str) -> dict[str, str]:
    return {"aud": "sts.amazonaws.com", "sub": sub}


_ROLES: dict[str, dict[str, dict[str, Any]]] = {}


def immutable_roles(tmp_path: Path, **ci: Any) -> dict[str, dict[str, Any]]:
    """The deploy roles by name, for the fixture's ci block with ids (and ``ci`` overrides);
    built once per set of overrides (synthesis is the slow part)."""
    key = json.dumps(ci, sort_keys=True)
    if key not in _ROLES:
        _ROLES[key] = _build_roles(tmp_path, ci)
    return _ROLES[key]


def _build_roles(tmp_path: Path, ci: dict[str, Any]) -> dict[str, dict[str, Any]]:
    context = cdk_context()
    context["ci"].update({"github_owner_id": OWNER_ID, "github_repository_id": REPOSITORY_ID, **ci})
    _, [stack] = build_ci(tmp_path, context)
    roles = Template.from_stack(stack).find_resources("AWS::IAM::Role").values()
    return {role["Properties"]["RoleName"]: dict(role) for role in roles}


def test_with_ids_each_role_admits_its_environments_three_subject_forms(tmp_path: Path) -> None:
    roles = immutable_roles(tmp_path)
    for env, github_env in [("dev", "dev"), ("prod", "prod"), ("nova-dev", "nova-development")]:
        role = roles[f"bedrock-rft-deploy-{env}"]
        for repo in [
            "example-org/bedrock-rft",
            f"example-org-{OWNER_ID}/bedrock-rft-{REPOSITORY_ID}",
            f"example-org@{OWNER_ID}/bedrock-rft@{REPOSITORY_ID}",
        ]:
            assert trust_admits(role, token(f"repo:{repo}:environment:{github_env}")), repo
        # another audience is refused
        sub = f"repo:example-org/bedrock-rft:environment:{github_env}"
        assert not trust_admits(role, {"aud": "https://github.com/example-org", "sub": sub})


@pytest.mark.parametrize(
    "sub",
    [
        # another environment of the same repository, in each form
        "repo:example-org/bedrock-rft:environment:prod",
        f"repo:example-org-{OWNER_ID}/bedrock-rft-{REPOSITORY_ID}:environment:staging",
        f"repo:example-org@{OWNER_ID}/bedrock-rft@{REPOSITORY_ID}:environment:Dev",
        # another repository of the owner (by name, or its id)
        "repo:example-org/other:environment:dev",
        f"repo:example-org@{OWNER_ID}/bedrock-rft@{REPOSITORY_ID + 1}:environment:dev",
        f"repo:example-org-{OWNER_ID}/bedrock-rft-1:environment:dev",
        # another owner: a recycled name with a new id, or a look-alike name
        f"repo:example-org@{OWNER_ID + 1}/bedrock-rft@{REPOSITORY_ID}:environment:dev",
        f"repo:example-org-{OWNER_ID + 1}/bedrock-rft-{REPOSITORY_ID}:environment:dev",
        "repo:example-org2/bedrock-rft:environment:dev",
        # the same repository outside an environment, or with a suffix
        "repo:example-org/bedrock-rft:ref:refs/heads/main",
        "repo:example-org/bedrock-rft:pull_request",
        "repo:example-org/bedrock-rft:environment:dev:x",
    ],
)
def test_with_ids_the_dev_role_refuses_other_subjects(tmp_path: Path, sub: str) -> None:
    assert not trust_admits(immutable_roles(tmp_path)["bedrock-rft-deploy-dev"], token(sub))


def test_legacy_subject_false_trusts_the_immutable_forms_only(tmp_path: Path) -> None:
    role = immutable_roles(tmp_path, legacy_subject=False)["bedrock-rft-deploy-dev"]
    assert not trust_admits(role, token("repo:example-org/bedrock-rft:environment:dev"))
    condition = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert condition["StringEquals"][f"{ISSUER}:sub"] == [
        f"repo:example-org-{OWNER_ID}/bedrock-rft-{REPOSITORY_ID}:environment:dev",
        f"repo:example-org@{OWNER_ID}/bedrock-rft@{REPOSITORY_ID}:environment:dev",
    ]


def test_require_deploy_workflow_admits_mains_deploy_workflow_only(tmp_path: Path) -> None:
    from stacks.deploy_role import DEPLOY_WORKFLOW

    assert (ROOT / DEPLOY_WORKFLOW).is_file()  # the workflow the condition names exists
    role = immutable_roles(tmp_path, require_deploy_workflow=True)["bedrock-rft-deploy-dev"]
    workflow = f"example-org/bedrock-rft/{DEPLOY_WORKFLOW}"
    for repo in [
        "example-org/bedrock-rft",
        f"example-org-{OWNER_ID}/bedrock-rft-{REPOSITORY_ID}",
        f"example-org@{OWNER_ID}/bedrock-rft@{REPOSITORY_ID}",
    ]:
        main = f"repo:{repo}:environment:dev:job_workflow_ref:{workflow}@refs/heads/main"
        assert trust_admits(role, token(main)), main
        # the default subject (no customization), another branch, another workflow: refused
        for sub in [
            f"repo:{repo}:environment:dev",
            main.replace("refs/heads/main", "refs/heads/feature"),
            main.replace("deploy-environment.yml", "other.yml"),
            main.replace("example-org/bedrock-rft/.github", "attacker/fork/.github"),
            main.replace(":environment:dev:", ":environment:prod:"),
        ]:
            assert not trust_admits(role, token(sub)), sub


def test_sessions_outlast_the_longest_deploy_and_the_workflow_asks_for_them(
    synthesized: dict[str, Any],
) -> None:
    import yaml

    from stacks.job import SERVICE_TIMEOUT, TOTAL_TIMEOUT

    roles = ci_template(synthesized).find_resources("AWS::IAM::Role").values()
    [session] = {role["Properties"]["MaxSessionDuration"] for role in roles}
    assert 7200 <= session <= 43200  # at least 2 h; IAM's maximum is 12 h
    # the job resource's create and its rollback's delete, each bounded by the service timeout
    assert session > 2 * SERVICE_TIMEOUT.to_seconds() > 2 * TOTAL_TIMEOUT.to_seconds()
    workflow = yaml.safe_load(
        (ROOT / ".github/workflows/deploy-environment.yml").read_text(encoding="utf-8")
    )
    job = workflow["jobs"]["deploy"]
    [credentials] = [
        step for step in job["steps"] if "configure-aws-credentials" in step.get("uses", "")
    ]
    assert credentials["with"]["role-duration-seconds"] == session
    assert job["timeout-minutes"] * 60 <= session


def assumable(stack: CiStack, env: str) -> set[str]:
    """The bootstrap role ARNs the deploy role of ``env`` may assume, as text."""
    template = Template.from_stack(stack).to_json()
    role_id = stack.get_logical_id(
        stack.deploy_roles[env].role.node.default_child  # type: ignore[arg-type]
    )
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and resource["Properties"]["Roles"] == [
            {"Ref": role_id}
        ]:
            [statement] = resource["Properties"]["PolicyDocument"]["Statement"]
            return {arn_text(r) for r in statement["Resource"]}
    raise AssertionError(f"no policy for {env}")


def test_qualifiers_give_environments_of_one_account_disjoint_bootstrap_roles(
    tmp_path: Path,
) -> None:
    context = cdk_context()
    # dev, staging and prod of the fixture share an account and region
    _, [shared] = build_ci(tmp_path / "a", context)
    assert shared.shared_bootstraps == [["dev", "staging", "prod"]]
    assert assumable(shared, "dev") == assumable(shared, "prod")
    for env, qualifier in [("dev", "rftdev"), ("staging", "rftstaging"), ("prod", "rftprod")]:
        context["environments"][env]["bootstrap_qualifier"] = qualifier
    _, [stack] = build_ci(tmp_path / "b", context)
    assert stack.shared_bootstraps == []
    reach = {env: assumable(stack, env) for env in ("dev", "staging", "prod", "nova-dev")}
    for env, arns in reach.items():
        others = set().union(*(r for e, r in reach.items() if e != env))
        assert arns.isdisjoint(others), env
    assert all("cdk-rftdev-" in arn for arn in reach["dev"])
    assert all("cdk-hnb659fds-" in arn for arn in reach["nova-dev"])  # no qualifier of its own


def test_an_environments_qualifier_is_its_stacks_synthesizer(tmp_path: Path) -> None:
    context = cdk_context()
    context["environments"]["dev"]["bootstrap_qualifier"] = "rftdev"
    app = cdk.App(outdir=str(tmp_path), context={**context, "env": "dev"})
    [stack] = build_app(app)
    template = Template.from_stack(stack).to_json()
    assert template["Parameters"]["BootstrapVersion"]["Default"] == "/cdk-bootstrap/rftdev/version"
    text = json.dumps(template)
    assert "cdk-rftdev-assets-" in text and "hnb659fds" not in text


@pytest.mark.parametrize("qualifier", ["RftDev", "rft-dev", "rftdevelopment", ""])
def test_bad_bootstrap_qualifier_is_one_line(qualifier: str) -> None:
    context = cdk_context()
    context["environments"]["dev"]["bootstrap_qualifier"] = qualifier
    with pytest.raises(ConfigError) as caught:
        load_environments(context, ROOT, only="dev")
    assert caught.value.lines == [
        f"environment 'dev': bootstrap_qualifier = {json.dumps(qualifier)}: "
        "must be 1 to 10 lower-case letters or digits"
    ]


def test_the_provider_is_githubs_with_the_sts_audience(synthesized: dict[str, Any]) -> None:
    template = ci_template(synthesized)
    [provider] = template.find_resources("AWS::IAM::OIDCProvider").values()
    assert provider["Properties"]["Url"] == f"https://{ISSUER}"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    [logical_id] = template.find_resources("AWS::IAM::OIDCProvider")
    for role in template.find_resources("AWS::IAM::Role").values():
        principal = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        assert principal["Federated"] == {"Ref": logical_id}


def arn_text(value: Any) -> str:
    """An ARN of ``Fn::Join`` parts as text, references as ``${Name}``."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "${" + p["Ref"] + "}" for p in parts)


def test_roles_may_only_assume_the_bootstrap_roles_of_their_region(
    synthesized: dict[str, Any],
) -> None:
    template = ci_template(synthesized)
    assert template.find_resources("AWS::IAM::Policy") == {}  # no inline policy
    regions = {"dev": "us-west-2", "staging": "us-west-2", "prod": "us-west-2"}
    regions["nova-dev"] = "us-east-1"
    policies = template.find_resources("AWS::IAM::ManagedPolicy")
    assert len(policies) == len(regions)
    roles = template.find_resources("AWS::IAM::Role")
    names = {logical_id: r["Properties"]["RoleName"] for logical_id, r in roles.items()}
    for policy in policies.values():
        [role] = policy["Properties"]["Roles"]
        env = names[role["Ref"]].removeprefix("bedrock-rft-deploy-")
        [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == "sts:AssumeRole"
        account, partition = "${AWS::AccountId}", "${AWS::Partition}"
        assert sorted(arn_text(r) for r in statement["Resource"]) == sorted(
            f"arn:{partition}:iam::{account}:role/cdk-hnb659fds-{kind}-role-{account}-"
            f"{regions[env]}"
            for kind in KINDS
        )
    for role in roles.values():
        assert "Policies" not in role["Properties"]
        assert "ManagedPolicyArns" not in role["Properties"]


def test_ci_stack_passes_the_nag_packs(synthesized: dict[str, Any]) -> None:
    stack = synthesized["app"].node.try_find_child("BedrockRft-ci")
    for pack in [*rule_packs(), *compliance_packs(["NIST80053R5", "HIPAASecurity"])]:
        report = pack.validate_scope(stack)
        assert report.success, [v.rule_name for v in report.violations]


def test_ci_stack_is_opt_in(tmp_path: Path) -> None:
    context = cdk_context()
    del context["ci"]
    app = cdk.App(outdir=str(tmp_path / "a"), context={**context, "env": "dev"})
    build_app(app)
    assert [s.node.id for s in app.node.children if isinstance(s, cdk.Stack)] == ["BedrockRft-dev"]
    # with a ci block, selecting one environment still builds that environment only
    app = cdk.App(outdir=str(tmp_path / "b"), context={**cdk_context(), "env": "dev"})
    build_app(app)
    assert app.node.try_find_child("BedrockRft-ci") is None


def test_existing_provider_custom_qualifier_and_accounts(tmp_path: Path) -> None:
    provider = f"arn:aws:iam::111111111111:oidc-provider/{ISSUER}"
    context = cdk_context()
    context["ci"]["oidc_provider_arn"] = provider
    context[QUALIFIER_CONTEXT] = "rft123"
    context["environments"]["prod"]["account"] = "222222222222"
    _, stacks = build_ci(tmp_path, context)
    assert [s.stack_name for s in stacks] == ["BedrockRft-ci", "BedrockRft-ci-222222222222"]
    shared, prod = (Template.from_stack(s).to_json() for s in stacks)
    # the account-less stack uses the existing provider; the prod account gets its own
    assert "AWS::IAM::OIDCProvider" not in json.dumps(shared)
    trust = [
        r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Federated"]
        for r in shared["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
    ]
    assert trust == [provider] * 3
    policies = [r for r in prod["Resources"].values() if r["Type"] == "AWS::IAM::ManagedPolicy"]
    [statement] = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(arn_text(r) for r in statement["Resource"]) == sorted(
        f"arn:${{AWS::Partition}}:iam::222222222222:role/cdk-rft123-{kind}-role-222222222222-"
        "us-west-2"
        for kind in KINDS
    )
    assert sum(r["Type"] == "AWS::IAM::OIDCProvider" for r in prod["Resources"].values()) == 1


@pytest.mark.parametrize(
    ("ci", "expected"),
    [
        (
            {"github_repository": "no-slash"},
            'ci: github_repository = "no-slash": must be the GitHub repository as owner/name',
        ),
        ({}, "ci: github_repository: required key is missing"),
        ({"github_repository": "a/b", "branch": "main"}, "ci: branch: unknown key"),
        (
            {"github_repository": "a/b", "oidc_provider_arn": "arn:aws:iam::1:role/x"},
            'ci: oidc_provider_arn = "arn:aws:iam::1:role/x": must be the ARN of the account\'s '
            "OIDC provider for token.actions.githubusercontent.com",
        ),
        ("a/b", "ci: must be an object, got str"),
        (
            {"github_repository": "a/b", "github_owner_id": 1},
            "ci: github_repository_id: required with the other id (the immutable subject "
            "names both)",
        ),
        (
            {"github_repository": "a/b", "github_owner_id": 0, "github_repository_id": 2},
            "ci: github_owner_id = 0: Input should be greater than 0",
        ),
        (
            {"github_repository": "a/b", "github_owner_id": "1", "github_repository_id": 2},
            'ci: github_owner_id = "1": Input should be a valid integer (a JSON string: '
            "write the value without quotes)",
        ),
        (
            {"github_repository": "a/b", "legacy_subject": False},
            "ci: legacy_subject = false: can be false only with github_owner_id and "
            "github_repository_id (else no subject is trusted)",
        ),
    ],
)
def test_bad_ci_block_is_one_line(ci: Any, expected: str) -> None:
    context = {**cdk_context(), "ci": ci}
    with pytest.raises(ConfigError) as caught:
        load_environments(context, ROOT, only="dev")
    assert caught.value.lines == [expected]


def test_bad_github_environment_is_one_line() -> None:
    context = cdk_context()
    context["environments"]["dev"]["github_environment"] = "has space"
    with pytest.raises(ConfigError) as caught:
        load_environments(context, ROOT, only="dev")
    assert caught.value.lines == [
        "environment 'dev': github_environment = \"has space\": "
        "must be 1 to 255 letters, digits, '.', '_' or '-'"
    ]


def test_ci_template_passes_cfn_lint(synthesized: dict[str, Any], tmp_path: Path) -> None:
    # make cfn-lint scans the user's synth, which has no CI stack unless cdk.json opts in
    path = tmp_path / "BedrockRft-ci.template.json"
    path.write_text(json.dumps(ci_template(synthesized).to_json()), encoding="utf-8")
    cfn_lint = str(Path(sys.executable).with_name("cfn-lint"))  # the dev environment's
    result = subprocess.run(
        [cfn_lint, "--non-zero-exit-code", "error", "--", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
