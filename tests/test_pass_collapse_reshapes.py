"""collapse_reshapes: reshape and permute chains collapse; reshapes and permutes that change nothing go."""

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

from netc.compiler.passes.collapse_reshapes import collapse_reshapes


@pytest.mark.parametrize(("label", "graph"), CASES, ids=IDS)
def test_collapsed_module_equals_original(label, graph):
    differential(graph, ["collapse_reshapes"])


def test_golden():
    golden("collapse_reshapes")


def test_training_graph_is_unchanged():
    unchanged_in_training("collapse_reshapes", "input: [4, 6]\nmodel: Flatten → Reshape([6, 4]) → Dense(2)")


@pytest.mark.parametrize("text", [
    "input: [4, 6]\nmodel: Reshape([4, 6]) → Dense(2)",          # to its own shape
    "input: [3, 5, 5]\nmodel: GlobalAvgPool → Flatten → Dense(2)",  # Flatten of (N, C)
    "input: [4, 6]\nmodel: Permute([2, 1]) → Permute([2, 1]) → Dense(2)",  # cancelling pair
    "input: [2, 3, 4]\nmodel: Permute([2, 3, 1]) → Permute([3, 1, 2]) → Flatten",  # 3-cycle and its inverse
])
def test_no_op_shapes_disappear(text):
    g = eval_graph(text)
    after = differential(g, ["collapse_reshapes"])
    assert not any(n.op in ("Reshape", "Flatten", "Permute") for n in after.nodes[:-1])


def test_permutes_compose():
    g = eval_graph("input: [2, 3, 4]\nmodel: Permute([2, 1, 3]) → Permute([1, 3, 2]) → Flatten")
    after = differential(g, ["collapse_reshapes"])
    (p,) = [n for n in after.nodes if n.op == "Permute"]
    assert p.arg("dims") == (2, 3, 1) and p.type == g.nodes[1].type


def test_declines_when_the_intermediate_reshape_is_read_twice():
    g = eval_graph("input: [4, 6]\nmodel:\n  r: Reshape([6, 4])\n  a: r → Flatten\n  b: r → Flatten\n"
                   "  out: Concat(a, b)")
    after = collapse_reshapes(g)
    assert [n.op for n in after.nodes] == [n.op for n in g.nodes]


def test_declines_when_the_intermediate_permute_is_read_twice():
    g = eval_graph("input: [4, 6]\nmodel:\n  p: Permute([2, 1])\n  q: p → Permute([2, 1])\n  out: Add(q, in)\n"
                   "  o: p → Flatten")
    assert collapse_reshapes(g) is g
