"""Merge ops joining several named tensors: Add, Multiply, Concat."""

from __future__ import annotations

from netc.compiler.opdef import A, Arg, L, Shape, fmt_shape, op
from netc.diagnostics import ShapeError


def _same_shapes(name: str):
    def infer(a: A, ins: list[Shape]) -> Shape:
        if len(ins) < 2:
            raise ShapeError(f"{name} needs at least two inputs, got {len(ins)}",
                             hint=f"name the tensors to join, e.g. {name}(body, in)")
        first = ins[0]
        for s in ins[1:]:
            if s != first:
                raise ShapeError(f"{name} of unequal shapes: {' and '.join(fmt_shape(x) for x in ins)}",
                                 hint="match channels with a 1×1 Conv2D (or sizes with Dense) on the shortcut")
        return first
    return infer


op("Add", "Element-wise sum of tensors of equal shape (residual connections).", [],
   infer=_same_shapes("Add"), lower=lambda a, ins, out: L(None, forward=" + ".join(f"{{x{i}}}" for i in range(len(ins)))),
   category="merge", arity="many", fresh_output=True, keeps_layout=True, example="Add(body, in) → ReLU")
op("Multiply", "Element-wise product of tensors of equal shape (gating).", [],
   infer=_same_shapes("Multiply"),
   lower=lambda a, ins, out: L(None, forward=" * ".join(f"{{x{i}}}" for i in range(len(ins)))),
   category="merge", arity="many", fresh_output=True, keeps_layout=True, example="Multiply(gate, value)")


def _concat_infer(a: A, ins: list[Shape]) -> Shape:
    if len(ins) < 2:
        raise ShapeError(f"Concat needs at least two inputs, got {len(ins)}", hint="e.g. Concat(a, b)")
    rank = len(ins[0])
    ax = a.axis if a.axis >= 0 else rank + a.axis
    if not 1 <= ax < rank:
        raise ShapeError(f"Concat axis {a.axis} is out of range for {fmt_shape(ins[0])}",
                         hint="axis counts from the batch axis 0; channels are axis 1, -1 is the last axis")
    known, symbols = 0, []
    for s in ins:
        if len(s) != rank or any(s[i] != ins[0][i] for i in range(rank) if i != ax):
            raise ShapeError(f"Concat on axis {a.axis} needs equal sizes on every other axis: "
                             f"{' and '.join(fmt_shape(x) for x in ins)}",
                             hint="concatenate along the axis that differs (axis=1 for channels, -1 for features)")
        if isinstance(s[ax], int):
            known += s[ax]
        else:
            symbols.append(str(s[ax]))
    if not symbols:
        return (*ins[0][:ax], known, *ins[0][ax + 1:])
    total = "+".join(symbols + ([str(known)] if known else []))  # e.g. "T+S" or "T+T+4"
    return (*ins[0][:ax], total, *ins[0][ax + 1:])


op("Concat", "Concatenate tensors along `axis` (1 = channels/features; batch is axis 0).",
   [Arg("axis", "int", 1, doc="axis to join along (0 is the batch axis; -1 the last)")],
   infer=_concat_infer,
   lower=lambda a, ins, out: L(None, forward="torch.cat([{xs}], dim=" + str(a.axis) + ")"),
   category="merge", arity="many", fresh_output=True, example="Concat(b1, b2, b3, b4)")
