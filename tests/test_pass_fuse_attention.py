"""fuse_attention: MultiHeadAttention → FusedMultiHeadAttention (same weights, torch's fused SDPA kernel)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from netc.compiler.passes.equivalence import assert_equivalent
from netc.compiler.passes.fuse_attention import fuse_attention
from pass_support import CASES, IDS, differential, eval_graph, golden, unchanged_in_training


@pytest.mark.parametrize(("label", "graph"), CASES, ids=IDS)
def test_fused_attention_equals_multiheadattention(label, graph):
    after = differential(graph, ["fuse_attention"])
    assert not any(n.op == "MultiHeadAttention" for n in after.nodes)


def test_golden():
    golden("fuse_attention")


def test_training_graph_is_unchanged():
    unchanged_in_training("fuse_attention", "input: [T, 8]\nmodel: MultiHeadAttention(2)")


@pytest.mark.parametrize("text", [
    "input: [T, 12]\nmodel: MultiHeadAttention(3)",
    "input: [T, 8]\nmodel: MultiHeadAttention(1) → MultiHeadAttention(8)",
    "input: {q: [4, 16], mem: [T, 16]}\nmodel:\n  a: q → MultiHeadAttention(4, kv=mem)",
])
def test_head_counts_and_cross_attention(text):
    differential(eval_graph(text), ["fuse_attention"])


def test_same_weights_so_the_state_dict_loads_unchanged():
    g = eval_graph("input: [T, 8]\nmodel: MultiHeadAttention(2)")
    from netc.backend.build import build_graph

    before = build_graph(g, train=False)
    after = build_graph(fuse_attention(g), train=False)
    after.load_state_dict(before.state_dict(), strict=True)
    assert_equivalent(before, after, g, batches=(1, 4), seq=9)


def test_fused_op_trains_like_multiheadattention():
    # Used directly in a spec (training mode, dropout 0), the fused op has the same gradients.
    from netc.backend.build import build_graph, example_inputs

    g = dataclasses.replace(eval_graph("input: [T, 8]\nmodel: MultiHeadAttention(2)"), training=True)
    a = build_graph(g, train=True)
    b = build_graph(dataclasses.replace(fuse_attention(dataclasses.replace(g, training=False)), training=True),
                    train=True)
    b.load_state_dict(a.state_dict())
    (x,) = example_inputs(g, batch=3, seq=5)
    a(x).square().sum().backward()
    b(x).square().sum().backward()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=name)
