"""The review as markdown (summary table first) or as one JSON document."""

from __future__ import annotations

import json
from typing import Any


def _cell(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text.replace("|", "\\|").replace("\n", " ")


# The toolkit's own rendering of a stack's diff, shown folded, at most this long per stack (a
# pull request comment holds 65,536 characters).
DIFF_TEXT_LIMIT = 6000


def _yes_no(facts: dict[str, Any]) -> str:
    if facts.get("retrains") is None:
        return "—"
    if facts["retrains"]:
        return "**yes**"
    return "no (job.start: false)" if facts.get("job_start") is False else "no"


def markdown(review: dict[str, Any]) -> str:
    """The report a reviewer reads: summary table, then one section per environment."""
    environments: dict[str, Any] = review["environments"]
    lines = [
        "| environment | infra changes | IAM changes | retrains | compliance |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, facts in environments.items():
        infra = str(facts["resource_changes"])
        if facts.get("moved"):
            infra += " (new stack: the environment moves)"
        elif facts["replaced"] or facts["data_loss"]:
            infra += f" ({len(facts['replaced'])} replaced)"
        iam = f"{facts['iam_changes']}" + (" (broadened)" if facts["iam_broadened"] else "")
        lines.append(
            f"| {name} | {infra} | {iam} | {_yes_no(facts)} | {_cell(facts['compliance'])} |"
        )
    if review.get("gates_failed"):
        lines += [
            "",
            "**Failing gates:** "
            + "; ".join(
                f"{name}: {', '.join(environments[name]['gates_failed'])}"
                for name in review["gates_failed"]
            )
            + " (details in the environment's section).",
        ]
    lines += ["", f"Base: `{review['base']['commit'][:12]}` ({review['base']['ref']})."]
    lines += [f"- {note}" for note in review["notes"]]
    for name, facts in environments.items():
        lines += ["", f"## {name}", ""]
        lines += _infra_section(facts)
        lines += _retraining_section(facts)
        lines += _diff_text(facts["cdk_diff"])
    return "\n".join(lines) + "\n"


def _diff_text(text: str) -> list[str]:
    """``cdk diff``'s own text of the stack, folded."""
    if not text.strip():
        return []
    if len(text) > DIFF_TEXT_LIMIT:
        text = text[:DIFF_TEXT_LIMIT] + "\n[... cut: run make review for the whole diff]"
    return [
        "",
        "<details><summary>cdk diff</summary>",
        "",
        "```",
        text.rstrip(),
        "```",
        "</details>",
    ]


def _infra_section(facts: dict[str, Any]) -> list[str]:
    lines = []
    if facts.get("moved"):
        lines.append(
            f"**Moves:** {facts['moved']['from']} → {facts['moved']['to']}: {facts['old_job']}."
        )
    lines += [
        f"**Infrastructure:** {facts['resource_changes']} resource change(s): "
        f"{len(facts['added'])} added, {len(facts['removed'])} removed, "
        f"{facts['modified']} modified, {len(facts['replaced'])} replaced."
    ]
    lines += [f"- :warning: data loss risk: {risk}" for risk in facts["data_loss"]]
    for entry in facts["replaced"]:
        lines.append(
            f"- replaced: `{entry['path'] or entry['logical_id']}` ({entry['type']}; "
            f"{', '.join(entry['properties']) or 'its type'} changed)"
        )
    for kind in ("added", "removed"):
        lines += [f"- {kind}: `{e['path'] or e['logical_id']}` ({e['type']})" for e in facts[kind]]
    iam = facts["iam"]
    if facts["iam_changes"]:
        broadened = " that **broaden** permissions" if facts["iam_broadened"] else ""
        lines += [
            "",
            f"**IAM:** {facts['iam_changes']} change(s){broadened}:",
            "",
            "| | resource | effect | action | principal | condition |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for sign, key in (("+", "statements_added"), ("-", "statements_removed")):
            for s in iam[key]:
                cells = [s["resource"], s["effect"], s["action"], s["principal"], s["condition"]]
                lines.append(f"| {sign} | " + " | ".join(_cell(c) for c in cells) + " |")
        for sign, key in (("+", "managed_policies_added"), ("-", "managed_policies_removed")):
            lines += [f"| {sign} | managed policy {_cell(arn)} | | | | |" for arn in iam[key]]
    return lines


def _retraining_section(facts: dict[str, Any]) -> list[str]:
    lines = ["", f"**Retraining:** {facts['retraining']}."]
    for change in facts["identity_changes"]:
        note = f" ({change['note']})" if change.get("note") else ""
        lines.append(
            f"- {change['input']}: `{_cell(change['old'])}` → `{_cell(change['new'])}`{note}"
        )
    if facts.get("old_job"):
        lines.append(f"- {facts['old_job']}")
    if facts.get("grader_version"):
        lines.append(f"- {facts['grader_version']}")
    volume = facts.get("volume")
    if volume:
        samples = volume["samples_per_prompt"] or "?"
        lines.append(
            f"- training volume (estimate): {volume['records']:,} records x {samples} samples "
            f"per prompt x {volume['epochs']} epoch(s)"
            + (f" = {volume['rollouts']:,} rollouts" if volume["rollouts"] else "")
            + f"; {volume['prompt_tokens_per_epoch']:,} prompt tokens per pass over the data"
            + (f", {volume['prompt_tokens']:,} in all" if volume["prompt_tokens"] else "")
        )
        if volume["cost"] is not None:
            lines.append(f"- cost (estimate): ${volume['cost']:,.2f}")
        if volume["note"]:
            lines.append(f"- {volume['note']}")
    preflight = facts.get("preflight")
    if preflight:
        verdict = "passes" if preflight["passed"] else "**fails**"
        lines.append(
            f"- preflight of the changed dataset / grader {verdict}: "
            f"{preflight['errors']} error(s), {preflight['warnings']} warning(s)"
        )
        lines += [f"  - {finding}" for finding in preflight["findings"]]
    return lines


def json_line(review: dict[str, Any]) -> str:
    """The same facts as one JSON document on one line (sorted keys: same inputs, same text)."""
    return json.dumps(review, sort_keys=True, separators=(",", ":"))
