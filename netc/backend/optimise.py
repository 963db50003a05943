"""Optional hook into the optimisation passes (``netc.compiler.passes``), when they exist."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from netc.backend.emit import BackendError
from netc.compiler.ir import Graph

Explain = Callable[[str, Graph], None]

NOT_AVAILABLE = "optimisation passes are not available yet in this version of netc"


def pipeline() -> Callable[..., Graph] | None:
    """``netc.compiler.passes.run_pipeline`` if that package provides it, else None."""
    try:
        if importlib.util.find_spec("netc.compiler.passes") is None:
            return None
        mod = importlib.import_module("netc.compiler.passes")
    except ImportError:
        return None
    return getattr(mod, "run_pipeline", None)


def optimise(graph: Graph, level: int | None = None, names: list[str] | None = None,
             explain: Explain | None = None) -> Graph:
    """Run the pass pipeline at ``level`` (or the named passes) on ``graph``."""
    run = pipeline()
    if run is None:
        raise BackendError(NOT_AVAILABLE, hint="build without passes (drop -O/--passes/--explain)")
    return run(graph, level, names, explain)
