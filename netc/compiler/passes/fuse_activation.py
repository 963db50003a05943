"""Apply an activation in place on the fresh output of the layer before it.

At inference, ``y = ReLU(Conv(x))`` need not allocate a second tensor: the
convolution's output is new and read by nothing else, so ``Conv(x).relu_()``
overwrites it. On CPU that saves one allocation and one pass over memory per
activation: bench/fusion.py's Conv-BN-ReLU net runs at 0.52× unoptimised with it and
0.55–0.59× without it at batch 64 (1 thread). oneDNN's fused convolution + ReLU kernel
(``torch.ops.mkldnn._convolution_pointwise``, what inductor uses) was measured too: no
faster than conv + ``relu_`` at batch 64 and up to 3× slower per layer at batch 1, and
it is CPU-only, private and not exportable, so netc does not use it.

The activation becomes ``InplaceActivation(fn)`` when its input
- is produced by a layer whose output is always a new tensor (never a view of
  another one: :data:`FRESH`), and
- is read by nothing else and is not a graph output.
Graph inputs are never overwritten. No weights change.
"""

from __future__ import annotations

from netc.compiler.ir import Graph, Node
from netc.compiler.passes.base import Pass, inference_only
from netc.compiler.passes.rewrite import make_node, splice, types_of, use_counts

# activation op → InplaceActivation's fn
ACTIVATIONS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "SiLU": "silu"}
# Ops whose output is a new tensor, never a view of their input (Flatten, Reshape and Slice may return views).
FRESH = frozenset({"Conv1D", "Conv2D", "ConvTranspose2D", "Dense", "BatchNorm", "LayerNorm", "Add", "Multiply",
                   "Concat", "MaxPool", "AvgPool", "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D", "WindowMax"})


@inference_only
def fuse_activation(graph: Graph) -> Graph:
    """``ReLU(Conv(x))`` → ``InplaceActivation(relu)(Conv(x))`` when the conv output is read only there."""
    uses = use_counts(graph)
    producer = {n.name: n for n in graph.nodes}
    types = types_of(graph)
    out: dict[str, list[Node]] = {}
    for n in graph.nodes:
        src = n.inputs[0] if n.inputs else None
        if n.op not in ACTIVATIONS or src not in producer or uses[src] != 1 or producer[src].op not in FRESH:
            continue
        args = (("fn", ACTIVATIONS[n.op]),) + ((("slope", n.arg("slope")),) if n.op == "LeakyReLU" else ())
        out[n.name] = [make_node("InplaceActivation", n.name, args, n.inputs, types, like=n)]
    return splice(graph, out) if out else graph


PASS = Pass("fuse_activation", fuse_activation, level=2,
            doc="compute ReLU/LeakyReLU/Sigmoid/Tanh/SiLU in place on a fresh layer output nothing else reads")
