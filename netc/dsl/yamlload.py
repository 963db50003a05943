"""Safe YAML loading that keeps a source position for every node.

Nothing is ever constructed from YAML tags: the node tree is built from
PyYAML's event stream with an explicit stack, plain scalars are typed by the
YAML 1.2 core schema, and every failure becomes a located ``SpecError`` of
kind ``yaml``. Size, nesting depth and alias expansion are bounded so a hostile
file cannot exhaust memory or the Python stack.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml

from netc.diagnostics import Span, SpecError

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "YMap",
    "YNode",
    "YScalar",
    "YSeq",
    "load_yaml",
    "node_at",
    "to_python",
]

MAX_BYTES = 2_000_000
MAX_DEPTH = 100
MAX_NODES = 200_000
MAX_DIGITS = 100  # digits of any integer in a spec (YAML scalars, chain literals, arithmetic results)

_Loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
# libyaml (PyYAML's C backend) has a nesting limit of its own (1000 levels in the libyaml of
# PyYAML 6.0.4's wheels) and reads up to 1024 characters of a line ahead before it hands over
# an event, so "[[[[…" on one line reaches libyaml's limit before netc sees its 101st level.
# Only a text with at least that many flow openers can reach it: such a text, when libyaml
# refuses it, is read again by the pure-Python parser, which has no limit of its own, so the
# error reported is netc's MAX_DEPTH (or the text's real mistake), whatever PyYAML is installed.
# Block nesting cannot reach libyaml's limit first: libyaml streams block events.
LIBYAML_MAX_NESTING = 1000

# Both PyYAML and libyaml count these as line breaks (after we fold \r\n and \r
# into \n), so line numbers computed here agree with the parser's marks.
_BREAKS = "\n\x85\u2028\u2029"
_BREAK_RE = re.compile("[\n\x85\u2028\u2029]")
_WS = " \t" + _BREAKS
# The characters PyYAML's reader refuses; checked up front for an exact location.
_NON_PRINTABLE = re.compile(
    "[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]"
)

_CONSTANTS: dict[str, bool | None] = {
    "": None, "~": None, "null": None, "Null": None, "NULL": None,
    "true": True, "True": True, "TRUE": True,
    "false": False, "False": False, "FALSE": False,
}
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)")
_MAYBE_TYPED = frozenset("-+.0123456789~nNtTfF")

_ESCAPES = {
    "0": "\0", "a": "\x07", "b": "\x08", "t": "\t", "\t": "\t", "n": "\n",
    "v": "\x0b", "f": "\x0c", "r": "\r", "e": "\x1b", " ": " ", '"': '"',
    "\\": "\\", "/": "/", "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029",
}
_ESCAPE_HEX = {"x": 2, "u": 4, "U": 8}
_TAG_TEXT = re.compile(r"![^\s,\[\]{}]*")


class _Source:
    """The normalised text of one file with its line-start offsets."""

    __slots__ = ("text", "starts")

    def __init__(self, text: str):
        self.text = text
        self.starts = [0]
        self.starts.extend(m.end() for m in _BREAK_RE.finditer(text))

    def index(self, line: int, col: int) -> int:
        """Offset of 1-based (line, col)."""
        line = min(max(line, 1), len(self.starts))
        return min(self.starts[line - 1] + col - 1, len(self.text))

    def linecol(self, index: int) -> tuple[int, int]:
        """1-based (line, col) of an offset."""
        index = min(max(index, 0), len(self.text))
        i = bisect_right(self.starts, index) - 1
        return i + 1, index - self.starts[i] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line without its break."""
        if not 1 <= line <= len(self.starts):
            return ""
        start = self.starts[line - 1]
        end = self.starts[line] - 1 if line < len(self.starts) else len(self.text)
        return self.text[start:end]


@dataclass(frozen=True, eq=False)
class YScalar:
    """A scalar with its typed value, its source span and its quoting style."""

    value: str | int | float | bool | None
    span: Span
    style: str | None = None
    # The scalar's string content before typing ("0x1F" for value 31).
    text: str = ""
    _src: _Source | None = field(default=None, repr=False)

    @property
    def _string(self) -> str:
        if self.text:
            return self.text
        return self.value if isinstance(self.value, str) else _canonical(self.value)

    def pos(self, offset: int) -> tuple[int, int]:
        """(line, col), 1-based, in the source of character ``offset`` of the string value."""
        s = self._string
        offset = min(max(offset, 0), len(s))
        span = self.span
        if self._src is None or (self.style is None and span.line == span.end_line):
            return span.line, span.col + offset
        # Computed on first use and cached: most scalars are never asked.
        posmap = self.__dict__.get("_posmap", False)
        if posmap is False:
            posmap = _align(self._src, s, self.style, span)
            object.__setattr__(self, "_posmap", posmap)
        if posmap is None:
            return span.line, span.col
        return self._src.linecol(posmap[offset])


@dataclass(frozen=True, eq=False)
class YMap:
    """A mapping with scalar keys in source order."""

    items: tuple[tuple[YScalar, YNode], ...]
    span: Span
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[str, int] = {}
        for i, (k, _) in enumerate(self.items):
            index.setdefault(_key_str(k), i)
        object.__setattr__(self, "_index", index)

    def get(self, key: str) -> YNode | None:
        """The value node under ``key``, or None."""
        i = self._index.get(key)
        return None if i is None else self.items[i][1]

    def key_node(self, key: str) -> YScalar | None:
        """The key node ``key`` itself (to point at a key), or None."""
        i = self._index.get(key)
        return None if i is None else self.items[i][0]


@dataclass(frozen=True, eq=False)
class YSeq:
    """A sequence of nodes."""

    items: tuple[YNode, ...]
    span: Span


YNode = YScalar | YMap | YSeq


def _canonical(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _key_str(key: YScalar) -> str:
    """The string a key is looked up by and appears as in ``to_python``."""
    if isinstance(key.value, str):
        return key.value
    return key.text or _canonical(key.value)


def _error(message: str, span: Span | None, hint: str | None, src: _Source | None) -> SpecError:
    return SpecError(message, span, hint, kind="yaml", source=src.text if src else None)


def _mark_span(file: str, mark: yaml.Mark, width: int = 1) -> Span:
    return Span.point(file, mark.line + 1, mark.column + 1, width)


# ---------------------------------------------------------------- scalars


def _resolve(text: str, span: Span, src: _Source) -> str | int | float | bool | None:
    """Type a plain scalar by the YAML 1.2 core schema."""
    if not text:
        return None
    if text[0] not in _MAYBE_TYPED:
        return text
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    if (_INT.fullmatch(text) or _OCT.fullmatch(text) or _HEX.fullmatch(text)) and len(text) > MAX_DIGITS + 2:
        # Bounded before converting: Python refuses decimal strings of more than 4300 digits, and a
        # long hex literal converts fine but then cannot be printed in decimal.
        raise _error(f"integer literal with {len(text):,} digits is too long; numbers are limited to "
                     f"{MAX_DIGITS} digits", span, "quote it if it is meant as a string", src)
    if _INT.fullmatch(text):
        return int(text)
    if _OCT.fullmatch(text):
        return int(text[2:], 8)
    if _HEX.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return float("-inf") if text[0] == "-" else float("inf")
    if _NAN.fullmatch(text):
        return float("nan")
    return text


def _content_start(src: _Source, index: int, end: int, anchor: str | None) -> int:
    """Skip a node's ``&anchor`` (and any spaces/comments after it) to reach its text."""
    if not anchor:
        return index
    text = src.text
    i = index + 1 + len(anchor) if text.startswith("&", index) else index
    while i < end:
        if text[i] in _WS:
            i += 1
        elif text[i] == "#":
            m = _BREAK_RE.search(text, i)
            i = m.end() if m else end
        else:
            break
    return min(i, end)


def _scalar(ev: yaml.ScalarEvent, file: str, src: _Source) -> YScalar:
    style = ev.style or None  # libyaml reports plain as "" where PyYAML says None
    sm, em = ev.start_mark, ev.end_mark
    if ev.anchor:
        end = src.index(em.line + 1, em.column + 1)
        start = _content_start(src, src.index(sm.line + 1, sm.column + 1), end, ev.anchor)
        line, col = src.linecol(start)
    else:
        line, col = sm.line + 1, sm.column + 1
    span = Span(file, line, col, em.line + 1, em.column + 1)
    value = ev.value if style is not None else _resolve(ev.value, span, src)
    return YScalar(value, span, style, ev.value, src)


def _escape(text: str, j: int, stop: int) -> tuple[str, int] | None:
    """(produced text, source length) of the double-quoted escape at ``text[j]``."""
    if j + 1 >= stop:
        return None
    e = text[j + 1]
    if e in _ESCAPES:
        return _ESCAPES[e], 2
    if e in _ESCAPE_HEX:
        n = _ESCAPE_HEX[e]
        try:
            return chr(int(text[j + 2:j + 2 + n], 16)), 2 + n
        except ValueError:
            return None
    if e in _BREAKS:
        # An escaped line break joins the lines; the next line's indent is dropped.
        k = j + 2
        while k < stop and text[k] in " \t":
            k += 1
        return "", k - j
    return None


def _align(src: _Source, value: str, style: str | None, span: Span) -> list[int] | None:
    """Source offset of every character of ``value`` (plus one past the end), or None.

    Scalar text differs from its source only by folded/dropped whitespace,
    quote doubling, escapes and block indentation, so walking both in step is
    exact for every non-whitespace character; whitespace produced by folding is
    placed at the line break it came from. Any disagreement returns None.
    """
    text = src.text
    start = src.index(span.line, span.col)
    stop = src.index(span.end_line, span.end_col)
    block = style in ("|", ">")
    indent = 0
    if style in ("'", '"'):
        start, stop = start + 1, stop - 1
    elif block:
        m = _BREAK_RE.search(text, start, stop)
        start = m.end() if m else stop
        lines = [ln for ln in _BREAK_RE.split(text[start:stop]) if ln.strip(" ")]
        indent = min((len(ln) - len(ln.lstrip(" ")) for ln in lines), default=0)
    out: list[int] = []
    i, j, n = 0, start, len(value)
    line_start = block
    while i < n:
        v = value[i]
        if j >= stop:
            if v not in _WS:
                return None
            out.append(stop)
            i += 1
            continue
        if line_start:
            k = 0
            while k < indent and j < stop and text[j] == " ":
                j, k = j + 1, k + 1
            line_start = False
            continue
        c = text[j]
        if style == '"' and c == "\\":
            esc = _escape(text, j, stop)
            if esc is None:
                return None
            produced, length = esc
            if produced:
                if produced != v:
                    return None
                out.append(j)
                i += 1
            j += length
        elif style == "'" and c == "'":
            if v != "'":
                return None
            out.append(j)
            i, j = i + 1, j + 2
        elif c == v or (c in _WS and v in _WS):
            out.append(j)
            i, j = i + 1, j + 1
            line_start = block and c in _BREAKS
        elif c in _WS:
            j += 1
            line_start = block and c in _BREAKS
        elif v in _WS:
            out.append(j)
            i += 1
        else:
            return None
    out.append(out[-1] + 1 if out else start)
    return out


# ---------------------------------------------------------------- tree building


class _Frame:
    """An open mapping or sequence while its events are being read."""

    __slots__ = ("is_map", "start", "anchor", "flow", "items", "key", "count",
                 "height", "end", "seen")

    def __init__(self, ev: yaml.CollectionStartEvent, is_map: bool):
        self.is_map = is_map
        self.start = ev.start_mark
        self.anchor: str | None = ev.anchor
        self.flow = bool(ev.flow_style)
        self.items: list = []
        self.key: YScalar | None = None  # a key waiting for its value
        self.count = 1  # nodes in this subtree, alias expansions included
        self.height = 1  # collection levels in this subtree
        self.end: tuple[int, int] | None = None
        self.seen: dict[object, YScalar] = {}


class _Builder:
    """Builds the node tree from parser events with an explicit stack (no recursion)."""

    def __init__(self, src: _Source, file: str):
        self.src = src
        self.file = file
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[YNode, int, int, int]] = {}  # node, count, height, line
        self.open_anchors: dict[str, int] = {}  # anchors on collections still being read
        self.total = 0
        self.docs = 0
        self.root: YNode | None = None

    def run(self, loader: type) -> YNode | None:
        """Consume the whole event stream of ``loader``'s parser and return the root node."""
        handlers = {
            yaml.ScalarEvent: self.scalar,
            yaml.AliasEvent: self.alias,
            yaml.MappingStartEvent: self.start,
            yaml.SequenceStartEvent: self.start,
            yaml.MappingEndEvent: self.end,
            yaml.SequenceEndEvent: self.end,
            yaml.DocumentStartEvent: self.document,
        }
        events = yaml.parse(self.src.text, Loader=loader)
        try:
            for ev in events:
                handler = handlers.get(type(ev))
                if handler is not None:
                    handler(ev)
        finally:
            events.close()
        root = self.root
        if isinstance(root, YScalar) and root.style is None and root.text == "":
            return None
        return root

    def error(self, message: str, span: Span, hint: str) -> SpecError:
        return _error(message, span, hint, self.src)

    def count(self, n: int, span: Span) -> None:
        self.total += n
        if self.total > MAX_NODES:
            raise self.error(f"the spec expands to more than {MAX_NODES} YAML nodes", span,
                             "aliases (*name) copy their whole anchored subtree; nested aliases "
                             "grow exponentially (a 'billion laughs' document)")

    def check_depth(self, depth: int, span: Span) -> None:
        if depth > MAX_DEPTH:
            raise self.error(f"YAML nesting is deeper than {MAX_DEPTH} levels", span,
                             "flatten the structure; a netc spec never needs this much nesting")

    def reject_tag(self, ev: yaml.NodeEvent) -> None:
        if ev.tag is None:
            return
        idx = self.src.index(ev.start_mark.line + 1, ev.start_mark.column + 1)
        m = _TAG_TEXT.match(self.src.text, idx)
        shown = m.group() if m else ev.tag
        raise self.error("tags are not allowed in netc specs",
                         _mark_span(self.file, ev.start_mark, len(shown)),
                         f"remove the tag {shown!r}; netc never constructs tagged objects, "
                         "write a plain value (quote it to force a string)")

    def define_anchor(self, ev: yaml.NodeEvent) -> None:
        name = ev.anchor
        first = self.anchors.get(name)
        line = first[3] if first else self.open_anchors.get(name)
        if line is not None:
            raise self.error(f"duplicate anchor &{name}",
                             _mark_span(self.file, ev.start_mark, len(name) + 1),
                             f"first defined at line {line}; give each anchor a unique name")

    def document(self, ev: yaml.DocumentStartEvent) -> None:
        self.docs += 1
        if self.docs > 1:
            raise self.error("one YAML document per spec file",
                             _mark_span(self.file, ev.start_mark, 3),
                             "remove the '---' and everything after it, or move the second "
                             "document to its own spec file")

    def scalar(self, ev: yaml.ScalarEvent) -> None:
        self.reject_tag(ev)
        node = _scalar(ev, self.file, self.src)
        self.count(1, node.span)
        if ev.anchor:
            self.define_anchor(ev)
            self.anchors[ev.anchor] = (node, 1, 0, node.span.line)
        self.attach(node, node.span, 1, 0)

    def alias(self, ev: yaml.AliasEvent) -> None:
        sm, em = ev.start_mark, ev.end_mark
        span = Span(self.file, sm.line + 1, sm.column + 1, em.line + 1, em.column + 1)
        name = ev.anchor
        if name in self.open_anchors:
            raise self.error(f"alias *{name} refers to a node that contains it", span,
                             "recursive structures are not allowed")
        entry = self.anchors.get(name)
        if entry is None:
            raise self.error(f"undefined alias *{name}", span,
                             f"define the anchor &{name} before this alias")
        node, count, height, _ = entry
        self.count(count, span)
        self.check_depth(len(self.stack) + height, span)
        self.attach(node, span, count, height)

    def start(self, ev: yaml.CollectionStartEvent) -> None:
        span = _mark_span(self.file, ev.start_mark)
        self.reject_tag(ev)
        stack = self.stack
        if stack and stack[-1].is_map and stack[-1].key is None:
            raise self.error("complex mapping keys are not supported", span,
                             "use a plain string as the key")
        self.check_depth(len(stack) + 1, span)
        self.count(1, span)
        if ev.anchor:
            self.define_anchor(ev)
            self.open_anchors[ev.anchor] = span.line
        stack.append(_Frame(ev, type(ev) is yaml.MappingStartEvent))

    def end(self, ev: yaml.CollectionEndEvent) -> None:
        f = self.stack.pop()
        # A block collection's end event sits at the next token, often lines later
        # and after comments; its last child is the honest end.
        end = f.end if not f.flow and f.end else (ev.end_mark.line + 1, ev.end_mark.column + 1)
        span = Span(self.file, f.start.line + 1, f.start.column + 1, *end)
        node: YNode = YMap(tuple(f.items), span) if f.is_map else YSeq(tuple(f.items), span)
        if f.anchor:
            del self.open_anchors[f.anchor]
            self.anchors[f.anchor] = (node, f.count, f.height, span.line)
        self.attach(node, span, f.count, f.height)

    def attach(self, node: YNode, span: Span, count: int, height: int) -> None:
        """Add a finished node (or alias use at ``span``) to the open collection."""
        if not self.stack:
            self.root = node
            return
        parent = self.stack[-1]
        parent.count += count
        parent.height = max(parent.height, height + 1)
        parent.end = (span.end_line, span.end_col)
        if not parent.is_map:
            parent.items.append(node)
        elif parent.key is not None:
            parent.items.append((parent.key, node))
            parent.key = None
        else:
            self.add_key(parent, node, span)

    def add_key(self, f: _Frame, key: YNode, span: Span) -> None:
        if not isinstance(key, YScalar):
            raise self.error("complex mapping keys are not supported", span,
                             "use a plain string as the key")
        if key.style is None and key.text == "<<":
            raise self.error("merge keys ('<<') are not supported", span,
                             "write the keys out, or use an alias (*name) as the whole value")
        # Keys are compared both as written and by typed value (true == True, 0x1F == 31).
        ids: list[object] = [("s", _key_str(key))]
        if not isinstance(key.value, str):
            ids.append(("t", type(key.value), key.value))
        for ident in ids:
            first = f.seen.get(ident)
            if first is not None:
                raise self.error(f"duplicate key {_key_str(key)!r}", span,
                                 f"first defined at line {first.span.line}; "
                                 "each key may appear only once in a mapping")
        for ident in ids:
            f.seen[ident] = key
        f.key = key


# ---------------------------------------------------------------- entry points


def _syntax_hint(problem: str, line_text: str, at: str) -> str:
    if at == "\t" or "\\t" in problem or "\t" in line_text[: len(line_text) - len(line_text.lstrip())]:
        return "use spaces, not tabs, to indent YAML"
    if "quoted scalar" in problem or "end of stream" in problem:
        return "check for an unclosed quote or bracket"
    if "expected ',' or ']'" in problem or "',' or '}'" in problem:
        return "check for a missing comma or an unclosed bracket"
    if "mapping values are not allowed" in problem or "expected ':'" in problem:
        return ("check the indentation, and quote values that contain ': ' "
                "(a colon followed by a space)")
    if "block end" in problem or "block mapping" in problem or "block collection" in problem:
        return "check the indentation of this line against the lines above it"
    if "cannot start any token" in problem:
        return "quote values that start with '@', '`', '%', '|', '>' or similar characters"
    return "check the YAML syntax here: indentation, colons, quotes and brackets"


def _yaml_error(err: yaml.YAMLError, src: _Source, file: str) -> SpecError:
    """Translate a PyYAML exception into a located SpecError."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    if mark is not None:
        line, col = mark.line + 1, mark.column + 1
    elif isinstance(err, yaml.reader.ReaderError):
        line, col = src.linecol(err.position)
    else:
        line, col = 1, 1
    problem = str(getattr(err, "problem", None) or getattr(err, "reason", None) or "invalid YAML")
    context = getattr(err, "context", None)
    message = f"invalid YAML: {problem}"
    line_text = src.line_text(line)
    at = line_text[col - 1: col]
    hint = _syntax_hint(problem, line_text, at)
    ctx_mark = getattr(err, "context_mark", None)
    if context and ctx_mark is not None and ctx_mark is not mark and "next token" not in context:
        hint += f" ({context} from line {ctx_mark.line + 1})"
    return _error(message, Span.point(file, line, col), hint, src)


def _decode(data: str | bytes, file: str) -> str:
    if isinstance(data, bytes):
        size = len(data)
    else:
        size = len(data.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise SpecError(f"spec file is too large: {size} bytes (limit {MAX_BYTES} bytes)",
                        Span.point(file, 1, 1),
                        "a netc spec is a small text file; check that the right file was given",
                        kind="yaml")
    if isinstance(data, str):
        return data[1:] if data.startswith("\ufeff") else data
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        prefix = data[: e.start].decode("utf-8")
        line = prefix.count("\n") + 1
        col = len(prefix) - (prefix.rfind("\n") + 1) + 1
        raise SpecError(f"invalid UTF-8 byte 0x{data[e.start]:02x}", Span.point(file, line, col),
                        "save the spec file with UTF-8 encoding", kind="yaml",
                        source=data.decode("utf-8", "replace")) from None


def _parse(src: _Source, file: str) -> YNode | None:
    try:
        return _Builder(src, file).run(_Loader)
    except yaml.YAMLError:
        text = src.text
        if _Loader is yaml.SafeLoader or text.count("[") + text.count("{") < LIBYAML_MAX_NESTING:
            raise  # libyaml cannot have reached its own limit: the error is the text's
    return _Builder(src, file).run(yaml.SafeLoader)


def load_yaml(data: str | bytes, file: str = "<string>") -> YNode | None:
    """Parse one YAML document into positioned nodes; None for an empty document."""
    text = _decode(data, file)
    # YAML folds every line break to \n in values, so this changes no value and no
    # line/column, and lets positions be computed with a single break character.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    src = _Source(text)
    bad = _NON_PRINTABLE.search(text)
    if bad:
        line, col = src.linecol(bad.start())
        raise _error(f"character U+{ord(bad.group()):04X} is not allowed in YAML",
                     Span.point(file, line, col),
                     "remove the control character; a spec must be plain text", src)
    try:
        return _parse(src, file)
    except yaml.YAMLError as e:
        raise _yaml_error(e, src, file) from None
    except (RecursionError, MemoryError):
        raise _error("the YAML document is too large or too deeply nested to load",
                     Span.point(file, 1, 1), "simplify the spec", src) from None


def to_python(node: YNode | None) -> object:
    """Plain dicts, lists and scalars (mapping keys as strings), e.g. for jsonschema."""
    holder: list[object] = [None]
    todo: list[tuple[YNode | None, list | dict, int | str]] = [(node, holder, 0)]
    while todo:
        n, into, slot = todo.pop()
        if isinstance(n, YMap):
            d: dict[str, object] = {}
            for k, v in n.items:
                key = _key_str(k)
                d[key] = None
                todo.append((v, d, key))
            into[slot] = d
        elif isinstance(n, YSeq):
            lst: list[object] = [None] * len(n.items)
            todo.extend((v, lst, i) for i, v in enumerate(n.items))
            into[slot] = lst
        else:
            into[slot] = None if n is None else n.value
    return holder[0]


def node_at(root: YNode, path: Sequence[str | int]) -> YNode:
    """The deepest node reached by following ``path`` (map keys / sequence indices)."""
    node = root
    for step in path:
        child: YNode | None = None
        if isinstance(node, YMap) and not isinstance(step, bool):
            child = node.get(step if isinstance(step, str) else str(step))
        elif isinstance(node, YSeq) and isinstance(step, int) and not isinstance(step, bool):
            if 0 <= step < len(node.items):
                child = node.items[step]
        if child is None:
            break
        node = child
    return node
