"""Convolutions: Conv1D, Conv2D, ConvTranspose2D (channels first, like torch)."""

from __future__ import annotations

from netc.compiler.opdef import INIT, A, Arg, L, Shape, concrete, fmt_shape, op
from netc.diagnostics import ShapeError


def _tuple(v, n: int) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(v)
    if len(v) != n:
        raise ShapeError(f"expected {n} values, got {list(v)}")
    return v


def _padding(a: A, n: int) -> tuple[int, ...] | str:
    p = a.padding
    if isinstance(p, str):
        if p == "valid":
            return (0,) * n
        if p == "same":
            if any(s != 1 for s in _tuple(a.stride, n)):
                raise ShapeError("padding=same needs stride 1",
                                 hint="use an explicit padding such as padding=1 with stride 2")
            return "same"
        raise ShapeError(f"padding must be an int, a pair, 'same' or 'valid', got {p!r}")
    return _tuple(p, n)


def conv_out(size: int | str, k: int, s: int, p: int, d: int) -> int | str:
    """Output length of a convolution or pooling window along one axis."""
    if not isinstance(size, int):
        return size
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _conv_infer(n: int, name: str):
    def infer(a: A, ins: list[Shape]) -> Shape:
        (s,) = ins
        layout = "(N, C, L)" if n == 1 else "(N, C, H, W)"
        if len(s) != n + 2:
            hint = None
            if n == 2 and len(s) == 2:
                hint = "declare the input as an image, e.g. input: [1, 28, 28], or add Reshape"
            elif n == 2 and len(s) == 3:
                hint = "add a channel axis, e.g. Reshape([1, H, W]), or use Conv1D"
            raise ShapeError(f"{name}({a.filters}, {a.kernel}) expects {layout}, got {fmt_shape(s)}", hint=hint)
        c = s[1]
        if not isinstance(c, int):
            raise ShapeError(f"{name} needs a known channel count, got {fmt_shape(s)}")
        if c % a.groups or a.filters % a.groups:
            raise ShapeError(f"{name}: channels ({c}) and filters ({a.filters}) must be divisible by groups={a.groups}")
        k, st, d = _tuple(a.kernel, n), _tuple(a.stride, n), _tuple(a.dilation, n)
        pad = _padding(a, n)
        spatial = []
        for i in range(n):
            size = s[2 + i]
            if pad == "same":
                spatial.append(size)
                continue
            if isinstance(size, int) and d[i] * (k[i] - 1) + 1 > size + 2 * pad[i]:
                raise ShapeError(
                    f"{name} kernel {k[i]} is larger than its input ({size}{f' + 2×{pad[i]} padding' if pad[i] else ''}) "
                    f"in {fmt_shape(s)}",
                    hint="use a smaller kernel, padding=same, or remove a pooling layer before it")
            spatial.append(conv_out(size, k[i], st[i], pad[i], d[i]))
        return (s[0], a.filters, *spatial)
    return infer


def _conv_params(n: int):
    def params(a: A, ins: list[Shape]) -> int:
        c = ins[0][1]
        kk = 1
        for k in _tuple(a.kernel, n):
            kk *= k
        return c // a.groups * a.filters * kk + (a.filters if a.bias else 0)
    return params


def _conv_macs(n: int):
    def macs(a: A, ins: list[Shape], out: Shape) -> int:
        c = ins[0][1]
        kk = 1
        for k in _tuple(a.kernel, n):
            kk *= k
        positions = 1
        for d in out[2:]:
            positions *= concrete(d)
        return positions * a.filters * c // a.groups * kk
    return macs


def _conv_lower(n: int):
    def lower(a: A, ins: list[Shape], out: Shape):
        kw = {}
        pad = a.padding
        if pad not in (0, "valid"):
            kw["padding"] = pad if isinstance(pad, str | int) else tuple(pad)
        for k, default in (("stride", 1), ("dilation", 1), ("groups", 1)):
            v = a[k]
            if v != default:
                kw[k] = v if isinstance(v, int) else tuple(v)
        if not a.bias:
            kw["bias"] = False
        kernel = a.kernel if isinstance(a.kernel, int) else tuple(a.kernel)
        return L(f"nn.Conv{n}d", ins[0][1], a.filters, kernel, **kw)
    return lower


def _conv_args(n: int) -> list[Arg]:
    kind = "int" if n == 1 else "int2"
    return [
        Arg("filters", "int", doc="output channels", min=1),
        Arg("kernel", kind, doc="kernel size" + ("" if n == 1 else " (int or [h, w])"), min=1),
        Arg("stride", kind, 1, doc="step between windows", min=1),
        Arg("padding", "int_or_str", 0, doc="zero padding: an int, a pair, 'same' or 'valid'",
            choices=("same", "valid"), min=0),
        Arg("dilation", kind, 1, doc="spacing between kernel elements", min=1),
        Arg("groups", "int", 1, doc="blocked connections between input and output channels", min=1),
        Arg("bias", "bool", True, doc="learn an additive bias"),
        INIT,
    ]


op("Conv1D", "1-D convolution over (N, C, L).", _conv_args(1), infer=_conv_infer(1, "Conv1D"),
   lower=_conv_lower(1), params=_conv_params(1), macs=_conv_macs(1), category="conv", input_width_axis=1,
   fresh_output=True, channel_axis=1, weight_out_axis=0, merge_width="filters", init_arg="init",
   example="Conv1D(32, 5, padding=same) → ReLU")
op("Conv2D", "2-D convolution over (N, C, H, W).", _conv_args(2), infer=_conv_infer(2, "Conv2D"),
   lower=_conv_lower(2), params=_conv_params(2), macs=_conv_macs(2), category="conv", input_width_axis=1,
   fresh_output=True, channel_axis=1, weight_out_axis=0, merge_width="filters", prefers_channels_last=True,
   keeps_layout=True, init_arg="init", example="Conv2D(32, 3, padding=same) → BatchNorm → ReLU")


def _convt_infer(a: A, ins: list[Shape]) -> Shape:
    (s,) = ins
    if len(s) != 4:
        raise ShapeError(f"ConvTranspose2D({a.filters}, {a.kernel}) expects (N, C, H, W), got {fmt_shape(s)}",
                         hint="add Reshape([C, H, W]) after a Dense layer")
    if not isinstance(s[1], int):
        raise ShapeError(f"ConvTranspose2D needs a known channel count, got {fmt_shape(s)}")
    k, st, p, op_ = (_tuple(a[x], 2) for x in ("kernel", "stride", "padding", "output_padding"))
    out = []
    for i in range(2):
        size = s[2 + i]
        if any(op_[i] >= st[i] for _ in [0]):
            raise ShapeError(f"ConvTranspose2D output_padding ({op_[i]}) must be smaller than stride ({st[i]})")
        out.append(size if not isinstance(size, int) else (size - 1) * st[i] - 2 * p[i] + (k[i] - 1) + op_[i] + 1)
        if isinstance(out[-1], int) and out[-1] < 1:
            raise ShapeError(f"ConvTranspose2D output size would be {out[-1]} for input {fmt_shape(s)}",
                             hint="reduce padding")
    return (s[0], a.filters, *out)


def _convt_lower(a: A, ins: list[Shape], out: Shape):
    kw = {}
    for k, default in (("stride", 1), ("padding", 0), ("output_padding", 0)):
        v = a[k]
        if v != default:
            kw[k] = v if isinstance(v, int) else tuple(v)
    if not a.bias:
        kw["bias"] = False
    kernel = a.kernel if isinstance(a.kernel, int) else tuple(a.kernel)
    return L("nn.ConvTranspose2d", ins[0][1], a.filters, kernel, **kw)


op("ConvTranspose2D", "Transposed 2-D convolution (learned upsampling) over (N, C, H, W).",
   [Arg("filters", "int", doc="output channels", min=1),
    Arg("kernel", "int2", doc="kernel size", min=1),
    Arg("stride", "int2", 1, doc="upsampling factor", min=1),
    Arg("padding", "int2", 0, doc="implicit zero padding removed from the output", min=0),
    Arg("output_padding", "int2", 0, doc="extra size added to one side of the output", min=0),
    Arg("bias", "bool", True, doc="learn an additive bias"), INIT],
   infer=_convt_infer, lower=_convt_lower,
   params=lambda a, ins: ins[0][1] * a.filters * _tuple(a.kernel, 2)[0] * _tuple(a.kernel, 2)[1]
   + (a.filters if a.bias else 0),
   macs=lambda a, ins, out: concrete(ins[0][2]) * concrete(ins[0][3]) * ins[0][1] * a.filters
   * _tuple(a.kernel, 2)[0] * _tuple(a.kernel, 2)[1],
   category="conv", fresh_output=True, channel_axis=1, weight_out_axis=1,  # weight is (in, out, kh, kw)
   input_width_axis=1,
   prefers_channels_last=True, keeps_layout=True, init_arg="init",
   example="Reshape([64, 4, 4]) → ConvTranspose2D(32, 4, stride=2, padding=1)")
