"""BatchNorm (1-D or 2-D chosen by rank) and LayerNorm."""

from __future__ import annotations

from netc.compiler.opdef import A, Arg, L, Shape, fmt_shape, numel, op
from netc.diagnostics import ShapeError


def _bn_infer(a: A, ins: list[Shape]) -> Shape:
    (s,) = ins
    if len(s) not in (2, 3, 4):
        raise ShapeError(f"BatchNorm expects (N, C), (N, C, L) or (N, C, H, W), got {fmt_shape(s)}")
    if not isinstance(s[1], int):
        raise ShapeError(f"BatchNorm needs a known channel count, got {fmt_shape(s)}",
                         hint="for sequences (N, T, D) use LayerNorm")
    return s


def _bn_lower(a: A, ins: list[Shape], out: Shape):
    kw = {}
    if a.momentum != 0.1:
        kw["momentum"] = a.momentum
    if a.eps != 1e-5:
        kw["eps"] = a.eps
    return L("nn.BatchNorm2d" if len(ins[0]) == 4 else "nn.BatchNorm1d", ins[0][1], **kw)


op("BatchNorm", "Batch normalisation over the channel axis 1; BatchNorm1d or BatchNorm2d by rank.",
   [Arg("momentum", "float", 0.1, doc="running-statistics update rate", min=0.0, max=1.0),
    Arg("eps", "float", 1e-5, doc="added to the variance for stability", min=0.0)],
   infer=_bn_infer, lower=_bn_lower, params=lambda a, ins: 2 * ins[0][1],
   macs=lambda a, ins, out: 2 * (numel(out[1:]) or out[1]), category="norm", fresh_output=True,
   keeps_layout=True, input_width_axis=1, example="Conv2D(32, 3, padding=same) → BatchNorm → ReLU")


def _ln_infer(a: A, ins: list[Shape]) -> Shape:
    (s,) = ins
    if len(s) < 2 or not isinstance(s[-1], int):
        raise ShapeError(f"LayerNorm needs a known last axis, got {fmt_shape(s)}")
    return s


op("LayerNorm", "Layer normalisation over the last axis.",
   [Arg("eps", "float", 1e-5, doc="added to the variance for stability", min=0.0)],
   infer=_ln_infer,
   lower=lambda a, ins, out: L("nn.LayerNorm", ins[0][-1], **({} if a.eps == 1e-5 else {"eps": a.eps})),
   params=lambda a, ins: 2 * ins[0][-1], category="norm", fresh_output=True,
   example="Add(x, attn) → LayerNorm")
