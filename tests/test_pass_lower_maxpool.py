"""lower_maxpool: max pooling whose windows tile the input → exact maxima of strided views."""

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
from netc.compiler.passes.lower_maxpool import lower_maxpool


@pytest.mark.parametrize(("label", "graph"), CASES, ids=IDS)
def test_lowered_pooling_equals_max_pool(label, graph):
    after = differential(graph, ["lower_maxpool"])
    assert any(n.op == "WindowMax" for n in after.nodes)


def test_golden():
    golden("lower_maxpool")


def test_training_graph_is_unchanged():
    unchanged_in_training("lower_maxpool", "input: [3, 8, 8]\nmodel: MaxPool(2)")


@pytest.mark.parametrize("text", [
    "input: [2, 8, 8]\nmodel: MaxPool(3, stride=1)",           # overlapping windows
    "input: [2, 8, 8]\nmodel: MaxPool(2, padding=1)",          # padding
    "input: [2, 9, 9]\nmodel: MaxPool(2, ceil_mode=true)",     # partial windows kept
    "input: [2, 8, 8]\nmodel: AvgPool(2)",                     # not a maximum
])
def test_declines(text):
    g = eval_graph(text)
    assert lower_maxpool(g) is g


@pytest.mark.parametrize("text", [
    "input: [2, 7, 9]\nmodel: MaxPool(2)",                     # odd sizes: trailing row/column dropped
    "input: [2, 9, 8]\nmodel: MaxPool2D([3, 2])",
    "input: [2, 10]\nmodel: MaxPool(3)",
    "input: [2, 8, 8]\nmodel: MaxPool(1) → Flatten",           # 1×1 windows: removed
])
def test_shapes_and_window_sizes(text):
    differential(eval_graph(text), ["lower_maxpool"])


def test_outputs_are_identical_including_nan():
    g = eval_graph("input: [2, 6, 6]\nmodel: MaxPool(2)")
    before, after = build_graph(g, train=False), build_graph(lower_maxpool(g), train=False)
    x = torch.randn(3, 2, 6, 6)
    x[0, 0, 0, 1] = float("nan")
    x[1, 1, 3, 3] = float("inf")
    y, z = before(x), after(x)
    assert torch.equal(y.isnan(), z.isnan()) and torch.equal(y.nan_to_num(), z.nan_to_num())
    xc = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(after(xc).nan_to_num(), y.nan_to_num())
