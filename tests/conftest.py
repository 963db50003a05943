"""Shared test helpers: repository paths and the golden-file refresh flag."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
# Refresh golden files with: NETC_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_diagnostics.py
UPDATE_GOLDEN = os.environ.get("NETC_UPDATE_GOLDEN") == "1"


@pytest.fixture
def one_thread():
    """Tiny models: intra-op threads only add synchronisation (and stall badly on a busy 2-core machine).

    Used by the training tests through ``pytestmark = pytest.mark.usefixtures("one_thread")``;
    torch is imported here, not at the top, so the torch-free tests never load it.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
