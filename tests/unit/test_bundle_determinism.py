"""Synthesis is deterministic: two synths in separate processes, with the bundles built again
between them as ``make synth`` does (and, the case aws-cdk-lib's fingerprint cache got wrong,
deleted and rebuilt in the same place: new inodes, the same paths, sizes and mtimes), give
byte-identical templates (bytecode is left out to keep the test short; that it is
reproducible is tested in test_bundle_wheels.py). The user's cdk.json is used only
generically: its first environment, whatever it holds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.bundle_store import BUILD_DIR_VARIABLE
from tests.lambda_loader import ROOT

SYNTH = """
import json, sys
import aws_cdk as cdk
from app import build_app
context = json.loads(open("cdk.json", encoding="utf-8").read())["context"]
first = next(iter(context["environments"]))
app = cdk.App(outdir=sys.argv[1], context={**context, "env": first})
build_app(app)
app.synth()
"""

pytestmark = pytest.mark.synth


def _run(arguments: list[str], build_dir: Path) -> None:
    environment = {**os.environ, BUILD_DIR_VARIABLE: str(build_dir)}
    completed = subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]


def _templates(outdir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(outdir.glob("*.template.json"))}


def test_synth_twice_with_rebuilt_bundles_gives_identical_templates(tmp_path: Path) -> None:
    build = tmp_path / "build"
    _run(["scripts/bundle_lambdas.py", "--no-bytecode"], build)
    _run(["-c", SYNTH, str(tmp_path / "first")], build)
    # Rebuilt from scratch where it was: every file new, every path the same.
    shutil.rmtree(build)
    _run(["scripts/bundle_lambdas.py", "--no-bytecode"], build)
    _run(["-c", SYNTH, str(tmp_path / "second")], build)

    first = _templates(tmp_path / "first")
    assert first, "the synth wrote a template"
    assert _templates(tmp_path / "second") == first
    # The Lambda code assets are named by their content digests, not by fingerprints.
    code_keys = [
        resource["Properties"]["Code"]["S3Key"]
        for template in first.values()
        for resource in json.loads(template)["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function" and "S3Key" in resource["Properties"]["Code"]
    ]
    assert code_keys
