"""AST of chain expressions; every node knows its source span.

Spans are filled by the parser through a callback that maps character offsets
in the chain string back to the YAML file, so errors found much later (shape
inference, lowering) still point at the user's text.
"""

from __future__ import annotations

from dataclasses import dataclass

from netc.diagnostics import Span


@dataclass(frozen=True)
class Num:
    """A numeric literal (int or float)."""

    value: int | float
    span: Span


@dataclass(frozen=True)
class Str:
    """A quoted string literal."""

    value: str
    span: Span


@dataclass(frozen=True)
class Word:
    """A bare word: a block parameter, a node reference, ``true``/``false``/``none``, or a string like ``same``."""

    name: str
    span: Span


@dataclass(frozen=True)
class ListExpr:
    """``[a, b]`` or ``(a, b)``: a sequence of expressions."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class BinOp:
    """Arithmetic on block parameters: ``c * 4``, ``c // 2``."""

    op: str
    left: Expr
    right: Expr
    span: Span


Expr = Num | Str | Word | ListExpr | BinOp


@dataclass(frozen=True)
class KwArg:
    """``name=value`` inside a call."""

    name: str
    value: Expr
    span: Span  # span of the name


@dataclass(frozen=True)
class Call:
    """``Conv2D(32, 3, padding=same)``; a bare ``ReLU`` is a Call with no arguments."""

    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[KwArg, ...]
    span: Span
    bare: bool = False  # written without parentheses: may also be a node reference


@dataclass(frozen=True)
class Step:
    """One element of a chain, possibly repeated: ``Res(64) * 3``."""

    call: Call
    repeat: int
    span: Span
    count: str | None = None  # `Res(64) * depth`: the params: name whose value is the repeat count (repeat is 1)


@dataclass(frozen=True)
class Chain:
    """``a → b → c``."""

    steps: tuple[Step, ...]
    span: Span
