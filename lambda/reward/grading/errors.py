"""The two kinds of failure the grader library distinguishes.

A :class:`DefinitionError` is the team's mistake in the grader JSON: it is raised while the
definition loads (at cold start, in tests and in preflight), never while grading. A
:class:`SampleError` is one rollout that cannot be graded: that sample scores 0 with a
``grader_error`` metric and the rest of the batch goes on.
"""

from __future__ import annotations


class DefinitionError(ValueError):
    """An invalid grader definition; the message names the JSON path of the problem."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"grader definition {path}: {problem}")
        self.path = path
        self.problem = problem


class SampleError(ValueError):
    """One sample cannot be graded. The message is logged: it must never quote the response."""
