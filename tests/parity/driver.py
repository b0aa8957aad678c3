"""Run one Lambda handler from a bundle, on the interpreter that runs this file (CPython 3.13).

Started by the parity tests as ``python3.13 -I -S driver.py``: isolated (no PYTHON* variables,
no user or site packages), so ``sys.path`` holds the standard library only until the bundle
is put first, as on Lambda (where ``/var/task`` leads). Reads one JSON request on stdin:
``{"bundle": folder, "module": "handler", "function": "handler", "event": ...,
"environment": {...}}``, and prints ``{"result": ...}`` or ``{"error": "Type: message"}``.
Standard library only: nothing of the project or the development environment is importable.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


class Context:
    """The parts of the Lambda runtime's context object the handlers and Powertools read."""

    function_name = "parity"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-west-2:123456789012:function:parity"
    aws_request_id = "0f0e0d0c-0b0a-4909-8807-060504030201"

    def __init__(self) -> None:
        self._end = time.monotonic() + 300

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left (five minutes from the start)."""
        return int((self._end - time.monotonic()) * 1000)


def main() -> int:
    """Import the handler from the bundle, call it once, print the outcome as JSON."""
    request: dict[str, Any] = json.loads(sys.stdin.read())
    outside = [p for p in sys.path if "site-packages" in p or "dist-packages" in p]
    if outside:
        print(json.dumps({"error": f"sys.path holds installed packages: {outside}"}))
        return 1
    os.environ.update(request.get("environment", {}))
    sys.path.insert(0, request["bundle"])
    os.chdir(request["bundle"])  # relative paths (GRADER_CONFIG) resolve as in /var/task
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # the handlers' log lines must not mix with the answer
    try:
        module = __import__(request.get("module", "handler"))
        function = getattr(module, request.get("function", "handler"))
        result = function(request["event"], Context())
        answer = {"result": result, "origin": module.__file__}
    except Exception as error:  # the test prints it; one line is enough here
        answer = {"error": f"{type(error).__name__}: {error}"}
    sys.stdout = real_stdout
    print(json.dumps(answer, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
