"""Typed, path-aware reading of one JSON object of a grader definition.

Every getter names the JSON path of a bad value (``$.graders.accuracy.operation``) so the
person editing the definition sees where the problem is; :meth:`Spec.finish` rejects keys no
getter asked for, which catches typos such as ``"refrence"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, Final

from grading.errors import DefinitionError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING: Final = object()
# bool before number: a JSON boolean is a Python int
_JSON_TYPES: Final = (
    (bool, "boolean"),
    (int | float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def child_path(path: str, key: str | int) -> str:
    """The JSON path of ``key`` under ``path`` (``$.a.b``, ``$.a[0]``, ``$.a["b c"]``)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{path}.{key}"
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{path}["{escaped}"]'


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for error messages."""
    if value is None:
        return "null"
    for kind, name in _JSON_TYPES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


class Spec:
    """One JSON object of the definition and its path, read through typed getters."""

    def __init__(self, data: Any, path: str = "$") -> None:
        if not isinstance(data, dict):
            raise DefinitionError(path, f"must be an object, got {json_type(data)}")
        self.data: dict[str, Any] = data
        self.path = path
        self._known: set[str] = set()

    def at(self, key: str | int) -> str:
        """The JSON path of one of this object's keys."""
        return child_path(self.path, key)

    def error(self, key: str, problem: str) -> DefinitionError:
        """A :class:`DefinitionError` located at ``key``."""
        return DefinitionError(self.at(key), problem)

    def has(self, key: str) -> bool:
        """Whether ``key`` is present (and not null)."""
        self._known.add(key)
        return self.data.get(key) is not None

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        """The value of ``key`` as it is, or ``default``; missing without a default is an error."""
        self._known.add(key)
        value = self.data.get(key)
        if value is None:
            if default is _MISSING:
                raise self.error(key, "required key is missing")
            return default
        return value

    def string(self, key: str, default: Any = _MISSING, *, empty: bool = False) -> Any:
        """A string value (non-empty unless ``empty``)."""
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {json_type(value)}")
        if not empty and not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def number(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        integer: bool = False,
    ) -> Any:
        """A finite number within ``[minimum, maximum]`` (an integer if ``integer``)."""
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number, got {json_type(value)}")
        if not math.isfinite(value):
            raise self.error(key, "must be a finite number")
        if integer and value != int(value):
            raise self.error(key, f"must be a whole number, got {value}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {value}")
        return int(value) if integer else float(value)

    def boolean(self, key: str, default: Any = _MISSING) -> Any:
        """A boolean value."""
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {json_type(value)}")
        return value

    def choice(self, key: str, options: Iterable[str], default: Any = _MISSING) -> Any:
        """One of ``options``."""
        allowed = tuple(options)
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if value not in allowed:
            shown = value if isinstance(value, str) else json_type(value)
            raise self.error(key, f"'{shown}' is not allowed; allowed: {', '.join(allowed)}")
        return value

    def strings(self, key: str, default: Any = _MISSING, *, min_items: int = 1) -> Any:
        """A list of non-empty strings with at least ``min_items`` items."""
        value = self.raw(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, list):
            raise self.error(key, f"must be an array of strings, got {json_type(value)}")
        if len(value) < min_items:
            raise self.error(key, f"must have at least {min_items} item(s)")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                where = child_path(self.at(key), index)
                raise DefinitionError(where, f"must be a non-empty string, got {json_type(item)}")
        return list(value)

    def child(self, key: str) -> Spec:
        """The object under ``key`` as a :class:`Spec`."""
        return Spec(self.raw(key), self.at(key))

    def ignore(self, *keys: str) -> None:
        """Accept ``keys`` without using them (OpenAI fields with no meaning here)."""
        self._known.update(keys)

    def finish(self) -> None:
        """Reject keys that no getter asked for (typos, fields of another grader type)."""
        unknown = sorted(set(self.data) - self._known)
        if unknown:
            allowed = ", ".join(sorted(self._known))
            raise self.error(unknown[0], f"unknown key; allowed here: {allowed}")
