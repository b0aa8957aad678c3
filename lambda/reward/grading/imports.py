"""Whether a ``python`` grader's imports resolve where it will run, checked before its source runs.

OpenAI's python grader image carries numpy, scipy, pandas and more; the reward Lambda carries
only its own lock. A definition importing a module the Lambda lacks should fail once, at load
(cold start, ``make synth``, ``make preflight``), with one line naming the module, not score 0
on every sample with ``ModuleNotFoundError`` at grading time (an import inside ``grade``).

Every ``import`` of the source counts, at module level or inside functions, except those
under a ``try`` that catches ``ImportError`` (the source has its own fallback). Only the
top-level package is looked up (``importlib.util.find_spec`` of ``numpy`` for
``numpy.linalg``): this finds it without importing it, so cold start does not pay for it.

In the Lambda, ``sys.path`` is the bundle, so ``find_spec`` answers exactly. At synth and in
preflight the interpreter is the development environment, which has more packages than the
bundle: :func:`restrict_to` then limits the answer to the modules the bundle carries. The
environment's extra packages (``reward_function.extra_packages``) are built for Linux arm64,
not for this interpreter: a source importing one of them is not run there
(:func:`runs_here`), only checked.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Callable

_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
# Empty: whatever this interpreter finds (the Lambda); else what gives the only third-party
# top-level modules taken to exist (synth and preflight: the reward bundle's), asked only when
# a python grader imports something beyond the standard library.
_RESTRICTION: dict[str, Callable[[], frozenset[str]]] = {}
# Of those, the top-level modules this interpreter cannot import (bundled for Lambda only).
_ELSEWHERE: dict[str, frozenset[str]] = {}


def restrict_to(
    modules: Callable[[], frozenset[str]] | None, elsewhere: frozenset[str] = frozenset()
) -> None:
    """Take only the top-level names ``modules()`` gives to exist beside the standard library,
    of which ``elsewhere`` exist only in the Lambda, or, with ``None``, whatever this
    interpreter finds."""
    if modules is None:
        _RESTRICTION.pop("modules", None)
        _ELSEWHERE.pop("modules", None)
    else:
        _RESTRICTION["modules"] = modules
        _ELSEWHERE["modules"] = elsewhere


def runs_here(tree: ast.AST) -> bool:
    """Whether this interpreter can run ``tree``'s imports: none of them is a module that
    exists only in the Lambda (an environment's extra package, at synth)."""
    elsewhere = _ELSEWHERE.get("modules", frozenset())
    return not any(module.partition(".")[0] in elsewhere for module, _ in imported(tree))


def available(name: str) -> bool:
    """Whether the top-level package of module ``name`` resolves."""
    top = name.partition(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    if (allowed := _RESTRICTION.get("modules")) is not None:
        return top in allowed()
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _catches_import_errors(node: ast.Try | ast.TryStar) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(n, ast.Name) and n.id in _IMPORT_ERRORS for n in names):
            return True
    return False


def imported(tree: ast.AST) -> list[tuple[str, int]]:
    """``(module, line)`` of every absolute import not guarded by an ``ImportError`` handler."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try | ast.TryStar) and _catches_import_errors(node):
            for statement in node.body:
                guarded.update(id(inner) for inner in ast.walk(statement))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
    return sorted(found, key=lambda pair: pair[1])


def first_missing(tree: ast.AST) -> tuple[str, int] | None:
    """The first import (module, line) of ``tree`` that does not resolve, if any."""
    for module, line in imported(tree):
        if not available(module):
            return module, line
    return None
