"""fuse_attention: MultiHeadAttention → packed q/k/v Dense + fused scaled_dot_product_attention + Dense."""

from __future__ import annotations

import pytest
import torch
from pass_support import (
    CASES,
    IDS,
    differential,
    eval_graph,
    golden,
    unchanged_in_training,
)

from netc.backend.build import build_graph
from netc.backend.emit import graph_source
from netc.compiler.passes.fuse_attention import fuse_attention


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
    "input: [T, 8]\nmodel: MultiHeadAttention(1) → MultiHeadAttention(8, dropout=0.3)",
    "input: {q: [4, 16], mem: [T, 16]}\nmodel:\n  a: q → MultiHeadAttention(4, kv=mem)",
    "input: [T, 8]\nmodel:\n  a: MultiHeadAttention(2, kv=in)",  # cross-attention on itself
])
def test_head_counts_and_cross_attention(text):
    differential(eval_graph(text), ["fuse_attention"])


def test_the_projection_is_one_dense_and_parameters_are_kept():
    g = eval_graph("input: [T, 8]\nmodel: MultiHeadAttention(2)")
    after = fuse_attention(g)
    assert [n.op for n in after.nodes] == ["Dense", "ScaledDotProductAttention", "Dense"]
    assert after.nodes[0].arg("units") == 24 and after.nodes[-1].name == g.nodes[0].name
    assert after.params == g.params


def test_fused_module_is_scriptable():
    g = eval_graph("input: {q: [T, 8], mem: [S, 8]}\nmodel:\n  a: q → MultiHeadAttention(2)\n"
                   "  b: a → MultiHeadAttention(4, kv=mem)")
    module = build_graph(fuse_attention(g), train=False)
    scripted = torch.jit.script(module)
    q, mem = torch.randn(2, 5, 8), torch.randn(2, 7, 8)
    torch.testing.assert_close(scripted(q, mem), module(q, mem))
    assert "scaled_dot_product_attention" in graph_source(fuse_attention(g))
