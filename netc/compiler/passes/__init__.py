"""Optimisation passes: inference clean-up and layer fusion, Graph → Graph.

Every pass is a pure function of an inference graph (``graph.training`` is False);
training graphs pass through unchanged. ``run_pipeline`` runs the passes of an -O
level (or the passes named), checks the IR after each one, and reports a failing
pass by name together with the passes run before it. The torch side (turning a
trained, unoptimised module into the optimised eval module with the same outputs,
``optimize_module``) lives in ``netc.backend.weights``: this package never imports
torch, so ``netc compile --format ir -O2`` stays torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from netc.compiler.ir import Graph, verify
from netc.compiler.passes import (
    channels_last,
    collapse_reshapes,
    eliminate_dropout,
    eliminate_identity,
    fold_batchnorm,
    fuse_activation,
    fuse_attention,
    lower_maxpool,
    merge_projections,
)
from netc.compiler.passes.base import Pass, PassError
from netc.diagnostics import UsageError, did_you_mean

__all__ = ["LEVELS", "PASSES", "PIPELINE", "Pass", "PassError", "pipeline_names", "run_pipeline", "steps"]

Explain = Callable[[str, Graph], None]

# The name → pass registry; a new pass adds one line here and one to PIPELINE.
PASSES: dict[str, Pass] = {p.name: p for p in (
    eliminate_dropout.PASS,
    eliminate_identity.PASS,
    collapse_reshapes.PASS,
    fold_batchnorm.PASS,
    fuse_attention.PASS,
    merge_projections.PASS,
    lower_maxpool.PASS,
    fuse_activation.PASS,
    channels_last.PASS,
)}

# The default pipeline, in order. Each pass runs at its own level and above.
PIPELINE: tuple[str, ...] = (
    # -O1: inference clean-up
    "eliminate_dropout",    # Dropout is the identity in eval mode
    "eliminate_identity",   # Identity nodes (and what dropout removal exposes)
    "collapse_reshapes",    # reshape/flatten/permute chains → one, no-ops removed
    # -O2: fusion
    "fold_batchnorm",       # Conv/Dense + BatchNorm → Conv/Dense with folded weights
    "fuse_attention",       # MultiHeadAttention → packed q/k/v Dense + scaled_dot_product_attention + Dense
    "merge_projections",    # sibling projections of one tensor → one layer + slices (after folding: equal biases)
    "lower_maxpool",        # max pooling with stride = kernel → maxima of strided views (no argmax indices)
    "fuse_activation",      # activation in place on the fresh output of the layer before it
    "channels_last",        # conv stacks run NHWC (oneDNN's fast layout); last, as it only adds layout nodes
)

LEVELS = (0, 1, 2)


def pipeline_names(level: int | None = 2, names: list[str] | None = None) -> list[str]:
    """The passes to run: ``names`` (checked) if given, else those of -O``level`` in pipeline order."""
    if names is not None:
        for n in names:
            if n not in PASSES:
                raise UsageError(f"unknown pass {n!r}; passes: {', '.join(PIPELINE)}",
                                 hint=did_you_mean(n, PASSES) or "see netc compile --help")
        return list(names)
    level = 2 if level is None else level
    if level not in LEVELS:
        raise UsageError(f"unknown optimisation level -O{level}", hint="use -O0, -O1 or -O2")
    return [n for n in PIPELINE if PASSES[n].level <= level]


def steps(graph: Graph, level: int | None = 2, names: list[str] | None = None) -> Iterator[tuple[Pass, Graph]]:
    """Run the pipeline one pass at a time, yielding (pass, graph after it); verifies every graph."""
    order = pipeline_names(level, names)
    _verified(graph, None, [])
    for k, name in enumerate(order):
        p = PASSES[name]
        try:
            after = p(graph)
        except Exception as e:
            raise _failure(name, order[:k], f"{type(e).__name__}: {e}") from e
        if after is not graph:
            _verified(after, name, order[:k])
        yield p, after
        graph = after


def run_pipeline(graph: Graph, level: int | None = 2, names: list[str] | None = None,
                 explain: Explain | None = None) -> Graph:
    """Optimise ``graph`` at -O``level`` (or with the passes ``names``, in that order).

    ``explain(name, graph)`` is called after each pass that changed the graph. A training
    graph comes back unchanged. Raises :class:`PassError` naming the failing pass.
    """
    for p, after in steps(graph, level, names):
        if explain is not None and after != graph:
            explain(p.name, after)
        graph = after
    return graph


def _verified(graph: Graph, name: str | None, before: list[str]) -> None:
    try:
        verify(graph)
    except AssertionError as e:
        if name is None:
            raise PassError(f"the graph given to the optimiser is invalid: {e}", graph.span,
                            "this is a bug in netc's front end; please report it") from None
        raise _failure(name, before, f"it produced an invalid graph: {e}") from None


def _failure(name: str, before: list[str], what: str) -> PassError:
    ran = f" (after {', '.join(before)})" if before else " (the first pass)"
    return PassError(f"optimisation pass {name!r} failed{ran}: {what}", None,
                     "this is a bug in netc; compile with -O0, or leave the pass out with --passes, and please report it")
