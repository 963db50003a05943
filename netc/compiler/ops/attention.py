"""Attention: MultiHeadAttention, Transformer encoder and decoder layers, PositionalEncoding."""

from __future__ import annotations

from netc.compiler.opdef import (
    INIT,
    A,
    Arg,
    L,
    Shape,
    concrete,
    fmt_shape,
    op,
    pad_args,
)
from netc.diagnostics import ShapeError


def _seq(name: str, s: Shape) -> int:
    if len(s) != 3 or not isinstance(s[2], int):
        raise ShapeError(f"{name} expects a sequence (N, T, D), got {fmt_shape(s)}",
                         hint="embed tokens first (Embedding) or project features with Dense(D)")
    return s[2]


def _heads_ok(name: str, d: int, heads: int) -> None:
    if d % heads:
        raise ShapeError(f"{name}: model dimension {d} is not divisible by heads={heads}",
                         hint=f"use a head count that divides {d}, or project to a multiple of {heads} with Dense")


def _ids_at(ins: list[Shape]) -> int | None:
    """Index of the padding-ids input (N, S) among ``ins``: the only 2-D one (sequences are (N, T, D))."""
    at = [k for k, s in enumerate(ins) if len(s) == 2]
    return at[0] if at else None


def _ids(name: str, ins: list[Shape], keys: Shape) -> int | None:
    """Index of the padding-ids input, checked against the keys it masks."""
    at = _ids_at(ins)
    if at is None:
        return None
    ids = ins[at]
    if isinstance(ids[1], int) and isinstance(keys[1], int) and ids[1] != keys[1]:
        raise ShapeError(f"{name}: padding ids {fmt_shape(ids)} do not match the {keys[1]} attended positions",
                         hint="name the token ids of the attended sequence (keys/values), e.g. ids=in")
    return at


def _masks(a: A, ins: list[Shape], causal_kw: str, pad_kw: str, keys: str) -> tuple[str, tuple[str, ...]]:
    """Extra forward keywords for the causal and the key-padding masks, and the helpers they use."""
    text, helpers = "", ()
    if a.causal:
        text += f", {causal_kw}=causal_mask({{x}}, {keys})"
        helpers = ("causal_mask",)
    ids = _ids_at(ins)
    if ids is not None:
        text += f", {pad_kw}={{x{ids}}}.eq({a.pad_id})"
    return text, helpers


def _mha_infer(a: A, ins: list[Shape]) -> Shape:
    d = _seq("MultiHeadAttention", ins[0])
    _heads_ok("MultiHeadAttention", d, a.heads)
    seqs = [s for s in ins[1:] if len(s) != 2]
    if seqs:
        kd = _seq("MultiHeadAttention key/value", seqs[0])
        if kd != d:
            raise ShapeError(f"MultiHeadAttention: query dim {d} and key/value dim {kd} differ",
                             hint=f"project the key/value sequence with Dense({d})")
    _ids("MultiHeadAttention", ins, (seqs or ins)[0])
    return ins[0]


def _mha_lower(a: A, ins: list[Shape], out: Shape):
    kw = {"batch_first": True}
    if a.dropout:
        kw["dropout"] = a.dropout
    kv = "{x1}" if len(ins) > 1 and len(ins[1]) == 3 else "{x}"
    masks, helpers = _masks(a, ins, "attn_mask", "key_padding_mask", kv)
    if a.causal and _ids_at(ins) is None:  # the hint lets torch use its causal kernel and skip the mask
        masks += ", is_causal=True"
    return L("nn.MultiheadAttention", ins[0][2], a.heads, helpers=helpers,
             forward="{m}({x}, " + kv + ", " + kv + ", need_weights=False" + masks + ")[0]", **kw)


def _mha_macs(a: A, ins: list[Shape], out: Shape) -> int:
    d, t = ins[0][2], concrete(ins[0][1])
    s = concrete(ins[-1][1])  # the keys' length: key/value sequence, padding ids or the queries themselves
    return t * d * d * 2 + s * d * d * 2 + 2 * t * s * d


def _causal(default: bool = False) -> Arg:
    return Arg("causal", "bool", default, doc="each position attends only to itself and earlier positions "
                                             "(language models, decoders)")


op("MultiHeadAttention", "Multi-head scaled dot-product attention; self-attention, or cross-attention with kv=name.",
   [Arg("heads", "int", doc="attention heads (must divide the model dimension)", min=1),
    Arg("kv", "ref", None, doc="name of the key/value sequence for cross-attention", nullable=True),
    Arg("dropout", "float", 0.0, doc="dropout on attention weights", min=0.0, max=1.0),
    _causal(), *pad_args(of="the attended (key/value) sequence"), INIT],
   infer=_mha_infer, lower=_mha_lower, params=lambda a, ins: 4 * ins[0][2] ** 2 + 4 * ins[0][2],
   macs=_mha_macs, category="attention", dropout_arg="dropout", causal_arg="causal", pad_id_arg="pad_id",
   init_arg="init",
   scratch=lambda a, ins: scores(a.heads, ins[0][1], ins[-1][1]),
   kv_cache=lambda a, ins: kv_elements(ins[0][2], [ins[-1][1]]) if a.causal or len(ins[-1]) == 3 and len(ins) > 1
   else 0,
   example="a: LayerNorm → MultiHeadAttention(4, causal=true)")


def scores(heads: int, t: object, s: object, layers: int = 1) -> int:
    """Elements per sample of the attention score matrices: layers × heads × T × S (symbolic lengths count 1)."""
    return layers * heads * concrete(t) * concrete(s)


def _layer_params(d: int, ff: int) -> int:
    return (4 * d * d + 4 * d) + (d * ff + ff) + (ff * d + d) + 4 * d


def _enc_args(with_layers: bool) -> list[Arg]:
    args = [Arg("layers", "int", doc="number of encoder layers", min=1)] if with_layers else []
    return args + [
        Arg("heads", "int", doc="attention heads", min=1),
        Arg("ff", "int", 2048, doc="feed-forward hidden size", min=1),
        Arg("dropout", "float", 0.1, doc="dropout inside the layer", min=0.0, max=1.0),
        Arg("activation", "str", "relu", doc="feed-forward activation", choices=("relu", "gelu")),
        Arg("norm_first", "bool", False, doc="pre-norm (LayerNorm before attention and feed-forward)"),
        _causal(), *pad_args(), INIT,
    ]


def _enc_infer(name: str):
    def infer(a: A, ins: list[Shape]) -> Shape:
        d = _seq(name, ins[0])
        _heads_ok(name, d, a.heads)
        _ids(name, ins, ins[0])
        return ins[0]
    return infer


def _layer_lowering(a: A, d: int, module: str = "nn.TransformerEncoderLayer", forward: str = "{m}({x})",
                    helpers: tuple[str, ...] = ()):
    kw = {"dim_feedforward": a.ff, "dropout": a.dropout, "batch_first": True}
    if a.activation != "relu":
        kw["activation"] = a.activation
    if a.norm_first:
        kw["norm_first"] = True
    return L(module, d, a.heads, forward=forward, helpers=helpers, **kw)


def _enc_forward(a: A, ins: list[Shape], mask_kw: str) -> tuple[str, tuple[str, ...]]:
    """``{m}(x, <mask_kw>=causal_mask(x, x), src_key_padding_mask=ids.eq(0), is_causal=True)``."""
    masks, helpers = _masks(a, ins, mask_kw, "src_key_padding_mask", "{x}")
    return "{m}({x}" + masks + (", is_causal=True" if a.causal else "") + ")", helpers


def _enc_layer_lower(a: A, ins: list[Shape], out: Shape):
    forward, helpers = _enc_forward(a, ins, "src_mask")
    return _layer_lowering(a, ins[0][2], forward=forward, helpers=helpers)


def _enc_lower(a: A, ins: list[Shape], out: Shape):
    forward, helpers = _enc_forward(a, ins, "mask")
    return L("nn.TransformerEncoder", _layer_lowering(a, ins[0][2]), a.layers, enable_nested_tensor=False,
             forward=forward, helpers=helpers)


def _enc_macs(a: A, ins: list[Shape], out: Shape) -> int:
    d, t = ins[0][2], concrete(ins[0][1])
    return t * (4 * d * d + 2 * d * a.ff) + 2 * t * t * d


op("TransformerEncoderLayer", "One Transformer encoder layer (self-attention + feed-forward, residuals, LayerNorm).",
   _enc_args(False), infer=_enc_infer("TransformerEncoderLayer"),
   lower=_enc_layer_lower,
   params=lambda a, ins: _layer_params(ins[0][2], a.ff), macs=_enc_macs, category="attention",
   dropout_arg="dropout", causal_arg="causal", pad_id_arg="pad_id", self_attention=True,
   init_arg="init",
   scratch=lambda a, ins: scores(a.heads, ins[0][1], ins[0][1]),
   kv_cache=lambda a, ins: kv_elements(ins[0][2], [ins[0][1]]) if a.causal else 0,
   example="PositionalEncoding → TransformerEncoderLayer(4, ff=128)")
op("TransformerEncoder", "A stack of `layers` Transformer encoder layers over (N, T, D).",
   _enc_args(True), infer=_enc_infer("TransformerEncoder"),
   lower=_enc_lower,
   params=lambda a, ins: a.layers * _layer_params(ins[0][2], a.ff),
   macs=lambda a, ins, out: a.layers * _enc_macs(a, ins, out), category="attention", dropout_arg="dropout",
   causal_arg="causal", pad_id_arg="pad_id", init_arg="init", self_attention=True,
   scratch=lambda a, ins: scores(a.heads, ins[0][1], ins[0][1], a.layers),
   kv_cache=lambda a, ins: kv_elements(ins[0][2], [ins[0][1]], a.layers) if a.causal else 0,
   example="Dense(64) → PositionalEncoding → TransformerEncoder(2, 4, ff=128) → SeqPool(mean) → Dense(10)")


def kv_elements(d: int, lengths: list[object], layers: int = 1) -> int:
    """Elements per sample of a key/value cache: keys and values (2 × D) of every cached position, per layer."""
    return layers * sum(2 * d * concrete(n) for n in lengths)


def _dec_args(with_layers: bool) -> list[Arg]:
    args = [Arg("layers", "int", doc="number of decoder layers", min=1)] if with_layers else []
    return args + [
        Arg("heads", "int", doc="attention heads", min=1),
        Arg("memory", "ref", doc="name of the encoded source sequence (N, S, D) the cross-attention reads"),
        Arg("ff", "int", 2048, doc="feed-forward hidden size", min=1),
        Arg("dropout", "float", 0.1, doc="dropout inside the layer", min=0.0, max=1.0),
        Arg("activation", "str", "relu", doc="feed-forward activation", choices=("relu", "gelu")),
        Arg("norm_first", "bool", False, doc="pre-norm (LayerNorm before each attention and the feed-forward)"),
        _causal(True), *pad_args("memory_ids", "the memory (source) sequence"), INIT,
    ]


def _dec_infer(name: str):
    def infer(a: A, ins: list[Shape]) -> Shape:
        d = _seq(name, ins[0])
        _heads_ok(name, d, a.heads)
        md = _seq(f"{name} memory", ins[1])
        if md != d:
            raise ShapeError(f"{name}: target dim {d} and memory dim {md} differ",
                             hint=f"project the memory with Dense({d})")
        _ids(name, ins, ins[1])
        return ins[0]
    return infer


def _dec_forward(a: A, ins: list[Shape]) -> tuple[str, tuple[str, ...]]:
    """``{m}(x, memory, tgt_mask=causal_mask(x, x), memory_key_padding_mask=ids.eq(0), tgt_is_causal=True)``."""
    masks, helpers = _masks(a, ins, "tgt_mask", "memory_key_padding_mask", "{x}")
    return "{m}({x}, {x1}" + masks + (", tgt_is_causal=True" if a.causal else "") + ")", helpers


def _dec_layer_params(d: int, ff: int) -> int:
    return 2 * (4 * d * d + 4 * d) + (d * ff + ff) + (ff * d + d) + 6 * d  # self- and cross-attention, 3 norms


def _dec_macs(a: A, ins: list[Shape], out: Shape) -> int:
    d, t, s = ins[0][2], concrete(ins[0][1]), concrete(ins[1][1])
    self_attn = t * 4 * d * d + 2 * t * t * d
    cross = t * 2 * d * d + s * 2 * d * d + 2 * t * s * d
    return self_attn + cross + 2 * t * d * a.ff


def _dec_lower(a: A, ins: list[Shape], out: Shape):
    forward, helpers = _dec_forward(a, ins)
    return _layer_lowering(a, ins[0][2], "nn.TransformerDecoderLayer", forward, helpers)


def _decs_lower(a: A, ins: list[Shape], out: Shape):
    forward, helpers = _dec_forward(a, ins)
    return L("nn.TransformerDecoder", _layer_lowering(a, ins[0][2], "nn.TransformerDecoderLayer"), a.layers,
             forward=forward, helpers=helpers)


op("TransformerDecoderLayer",
   "One Transformer decoder layer: masked (causal) self-attention, cross-attention to a named memory, "
   "feed-forward; residuals and LayerNorm.",
   _dec_args(False), infer=_dec_infer("TransformerDecoderLayer"), lower=_dec_lower,
   params=lambda a, ins: _dec_layer_params(ins[0][2], a.ff), macs=_dec_macs, category="attention",
   dropout_arg="dropout", causal_arg="causal", pad_id_arg="pad_id", self_attention=True,
   init_arg="init",
   scratch=lambda a, ins: scores(a.heads, ins[0][1], ins[0][1]) + scores(a.heads, ins[0][1], ins[1][1]),
   kv_cache=lambda a, ins: kv_elements(ins[0][2], [ins[0][1], ins[1][1]]),
   example="tgt → Embedding(1000, 64) → PositionalEncoding → TransformerDecoderLayer(4, memory, ff=128)")
op("TransformerDecoder", "A stack of `layers` Transformer decoder layers over (N, T, D), reading a memory (N, S, D).",
   _dec_args(True), infer=_dec_infer("TransformerDecoder"), lower=_decs_lower,
   params=lambda a, ins: a.layers * _dec_layer_params(ins[0][2], a.ff),
   macs=lambda a, ins, out: a.layers * _dec_macs(a, ins, out), category="attention", dropout_arg="dropout",
   causal_arg="causal", pad_id_arg="pad_id", init_arg="init", self_attention=True,
   scratch=lambda a, ins: scores(a.heads, ins[0][1], ins[0][1], a.layers) + scores(a.heads, ins[0][1], ins[1][1],
                                                                                     a.layers),
   kv_cache=lambda a, ins: kv_elements(ins[0][2], [ins[0][1], ins[1][1]], a.layers),
   example="tgt → Embedding(1000, 64) → TransformerDecoder(2, 4, memory, ff=128) → Dense(1000)")


def _pe_infer(a: A, ins: list[Shape]) -> Shape:
    _seq("PositionalEncoding", ins[0])
    t = ins[0][1]
    if isinstance(t, int) and t > a.max_len:
        raise ShapeError(f"PositionalEncoding(max_len={a.max_len}) is shorter than the sequence ({t})",
                         hint=f"set max_len={t} or more")
    return ins[0]


def _pe_lower(a: A, ins: list[Shape], out: Shape):
    kw = {}
    if a.learned:
        kw["learned"] = True
    if a.dropout:
        kw["dropout"] = a.dropout
    return L("PositionalEncoding", ins[0][2], max_len=a.max_len, **kw)


op("PositionalEncoding", "Adds position information to (N, T, D): fixed sinusoids, or learned vectors.",
   [Arg("max_len", "int", 512, doc="longest sequence supported", min=1),
    Arg("learned", "bool", False, doc="learn the position vectors instead of sinusoids"),
    Arg("dropout", "float", 0.0, doc="dropout after adding positions", min=0.0, max=1.0)],
   infer=_pe_infer, lower=_pe_lower,
   params=lambda a, ins: a.max_len * ins[0][2] if a.learned else 0, category="attention", dropout_arg="dropout",
   seq_len_arg="max_len",
   example="Embedding(1000, 64) → PositionalEncoding → TransformerEncoder(2, 4)")
