"""Dense (Linear), Embedding and Dropout."""

from __future__ import annotations

from netc.compiler.opdef import INIT, A, Arg, L, Shape, concrete, fmt_shape, op
from netc.diagnostics import ShapeError


def _dense_infer(a: A, ins: list[Shape]) -> Shape:
    (s,) = ins
    if len(s) < 2:
        raise ShapeError(f"Dense({a.units}) expects (N, features), got {fmt_shape(s)}")
    if len(s) > 3:
        raise ShapeError(f"Dense({a.units}) expects (N, features), got {fmt_shape(s)}",
                         hint="insert Flatten before Dense")
    if not isinstance(s[-1], int):
        raise ShapeError(f"Dense({a.units}) needs a known feature size, got {fmt_shape(s)}")
    return (*s[:-1], a.units)


def _dense_params(a: A, ins: list[Shape]) -> int:
    f = ins[0][-1]
    return f * a.units + (a.units if a.bias else 0)


def _dense_macs(a: A, ins: list[Shape], out: Shape) -> int:
    s = ins[0]
    rows = 1
    for d in s[1:-1]:
        rows *= concrete(d)
    return rows * s[-1] * a.units


op("Dense", "Fully connected layer over the last dimension: y = x W^T + b.",
   [Arg("units", "int", doc="output features", min=1),
    Arg("bias", "bool", True, doc="learn an additive bias"), INIT],
   infer=_dense_infer,
   lower=lambda a, ins, out: L("nn.Linear", ins[0][-1], a.units, **({} if a.bias else {"bias": False})),
   params=_dense_params, macs=_dense_macs, aliases=("Linear",), category="core", input_width_axis=-1,
   fresh_output=True, channel_axis=-1, weight_out_axis=0, merge_width="units", init_arg="init",
   example="Flatten → Dense(128) → ReLU")


def _embedding_infer(a: A, ins: list[Shape]) -> Shape:
    (s,) = ins
    if len(s) != 2:
        raise ShapeError(f"Embedding expects token ids (N, T), got {fmt_shape(s)}",
                         hint="declare the input as a sequence of ids, e.g. tokens: {shape: [T], dtype: int64}")
    return (*s, a.dim)


op("Embedding", "Lookup table mapping integer ids (N, T) to vectors (N, T, dim).",
   [Arg("vocab", "int", doc="number of distinct ids", min=1),
    Arg("dim", "int", doc="vector size", min=1),
    Arg("padding_idx", "int", None, doc="id whose vector stays zero", nullable=True, min=0), INIT],
   infer=_embedding_infer,
   lower=lambda a, ins, out: L("nn.Embedding", a.vocab, a.dim,
                               **({} if a.padding_idx is None else {"padding_idx": a.padding_idx})),
   params=lambda a, ins: a.vocab * a.dim, category="core", input_dtype="int64", id_range_arg="vocab",
   pad_id_arg="padding_idx", init_arg="init",
   example="Embedding(1000, 64) → LSTM(64)")

op("Dropout", "Zeroes elements with probability `rate` during training; identity at inference.",
   [Arg("rate", "float", 0.5, doc="drop probability", min=0.0, max=1.0)],
   infer=lambda a, ins: ins[0],
   lower=lambda a, ins, out: L("nn.Dropout", a.rate),
   category="core", keeps_layout=True, example="Dense(128) → Dropout(0.2)")

op("Identity", "Passes its input through unchanged.", [],
   infer=lambda a, ins: ins[0], lower=lambda a, ins, out: L(None, forward="{x}"), category="core", keeps_layout=True)
