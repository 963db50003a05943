"""fold_batchnorm: Conv/Dense + BatchNorm → one layer with folded weights, only where that is exact."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from equivalence import assert_equivalent, unoptimised
from pass_support import (
    CASES,
    IDS,
    differential,
    eval_graph,
    golden,
    unchanged_in_training,
)

from netc.backend.weights import optimize_module
from netc.compiler.passes.fold_batchnorm import fold_batchnorm


@pytest.mark.parametrize(("label", "graph"), CASES, ids=IDS)
def test_folded_module_equals_unfolded(label, graph):
    after = differential(graph, ["fold_batchnorm"])
    assert len(after.nodes) < len(graph.nodes)


def test_golden():
    golden("fold_batchnorm")


def test_declines_when_the_conv_output_is_used_twice():
    g = eval_graph("input: [3, 8, 8]\nmodel:\n  c: Conv2D(4, 3)\n  n: c → BatchNorm\n  out: Add(c, n)")
    assert fold_batchnorm(g) is g


def test_declines_when_the_conv_output_is_a_graph_output():
    base = eval_graph("input: [3, 8, 8]\nmodel: Conv2D(4, 3) → BatchNorm")
    g = dataclasses.replace(base, outputs=(base.nodes[0].name, base.nodes[1].name))
    assert fold_batchnorm(g) is g


def test_declines_dense_over_sequences():
    # Dense on (N, T, D) feeds BatchNorm1d over axis 1 (T), not over Dense's features.
    g = eval_graph("input: [5, 4]\nmodel: Dense(4) → BatchNorm")
    assert fold_batchnorm(g) is g


def test_declines_batchnorm_after_other_ops():
    g = eval_graph("input: [3, 8, 8]\nmodel: Conv2D(4, 3) → ReLU → BatchNorm")
    assert fold_batchnorm(g) is g


def test_training_graph_is_unchanged():
    unchanged_in_training("fold_batchnorm", "input: [3, 8, 8]\nmodel: Conv2D(4, 3) → BatchNorm")


@pytest.mark.parametrize("text", [
    "input: [3, 9, 9]\nmodel: Conv2D(6, 3, stride=2, groups=3, bias=false) → BatchNorm(eps=0.1)",
    "input: [4, 7, 7]\nmodel: ConvTranspose2D(3, 4, stride=2, padding=1) → BatchNorm",
    "input: [4, 12]\nmodel: Conv1D(8, 5, padding=same, dilation=2, groups=2) → BatchNorm → BatchNorm → ReLU",
    "input: [7]\nmodel: Dense(5, bias=false) → BatchNorm",
])
def test_folding_variants(text):
    after = differential(eval_graph(text), ["fold_batchnorm"])
    assert not any(n.op == "BatchNorm" for n in after.nodes)


def test_fold_is_computed_in_float64():
    # W' = W * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta, rounded once to float32
    g = eval_graph("input: [3, 8, 8]\nmodel: Conv2D(8, 3) → BatchNorm(eps=0.0001)")
    before = unoptimised(g)
    conv, bn = (before.get_submodule(n.name) for n in g.nodes)
    with torch.no_grad():
        bn.running_var.uniform_(1e-4, 1e-3)
    fast = optimize_module(before, names=["fold_batchnorm"])
    s = bn.weight.double() / (bn.running_var.double() + 1e-4).sqrt()
    w = (conv.weight.double() * s[:, None, None, None]).float()
    b = ((conv.bias.double() - bn.running_mean.double()) * s + bn.bias.double()).float()
    folded = fast.get_submodule(g.nodes[0].name)
    assert torch.equal(folded.weight, w) and torch.equal(folded.bias, b)
    assert_equivalent(before, fast, g, rtol=1e-5)  # outputs here are ~30× larger than the inputs


def test_folded_node_records_its_origin_and_keeps_the_span():
    g = eval_graph("input: [3, 8, 8]\nmodel: Conv2D(4, 3, bias=false) → BatchNorm → ReLU")
    conv, bn, _ = g.nodes
    after = fold_batchnorm(g)
    folded = after.nodes[0]
    assert folded.name == conv.name and folded.span == conv.span and folded.source == conv.source
    assert folded.arg("folded_from") == (conv.name, bn.name)
    assert folded.arg("bias") is True and folded.params == conv.params + 4
    assert after.nodes[1].inputs == (conv.name,)
