"""The JSON Schema of spec files, as committed: what ``netc check`` validates against.

The schema is generated from the op registry and the train config by
``netc.compiler.schema`` and committed as ``netc/dsl/netc.schema.json`` (editors
point their ``yaml-language-server`` modeline at it, and ``netc check`` loads it
from here without importing the generator); ``tests/test_schema.py`` fails if it
is stale: regenerate with ``netc schema -o netc/dsl/netc.schema.json``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("netc.schema.json")


@cache
def load_schema() -> dict[str, Any]:
    """The committed schema (fast path used by ``netc check``)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
