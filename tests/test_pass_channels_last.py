"""channels_last: Conv2D stacks run NHWC; values are untouched (a layout is not a computation)."""

from __future__ import annotations

import pytest
import torch
from equivalence import unoptimised
from pass_support import (
    CASES,
    IDS,
    differential,
    eval_graph,
    golden,
    unchanged_in_training,
)

from netc.backend.weights import optimize_module
from netc.compiler.passes.channels_last import channels_last, channels_last_tensors


@pytest.mark.parametrize(("label", "graph"), CASES, ids=IDS)
def test_channels_last_module_equals_original(label, graph):
    after = differential(graph, ["channels_last"])
    assert any(n.op == "ChannelsLast" for n in after.nodes)


def test_golden():
    golden("channels_last")


def test_training_graph_is_unchanged():
    unchanged_in_training("channels_last", "input: [3, 8, 8]\nmodel: Conv2D(4, 3)")


def test_no_conv2d_no_change():
    g = eval_graph("input: [4, 12]\nmodel: Conv1D(4, 3) → Flatten → Dense(2)")
    assert channels_last(g) is g


def test_one_conversion_per_stack_and_idempotent():
    g = eval_graph("input: [3, 8, 8]\nmodel: Conv2D(4, 3) → BatchNorm → ReLU → MaxPool(2) → Conv2D(4, 1) → ReLU")
    after = channels_last(g)
    assert [n.op for n in after.nodes].count("ChannelsLast") == 1
    assert channels_last(after) == after
    assert {n.name for n in after.nodes if n.op != "ChannelsLast"} <= channels_last_tensors(after)


def test_activations_and_weights_are_channels_last_in_the_module():
    g = eval_graph("input: [3, 8, 8]\nmodel: Conv2D(4, 3) → ReLU → Conv2D(4, 3)")
    fast = optimize_module(unoptimised(g), names=["channels_last"])
    convs = [m for m in fast.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    with torch.inference_mode():
        y = fast(torch.randn(2, 3, 8, 8))
    assert y.is_contiguous(memory_format=torch.channels_last)
