"""Names in a parsed spec and where they are defined: blocks, imports, nodes, inputs, parameters.

Resolution follows the elaborator's rules: inside a chain, a bare name is first a
node (or an input, or ``in``), then an op, then a block; an argument word is a
parameter (the block's, then the spec's).
"""

from __future__ import annotations

from dataclasses import dataclass

from netc.diagnostics import Span
from netc.dsl.spec import BlockDef, Entry, ModelDef, Spec
from netc.dsl.yamlload import YMap
from netc.lsp.analysis import contains

__all__ = ["Scope", "Symbol", "block_namespace", "resolve", "scope_at"]


@dataclass(frozen=True)
class Symbol:
    """A name and its definition."""

    kind: str  # block, import, node, input, param, block_param
    name: str
    span: Span  # the definition (possibly in an imported file)
    block: BlockDef | None = None
    value: object = None  # a parameter's default


@dataclass(frozen=True)
class Scope:
    """The model or local block whose text holds a position."""

    model: ModelDef | None = None
    block: BlockDef | None = None

    @property
    def entries(self) -> tuple[Entry, ...]:
        if self.block is not None:
            return self.block.entries
        return self.model.entries if self.model is not None else ()


def _inside(e: Entry, file: str, line: int, col: int) -> bool:
    return contains(e.chain.span, file, line, col) or contains(e.span, file, line, col)


def scope_at(spec: Spec, line: int, col: int) -> Scope:
    """The model or block defined at (line, col) of the spec's own file (empty Scope if none)."""
    for b in spec.blocks.values():
        if contains(b.span, spec.file, line, col) or any(_inside(e, spec.file, line, col) for e in b.entries):
            return Scope(block=b)
    for m in spec.models:
        if any(_inside(e, spec.file, line, col) for e in m.entries):
            return Scope(model=m)
    return Scope()


def block_namespace(spec: Spec) -> dict[str, BlockDef]:
    """Every block callable from ``spec``: its own, and ``alias.Name`` of its imports."""
    ns = dict(spec.blocks)
    for alias, sub in spec.imports.items():
        for n, b in sub.blocks.items():
            ns[f"{alias}.{n}"] = b
    return ns


def resolve(spec: Spec, word: str, line: int, col: int, *, alias_part: bool = False) -> Symbol | None:
    """What ``word`` written at (line, col) of the spec's file refers to, or None (an op, or unknown).

    ``alias_part``: the cursor is on ``lib`` of ``lib.Res``, which names the imported file.
    """
    if "." in word:
        alias, _, rest = word.partition(".")
        sub = spec.imports.get(alias)
        if sub is None:
            return None
        if alias_part or not rest:
            return Symbol("import", alias, Span(sub.file, 1, 1, 1, 1))
        b = sub.blocks.get(rest)
        return Symbol("block", word, b.span, b) if b is not None else None
    scope = scope_at(spec, line, col)
    if scope.block is not None:
        b = scope.block
        if word == "in":
            return Symbol("block_param", "in", b.span, b)
        for p in b.params:
            if p.name == word:
                return Symbol("block_param", word, p.span, b, p.default)
    for e in scope.entries:
        if e.name == word:
            return Symbol("node", word, e.span, scope.block)
    if scope.model is not None:
        for i in scope.model.inputs:
            if i.name == word or (word == "in" and len(scope.model.inputs) == 1):
                return Symbol("input", i.name, i.span)
    params = spec.root.get("params")
    if isinstance(params, YMap) and word in spec.params:
        key = params.key_node(word)
        if key is not None:
            return Symbol("param", word, key.span, None, spec.params[word])
    b = spec.blocks.get(word)
    if b is not None:
        return Symbol("block", word, b.span, b)
    return None
