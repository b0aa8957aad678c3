"""The runtime-parity tests run only under ``make parity`` (scripts/parity.py), which builds
the bundles for this machine and names the CPython 3.13 to run them with."""

from __future__ import annotations

import os

PARITY_PYTHON = "RFT_PARITY_PYTHON"
# Collected only when scripts/parity.py found a CPython 3.13 and built the bundles.
collect_ignore_glob = [] if os.environ.get(PARITY_PYTHON) else ["test_*.py"]
