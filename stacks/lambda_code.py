"""Where the Lambda bundles built by ``scripts/bundle_lambdas.py`` live, as CDK code assets."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda as lambda_

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = PROJECT_ROOT / ".build" / "lambda"


def bundle_dir(name: str) -> Path:
    """The built folder of function ``name``; a clear error when it has not been built."""
    path = BUILD_DIR / name
    if not (path / "handler.py").is_file():
        raise FileNotFoundError(
            f"Lambda bundle '{name}' is missing ({path.relative_to(PROJECT_ROOT)}): "
            "run `make bundle` (or `make synth`, which builds it)"
        )
    return path


def bundle_code(name: str) -> lambda_.Code:
    """The bundle of function ``name`` as an asset (no Docker: built locally beforehand)."""
    return lambda_.Code.from_asset(str(bundle_dir(name)))
