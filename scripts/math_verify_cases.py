"""Write Math-Verify's published test cases as data: ``benchmarks/data/math_verify_cases.json``.

``python scripts/math_verify_cases.py GIT_DIR COMMIT``: GIT_DIR is a clone of Math-Verify's
public repository (Apache-2.0); its test files at COMMIT are read as Python source (``ast``,
never imported or run) and every ``pytest.mark.parametrize`` case of a test that compares a
gold and a prediction is written out with the options the test passes to ``parse`` and
``verify`` (extraction targets, float rounding, strictness, set/relation comparison). The
benchmark ``benchmarks/bench_math_verify_cases.py`` grades these cases with ``math_answer``
and with ``math_verify`` in the same run. The licence of the source goes beside the data.

Run once per pinned version; the output is deterministic for a commit.
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "data" / "math_verify_cases.json"
LICENCE_OUT = ROOT / "benchmarks" / "data" / "math_verify_cases.LICENCE"
# The test files whose cases compare a gold answer with a prediction. The other test files
# check options (timeouts, raise_on_error, string extraction) rather than verdicts.
FILES = (
    "tests/test_all.py",
    "tests/test_boxed.py",
    "tests/test_numina_cases.py",
    "tests/test_open_thoughts.py",
    "tests/test_strict.py",
    "tests/test_yujianll.py",
)
# In these files the argument named ``gold`` holds the model's output and ``pred`` the short
# answer (``compare_strings`` parses both alike): the benchmark swaps them so that the
# reference is the short answer, as a dataset's reference is.
SWAPPED = ("tests/test_boxed.py", "tests/test_open_thoughts.py")


def _show(git_dir: str, commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", git_dir, "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _value(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        # f-strings over ``math`` (test_float_precision): evaluated with math and nothing else
        code = compile(ast.Expression(node), "<case>", "eval")
        return eval(code, {"__builtins__": {}, "math": math})  # noqa: S307


def _call_options(function: ast.FunctionDef) -> dict[str, Any] | None:
    """The options of the test's ``compare_strings(...)`` call, or those of plain
    ``verify(parse(gold), parse(pred))``; None for a test that compares nothing."""
    for node in ast.walk(function):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        if node.func.id == "compare_strings":
            options: dict[str, Any] = {
                "match_types": ["latex", "expr"],
                "precision": 6,
                "strict": True,
                "allow_set_relation_comp": False,
            }
            for keyword in node.keywords:
                if isinstance(keyword.value, ast.Name):  # a parameter: filled per case
                    options[str(keyword.arg)] = {"param": keyword.value.id}
                else:
                    options[str(keyword.arg)] = ast.literal_eval(keyword.value)
            return options
        if node.func.id == "verify":
            return {"match_types": "default", "precision": 6, "strict": True}
    return None


def cases(git_dir: str, commit: str) -> list[dict[str, Any]]:
    """Every gold/prediction case of the pinned test files, in file order."""
    out: list[dict[str, Any]] = []
    for path in FILES:
        tree = ast.parse(_show(git_dir, commit, path))
        for function in tree.body:
            if not isinstance(function, ast.FunctionDef) or not function.decorator_list:
                continue
            options = _call_options(function)
            if options is None:
                continue
            for decorator in function.decorator_list:
                if not (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Attribute)
                    and decorator.func.attr == "parametrize"
                ):
                    continue
                names = [n.strip() for n in ast.literal_eval(decorator.args[0]).split(",")]
                assert isinstance(decorator.args[1], ast.List)
                for element in decorator.args[1].elts:
                    values = dict(zip(names, _value(element), strict=True))
                    case_options = {
                        key: values[value["param"]] if isinstance(value, dict) else value
                        for key, value in options.items()
                    }
                    gold, pred = values["gold"], values["pred"]
                    if path in SWAPPED:
                        gold, pred = pred, gold
                    expected = values.get("expected", values.get("result"))
                    out.append(
                        {
                            "source": f"{path}::{function.name}",
                            "line": element.lineno,
                            "gold": gold,
                            "pred": pred,
                            "expected": bool(expected),
                            **case_options,
                        }
                    )
    return out


def main(argv: list[str]) -> int:
    """Write the cases and the licence of the pinned commit."""
    if len(argv) != 2:
        print("usage: python scripts/math_verify_cases.py GIT_DIR COMMIT", file=sys.stderr)
        return 2
    git_dir, commit = argv
    commit = subprocess.run(
        ["git", "--git-dir", git_dir, "rev-parse", commit],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    found = cases(git_dir, commit)
    document = {
        "source": "https://github.com/huggingface/Math-Verify",
        "commit": commit,
        "version": "0.8.0",
        "licence": "Apache-2.0 (math_verify_cases.LICENCE)",
        "note": (
            "Math-Verify's own test cases (gold, prediction, expected verdict, options), "
            "extracted by scripts/math_verify_cases.py; in "
            + ", ".join(SWAPPED)
            + " gold and prediction are swapped so that gold is the short answer"
        ),
        "cases": found,
    }
    OUT.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    LICENCE_OUT.write_text(_show(git_dir, commit, "LICENCE"), encoding="utf-8")
    print(f"{len(found)} cases from {commit[:12]} -> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
