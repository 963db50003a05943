"""Where the cursor is, read from the text around it (the document may not parse).

Completion happens while a chain is half typed, so it cannot wait for the parser:
these functions look at the current line (``Conv2D(32, 3, |``), and at the
indentation of the lines above for the YAML key the line belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CallContext", "call_context", "chain_slot", "in_chain_value", "key_path", "word_at"]

_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")
_KEY_LINE = re.compile(r"^(?P<indent>[ \t]*(?:-[ \t]+)*)(?P<key>[^\s#:'\"{}\[\],][^#:]*?|'[^']*'|\"[^\"]*\")"
                       r"[ \t]*:(?:[ \t]|$)")


def word_at(line: str, col: int) -> tuple[int, int, str]:
    """(start, end, word) of the dotted identifier touching code-point column ``col`` ('' if none)."""
    col = min(max(col, 0), len(line))
    start = col
    while start > 0 and line[start - 1] in _WORD_CHARS:
        start -= 1
    end = col
    while end < len(line) and line[end] in _WORD_CHARS:
        end += 1
    if start < end and not (line[start].isalpha() or line[start] == "_"):
        return col, col, ""  # a number (or a stray dot), not a name
    return start, end, line[start:end]


@dataclass(frozen=True)
class CallContext:
    """The call whose argument list holds the cursor."""

    callee: str  # name before '(' (``Conv2D``, ``lib.Res``)
    callee_start: int  # column of the callee's first character
    positional: int  # positional arguments before the current one
    given: tuple[str, ...]  # keyword arguments already written
    kwarg: str | None  # the cursor is in the value of ``kwarg=``
    nested: bool  # inside a list or tuple within the argument
    prefix: str  # identifier typed just before the cursor


def _mask_strings(s: str) -> str:
    """``s`` with the insides of quoted strings blanked, so their brackets and commas do not count."""
    out, quote = [], None
    for ch in s:
        if quote:
            out.append(ch if ch == quote else " ")
            if ch == quote:
                quote = None
        else:
            if ch in "'\"":
                quote = ch
            out.append(ch)
    return "".join(out)


def call_context(line: str, col: int) -> CallContext | None:
    """The innermost call around ``col`` of ``line``, or None outside any call's parentheses."""
    text = _mask_strings(line[:col])
    if re.search(r"(^|\s)#", text):
        return None  # in a comment
    depth = 0
    nested = False
    i = len(text) - 1
    while i >= 0:
        ch = text[i]
        if ch in ")]":
            depth += 1
        elif ch in "([":
            if depth > 0:
                depth -= 1
            else:
                j = i
                while j > 0 and text[j - 1] in " \t":
                    j -= 1
                k = j
                while k > 0 and text[k - 1] in _WORD_CHARS:
                    k -= 1
                name = text[k:j]
                if ch == "(" and name and (name[0].isalpha() or name[0] == "_"):
                    return _arguments(text, i, name, k, nested)
                nested = True  # a list or tuple inside an argument: keep looking outward
        elif ch == "→" or (ch == ">" and i > 0 and text[i - 1] == "-"):
            return None  # reached the previous step: not inside a call
        i -= 1
    return None


def _arguments(text: str, open_at: int, name: str, name_start: int, nested: bool) -> CallContext:
    inner = text[open_at + 1:]
    parts: list[str] = []
    depth, cur = 0, []
    for ch in inner:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    current = "".join(cur)
    positional = sum(1 for p in parts if "=" not in _top(p))
    given = tuple(_top(p).split("=", 1)[0].strip() for p in parts if "=" in _top(p))
    kwarg = None
    top = _top(current)
    if "=" in top:
        kwarg = top.split("=", 1)[0].strip() or None
    m = re.search(r"[A-Za-z_][A-Za-z0-9_.]*$", current)
    prefix = m.group() if m and (m.start() == 0 or not current[m.start() - 1].isdigit()) else ""
    return CallContext(name, name_start, positional, given, kwarg, nested, prefix)


def _top(part: str) -> str:
    """The characters of an argument at bracket depth 0 (so ``[a=1]`` is not a keyword)."""
    out, depth = [], 0
    for ch in part:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def chain_slot(line: str, col: int) -> str | None:
    """Whether the identifier being typed at ``col`` stands where a step of a chain goes.

    ``"arrow"`` after ``→``/``->``; ``"start"`` at the beginning of a value or of a
    list item (the caller checks with :func:`in_chain_value` that the key holds a chain);
    None elsewhere (inside a call, after a step without an arrow, in a comment).
    """
    start, _, _ = word_at(line, col)
    before = line[:start].rstrip(" \t")
    if re.search(r"(^|\s)#", _mask_strings(before)):
        return None  # in a comment
    bare = before.rstrip("\"'")  # a quoted chain: `model: "Conv2D(32, 3) → |`
    if bare.endswith(("→", "->")):
        return "arrow"
    if not before or before.endswith((":", "-", '"', "'")):
        return "start"
    return None


def key_path(lines: list[str], line_no: int, col: int | None = None) -> list[str]:
    """The YAML mapping keys enclosing ``lines[line_no]`` (block style, by indentation).

    With ``col``, a key written on the line itself counts only when ``col`` is past its colon.
    """
    path: list[str] = []
    limit: int | None = None
    for n in range(min(line_no, len(lines) - 1), -1, -1):
        text = lines[n]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        m = _KEY_LINE.match(text)
        indent = len(text) - len(text.lstrip(" \t-"))
        if n == line_no:
            if m and (col is None or col > m.end() - 1):
                path.append(_key(m))
                limit = len(m.group("indent"))
            else:
                limit = len(text) - len(text.lstrip(" \t"))
                if text.lstrip().startswith("-"):
                    limit = indent  # a list item's content; its parent key is less indented
            continue
        if m is None:
            continue
        key_indent = len(m.group("indent"))
        if limit is None or key_indent < limit:
            path.append(_key(m))
            limit = key_indent
            if key_indent == 0:
                break
    return path[::-1]


def _key(m: re.Match) -> str:
    """A key as it appears in a path; a key opening a list item (``- Conv2D: {...}``) is marked ``-``."""
    key = _unquote(m.group("key"))
    return "-" + key if "-" in m.group("indent") else key


def _unquote(key: str) -> str:
    key = key.strip()
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "'\"":
        return key[1:-1]
    return key


def in_chain_value(path: list[str]) -> bool:
    """Whether a value at YAML ``path`` is a chain (a model, a model's node, a block or a block's node)."""
    if not path or path[-1].startswith("-"):
        return False  # no key, or a long-form step whose value holds arguments
    if path[0] == "model":
        return len(path) <= 2
    if path[0] == "blocks":
        return 2 <= len(path) <= 3
    if path[0] == "models":
        return len(path) in (3, 4) and path[2] == "model"
    return False
