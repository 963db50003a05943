"""eliminate_identity: Identity nodes are removed; their readers read the Identity's input."""

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

from netc.compiler.passes.eliminate_identity import eliminate_identity


@pytest.mark.parametrize(("label", "graph"), CASES, ids=IDS)
def test_module_without_identities_equals_module_with_them(label, graph):
    after = differential(graph, ["eliminate_identity"])
    assert not any(n.op == "Identity" for n in after.nodes)


def test_golden():
    golden("eliminate_identity")


def test_training_graph_is_unchanged():
    unchanged_in_training("eliminate_identity", "input: [6]\nmodel: Identity → Dense(2)")


def test_identity_of_an_input_that_is_returned():
    g = eval_graph("input: [6]\nmodel: Identity")
    after = eliminate_identity(g)
    assert after.nodes == () and after.outputs == ("x",)
    differential(g, ["eliminate_identity"])


def test_nothing_to_do_returns_the_same_graph():
    g = eval_graph("input: [6]\nmodel: Dense(2)")
    assert eliminate_identity(g) is g
