"""Remove Identity nodes: their readers read the Identity's input directly."""

from __future__ import annotations

from netc.compiler.ir import Graph, Node
from netc.compiler.passes.base import Pass, inference_only
from netc.compiler.passes.rewrite import splice


@inference_only
def eliminate_identity(graph: Graph) -> Graph:
    """``y = Identity(x)`` → readers of ``y`` read ``x``."""
    gone: dict[str, list[Node]] = {n.name: [] for n in graph.nodes if n.op == "Identity"}
    if not gone:
        return graph
    return splice(graph, gone, {n.name: n.inputs[0] for n in graph.nodes if n.name in gone})


PASS = Pass("eliminate_identity", eliminate_identity, level=1, doc="remove Identity nodes")
