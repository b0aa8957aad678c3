"""Bytecode for the development environment, written once at install (``make install``).

pip compiles every module it installs, and aws-cdk-lib ships some 350 service modules whose
bytecode (about 165 MB of ``.venv``) nothing here imports. So ``.venv`` is installed with
``pip --no-compile`` and this compiles what pip would have, but for aws-cdk-lib's service
modules; of those, it compiles exactly the ones the project needs, by importing every
``aws_cdk`` module the project's code imports (they import the modules they need in turn)
with bytecode writing on. Written at install rather than left to the first import: where
``PYTHONDONTWRITEBYTECODE`` is set (many containers set it), a module without bytecode is
compiled again by every process that imports it, some 5 s per synth.

Usage: ``.venv/bin/python scripts/compile_venv.py`` (the environment to compile is the one
running it).
"""

from __future__ import annotations

import ast
import compileall
import importlib
import re
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project's Python code, whose imports of aws_cdk modules decide which get bytecode.
PROJECT_CODE = ("app.py", "stacks", "scripts", "tests", "benchmarks", "preflight")
# aws-cdk-lib's service modules (every folder under aws_cdk/), left to the imports below.
CDK_SERVICE_MODULES = re.compile(r"[/\\]aws_cdk[/\\][^/\\]+[/\\]")


def cdk_modules(root: Path = ROOT) -> list[str]:
    """The ``aws_cdk`` modules the project's code imports (``import aws_cdk.x``,
    ``from aws_cdk.x import ...``, ``from aws_cdk import x`` when ``x`` is a module name)."""
    files = [root / "app.py"] if (root / "app.py").is_file() else []
    for folder in PROJECT_CODE[1:]:
        files += sorted((root / folder).rglob("*.py")) if (root / folder).is_dir() else []
    found: set[str] = set()
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue  # not this script's concern: ruff and the tests report it
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
                if node.module == "aws_cdk":
                    # modules are lower case; App, Stack, Duration are classes
                    found.update(f"aws_cdk.{a.name}" for a in node.names if a.name.islower())
    return sorted(name for name in found if name.startswith("aws_cdk."))


def main() -> int:
    """Compile the running environment's packages; one line when a CDK import fails."""
    site = sysconfig.get_paths()["purelib"]
    compileall.compile_dir(site, quiet=1, rx=CDK_SERVICE_MODULES)
    # Imports write their bytecode even where PYTHONDONTWRITEBYTECODE is set: this is install.
    sys.dont_write_bytecode = False
    failed = []
    for name in cdk_modules():
        try:
            importlib.import_module(name)
        except ImportError:
            failed.append(name)
        except Exception as error:  # e.g. no Node.js for the CDK's runtime
            failed.append(f"{name} ({type(error).__name__}: {error})")
    if failed:
        print(f"compile_venv: not imported, compiled at first import instead: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
