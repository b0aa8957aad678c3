"""``python`` (OpenAI-compatible): a ``grade(sample, item) -> float`` function shipped in the
definition's ``source``.

Example::

    {"type": "python", "name": "exact", "timeout_seconds": 5,
     "source": "def grade(sample, item):\\n    return float(sample['output_text'] == 'yes')"}

``sample`` is ``{"output_text", "output_json", "output_tools", "output_audio", "choices",
"messages"}`` (as OpenAI documents it; ``output_audio`` is always empty) and ``item`` the dataset
item with the prompt ``messages``, both fresh copies per call. The function's return value is
what a ``multi`` formula sees; the reward is that value limited to [0, 1]. ``pass_threshold``
(OpenAI's evals field) adds a ``<name>_passed`` metric (1 when the value reaches it) and leaves
the reward as it is. A call that raises or returns something other than a
finite number fails its sample (``grader_error``), not the batch.

Each call has a time limit, ``timeout_seconds`` (default 10, at most 120: OpenAI's guide
limits a python grader's run to two minutes), and never past the invocation's deadline: a
sample over it scores 0 with ``grader_timeout`` (and ``grader_error``), and the rest of the
batch is graded. The calls run in a forked worker process (:mod:`grading.worker`), the one
thing that can be stopped mid-call.

The source runs with the Lambda's permissions: it is code of this repository, reviewed like
any other, not an untrusted upload (OpenAI sandboxes it because there it comes from API
users). At cold start its imports are checked (:mod:`grading.imports`: a module the Lambda
lacks fails the definition with its name), then it is compiled and its module body run once,
so a syntax error, a missing package or a missing ``grade`` fails the deployment's first
invocation, ``make synth`` and ``make test``.
"""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Sequence
from typing import Any

from grading.base import GRADER_ERROR, GRADER_TIMEOUT, Batch, Grade, Grader
from grading.errors import DefinitionError
from grading.imports import first_missing, runs_here
from grading.log import logger
from grading.samples import Sample
from grading.spec import Spec
from grading.worker import Answer, GradeFunction, Worker

DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 120.0  # OpenAI's limit on a python grader's run
# A sample is not started with less time than this left before the deadline.
MIN_CALL_SECONDS = 0.05
_TIMEOUT_FLAGS = frozenset({GRADER_ERROR, GRADER_TIMEOUT})


def compile_grade_function(source: str, path: str) -> GradeFunction:
    """Compile ``source``, run its module body, and return its ``grade`` function (at synth,
    a source importing an extra package built for Lambda only is checked, not run)."""
    try:
        tree = ast.parse(source, "<grader source>")
    except SyntaxError as err:
        raise DefinitionError(path, f"syntax error on line {err.lineno}: {err.msg}") from None
    if (missing := first_missing(tree)) is not None:
        module, line = missing
        raise DefinitionError(
            path,
            f"line {line} imports '{module}', which the reward Lambda does not have (list its "
            "pinned distribution in the environment's reward_function.extra_packages)",
        )
    code = compile(tree, "<grader source>", "exec")
    if not runs_here(tree):  # at synth, with an extra package built for Linux arm64 only
        return _declared_grade_function(tree, path)
    namespace: dict[str, Any] = {"__name__": "grader_source"}
    try:
        exec(code, namespace)  # noqa: S102 (the repository's own grader code, see the module docstring)
    except Exception as err:
        raise DefinitionError(
            path, f"running the source raised {type(err).__name__}: {err}"
        ) from None
    function = namespace.get("grade")
    if not callable(function):
        raise DefinitionError(path, "the source defines no function grade(sample, item)")
    try:
        inspect.signature(function).bind({}, {})
    except TypeError:
        raise DefinitionError(path, "grade must accept two arguments: (sample, item)") from None
    except ValueError:
        pass  # no signature to inspect (a builtin): let the first call decide
    result: GradeFunction = function
    return result


def _declared_grade_function(tree: ast.Module, path: str) -> GradeFunction:
    """What can be checked of a source that cannot run here: a module-level
    ``def grade`` that accepts ``(sample, item)``; the Lambda runs the module body at cold start.
    The function returned only refuses to grade (it is never called outside the Lambda)."""
    found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "grade"]
    if not found:
        raise DefinitionError(path, "the source defines no function grade(sample, item)")
    arguments = found[-1].args
    positional = len(arguments.posonlyargs) + len(arguments.args)
    required = positional - len(arguments.defaults)
    keyword_only = any(d is None for d in arguments.kw_defaults)
    if required > 2 or keyword_only or (positional < 2 and arguments.vararg is None):
        raise DefinitionError(path, "grade must accept two arguments: (sample, item)")

    def refuse(sample: dict[str, Any], item: dict[str, Any]) -> float:
        raise RuntimeError("this python grader imports packages that only its Lambda has")

    return refuse


class PythonGrader(Grader):
    """The value of the definition's ``grade(sample, item)``, each call within a time limit."""

    type_name = "python"

    def __init__(
        self,
        name: str,
        *,
        function: GradeFunction,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        pass_threshold: float | None = None,
    ) -> None:
        super().__init__(name)
        self.function = function
        self.timeout = timeout
        self.pass_threshold = pass_threshold
        self.worker = Worker(function)

    @classmethod
    def from_spec(cls, spec: Spec, name: str) -> PythonGrader:
        """Build from the definition."""
        spec.ignore("image_tag")  # OpenAI's runtime image: the Lambda's runtime is used here
        timeout = spec.number(
            "timeout_seconds",
            DEFAULT_TIMEOUT_SECONDS,
            minimum=MIN_CALL_SECONDS,
            maximum=MAX_TIMEOUT_SECONDS,
        )
        function = compile_grade_function(spec.string("source"), spec.at("source"))
        return cls(
            name,
            function=function,
            timeout=timeout,
            pass_threshold=spec.number("pass_threshold", None),
        )

    @staticmethod
    def view(sample: Sample) -> dict[str, Any]:
        """The ``sample`` argument, with OpenAI's keys (copied on its way to the worker)."""
        return sample.python_view()

    def grade(self, sample: Sample) -> Grade:
        """Grade one sample (through :meth:`grade_batch`)."""
        return self.grade_batch([sample], Batch())[0]

    def grade_batch(self, samples: Sequence[Sample], batch: Batch) -> list[Grade]:
        """Each sample in the worker, within its limit and the invocation's deadline."""
        return [self._grade_one(sample, batch) for sample in samples]

    def _grade_one(self, sample: Sample, batch: Batch) -> Grade:
        remaining = batch.remaining()
        limit = self.timeout if remaining is None else min(self.timeout, remaining)
        if limit < MIN_CALL_SECONDS:
            return self._timed_out("no time left before the deadline")
        try:
            answer = self.worker.call(self.view(sample), sample.python_item(), limit)
        except Exception as err:  # the sample could not be sent (not JSON data)
            return Grade.failed(f"{self.name}: {type(err).__name__} sending the sample")
        return self._grade_of(sample, answer, limit)

    def _timed_out(self, why: str) -> Grade:
        return Grade(
            raw=0.0, score=0.0, flags=_TIMEOUT_FLAGS, error=f"{self.name}: grader_timeout ({why})"
        )

    def _grade_of(self, sample: Sample, answer: Answer, limit: float) -> Grade:
        if answer.status == "timeout":
            return self._timed_out(f"no result within {limit:g} s")
        if answer.status == "died":
            return Grade.failed(f"{self.name}: the grader's process ended ({answer.detail})")
        if answer.status == "raised":
            # The exception text may quote the response: it goes to debug logs only.
            logger.debug("grader %s raised on sample %r: %s", self.name, sample.id, answer.message)
            return Grade.failed(f"{self.name}: {answer.detail} while grading")
        if answer.status == "returned" or not math.isfinite(answer.value):
            kind = answer.detail or str(answer.value)
            return Grade.failed(f"{self.name}: grade() returned {kind}, not a finite number")
        raw = answer.value
        grade = Grade(raw=raw, score=min(1.0, max(0.0, raw)))
        if self.pass_threshold is None:
            return grade
        # OpenAI's evals field: whether the value reaches it, as a metric; the reward is the value
        passed = 1.0 if raw >= self.pass_threshold else 0.0
        return Grade(raw=raw, score=grade.score, details=((f"{self.name}_passed", passed),))
