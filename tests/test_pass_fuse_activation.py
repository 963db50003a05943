"""fuse_activation: an activation runs in place on a fresh layer output that nothing else reads."""

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

from netc.compiler.passes.fuse_activation import fuse_activation


@pytest.mark.parametrize(("label", "graph"), CASES, ids=IDS)
def test_inplace_activations_equal_the_original(label, graph):
    after = differential(graph, ["fuse_activation"])
    assert any(n.op == "InplaceActivation" for n in after.nodes)


def test_golden():
    golden("fuse_activation")


def test_training_graph_is_unchanged():
    unchanged_in_training("fuse_activation", "input: [3, 8, 8]\nmodel: Conv2D(4, 3) → ReLU")


def test_never_overwrites_a_graph_input():
    g = eval_graph("input: [6]\nmodel: ReLU → Dense(2)")
    assert fuse_activation(g) is g


def test_declines_when_the_layer_output_is_read_twice():
    g = eval_graph("input: [6]\nmodel:\n  a: Dense(4)\n  b: a → ReLU\n  out: Add(a, b)")
    assert fuse_activation(g) is g


def test_declines_after_views():
    # Reshape may return a view of a tensor read elsewhere: overwriting it would corrupt that reader.
    g = eval_graph("input: [6]\nmodel:\n  a: Dense(4)\n  r: a → Reshape([2, 2]) → ReLU → Flatten\n  out: Add(a, r)")
    assert fuse_activation(g) is g
    g = eval_graph("input: [6]\nmodel:\n  a: Dense(4)\n  r: a → Reshape([2, 2]) → Flatten → ReLU\n  out: Add(a, r)")
    assert fuse_activation(g) is g


def test_chain_of_activations():
    # the second activation reads the first one's (in-place) output: an InplaceActivation is not fresh
    g = eval_graph("input: [6]\nmodel: Dense(4) → ReLU → Sigmoid")
    after = differential(g, ["fuse_activation"])
    assert [n.op for n in after.nodes] == ["Dense", "InplaceActivation", "Sigmoid"]
