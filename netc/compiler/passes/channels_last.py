"""Run 2-D convolution stacks channels-last (NHWC), oneDNN's fast layout on CPU.

A layout never changes values, only strides, so this pass is exact. It inserts one
ChannelsLast node per tensor that feeds an op declared ``prefers_channels_last`` (Conv2D,
ConvTranspose2D) without already being channels-last; ops declared ``keeps_layout``
(convolutions, BatchNorm, activations, pooling, element-wise merges) keep the layout, so a
whole stack converts once at its entry. :func:`finish` stores
those convolutions' weights channels-last too (otherwise oneDNN reorders them on
every call). Measured (CPU time, 1 thread; -O2 with / without this pass): bench/fusion.py's
Conv-BN-ReLU net 0.52 / 0.75 × unoptimised at batch 64; with/without ratio at batch 1 / 32:
ResNet-18 (64 px) 0.50 / 0.73, GoogLeNet (64 px) 0.63 / 0.55, digits_cnn 0.89 / 0.86,
digits_resnet 0.89 / 0.90, a ConvTranspose2D generator 0.82 / 0.89, cifar10_cnn 1.03 / 0.89,
LeNet-5 1.00 / 0.96, digits_inception 1.00 / 0.99. It applies wherever a Conv2D or ConvTranspose2D is.
"""

from __future__ import annotations

from dataclasses import replace

from netc.compiler.ir import Graph, Node
from netc.compiler.passes.base import Pass, inference_only
from netc.compiler.passes.rewrite import fresh_name, make_node, op_of, splice, types_of


def _keeps(n: Node, ins: tuple[str, ...], cl: set[str]) -> bool:
    """Whether ``n`` (reading ``ins``) outputs a channels-last tensor, given the channels-last tensors ``cl``."""
    if len(n.type.shape) != 4:
        return False
    if n.op == "ChannelsLast":
        return True
    if n.op == "Concat":  # keeps the layout only when it joins channels
        return n.arg("axis") in (1, -3) and all(i in cl for i in ins)
    return op_of(n).keeps_layout and bool(ins) and all(i in cl for i in ins)


def channels_last_tensors(graph: Graph) -> set[str]:
    """Tensors stored channels-last: produced from channels-last inputs by layout-keeping ops."""
    cl: set[str] = set()
    for n in graph.nodes:
        if _keeps(n, n.inputs, cl):
            cl.add(n.name)
    return cl


@inference_only
def channels_last(graph: Graph) -> Graph:
    """Insert ``ChannelsLast`` before the Conv2D stacks of an inference graph."""
    types = types_of(graph)
    taken = set(types)
    cl: set[str] = set()
    made: dict[str, str] = {}  # tensor → its ChannelsLast copy
    out: dict[str, list[Node]] = {}
    for n in graph.nodes:
        ins = n.inputs
        if op_of(n).prefers_channels_last and ins[0] not in cl:
            src = ins[0]
            if src not in made:
                conv = make_node("ChannelsLast", fresh_name(taken, f"{src}_nhwc"), (), (src,), types, like=n)
                made[src] = conv.name
                cl.add(conv.name)
                out[n.name] = [conv]
            ins = (made[src], *ins[1:])
            out.setdefault(n.name, []).append(replace(n, inputs=ins))
        if _keeps(n, ins, cl):
            cl.add(n.name)
    return splice(graph, out) if out else graph


PASS = Pass("channels_last", channels_last, level=2,
            doc="run Conv2D stacks channels-last (NHWC): one layout conversion per stack entry")
# its finishing touch (weights stored channels-last) needs torch: netc.backend.weights.store_channels_last
