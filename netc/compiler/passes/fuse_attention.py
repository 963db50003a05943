"""Lower MultiHeadAttention at inference to one packed projection + torch's fused attention kernel.

``a = MultiHeadAttention(heads)(x)`` becomes three nodes::

    a_qkv  = Dense(3·D)(x)                          # q, k and v projections as one GEMM
    a_sdpa = ScaledDotProductAttention(heads)(a_qkv)  # nn.functional.scaled_dot_product_attention
    a      = Dense(D)(a_sdpa)                       # the output projection, named like the original

(cross-attention ``kv=mem``: ``a_q = Dense(D)(x)``, ``a_kv = Dense(2·D)(mem)``). A causal
attention stays causal and padding ids stay an input of the fused node (``causal``, ``ids``). The weights
are nn.MultiheadAttention's own: its packed ``in_proj_weight`` is already the merged q/k/v
matrix, so the merged projection costs nothing; :func:`attention_weights` splits the
module's state into the new Dense layers. nn.MultiheadAttention's own inference fast path
(``torch._native_multi_head_attention``) is slower on CPU: specs/transformer_primitives.yaml
at -O2 runs at 0.81–0.86× unoptimised at batch 32 with this pass and 0.96–0.98× without it
(0.91× vs 0.95× at batch 1; bench/fusion.py, 1 thread).
"""

from __future__ import annotations

from netc.compiler.ir import Graph, Node
from netc.compiler.passes.base import NodeWeights, Pass, inference_only
from netc.compiler.passes.rewrite import fresh_name, make_node, splice, types_of


@inference_only
def fuse_attention(graph: Graph) -> Graph:
    """``MultiHeadAttention`` → ``Dense(3D)`` → ``ScaledDotProductAttention`` → ``Dense(D)`` (same weights)."""
    types = types_of(graph)
    taken = set(types)
    out: dict[str, list[Node]] = {}
    for n in graph.nodes:
        if n.op != "MultiHeadAttention":
            continue
        d = n.type.shape[2]
        # inputs: queries, then the key/value sequence (N, S, D) if any, then the padding ids (N, S) if any
        seqs = tuple(i for i in n.inputs if len(types[i].shape) == 3)
        ids = tuple(i for i in n.inputs[1:] if len(types[i].shape) == 2)
        if len(seqs) == 1:
            proj = [_dense(n, "qkv", fresh_name(taken, f"{n.name}_qkv"), 3 * d, seqs, types)]
        else:
            proj = [_dense(n, "q", fresh_name(taken, f"{n.name}_q"), d, seqs[:1], types),
                    _dense(n, "kv", fresh_name(taken, f"{n.name}_kv"), 2 * d, seqs[1:], types)]
        # the masks go with the attention: causality as an argument, the padding ids as an input
        args = (("heads", n.arg("heads")),) + ((("causal", True),) if n.arg("causal") else ()) \
            + ((("pad_id", n.arg("pad_id", 0)),) if ids else ())
        sdpa = make_node("ScaledDotProductAttention", fresh_name(taken, f"{n.name}_sdpa"),
                         args, tuple(p.name for p in proj) + ids, types, like=n)
        types[sdpa.name] = sdpa.type
        out[n.name] = [*proj, sdpa, _dense(n, "out", n.name, d, (sdpa.name,), types)]
    return splice(graph, out) if out else graph


def _dense(mha: Node, part: str, name: str, units: int, inputs: tuple[str, ...], types: dict) -> Node:
    """One Dense layer made from ``part`` of ``mha``'s weights (recorded as ``fused_from``), initialised like
    them: a source compiled at -O2 and trained from scratch draws its projections from the attention's
    ``init=`` (per Dense: a kaiming scheme's fan-in is the same; xavier's fan-out is the part's rows)."""
    init = mha.arg("init")
    args = (("units", units), ("bias", True), ("fused_from", (mha.name, part))) + \
        ((("init", init),) if init is not None else ())
    node = make_node("Dense", name, args, inputs, types, like=mha)
    types[node.name] = node.type
    return node


def attention_weights(before: Graph, after: Graph, weights: NodeWeights) -> NodeWeights:
    """nn.MultiheadAttention's in_proj/out_proj → the weights of the Dense layers that replace it."""
    mha = {n.name: n for n in before.nodes if n.op == "MultiHeadAttention"}
    new = {k: v for k, v in weights.items() if k not in mha}
    for node in after.nodes:
        src, part = node.arg("fused_from", (None, None))
        if src not in mha:
            continue  # not made by this run of the pass
        w, d = weights[src], mha[src].type.shape[2]
        if part == "out":
            new[node.name] = {"weight": w["out_proj.weight"], "bias": w["out_proj.bias"]}
        else:
            rows = {"qkv": slice(0, 3 * d), "q": slice(0, d), "kv": slice(d, 3 * d)}[part]
            new[node.name] = {"weight": w["in_proj_weight"][rows], "bias": w["in_proj_bias"][rows]}
    return new


PASS = Pass("fuse_attention", fuse_attention, level=2,
            doc="MultiHeadAttention → packed q/k/v Dense + fused scaled_dot_product_attention + output Dense",
            weights=attention_weights)
