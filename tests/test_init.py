"""Weight initialisers: per-op init= and train.init, the same in netc.build and in the emitted source, seeded."""

from __future__ import annotations

import math

import pytest
import torch

import netc
from netc.compiler.train.initializers import ALIASES, INITIALIZERS
from netc.diagnostics import SpecError

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def spec(model: str, input_: str = "[256]", train: str = "") -> str:
    return f"netc: 1\nname: t\ninput: {input_}\nmodel: {model}\n" + (f"train:\n  {train}\n" if train else "")


def weight(model: torch.nn.Module, i: int = 0) -> torch.Tensor:
    return [p for n, p in model.named_parameters() if "weight" in n][i].detach()


@pytest.mark.parametrize("init, std", [
    ("he", lambda fi, fo: math.sqrt(2 / fi)),  # kaiming_normal_(nonlinearity="relu")
    ("kaiming", lambda fi, fo: math.sqrt(2 / fi)),
    ("he_uniform", lambda fi, fo: math.sqrt(2 / fi)),  # U(±sqrt(6 / fan_in)): the same variance
    ("xavier", lambda fi, fo: math.sqrt(2 / (fi + fo))),  # U(±sqrt(6 / (fi + fo)))
    ("glorot_normal", lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("lecun", lambda fi, fo: math.sqrt(1 / fi)),
    ("normal", lambda fi, fo: 0.02),
    ("uniform", lambda fi, fo: 0.1 / math.sqrt(12)),
])
def test_weight_statistics_follow_the_formulas(init, std):
    torch.manual_seed(0)
    w = weight(netc.build(spec(f"Dense(384, init={init})")))  # fan_in 256, fan_out 384
    assert w.mean().abs() < 0.01 * std(256, 384) * 10
    assert w.std().item() == pytest.approx(std(256, 384), rel=0.03)


def test_he_on_a_convolution_counts_channels_times_kernel_as_fan_in():
    torch.manual_seed(0)
    w = weight(netc.build(spec("Conv2D(64, 3, init=he)", "[32, 12, 12]")))
    assert w.std().item() == pytest.approx(math.sqrt(2 / (32 * 9)), rel=0.03)


def test_orthogonal_zeros_ones_and_every_weight_of_a_recurrent_layer():
    m = netc.build(spec("LSTM(16, layers=2, init=orthogonal)", "[5, 8]"))
    ws = [p.detach() for n, p in m.named_parameters() if "weight" in n]
    assert len(ws) == 4  # weight_ih_l0, weight_hh_l0, weight_ih_l1, weight_hh_l1
    for w in ws:  # (4H, in): orthonormal columns
        assert torch.allclose(w.T @ w, torch.eye(w.shape[1]), atol=1e-5)
    bias = next(p for n, p in m.named_parameters() if "bias" in n)
    assert bias.abs().max() > 0  # biases keep torch's default
    assert torch.equal(weight(netc.build(spec("Dense(4, init=zeros)"))), torch.zeros(4, 256))
    assert torch.equal(weight(netc.build(spec("Dense(4, init=ones)"))), torch.ones(4, 256))


def test_an_embedding_keeps_its_padding_vector_zero():
    m = netc.build(spec("Embedding(50, 8, padding_idx=0, init=normal)", "{shape: [T], dtype: int64}"))
    w = weight(m)
    assert torch.equal(w[0], torch.zeros(8)) and w[1:].std().item() == pytest.approx(0.02, rel=0.3)


def test_emitted_source_prints_the_init_calls_and_build_runs_that_source():
    text = spec("Flatten → Dense(64, init=he) → ReLU → Dense(10)", "[1, 8, 8]", train="init: xavier")
    src = netc.compile_source(text)
    assert 'init_weights(self.dense, nn.init.kaiming_normal_, nonlinearity="relu")' in src
    assert "init_weights(self.dense_1, nn.init.xavier_uniform_)" in src  # train.init fills the other layer
    assert "def init_weights(" in src  # the helper travels with the file: it needs only torch
    namespace: dict = {}
    exec(compile(src, "<compiled>", "exec"), namespace)  # noqa: S102 - netc's own generated source
    torch.manual_seed(3)
    from_source = namespace["Model"]()
    torch.manual_seed(3)
    built = netc.build(text)
    for (n1, p1), (n2, p2) in zip(from_source.state_dict().items(), built.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)


def test_the_same_seed_gives_the_same_weights():
    text = spec("Dense(32, init=he) → ReLU → Dense(10, init=orthogonal)")
    torch.manual_seed(7)
    a = netc.build(text).state_dict()
    torch.manual_seed(7)
    b = netc.build(text).state_dict()
    torch.manual_seed(8)
    c = netc.build(text).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and not all(torch.equal(a[k], c[k]) for k in a)


def test_without_init_the_ir_and_the_source_are_unchanged():
    g = netc.load(spec("Dense(10)")).main
    assert "init" not in g.nodes[0].argdict and "init_weights" not in netc.compile_source(spec("Dense(10)"))


def test_a_misspelt_initialiser_gets_a_hint():
    with pytest.raises(SpecError) as e:
        netc.load(spec("Dense(10, init=hee)"))
    assert "init" in str(e.value) and "did you mean 'he'" in str(e.value)
    with pytest.raises(SpecError) as e:
        netc.load(spec("Dense(10)", train="init: glorott"))
    assert "6:9" in str(e.value) and "did you mean 'glorot'" in str(e.value)


def test_aliases_name_existing_schemes():
    assert set(ALIASES.values()) <= set(INITIALIZERS) and not set(ALIASES) & set(INITIALIZERS)
    assert all(hasattr(torch.nn.init, i.fn) for i in INITIALIZERS.values())


def test_init_is_keyword_only():
    with pytest.raises(SpecError, match="Dense takes at most 2 positional arguments, got 3"):
        netc.load(spec("Dense(10, true, he)"))


def test_attention_layers_initialise_their_matrices_and_keep_their_norm_scales():
    torch.manual_seed(0)
    m = netc.build(spec("TransformerEncoder(2, 4, ff=32, init=orthogonal) → MultiHeadAttention(4, init=zeros)",
                        "[6, 16]"))
    params = dict(m.named_parameters())
    w = params["transformerencoder.layers.0.self_attn.in_proj_weight"].detach()  # (48, 16)
    assert torch.allclose(w.T @ w, torch.eye(16), atol=1e-5)
    assert torch.equal(params["transformerencoder.layers.1.norm1.weight"].detach(), torch.ones(16))
    assert torch.equal(params["multiheadattention.out_proj.weight"].detach(), torch.zeros(16, 16))


def test_fused_attention_in_optimised_source_keeps_the_attention_init():
    """-O2 splits MultiHeadAttention into Dense layers: each carries the attention's init= into the source."""
    text = spec("Dense(16) → MultiHeadAttention(4, init=orthogonal) → MultiHeadAttention(2, kv=in, init=zeros)",
                "[6, 16]")
    import dataclasses

    from netc.compiler.passes import run_pipeline

    graph = dataclasses.replace(netc.load(text).main, training=False)  # as `netc compile` (-O2 by default)
    src = netc.compile_source(run_pipeline(graph, 2))
    assert "scaled_dot_product_attention" in src  # fused indeed
    for attr in ("multiheadattention_qkv", "multiheadattention", "multiheadattention_1_q",
                 "multiheadattention_1_kv", "multiheadattention_1"):
        scheme = "nn.init.zeros_" if attr.startswith("multiheadattention_1") else "nn.init.orthogonal_"
        assert f"init_weights(self.{attr}, {scheme})" in src, attr
