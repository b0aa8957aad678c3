"""Infrastructure changes of each stack, from the CDK toolkit's own template diff.

``template_diff.js`` runs ``@aws-cdk/cloudformation-diff`` (what ``cdk diff`` prints) on both
templates and returns its findings as JSON; this module only classifies them: replaced and
removed resources, and which of those hold data.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.review.synth import ROOT, ReviewError

SCRIPT = Path(__file__).with_name("template_diff.js")
# Resources whose replacement or removal loses what they hold: objects, the key that
# decrypts them, logs.
DATA_TYPES = {
    "AWS::S3::Bucket": "bucket",
    "AWS::KMS::Key": "KMS key",
    "AWS::Logs::LogGroup": "log group",
}
REPLACING = {"WILL_REPLACE", "MAY_REPLACE"}
KEEPING_POLICIES = {"Retain", "RetainExceptOnCreate", "Snapshot"}


@dataclass
class StackChanges:
    """What the template diff found for one stack."""

    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    modified: list[dict[str, Any]] = field(default_factory=list)
    replaced: list[dict[str, Any]] = field(default_factory=list)
    data_loss: list[str] = field(default_factory=list)
    iam: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def resource_changes(self) -> int:
        """Resources added, removed, modified or replaced."""
        return len(self.added) + len(self.removed) + len(self.modified) + len(self.replaced)

    @property
    def iam_changes(self) -> int:
        """IAM statements and managed policy attachments added or removed."""
        return sum(
            len(self.iam.get(key, []))
            for key in (
                "statements_added",
                "statements_removed",
                "managed_policies_added",
                "managed_policies_removed",
            )
        )


def template_diffs(pairs: dict[str, tuple[Path | None, Path | None]]) -> dict[str, StackChanges]:
    """Stack name -> its changes from the (base, head) templates (None: no such stack)."""
    request = [
        {"stack": name, "old": old and str(old), "new": new and str(new)}
        for name, (old, new) in pairs.items()
    ]
    done = subprocess.run(
        ["node", str(SCRIPT)],
        input=json.dumps(request),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ReviewError(f"template diff failed: {last}")
    found = json.loads(done.stdout)
    return {name: classify(found[name], pairs[name][0]) for name in pairs}


def classify(diff: dict[str, Any], base_template: Path | None) -> StackChanges:
    """Sort the toolkit's resource differences; name the data a change puts at risk."""
    base = json.loads(base_template.read_text(encoding="utf-8")) if base_template else {}
    old_resources = base.get("Resources", {})
    changes = StackChanges(iam=diff["iam"], text=diff["text"])
    for resource in diff["resources"]:
        entry = {
            "logical_id": resource["logical_id"],
            "type": resource["type"],
            "path": resource["path"],
            "impact": resource["impact"],
        }
        if resource["change"] == "added":
            changes.added.append(entry)
        elif resource["change"] == "removed":
            changes.removed.append(entry)
        elif resource["impact"] in REPLACING:
            entry["properties"] = [
                p["name"] for p in resource["properties"] if p["impact"] in REPLACING
            ]
            changes.replaced.append(entry)
        else:
            changes.modified.append(entry)
        what = DATA_TYPES.get(resource["type"])
        gone = resource["change"] == "removed" or entry in changes.replaced
        if what and gone:
            policy = old_resources.get(resource["logical_id"], {}).get("DeletionPolicy", "Delete")
            verb = "removed" if resource["change"] == "removed" else "replaced"
            kept = (
                f" (DeletionPolicy {policy}: the old one is kept, detached from the stack)"
                if policy in KEEPING_POLICIES
                else " (DeletionPolicy Delete: its contents are deleted)"
            )
            changes.data_loss.append(
                f"{what} {resource['path'] or resource['logical_id']} is {verb}{kept}"
            )
    return changes
