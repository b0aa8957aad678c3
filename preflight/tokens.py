"""A conservative estimate of prompt tokens, without a tokenizer.

The tokenizers of the RFT base models (gpt-oss, Qwen3, Nova) are not published with Bedrock,
and preflight must not download anything, so the count is estimated from the text the way
byte-pair encoders tend to split it: a run of ASCII letters costs about one token per six
letters (common words are one token), digits go in groups of up to three, and every other
character (punctuation, newline, each non-ASCII character) costs one. Spaces are free (BPE
merges a space into the following word). For English this gives about 1.3 tokens per word,
the usual rule of thumb; for most other text it errs high, which is the safe side for a check
against ``maxPromptLength``. How the service itself counts the prompt (chat template, default
system text) is [open]: MESSAGE_OVERHEAD approximates the template's per-message markers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_LETTERS = re.compile(r"[A-Za-z]+")
_OTHER = re.compile(r"[0-9]{1,3}|[^\sA-Za-z0-9]|\n")

# Role markers and separators a chat template adds around each message, and the tokens that
# prime the assistant's turn.
MESSAGE_OVERHEAD = 4
PROMPT_OVERHEAD = 3


def estimate_text_tokens(text: str) -> int:
    """Estimated tokens of one piece of text."""
    letters = sum((len(run) + 5) // 6 for run in _LETTERS.findall(text))
    return letters + len(_OTHER.findall(text))


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or a list of ``{"type": "text"}`` blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            block["text"]
            for block in content
            if isinstance(block, dict) and isinstance(block.get("text"), str)
        )
    return ""


def estimate_prompt_tokens(messages: Iterable[dict[str, Any]]) -> int:
    """Estimated tokens of a chat prompt (all messages plus the template's overhead)."""
    total = PROMPT_OVERHEAD
    for message in messages:
        total += MESSAGE_OVERHEAD + estimate_text_tokens(content_text(message.get("content")))
    return total
