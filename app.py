#!/usr/bin/env python3
"""The CDK app: one stack per environment defined in cdk.json (``-c env=NAME`` selects one)."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from stacks.config import ConfigError, load_environments
from stacks.lambda_code import PROJECT_ROOT
from stacks.nag import apply_rule_packs
from stacks.rft_stack import RftStack


def build_app(app: cdk.App) -> list[RftStack]:
    """Add the selected environments' stacks to ``app`` and gate it on the nag packs."""
    context = {"environments": app.node.try_get_context("environments")}
    only = app.node.try_get_context("env") or None
    stacks, problems = [], []
    for config in load_environments(context, PROJECT_ROOT, only=only):
        try:
            stacks.append(RftStack(app, config.stack_name, config=config))
        except ConfigError as err:  # checks the constructs make; every environment's are shown
            problems += err.lines
    if problems:
        raise ConfigError(problems)
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
