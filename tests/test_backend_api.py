"""netc.build / netc.load / netc.compile_source and the module builder (netc.backend.build)."""

from __future__ import annotations

import inspect
import pickle
import subprocess
import sys

import pytest
import torch
from conftest import EXAMPLES, ROOT

import netc
from netc.backend import build as backend_build
from netc.compiler.ir import Program
from netc.diagnostics import NetcError, SpecError, UsageError

MLP = "netc: 1\nname: mlp\ninput: [1, 4, 4]\nmodel: Flatten → Dense(8) → ReLU → Dropout(0.5) → Dense(3)\n"
GAN = ("netc: 1\nname: gan\nmodels:\n  generator:\n    input: [4]\n    model: Dense(16) → Tanh → Reshape([1, 4, 4])\n"
       "  discriminator:\n    input: [1, 4, 4]\n    model: Flatten → Dense(1)\n")


def test_import_netc_is_lazy_and_torch_free():
    code = ("import sys, netc\n"
            "assert 'torch' not in sys.modules and 'netc.api' not in sys.modules\n"
            "p = netc.load(sys.argv[1])\n"
            "netc.compile_source(p)\n"
            "import netc.compiler.check\n"
            "assert 'torch' not in sys.modules, 'load/compile_source imported torch'\n"
            "assert callable(netc.build) and 'torch' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLES[0])], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    with pytest.raises(AttributeError):
        netc.no_such_thing  # noqa: B018


def test_build_from_text_path_and_program_agree():
    torch.manual_seed(0)
    a = netc.build(MLP)
    program = netc.load(MLP)
    assert isinstance(program, Program) and program.main.params == 163
    b = netc.build(program)
    c = netc.build(EXAMPLES[0])
    assert list(a.state_dict()) == list(b.state_dict())
    assert type(a) is type(b)  # the same generated source → the same cached class
    assert isinstance(c, torch.nn.Module)


def test_build_train_flag_and_attributes():
    m = netc.build(MLP)
    assert m.training and m.netc_graph.training
    e = netc.build(MLP, train=False)
    assert not e.training and not e.netc_graph.training
    assert e.input_names == ["x"]
    x = torch.randn(5, 1, 4, 4)
    assert torch.equal(e(x), e(x))  # eval mode: Dropout is off


def test_multi_model_build_needs_a_name():
    with pytest.raises(UsageError) as err:
        netc.build(GAN)
    assert "generator" in str(err.value) and "discriminator" in str(err.value)
    g = netc.build(GAN, "generator")
    d = netc.build(GAN, model="discriminator")
    assert type(g).__name__ == "Generator" and type(d).__name__ == "Discriminator"
    assert d(g(torch.randn(3, 4))).shape == (3, 1)
    with pytest.raises(UsageError, match="no model named 'critic'"):
        netc.build(GAN, "critic")


def test_blocks_only_spec_cannot_be_built():
    with pytest.raises(UsageError, match="only blocks"):
        netc.build("netc: 1\nblocks:\n  Unit(c): Dense(c) → ReLU\n")


def test_invalid_spec_raises_spec_error():
    with pytest.raises(SpecError):
        netc.build("netc: 1\ninput: [4]\nmodel: Dense(0)\n")
    with pytest.raises(NetcError):
        netc.load("no/such/file.yaml")
    with pytest.raises(UsageError):
        netc.load(42)


def test_passes_argument():
    m = netc.build(MLP, train=False, passes=2)
    assert isinstance(m, torch.nn.Module)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_generated_class_has_source_for_inspect_pickle_and_torchscript():
    m = netc.build(MLP, train=False)
    assert "class Model(nn.Module)" in inspect.getsource(type(m))
    restored = pickle.loads(pickle.dumps(m))
    x = torch.randn(2, 1, 4, 4)
    torch.testing.assert_close(restored(x), m(x))
    scripted = torch.jit.script(m)
    torch.testing.assert_close(scripted(x), m(x))


def test_tracebacks_show_generated_lines():
    m = netc.build(MLP)
    with pytest.raises(RuntimeError) as err:
        m(torch.randn(2, 3))  # wrong input shape
    frames = [f for f in err.traceback if "netc-generated" in str(f.path)]
    assert frames, "the generated forward is missing from the traceback"
    assert "x = self.dense(x)" in str(frames[0].statement)


def test_example_inputs_and_concrete_shape():
    program = netc.load("netc: 1\ninput: {ids: {shape: [T], dtype: int64}, feats: [T, 3]}\nmodel:\n"
                        "  e: ids → Embedding(7, 3) → PositionalEncoding(max_len=4)\n"
                        "  c: Concat(e, feats, axis=1)\n")
    ids, feats = backend_build.example_inputs(program.main, batch=3, seq=9)
    assert ids.dtype == torch.int64 and ids.shape == (3, 4) and int(ids.max()) < 7  # T capped by max_len
    assert feats.shape == (3, 4, 3)
    assert backend_build.concrete_shape(program.main.output_type.shape, 3, 4) == (3, 8, 3)
    y = netc.build(program, train=False)(ids, feats)
    assert tuple(y.shape) == (3, 8, 3)


def test_build_a_graph_directly_including_several_outputs():
    import dataclasses

    graph = netc.load("netc: 1\ninput: [4]\nmodel:\n  a: Dense(3)\n  b: Dense(2)\n").main
    m = netc.build(graph, train=False)
    assert type(m).__name__ == "Model" and m(torch.randn(2, 4)).shape == (2, 2)
    two = dataclasses.replace(graph, outputs=("a", "b"))  # as a pass may produce
    ya, yb = netc.build(two, train=False)(torch.randn(2, 4))
    assert ya.shape == (2, 3) and yb.shape == (2, 2)
    assert "-> tuple[torch.Tensor, torch.Tensor]:" in netc.compile_source(two)


def test_params_overrides():
    spec = "netc: 1\nparams: {width: 8}\ninput: [4]\nmodel: Dense(width) → Dense(2)\n"
    assert netc.load(spec, params={"width": 16}).main.params == 4 * 16 + 16 + 16 * 2 + 2
    m = netc.build(spec, params={"width": 16})
    assert m.state_dict()["dense.weight"].shape == (16, 4)
