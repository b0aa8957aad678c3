"""``make mutation``: mutation testing (mutmut) of the modules that decide money, a score each.

mutmut names a mutant after its file's path from the working directory, and its tests must
import the mutated module by that name. The Lambda packages are imported from their bundle's
root (``lambda/<function>`` on ``sys.path``: ``rft_eval.gate``, not
``lambda.evaluation.rft_eval.gate``), so the run happens in a copy of the project under
``.build/mutation/`` where each mutated package sits at the top (``rft_eval/``) and is gone from
its function's folder; the tests' own ``sys.path`` set-up then finds the mutated copy. The
project itself is never modified.

Only the test files that cover the chosen modules run (:data:`TESTS`, or ``--tests``): mutation
runs every covering test once per mutant. Survivors are listed by name; ``--show`` prints
their diffs. Scores count a timeout as killed, a mutant no test reaches as survived.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / ".build" / "mutation"
MUTMUT = [sys.executable, "-m", "mutmut"]

# The modules that decide money (make's MUTATION_MODULES overrides the list).
MODULES = (
    "lambda/evaluation/rft_eval/gate.py",
    "lambda/evaluation/rft_eval/stats.py",
    "lambda/job/rft_job/identity.py",
    "lambda/reward/grading/answers.py",
    "lambda/reward/grading/mathlists.py",
)
# The test files that cover each module (a module not listed needs --tests).
TESTS = {
    "lambda/evaluation/rft_eval/gate.py": ("tests/unit/test_eval_gate.py",),
    "lambda/evaluation/rft_eval/stats.py": (
        "tests/unit/test_eval_gate.py",
        "tests/unit/test_eval_parts.py",
    ),
    # test_identity_inputs.py synthesizes with the built bundles, which the staged copy has not.
    "lambda/job/rft_job/identity.py": (
        "tests/unit/test_job_spec.py",
        "tests/unit/test_job_identity.py",
    ),
    "lambda/reward/grading/answers.py": (
        "tests/unit/test_reward_gsm8k.py",
        "tests/unit/test_reward_math_answer.py",
        "tests/unit/test_reward_fast_paths.py",
        "tests/unit/test_math_answer_kinds.py",
        "tests/unit/test_math_community.py",
        "tests/unit/test_reward_degenerate.py",
        "tests/unit/test_answers_mutants.py",
    ),
    "lambda/reward/grading/mathlists.py": (
        "tests/unit/test_math_lists.py",
        "tests/unit/test_math_community.py",
    ),
}
KILLED = {"killed", "timeout", "caught by type check"}
NOT_COUNTED = {"skipped", "not checked"}


class MutationError(RuntimeError):
    """A module or test the run cannot use (one line)."""


def package_of(module: str) -> tuple[str, str]:
    """``(function folder, package)`` of ``lambda/<function>/<package>/.../<module>.py``."""
    parts = Path(module).parts
    if len(parts) < 4 or parts[0] != "lambda" or not module.endswith(".py"):
        raise MutationError(
            f"{module}: not a module of a Lambda package (lambda/<function>/<package>/...py)"
        )
    if not (ROOT / module).is_file():
        raise MutationError(f"{module}: no such file")
    return f"lambda/{parts[1]}", parts[2]


def tests_for(modules: Sequence[str], given: Sequence[str]) -> list[str]:
    """The test files to run: ``given``, else every module's from :data:`TESTS`."""
    if given:
        chosen = list(given)
    else:
        missing = [m for m in modules if m not in TESTS]
        if missing:
            raise MutationError(f"{missing[0]}: no test files known for it; name them with --tests")
        chosen = sorted({t for m in modules for t in TESTS[m]})
    for test in chosen:
        if not (ROOT / test).is_file():
            raise MutationError(f"{test}: no such test file")
    return chosen


def project_files() -> list[str]:
    """The project's files as the work tree has them (tracked or new, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    skip = (".venv", "node_modules", ".build")
    return [f for f in listed.split("\0") if f and not f.startswith(skip) and (ROOT / f).is_file()]


def stage(modules: Sequence[str], tests: Sequence[str]) -> None:
    """The copy of the project mutmut runs in, and its ``setup.cfg``."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    for name in project_files():
        target = STAGE / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    shared = ROOT.parent / "shared"
    if shared.is_dir():  # the tests' real data (tests/lambda_loader.SHARED_DATA)
        (STAGE / "shared").symlink_to(shared)
    packages = sorted({package_of(m) for m in modules})
    for folder, package in packages:
        if (STAGE / package).exists():
            raise MutationError(f"{folder}/{package}: a folder {package} exists at the top")
        shutil.move(str(STAGE / folder / package), str(STAGE / package))
    sources = [package for _, package in packages]
    only = [str(Path(package_of(m)[1], *Path(m).parts[3:])) for m in modules]
    also = sorted(p.name for p in STAGE.iterdir() if p.name not in {*sources, "shared"})

    def listing(values: Sequence[str]) -> str:
        return "".join(f"\n    {v}" for v in values)

    (STAGE / "setup.cfg").write_text(
        "[mutmut]\n"
        f"source_paths ={listing(sources)}\n"
        f"only_mutate ={listing(only)}\n"
        f"also_copy ={listing(also)}\n"
        f"pytest_add_cli_args_test_selection ={listing(tests)}\n"
        f"pytest_add_cli_args ={listing(['-p', 'no:cacheprovider', '-p', 'no:xdist', '-q'])}\n",
        encoding="utf-8",
    )


def module_of(key: str) -> str:
    """``rft_eval.gate`` of ``rft_eval.gate.x_decide__mutmut_3`` (or of a method's key)."""
    parts = key.split(".")
    for index, part in enumerate(parts):
        if part.startswith(("x_", "xǁ")):
            return ".".join(parts[:index])
    return key.rsplit(".", 1)[0]


def results(modules: Sequence[str]) -> dict[str, dict[str, str]]:
    """Every mutant's status, by module, from the results mutmut keeps beside each mutated
    file (``mutants/<path>.meta``), named as mutmut names them."""
    import json

    from mutmut.stats import status_by_exit_code

    found: dict[str, dict[str, str]] = defaultdict(dict)
    for module in modules:
        meta = STAGE / "mutants" / Path(package_of(module)[1], *Path(module).parts[3:])
        codes = json.loads(meta.with_name(meta.name + ".meta").read_text(encoding="utf-8"))
        for key, code in codes["exit_code_by_key"].items():
            found[module_of(key)][key] = status_by_exit_code[code]
    return found


def report(found: dict[str, dict[str, str]], show: bool) -> list[str]:
    """One line per module (score, counts), then the survivors; the lines printed."""
    lines = []
    for module in sorted(found):
        counts = Counter(found[module].values())
        counted = sum(n for status, n in counts.items() if status not in NOT_COUNTED)
        killed = sum(counts[s] for s in KILLED)
        score = f"{killed / counted:.1%}" if counted else "n/a"
        other = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s not in KILLED)
        lines.append(f"{module}: {score} killed ({killed} of {counted}; {other or 'none left'})")
    for module in sorted(found):
        survivors = [k for k, s in sorted(found[module].items()) if s not in KILLED | NOT_COUNTED]
        for key in survivors:
            lines.append(f"  survived: {key} ({found[module][key]})")
            if show:
                diff = subprocess.run(
                    [*MUTMUT, "show", key], cwd=STAGE, capture_output=True, text=True, check=False
                ).stdout
                lines.extend(f"    {d}" for d in diff.splitlines()[1:] if d.strip())
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Stage, run mutmut, print the scores; 0 when mutmut ran, 2 with one line on bad input."""
    if importlib.util.find_spec("mutmut") is None:
        print("make mutation: mutmut is not installed (requirements-dev.txt)", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="make mutation", description=__doc__)
    parser.add_argument("modules", nargs="*", default=list(MODULES))
    parser.add_argument("--tests", nargs="*", default=[], help="test files (default: TESTS)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tested at once")
    parser.add_argument("--show", action="store_true", help="print every survivor's diff")
    args = parser.parse_args(argv)
    try:
        modules = list(dict.fromkeys(args.modules))
        for module in modules:
            package_of(module)
        tests = tests_for(modules, args.tests)
        stage(modules, tests)
    except MutationError as err:
        print(f"make mutation: {err}", file=sys.stderr)
        return 2
    print(f"mutating {len(modules)} module(s) against {len(tests)} test file(s) in {STAGE.name}/")
    run = subprocess.run(
        [*MUTMUT, "run", "--max-children", str(max(1, args.jobs))], cwd=STAGE, check=False
    )
    if run.returncode != 0:
        print(f"make mutation: mutmut run failed (exit {run.returncode})", file=sys.stderr)
        return 1
    for line in report(results(modules), args.show):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
