"""Ops the optimisation passes introduce: Slice, ChannelsLast, FusedMultiHeadAttention.

They are ordinary ops (a spec may use them too) whose lowerings keep the weights of
the ops they replace, so an optimised module loads the unoptimised one's state_dict
(see ``netc.compiler.passes.weights``). Every lowering is plain torch, so the source
``netc compile -O2`` writes stays standalone.
"""

from __future__ import annotations

from netc.compiler.ops.attention import _mha_infer, _mha_macs
from netc.compiler.registry import A, Arg, L, Shape, ShapeError, fmt_shape, op


def _axis(a: A, s: Shape) -> int:
    ax = a.axis if a.axis >= 0 else len(s) + a.axis
    if not 1 <= ax < len(s):
        raise ShapeError(f"Slice axis {a.axis} is out of range for {fmt_shape(s)}",
                         hint="axis counts from the batch axis 0; channels are axis 1, -1 is the last axis")
    return ax


def _slice_infer(a: A, ins: list[Shape]) -> Shape:
    (s,) = ins
    ax = _axis(a, s)
    size = s[ax]
    if not isinstance(size, int):
        raise ShapeError(f"Slice needs a known size on axis {a.axis}, got {fmt_shape(s)}")
    if not 0 <= a.start < a.stop <= size:
        raise ShapeError(f"Slice [{a.start}, {a.stop}) is not inside axis {a.axis} of size {size}",
                         hint=f"use 0 <= start < stop <= {size}")
    return (*s[:ax], a.stop - a.start, *s[ax + 1:])


op("Slice", "Elements start..stop-1 along `axis`, as a view (how merged projections are split again).",
   [Arg("axis", "int", doc="axis to slice (0 is the batch axis; -1 the last)"),
    Arg("start", "int", doc="first index kept", min=0),
    Arg("stop", "int", doc="one past the last index kept", min=1)],
   infer=_slice_infer,
   lower=lambda a, ins, out: L(None, forward="{x}.narrow(" + f"{_axis(a, ins[0])}, {a.start}, {a.stop - a.start})"),
   category="shape", example="Dense(96) → Slice(-1, 0, 32)")


def _cl_infer(a: A, ins: list[Shape]) -> Shape:
    (s,) = ins
    if len(s) != 4:
        raise ShapeError(f"ChannelsLast expects (N, C, H, W), got {fmt_shape(s)}")
    return s


op("ChannelsLast", "Store an image batch channels-last (NHWC) in memory; values and shape are unchanged.", [],
   infer=_cl_infer,
   lower=lambda a, ins, out: L(None, forward="{x}.contiguous(memory_format=torch.channels_last)"),
   category="layout", example="ChannelsLast → Conv2D(32, 3, padding=same)")


def _fused_mha_lower(a: A, ins: list[Shape], out: Shape):
    d, h = ins[0][2], a.heads
    kw = {"batch_first": True}
    if a.dropout:
        kw["dropout"] = a.dropout
    f = "nn.functional."
    drop = "dropout_p={m}.dropout if {m}.training else 0.0"
    if len(ins) == 1:  # self-attention: one packed projection gives q, k and v
        qkv = f"*{f}linear({{x}}, {{m}}.in_proj_weight, {{m}}.in_proj_bias)" \
              f".unflatten(-1, (3, {h}, {d // h})).permute(2, 0, 3, 1, 4)"
    else:  # cross-attention: q from x, k and v from kv with one packed projection
        qkv = (f"{f}linear({{x}}, {{m}}.in_proj_weight[:{d}], {{m}}.in_proj_bias[:{d}])"
               f".unflatten(-1, ({h}, {d // h})).transpose(1, 2), "
               f"*{f}linear({{x1}}, {{m}}.in_proj_weight[{d}:], {{m}}.in_proj_bias[{d}:])"
               f".unflatten(-1, (2, {h}, {d // h})).permute(2, 0, 3, 1, 4)")
    forward = f"{{m}}.out_proj({f}scaled_dot_product_attention({qkv}, {drop}).transpose(1, 2).flatten(2))"
    return L("nn.MultiheadAttention", d, h, forward=forward, **kw)


op("FusedMultiHeadAttention",
   "MultiHeadAttention computed with one packed q/k/v projection and torch's fused scaled_dot_product_attention; "
   "same weights (an nn.MultiheadAttention) and outputs.",
   [Arg("heads", "int", doc="attention heads (must divide the model dimension)", min=1),
    Arg("kv", "ref", None, doc="name of the key/value sequence for cross-attention", nullable=True),
    Arg("dropout", "float", 0.0, doc="dropout on attention weights (training only)", min=0.0, max=1.0)],
   infer=_mha_infer, lower=_fused_mha_lower, params=lambda a, ins: 4 * ins[0][2] ** 2 + 4 * ins[0][2],
   macs=_mha_macs, category="attention", stateful_in_eval=True,
   example="a: LayerNorm → FusedMultiHeadAttention(4)")


# Activation → in-place expression; `slope` is LeakyReLU's.
_INPLACE = {
    "relu": "{x}.relu_()",
    "leaky_relu": "nn.functional.leaky_relu_({x}, {slope})",
    "sigmoid": "{x}.sigmoid_()",
    "tanh": "{x}.tanh_()",
    "silu": "nn.functional.silu({x}, inplace=True)",
}


def _inplace_lower(a: A, ins: list[Shape], out: Shape):
    forward = _INPLACE[a.fn]
    if a.fn == "leaky_relu":
        forward = forward.replace("{slope}", repr(float(a.slope)))
    return L(None, forward=forward)


op("InplaceActivation",
   "An activation computed in place, overwriting its input: for a freshly computed tensor nothing else reads "
   "(what the fuse_activation pass makes of Conv → ReLU at inference; not for training).",
   [Arg("fn", "str", doc="the activation", choices=tuple(_INPLACE)),
    Arg("slope", "float", 0.01, doc="negative slope of leaky_relu", min=0.0)],
   infer=lambda a, ins: ins[0], lower=_inplace_lower, category="activation",
   example="Conv2D(32, 3) → InplaceActivation(relu)")
