"""Build the Lambda bundles under ``.build/bundles/`` without Docker (``make bundle``).

``python scripts/bundle_lambdas.py [--host] [--no-bytecode] [name ...]``: the command line of
``stacks/bundling.py``, which says how a bundle is built.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stacks.bundling import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
