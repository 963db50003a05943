"""Remove Dropout at inference, and zero the dropout rates built into other ops.

Dropout is the identity in eval mode, so a Dropout node's readers read its input
instead. Ops with a built-in rate (their declaration's ``dropout_arg``: attention, positional
encoding, recurrent and Transformer layers) ignore it in eval mode too; their rate becomes 0.0 so the
emitted inference source says what runs. No weights change.
"""

from __future__ import annotations

from dataclasses import replace

from netc.compiler.ir import Graph, Node
from netc.compiler.passes.base import Pass, inference_only
from netc.compiler.passes.rewrite import op_of, splice, with_args


@inference_only
def eliminate_dropout(graph: Graph) -> Graph:
    """``y = Dropout(x)`` → readers of ``y`` read ``x``; built-in dropout rates → 0.0."""
    drop: dict[str, list[Node]] = {}
    rename: dict[str, str] = {}
    for n in graph.nodes:
        rate = op_of(n).dropout_arg
        if n.op == "Dropout":
            drop[n.name] = []
            rename[n.name] = n.inputs[0]
        elif rate is not None and n.arg(rate, 0.0):
            drop[n.name] = [replace(n, args=with_args(n, **{rate: 0.0}))]
    return splice(graph, drop, rename) if drop else graph


PASS = Pass("eliminate_dropout", eliminate_dropout, level=1,
            doc="remove Dropout and zero built-in dropout rates (identity at inference)")
