"""What a pass is: a named, pure Graph → Graph function with an -O level.

A pass that changes weights (folding, merging) also names a ``weights`` rule, and a
pass that wants a module-level tweak after loading (weight memory layout) a
``finish`` hook; ``netc.backend.weights`` calls both. Rules receive and
return plain dicts of tensors, so pass modules never import torch themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netc.compiler.ir import Graph
from netc.diagnostics import NetcError

# Weights keyed by node name, then by the parameter's path inside that node's module:
# {"conv2d": {"weight": tensor, "bias": tensor}, "mha": {"out_proj.weight": tensor, ...}}
NodeWeights = dict[str, dict[str, Any]]
WeightRule = Callable[[Graph, Graph, NodeWeights], NodeWeights]  # (before, after, weights) → weights
FinishHook = Callable[[Graph, Any, Callable[[str], Any]], None]  # (graph, module, submodule of node) → None


@dataclass(frozen=True)
class Pass:
    """One optimisation pass: ``run`` rewrites an inference graph; training graphs pass through."""

    name: str
    run: Callable[[Graph], Graph]
    level: int  # the lowest -O level whose pipeline includes this pass
    doc: str
    weights: WeightRule | None = None  # maps the weights of the graph before to the graph after
    finish: FinishHook | None = None  # adjusts a built module of the graph after (e.g. weight layout)

    def __call__(self, graph: Graph) -> Graph:
        return self.run(graph)


def inference_only(fn: Callable[[Graph], Graph]) -> Callable[[Graph], Graph]:
    """Wrap a rewrite so that a training graph comes back unchanged (the very same object)."""

    @functools.wraps(fn)
    def run(graph: Graph) -> Graph:
        if graph.training:
            return graph
        return fn(graph)

    return run


class PassError(NetcError):
    """An optimisation pass crashed or produced an invalid graph (a bug in netc, not in the spec)."""

    kind = "pass"
