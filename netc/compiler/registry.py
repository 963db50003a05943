"""The op registry: every op by name, the built-in ones and those of plugins.

One declaration per op (:class:`~netc.compiler.opdef.OpDef`, made in ``netc.compiler.ops``);
the schema's enums, argument validation, ``netc ops``, error hints and editor
completion are all derived from :data:`REGISTRY`, which holds the built-in ops as
soon as this module is imported.

Third-party packages add ops through the ``netc.ops`` entry-point group: each
entry point names a module (or callable) exposing ``OPS: list[OpDef]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import netc.compiler.ops  # noqa: F401  the built-in declarations, collected in BUILTINS
from netc.compiler.opdef import (
    BUILTINS,
    A,
    Arg,
    CountRule,
    Dim,
    L,
    Lowering,
    LowerRule,
    MacRule,
    OpDef,
    Shape,
    ShapeRule,
    concrete,
    fmt_shape,
    numel,
    pair,
)
from netc.diagnostics import REQUIRED

__all__ = ["REGISTRY", "REQUIRED", "A", "Arg", "CountRule", "Dim", "L", "LowerRule", "Lowering", "MacRule", "OpDef",
           "Registry", "Shape", "ShapeRule", "concrete", "fmt_shape", "numel", "pair"]


@dataclass
class Registry:
    """Name → OpDef, with aliases and plugin loading."""

    ops: dict[str, OpDef] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    _plugins_loaded: bool = False

    def register(self, op: OpDef) -> OpDef:
        """Add ``op`` (and its aliases); a name may be declared once."""
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
for _op in BUILTINS:
    REGISTRY.register(_op)


