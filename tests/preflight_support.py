"""Shared pieces of the preflight tests: the example dataset, read once per module."""

from __future__ import annotations

import pytest

from preflight.dataset import Limits, Record, check_dataset
from preflight.findings import Findings
from tests.lambda_loader import ROOT

# The tests' own copy: datasets/ is the user's to change or delete.
EXAMPLE_DATASET = ROOT / "tests" / "fixtures" / "datasets" / "gsm8k" / "train.jsonl"


@pytest.fixture(name="records", scope="module")
def records_fixture() -> list[Record]:
    """The example dataset's records (it passes every check)."""
    findings = Findings()
    result = check_dataset(EXAMPLE_DATASET, "train", Limits(), findings)
    assert findings.groups == []
    return result.valid
