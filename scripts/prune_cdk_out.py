"""Delete what a cloud assembly (``cdk.out``) holds that its manifest no longer names.

The CDK copies each asset to ``cdk.out/asset.<hash>`` and never removes one, so every changed
bundle left its old copy behind (hundreds of MB per change); nor does it remove the templates
of a stack it no longer synthesizes (an environment removed from cdk.json). After a synth,
everything the new ``manifest.json`` names is kept: the asset entries its asset manifests use,
and the stack files (``<stack>.template.json``, ``.assets.json``, ``.metadata.json``) of its
artifacts; every other ``asset.*`` entry and stack file goes. ``make synth`` runs this right
after ``cdk synth``.

The copies that remain are the Lambda bundles of ``.build/`` byte for byte (the CDK stages a
folder asset by copying it): each copied file that equals its bundle's file is replaced by a
hard link to it, so a bundle takes its space once, not once in ``.build`` and again in
``cdk.out``. Sound because bundles are content-addressed and never written after they are
complete; a file that differs (or a file system without hard links) keeps its copy.

Usage: ``python scripts/prune_cdk_out.py [cdk.out]``
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def referenced_assets(assembly: Path) -> set[str]:
    """The ``asset.*`` names of ``assembly`` that its manifest's asset manifests use."""
    manifest = json.loads((assembly / "manifest.json").read_text(encoding="utf-8"))
    used: set[str] = set()
    for artifact in manifest.get("artifacts", {}).values():
        if artifact.get("type") != "cdk:asset-manifest":
            continue
        assets = json.loads((assembly / artifact["properties"]["file"]).read_text("utf-8"))
        for entry in assets.get("files", {}).values():
            used.add(Path(entry["source"]["path"]).name)
        for entry in assets.get("dockerImages", {}).values():
            used.add(Path(entry["source"]["directory"]).name)
    return used


STACK_FILES = ("*.template.json", "*.assets.json", "*.metadata.json")


def referenced_files(assembly: Path) -> set[str]:
    """The stack files (templates, asset manifests, metadata) the manifest's artifacts name."""
    manifest = json.loads((assembly / "manifest.json").read_text(encoding="utf-8"))
    used: set[str] = set()
    for artifact in manifest.get("artifacts", {}).values():
        properties = artifact.get("properties", {})
        for key in ("templateFile", "file"):
            if isinstance(properties.get(key), str):
                used.add(Path(properties[key]).name)
        if isinstance(artifact.get("additionalMetadataFile"), str):
            used.add(Path(artifact["additionalMetadataFile"]).name)
    return used


def prune_assembly(assembly: Path) -> list[str]:
    """Delete the unreferenced ``asset.*`` entries and stack files of ``assembly``; return
    their names (assets first, then stack files, each sorted)."""
    used = referenced_assets(assembly)
    named = referenced_files(assembly)
    stale = [entry for entry in sorted(assembly.glob("asset.*")) if entry.name not in used]
    stale += sorted(
        {entry for pattern in STACK_FILES for entry in assembly.glob(pattern)}
        - {assembly / name for name in named}
    )
    removed = []
    for entry in stale:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry.name)
    return removed


def _store_index(store: Path) -> dict[tuple[str, int], list[Path]]:
    """The regular files under each folder of ``store`` (``.build/bundles``,
    ``.build/assets``), by (path inside that folder, size)."""
    index: dict[tuple[str, int], list[Path]] = {}
    for top in (store / "bundles", store / "assets"):
        for folder in sorted(p for p in top.glob("*") if p.is_dir()) if top.is_dir() else []:
            for base, _, names in os.walk(folder):
                for name in names:
                    path = Path(base, name)
                    if path.is_symlink() or not path.is_file():
                        continue
                    key = (str(path.relative_to(folder)), path.stat().st_size)
                    index.setdefault(key, []).append(path)
    return index


def link_assets(assembly: Path, store: Path) -> int:
    """Replace each file of ``assembly``'s staged folder assets that equals the same file of a
    bundle in ``store`` by a hard link to it; return the bytes this frees."""
    index = _store_index(store)
    freed = 0
    for asset in sorted(p for p in assembly.glob("asset.*") if p.is_dir()):
        for base, _, names in os.walk(asset):
            for name in names:
                path = Path(base, name)
                info = path.lstat()
                if not path.is_file() or path.is_symlink() or info.st_nlink > 1:
                    continue
                key = (str(path.relative_to(asset)), info.st_size)
                for candidate in index.get(key, []):
                    if not filecmp.cmp(path, candidate, shallow=False):
                        continue
                    temporary = path.with_name(f".{name}.link")
                    try:
                        os.link(candidate, temporary)
                        os.replace(temporary, path)
                    except OSError:  # another file system, or no hard links: keep the copy
                        temporary.unlink(missing_ok=True)
                        break
                    freed += info.st_size
                    break
    return freed


def main(argv: list[str]) -> int:
    """Prune the given cloud assembly (default ``cdk.out``)."""
    assembly = Path(argv[0] if argv else "cdk.out")
    if not (assembly / "manifest.json").is_file():
        print(f"prune: {assembly}/manifest.json does not exist (run `make synth` first)")
        return 2
    removed = prune_assembly(assembly)
    if removed:
        print(f"prune: removed {len(removed)} superseded asset(s) or stack file(s) from {assembly}")
    link_assets(assembly, ROOT / ".build")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
