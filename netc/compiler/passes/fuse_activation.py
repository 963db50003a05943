"""Apply an activation in place on the fresh output of the layer before it.

At inference, ``y = ReLU(Conv(x))`` need not allocate a second tensor: the
convolution's output is new and read by nothing else, so ``Conv(x).relu_()``
overwrites it. On CPU that saves one allocation and one pass over memory per
activation: bench/fusion.py's Conv-BN-ReLU net runs at 0.52× unoptimised with it and
0.55–0.59× without it at batch 64 (1 thread). oneDNN's fused convolution + ReLU kernel
(``torch.ops.mkldnn._convolution_pointwise``, what inductor uses) was measured too: no
faster than conv + ``relu_`` at batch 64 and up to 3× slower per layer at batch 1, and
it is CPU-only, private and not exportable, so netc does not use it.

An activation whose declaration names an ``inplace_fn`` becomes ``InplaceActivation(fn)`` when its input
- is produced by a layer whose output is always a new tensor (never a view of
  another one: its declaration says ``fresh_output``), and
- is read by nothing else and is not a graph output.
Graph inputs are never overwritten. No weights change.
"""

from __future__ import annotations

from netc.compiler.ir import Graph, Node
from netc.compiler.passes.base import Pass, inference_only
from netc.compiler.passes.rewrite import make_node, op_of, splice, types_of, use_counts
from netc.compiler.registry import REGISTRY

INPLACE = REGISTRY.ops["InplaceActivation"]


@inference_only
def fuse_activation(graph: Graph) -> Graph:
    """``ReLU(Conv(x))`` → ``InplaceActivation(relu)(Conv(x))`` when the conv output is read only there."""
    uses = use_counts(graph)
    producer = {n.name: n for n in graph.nodes}
    types = types_of(graph)
    out: dict[str, list[Node]] = {}
    for n in graph.nodes:
        src = n.inputs[0] if n.inputs else None
        fn = op_of(n).inplace_fn
        if fn is None or src not in producer or uses[src] != 1 or not op_of(producer[src]).fresh_output:
            continue
        # the activation's own arguments that InplaceActivation shares (LeakyReLU's slope) carry over
        args = (("fn", fn),) + tuple((k, v) for k, v in n.args if INPLACE.arg(k) is not None)
        out[n.name] = [make_node("InplaceActivation", n.name, args, n.inputs, types, like=n)]
    return splice(graph, out) if out else graph


PASS = Pass("fuse_activation", fuse_activation, level=2,
            doc="compute ReLU/LeakyReLU/Sigmoid/Tanh/SiLU in place on a fresh layer output nothing else reads")
