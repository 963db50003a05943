"""netc.backend.tune: the choice computes what the unoptimised module does; the decision cache is
reused for the same model, shape, threads and torch version and re-measured when one changes."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from equivalence import randomize_batchnorm

import netc
from netc.backend import tune

SPEC = """
netc: 1
name: tiny_res
input: [3, 16, 16]
blocks:
  Res(c):
    body: Conv2D(c, 3, padding=1) → BatchNorm → ReLU → Conv2D(c, 3, padding=1) → BatchNorm
    out: Add(body, in) → ReLU
model: Conv2D(8, 3, padding=1) → BatchNorm → ReLU → Res(8) → MaxPool(2) → GlobalAvgPool → Dense(4)
"""
# the same net on 2×2 inputs: every convolution's input is as small as its kernel
SMALL = SPEC.replace("input: [3, 16, 16]", "input: [3, 2, 2]").replace(" → MaxPool(2)", "")
TOL = tune.TOLERANCE  # max |Δ| / max |y|, as the tuner itself checks


@pytest.fixture
def model():
    torch.manual_seed(0)
    return randomize_batchnorm(netc.build(SPEC, train=False))


@pytest.fixture
def measured(monkeypatch):
    """Counts measurements (each one times every candidate)."""
    calls = []
    real = tune.paired_scores

    def counting(fns, inputs, budget_s=2.0, rounds=25, warmup=2):
        calls.append(tuple(inputs[0].shape))
        return real(fns, inputs, 0.05, 5, 1)

    monkeypatch.setattr(tune, "paired_scores", counting)
    return calls


@pytest.mark.parametrize("spec, hw", [(SPEC, 16), (SMALL, 2)])
def test_every_candidate_computes_the_unoptimised_outputs(spec, hw):
    torch.manual_seed(0)
    model = randomize_batchnorm(netc.build(spec, train=False))
    x = torch.randn(3, 3, hw, hw)
    built = []
    with torch.inference_mode():
        y = model(x)
        for name, build in tune.candidates(model, (x,)).items():
            try:
                cand = build()
            except ValueError:  # "prepacked dense" where no convolution qualifies, and only there
                assert name == "prepacked dense" and hw == 16
                continue
            built.append(name)
            assert tune.relative_error(cand(x), y) <= TOL, name
    assert ("prepacked dense" in built) == (hw == 2)


def test_choice_matches_unoptimised_and_carries_netc_attributes(model, measured, tmp_path):
    fast = tune.tune_module(model, 2, cache_dir=tmp_path)
    assert fast.netc_choice in fast.netc_scores and fast.netc_scores["unoptimised"] == 1.0
    assert fast.netc_scores[fast.netc_choice] <= 1.0  # never slower than unoptimised, as measured
    assert fast.input_names == model.input_names and fast.netc_graph is not None
    for b in (2, 5):  # the batch it was tuned for and another
        x = torch.randn(b, 3, 16, 16)
        with torch.inference_mode():
            assert tune.relative_error(fast(x), model(x)) <= TOL


def test_unoptimised_choice_shares_weights_and_leaves_the_callers_module_alone(model, measured, tmp_path):
    tune.tune_module(model, 2, cache_dir=tmp_path)
    next(tmp_path.glob("*.json")).write_text(json.dumps({"choice": "unoptimised"}))
    fast = tune.tune_module(model, 2, cache_dir=tmp_path)
    assert fast.netc_choice == "unoptimised" and fast is not model and not hasattr(model, "netc_choice")
    assert all(a is b for a, b in zip(fast.parameters(), model.parameters()))  # no copy of the weights


def test_second_optimisation_reuses_the_decision(model, measured, tmp_path):
    first = tune.tune_module(model, 2, cache_dir=tmp_path)
    entries = list(tmp_path.glob("*.json"))
    assert len(entries) == 1 and json.loads(entries[0].read_text())["choice"] == first.netc_choice
    again = tune.tune_module(model, 2, cache_dir=tmp_path)
    assert measured == [(2, 3, 16, 16)]  # measured once
    assert again.netc_choice == first.netc_choice and again.netc_scores is None


def test_cached_choice_is_what_gets_built(model, measured, tmp_path):
    tune.tune_module(model, 2, cache_dir=tmp_path)
    entry = next(tmp_path.glob("*.json"))
    entry.write_text(json.dumps({"choice": "O2 without channels_last"}))
    assert tune.tune_module(model, 2, cache_dir=tmp_path).netc_choice == "O2 without channels_last"
    entry.write_text(json.dumps({"choice": "no such candidate"}))  # stale or foreign: measured again
    assert tune.tune_module(model, 2, cache_dir=tmp_path).netc_scores is not None
    assert len(measured) == 2


def test_changed_shape_or_threads_re_measures(model, measured, tmp_path):
    tune.tune_module(model, 2, cache_dir=tmp_path)
    tune.tune_module(model, 4, cache_dir=tmp_path)  # another batch size
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if threads != 1 else 2)
        tune.tune_module(model, 2, cache_dir=tmp_path)  # another thread count
    finally:
        torch.set_num_threads(threads)
    assert measured == [(2, 3, 16, 16), (4, 3, 16, 16), (2, 3, 16, 16)]
    assert len(list(tmp_path.glob("*.json"))) == 3


def test_key_depends_on_torch_version_and_graph(model, monkeypatch):
    x = (torch.randn(2, 3, 16, 16),)
    key = tune.decision_key(model.netc_graph, x)
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    assert tune.decision_key(model.netc_graph, x) != key
    monkeypatch.undo()
    monkeypatch.setattr(tune, "CANDIDATES", tune.CANDIDATES + 1)  # a candidate changed meaning
    assert tune.decision_key(model.netc_graph, x) != key
    monkeypatch.undo()
    other = netc.build(SPEC.replace("Dense(4)", "Dense(5)"), train=False)
    assert tune.decision_key(other.netc_graph, x) != key


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(tune.CACHE_ENV, str(tmp_path / "c"))
    assert tune.default_cache_dir() == tmp_path / "c"


@pytest.mark.parametrize("cin, cout, hw, k, stride, pad, dil", [
    (4, 6, (2, 2), 3, 1, 1, 1),   # ResNet's last stage at small images
    (3, 5, (2, 3), 3, 2, 1, 1),   # stride, non-square input
    (2, 3, (3, 3), 3, 1, 2, 2),   # dilation, wide padding
    (5, 4, (1, 1), 1, 1, 0, 1),   # a 1×1 convolution on one position
])
def test_dense_conv_weight_is_the_convolution(cin, cout, hw, k, stride, pad, dil):
    torch.manual_seed(0)
    w, x = torch.randn(cout, cin, k, k), torch.randn(7, cin, *hw)
    y = torch.nn.functional.conv2d(x, w, stride=stride, padding=pad, dilation=dil)
    matrix, out_hw = tune.dense_conv_weight(w, hw, (stride, stride), (pad, pad), (dil, dil))
    assert out_hw == tuple(y.shape[-2:])
    torch.testing.assert_close(x.flatten(1) @ matrix.T, y.flatten(1), rtol=1e-5, atol=1e-5)
    # each entry is one of the kernel's weights or 0: the product sums the same terms as the convolution
    assert set(matrix[matrix != 0].tolist()) <= set(w.flatten().tolist())



def _targets(gm):
    return {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}


def test_convolutions_on_inputs_no_larger_than_their_kernel_become_one_matrix_product():
    from netc.backend.weights import optimize_module

    torch.manual_seed(0)
    small = randomize_batchnorm(netc.build(SMALL, train=False))
    x = torch.randn(3, 3, 2, 2)
    packed = tune.prepack(optimize_module(small, 2), (x,), dense=True)
    ops = _targets(packed)
    assert len(packed.netc_as_matrices) == 3  # the stem's convolution and the residual block's two
    # conv + ReLU, and conv + add + ReLU (the residual block's second convolution), as oneDNN linears
    assert {"mkldnn._linear_pointwise.default", "mkldnn._linear_pointwise.binary"} <= ops
    assert not any("convolution" in t for t in ops)
    with torch.inference_mode():
        for batch in (3, 1, 5):  # packed for a batch of 3; other batch sizes still compute the same
            xb = torch.randn(batch, 3, 2, 2)
            assert tune.relative_error(packed(xb), small(xb)) <= TOL, batch
    assert not any("linear" in t for t in _targets(tune.prepack(optimize_module(small, 2), (x,))))
    # a 16×16 input keeps its convolutions: the candidate does not exist there
    with pytest.raises(ValueError, match="as small as its kernel"):
        tune.prepack(optimize_module(netc.build(SPEC, train=False), 2), (torch.randn(2, 3, 16, 16),), dense=True)
