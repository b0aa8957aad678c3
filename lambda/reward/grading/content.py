"""Judge message content with images: OpenAI's ``input_image`` parts next to text parts.

OpenAI's ``score_model`` / ``label_model`` inputs may hold ``{"type": "input_image",
"image_url": ..., "detail": ...}`` parts (the SDK's ``GraderInputs``). They reach the judge as
chat-completions image parts ``{"type": "image_url", "image_url": {"url", "detail"}}``, and the
text parts as ``{"type": "text", "text"}``, in their order. A message without images keeps the
plain text content the judge code builds itself.

An ``image_url`` may be a template over ``item`` fields (``{{ item.image_url }}``); one built
from the response is refused: a URL the policy model wrote is not an image to fetch.

A judge model known to read text only (:data:`TEXT_ONLY_MODELS`) with image parts is a
definition error naming the model, at load time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from grading.errors import DefinitionError
from grading.samples import Sample
from grading.spec import Spec, child_path
from grading.templates import Template

IMAGE_PART: Final = "input_image"
# Bedrock model ids (a cross-region prefix such as "us." aside) of judges that take text only,
# per their Bedrock model cards: gpt-oss, the Qwen3 text models (not Qwen3-VL), DeepSeek R1/V3,
# Nova Micro. A model not listed is sent the images; an endpoint that refuses them fails the
# sample as a judge error.
TEXT_ONLY_MODELS: Final = (
    re.compile(r"^openai\.gpt-oss-"),
    re.compile(r"^qwen\.qwen3-(?!vl)"),
    re.compile(r"^deepseek\."),
    re.compile(r"^amazon\.nova-micro-"),
)
_REGION_PREFIX: Final = re.compile(r"^(?:us|eu|apac|jp|au|ca|us-gov|global)\.")
_DETAILS: Final = ("auto", "low", "high")


def has_images(content: Any) -> bool:
    """Whether a message's content (a part or a list of parts) holds an ``input_image``."""
    parts = content if isinstance(content, list) else [content]
    return any(isinstance(part, dict) and part.get("type") == IMAGE_PART for part in parts)


def text_only(model: str) -> bool:
    """Whether ``model`` is known to accept no images (see :data:`TEXT_ONLY_MODELS`)."""
    bare = _REGION_PREFIX.sub("", model)
    return any(pattern.search(bare) for pattern in TEXT_ONLY_MODELS)


class ImageContent:
    """A message's content of text and image parts, rendered to chat-completions parts."""

    def __init__(self, value: Any, path: str) -> None:
        parts = value if isinstance(value, list) else [value]
        self.parts: list[tuple[str, Template, str | None]] = []
        for index, part in enumerate(parts):
            where = child_path(path, index) if isinstance(value, list) else path
            if isinstance(part, str):
                self.parts.append(("text", Template(part, where), None))
                continue
            spec = Spec(part, where)
            kind = spec.choice("type", ("input_text", "output_text", IMAGE_PART))
            if kind == IMAGE_PART:
                url = Template(spec.string("image_url"), spec.at("image_url"))
                if url.uses_response():
                    raise spec.error("image_url", "an image URL may use item fields, not sample")
                self.parts.append(("image", url, spec.choice("detail", _DETAILS, None)))
            else:
                self.parts.append(("text", Template(spec.string("text"), spec.at("text")), None))
            spec.finish()

    def render(
        self, sample: Sample, untrusted: Callable[[str], str] | None = None
    ) -> list[dict[str, Any]]:
        """The content parts for one sample (response text enclosed by ``untrusted``)."""
        rendered: list[dict[str, Any]] = []
        for kind, template, detail in self.parts:
            if kind == "text":
                rendered.append({"type": "text", "text": template.render(sample, untrusted)})
                continue
            image: dict[str, Any] = {"url": template.render(sample)}
            if detail is not None:
                image["detail"] = detail
            rendered.append({"type": "image_url", "image_url": image})
        return rendered


def check_model_reads_images(model: str, path: str) -> None:
    """A :class:`DefinitionError` at ``path`` if ``model`` is known to take text only."""
    if text_only(model):
        raise DefinitionError(
            path, f"model '{model}' takes text only; input_image parts need a vision model"
        )


def content_text(content: str | list[dict[str, Any]]) -> str:
    """The text of rendered content (a string, or the text of its parts)."""
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if part.get("type") == "text")
