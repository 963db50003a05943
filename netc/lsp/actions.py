"""``textDocument/codeAction``: quick fixes for the hints that name a mechanical edit.

The front end's hints are the single source: a diagnostic published by
:mod:`netc.lsp.publish` ends its message with ``hint: …``, and the editor hands the
diagnostic back with the range it has kept up to date while the user typed. Each
rule below reads one kind of hint and turns it into an edit of the text in that
range:

- ``did you mean 'Dense'?``: replace the misspelt word (``Dnese`` → ``Dense``);
- ``insert Flatten before Dense``: insert the step before the call (``Flatten →``);
- ``… remove it`` / ``remove the Softmax``: delete the step and its arrow;
- ``set return_sequences=true on LSTM(16)`` (or any ``add NAME=VALUE to Op``): add
  the keyword to the call the hint names, found left of the range on its line;
- ``… as its own op after the layer: Conv2D(32, 3) → ReLU``: move Keras' ``activation=relu``
  (or a positional ``relu``) out of the call into a step after it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from lsprotocol import types

from netc.lsp.positions import TextIndex

__all__ = ["code_actions", "fixes"]

Edit = tuple[int, int, str]  # (start offset, end offset, new text) in the document
Fix = tuple[str, list[Edit]]  # (title, edits)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_ARROW = re.compile(r"\s*(?:→|->)\s*")


def _hint_of(message: str) -> str | None:
    _, sep, hint = message.rpartition("\nhint: ")
    return hint.strip() if sep else None


def _did_you_mean(hint: str, text: str, start: int, end: int) -> list[Fix]:
    m = re.search(r"did you mean '([^']+)'\?", hint)
    if m is None:
        return []
    target = m.group(1)
    words = [w for w in _IDENT.finditer(text, start, end) if w.group() != target]
    if not words:
        return []
    best = max(words, key=lambda w: difflib.SequenceMatcher(None, w.group().lower(), target.lower()).ratio())
    return [(f"Change '{best.group()}' to '{target}'", [(best.start(), best.end(), target)])]


def _arrow_of(text: str, at: int) -> str:
    line = text[text.rfind("\n", 0, at) + 1:text.find("\n", at) if "\n" in text[at:] else len(text)]
    return "->" if "->" in line and "→" not in line else "→"


def _insert_before(hint: str, text: str, start: int, end: int) -> list[Fix]:
    m = re.search(r"\binsert ([A-Z][A-Za-z0-9_]*(?:\([^()]*\))?) before\b", hint)
    if m is None:
        return []
    step = m.group(1)
    return [(f"Insert {step} before this step", [(start, start, f"{step} {_arrow_of(text, start)} ")])]


def _remove_step(hint: str, text: str, start: int, end: int) -> list[Fix]:
    if not re.search(r"\bremove (it|this \w+|the \w+)\s*$", hint) or start == end:
        return []
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    before = None
    for m in _ARROW.finditer(text, line_start, start):
        if m.end() == start:
            before = m
    after = _ARROW.match(text, end, line_end)
    if before is not None:
        return [(f"Remove {text[start:end]}", [(before.start(), end, "")])]
    if after is not None:
        return [(f"Remove {text[start:end]}", [(start, after.end(), "")])]
    return []


def _add_keyword(hint: str, text: str, start: int, end: int) -> list[Fix]:
    m = re.search(r"\b(?:set|add) ([a-z_]+)=([A-Za-z0-9_.]+) (?:on|to) ([A-Z][A-Za-z0-9_]*)\(", hint)
    if m is None:
        return []
    kw, value, op = m.groups()
    line_start = text.rfind("\n", 0, start) + 1
    calls = list(re.finditer(rf"\b{re.escape(op)}\(", text[line_start:start]))
    if not calls:
        return []
    open_at = line_start + calls[-1].end() - 1
    depth, i = 0, open_at
    while i < len(text) and text[i] != "\n":
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            break
        i += 1
    if depth != 0:
        return []
    inner = text[open_at + 1:i]
    new = f"{kw}={value}" if not inner.strip() else f", {kw}={value}"
    return [(f"Add {kw}={value} to {op}", [(i, i, new)])]


def _activation_after(hint: str, text: str, start: int, end: int) -> list[Fix]:
    """``Conv2D(32, 3, activation=relu)`` or ``Dense(128, relu)`` → ``… → ReLU`` after the call."""
    m = re.search(r"as its own op after the layer: .* → ([A-Z][A-Za-z0-9_]*)$", hint)
    if m is None or start == end:
        return []
    act = m.group(1)
    stop = end  # the end of the value: `activation=relu` (a keyword) or `relu` (positional)
    if text[end:end + 1] == "=":
        depth, stop = 0, end + 1
        while stop < len(text) and text[stop] != "\n" and not (depth == 0 and text[stop] in ",)"):
            depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(text[stop], 0)
            stop += 1
    comma = text.rfind(",", 0, start)
    if comma < 0 or text[comma + 1:start].strip():
        return []
    depth, close = 0, stop  # the call's closing parenthesis
    while close < len(text) and text[close] != "\n":
        depth += {"(": 1, ")": -1}.get(text[close], 0)
        if depth < 0:
            break
        close += 1
    if depth >= 0:
        return []
    arrow = _arrow_of(text, start)
    return [(f"Write {act} as its own op", [(comma, stop, ""), (close + 1, close + 1, f" {arrow} {act}")])]


RULES: list[Callable[[str, str, int, int], list[Fix]]] = [_did_you_mean, _insert_before, _remove_step, _add_keyword,
                                                          _activation_after]


def fixes(hint: str, text: str, start: int, end: int) -> list[Fix]:
    """The mechanical fixes a hint describes, for the diagnostic at offsets [start, end) of ``text``."""
    out: list[Fix] = []
    for rule in RULES:
        out += rule(hint, text, start, end)
    return out


def code_actions(uri: str, index: TextIndex, diagnostics: list[types.Diagnostic]) -> list[types.CodeAction]:
    """Quick fixes for the netc diagnostics an editor sent with ``textDocument/codeAction``."""
    text = index.text
    out = []
    for d in diagnostics:
        hint = _hint_of(d.message) if d.source in (None, "netc") else None
        if not hint:
            continue
        start = index.offset(d.range.start.line, d.range.start.character)
        end = index.offset(d.range.end.line, d.range.end.character)
        found = fixes(hint, text, start, end)
        for title, edits in found:
            tedits = [types.TextEdit(types.Range(types.Position(*index.position(a)), types.Position(*index.position(b))),
                                     new) for a, b, new in edits]
            out.append(types.CodeAction(title=title, kind=types.CodeActionKind.QuickFix, diagnostics=[d],
                                        is_preferred=len(found) == 1,
                                        edit=types.WorkspaceEdit(changes={uri: tedits})))
    return out
