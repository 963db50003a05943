"""merge_projections: sibling Dense (q/k/v) or convolution layers of one tensor → one layer + slices."""

from __future__ import annotations

import pytest
from pass_support import (
    CASES,
    IDS,
    differential,
    eval_graph,
    golden,
    unchanged_in_training,
)

from netc.compiler.passes.merge_projections import merge_projections

QKV = "input: [T, 8]\nmodel:\n  q: Dense(8)\n  k: in → Dense(8)\n  v: in → Dense(8)\n  out: Multiply(q, k, v)"


@pytest.mark.parametrize(("label", "graph"), CASES, ids=IDS)
def test_merged_module_equals_original(label, graph):
    after = differential(graph, ["merge_projections"])
    assert any(n.op == "Slice" for n in after.nodes)


def test_golden():
    golden("merge_projections")


def test_training_graph_is_unchanged():
    unchanged_in_training("merge_projections", QKV)


def test_qkv_projections_become_one_dense():
    g = eval_graph(QKV)
    after = differential(g, ["merge_projections"])
    ops = [n.op for n in after.nodes]
    assert ops.count("Dense") == 1 and ops.count("Slice") == 3
    merged = next(n for n in after.nodes if n.op == "Dense")
    assert merged.arg("units") == 24 and merged.arg("merged_from") == tuple(n.name for n in g.nodes[:3])
    assert merged.params == sum(n.params for n in g.nodes[:3])
    # slices keep the original names, so readers are untouched
    assert after.nodes[-1] == g.nodes[-1]


@pytest.mark.parametrize("text", [
    "input: [8]\nmodel:\n  a: Dense(4)\n  b: in → Dense(4, bias=false)\n  out: Add(a, b)",        # bias differs
    "input: [4, 6, 6]\nmodel:\n  a: Conv2D(4, 1, groups=2)\n  b: in → Conv2D(4, 1, groups=2)\n  out: Add(a, b)",
    "input: [4, 6, 6]\nmodel:\n  a: Conv2D(4, 1)\n  b: in → Conv2D(4, 3, padding=1)\n  out: Add(a, b)",  # kernels differ
    "input: [8]\nmodel:\n  a: Dense(4)\n  b: a → Dense(4)",                                             # not siblings
])
def test_declines(text):
    g = eval_graph(text)
    assert merge_projections(g) is g


def test_cross_sequence_projections_do_not_merge():
    g = eval_graph("input: {a: [T, 8], b: [T, 8]}\nmodel:\n  p: a → Dense(8)\n  q: b → Dense(8)\n  out: Add(p, q)")
    assert merge_projections(g) is g
