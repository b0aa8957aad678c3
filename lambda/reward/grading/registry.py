"""Grader types and how to build them; a type's module is imported only if it is used."""

from __future__ import annotations

import importlib
from typing import Any, Final

from grading.base import Grader
from grading.spec import Spec

# type -> (module under grading.graders, class name)
GRADER_TYPES: Final[dict[str, tuple[str, str]]] = {
    "string_check": ("string_check", "StringCheck"),
    "text_similarity": ("text_similarity", "TextSimilarity"),
    "score_model": ("model_judge", "ScoreModel"),
    "label_model": ("model_judge", "LabelModel"),
    "python": ("python_code", "PythonGrader"),
    "multi": ("multi", "Multi"),
    "math_answer": ("math_answer", "MathAnswer"),
    "json_schema": ("json_schema", "JsonSchema"),
    "regex": ("regex_match", "RegexMatch"),
    "format": ("format_check", "FormatCheck"),
    "length": ("length", "Length"),
}


def build_grader(spec: Spec, default_name: str) -> Grader:
    """The grader an object of the definition describes (validated; raises DefinitionError)."""
    kind = spec.choice("type", tuple(GRADER_TYPES))
    name = spec.string("name", default_name)
    module_name, class_name = GRADER_TYPES[kind]
    module = importlib.import_module(f"grading.graders.{module_name}")
    grader_class: Any = getattr(module, class_name)
    grader: Grader = grader_class.from_spec(spec, name)
    spec.finish()
    return grader
