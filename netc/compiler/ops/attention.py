"""Attention: MultiHeadAttention, Transformer encoder layers, PositionalEncoding."""

from __future__ import annotations

from netc.compiler.opdef import A, Arg, L, Shape, concrete, fmt_shape, op
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


def _mha_infer(a: A, ins: list[Shape]) -> Shape:
    d = _seq("MultiHeadAttention", ins[0])
    _heads_ok("MultiHeadAttention", d, a.heads)
    if len(ins) > 1:
        kd = _seq("MultiHeadAttention key/value", ins[1])
        if kd != d:
            raise ShapeError(f"MultiHeadAttention: query dim {d} and key/value dim {kd} differ",
                             hint=f"project the key/value sequence with Dense({d})")
    return ins[0]


def _mha_lower(a: A, ins: list[Shape], out: Shape):
    kw = {"batch_first": True}
    if a.dropout:
        kw["dropout"] = a.dropout
    kv = "{x1}" if len(ins) > 1 else "{x}"
    return L("nn.MultiheadAttention", ins[0][2], a.heads,
             forward="{m}({x}, " + kv + ", " + kv + ", need_weights=False)[0]", **kw)


def _mha_macs(a: A, ins: list[Shape], out: Shape) -> int:
    d, t = ins[0][2], concrete(ins[0][1])
    s = concrete(ins[1][1]) if len(ins) > 1 else t
    return t * d * d * 2 + s * d * d * 2 + 2 * t * s * d


op("MultiHeadAttention", "Multi-head scaled dot-product attention; self-attention, or cross-attention with kv=name.",
   [Arg("heads", "int", doc="attention heads (must divide the model dimension)", min=1),
    Arg("kv", "ref", None, doc="name of the key/value sequence for cross-attention", nullable=True),
    Arg("dropout", "float", 0.0, doc="dropout on attention weights", min=0.0, max=1.0)],
   infer=_mha_infer, lower=_mha_lower, params=lambda a, ins: 4 * ins[0][2] ** 2 + 4 * ins[0][2],
   macs=_mha_macs, category="attention", dropout_arg="dropout",
   scratch=lambda a, ins: scores(a.heads, ins[0][1], ins[-1][1]),
   example="a: LayerNorm → MultiHeadAttention(4)")


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
    ]


def _enc_infer(name: str):
    def infer(a: A, ins: list[Shape]) -> Shape:
        d = _seq(name, ins[0])
        _heads_ok(name, d, a.heads)
        return ins[0]
    return infer


def _layer_lowering(a: A, d: int):
    kw = {"dim_feedforward": a.ff, "dropout": a.dropout, "batch_first": True}
    if a.activation != "relu":
        kw["activation"] = a.activation
    if a.norm_first:
        kw["norm_first"] = True
    return L("nn.TransformerEncoderLayer", d, a.heads, **kw)


def _enc_macs(a: A, ins: list[Shape], out: Shape) -> int:
    d, t = ins[0][2], concrete(ins[0][1])
    return t * (4 * d * d + 2 * d * a.ff) + 2 * t * t * d


op("TransformerEncoderLayer", "One Transformer encoder layer (self-attention + feed-forward, residuals, LayerNorm).",
   _enc_args(False), infer=_enc_infer("TransformerEncoderLayer"),
   lower=lambda a, ins, out: _layer_lowering(a, ins[0][2]),
   params=lambda a, ins: _layer_params(ins[0][2], a.ff), macs=_enc_macs, category="attention",
   dropout_arg="dropout", scratch=lambda a, ins: scores(a.heads, ins[0][1], ins[0][1]), example="PositionalEncoding → TransformerEncoderLayer(4, ff=128)")
op("TransformerEncoder", "A stack of `layers` Transformer encoder layers over (N, T, D).",
   _enc_args(True), infer=_enc_infer("TransformerEncoder"),
   lower=lambda a, ins, out: L("nn.TransformerEncoder", _layer_lowering(a, ins[0][2]), a.layers,
                               enable_nested_tensor=False),
   params=lambda a, ins: a.layers * _layer_params(ins[0][2], a.ff),
   macs=lambda a, ins, out: a.layers * _enc_macs(a, ins, out), category="attention", dropout_arg="dropout",
   scratch=lambda a, ins: scores(a.heads, ins[0][1], ins[0][1], a.layers),
   example="Dense(64) → PositionalEncoding → TransformerEncoder(2, 4, ff=128) → SeqPool(mean) → Dense(10)")


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
