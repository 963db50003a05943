"""Completion and hover for the YAML keys and plain values of a spec, read from its JSON Schema.

The schema (``netc/dsl/netc.schema.json``, generated from the registries) already holds
every key's description, default and choices; this module walks it along the YAML
key path at the cursor (:func:`netc.lsp.context.key_path`), so ``train:`` gets its
keys, ``optimizer:`` its names, ``metrics: [`` its metrics and ``device:`` its
devices, each documented, without a second copy of the vocabulary. Chains are
not handled here (see :mod:`netc.lsp.completion`).
"""

from __future__ import annotations

import re
from typing import Any

from lsprotocol import types

from netc.diagnostics import show
from netc.dsl.schema import load_schema
from netc.lsp.context import _KEY_LINE, key_path, word_at
from netc.lsp.documents import Document

__all__ = ["key_completion", "key_hover", "schema_at"]

K = types.CompletionItemKind


def _deref(s: Any, root: dict) -> Any:
    while isinstance(s, dict) and "$ref" in s:
        ref = s["$ref"]
        if not ref.startswith("#/"):
            return {}
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        s = node
    return s


def _branches(s: Any, root: dict) -> list[dict]:
    """``s`` and the schemas of its anyOf/oneOf branches, flattened (references resolved)."""
    s = _deref(s, root)
    if not isinstance(s, dict):
        return []
    out = [s]
    for k in ("anyOf", "oneOf", "allOf"):
        for b in s.get(k, ()):
            out += _branches(b, root)
    return out


def _child(s: Any, key: str, root: dict) -> dict | None:
    """The schema of ``key`` inside the object schema ``s`` (any branch that declares it)."""
    for b in _branches(s, root):
        props = b.get("properties")
        if isinstance(props, dict) and key in props:
            return props[key]
    return None


def schema_at(path: list[str]) -> dict | None:
    """The schema of the value at YAML key ``path`` (``["train", "optimizer"]``), or None if undeclared."""
    root = load_schema()
    s: Any = root
    for key in path:
        s = _child(s, key.lstrip("-"), root)
        if s is None:
            return None
    return _deref(s, root)


def _properties(s: dict) -> dict[str, dict]:
    root = load_schema()
    out: dict[str, dict] = {}
    for b in _branches(s, root):
        for k, v in (b.get("properties") or {}).items():
            out.setdefault(k, v)
    return out


def _values(s: dict) -> list[tuple[str, str]]:
    """(value, note) for each value the schema enumerates (enums, booleans), items of a list included."""
    root = load_schema()
    seen: dict[str, str] = {}
    for b in _branches(s, root):
        for v in b.get("enum", ()):
            if v is not None:
                seen.setdefault(show(v), b.get("description", ""))
        types_ = b.get("type")
        if types_ == "boolean" or (isinstance(types_, list) and "boolean" in types_):
            for v in ("true", "false"):
                seen.setdefault(v, b.get("description", ""))
        if isinstance(b.get("items"), dict):
            for v, note in _values(b["items"]):
                seen.setdefault(v, note)
    return list(seen.items())


def describe(s: dict, name: str | None = None) -> str:
    """Markdown for a key: its own description (never a branch's), type, default and choices."""
    parts = [f"**{name}**" if name else ""]
    if s.get("description"):
        parts.append(str(s["description"]))
    if "default" in s and s["default"] is not None:
        parts.append(f"default: `{show(s['default'])}`")
    choices = [v for v, _ in _values(s) if v not in ("true", "false")]
    if choices:
        parts.append("one of: " + ", ".join(f"`{v}`" for v in choices))
    return "\n\n".join(p for p in parts if p)


def _siblings(lines: list[str], line: int, indent: int) -> set[str]:
    """Keys already written at ``indent`` in the mapping that holds ``line``."""
    out: set[str] = set()
    for step in (-1, 1):
        n = line + step
        while 0 <= n < len(lines):
            text = lines[n]
            if text.strip() and not text.lstrip().startswith("#"):
                ind = len(text) - len(text.lstrip(" "))
                if ind < indent:
                    break
                m = _KEY_LINE.match(text)
                if ind == indent and m:
                    out.add(m.group("key").strip())
            n += step
    return out


def key_completion(doc: Document, line: int, character: int) -> list[types.CompletionItem] | None:
    """Keys (on a line with no ``key:`` yet before the cursor) or values (after ``key:``) from the schema."""
    idx = doc.index
    off = idx.offset(line, character)
    text = idx.line(line)
    col = off - idx.offset(line, 0)
    ws, _, word = word_at(text, col)
    rng = types.Range(types.Position(*idx.position(off - (col - ws))), types.Position(*idx.position(off)))
    before = text[:col]
    if "#" in before:
        return None
    lines = [idx.line(i) for i in range(idx.line_count)]
    m = _KEY_LINE.match(text)
    if m is not None and col > m.end() - 1:  # after `key:`: its values
        path = key_path(lines, line, col)
        s = schema_at(path)
        if s is None:
            return None
        return [types.CompletionItem(label=v, kind=K.EnumMember, detail=path[-1],
                                     documentation=_md(note) if note else None,
                                     text_edit=types.TextEdit(rng, v), sort_text=f"{i:03d}")
                for i, (v, note) in enumerate(_values(s))] or None
    if before[:ws].strip(" -") or (m is None and ":" in text[ws:]):
        return None  # inside a flow value or some other text: not a key position
    indent = len(text[:ws]) - len(text[:ws].lstrip(" "))
    lines[line] = text[:ws] + "x"  # the key being typed, so that a blank line's indentation counts
    path = key_path(lines, line)
    s = schema_at(path) if path else load_schema()
    if s is None:
        return None
    given = _siblings(lines, line, indent)
    items = []
    for i, (k, sub) in enumerate(sorted(_properties(s).items())):
        if k in given and k != word:
            continue
        sub = _deref(sub, load_schema())
        items.append(types.CompletionItem(
            label=k, kind=K.Property, detail=_short(sub), documentation=_md(describe(sub, k)),
            text_edit=types.TextEdit(rng, f"{k}: "), filter_text=k, sort_text=f"{i:03d}"))
    return items or None


def key_hover(doc: Document, line: int, character: int) -> types.Hover | None:
    """The schema's documentation of the key under the cursor (``epochs:``), or None."""
    idx = doc.index
    off = idx.offset(line, character)
    text = idx.line(line)
    col = off - idx.offset(line, 0)
    m = _KEY_LINE.match(text)
    if m is None or not (m.start("key") <= col <= m.end("key")):
        return None
    lines = [idx.line(i) for i in range(line + 1)]
    path = key_path(lines, line, m.end() + 1)
    s = schema_at(path)
    if not path or s is None or not s.get("description"):
        return None
    start, end = idx.position(off - col + m.start("key")), idx.position(off - col + m.end("key"))
    return types.Hover(contents=_md(describe(s, path[-1])),
                       range=types.Range(types.Position(*start), types.Position(*end)))


def _short(s: dict) -> str:
    t = s.get("type")
    if t is None:
        kinds = sorted({str(b.get("type")) for b in _branches(s, load_schema()) if b.get("type")})
        t = " | ".join(kinds) if kinds else "value"
    elif isinstance(t, list):
        t = " | ".join(str(x) for x in t if x != "null")
    d = s.get("default")
    return f"{t}, default {show(d)}" if d is not None else str(t)


def _md(text: str) -> types.MarkupContent:
    return types.MarkupContent(types.MarkupKind.Markdown, re.sub(r"``([^`]+)``", r"`\1`", text))
