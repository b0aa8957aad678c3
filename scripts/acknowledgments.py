"""Print every cdk-nag acknowledgment (per rule pack, with the stacks each pack gates) and
checkov skip of the synthesized app, with its reason.

Usage: ``python scripts/acknowledgments.py [ENV]`` (``make acknowledgments [ENV=name]``).
The list is what the compliance gate lets through; reviewers read it next to ``cdk diff``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aws_cdk as cdk

from app import build_app
from stacks.config import ConfigError
from stacks.nag import ACKNOWLEDGED, compliance_packs, rule_packs
from stacks.rft_stack import RftStack


def _env_path(path: str) -> str:
    """``BedrockRft-dev/Staging/Key`` as ``*/Staging/Key``: the same in every environment."""
    return "*/" + path.split("/", 1)[1] if "/" in path else path


def _gated_stacks(stacks: list[RftStack]) -> dict[str, list[str]]:
    """Per pack name, the environments' stacks it gates ("every stack" for the app-wide ones)."""
    gated: dict[str, list[str]] = {pack.read_pack_name: ["every stack"] for pack in rule_packs()}
    for stack in stacks:
        for pack in compliance_packs(stack.config.compliance_packs):
            gated.setdefault(pack.read_pack_name, []).append(stack.stack_name)
    return gated


def main(argv: list[str]) -> int:
    """Build the app (all environments, or one) and print the acknowledgments as Markdown.

    A configuration problem (an unknown environment, a bad value, a missing file) is one line
    on stderr and exit status 2, as ``make synth`` reports it.
    """
    try:
        context = json.loads(Path("cdk.json").read_text(encoding="utf-8"))["context"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as err:
        print(f"acknowledgments: cdk.json: cannot read the context ({err})", file=sys.stderr)
        return 2
    if argv:
        context["env"] = argv[0]
    with tempfile.TemporaryDirectory() as outdir:
        app = cdk.App(outdir=outdir, context=context)
        try:
            stacks = build_app(app)
        except (ConfigError, FileNotFoundError) as err:
            lines = err.lines if isinstance(err, ConfigError) else [str(err)]
            print("\n".join(f"acknowledgments: {line}" for line in lines), file=sys.stderr)
            return 2
        nag: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        for path, rule_id, reason in ACKNOWLEDGED:
            nag[(_env_path(path), rule_id, reason)].add(path.split("/", 1)[0])
        skips: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        for stack in stacks:
            template = app.synth().get_stack_by_name(stack.stack_name).template
            for logical_id, resource in template["Resources"].items():
                for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                    skips[(logical_id, skip["id"], skip["comment"])].add(stack.stack_name)
    gated = _gated_stacks(stacks)
    by_pack: dict[str, list[tuple[tuple[str, str, str], set[str]]]] = defaultdict(list)
    for key, where in sorted(nag.items()):
        by_pack[key[1].split("-", 1)[0]].append((key, where))
    for pack, entries in sorted(by_pack.items(), key=lambda item: (item[0] not in gated, item)):
        print(f"## cdk-nag acknowledgments: {pack} ({len(entries)})\n")
        gates = gated.get(pack)
        print(f"Gates: {', '.join(gates) if gates else 'no synthesized stack'}.\n")
        print("| construct | finding | reason | stacks |\n|---|---|---|---|")
        for (path, rule_id, reason), where in entries:
            print(f"| `{path}` | `{rule_id}` | {reason} | {len(where)} |")
        print()
    print(f"## checkov skips ({len(skips)})\n")
    print("| resource | check | reason | stacks |\n|---|---|---|---|")
    for (logical_id, check, reason), where in sorted(skips.items()):
        print(f"| `{logical_id}` | `{check}` | {reason} | {len(where)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
