"""eliminate_dropout: Dropout is the identity at inference; built-in rates become 0."""

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

from netc.compiler.passes.eliminate_dropout import eliminate_dropout


@pytest.mark.parametrize(("label", "graph"), CASES, ids=IDS)
def test_module_without_dropout_equals_module_with_it(label, graph):
    after = differential(graph, ["eliminate_dropout"])
    assert not any(n.op == "Dropout" for n in after.nodes)
    assert all(not n.arg("dropout") for n in after.nodes)


def test_golden():
    golden("eliminate_dropout")


def test_training_graph_is_unchanged():
    unchanged_in_training("eliminate_dropout", "input: [8]\nmodel: Dense(4) → Dropout(0.5)")


def test_dropout_feeding_the_output_returns_its_input():
    g = eval_graph("input: [8]\nmodel: Dense(4) → Dropout(0.5)")
    after = eliminate_dropout(g)
    assert [n.op for n in after.nodes] == ["Dense"]
    assert after.outputs == (g.nodes[0].name,)


def test_a_model_of_only_dropout_returns_its_input():
    g = eval_graph("input: [8]\nmodel: Dropout(0.5)")
    after = eliminate_dropout(g)
    assert after.nodes == () and after.outputs == (g.inputs[0].name,)
    differential(g, ["eliminate_dropout"])


def test_nothing_to_do_returns_the_same_graph():
    g = eval_graph("input: [8]\nmodel: Dense(4) → ReLU")
    assert eliminate_dropout(g) is g
