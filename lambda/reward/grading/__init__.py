"""The grader library behind the reward Lambda: grader definitions (JSON) turned into rewards.

``load_definition`` validates a definition (raising :class:`DefinitionError` with the JSON path
of a problem); ``grade_event`` grades one batch of rollouts with it.
"""

from grading.base import Batch, Grade, Grader
from grading.definition import Definition, definition_from_env, load_definition, parse_definition
from grading.errors import DefinitionError, SampleError
from grading.runner import BatchResult, grade_event

__all__ = [
    "Batch",
    "BatchResult",
    "Definition",
    "DefinitionError",
    "Grade",
    "Grader",
    "SampleError",
    "definition_from_env",
    "grade_event",
    "load_definition",
    "parse_definition",
]
