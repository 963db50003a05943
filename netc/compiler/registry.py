"""The op registry: one declaration per op.

An :class:`OpDef` holds everything netc knows about an op: its arguments (types,
defaults, ranges, docs), its shape rule, its parameter and MAC counts and its
lowering to torch (a :class:`Lowering` description, so this module never
imports torch). The schema's enums, argument validation, ``netc ops``, error
hints and editor completion are all derived from :data:`REGISTRY`.

Third-party packages add ops through the ``netc.ops`` entry-point group: each
entry point names a module (or callable) exposing ``OPS: list[OpDef]``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netc.diagnostics import ShapeError

Dim = int | str
Shape = tuple[Dim, ...]

REQUIRED = object()  # sentinel: argument has no default

# Argument kinds. "int2" accepts an int or a pair; "ints" a list of ints; "ref" a node name.
ARG_KINDS = ("int", "float", "bool", "str", "int2", "ints", "ref", "int_or_str")


@dataclass(frozen=True)
class Arg:
    """One argument of an op."""

    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    nullable: bool = False  # ``None`` is a legal value (e.g. "same as input")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def signature(self) -> str:
        """``name=default`` or ``name`` for required arguments."""
        if self.required:
            return self.name
        d = self.default
        return f"{self.name}={str(d).lower() if isinstance(d, bool) or d is None else d}"


@dataclass(frozen=True)
class Lowering:
    """How an op becomes torch: a module constructor and a forward expression.

    ``module`` is ``"nn.Conv2d"`` (torch.nn), the name of a helper class in
    ``netc.backend.layers`` (e.g. ``"PositionalEncoding"``), ``"pkg.mod:Class"``
    for plugins, or ``None`` for a purely functional op. ``args``/``kwargs`` may
    contain nested :class:`Lowering` values (e.g. TransformerEncoder's layer).
    ``forward`` is a Python expression template: ``{m}`` is the submodule,
    ``{x}`` the first input, ``{x0}``, ``{x1}``... each input, ``{xs}`` all inputs
    comma-separated. ``helpers`` names functions of ``netc.backend.layers`` the
    expression uses.
    """

    module: str | None
    args: tuple = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    forward: str = "{m}({x})"
    helpers: tuple[str, ...] = ()


def L(module: str | None, *args: Any, forward: str = "{m}({x})", helpers: tuple[str, ...] = (),
      **kwargs: Any) -> Lowering:
    """Shorthand for a :class:`Lowering`."""
    return Lowering(module, tuple(args), tuple(kwargs.items()), forward, helpers)


class A(Mapping):
    """Resolved argument values of one node, readable as attributes (``a.filters``)."""

    __slots__ = ("_d",)

    def __init__(self, d: Mapping[str, Any]):
        object.__setattr__(self, "_d", dict(d))

    def __getattr__(self, k: str) -> Any:
        try:
            return self._d[k]
        except KeyError:
            raise AttributeError(k) from None

    def __getitem__(self, k: str) -> Any:
        return self._d[k]

    def __iter__(self):
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


ShapeRule = Callable[[A, list[Shape]], Shape]
CountRule = Callable[[A, list[Shape]], int]
MacRule = Callable[[A, list[Shape], Shape], int]
LowerRule = Callable[[A, list[Shape], Shape], Lowering]


def _zero(a: A, ins: list[Shape], *rest: Any) -> int:
    return 0


@dataclass(frozen=True)
class OpDef:
    """The single declaration of an op."""

    name: str
    doc: str
    args: tuple[Arg, ...]
    infer: ShapeRule
    lower: LowerRule
    params: CountRule = _zero
    macs: MacRule = _zero
    category: str = "layer"
    # "one": one tensor input (the chain's); "many": merge op (Add, Concat): the
    # chain input plus every positional reference; refs in kwargs (kind "ref") add inputs.
    arity: str = "one"
    aliases: tuple[str, ...] = ()
    input_dtype: str = "float32"  # the dtype the op consumes ("int64" for Embedding)
    output_dtype: str = "float32"
    stateful_in_eval: bool = False  # True for Dropout/BatchNorm: behaviour differs in training
    example: str = ""

    def arg(self, name: str) -> Arg | None:
        for a in self.args:
            if a.name == name:
                return a
        return None

    def signature(self) -> str:
        """``Conv2D(filters, kernel, stride=1, ...)``."""
        if self.arity == "many":
            inner = ["*refs"] + [a.signature() for a in self.args]
        else:
            inner = [a.signature() for a in self.args]
        return f"{self.name}({', '.join(inner)})"


@dataclass
class Registry:
    """Name → OpDef, with aliases, plugin loading and did-you-mean."""

    ops: dict[str, OpDef] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    _plugins_loaded: bool = False

    def register(self, op: OpDef) -> OpDef:
        if op.name in self.ops or op.name in self.aliases:
            raise ValueError(f"op {op.name!r} is declared twice")
        self.ops[op.name] = op
        for al in op.aliases:
            self.aliases[al] = op.name
        return op

    def get(self, name: str, plugins: bool = True) -> OpDef | None:
        """The OpDef for ``name`` or an alias; loads plugins on a miss (unless ``plugins=False``)."""
        op = self.ops.get(name) or self.ops.get(self.aliases.get(name, ""))
        if op is None and plugins and not self._plugins_loaded:
            self.load_plugins()
            op = self.ops.get(name) or self.ops.get(self.aliases.get(name, ""))
        return op

    def all(self) -> list[OpDef]:
        """Every op, plugins included, sorted by name."""
        self.load_plugins()
        return sorted(self.ops.values(), key=lambda o: o.name)

    def names(self) -> list[str]:
        """Every op name and alias."""
        self.load_plugins()
        return sorted([*self.ops, *self.aliases])

    def suggest(self, name: str, extra: list[str] | None = None) -> str | None:
        """Closest known op name (case-insensitive first), for "did you mean" hints."""
        self.load_plugins()
        pool = [*self.ops, *self.aliases, *(extra or [])]
        lower = {p.lower(): p for p in pool}
        if name.lower() in lower:
            return lower[name.lower()]
        m = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.6)
        return lower[m[0]] if m else None

    def load_plugins(self) -> None:
        """Register ops from the ``netc.ops`` entry-point group (once)."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group="netc.ops"):
            obj = ep.load()
            ops = obj() if callable(obj) else getattr(obj, "OPS", [])
            for op in ops:
                self.register(op)


REGISTRY = Registry()


def op(name: str, doc: str, args: list[Arg] | tuple[Arg, ...] = (), *, infer: ShapeRule,
       lower: LowerRule, **kw: Any) -> OpDef:
    """Declare and register a built-in op."""
    return REGISTRY.register(OpDef(name, doc, tuple(args), infer, lower, **kw))


# ----------------------------------------------------------------------------- shape helpers

def fmt_shape(s: Shape) -> str:
    """``(N, 64, 4, 4)``."""
    return "(" + ", ".join(str(d) for d in s) + ")"


def numel(dims: Shape) -> int | None:
    """Product of dims, or None if any is symbolic."""
    n = 1
    for d in dims:
        if not isinstance(d, int):
            return None
        n *= d
    return n


def concrete(d: Dim, default: int = 1) -> int:
    """A dim as an int for counting MACs (symbolic dims count as ``default``)."""
    return d if isinstance(d, int) else default


def expect_rank(opname: str, s: Shape, ranks: tuple[int, ...], what: str, hint: str | None = None) -> None:
    """Raise a ShapeError unless ``len(s)`` is one of ``ranks``."""
    if len(s) not in ranks:
        raise ShapeError(f"{opname} expects {what}, got {fmt_shape(s)}", hint=hint)


def pair(v: int | tuple | list) -> tuple[int, int]:
    """An int or a pair as a pair."""
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))
