"""Import a Lambda function's handler module in tests, and the context the runtime passes it.

``lambda`` is not an importable package name, and every function's entry point is called
``handler.py``; so each handler is loaded from its file under a unique module name
(``<function>_handler``), with the function's folder and the shared ``lambda/common`` on
``sys.path`` for its own imports, as they are at the root of the deployed bundle.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

from stacks.bundle_store import SHARED_SOURCES

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_DIR = ROOT / "lambda"
SHARED_DATA = ROOT.parent / "shared" / "data"
FUNCTION_ARN_PREFIX = "arn:aws:lambda:us-west-2:123456789012:function:"


def load_handler(function: str, *, fresh: bool = False) -> ModuleType:
    """Return ``lambda/<function>/handler.py`` as module ``<function>_handler``.

    ``fresh=True`` re-executes the module (for tests of cold-start behaviour that depends on
    environment variables read at import).
    """
    name = f"{function}_handler"
    if not fresh and name in sys.modules:
        return sys.modules[name]
    # A shared package (stacks/bundle_store.SHARED_SOURCES) is imported from its own folder's
    # parent, as its function's tests import it.
    shared = [(LAMBDA_DIR / path).parent for path in SHARED_SOURCES.get(function, ())]
    for folder in (LAMBDA_DIR / "common", *shared, LAMBDA_DIR / function):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, LAMBDA_DIR / function / "handler.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no handler at lambda/{function}/handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class LambdaContext:
    """The parts of the Lambda runtime's context object that the handlers and Powertools read;
    the remaining time counts down from ``remaining_ms``, as the runtime's does."""

    def __init__(
        self,
        function_name: str = "test-function",
        *,
        remaining_ms: float = 300_000,
        request_id: str = "0f0e0d0c-0b0a-4909-8807-060504030201",
        memory_limit_in_mb: int = 512,
    ) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-west-2:123456789012:function:{function_name}"
        )
        self.aws_request_id = request_id
        self._end = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left, as the Lambda runtime reports them."""
        return max(0, int((self._end - time.monotonic()) * 1000))
