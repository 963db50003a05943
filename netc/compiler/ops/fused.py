"""Ops the optimisation passes introduce: Slice, ChannelsLast, ScaledDotProductAttention, InplaceActivation,
WindowMax.

They are ordinary ops (a spec may use them too), all without weights of their own:
the weights of an optimised module stay in plain Conv/Linear layers, mapped from the
unoptimised module by ``netc.backend.weights``. Every lowering is plain,
scriptable torch, so the source ``netc compile -O2`` writes stays standalone.
"""

from __future__ import annotations

from netc.compiler.opdef import A, Arg, L, Shape, concrete, fmt_shape, op, pad_args
from netc.diagnostics import ShapeError


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
   category="layout", keeps_layout=True, example="ChannelsLast → Conv2D(32, 3, padding=same)")


def _sdpa_infer(a: A, ins: list[Shape]) -> Shape:
    ids = [x for x in ins[1:] if len(x) == 2]  # padding ids (N, S) of the keys
    ins = [x for x in ins if len(x) != 2 or x is ins[0]]
    if len(ins) == 1:  # packed (N, T, 3D)
        s = ins[0]
        if len(s) != 3 or not isinstance(s[2], int) or s[2] % 3:
            raise ShapeError(f"ScaledDotProductAttention expects packed q/k/v (N, T, 3·D), got {fmt_shape(s)}",
                             hint="project with Dense(3 * D) first, or pass queries and packed keys/values")
        d = s[2] // 3
    else:  # queries (N, T, D) and packed keys/values (N, S, 2D)
        s, kv = ins
        if len(s) != 3 or len(kv) != 3 or not isinstance(s[2], int) or kv[2] != 2 * s[2]:
            raise ShapeError(f"ScaledDotProductAttention expects queries (N, T, D) and keys/values (N, S, 2·D), "
                             f"got {fmt_shape(s)} and {fmt_shape(kv)}")
        d = s[2]
    if d % a.heads:
        raise ShapeError(f"ScaledDotProductAttention: model dimension {d} is not divisible by heads={a.heads}")
    keys = ins[-1][1]
    if ids and isinstance(ids[0][1], int) and isinstance(keys, int) and ids[0][1] != keys:
        raise ShapeError(f"ScaledDotProductAttention: padding ids {fmt_shape(ids[0])} do not match the {keys} keys",
                         hint="name the token ids of the key/value sequence")
    return (*s[:2], d)


def _sdpa_lower(a: A, ins: list[Shape], out: Shape):
    d, h = out[2], a.heads

    def heads(x: str, k: int) -> str:  # part k of a packed tensor as (N, heads, T, D/heads): views only
        return f"{x}[..., {k * d}:{(k + 1) * d}].unflatten(-1, ({h}, {d // h})).transpose(1, 2)"

    packed = len(ins) == 1 or len(ins[1]) == 2
    q, k, v = (heads("{x}", 0), heads("{x}", 1), heads("{x}", 2)) if packed else \
        (heads("{x0}", 0), heads("{x1}", 0), heads("{x1}", 1))
    ids = [k for k, x in enumerate(ins) if k and len(x) == 2]
    mask, helpers = "", ()
    if ids:  # the fused kernel takes one mask: padding and causality combined (True is attended)
        mask, helpers = f", attn_mask=attend_mask({{x{ids[0]}}}, {a.pad_id}, {{x}}, {a.causal})", ("attend_mask",)
    elif a.causal:
        mask = ", is_causal=True"
    return L(None, forward=f"nn.functional.scaled_dot_product_attention({q}, {k}, {v}{mask})"
                           ".transpose(1, 2).flatten(2)", helpers=helpers)


def _sdpa_macs(a: A, ins: list[Shape], out: Shape) -> int:
    t = concrete(out[1])
    s = concrete(ins[-1][1])
    return 2 * t * s * out[2]


op("ScaledDotProductAttention",
   "Multi-head attention of packed projections, by torch's fused kernel: q/k/v packed as (N, T, 3·D), or "
   "queries (N, T, D) plus keys/values packed as (N, S, 2·D); no attention dropout (what fuse_attention "
   "makes of MultiHeadAttention at inference).",
   [Arg("heads", "int", doc="attention heads (must divide the model dimension)", min=1),
    Arg("kv", "ref", None, doc="name of the packed key/value sequence for cross-attention", nullable=True),
    Arg("causal", "bool", False, doc="each position attends only to itself and earlier positions"),
    *pad_args(of="the keys")],
   infer=_sdpa_infer, lower=_sdpa_lower, macs=_sdpa_macs, category="attention", causal_arg="causal",
   pad_id_arg="pad_id",
   scratch=lambda a, ins: concrete(ins[0][1]) * concrete(ins[-1][1]) * a.heads,  # score matrices (math kernel)
   example="Dense(192) → ScaledDotProductAttention(4) → Dense(64)")


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
   infer=lambda a, ins: ins[0], lower=_inplace_lower, category="activation", keeps_layout=True,
   example="Conv2D(32, 3) → InplaceActivation(relu)")


def _window_axis(a: A, s: Shape) -> int:
    ax = a.axis if a.axis >= 0 else len(s) + a.axis
    if not 2 <= ax < len(s):
        raise ShapeError(f"WindowMax axis {a.axis} must be a spatial axis of {fmt_shape(s)} (2 or later)")
    if not isinstance(s[ax], int) or s[ax] < a.size:
        raise ShapeError(f"WindowMax({a.size}) needs a known size of at least {a.size} on axis {a.axis}, "
                         f"got {fmt_shape(s)}")
    return ax


def _window_max_infer(a: A, ins: list[Shape]) -> Shape:
    (s,) = ins
    ax = _window_axis(a, s)
    return (*s[:ax], s[ax] // a.size, *s[ax + 1:])


def _window_max_lower(a: A, ins: list[Shape], out: Shape):
    s = ins[0]
    ax = _window_axis(a, s)
    end = out[ax] * a.size  # a trailing partial window is dropped, as max pooling does
    tail = ", :" * (len(s) - 1 - ax)
    views = [f"{{x}}[..., {i}:{end}:{a.size}{tail}]" for i in range(a.size)]
    expr = views[0]
    for v in views[1:]:
        expr = f"torch.maximum({expr}, {v})"
    return L(None, forward=expr)


op("WindowMax",
   "Maximum over non-overlapping windows of `size` along one spatial axis (one axis of a max pooling "
   "whose stride equals its kernel), as element-wise maxima of strided views: several times faster on CPU "
   "than max_pool (which also computes indices).",
   [Arg("axis", "int", doc="the pooled axis (2 or later; negative counts from the end)"),
    Arg("size", "int", doc="window size (= stride)", min=2)],
   infer=_window_max_infer, lower=_window_max_lower, category="pool", fresh_output=True, keeps_layout=True,
   example="Conv2D(32, 3) → WindowMax(-2, 2) → WindowMax(-1, 2)")
