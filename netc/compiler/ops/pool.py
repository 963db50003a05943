"""Pooling: MaxPool/AvgPool (1-D/2-D by rank), GlobalAvgPool, GlobalMaxPool, SeqPool."""

from __future__ import annotations

from netc.compiler.opdef import (
    A,
    Arg,
    L,
    Shape,
    concrete,
    fmt_shape,
    op,
    pad_args,
    padding_ids,
)
from netc.compiler.ops.conv import conv_out
from netc.diagnostics import ShapeError


def _t(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


def _pool_infer(name: str, ranks: tuple[int, ...]):
    def infer(a: A, ins: list[Shape]) -> Shape:
        (s,) = ins
        if len(s) not in ranks:
            want = " or ".join({3: "(N, C, L)", 4: "(N, C, H, W)"}[r] for r in ranks)
            raise ShapeError(f"{name}({a.kernel}) expects {want}, got {fmt_shape(s)}",
                             hint="pooling needs channels-first feature maps; use SeqPool for (N, T, D) sequences"
                             if len(s) == 3 and 4 in ranks and 3 not in ranks else None)
        n = len(s) - 2
        k = _t(a.kernel, n)
        st = _t(a.stride if a.stride is not None else a.kernel, n)
        p = _t(a.padding, n)
        out = []
        for i in range(n):
            if p[i] * 2 > k[i]:
                raise ShapeError(f"{name} padding ({p[i]}) must be at most half the kernel ({k[i]})")
            o = conv_out(s[2 + i], k[i], st[i], p[i], 1)
            if a.ceil_mode and isinstance(o, int):
                o = _ceil_out(s[2 + i], k[i], st[i], p[i])
            if isinstance(o, int) and o < 1:
                raise ShapeError(
                    f"{name}({a.kernel}) shrinks the spatial size below 1: input {fmt_shape(s)}",
                    hint="remove this pooling layer or one before it, or use padding=same on the convolutions")
            out.append(o)
        return (s[0], s[1], *out)
    return infer


def _ceil_out(size: int, k: int, s: int, p: int) -> int:
    """torch's ceil_mode output length: windows may start in the padding but not past it."""
    out = -(-(size + 2 * p - k) // s) + 1
    if (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_lower(kind: str, fixed_n: int | None):
    def lower(a: A, ins: list[Shape], out: Shape):
        n = fixed_n or len(ins[0]) - 2
        kw = {}
        if a.stride is not None and a.stride != a.kernel:
            kw["stride"] = a.stride if isinstance(a.stride, int) else tuple(a.stride)
        if a.padding != 0:
            kw["padding"] = a.padding if isinstance(a.padding, int) else tuple(a.padding)
        if a.ceil_mode:
            kw["ceil_mode"] = True
        k = a.kernel if isinstance(a.kernel, int) else tuple(a.kernel)
        return L(f"nn.{kind}Pool{n}d", k, **kw)
    return lower


def _pool_macs(a: A, ins: list[Shape], out: Shape) -> int:
    n = len(ins[0]) - 2
    kk = 1
    for k in _t(a.kernel, n):
        kk *= k
    total = concrete(out[1])
    for d in out[2:]:
        total *= concrete(d)
    return total * kk


def _args(kind: str) -> list[Arg]:
    return [Arg("kernel", kind, doc="window size", min=1),
            Arg("stride", kind, None, doc="step between windows (default: the kernel size)", min=1,
                nullable=True),
            Arg("padding", kind, 0, doc="implicit padding on both sides", min=0),
            Arg("ceil_mode", "bool", False, doc="round the output size up instead of down (as torchvision's GoogLeNet)")]


for _kind in ("Max", "Avg"):
    what = "maximum" if _kind == "Max" else "average"
    op(f"{_kind}Pool", f"{what.capitalize()} pooling; 1-D or 2-D chosen by the input's rank.", _args("int2"),
       infer=_pool_infer(f"{_kind}Pool", (3, 4)), lower=_pool_lower(_kind, None), macs=_pool_macs,
       category="pool", window_pool=_kind.lower(), fresh_output=True, keeps_layout=True,
       example=f"Conv2D(32, 3) → ReLU → {_kind}Pool(2)")
    op(f"{_kind}Pool1D", f"1-D {what} pooling over (N, C, L).", _args("int"),
       infer=_pool_infer(f"{_kind}Pool1D", (3,)), lower=_pool_lower(_kind, 1), macs=_pool_macs,
       category="pool", window_pool=_kind.lower(), fresh_output=True)
    op(f"{_kind}Pool2D", f"2-D {what} pooling over (N, C, H, W).", _args("int2"),
       infer=_pool_infer(f"{_kind}Pool2D", (4,)), lower=_pool_lower(_kind, 2), macs=_pool_macs,
       category="pool", window_pool=_kind.lower(), fresh_output=True, keeps_layout=True)


def _global_infer(name: str):
    def infer(a: A, ins: list[Shape]) -> Shape:
        (s,) = ins
        if len(s) < 3:
            raise ShapeError(f"{name} expects channels-first maps (N, C, ...), got {fmt_shape(s)}",
                             hint="it is already pooled: remove it")
        return (s[0], s[1])
    return infer


def _global_dims(ins: list[Shape]) -> str:
    n = len(ins[0])
    return str(n - 1) if n == 3 else "(" + ", ".join(str(i) for i in range(2, n)) + ")"


op("GlobalAvgPool", "Average over every spatial position: (N, C, ...) → (N, C).", [],
   infer=_global_infer("GlobalAvgPool"),
   lower=lambda a, ins, out: L(None, forward="{x}.mean(dim=" + _global_dims(ins) + ")"),
   category="pool", example="Conv2D(64, 3) → ReLU → GlobalAvgPool → Dense(10)")
op("GlobalMaxPool", "Maximum over every spatial position: (N, C, ...) → (N, C).", [],
   infer=_global_infer("GlobalMaxPool"),
   lower=lambda a, ins, out: L(None, forward="{x}.amax(dim=" + _global_dims(ins) + ")"),
   category="pool")


def _seqpool_infer(a: A, ins: list[Shape]) -> Shape:
    s = ins[0]
    if len(s) != 3:
        raise ShapeError(f"SeqPool expects a sequence (N, T, D), got {fmt_shape(s)}")
    if len(ins) > 1:
        padding_ids("SeqPool", ins[1], s)
    return (s[0], s[2])


def _seqpool_lower(a: A, ins: list[Shape], out: Shape):
    if len(ins) > 1:  # pool the real steps only
        return L(None, forward=f"seq_pool({{x}}, {{x1}}, {a.pad_id}, {a.mode!r})", helpers=("seq_pool",))
    return L(None, forward={"mean": "{x}.mean(dim=1)", "max": "{x}.amax(dim=1)", "first": "{x}[:, 0]",
                            "last": "{x}[:, -1]"}[a.mode])


op("SeqPool", "Pool a sequence over time: (N, T, D) → (N, D) by mean, max, first or last step.",
   [Arg("mode", "str", "mean", doc="how to pool", choices=("mean", "max", "first", "last")),
    *pad_args(effect="are left out (mean and max over the real steps; first and last real step)")],
   infer=_seqpool_infer, lower=_seqpool_lower, pad_id_arg="pad_id",
   category="sequence", example="TransformerEncoder(2, 4) → SeqPool(mean) → Dense(10)")
