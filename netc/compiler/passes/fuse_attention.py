"""Run MultiHeadAttention through torch's fused scaled_dot_product_attention.

MultiHeadAttention → FusedMultiHeadAttention: same name, inputs and module
(``nn.MultiheadAttention``, so the same weights), but the forward applies the
packed q/k/v projection as one Linear and calls
``nn.functional.scaled_dot_product_attention`` (flash / memory-efficient kernels)
instead of ``nn.MultiheadAttention.forward``. No weights change.
"""

from __future__ import annotations

from dataclasses import replace

from netc.compiler.ir import Graph, Node
from netc.compiler.passes.base import Pass, inference_only
from netc.compiler.passes.rewrite import splice


@inference_only
def fuse_attention(graph: Graph) -> Graph:
    """``MultiHeadAttention`` → ``FusedMultiHeadAttention`` (same weights)."""
    out: dict[str, list[Node]] = {n.name: [replace(n, op="FusedMultiHeadAttention")]
                                  for n in graph.nodes if n.op == "MultiHeadAttention"}
    return splice(graph, out) if out else graph


PASS = Pass("fuse_attention", fuse_attention, level=2,
            doc="MultiHeadAttention → one packed q/k/v Linear + fused scaled_dot_product_attention")
