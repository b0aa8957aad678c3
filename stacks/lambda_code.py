"""The Lambda bundles built by ``stacks/bundling.py``, as CDK code assets.

Each bundle is a content-addressed folder; its digest is passed as the asset's custom hash,
so aws-cdk-lib does not fingerprint the folder (``stacks/bundle_store.py`` says why).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import AssetHashType
from aws_cdk import aws_lambda as lambda_

from stacks.bundle_store import (
    PROJECT_ROOT,
    SHARED_SOURCES,
    BundleRecord,
    hold,
    read_record,
    sources_digest,
)

__all__ = ["PROJECT_ROOT", "asset_code", "bundle_code", "bundle_record"]


def bundle_record(name: str) -> BundleRecord:
    """The current bundle of function ``name``, held for this process (pruning skips it).

    A clear error when it has not been built, or was built from other sources than
    ``lambda/`` holds now.
    """
    record = read_record(name)
    if record is None or not (record.folder / "handler.py").is_file():
        raise FileNotFoundError(
            f"Lambda bundle '{name}' is missing: run `make bundle` (or `make synth`, which "
            "builds it)"
        )
    if record.sources != sources_digest(name):
        shared = "".join(f", lambda/{path}" for path in SHARED_SOURCES.get(name, ()))
        raise FileNotFoundError(
            f"Lambda bundle '{name}' is out of date with lambda/{name}, lambda/common{shared} "
            "or its lock: run `make bundle` (or `make synth`, which builds it)"
        )
    hold(record.folder)
    return record


def asset_code(folder: Path, digest: str) -> lambda_.Code:
    """A folder as Lambda code whose asset hash is ``digest`` (no fingerprinting)."""
    return lambda_.Code.from_asset(
        str(folder), asset_hash=digest, asset_hash_type=AssetHashType.CUSTOM
    )


def bundle_code(name: str) -> lambda_.Code:
    """The bundle of function ``name`` as an asset (no Docker: built locally beforehand)."""
    record = bundle_record(name)
    return asset_code(record.folder, record.digest)
