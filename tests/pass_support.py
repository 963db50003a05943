"""Shared by the pass tests: every example and spec as an inference graph, and the differential check."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, SPECS, UPDATE_GOLDEN
from equivalence import assert_equivalent, unoptimised

from netc.backend.weights import optimize_module
from netc.compiler.check import check_file, check_text
from netc.compiler.ir import Graph
from netc.compiler.passes import PASSES

GOLDEN = ROOT / "tests" / "golden" / "passes"

# Smallest sizes the big specs accept, so their modules build and run in a test (same layers, fewer pixels).
SHRINK = {"alexnet.yaml": {"size": 64, "classes": 10}, "googlenet.yaml": {"size": 32, "classes": 10},
          "resnet18.yaml": {"size": 32, "classes": 10}, "vgg16.yaml": {"size": 32, "classes": 10}}


def _graphs() -> list[tuple[str, Graph]]:
    out = []
    for path in EXAMPLES + SPECS:
        program = check_file(path, params=SHRINK[path.name]) if path.name in SHRINK else check_file(path)
        for name, g in program.graphs.items():
            label = f"{path.parent.name}/{path.name}" + (f":{name}" if len(program.graphs) > 1 else "")
            out.append((label, dataclasses.replace(g, training=False)))
    return out


CASES = _graphs()
IDS = [label for label, _ in CASES]


def eval_graph(text: str) -> Graph:
    """The inference graph of a one-model spec given as text (``netc: 1`` added)."""
    return dataclasses.replace(check_text("netc: 1\n" + text).main, training=False)


def differential(graph: Graph, names: list[str]) -> Graph:
    """Run passes ``names`` on ``graph``; skip if they change nothing, else assert equal outputs. Returns the result."""
    after = graph
    for n in names:
        after = PASSES[n](after)
    if after == graph:
        pytest.skip(f"{', '.join(names)} does not apply")
    before = unoptimised(graph)
    fast = optimize_module(before, names=names)
    assert fast.netc_graph == after
    assert_equivalent(before, fast, graph)
    return after


def golden(name: str) -> None:
    """Compare the IR before/after pass ``name`` on ``golden/passes/<name>.yaml`` with ``<name>.out``."""
    spec = GOLDEN / f"{name}.yaml"
    graph = dataclasses.replace(check_file(spec).main, training=False)
    after = PASSES[name](graph)
    assert after != graph, f"the golden spec of {name} must exercise the pass"
    text = f"# before {name}\n{graph.text()}\n\n# after {name}\n{after.text()}\n"
    expected = spec.with_suffix(".out")
    if UPDATE_GOLDEN or not expected.exists():
        expected.write_text(text, encoding="utf-8")
    assert text == expected.read_text(encoding="utf-8"), f"refresh with NETC_UPDATE_GOLDEN=1 if intended: {expected}"
    # and the golden rewrite is numerically exact too
    differential(graph, [name])


def unchanged_in_training(name: str, text: str) -> None:
    """A training graph passes through pass ``name`` as the very same object."""
    g = check_text("netc: 1\n" + text).main
    assert g.training
    assert PASSES[name](g) is g
    assert PASSES[name](dataclasses.replace(g, training=False)) != dataclasses.replace(g, training=False), \
        "the training-mode test spec must be one the pass rewrites at inference"


__all__ = ["CASES", "GOLDEN", "IDS", "Path", "differential", "eval_graph", "golden", "unchanged_in_training"]
