"""Fold inference BatchNorm into the convolution or Dense layer that feeds it.

In eval mode BatchNorm is the affine map ``y = (x - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)`` per channel, so ``BN(W x + b)`` equals
``W' x + b'`` with ``W' = W * s`` (per output channel) and ``b' = (b - mean) * s + beta``.
A producer folds when its declaration names the weight axis of its output channels
(``weight_out_axis``). Declines (leaves the pair alone) when the producer's output is
read by anything besides the BatchNorm or is a graph output, and when the producer's
channels (its ``channel_axis``) are not the axis 1 BatchNorm normalises (Dense on
(N, T, features)).

The folded node keeps the producer's name and op, gains ``bias=true`` and records
``folded_from=[producer, batchnorm...]``; :func:`fold_weights` computes W' and b'
(in float64, then cast back) from the unfolded weights.
"""

from __future__ import annotations

from netc.compiler.ir import Graph, Node
from netc.compiler.passes.base import NodeWeights, Pass, inference_only
from netc.compiler.passes.rewrite import make_node, op_of, splice, types_of, use_counts


def _foldable(node: Node) -> bool:
    op = op_of(node)
    if op.weight_out_axis is None or op.channel_axis is None:
        return False
    return op.channel_axis % len(node.type.shape) == 1  # BatchNorm normalises axis 1


@inference_only
def fold_batchnorm(graph: Graph) -> Graph:
    """``BatchNorm(Conv(x))`` → ``Conv'(x)`` (also Conv1D, ConvTranspose2D, and Dense on (N, features))."""
    uses = use_counts(graph)
    types = types_of(graph)
    folded: dict[str, Node] = {}  # BatchNorm name → the node it was folded into (as rewritten so far)
    current: dict[str, Node] = {n.name: n for n in graph.nodes}
    out: dict[str, list[Node]] = {}
    rename: dict[str, str] = {}
    for n in graph.nodes:
        if n.op != "BatchNorm":
            continue
        src = n.inputs[0]
        prod = folded.get(src) or current.get(src)
        if prod is None or not _foldable(prod) or uses[src] != 1:
            continue  # declines: not a foldable producer, or its output is read elsewhere too
        chain = tuple(prod.arg("folded_from", (prod.name,))) if src in folded else (prod.name,)
        args = dict(prod.args)
        args.update(bias=True, folded_from=(*chain, n.name))
        new = make_node(prod.op, prod.name, tuple(args.items()), prod.inputs, types, like=prod)
        current[prod.name] = new
        folded[n.name] = new
        out[prod.name] = [new]
        out[n.name] = []
        rename[n.name] = prod.name
    return splice(graph, out, rename) if out else graph


def fold_weights(before: Graph, after: Graph, weights: NodeWeights) -> NodeWeights:
    """W' = W·s and b' = (b − mean)·s + beta for every ``folded_from`` node, computed in float64."""
    present = {n.name: n for n in before.nodes}
    new = dict(weights)
    for node in after.nodes:
        chain = node.arg("folded_from")
        if not chain or not any(bn in present for bn in chain[1:]):
            continue
        prod = present[node.name]
        w = weights[prod.name]["weight"]
        bias = weights[prod.name].get("bias")
        axis = op_of(prod).weight_out_axis
        w64 = w.double()
        b64 = bias.double() if bias is not None else w64.new_zeros(w.shape[axis])
        for bn in chain[1:]:
            if bn not in present:
                continue  # folded by an earlier run: already part of the producer's weights
            p = weights[bn]
            scale = p["weight"].double() / (p["running_var"].double() + float(present[bn].arg("eps"))).sqrt()
            shape = [1] * w64.dim()
            shape[axis] = -1
            w64 = w64 * scale.reshape(shape)
            b64 = (b64 - p["running_mean"].double()) * scale + p["bias"].double()
            new.pop(bn, None)
        new[node.name] = {"weight": w64.to(w.dtype), "bias": b64.to(w.dtype)}
    return new


PASS = Pass("fold_batchnorm", fold_batchnorm, level=2,
            doc="fold inference BatchNorm into the preceding Conv1D/Conv2D/ConvTranspose2D/Dense", weights=fold_weights)
