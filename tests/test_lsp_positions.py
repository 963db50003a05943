"""LSP positions: 0-based, UTF-16 code units, only \\n, \\r\\n, \\r end a line; netc spans are 1-based
code points on the loader's text. Incremental edits land exactly where an editor put them."""

from __future__ import annotations

import random

import pytest

from netc.diagnostics import Span
from netc.lsp.documents import Document, uri_to_path
from netc.lsp.positions import TextIndex, apply_change, units


def test_units_by_encoding():
    assert units("→") == 1 and units("😀") == 2 and units("a😀b") == 4
    assert units("😀", "utf-32") == 1 and units("😀", "utf-8") == 4 and units("→", "utf-8") == 3
    assert units("\ud800") == 1  # a lone surrogate (invalid text a client may still send)


def test_span_to_lsp_range_counts_utf16_units():
    text = "model: A → 😀B → Dense(10)\n"
    idx = TextIndex(text)
    col = text.index("Dense") + 1  # netc: 1-based code points
    (l1, c1), (l2, c2) = idx.span_range(Span("f", 1, col, 1, col + 9))
    # "model: A → " is 11 units, the emoji 2, "B → " 4
    assert (l1, c1, l2, c2) == (0, 17, 0, 26)
    assert idx.to_netc(0, 17) == (1, col)
    assert TextIndex(text, "utf-32").span_range(Span("f", 1, col, 1, col + 9)) == ((0, 16), (0, 25))


def test_line_breaks_the_loader_counts_but_lsp_does_not():
    # PyYAML counts U+2028 and \x85 as line breaks, LSP does not; \r\n is one break for both.
    text = "\ufeffa: 1\r\nb: x\u2028y\x85z\r\nc: 😀"
    idx = TextIndex(text)
    assert idx.line_count == 3 and idx.line(1) == "b: x\u2028y\x85z"
    assert idx.netc_lines() == ["a: 1", "b: x", "y", "z", "c: 😀"]
    assert idx.span_range(Span("f", 3, 1, 3, 2)) == ((1, 5), (1, 6))  # "y"
    assert idx.span_range(Span("f", 5, 1, 5, 2)) == ((2, 0), (2, 1))  # "c"
    assert idx.span_range(Span("f", 1, 1, 1, 2)) == ((0, 1), (0, 2))  # after the BOM
    for off in range(len(text) + 1):
        line, col = idx.netc_linecol(off)
        back = idx.netc_offset(line, col)
        assert back == off or text[min(back, off):max(back, off)] in ("\ufeff", "\r", "\n", "\r\n")


def test_positions_are_clamped_never_raise():
    idx = TextIndex("ab\ncd")
    assert idx.offset(0, 99) == 2 and idx.offset(9, 0) == 5 and idx.offset(-1, 0) == 0
    assert idx.position(99) == (1, 2)
    assert idx.span_range(Span("f", 99, 99, 0, 0)) == ((1, 2), (1, 2))
    assert TextIndex("").span_range(Span("f", 1, 1, 1, 2)) == ((0, 0), (0, 0))


def test_a_position_inside_a_surrogate_pair_rounds_down():
    idx = TextIndex("x😀y")
    assert idx.offset(0, 2) == 1 and idx.offset(0, 3) == 2


# ------------------------------------------------------------------ incremental edits

def _reference(text: str, start: tuple[int, int], end: tuple[int, int], new: str) -> str:
    """An independent implementation of LSP's edit rule, for the property test below."""
    lines = []
    i = 0
    while i <= len(text):
        j = i
        while j < len(text) and text[j] not in "\r\n":
            j += 1
        lines.append((i, j))
        if j >= len(text):
            break
        i = j + (2 if text.startswith("\r\n", j) else 1)

    def off(p: tuple[int, int]) -> int:
        line, ch = p
        if line >= len(lines):
            return len(text)
        a, b = lines[line]
        n = 0
        for k in range(a, b):
            w = 2 if ord(text[k]) > 0xFFFF else 1
            if n + w > ch:
                return k
            n += w
        return b

    a, b = sorted((off(start), off(end)))
    return text[:a] + new + text[b:]


PIECES = ["→", "->", "Conv2D(", ")", ", ", "😀", "\n", "\r\n", "\r", "\u2028", "\x85", " ", "x", "é", "\t", ""]


def _random_pos(rng: random.Random, text: str) -> tuple[int, int]:
    idx = TextIndex(text)
    line = rng.randrange(idx.line_count + 1)
    return line, rng.randrange(units(idx.line(line)) + 3)


def test_random_incremental_edits_match_the_lsp_rule():
    rng = random.Random(7)
    doc = Document("file:///tmp/x.yaml", "model: Conv2D(8, 3) → ReLU\r\nname: é😀\n")
    expected = doc.text
    for _ in range(400):
        start, end = _random_pos(rng, expected), _random_pos(rng, expected)
        new = "".join(rng.choice(PIECES) for _ in range(rng.randrange(4)))
        expected = _reference(expected, start, end, new)
        doc.edit(start, end, new)
        assert doc.text == expected
        assert apply_change(doc.text, None, None, "whole") == "whole"


def test_full_change_replaces_the_text():
    doc = Document("file:///tmp/x.yaml", "a")
    doc.edit(None, None, "b\nc")
    assert doc.text == "b\nc" and doc.index.line_count == 2


@pytest.mark.parametrize("uri,path", [
    ("file:///work/specs/a%20b.yaml", "/work/specs/a b.yaml"),
    ("file:///C:/specs/x.yaml", "C:/specs/x.yaml"),
    ("untitled:Untitled-1", "untitled:Untitled-1"),
])
def test_uri_to_path(uri, path):
    assert uri_to_path(uri) == path
