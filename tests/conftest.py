"""Shared test helpers: repository paths and the golden-file refresh flag."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
# Refresh golden files with: NETC_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_diagnostics.py
UPDATE_GOLDEN = os.environ.get("NETC_UPDATE_GOLDEN") == "1"
