"""Collapse chains of Flatten/Reshape and of Permute; drop those that change nothing.

- a Flatten or Reshape (an op declared ``reshape_only``) reading another that nothing else reads
  reads that one's input instead (only the last shape matters): one reshape is left;
- a Flatten or Reshape whose output shape equals its input shape is removed
  (e.g. Flatten after GlobalAvgPool);
- a Permute of a Permute that nothing else reads becomes one Permute of the composed
  order, and is removed when the composition is the identity.

No weights change; the surviving node keeps its name, so readers are untouched.
"""

from __future__ import annotations

from dataclasses import replace

from netc.compiler.ir import Graph, Node
from netc.compiler.passes.base import Pass, inference_only
from netc.compiler.passes.rewrite import op_of, splice, types_of, use_counts, with_args


@inference_only
def collapse_reshapes(graph: Graph) -> Graph:
    """Merge reshape and permute chains; remove no-op reshapes and permutes."""
    uses = use_counts(graph)
    current: dict[str, Node] = {}  # name → node as rewritten so far
    out: dict[str, list[Node]] = {}
    rename: dict[str, str] = {}
    types = types_of(graph)
    for n in graph.nodes:
        src = n.inputs[0] if n.inputs else None
        prev = current.get(src) if src is not None else None
        new = n
        if prev is not None and uses[src] == 1 and (
                (op_of(n).reshape_only and op_of(prev).reshape_only) or (n.op == "Permute" and prev.op == "Permute")):
            if n.op == "Permute":
                p1, p2 = prev.arg("dims"), n.arg("dims")
                new = replace(n, args=with_args(n, dims=tuple(p1[d - 1] for d in p2)), inputs=prev.inputs)
            else:
                new = replace(n, inputs=prev.inputs)
            out[prev.name] = []  # nothing else reads it: it disappears
        if (op_of(new).reshape_only or new.op == "Permute") and types[new.inputs[0]].shape == new.type.shape and (
                new.op != "Permute" or list(new.arg("dims")) == list(range(1, len(new.type.shape)))):
            out[n.name] = []
            rename[n.name] = new.inputs[0]
        elif new is not n:
            out[n.name] = [new]
        current[n.name] = new
    return splice(graph, out, rename) if out else graph


PASS = Pass("collapse_reshapes", collapse_reshapes, level=1,
            doc="merge Flatten/Reshape and Permute chains; remove reshapes and permutes that change nothing")
