"""Flatten, Reshape and Permute (per-sample shapes; the batch axis is implicit)."""

from __future__ import annotations

from netc.compiler.opdef import A, Arg, L, Shape, fmt_shape, numel, op
from netc.diagnostics import ShapeError


def _flatten_infer(a: A, ins: list[Shape]) -> Shape:
    (s,) = ins
    n = numel(s[1:])
    if n is None:
        raise ShapeError(f"Flatten needs known sizes, got {fmt_shape(s)}",
                         hint="pool over the sequence first, e.g. SeqPool(mean)")
    return (s[0], n)


op("Flatten", "Flatten every axis but the batch: (N, ...) → (N, features).", [],
   infer=_flatten_infer, lower=lambda a, ins, out: L("nn.Flatten"), category="shape", reshape_only=True,
   example="MaxPool(2) → Flatten → Dense(10)")


def _reshape_infer(a: A, ins: list[Shape]) -> Shape:
    (s,) = ins
    target = list(a.shape)
    n = numel(s[1:])
    if n is None:
        raise ShapeError(f"Reshape needs known sizes, got {fmt_shape(s)}")
    if target.count(-1) > 1:
        raise ShapeError(f"Reshape({target}) may contain at most one -1")
    if any(d == 0 or d < -1 for d in target):
        raise ShapeError(f"Reshape({target}) sizes must be positive (or one -1)")
    known = numel(tuple(d for d in target if d != -1)) or 1
    if -1 in target:
        if n % known:
            raise ShapeError(f"Reshape({target}) cannot split {n} elements of {fmt_shape(s)}")
        target[target.index(-1)] = n // known
    elif known != n:
        raise ShapeError(f"Reshape({list(a.shape)}) needs {known} elements per sample, "
                         f"but {fmt_shape(s)} has {n}", hint="the product of the new shape must stay the same")
    return (s[0], *target)


op("Reshape", "Reshape each sample (batch axis implicit); one size may be -1.",
   [Arg("shape", "ints", doc="new per-sample shape, e.g. [64, 4, 4]")],
   infer=_reshape_infer,
   lower=lambda a, ins, out: L(None, forward="{x}.reshape({x}.shape[0], " + ", ".join(map(str, out[1:])) + ")"),
   category="shape", reshape_only=True, example="Dense(1024) → Reshape([64, 4, 4])")


def _permute_infer(a: A, ins: list[Shape]) -> Shape:
    (s,) = ins
    dims = list(a.dims)
    if sorted(dims) != list(range(1, len(s))):
        raise ShapeError(f"Permute({dims}) must list each per-sample axis 1..{len(s) - 1} once for {fmt_shape(s)}",
                         hint="axes are numbered from 1 (the batch axis 0 stays first), like Keras")
    return (s[0], *(s[d] for d in dims))


op("Permute", "Reorder per-sample axes, numbered from 1 as in Keras: Permute([2, 1]) swaps (T, D).",
   [Arg("dims", "ints", doc="new order of the per-sample axes (1-based)")],
   infer=_permute_infer,
   lower=lambda a, ins, out: L(None, forward="{x}.permute(0, " + ", ".join(map(str, a.dims)) + ")"),
   category="shape", example="Permute([2, 1]) → Conv1D(32, 3)")
