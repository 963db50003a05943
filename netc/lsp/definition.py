"""``textDocument/definition``: from a block's use to its definition (also in an imported
file), from a node reference to the named node, from ``lib`` or an import's path to that
file, from a parameter to its declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lsprotocol import types

from netc.diagnostics import Span
from netc.dsl.yamlload import YMap
from netc.lsp.analysis import contains
from netc.lsp.context import word_at
from netc.lsp.documents import Document
from netc.lsp.positions import TextIndex
from netc.lsp.symbols import resolve

__all__ = ["definition", "location_of"]

TextOf = Callable[[str], "str | None"]  # path → text (the open document's, else the file's)


def definition(doc: Document, line: int, character: int, text_of: TextOf) -> list[types.Location] | None:
    """Where the name at LSP position (line, character) of ``doc`` is defined, or None."""
    idx = doc.index
    off = idx.offset(line, character)
    text = idx.line(line)
    col = off - idx.offset(line, 0)
    ws, _, word = word_at(text, col)
    nl, nc = idx.netc_linecol(off)
    for a, lm in doc.analyses():
        old = lm.to_old(nl)
        if old is None:
            continue
        target: Span | None = None
        if word:
            alias_part = "." in word and col - ws <= word.index(".")
            sym = resolve(a.spec, word, old, nc, alias_part=alias_part)
            if sym is not None:
                target = sym.span
        if target is None:  # the path of an import: the file itself
            imports = a.spec.root.get("imports")
            if isinstance(imports, YMap):
                for k, v in imports.items:
                    sub = a.spec.imports.get(str(k.value))
                    if sub is not None and (contains(v.span, a.file, old, nc) or contains(k.span, a.file, old, nc)):
                        target = Span(sub.file, 1, 1, 1, 1)
        if target is None:
            continue
        if target.file == a.file:
            moved = lm.span_to_new(target)
            if moved is None:
                continue
            s, e = idx.span_range(moved)
            return [types.Location(doc.uri, types.Range(types.Position(*s), types.Position(*e)))]
        loc = location_of(target, text_of, doc.encoding)
        return [loc] if loc is not None else None
    return None


def location_of(span: Span, text_of: TextOf, encoding: str = "utf-16") -> types.Location | None:
    """An LSP Location for a span of a file on disk (or open in the editor)."""
    text = text_of(span.file)
    if text is None:
        return None
    s, e = TextIndex(text, encoding).span_range(span)
    return types.Location(Path(span.file).resolve().as_uri(), types.Range(types.Position(*s), types.Position(*e)))
