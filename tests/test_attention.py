"""Causal and padding masks, the Transformer decoder ops, and the proof that causal models cannot read ahead.

Differential throughout: a future token is changed and earlier outputs must not move (the op, the
primitives, before and after -O2, in train and eval mode); padding is added and real positions must not
move; the decoder op and the same decoder from primitives give equal outputs with copied weights. A
causal next-token model trained on random tokens stays at chance, while the same model with
causal=false reads the answer (so the test can fail).
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import netc  # noqa: E402
from netc.backend.weights import optimize_module  # noqa: E402
from netc.compiler.check import check_file, check_text  # noqa: E402
from netc.compiler.registry import REGISTRY  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB = 28


def gpt_op(causal: bool = True, length: str = "T") -> str:
    """A next-token model with the encoder as one op."""
    return f"""netc: 1
name: gpt_op
input: {{shape: [{length}], dtype: int64}}
model: >-
  Embedding({VOCAB}, 32) → PositionalEncoding(max_len=16)
  → TransformerEncoder(2, 4, ff=64, dropout=0.0, causal={str(causal).lower()}) → Dense({VOCAB})
"""


def gpt_primitives(causal: bool = True, length: str = "T") -> str:
    """The same kind of model written out from primitives (pre-norm blocks, as in nanoGPT)."""
    return f"""netc: 1
name: gpt_primitives
input: {{shape: [{length}], dtype: int64}}
blocks:
  Block(d, heads, ff):
    attention: LayerNorm → MultiHeadAttention(heads, causal={str(causal).lower()})
    mixed: Add(in, attention)
    feedforward: LayerNorm → Dense(ff) → GELU → Dense(d)
    out: Add(mixed, feedforward)
model: >-
  Embedding({VOCAB}, 32) → PositionalEncoding(max_len=16) → Block(32, 4, 64) * 2
  → LayerNorm → Dense({VOCAB})
"""


def gpt_layer(causal: bool = True) -> str:
    """One TransformerEncoderLayer, the op's other form."""
    return f"""netc: 1
name: gpt_layer
input: {{shape: [T], dtype: int64}}
model: >-
  Embedding({VOCAB}, 32) → PositionalEncoding(max_len=16)
  → TransformerEncoderLayer(4, ff=64, dropout=0.0, causal={str(causal).lower()}) → Dense({VOCAB})
"""


SPECS = {"op": gpt_op, "primitives": gpt_primitives, "layer": gpt_layer}


def _tokens(n: int = 3, t: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, VOCAB, (n, t), generator=torch.Generator().manual_seed(seed))


def _modules(text: str):
    """The model in train mode, in eval mode, and after -O2 (same weights)."""
    torch.manual_seed(0)
    train = netc.build(text, train=True)
    evaluate = netc.build(text, train=False)
    evaluate.load_state_dict(train.state_dict())
    return {"train": train, "eval": evaluate, "O2": optimize_module(evaluate, 2)}


# ----------------------------------------------------------------------------- causality

@pytest.mark.parametrize("form", list(SPECS))
def test_changing_a_future_token_leaves_earlier_logits_unchanged(form):
    x = _tokens()
    at = 7
    changed = x.clone()
    changed[:, at] = changed[:, at] % (VOCAB - 1) + 1  # another real token
    modules = _modules(SPECS[form](causal=True))
    if form == "primitives":  # -O2 replaced MultiHeadAttention by the fused kernel: the mask went with it
        assert "ScaledDotProductAttention" in {n.op for n in modules["O2"].netc_graph.nodes}
    for mode, m in modules.items():
        with torch.no_grad():
            a, b = m(x), m(changed)
        assert torch.allclose(a[:, :at], b[:, :at], atol=1e-5), (form, mode)
        assert not torch.allclose(a[:, at:], b[:, at:], atol=1e-3), (form, mode)  # the token itself does count


@pytest.mark.parametrize("form", list(SPECS))
def test_without_causal_a_future_token_changes_earlier_logits(form):
    """The control: the same models with causal=false do read ahead, so the test above can fail."""
    x = _tokens()
    changed = x.clone()
    changed[:, 7] = changed[:, 7] % (VOCAB - 1) + 1
    for mode, m in _modules(SPECS[form](causal=False)).items():
        with torch.no_grad():
            assert not torch.allclose(m(x)[:, :7], m(changed)[:, :7], atol=1e-3), (form, mode)


def test_fused_attention_keeps_the_mask_in_its_source():
    m = _modules(gpt_primitives())["O2"]
    source = netc.compile_source(m.netc_graph)
    assert source.count("is_causal=True") == 2  # both blocks' fused attention
    assert all(n.arg("causal") for n in m.netc_graph.nodes if n.op == "ScaledDotProductAttention")


def test_fused_attention_keeps_the_padding_ids():
    m = _modules(PADDED["attention"])["O2"]
    (sdpa,) = [n for n in m.netc_graph.nodes if n.op == "ScaledDotProductAttention"]
    assert sdpa.inputs[-1] == "tokens" and sdpa.arg("pad_id") == 0
    assert "attn_mask=attend_mask(tokens, 0, " in netc.compile_source(m.netc_graph)


def test_every_attention_op_says_whether_it_is_causal():
    program = check_text(gpt_primitives(causal=True)).main
    attention = [n for n in program.nodes if REGISTRY.get(n.op).causal_arg is not None]
    assert [REGISTRY.get(n.op).is_causal(n.args) for n in attention] == [True, True]
    plain = check_text(gpt_op(causal=False)).main
    assert [REGISTRY.get(n.op).is_causal(n.args) for n in plain.nodes] == [None, None, False, None]
    assert REGISTRY.get("TransformerDecoder").is_causal({}) is True  # a decoder's default


# ----------------------------------------------------------------------------- padding

PADDED = {
    "encoder": """netc: 1
name: padded
input: {tokens: {shape: [T], dtype: int64}}
model: >-
  Embedding(28, 16, padding_idx=0) → PositionalEncoding(max_len=16)
  → TransformerEncoder(1, 2, ff=32, dropout=0.0, ids=tokens, pad_id=0) → Dense(3)
""",
    "attention": """netc: 1
name: padded
input: {tokens: {shape: [T], dtype: int64}}
model: Embedding(28, 16) → MultiHeadAttention(2, ids=tokens) → Dense(3)
""",
    "layer": """netc: 1
name: padded
input: {tokens: {shape: [T], dtype: int64}}
model: Embedding(28, 16) → TransformerEncoderLayer(2, ff=32, dropout=0.0, ids=tokens, pad_id=0) → Dense(3)
""",
}


@pytest.mark.parametrize("form", list(PADDED))
def test_padding_leaves_real_positions_unchanged(form):
    """A 7-token sequence alone, or padded with pad_id to 12 in a batch: its 7 real positions agree."""
    x = _tokens(2, 12)
    x[0, 7:] = 0
    text = PADDED[form]
    for mode, m in _modules(text).items():
        with torch.no_grad():
            assert torch.allclose(m(x)[0, :7], m(x[:1, :7])[0], atol=1e-5), (form, mode)
    # the control: without the mask, real positions attend to the padding and move
    unmasked = netc.build(text.replace(", ids=tokens, pad_id=0", "").replace(", ids=tokens", ""), train=False)
    with torch.no_grad():
        assert not torch.allclose(unmasked(x)[0, :7], unmasked(x[:1, :7])[0], atol=1e-4)


# ----------------------------------------------------------------------------- the decoder

DECODER_OP = """netc: 1
name: decoder_op
input: {src: {shape: [S], dtype: int64}, tgt: {shape: [T], dtype: int64}}
model:
  memory: src → Embedding(30, 16) → PositionalEncoding(max_len=16)
  x: tgt → Embedding(30, 16) → PositionalEncoding(max_len=16)
  out: x → TransformerDecoderLayer(2, memory, ff=32, dropout=0.0, memory_ids=src) → Dense(30)
"""

# torch's post-norm decoder layer: x = LN(x + SA(x)); x = LN(x + CA(x, memory)); x = LN(x + FF(x))
DECODER_PRIMITIVES = """netc: 1
name: decoder_primitives
input: {src: {shape: [S], dtype: int64}, tgt: {shape: [T], dtype: int64}}
model:
  memory: src → Embedding(30, 16) → PositionalEncoding(max_len=16)
  x: tgt → Embedding(30, 16) → PositionalEncoding(max_len=16)
  sa: x → MultiHeadAttention(2, causal=true)
  h1: Add(x, sa) → LayerNorm
  ca: h1 → MultiHeadAttention(2, kv=memory, ids=src)
  h2: Add(h1, ca) → LayerNorm
  ff: h2 → Dense(32) → ReLU → Dense(16)
  out: Add(h2, ff) → LayerNorm → Dense(30)
"""


# nn.TransformerDecoderLayer's parts → the primitive layers that compute the same, in the order torch applies them
DECODER_PARTS = {"self_attn": "sa_multiheadattention", "norm1": "h1_layernorm", "multihead_attn": "ca_multiheadattention",
                 "norm2": "h2_layernorm", "linear1": "ff_dense", "linear2": "ff_dense_1", "norm3": "out_layernorm"}


def _copy_decoder_weights(op_module, prim_module) -> None:
    """The op's weights into the primitives (embeddings and output layer keep their names)."""
    state = {}
    for key, value in op_module.state_dict().items():
        if key.startswith("out_transformerdecoderlayer."):
            part, rest = key.split(".", 2)[1:]
            key = f"{DECODER_PARTS[part]}.{rest}"
        state[key] = value
    prim_module.load_state_dict(state, strict=True)


def test_decoder_equals_its_primitives():
    op = check_text(DECODER_OP).main
    prim = check_text(DECODER_PRIMITIVES).main
    assert op.params == prim.params and op.output_type == prim.output_type
    torch.manual_seed(0)
    a = netc.build(DECODER_OP, train=False)
    b = netc.build(DECODER_PRIMITIVES, train=False)
    _copy_decoder_weights(a, b)
    src, tgt = _tokens(3, 9, seed=1), _tokens(3, 6, seed=2)
    src[1, 5:] = 0  # padded source: both leave it out of the cross-attention
    with torch.no_grad():
        assert torch.allclose(a(src, tgt), b(src, tgt), atol=1e-5)
        assert torch.allclose(optimize_module(a, 2)(src, tgt), optimize_module(b, 2)(src, tgt), atol=1e-5)


SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"
SMALL = {"src_vocab": 30, "tgt_vocab": 29, "src_len": 9, "tgt_len": 7, "d_model": 16, "heads": 2, "ff": 32}

# torch's layer parts → the primitives of specs/transformer_seq2seq_primitives.yaml that compute the same
STACKS = {
    "memory_transformerencoder": ("memory_encoderlayer", {
        "self_attn": "attention_multiheadattention", "norm1": "mixed_layernorm",
        "linear1": "feedforward_feedforward_dense", "linear2": "feedforward_feedforward_dense_1",
        "norm2": "out_layernorm"}),
    "out_transformerdecoder": ("out_decoderlayer", {
        "self_attn": "attention_multiheadattention", "norm1": "mixed_layernorm",
        "multihead_attn": "cross_multiheadattention", "norm2": "read_layernorm",
        "linear1": "feedforward_feedforward_dense", "linear2": "feedforward_feedforward_dense_1",
        "norm3": "out_layernorm"}),
}


def _primitive_key(key: str) -> str:
    """``out_transformerdecoder.layers.1.norm3.weight`` → ``out_decoderlayer_1_out_layernorm.weight``."""
    stack, rest = key.split(".", 1)
    if stack not in STACKS:
        return key  # embeddings and the output layer have the same names
    block, parts = STACKS[stack]
    _, layer, part, rest = rest.split(".", 3)
    return f"{block}{'_' + layer if layer != '0' else ''}_{parts[part]}.{rest}"


def test_seq2seq_ops_equal_their_primitives():
    """specs/transformer_seq2seq.yaml (the ops) and its _primitives twin (blocks, memory passed by name):
    same parameters and MACs, same outputs with the same weights before and after -O2, source padded."""
    ops = check_file(SPECS_DIR / "transformer_seq2seq.yaml", params={**SMALL, "layers": 2}).main
    prim = check_file(SPECS_DIR / "transformer_seq2seq_primitives.yaml", params=SMALL).main
    assert ops.params == prim.params and ops.macs == prim.macs and ops.output_type == prim.output_type
    assert {n.op for n in prim.nodes}.isdisjoint({"TransformerEncoder", "TransformerDecoder"})
    torch.manual_seed(0)
    a, b = netc.build(ops, train=False), netc.build(prim, train=False)
    b.load_state_dict({_primitive_key(k): v for k, v in a.state_dict().items()}, strict=True)
    src, tgt = _tokens(3, 9, seed=1), _tokens(3, 7, seed=2)
    src[1, 5:] = 0  # padded source: both leave it out of the encoder and of the cross-attention
    with torch.no_grad():
        assert torch.allclose(a(src, tgt), b(src, tgt), atol=1e-5)
        assert torch.allclose(optimize_module(a, 2)(src, tgt), optimize_module(b, 2)(src, tgt), atol=1e-5)


def test_decoder_is_causal_and_ignores_source_padding():
    m = _modules(DECODER_OP)
    src, tgt = _tokens(2, 9, seed=3), _tokens(2, 6, seed=4)
    src[0, 6:] = 0
    later = tgt.clone()
    later[:, 4] = later[:, 4] % 29 + 1
    for mode, module in m.items():
        with torch.no_grad():
            y = module(src, tgt)
            assert torch.allclose(y[:, :4], module(src, later)[:, :4], atol=1e-5), mode
            assert torch.allclose(y[:1], module(src[:1, :6], tgt[:1]), atol=1e-5), mode


def test_decoder_summary_counts_the_kv_cache():
    from netc.compiler.summary import summarize

    g = check_text(DECODER_OP.replace("[S]", "[9]").replace("[T]", "[6]")).main
    report = summarize(g, batch=4)
    # self-attention keys/values of 6 target positions, cross-attention's of 9 memory positions, d = 16
    assert report["memory"]["kv_cache_float32_bytes"] == 4 * 4 * (2 * 16 * 6 + 2 * 16 * 9)


# ----------------------------------------------------------------------------- training on random tokens

def _next_token_accuracy(text: str, steps: int = 150) -> float:
    """Train a next-token model on random tokens (a plain torch loop over netc's module); test accuracy."""
    gen = torch.Generator().manual_seed(0)
    train = torch.randint(0, VOCAB, (512, 13), generator=gen)
    test = torch.randint(0, VOCAB, (256, 13), generator=gen)
    torch.manual_seed(0)
    model = netc.build(text, train=True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        batch = train[torch.randint(0, 512, (64,), generator=gen)]
        logits = model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return (model(test[:, :-1]).argmax(-1) == test[:, 1:]).float().mean().item()


@pytest.mark.parametrize("form", ["op", "primitives"])
def test_causal_model_on_random_tokens_stays_at_chance(form):
    """No honest model beats 1/28 ≈ 0.036 on random tokens (test accuracy here: 0.033–0.040)."""
    assert _next_token_accuracy(SPECS[form](causal=True, length="12")) <= 0.06


def test_non_causal_model_on_random_tokens_reads_the_answer():
    """The control, issue 15's silent failure: without causal=true the same model reaches ≈ 0.91."""
    assert _next_token_accuracy(gpt_primitives(causal=False, length="12")) >= 0.5
