"""The typed environment config: the fixture environments load, each bad value fails clearly,
and every problem is reported (one line each), not only the first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stacks.config import (
    BedrockHyperparameters,
    ConfigError,
    OpenAIHyperparameters,
    load_environments,
    parse_environment,
)
from tests.conftest import FIXTURES, cdk_context

# Files the tests own (the defaults, datasets/gsm8k and graders/gsm8k.json, are the user's).
FILES: dict[str, Any] = {
    "dataset": "tests/fixtures/datasets/gsm8k",
    "grader": "tests/fixtures/graders/gsm8k.json",
}

OPENAI_DEV: dict[str, Any] = {
    "region": "us-west-2",
    "backend": "openai",
    "base_model": "openai.gpt-oss-20b",
    **FILES,
}
NOVA: dict[str, Any] = {
    "region": "us-east-1",
    "backend": "bedrock",
    "base_model": "amazon.nova-2-lite-v1:0:256k",
    **FILES,
}


def error_of(raw: dict[str, Any], root: Path, name: str = "dev") -> str:
    with pytest.raises(ConfigError) as caught:
        parse_environment(name, raw, root)
    message = str(caught.value)
    assert "\n" not in message, "errors are one line"
    return message


def test_fixture_environments_load(project_root: Path) -> None:
    configs = {c.name: c for c in load_environments(cdk_context(), project_root)}
    assert set(configs) == {"dev", "staging", "prod", "nova-dev"}
    assert {c.backend for c in configs.values()} == {"openai", "bedrock"}
    assert configs["dev"].removal_policy == "destroy"
    assert configs["staging"].removal_policy == "retain"
    assert configs["prod"].removal_policy == "retain"
    assert isinstance(configs["prod"].typed_hyperparameters, OpenAIHyperparameters)
    nova = configs["nova-dev"].typed_hyperparameters
    assert isinstance(nova, BedrockHyperparameters)
    assert nova.batchSize == 64


def test_defaults_are_sensible(project_root: Path) -> None:
    config = parse_environment("dev", dict(OPENAI_DEV), project_root)
    assert config.removal_policy == "retain", "data is kept unless an environment opts out"
    assert config.reward_function.timeout_seconds == 300
    assert config.reward_function.memory_mb == 512
    assert config.job.delete_model_on_destroy is False
    assert config.job.orphan_action == "alarm_then_stop", "orphans are stopped after a report"
    assert (config.job.orphans.grace_minutes, config.job.orphans.schedule_minutes) == (60, 15)
    assert config.account is None, "env-agnostic unless an account is given"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {**OPENAI_DEV, "backend": "sagemaker"},
            "environment 'dev': backend = \"sagemaker\": Input should be 'openai' or 'bedrock'",
        ),
        (
            {**NOVA, "hyperparameters": {"batchSize": 8}},
            "environment 'dev': hyperparameters.batchSize = 8: out of range; allowed: 16 to 512",
        ),
        (
            {**NOVA, "hyperparameters": {"learningRate": 0.5}},
            "hyperparameters.learningRate = 0.5: out of range; allowed: 1e-07 to 0.001",
        ),
        (
            {**NOVA, "hyperparameters": {"trainingSamplePerPrompt": 1}},
            "hyperparameters.trainingSamplePerPrompt = 1: out of range; allowed: 2 to 16",
        ),
        (
            {**NOVA, "hyperparameters": {"reasoningEffort": "max"}},
            "hyperparameters.reasoningEffort = \"max\": Input should be 'low', 'medium' or 'high'",
        ),
        (
            {**NOVA, "hyperparameters": {"n_epochs": 1}},
            "hyperparameters.n_epochs: unknown hyperparameter; allowed: epochCount, batchSize",
        ),
        (
            {**OPENAI_DEV, "hyperparameters": {"epochCount": 1}},
            "hyperparameters.epochCount: unknown hyperparameter; allowed: n_epochs",
        ),
        (
            {**OPENAI_DEV, "hyperparameters": {"n_epochs": 0}},
            "hyperparameters.n_epochs = 0: out of range; allowed: 1 to 50",
        ),
        (
            {**OPENAI_DEV, "base_model": "amazon.nova-2-lite-v1:0:256k"},
            "base_model = \"amazon.nova-2-lite-v1:0:256k\": 'amazon.nova-2-lite-v1:0:256k' is not "
            "offered by backend 'openai' in us-west-2; allowed: openai.gpt-oss-20b, qwen.qwen3-32b",
        ),
        (
            {**NOVA, "region": "us-west-2"},
            "region = \"us-west-2\": backend 'bedrock' offers RFT in us-east-1, not in us-west-2",
        ),
        ({**OPENAI_DEV, "region": "mars-1"}, 'region = "mars-1": must be an AWS region name'),
        ({**OPENAI_DEV, "account": "1234"}, 'account = "1234": must be a 12-digit AWS account id'),
        (
            {**OPENAI_DEV, "log_retention_days": 10},
            "log_retention_days = 10: must be one of 1, 3, 5, 7, 14, 30",
        ),
        ({**OPENAI_DEV, "alarm_email": "ops"}, 'alarm_email = "ops": must be an e-mail address'),
        ({**OPENAI_DEV, "removal_policy": "snapshot"}, 'removal_policy = "snapshot"'),
        ({**OPENAI_DEV, "datasets": "x"}, "environment 'dev': datasets: unknown key"),
        # a misspelled key: the closest allowed one, at any depth
        ({**OPENAI_DEV, "grder": "x"}, 'grder: unknown key; did you mean "grader"?'),
        (
            {**OPENAI_DEV, "job": {"Start": False}},
            'job.Start: unknown key; did you mean "start"?',
        ),
        (
            {**OPENAI_DEV, "evaluation": {"promote_when": {"min_improvment": 0.1}}},
            'evaluation.promote_when.min_improvment: unknown key; did you mean "min_improvement"?',
        ),
        (
            {**OPENAI_DEV, "hyperparameters": {"n_epoch": 2}},
            'hyperparameters.n_epoch: unknown hyperparameter (did you mean "n_epochs"?); allowed: '
            "n_epochs, batch_size",
        ),
        ({**OPENAI_DEV, "zzz": 1}, "environment 'dev': zzz: unknown key"),
        # a value of the wrong JSON type is refused, not coerced
        (
            {**OPENAI_DEV, "hyperparameters": {"n_epochs": "2"}},
            'hyperparameters.n_epochs = "2": Input should be a valid integer (a JSON string: '
            "write the value without quotes)",
        ),
        (
            {**NOVA, "hyperparameters": {"learningRate": "1e-5"}},
            'hyperparameters.learningRate = "1e-5": Input should be a valid number',
        ),
        (
            {**OPENAI_DEV, "job": {"start": "false"}},
            'job.start = "false": Input should be a valid boolean (a JSON string',
        ),
        (
            {**OPENAI_DEV, "reward_function": {"memory_mb": 1024.0}},
            "reward_function.memory_mb = 1024.0: Input should be a valid integer",
        ),
        ({"region": "us-west-2"}, "environment 'dev': base_model: required key is missing"),
        (
            {**OPENAI_DEV, "reward_function": {"timeout_seconds": 30}},
            "reward_function.timeout_seconds = 30: Input should be greater than or equal to 60",
        ),
        (
            {**OPENAI_DEV, "permissions_boundary_arn": "boundary"},
            'permissions_boundary_arn = "boundary": must be an IAM managed policy ARN',
        ),
        (
            {**OPENAI_DEV, "job": {"orphans": {"action": "kill"}}},
            "environment 'dev': job.orphans.action = \"kill\": Input should be 'alarm', 'stop' "
            "or 'alarm_then_stop'",
        ),
        (
            {**OPENAI_DEV, "job": {"orphans": {"grace_minutes": 5}}},
            "job.orphans.grace_minutes = 5: Input should be greater than or equal to 15",
        ),
        (
            {**NOVA, "job": {"orphans": {"schedule_minutes": 120}}},
            "job.orphans.schedule_minutes = 120: Input should be less than or equal to 60",
        ),
        ({**OPENAI_DEV, "job": {"orphans": {"grace": 60}}}, "job.orphans.grace: unknown key"),
        (
            {**OPENAI_DEV, "evaluation": {"promote_when": {"min_improvement": -0.05}}},
            "evaluation.promote_when.min_improvement = -0.05: Input should be greater than or "
            "equal to 0",
        ),
        (
            {**OPENAI_DEV, "evaluation": {"promote_when": {"min_prompts": 0}}},
            "evaluation.promote_when.min_prompts = 0: Input should be greater than or equal to 1",
        ),
        (
            {**OPENAI_DEV, "evaluation": {"promote_when": {"max_excluded_share": 2}}},
            "evaluation.promote_when.max_excluded_share = 2: Input should be less than or equal "
            "to 1",
        ),
        (
            {**OPENAI_DEV, "evaluation": {"request_timeout_seconds": 600}},
            "environment 'dev': evaluation.request_timeout_seconds = 600: a model call and a "
            "grader call (reward_function.timeout_seconds) must fit the 900 s evaluation worker "
            "with 60 s to sample; at most 505 with reward_function.timeout_seconds = 300",
        ),
        (
            {
                **OPENAI_DEV,
                "reward_function": {"timeout_seconds": 900},
                "evaluation": {"request_timeout_seconds": 10},
            },
            "evaluation.request_timeout_seconds = 10: a model call and a grader call "
            "(reward_function.timeout_seconds) must fit the 900 s evaluation worker with 60 s "
            "to sample; lower reward_function.timeout_seconds (now 900) to at most 795",
        ),
        (
            {**OPENAI_DEV, "reward_function": {"timeout_seconds": 900}},
            "environment 'dev': evaluation.request_timeout_seconds: a model call and a grader",
        ),
    ],
)
def test_bad_values_name_key_value_and_allowed(
    raw: dict[str, Any], expected: str, project_root: Path
) -> None:
    assert expected in error_of(raw, project_root)


def test_the_evaluation_worker_budget_holds_at_its_edge(project_root: Path) -> None:
    """505 s per model call + 300 s of grading + 35 s + 60 s of sampling = 900 s: allowed;
    without evaluation, a long reward timeout is no evaluation's business."""
    fits = {**OPENAI_DEV, "evaluation": {"request_timeout_seconds": 505}}
    assert parse_environment("dev", fits, project_root).evaluation.request_timeout_seconds == 505
    off = {
        **OPENAI_DEV,
        "reward_function": {"timeout_seconds": 900},
        "evaluation": {"enabled": False},
    }
    assert parse_environment("dev", off, project_root).reward_function.timeout_seconds == 900
    unstarted = {**OPENAI_DEV, "reward_function": {"timeout_seconds": 900}, "job": {"start": False}}
    assert parse_environment("dev", unstarted, project_root).job.start is False


def test_several_problems_are_all_reported_one_line_each(project_root: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_environment(
            "dev", {**OPENAI_DEV, "region": "nowhere", "alarm_email": "x"}, project_root
        )
    lines = str(caught.value).splitlines()
    assert lines == caught.value.lines
    assert len(lines) == 2
    assert lines[0].startswith("environment 'dev': region = \"nowhere\": must be an AWS region")
    assert lines[1] == "environment 'dev': alarm_email = \"x\": must be an e-mail address"


def test_a_bad_key_does_not_hide_bad_hyperparameters_or_files(project_root: Path) -> None:
    raw = {
        **OPENAI_DEV,
        "log_retention_days": 10,
        "hyperparameters": {"n_epochs": 0, "batch_size": 0},
        "dataset": "datasets/none-such",
    }
    with pytest.raises(ConfigError) as caught:
        parse_environment("dev", raw, project_root)
    assert [line.split(":", 2)[1].strip() for line in caught.value.lines] == [
        "log_retention_days = 10",
        "hyperparameters.n_epochs = 0",
        "hyperparameters.batch_size = 0",
        'dataset = "datasets/none-such"',
    ]


def test_problems_of_every_environment_are_reported(project_root: Path) -> None:
    context = cdk_context()
    context["environments"]["dev"]["log_retention_days"] = 10
    context["environments"]["prod"]["reward_function"]["memory_mb"] = 64
    context["environments"]["nova-dev"]["hyperparameters"]["batchSize"] = 8
    with pytest.raises(ConfigError) as caught:
        load_environments(context, project_root)
    assert [line.split(":", 1)[0] for line in caught.value.lines] == [
        "environment 'dev'",
        "environment 'prod'",
        "environment 'nova-dev'",
    ]
    assert "reward_function.memory_mb = 64" in caught.value.lines[1]


def test_unlisted_model_can_be_allowed_explicitly(project_root: Path) -> None:
    raw = {**OPENAI_DEV, "base_model": "qwen.qwen3-32b-v1:0", "allow_unlisted_model": True}
    assert parse_environment("dev", raw, project_root).base_model == "qwen.qwen3-32b-v1:0"


def test_environment_name_is_checked(project_root: Path) -> None:
    assert 'name = "Prod_EU": must be lower-case' in error_of(
        dict(OPENAI_DEV), project_root, name="Prod_EU"
    )


def test_missing_dataset_and_grader_files(project_root: Path, tmp_path: Path) -> None:
    message = error_of({**OPENAI_DEV, "dataset": "datasets/nope"}, project_root)
    assert 'dataset = "datasets/nope": must be a folder holding train.jsonl' in message
    message = error_of({**OPENAI_DEV, "grader": "graders/nope.json"}, project_root)
    assert 'grader = "graders/nope.json": no such file' in message
    (tmp_path / "datasets" / "d").mkdir(parents=True)
    (tmp_path / "datasets" / "d" / "train.jsonl").write_text("{}\n")
    (tmp_path / "g.json").write_text("{not json")
    message = error_of({**OPENAI_DEV, "dataset": "datasets/d", "grader": "g.json"}, tmp_path)
    assert message.startswith("environment 'dev': grader g.json: $: g.json is not valid JSON: ")
    assert message.endswith("at line 1 column 2")


@pytest.mark.parametrize(
    ("grader", "problem"),
    [
        ("bad_type.json", "$.type: 'magic_grader' is not allowed; allowed: string_check, "),
        (
            "bad_regex.json",
            "$.graders.format.pattern: invalid regular expression: missing ), unterminated",
        ),
    ],
)
def test_the_grader_is_loaded_by_the_reward_lambdas_loader(
    project_root: Path, grader: str, problem: str
) -> None:
    path = f"tests/fixtures/bad_graders/{grader}"
    assert (FIXTURES / "bad_graders" / grader).is_file()
    message = error_of({**OPENAI_DEV, "grader": path}, project_root)
    assert message.startswith(f"environment 'dev': grader {path}: {problem}")


def test_selecting_one_environment(project_root: Path) -> None:
    [only] = load_environments(cdk_context(), project_root, only="nova-dev")
    assert only.backend == "bedrock"
    with pytest.raises(ConfigError, match='env = "qa": no such environment; defined: dev'):
        load_environments(cdk_context(), project_root, only="qa")


def test_context_without_environments(project_root: Path) -> None:
    with pytest.raises(ConfigError, match=r"context\.environments must define"):
        load_environments({}, project_root)


def test_hyperparameter_defaults_follow_aws_guidance(project_root: Path) -> None:
    """Documented names only, a learning-rate multiplier below 1.0 (AWS's walkthrough), and no
    evalInterval for Nova: the service computes min(10, data size / batch size) itself."""
    openai_hp = parse_environment("dev", dict(OPENAI_DEV), project_root).typed_hyperparameters
    assert openai_hp.model_dump(exclude_none=True) == {
        "n_epochs": 1,
        "batch_size": 4,
        "learning_rate_multiplier": 0.5,
    }
    nova_hp = parse_environment("dev", dict(NOVA), project_root).typed_hyperparameters
    sent = nova_hp.model_dump(exclude_none=True)
    assert "evalInterval" not in sent
    assert sent == {
        "epochCount": 2,
        "batchSize": 64,
        "learningRate": 1e-5,
        "trainingSamplePerPrompt": 4,
    }


def test_undocumented_hyperparameters_need_the_opt_in(project_root: Path) -> None:
    raw = {**OPENAI_DEV, "hyperparameters": {"n_epochs": 2, "eval_interval": 5}}
    assert error_of(raw, project_root) == (
        "environment 'dev': hyperparameters.eval_interval = 5: not documented by Bedrock's "
        "OpenAI-compatible API (documented: n_epochs, batch_size, learning_rate_multiplier); "
        "set job.send_undocumented_fields to true to send it anyway (unverified)"
    )
    opted_in = parse_environment(
        "dev", {**raw, "job": {"send_undocumented_fields": True}}, project_root
    )
    assert opted_in.typed_hyperparameters.model_dump(exclude_none=True)["eval_interval"] == 5


def test_the_opt_in_is_for_the_openai_backend_only(project_root: Path) -> None:
    raw = {**NOVA, "job": {"send_undocumented_fields": True}}
    assert "job.send_undocumented_fields = true: applies to backend openai only" in error_of(
        raw, project_root
    )


def test_config_and_handler_agree_on_the_documented_hyperparameters() -> None:
    from stacks.config import OPENAI_DOCUMENTED_HYPERPARAMETERS
    from tests.job_support import job_modules

    job_modules()
    from rft_job.spec import OPENAI_DOCUMENTED_HYPERPARAMETERS as HANDLER_SIDE

    assert set(OPENAI_DOCUMENTED_HYPERPARAMETERS) == HANDLER_SIDE
    assert set(OPENAI_DOCUMENTED_HYPERPARAMETERS) < set(OpenAIHyperparameters.model_fields)


@pytest.mark.parametrize(
    ("observability", "key"),
    [
        ({"rollout_sample_rate": 1.5}, "observability.rollout_sample_rate"),
        ({"rollout_sample_rate": -0.1}, "observability.rollout_sample_rate"),
        ({"rollout_retention_days": 0}, "observability.rollout_retention_days"),
        ({"reward_hacking_period_minutes": 7}, "observability.reward_hacking_period_minutes"),
        ({"reward_hacking_periods": 1}, "observability.reward_hacking_periods"),
        ({"zero_variance_ceiling": 1.0}, "observability.zero_variance_ceiling"),
        ({"zero_variance_alarm": "maybe"}, "observability.zero_variance_alarm"),
    ],
)
def test_signal_settings_are_checked(
    project_root: Path, observability: dict[str, Any], key: str
) -> None:
    assert key in error_of({**OPENAI_DEV, "observability": observability}, project_root)


def test_signal_defaults(project_root: Path) -> None:
    settings = parse_environment("dev", OPENAI_DEV, project_root).observability
    assert (settings.rollout_sample_rate, settings.rollout_retention_days) == (0.02, 30)
    assert settings.reward_hacking_alarm and settings.zero_variance_alarm
    off = parse_environment(
        "dev", {**OPENAI_DEV, "observability": {"rollout_sample_rate": 0}}, project_root
    )
    assert off.observability.rollout_sample_rate == 0
