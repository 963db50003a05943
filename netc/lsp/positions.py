"""Positions in one document text, in the two coordinate systems the server meets.

netc spans are 1-based (line, column) in code points, counted on the text the
YAML loader sees: a leading BOM dropped, ``\\r\\n`` and ``\\r`` folded to ``\\n``, and
``\\x85``, U+2028, U+2029 counted as line breaks (as PyYAML does). LSP positions are
0-based (line, character) where only ``\\n``, ``\\r\\n`` and ``\\r`` end a line and the
character is counted in the negotiated encoding's code units (UTF-16 unless the
client offers another): ``→`` is one UTF-16 unit, an emoji two.

Both map through an offset into the original text, so every conversion is exact,
whatever line breaks or characters the document holds.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right

from netc.diagnostics import Span

__all__ = ["TextIndex", "apply_change", "units"]

_LSP_BREAK = re.compile(r"\r\n|\r|\n")
_NETC_BREAK = re.compile("[\n\x85\u2028\u2029]")

Pos = tuple[int, int]  # LSP (line, character), 0-based


def units(s: str, encoding: str = "utf-16") -> int:
    """Length of ``s`` in code units of ``encoding`` (lone surrogates count as one UTF-16 unit)."""
    if encoding == "utf-32":
        return len(s)
    if encoding == "utf-8":
        return len(s.encode("utf-8", "surrogatepass"))
    if s.isascii():
        return len(s)
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def _index_of_units(line: str, n: int, encoding: str) -> int:
    """Code-point index in ``line`` reached after ``n`` code units (clamped; rounds down inside a character)."""
    if n <= 0:
        return 0
    if encoding == "utf-32" or line.isascii():
        return min(n, len(line))
    count = 0
    for i, ch in enumerate(line):
        w = units(ch, encoding)
        if count + w > n:
            return i
        count += w
    return len(line)


class TextIndex:
    """Converts between offsets, LSP positions and netc (line, col) for one text."""

    def __init__(self, text: str, encoding: str = "utf-16"):
        self.text = text
        self.encoding = encoding
        # LSP lines: start offsets, and each line's end before its break.
        self._starts = [0]
        self._ends: list[int] = []
        for m in _LSP_BREAK.finditer(text):
            self._ends.append(m.start())
            self._starts.append(m.end())
        self._ends.append(len(text))
        # The loader's normalised text: offsets shift by the BOM and by each folded \r\n.
        self._bom = 1 if text.startswith("\ufeff") else 0
        body = text[self._bom:]
        self._crlf_norm: list[int] = []  # normalised offset of each folded \r\n's single \n
        self._crlf_orig: list[int] = []  # original offset of its \r
        if "\r\n" in body:
            for k, m in enumerate(re.finditer("\r\n", body)):
                self._crlf_norm.append(m.start() - k)
                self._crlf_orig.append(m.start() + self._bom)
            norm = body.replace("\r\n", "\n").replace("\r", "\n")
        else:
            norm = body.replace("\r", "\n") if "\r" in body else body
        self.normalised = norm
        self._netc_starts = [0]
        self._netc_starts.extend(m.end() for m in _NETC_BREAK.finditer(norm))

    # ------------------------------------------------------------------ lines
    @property
    def line_count(self) -> int:
        """Number of LSP lines (a final line without a break counts, even if empty)."""
        return len(self._starts)

    def line(self, n: int) -> str:
        """The text of LSP line ``n`` (0-based) without its break; '' past the end."""
        if not 0 <= n < len(self._starts):
            return ""
        return self.text[self._starts[n]:self._ends[n]]

    def netc_lines(self) -> list[str]:
        """The lines as the loader counts them (1-based line k is element k - 1)."""
        s = self._netc_starts
        return [self.normalised[s[i]:(s[i + 1] - 1 if i + 1 < len(s) else len(self.normalised))]
                for i in range(len(s))]

    # ------------------------------------------------------------------ offsets ↔ LSP
    def offset(self, line: int, character: int) -> int:
        """Original-text offset of an LSP position (clamped to the document and to the line's end)."""
        if line < 0:
            return 0
        if line >= len(self._starts):
            return len(self.text)
        start, end = self._starts[line], self._ends[line]
        return start + _index_of_units(self.text[start:end], character, self.encoding)

    def position(self, offset: int) -> Pos:
        """LSP position of an original-text offset."""
        offset = min(max(offset, 0), len(self.text))
        line = bisect_right(self._starts, offset) - 1
        start = self._starts[line]
        offset = min(offset, self._ends[line])  # inside a \r\n: the end of the line
        return line, units(self.text[start:offset], self.encoding)

    # ------------------------------------------------------------------ offsets ↔ netc
    def _orig_of_norm(self, n: int) -> int:
        return n + self._bom + bisect_left(self._crlf_norm, n)

    def _norm_of_orig(self, o: int) -> int:
        return max(0, o - self._bom - bisect_left(self._crlf_orig, o - 1))

    def netc_offset(self, line: int, col: int) -> int:
        """Original-text offset of a netc (line, col), clamped to the end of that line."""
        s = self._netc_starts
        line = min(max(line, 1), len(s))
        start = s[line - 1]
        end = s[line] - 1 if line < len(s) else len(self.normalised)
        return self._orig_of_norm(min(start + max(col, 1) - 1, end))

    def netc_linecol(self, offset: int) -> tuple[int, int]:
        """netc (line, col) of an original-text offset."""
        n = min(self._norm_of_orig(min(max(offset, 0), len(self.text))), len(self.normalised))
        i = bisect_right(self._netc_starts, n) - 1
        return i + 1, n - self._netc_starts[i] + 1

    # ------------------------------------------------------------------ conveniences
    def span_range(self, span: Span) -> tuple[Pos, Pos]:
        """LSP (start, end) of a netc span of this text; never inverted."""
        a = self.netc_offset(span.line, span.col)
        b = self.netc_offset(span.end_line, span.end_col)
        return self.position(a), self.position(max(a, b))

    def to_netc(self, line: int, character: int) -> tuple[int, int]:
        """netc (line, col) of an LSP position."""
        return self.netc_linecol(self.offset(line, character))


def apply_change(text: str, start: Pos | None, end: Pos | None, new: str, encoding: str = "utf-16") -> str:
    """The text after one ``didChange`` content change (no range: the whole text is replaced)."""
    if start is None or end is None:
        return new
    idx = TextIndex(text, encoding)
    a, b = idx.offset(*start), idx.offset(*end)
    if b < a:
        a, b = b, a
    return text[:a] + new + text[b:]
