"""Import a Lambda function's handler module in tests.

``lambda`` is not an importable package name, and every function's entry point is called
``handler.py``; so each handler is loaded from its file under a unique module name
(``<function>_handler``), with the function's folder and the shared ``lambda/common`` on
``sys.path`` for its own imports, as they are at the root of the deployed bundle.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_DIR = ROOT / "lambda"
SHARED_DATA = ROOT.parent / "shared" / "data"


def load_handler(function: str, *, fresh: bool = False) -> ModuleType:
    """Return ``lambda/<function>/handler.py`` as module ``<function>_handler``.

    ``fresh=True`` re-executes the module (for tests of cold-start behaviour that depends on
    environment variables read at import).
    """
    name = f"{function}_handler"
    if not fresh and name in sys.modules:
        return sys.modules[name]
    for folder in (LAMBDA_DIR / "common", LAMBDA_DIR / function):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, LAMBDA_DIR / function / "handler.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no handler at lambda/{function}/handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
