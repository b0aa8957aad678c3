"""A grader definition checked at synth by the reward Lambda's own loader (no second validator).

The loader is ``load_definition`` of the Lambda's ``grading`` package, imported as the deployed
bundle imports it (``lambda/reward`` and ``lambda/common`` on ``sys.path``). Loading builds every
grader of the definition, so an unknown ``type``, a regular expression that does not compile or
a template with a syntax error fails synth instead of every sample at training time.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

# Not stacks.lambda_code's: importing it would start aws-cdk-lib in preflight and report too.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
_LAMBDA_FOLDERS = (PROJECT_ROOT / "lambda" / "common", PROJECT_ROOT / "lambda" / "reward")
_REWARD_LOCK = PROJECT_ROOT / "lambda" / "reward" / "requirements.txt"
# Importable in the deployed function beside its lock: the bundle's own packages, and the AWS
# SDK the Lambda Python runtime provides.
_BUNDLE_MODULES = frozenset({"grading", "handler", "rft_common", "boto3", "botocore"})
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.MULTILINE)


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


@cache
def reward_modules() -> frozenset[str]:
    """The top-level modules the reward bundle carries: its lock's distributions (as this
    environment, which installs the same pins, maps them to modules) and its own packages."""
    locked = {_normalized(name) for name in _PIN.findall(_REWARD_LOCK.read_text("utf-8"))}
    return _BUNDLE_MODULES | {
        module
        for module, distributions in packages_distributions().items()
        if any(_normalized(distribution) in locked for distribution in distributions)
    }


def grader_problem(path: Path, extra_modules: frozenset[str] = frozenset()) -> str | None:
    """``<JSON path>: <what is wrong>`` for an invalid definition file, else None; a python
    grader may import the reward bundle's modules and ``extra_modules`` (the top-level modules
    of the environment's ``reward_function.extra_packages``)."""
    for folder in _LAMBDA_FOLDERS:
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    from grading import DefinitionError, load_definition
    from grading.imports import restrict_to

    # A python grader's imports must resolve in the bundle, not in this development environment.
    restrict_to(
        lambda: reward_modules() | extra_modules, elsewhere=extra_modules - reward_modules()
    )
    try:
        load_definition(path)
    except DefinitionError as err:
        return f"{err.path}: {err.problem}"
    finally:
        restrict_to(None)
    return None
