"""Adaptive pooling: AdaptiveAvgPool, pooling any spatial size to a fixed output size.

torchvision's AlexNet and VGG put ``AdaptiveAvgPool2d((6, 6))`` / ``((7, 7))`` before
their classifier so that the first Dense layer's size does not depend on the image size.
"""

from __future__ import annotations

from netc.compiler.opdef import A, Arg, L, Shape, concrete, fmt_shape, op
from netc.diagnostics import ShapeError


def _size(a: A, n: int) -> tuple[int, ...]:
    s = a.size
    if isinstance(s, int):
        return (s,) * n
    if n == 1:
        raise ShapeError(f"AdaptiveAvgPool over a sequence (N, C, L) takes one output length, got {list(s)}",
                         hint=f"write AdaptiveAvgPool({s[0]})")
    return tuple(s)


def _infer(a: A, ins: list[Shape]) -> Shape:
    (s,) = ins
    if len(s) not in (3, 4):
        raise ShapeError(f"AdaptiveAvgPool({a.size}) expects (N, C, L) or (N, C, H, W), got {fmt_shape(s)}",
                         hint="pooling needs channels-first feature maps; use SeqPool for (N, T, D) sequences"
                         if len(s) == 3 else None)
    return (s[0], s[1], *_size(a, len(s) - 2))


def _window_sum(size: int, out: int) -> int:
    """Total window length over the ``out`` adaptive windows of an axis of length ``size``."""
    return sum(-(-(i + 1) * size // out) - (i * size // out) for i in range(out))


def _macs(a: A, ins: list[Shape], out: Shape) -> int:
    total = concrete(ins[0][1])
    for d, o in zip(ins[0][2:], _size(a, len(ins[0]) - 2)):
        total *= _window_sum(concrete(d), o)
    return total


def _lower(a: A, ins: list[Shape], out: Shape):
    n = len(ins[0]) - 2
    size = a.size if isinstance(a.size, int) else tuple(a.size)
    return L(f"nn.AdaptiveAvgPool{n}d", size)


op("AdaptiveAvgPool", "Average pooling to a fixed output size, whatever the input size; 1-D or 2-D by rank.",
   [Arg("size", "int2", doc="output size: an int (square) or [h, w]", min=1)],
   infer=_infer, lower=_lower, macs=_macs, category="pool",
   example="Conv2D(256, 3, padding=1) → ReLU → AdaptiveAvgPool(6) → Flatten → Dense(4096)")
