"""The stacks the last ``cdk synth`` produced, read from ``cdk.out/manifest.json``.

``python scripts/synthesized.py`` prints one line naming what was synthesized and where (the
end of ``make synth``); ``--templates`` prints the template paths, one per line, for
cfn-lint and checkov. The manifest is rewritten by every synth and lists only the stacks of
that run, so ``make synth ENV=dev`` followed by ``make cfn-lint ENV=dev`` scans dev's template
and not the stale templates other environments left in ``cdk.out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

STACK_TYPE = "aws:cloudformation:stack"


class ManifestError(Exception):
    """The cloud assembly cannot be read; the text says why and what to do."""


def templates(outdir: Path) -> dict[str, Path]:
    """Stack name -> template path of every stack in ``outdir``'s manifest, in manifest order."""
    manifest = outdir / "manifest.json"
    try:
        artifacts = json.loads(manifest.read_text(encoding="utf-8"))["artifacts"]
    except FileNotFoundError:
        raise ManifestError(f"{manifest}: not found: run make synth first") from None
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as err:
        raise ManifestError(f"{manifest}: cannot read it ({err}): run make synth again") from None
    found = {
        name: outdir / artifact["properties"]["templateFile"]
        for name, artifact in artifacts.items()
        if artifact.get("type") == STACK_TYPE
    }
    if not found:
        raise ManifestError(f"{manifest}: no stacks: run make synth first")
    return found


def locations(outdir: Path) -> dict[str, str]:
    """Stack name -> where it deploys (the manifest's ``aws://<account>/<region>``; an
    account-less stack says ``unknown-account``)."""
    manifest = outdir / "manifest.json"
    try:
        artifacts = json.loads(manifest.read_text(encoding="utf-8"))["artifacts"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as err:
        raise ManifestError(f"{manifest}: cannot read it ({err}): run make synth again") from None
    return {
        name: str(artifact.get("environment", ""))
        for name, artifact in artifacts.items()
        if artifact.get("type") == STACK_TYPE
    }


def summary(found: dict[str, Path]) -> str:
    """One line: which stacks were synthesized and where their templates are."""
    if len(found) == 1:
        ((name, path),) = found.items()
        return f"synthesized {name}: {path}"
    folder = next(iter(found.values())).parent
    return f"synthesized {len(found)} stacks ({', '.join(found)}) into {folder}/"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the summary line, or the template paths with ``--templates``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outdir", type=Path, default=Path("cdk.out"), help="cloud assembly")
    parser.add_argument("--templates", action="store_true", help="print the template paths")
    args = parser.parse_args(argv)
    try:
        found = templates(args.outdir)
    except ManifestError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.templates:
        print("\n".join(str(path) for path in found.values()))
    else:
        print(summary(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
