"""``python`` (OpenAI-compatible): a ``grade(sample, item) -> float`` function shipped in the
definition's ``source``.

Example::

    {"type": "python", "name": "exact",
     "source": "def grade(sample, item):\\n    return float(sample['output_text'] == 'yes')"}

``sample`` is ``{"output_text", "output_json", "output_tools", "output_audio", "choices",
"messages"}`` (as OpenAI documents it; ``output_audio`` is always empty) and ``item`` the dataset
item with the prompt ``messages``, both fresh copies per call. The function's return value is
what a ``multi`` formula sees; the reward is that value limited to [0, 1]. ``pass_threshold``
(OpenAI's evals field) adds a ``<name>_passed`` metric (1 when the value reaches it) and leaves
the reward as it is. A call that raises or returns something other than a
finite number fails its sample (``grader_error``), not the batch.

The source runs in the Lambda's own interpreter, with the Lambda's permissions: it is code of
this repository, reviewed like any other, not an untrusted upload (OpenAI sandboxes it because
there it comes from API users). The source is compiled and its module body run once, at cold
start, so a syntax error or a missing ``grade`` fails the deployment's first invocation and
``make test``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

from grading.base import Grade, Grader
from grading.errors import DefinitionError, SampleError
from grading.samples import Sample
from grading.spec import Spec

GradeFunction = Callable[[dict[str, Any], dict[str, Any]], Any]


def compile_grade_function(source: str, path: str) -> GradeFunction:
    """Compile ``source``, run its module body, and return its ``grade`` function."""
    try:
        code = compile(source, "<grader source>", "exec")
    except SyntaxError as err:
        raise DefinitionError(path, f"syntax error on line {err.lineno}: {err.msg}") from None
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


class PythonGrader(Grader):
    """The value of the definition's ``grade(sample, item)``."""

    type_name = "python"

    def __init__(
        self, name: str, *, function: GradeFunction, pass_threshold: float | None = None
    ) -> None:
        super().__init__(name)
        self.function = function
        self.pass_threshold = pass_threshold

    @classmethod
    def from_spec(cls, spec: Spec, name: str) -> PythonGrader:
        """Build from the definition."""
        spec.ignore("image_tag")  # OpenAI's runtime image: the Lambda's runtime is used here
        return cls(
            name,
            function=compile_grade_function(spec.string("source"), spec.at("source")),
            pass_threshold=spec.number("pass_threshold", None),
        )

    def grade(self, sample: Sample) -> Grade:
        """Grade one sample."""
        value = self.function(sample.python_view(), sample.python_item())
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, int | float) or not math.isfinite(value):
            kind = type(value).__name__ if not isinstance(value, float) else str(value)
            raise SampleError(f"grade() returned {kind}, not a finite number")
        raw = float(value)
        grade = Grade(raw=raw, score=min(1.0, max(0.0, raw)))
        if self.pass_threshold is None:
            return grade
        # OpenAI's evals field: whether the value reaches it, as a metric; the reward is the value
        passed = 1.0 if raw >= self.pass_threshold else 0.0
        return Grade(raw=raw, score=grade.score, details=((f"{self.name}_passed", passed),))
