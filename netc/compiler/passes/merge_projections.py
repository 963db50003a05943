"""Merge sibling projections of one tensor into one layer, then slice the result.

Separate Dense layers reading the same tensor with the same settings — the q, k
and v projections of hand-written attention are the classic case — become one
Dense with the summed width, and a Slice view per original layer (named like it, so
readers are untouched): one GEMM instead of three (q/k/v Dense(64) over (1, 16, 64):
0.83× the latency). Sibling convolutions with equal settings (e.g. the 1×1 reduce
convolutions of an Inception module) merge the same way along the channel axis when
``MERGE_CONVS`` is on. An op merges when its declaration names its width argument
(``merge_width``); the slices run along its ``channel_axis``. The merged node records ``merged_from=[a, b, ...]``;
:func:`netc.backend.weights.merge_weights` concatenates their weights and biases.

netc's MultiHeadAttention already keeps its q/k/v projections packed in one matrix
(torch's ``in_proj_weight``); fuse_attention turns it into one Dense.
"""

from __future__ import annotations

from netc.compiler.ir import Graph, Node
from netc.compiler.passes.base import Pass, inference_only
from netc.compiler.passes.rewrite import (
    PROVENANCE,
    consumers,
    fresh_name,
    make_node,
    op_of,
    splice,
    types_of,
)

# Sibling convolutions merge too: one larger oneDNN convolution instead of several small ones
# (digits_inception at batch 64: 0.96 vs 1.00 without; GoogLeNet at 64 px: neutral, within noise).
MERGE_CONVS = True


def _key(n: Node) -> tuple | None:
    """Nodes with equal keys compute the same function of the input up to their widths."""
    width = op_of(n).merge_width  # ops without one never merge
    if width is None or (op_of(n).category == "conv" and not MERGE_CONVS):
        return None
    if n.arg("groups", 1) != 1:
        return None
    return (n.op, repr([(k, v) for k, v in n.args if k != width and k not in PROVENANCE]))


@inference_only
def merge_projections(graph: Graph) -> Graph:
    """Siblings ``a = Dense(i)(x)``, ``b = Dense(j)(x)`` → ``m = Dense(i+j)(x)``, ``a = Slice(m)``, ``b = Slice(m)``."""
    types = types_of(graph)
    taken = set(types)
    out: dict[str, list[Node]] = {}
    for tensor, readers in consumers(graph).items():
        groups: dict[tuple, list[Node]] = {}
        for n in readers:
            k = _key(n)
            if k is not None and n.inputs == (tensor,):
                groups.setdefault(k, []).append(n)
        for members in groups.values():
            if len(members) < 2:
                continue
            op = members[0].op
            decl = op_of(members[0])
            width, axis = decl.merge_width, decl.channel_axis  # the outputs are sliced along the channels
            assert width is not None and axis is not None, f"{op} declares merge_width without channel_axis"
            args = {k: v for k, v in members[0].args if k not in PROVENANCE}
            args[width] = sum(int(m.arg(width)) for m in members)
            args["merged_from"] = tuple(m.name for m in members)
            merged = make_node(op, fresh_name(taken, f"{members[0].name}_merged"), tuple(args.items()),
                               (tensor,), types, like=members[0])
            types[merged.name] = merged.type
            start = 0
            for k, m in enumerate(members):
                size = int(m.arg(width))
                piece = make_node("Slice", m.name, (("axis", axis), ("start", start), ("stop", start + size)),
                                  (merged.name,), types, like=m)
                start += size
                out[m.name] = [merged, piece] if k == 0 else [piece]
    return splice(graph, out) if out else graph


PASS = Pass("merge_projections", merge_projections, level=2,
            doc="merge sibling Dense (and conv) layers reading one tensor into one layer plus slices")
# its weight rule (concatenating tensors) needs torch: netc.backend.weights.merge_weights
