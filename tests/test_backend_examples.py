"""Every model of every ``examples/*.yaml`` and ``specs/*.yaml`` (globbed, so new files are covered).

For each model: the built module's output shape equals the checker's static shape at
batch 1 and batch 7, its parameter count equals the checker's, and the emitted source,
executed on its own, has the same state_dict keys and — loaded with the same
state_dict, in eval mode, float32 random inputs — equal outputs within
``torch.testing.assert_close``'s default float32 tolerances (rtol 1.3e-6, atol 1e-5).

Models above ``HEAVY_MACS`` per sample (VGG-16, GoogLeNet, ResNet-18 at 224×224) run
batch 1 for real and check batch 7 on the meta device (the same generated forward,
shapes only); models above ``HEAVY_PARAMS`` construct the emitted twin on the meta device
and load the built module's state_dict with ``assign=True`` (no second random
initialisation of 100M weights). Both keep this file within its time budget on a 2-core CPU.
"""

from __future__ import annotations

import pytest
import torch
from conftest import EXAMPLES, ROOT, SPECS
from test_backend_ops import check_graph, run_exec_source

import netc
from netc.backend.emit import class_names

HEAVY_MACS = 1_000_000_000  # per sample: above it, batch 7 is checked on the meta device
HEAVY_PARAMS = 10_000_000  # above it, the emitted twin is built on meta and assigned the real weights
FILES = EXAMPLES + SPECS


def test_there_are_files_to_cover():
    assert len(EXAMPLES) >= 2 and any(p.name == "cifar10_cnn.yaml" for p in EXAMPLES)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_spec_builds_with_checker_shapes_and_params(path):
    program = netc.load(path)
    if not program.graphs:
        pytest.skip("defines only blocks")
    source = netc.compile_source(program)
    names = class_names(program)
    for model, graph in program.graphs.items():
        torch.manual_seed(0)
        module = netc.build(program, model, train=False)
        assert module.netc_graph.name == model
        assert module.input_names == [i.name for i in graph.inputs]
        heavy = graph.macs > HEAVY_MACS
        emitted = run_exec_source(source, names[model], meta=graph.params > HEAVY_PARAMS)
        check_graph(graph, module, emitted, batches=(1,) if heavy else (1, 7), meta_batches=(7,) if heavy else ())


@pytest.mark.parametrize("path", [p for p in FILES if p.name == "cifar10_cnn.yaml"][:1])
def test_cifar10_state_dict_keys_are_the_spec_names(path):
    module = netc.build(path)
    names = [n.name for n in module.netc_graph.nodes if n.op in ("Conv2D", "Dense")]
    assert list(module.state_dict()) == [f"{n}.{w}" for n in names for w in ("weight", "bias")]
