"""The shared OpenAI-compatible client factory: endpoint and key resolution."""

from __future__ import annotations

import sys

import pytest

from tests.lambda_loader import LAMBDA_DIR

sys.path.insert(0, str(LAMBDA_DIR / "common"))

from rft_common.mantle import mantle_base_url, openai_client, resolve_region


def test_regional_endpoint() -> None:
    assert mantle_base_url("us-west-2") == "https://bedrock-mantle.us-west-2.api.aws/v1"
    with pytest.raises(ValueError, match="a region is needed"):
        mantle_base_url("")


def test_env_overrides_endpoint_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    client = openai_client("us-west-2")
    assert str(client.base_url) == "http://127.0.0.1:9/v1/"
    assert client.api_key == "test-key"


def test_short_term_key_is_minted_from_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    client = openai_client(max_retries=0)
    assert str(client.base_url) == "https://bedrock-mantle.us-west-2.api.aws/v1/"
    # the token generator's documented prefix; minted locally, no network call
    assert client.api_key.startswith("bedrock-api-key-")
    assert client.max_retries == 0


def test_region_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ValueError, match="no region"):
        resolve_region(None)
    assert resolve_region("eu-west-1") == "eu-west-1"
