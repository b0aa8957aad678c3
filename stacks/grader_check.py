"""A grader definition checked at synth by the reward Lambda's own loader (no second validator).

The loader is ``load_definition`` of the Lambda's ``grading`` package, imported as the deployed
bundle imports it (``lambda/reward`` and ``lambda/common`` on ``sys.path``). Loading builds every
grader of the definition, so an unknown ``type``, a regular expression that does not compile or
a template with a syntax error fails synth instead of every sample at training time.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Not stacks.lambda_code's: importing it would start aws-cdk-lib in preflight and report too.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
_LAMBDA_FOLDERS = (PROJECT_ROOT / "lambda" / "common", PROJECT_ROOT / "lambda" / "reward")


def grader_problem(path: Path) -> str | None:
    """``<JSON path>: <what is wrong>`` for an invalid definition file, else None."""
    for folder in _LAMBDA_FOLDERS:
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    from grading import DefinitionError, load_definition

    try:
        load_definition(path)
    except DefinitionError as err:
        return f"{err.path}: {err.problem}"
    return None
