"""One rollout of the batch Bedrock sends, parsed defensively.

The AWS samples disagree on the rollout's shape (reference §2), so every documented variant is
accepted: the reference under ``metadata`` or at the top level, any JSON shape of reference,
the role ``nova_assistant``, and message content as a string or a list of text blocks.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from grading.errors import SampleError

ASSISTANT_ROLES: Final = frozenset({"assistant", "nova_assistant"})
# Keys of a rollout that are not dataset fields.
_ENVELOPE: Final = frozenset({"id", "messages", "metadata"})
_UNPARSED: Final = object()


@dataclass(slots=True)
class Sample:
    """A gradable rollout: the model's final answer and the dataset item it answers."""

    id: Any
    output_text: str
    # The dataset item: ``reference_answer`` and every other field of the JSONL record.
    item: dict[str, Any]
    _raw_messages: list[Any] = field(default_factory=list, repr=False)
    _messages: list[dict[str, str]] | None = field(default=None, repr=False)
    _output_json: Any = field(default=_UNPARSED, repr=False)

    @property
    def output_json(self) -> Any:
        """The response parsed as JSON (a single fenced block is unwrapped), else ``None``."""
        if self._output_json is _UNPARSED:
            self._output_json = parse_json_output(self.output_text)
        return self._output_json

    @property
    def prompt_messages(self) -> list[Any]:
        """The messages before the response (the dataset item's prompt, as OpenAI's
        ``item.messages``), unchanged."""
        end = _last_assistant(self._raw_messages)
        return list(self._raw_messages[: len(self._raw_messages) if end is None else end])

    @property
    def response_message(self) -> dict[str, Any]:
        """The response as a chat-completions assistant message: ``role``, ``content`` and,
        when the model called tools, ``tool_calls``."""
        message: dict[str, Any] = {"role": "assistant", "content": self.output_text}
        if tools := self.output_tools:
            message["tool_calls"] = tools
        return message

    @property
    def output_tools(self) -> list[dict[str, Any]]:
        """The tool calls of the response, in the chat-completions shape ``{"id", "type":
        "function", "function": {"name", "arguments"}}`` (arguments a JSON string)."""
        end = _last_assistant(self._raw_messages)
        calls = self._raw_messages[end].get("tool_calls") if end is not None else None
        if not isinstance(calls, list):
            return []
        return [_tool_call(call) for call in calls if isinstance(call, dict)]

    @property
    def choices(self) -> list[dict[str, Any]]:
        """OpenAI's ``sample.choices``: one choice whose ``message`` is the response."""
        return [
            {"index": 0, "finish_reason": _finish_reason(self), "message": self.response_message}
        ]

    def python_view(self) -> dict[str, Any]:
        """``sample`` as OpenAI's python grader receives it (fresh objects on every call)."""
        return {
            "output_text": self.output_text,
            "output_json": copy.deepcopy(self.output_json),
            "output_tools": self.output_tools,
            "output_audio": {},  # rollouts carry no audio
            "choices": self.choices,
            "messages": copy.deepcopy(self.messages),
        }

    def python_item(self) -> dict[str, Any]:
        """``item`` as OpenAI's python grader receives it: the dataset fields and, unless the
        dataset has its own, the prompt ``messages`` (a fresh copy on every call)."""
        item = copy.deepcopy(self.item)
        if "messages" not in item:
            item["messages"] = copy.deepcopy(self.prompt_messages)
        return item

    @property
    def messages(self) -> list[dict[str, str]]:
        """The conversation as ``{role, content}`` with text content (built when first used)."""
        if self._messages is None:
            self._messages = [
                {"role": message["role"], "content": content_text(message.get("content"), "")}
                for message in self._raw_messages
            ]
        return self._messages


def _last_assistant(messages: list[Any]) -> int | None:
    """The index of the last assistant turn (the response), if any."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, dict) and str(message.get("role", "")).lower() in ASSISTANT_ROLES:
            return index
    return None


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """One tool call in the chat-completions shape (arguments given as an object are encoded,
    as chat completions carries them as a JSON string)."""
    function = call.get("function")
    function = function if isinstance(function, dict) else {}
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    shaped: dict[str, Any] = {
        "type": call.get("type") or "function",
        "function": {"name": function.get("name", ""), "arguments": arguments},
    }
    if "id" in call:
        shaped["id"] = call["id"]
    return shaped


def _finish_reason(sample: Sample) -> str:
    # The rollout does not say why generation stopped; a response with tool calls stopped to
    # call them, as chat completions reports it.
    return "tool_calls" if sample.output_tools else "stop"


def parse_json_output(text: str) -> Any:
    """``text`` as JSON, also when the whole text is one Markdown code fence; else ``None``."""
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and len(body) >= 6:
        body = body[3:-3]
        first_line, _, rest = body.partition("\n")
        # The fence's info string ("json") is not part of the document.
        if first_line.strip().isidentifier():
            body = rest
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def content_text(content: Any, where: str) -> str:
    """The text of a message's content: a string, a text block, or a list of blocks."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""  # e.g. an assistant turn that only called tools
    if isinstance(content, dict):
        content = [content]
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                # {"type": "text" | "output_text", "text": ...}; image blocks carry no text
                parts.append(block["text"])
        return "".join(parts)
    raise SampleError(f"{where}.content is a {type(content).__name__}, not text")


def _metadata(raw: Any) -> dict[str, Any]:
    """The rollout's metadata as a dict (a JSON-encoded object is decoded; else empty)."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            decoded = json.loads(raw)
        except ValueError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return {}


def rollouts_of(event: Any) -> list[Any]:
    """The rollouts of an invocation, in every shape AWS's reward-function samples accept
    (reference §9.5): the documented bare JSON array; ``{"trajectories": [...]}`` (the
    gpt-oss GSM8K and Codeforces samples); a single rollout object (the Nova judge sample
    wraps it into a list). The answer is always the list of scores, in rollout order, as
    every one of those samples returns it. Raise ``TypeError`` for anything else.
    """
    if type(event) is list:  # the documented shape: nothing to unwrap
        return event
    if isinstance(event, dict):
        trajectories = event.get("trajectories")
        if isinstance(trajectories, list):
            return trajectories
        return [event]  # one rollout (or an object that is none: it scores 0, named)
    raise TypeError(
        "reward handler: the event must be a JSON array of rollouts, an object with "
        f"'trajectories', or one rollout object; got {type(event).__name__}"
    )


def parse_rollout(raw: Any) -> Sample:
    """Parse one rollout; raise :class:`SampleError` (worded without response text) if unusable."""
    samples, errors = parse_rollouts([raw])
    if errors:
        raise errors[0]
    return samples[0]


def parse_rollouts(event: Sequence[Any]) -> tuple[list[Sample], dict[int, SampleError]]:
    """Parse a batch of rollouts: the gradable samples in order, and why each other rollout
    (by its position in ``event``) is not gradable.

    The shape Bedrock sends (as JSON decodes it: a string or integer id, messages with string
    roles, the response's content a string, the reference under ``metadata`` or nowhere) is
    read in one pass here; any other shape is read, or rejected, by :func:`_parse_rollout`.
    """
    samples: list[Sample] = []
    errors: dict[int, SampleError] = {}
    for index, raw in enumerate(event):
        if type(raw) is dict:
            sample_id = raw.get("id")
            messages = raw.get("messages")
            size = len(raw)
            if (
                ((type(sample_id) is str and sample_id) or type(sample_id) is int)
                and type(messages) is list
                and (answer := _plain_answer(messages)) is not None
            ):
                if size == 2:  # just id and messages
                    samples.append(Sample(sample_id, answer, {}, messages))
                    continue
                if size == 3 and type(metadata := raw.get("metadata")) is dict:
                    samples.append(Sample(sample_id, answer, metadata.copy(), messages))
                    continue
        try:
            samples.append(_parse_rollout(raw))
        except SampleError as err:
            errors[index] = err
    return samples, errors


def _plain_answer(messages: list[Any]) -> str | None:
    """The last assistant turn's text when every message is a dict with a string role and that
    turn's content is a string; else ``None``."""
    for message in messages:  # every message is checked, as _parse_rollout does
        if type(message) is not dict or type(message.get("role")) is not str:
            return None
    for message in reversed(messages):
        role = message["role"]
        if role == "assistant" or role.lower() in ASSISTANT_ROLES:
            answer = message.get("content")
            return answer if type(answer) is str else None
    return None


def _parse_rollout(raw: Any) -> Sample:
    """:func:`parse_rollout` for every shape the AWS samples show."""
    if not isinstance(raw, dict):
        raise SampleError(f"the rollout is a {type(raw).__name__}, not an object")
    sample_id = raw.get("id")
    if sample_id is None or sample_id == "":
        raise SampleError("the rollout has no id")
    if not isinstance(sample_id, str | int) or isinstance(sample_id, bool):
        raise SampleError(f"the rollout's id is a {type(sample_id).__name__}")
    messages = raw.get("messages")
    if not isinstance(messages, list):
        raise SampleError("the rollout has no messages list")
    answer: str | None = None
    for index, message in enumerate(messages):
        # every message is checked: a conversation with a broken turn is not trusted
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise SampleError(f"messages[{index}] is not an object with a role")
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message["role"].lower() in ASSISTANT_ROLES:
            # the last assistant turn is the response under grading
            answer = content_text(message.get("content"), f"messages[{index}]")
            break
    if answer is None:
        raise SampleError("the rollout has no assistant message")
    item = {key: value for key, value in raw.items() if key not in _ENVELOPE}
    metadata = raw.get("metadata")
    if metadata:
        item.update(_metadata(metadata))  # metadata is the documented place: it wins
    return Sample(id=sample_id, output_text=answer, item=item, _raw_messages=messages)
