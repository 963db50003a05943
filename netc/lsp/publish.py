"""netc diagnostics as LSP diagnostics: exact ranges, severity, code = kind, message + hint.

A diagnostic located in another file (inside a block imported from ``blocks.yaml``)
is shown at the call in this document that led to it, or at the import, with the
real location attached as related information.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from netc.diagnostics import Diagnostic, Span
from netc.dsl.yamlload import YMap, YNode, load_yaml
from netc.lsp.analysis import Analysis
from netc.lsp.definition import TextOf, location_of
from netc.lsp.positions import TextIndex

__all__ = ["lsp_diagnostics"]

SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning,
            "info": types.DiagnosticSeverity.Information, "note": types.DiagnosticSeverity.Information,
            "hint": types.DiagnosticSeverity.Hint}
_START = types.Range(types.Position(0, 0), types.Position(0, 0))


def lsp_diagnostics(a: Analysis, index: TextIndex, text_of: TextOf) -> list[types.Diagnostic]:
    """The diagnostics of analysis ``a`` of the text ``index`` was built for."""
    out = []
    root: YNode | None | bool = False  # parsed lazily, only for diagnostics in imported files
    for k, d in enumerate(a.diagnostics):
        message = d.message
        related = None
        if d.span is None:
            rng = _START
        elif d.span.file == a.file:
            rng = _range(index, d.span)
        else:
            if root is False:
                root = a.spec.root if a.spec is not None else _root(a)
            site = a.call_sites.get(k) or _import_site(root, a.file, d.span.file)
            rng = _range(index, site) if site is not None else _START
            name = Path(d.span.file).name
            message = f"{name}:{d.span.line}:{d.span.col}: {message}"
            loc = location_of(d.span, text_of, index.encoding)
            if loc is not None:
                related = [types.DiagnosticRelatedInformation(loc, f"{d.kind} error in {name}")]
        if d.hint:
            message += f"\nhint: {d.hint}"
        out.append(types.Diagnostic(
            range=rng, message=_clean(message), severity=SEVERITY.get(d.severity, types.DiagnosticSeverity.Error),
            code=d.kind, source="netc", related_information=related, tags=_tags(d)))
    return out


def _range(index: TextIndex, span: Span) -> types.Range:
    s, e = index.span_range(span)
    return types.Range(types.Position(*s), types.Position(*e))


def _tags(d: Diagnostic) -> list[types.DiagnosticTag] | None:
    if d.severity == "warning" and "never used" in d.message:
        return [types.DiagnosticTag.Unnecessary]
    return None


def _root(a: Analysis) -> YNode | None:
    try:
        return load_yaml(a.text, a.file)
    except Exception:
        return None


def _import_site(root: YNode | None, file: str, target: str) -> Span | None:
    """The ``imports:`` value of this document that names ``target`` (resolved like the loader does)."""
    imports = root.get("imports") if isinstance(root, YMap) else None
    if not isinstance(imports, YMap):
        return None
    base = Path(file).parent
    for _, v in imports.items:
        try:
            if (base / str(getattr(v, "value", ""))).resolve() == Path(target).resolve():
                return v.span
        except (OSError, ValueError):
            continue
    return None


def _clean(s: str) -> str:
    """Messages may quote the user's text: lone surrogates would not survive JSON encoding as UTF-8."""
    return s.encode("utf-8", "replace").decode("utf-8")
