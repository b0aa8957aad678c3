"""The dashboard's per-sub-grader panel searches the reward Lambda's SubGraderMean metric."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import resources_of


def _body(template: Any) -> dict[str, Any]:
    [dashboard] = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "X" for p in parts)
    return dict(json.loads(text))


def test_sub_grader_means_are_searched_per_sub_grader(templates: dict[str, Any]) -> None:
    widgets = _body(templates["staging"])["widgets"]
    [panel] = [
        w
        for w in widgets
        if w["properties"].get("title") == "Grader: mean score per sub-grader (multi graders)"
    ]
    [[expression]] = panel["properties"]["metrics"]
    search = expression["expression"]
    assert search.startswith("SEARCH('{BedrockRft/Grader,Environment,Grader,SubGrader}")
    assert 'Environment="staging"' in search and 'MetricName="SubGraderMean"' in search
    assert "PROP('Dim.SubGrader')" in expression["label"]
    assert panel["width"] == 24
