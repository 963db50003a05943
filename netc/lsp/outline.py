"""``textDocument/documentSymbol``: the outline of a spec: models, blocks, named nodes, inputs.

From the latest analysis whose spec parsed (moved onto the current text with its line
map; a symbol on an edited line is left out until the next check), else from the
YAML's top-level keys, so a document that does not parse yet still has an outline.
"""

from __future__ import annotations

from lsprotocol import types

from netc.diagnostics import Span
from netc.dsl.yamlload import YMap, load_yaml
from netc.lsp.analysis import LineMap
from netc.lsp.documents import Document
from netc.lsp.positions import TextIndex

__all__ = ["document_symbols"]

S = types.SymbolKind


def document_symbols(doc: Document) -> list[types.DocumentSymbol]:
    """The spec's outline (hierarchical symbols)."""
    idx = doc.index
    for a, lm in doc.analyses():
        spec = a.spec
        if spec is None:
            continue
        out: list[types.DocumentSymbol] = []
        for m in spec.models:
            children = [s for s in (_sym(idx, lm, i.name, "input " + "×".join(map(str, i.shape)), S.Variable, i.span)
                                    for i in m.inputs) if s is not None]
            children += [s for e in m.entries if e.name
                         for s in [_sym(idx, lm, e.name, "node", S.Field, e.span)] if s is not None]
            sym = _sym(idx, lm, m.name, "model", S.Class, m.span, children)
            if sym is not None:
                out.append(sym)
        for name, b in spec.blocks.items():
            if b.file != spec.file:
                continue
            children = [s for e in b.entries if e.name
                        for s in [_sym(idx, lm, e.name, "node", S.Field, e.span)] if s is not None]
            sym = _sym(idx, lm, name, "block " + b.signature(name), S.Function, b.span, children)
            if sym is not None:
                out.append(sym)
        train = spec.root.get("train")
        key = spec.root.key_node("train")
        if train is not None and key is not None:
            span = Span(key.span.file, key.span.line, key.span.col, train.span.end_line, train.span.end_col)
            sym = _sym(idx, lm, "train", "training settings", S.Namespace, span)
            if sym is not None:
                out.append(sym)
        if out:
            return out
    return _yaml_outline(doc)


def _sym(idx: TextIndex, lm: LineMap, name: str, detail: str, kind: types.SymbolKind, span: Span | None,
         children: list[types.DocumentSymbol] | None = None) -> types.DocumentSymbol | None:
    if span is None or span.line < 1:
        return None
    moved = lm.span_to_new(span)
    if moved is None:
        return None
    (l1, c1), (l2, c2) = idx.span_range(moved)
    rng = types.Range(types.Position(l1, c1), types.Position(l2, c2))
    for ch in children or ():  # a parent's range must hold its children's (inputs are declared above a model)
        if (ch.range.end.line, ch.range.end.character) > (rng.end.line, rng.end.character):
            rng = types.Range(rng.start, ch.range.end)
        if (ch.range.start.line, ch.range.start.character) < (rng.start.line, rng.start.character):
            rng = types.Range(ch.range.start, rng.end)
    return types.DocumentSymbol(name=name or "model", detail=detail, kind=kind, range=rng,
                                selection_range=types.Range(rng.start, rng.start), children=children or None)


def _yaml_outline(doc: Document) -> list[types.DocumentSymbol]:
    try:
        root = load_yaml(doc.text, doc.path)
    except Exception:
        return []
    if not isinstance(root, YMap):
        return []
    idx = doc.index
    out = []
    for k, v in root.items:
        sp = k.span
        end = getattr(v, "span", sp)
        (l1, c1), _ = idx.span_range(sp)
        _, (l2, c2) = idx.span_range(Span(sp.file, end.line, end.col, end.end_line, end.end_col))
        rng = types.Range(types.Position(l1, c1), types.Position(l2, c2))
        out.append(types.DocumentSymbol(name=str(k.value), kind=S.Key, range=rng,
                                        selection_range=types.Range(rng.start, rng.start)))
    return out
