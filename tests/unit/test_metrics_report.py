"""`make report`: a job's curves from the API (the collector's code path) into a PNG."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from matplotlib import image

from tests.conftest import write_fixture_cdk_json
from tests.lambda_loader import ROOT
from tests.metrics_fixtures import synthetic_run
from tests.openai_server import OpenAIServer


def _load_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rft_report", ROOT / "scripts" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = _load_report()


@pytest.fixture
def server(openai_server: OpenAIServer) -> OpenAIServer:
    """The local server (the report reads it through the SDK's environment), paging by 20."""
    openai_server.fine_tuning.max_page = 20
    return openai_server


def test_png_has_one_panel_per_metric_and_the_path_comes_last(
    server: OpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    synthetic_run(server.fine_tuning, "ftjob-report", steps=67)
    server.fine_tuning.set_status("ftjob-report", "succeeded")
    out = tmp_path / "curves.png"
    assert report.main(["ftjob-report", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == str(out)
    assert "succeeded; 609 points" in lines[0]  # 67 steps x 9 series + 6 validation points
    pixels = image.imread(out)
    assert pixels.shape[0] > 1000 and pixels.shape[1] > 1300  # 4 rows x 2 columns at 110 dpi
    assert pixels.std() > 0.05  # not a blank canvas


def test_panels_follow_the_metrics_present(tmp_path: Path) -> None:
    from training_metrics.model import JobState, Point

    from stacks.config import ObservabilityConfig

    state = JobState("ftjob-x", "bedrock", "running", "InProgress")
    points = [
        Point(m, s, 0.0, s / 10) for s in range(1, 9) for m in ("Entropy", "Step", "AbortedRatio")
    ]
    titles = report.draw(state, points, ObservabilityConfig(entropy_floor=0.3), tmp_path / "x.png")
    assert titles == ["Policy entropy", "Aborted responses (share)"]


def test_job_without_metrics_says_so(server: OpenAIServer, tmp_path: Path) -> None:
    server.fine_tuning.add_job("ftjob-empty", status="queued")
    with pytest.raises(SystemExit, match="job ftjob-empty has no training metrics yet"):
        report.main(["ftjob-empty", "--out", str(tmp_path / "x.png")])


@pytest.fixture
def fixture_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The report reads the fixture environments (cdk.json is the user's to change)."""
    write_fixture_cdk_json(tmp_path)
    monkeypatch.setattr(report, "ROOT", tmp_path)


@pytest.mark.usefixtures("fixture_config")
def test_unknown_environment_is_named() -> None:
    with pytest.raises(SystemExit, match="ENV=nowhere: no such environment; defined: dev"):
        report.main(["ftjob-x", "--env", "nowhere"])


@pytest.mark.usefixtures("fixture_config")
def test_environment_sets_backend_region_and_thresholds() -> None:
    config = report.environment("nova-dev")
    assert (config.backend, config.region) == ("bedrock", "us-east-1")
    assert config.observability.entropy_floor >= 0


def test_command_line_prints_the_path_last(server: OpenAIServer, tmp_path: Path) -> None:
    synthetic_run(server.fine_tuning, "ftjob-cli", steps=12)
    out = tmp_path / "cli.png"
    env = {**os.environ, **server.sdk_environment()}
    done = subprocess.run(
        [sys.executable, "scripts/report.py", "ftjob-cli", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == str(out)
    assert out.stat().st_size > 10_000


def test_every_panel_has_both_axis_labels_and_a_hint_where_one_is_known() -> None:
    from training_metrics.model import JobState, Point

    from stacks.config import ObservabilityConfig

    state = JobState("ftjob-x", "openai", "running", "running")
    names = ("RewardMean", "Entropy", "GradNorm", "AbortedRatio", "PolicyLoss")
    points = [Point(m, s, 0.0, 1 / s) for s in range(1, 12) for m in names]
    figure, titles = report.figure_of(state, points, ObservabilityConfig(entropy_floor=0.2))
    visible = [axis for axis in figure.axes if axis.get_visible()]
    assert len(visible) == len(titles) == 5
    for axis in visible:
        assert axis.get_xlabel() == "training step"
        assert axis.get_ylabel()
    by_title = {axis.get_title(loc="left").split("\n")[0]: axis for axis in visible}
    assert by_title["Training reward (mean)"].get_ylabel() == "reward"
    assert "should rise" in by_title["Training reward (mean)"].get_title(loc="left")
    entropy = by_title["Policy entropy - alarm below 0.2"]
    assert "alarm threshold" in entropy.get_legend_handles_labels()[1]
    plt = pytest.importorskip("matplotlib.pyplot")
    plt.close(figure)


def test_native_unknown_job_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's Bedrock answers an unknown job as the service does (ResourceNotFoundException)."""
    from botocore.exceptions import ClientError
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        source, where = report.source_for("bedrock", "us-east-1")
        with pytest.raises(ClientError) as raised:
            source.state("no-such-job")
    line = report.user_error(raised.value, "no-such-job", where)
    assert line is not None
    assert line.startswith("job no-such-job not found in Bedrock in us-east-1")
    assert "(ResourceNotFoundException: " in line


def test_native_refused_credentials_are_one_line() -> None:
    """The error Bedrock gives an unknown access key, checked against the real service model."""
    import boto3
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber
    from training_metrics.bedrock_source import BedrockSource

    client = boto3.client(
        "bedrock", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_model_customization_job",
            service_error_code="UnrecognizedClientException",
            service_message="The security token included in the request is invalid.",
            http_status_code=403,
            expected_params={"jobIdentifier": "my-job"},
        )
        with pytest.raises(ClientError) as raised:
            BedrockSource(client, None).state("my-job")
    line = report.user_error(raised.value, "my-job", "Bedrock in us-east-1")
    assert line == (
        "Bedrock in us-east-1 refused your AWS credentials (UnrecognizedClientException: The "
        "security token included in the request is invalid.): run aws configure / set AWS_PROFILE"
    )


def test_a_bug_is_not_dressed_as_a_user_error() -> None:
    assert report.user_error(KeyError("status"), "ftjob-x", "the endpoint") is None
