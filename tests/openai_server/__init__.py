"""One local OpenAI-compatible HTTP server for every test (standard library only).

It speaks the HTTP API the real ``openai`` SDK calls, on 127.0.0.1, so the code under test runs
unchanged, SDK and all, against it:

- ``server.py``: :class:`OpenAIServer`, the HTTP side and what all endpoints share (request
  log, bearer token, injected failures, in-flight counts, rendezvous, clean stop);
- ``chat.py``: chat completions and embeddings, answered by a test's *behaviour*;
- ``judges.py``: ready-made behaviours for LLM-judge tests and readers of the judge's prompt;
- ``students.py``: models that answer a known share of math prompts right (evaluation tests);
- ``fine_tuning.py``: files, fine-tuning jobs, events and checkpoints, as Bedrock's
  OpenAI-compatible API ("Mantle") documents them.

Usage (the ``openai_server`` fixture of ``tests/conftest.py`` does the first three lines)::

    with OpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        server.chat.behaviour = rubric_judge(lambda text: 10.0 if "Paris" in text else 0.0)
        server.fine_tuning.set_status(job_id, "succeeded", fine_tuned_model="ft:...")
        server.throttle(2, method="GET")
"""

from tests.openai_server.chat import Behaviour, Chat, Reply
from tests.openai_server.fine_tuning import FineTuning
from tests.openai_server.judges import (
    enclosed_response,
    failing_first,
    outside_markers,
    rubric_judge,
    structured_judge,
    structured_reply,
)
from tests.openai_server.server import OpenAIServer, Recorded
from tests.openai_server.students import Students
from tests.openai_server.wire import ApiError

__all__ = [
    "ApiError",
    "Behaviour",
    "Chat",
    "FineTuning",
    "OpenAIServer",
    "Recorded",
    "Reply",
    "Students",
    "enclosed_response",
    "failing_first",
    "outside_markers",
    "rubric_judge",
    "structured_judge",
    "structured_reply",
]
