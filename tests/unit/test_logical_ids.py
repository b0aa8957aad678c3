"""Logical-ID stability: a refactor must never make CloudFormation replace stateful resources.

If this fails, a bucket or the key would be replaced (data left behind or lost, a new key).
Change the expected ids only together with a migration note in the README.
"""

from __future__ import annotations

from typing import Any

import pytest

STATEFUL = {
    # the notification topic's key: replacing it would re-encrypt the topic under a new key
    "AWS::KMS::Key": {"StagingKey1A9D4FB3", "ObservabilityTopicKey41264573"},
    # the metrics collector's cursor: replacing it resets it, and every job's points would be
    # published a second time
    # ... and the reconciler's reports: replacing it announces every orphan again and restarts
    # the wait before alarm_then_stop stops one
    "AWS::SSM::Parameter": {
        "ObservabilityMetricsCursor0D8C9DBB",
        "ObservabilityReconcilerStateB14E0D2F",
    },
    "AWS::S3::Bucket": {
        "StagingAccessLogs631C04EB",
        "StagingDatasets525BAF9E",
        "StagingArtifactsE00614B5",
    },
}


@pytest.mark.parametrize("env", ["dev", "staging", "prod", "nova-dev"])
def test_stateful_logical_ids_are_stable(templates: dict[str, Any], env: str) -> None:
    for resource_type, expected in STATEFUL.items():
        assert set(templates[env].find_resources(resource_type)) == expected, resource_type
