#!/usr/bin/env python3
"""The CDK app: one stack per environment defined in cdk.json (``-c env=NAME`` selects one),
and, where cdk.json has a ``ci`` block, the delivery stack(s) ``BedrockRft-ci`` (only when no
environment is selected: ``make deploy ENV=<name>`` deploys exactly that environment)."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from stacks.ci_stack import add_ci_stacks
from stacks.config import ConfigError, load_ci, load_environments
from stacks.lambda_code import PROJECT_ROOT
from stacks.nag import apply_compliance_packs, apply_rule_packs
from stacks.rft_stack import RftStack


def build_app(app: cdk.App) -> list[RftStack]:
    """Add the selected environments' stacks (and the CI stacks, see above) to ``app`` and gate
    it on the nag packs: AwsSolutions and Serverless everywhere, and each environment's
    ``compliance_packs`` on its own stack."""
    context = {key: app.node.try_get_context(key) for key in ("environments", "ci")}
    only = app.node.try_get_context("env") or None
    configs = load_environments(context, PROJECT_ROOT, only=only)
    stacks, problems = [], []
    for config in configs:
        try:
            stacks.append(RftStack(app, config.stack_name, config=config))
        except ConfigError as err:  # checks the constructs make; every environment's are shown
            problems += err.lines
    if problems:
        raise ConfigError(problems)
    for stack in stacks:
        apply_compliance_packs(stack, stack.config.compliance_packs)
    ci = load_ci(context)
    if ci is not None and only is None:
        for ci_stack in add_ci_stacks(app, ci, configs):
            # The deploy path into an environment's account meets that environment's packs.
            required = {pack for env in ci_stack.environments for pack in env.compliance_packs}
            apply_compliance_packs(ci_stack, sorted(required))
    apply_rule_packs(app)
    return stacks


def main() -> None:
    """Synthesize; configuration problems exit with one ``error:`` line each."""
    app = cdk.App()
    try:
        build_app(app)
    except ConfigError as err:
        sys.exit("\n".join(f"error: {line}" for line in err.lines))
    except FileNotFoundError as err:
        sys.exit(f"error: {err}")
    app.synth()


if __name__ == "__main__":
    main()
