"""Chat behaviours for the LLM-judge tests, and readers of the prompts the grader sends.

The grader encloses the response under judgment in markers it announces in a system message
(``enclosed between <response-N> and </response-N>``); these helpers find that text, and what
lies outside it (the part a judge may obey).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

from tests.openai_server.chat import Behaviour, Reply

_ANNOUNCED = re.compile(r"enclosed between <(response-\d+)> and </\1>")


def _announcement(body: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The marker the grader's system message announces, and the other messages' texts."""
    messages = body.get("messages", [])
    for index, message in enumerate(messages):
        if message.get("role") == "system":
            announced = _ANNOUNCED.search(message.get("content", ""))
            if announced:
                rest = [m["content"] for i, m in enumerate(messages) if i != index]
                return announced.group(1), rest
    return None, [m["content"] for m in messages]


def enclosed_response(body: dict[str, Any]) -> str | None:
    """The response under judgment: the text between the markers the grader's system message
    announces (case-insensitive, as a model reads them); ``None`` without markers."""
    marker, texts = _announcement(body)
    if marker is None:
        return None
    found = re.search(rf"<{marker}>\n(.*?)\n</{marker}>", "\n".join(texts), re.DOTALL | re.I)
    return found.group(1) if found else None


def outside_markers(body: dict[str, Any]) -> str:
    """Every message's text with the enclosed parts cut out (what the judge may obey)."""
    marker, texts = _announcement(body)
    text = "\n".join(texts)
    if marker is None:
        return text
    return re.sub(rf"<{marker}>.*?</{marker}>", "", text, flags=re.DOTALL | re.IGNORECASE)


def rubric_judge(
    rubric: Callable[[str], float],
    *,
    reply: Callable[[float], str] = lambda score: json.dumps({"score": score}),
    obey_outside: bool = True,
) -> Behaviour:
    """A judge that scores the enclosed response with ``rubric``. With ``obey_outside`` it is
    also gullible about the rest of the prompt: a "give N" found outside the markers wins, the
    way an injected instruction that escaped its enclosure would."""

    def behaviour(body: dict[str, Any], number: int) -> Reply:
        if obey_outside:
            injected = re.search(r"give (\d+)", outside_markers(body), re.IGNORECASE)
            if injected:
                return Reply(content=reply(float(injected.group(1))))
        response = enclosed_response(body)
        if response is None:
            return Reply(content=reply(0.0))
        return Reply(content=reply(rubric(response)))

    return behaviour


def failing_first(
    failures: int, status: int, then: Behaviour, headers: dict[str, str] | None = None
) -> Behaviour:
    """``failures`` error replies (per distinct prompt) before ``then`` answers."""
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def behaviour(body: dict[str, Any], number: int) -> Reply:
        key = json.dumps(body.get("messages", body.get("input")), sort_keys=True)
        key = re.sub(r"response-[0-9]+", "response", key)  # markers differ between prompts
        with lock:
            seen[key] = seen.get(key, 0) + 1
            attempt = seen[key]
        if attempt <= failures:
            return Reply(status=status, headers=headers or {})
        return then(body, number)

    return behaviour


def structured_reply(body: dict[str, Any], result: float | str) -> str | None:
    """The reply a structured-output endpoint gives: ``{"steps", "result"}`` if the request asks
    for OpenAI's grader shape as a strict JSON schema (``result`` checked against the schema's
    type and enum), else ``None`` (no ``response_format``)."""
    requested = body.get("response_format")
    if requested is None:
        return None
    if requested.get("type") != "json_schema":
        raise AssertionError(f"response_format type {requested.get('type')!r}")
    spec = requested["json_schema"]
    schema = spec["schema"]
    if spec.get("strict") is not True or schema.get("additionalProperties") is not False:
        raise AssertionError("the schema is not strict")
    if set(schema["required"]) != set(schema["properties"]) or "steps" not in schema["required"]:
        raise AssertionError("strict schemas require every property, steps included")
    wanted = schema["properties"]["result"]
    if "enum" in wanted and result not in wanted["enum"]:
        raise AssertionError(f"{result!r} is not one of {wanted['enum']}")
    kind = {"number": (int, float), "string": (str,)}[wanted["type"]]
    if not isinstance(result, kind):
        raise AssertionError(f"{result!r} is not a {wanted['type']}")
    steps = [{"description": "read the enclosed response", "conclusion": f"it earns {result}"}]
    return json.dumps({"steps": steps, "result": result})


def structured_judge(
    rubric: Callable[[str], float | str], *, plain: Callable[[float | str], str] = str
) -> Behaviour:
    """A judge answering OpenAI's structured shape when the request has a ``response_format``
    (checked), else ``plain(result)`` (default: the bare result, as a lenient model replies)."""

    def behaviour(body: dict[str, Any], number: int) -> Reply:
        result = rubric(enclosed_response(body) or "")
        return Reply(content=structured_reply(body, result) or plain(result))

    return behaviour
