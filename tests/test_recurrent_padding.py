"""Padded batches through the recurrent ops and SeqPool with ids=: each sample's outputs equal those of
the sample alone, without its padding (netc/backend/layers.py packed_rnn and seq_pool)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import netc  # noqa: E402
from netc.backend.weights import optimize_module  # noqa: E402
from netc.compiler.check import check_text  # noqa: E402
from netc.diagnostics import SpecError  # noqa: E402

LENGTHS = [12, 5, 1, 9]  # real tokens per sample; the rest of the 12 steps are pad id 0


def spec(op: str, tail: str, length: int = 12, ids: bool = True) -> str:
    pad = ", ids=tokens" if ids else ""
    return (f"netc: 1\nname: p\ninput: {{tokens: {{shape: [{length}], dtype: int64}}}}\n"
            f"model: Embedding(30, 8, padding_idx=0) → {op[:-1]}{pad}) → {tail}\n")


def batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(len(LENGTHS), 12, dtype=torch.int64)
    for i, n in enumerate(LENGTHS):
        x[i, :n] = torch.randint(1, 30, (n,), generator=g)
    return x


def padded_equals_alone(text: str, seed: int, label: tuple) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """Build ``text`` (seeded), run the padded batch, and check each sample's output against the sample
    alone; returns the model, the batch and its outputs."""
    torch.manual_seed(seed)
    m = netc.build(text, train=False)
    x = batch()
    with torch.no_grad():
        y = m(x)
    for i, ref in enumerate(alone(text, m.state_dict(), x)):
        assert torch.allclose(y[i], ref, atol=1e-5), (*label, LENGTHS[i])
    return m, x, y


def alone(model_text: str, weights: dict, x: torch.Tensor) -> list[torch.Tensor]:
    """Each sample through the same weights, unpadded: the same model built for its own length, no ids."""
    out = []
    for i, n in enumerate(LENGTHS):
        m = netc.build(model_text.replace("[12]", f"[{n}]").replace(", ids=tokens", ""), train=False)
        m.load_state_dict(weights)
        with torch.no_grad():
            out.append(m(x[i:i + 1, :n])[0])
    return out


@pytest.mark.parametrize("rnn", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_last_state_of_a_padded_sample_is_that_of_the_sample_alone(rnn, bidirectional):
    text = spec(f"{rnn}(6, layers=2, bidirectional={str(bidirectional).lower()})", "Dense(3)")
    m, x, y = padded_equals_alone(text, 0, (rnn, bidirectional))
    plain = netc.build(text.replace(", ids=tokens", ""), train=False)
    plain.load_state_dict(m.state_dict())
    with torch.no_grad():  # the control: without ids the padding changes the short samples' states
        assert not torch.allclose(plain(x)[1], y[1], atol=1e-4)


@pytest.mark.parametrize("mode", ["mean", "max", "first", "last"])
def test_sequences_and_pooling_see_the_real_steps_only(mode):
    text = spec("LSTM(6, bidirectional=true, return_sequences=true)", f"SeqPool({mode}, ids=tokens) → Dense(3)")
    padded_equals_alone(text, 1, (mode,))


def test_padded_steps_output_zeros_and_the_optimised_module_agrees():
    text = spec("GRU(6, return_sequences=true)", "SeqPool(mean, ids=tokens) → Dense(3)")
    m = netc.build(text, train=False)
    x = batch()
    o2 = optimize_module(m, 2)
    with torch.no_grad():
        assert torch.allclose(o2(x), m(x), atol=1e-6)
        from netc.backend.layers import packed_rnn

        steps = packed_rnn(m.gru, m.embedding(x), x, 0)[0]
    assert steps[1, LENGTHS[1]:].abs().sum() == 0 and steps[1, :LENGTHS[1]].abs().sum() > 0


def test_ids_that_are_not_the_steps_are_a_located_error():
    text = ("netc: 1\nname: p\ninput: {tokens: {shape: [12], dtype: int64}, other: {shape: [7], dtype: int64}}\n"
            "model: tokens → Embedding(30, 8) → LSTM(6, ids=other) → Dense(3)\n")
    with pytest.raises(SpecError) as e:
        check_text(text, "p.yaml")
    d = e.value.diagnostics[0]
    assert "padding ids" in d.message and "(N, 7)" in d.message and d.span.line == 4


def test_the_emitted_source_packs_and_pools():
    src = netc.compile_source(spec("LSTM(6, return_sequences=true)", "SeqPool(last, ids=tokens) → Dense(3)"))
    assert "packed_rnn(self.lstm, x, tokens, 0)[0]" in src and "seq_pool(x, tokens, 0, 'last')" in src
    assert "def packed_rnn" in src and "def seq_pool" in src and "def real_lengths" in src
