"""Tests for the positioned, safe YAML loader (netc.dsl.yamlload)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netc.diagnostics import SpecError
from netc.dsl import yamlload as Y
from netc.dsl.yamlload import YMap, YScalar, YSeq, load_yaml, node_at, to_python

LOADERS = {"pure": yaml.SafeLoader}
if getattr(yaml, "CSafeLoader", None) is not None:
    LOADERS["libyaml"] = yaml.CSafeLoader

HYPO = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True, params=sorted(LOADERS))
def loader(request, monkeypatch):
    """Run every test against libyaml and against pure-Python PyYAML."""
    monkeypatch.setattr(Y, "_Loader", LOADERS[request.param])
    return request.param


def err(src: str | bytes, file: str = "spec.yaml") -> SpecError:
    with pytest.raises(SpecError) as info:
        load_yaml(src, file)
    e = info.value
    assert e.diagnostics[0].kind == "yaml"
    assert e.span is not None and e.span.file == file
    return e


def where(e: SpecError) -> tuple[int, int]:
    return e.span.line, e.span.col


def char_at(src: str, pos: tuple[int, int]) -> str:
    line, col = pos
    return src.split("\n")[line - 1][col - 1]


# ---------------------------------------------------------------- structure and typing


def test_nested_structure_to_python():
    src = "name: m\nlayers:\n  - {op: dense, units: 3}\n  - [1, 2.5, true, null]\nempty: {}\n"
    root = load_yaml(src)
    assert isinstance(root, YMap)
    assert to_python(root) == {
        "name": "m",
        "layers": [{"op": "dense", "units": 3}, [1, 2.5, True, None]],
        "empty": {},
    }
    assert isinstance(root.get("layers"), YSeq)


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), ("True", True), ("TRUE", True),
    ("false", False), ("False", False), ("FALSE", False),
    ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"), ("y", "y"), ("n", "n"),
    ("null", None), ("Null", None), ("NULL", None), ("~", None), ("", None),
    ("0", 0), ("42", 42), ("-7", -7), ("+3", 3), ("007", 7), ("0o17", 15), ("0x1F", 31),
    ("1e-3", 0.001), ("1.5", 1.5), ("-2.5E+3", -2500.0), (".5", 0.5), ("1.", 1.0),
    (".inf", math.inf), ("-.inf", -math.inf), ("+.Inf", math.inf),
    ("1_000", "1_000"), ("1:30", "1:30"), ("2024-01-01", "2024-01-01"),
    ("0b101", "0b101"), ("0x", "0x"), ("1e3x", "1e3x"), ("TrUe", "TrUe"), ("-x", "-x"), ("+", "+"),
])
def test_core_schema_typing_of_plain_scalars(text, expected):
    node = load_yaml(f"k: {text}\n").get("k")
    assert type(node.value) is type(expected)
    assert node.value == expected
    assert node.style is None


def test_nan():
    for text in (".nan", ".NaN", ".NAN"):
        assert math.isnan(load_yaml(f"k: {text}").get("k").value)


def test_quoted_and_block_scalars_are_strings():
    src = "a: '1'\nb: \"true\"\nc: |\n  null\nd: >\n  3\ne: ''\n"
    root = load_yaml(src)
    assert to_python(root) == {"a": "1", "b": "true", "c": "null\n", "d": "3\n", "e": ""}
    assert [root.get(k).style for k in "abcde"] == ["'", '"', "|", ">", "'"]


def test_non_string_keys_become_their_source_text():
    root = load_yaml("1: a\ntrue: b\n0x1F: c\n~: d\n")
    assert to_python(root) == {"1": "a", "true": "b", "0x1F": "c", "~": "d"}
    assert root.key_node("0x1F").value == 31
    assert root.get("true").value == "b"


def test_huge_integer_is_a_located_error():
    e = err("a: 1\nb: " + "9" * 5000 + "\n")
    assert where(e) == (2, 4)
    assert "too long" in e.diagnostics[0].message


def test_empty_documents_are_none():
    assert load_yaml("") is None
    assert load_yaml("# only a comment\n") is None
    assert load_yaml("---\n") is None
    node = load_yaml("~")
    assert isinstance(node, YScalar) and node.value is None
    assert load_yaml("''").value == ""


# ---------------------------------------------------------------- spans


def test_scalar_map_and_seq_spans():
    src = "model: Conv2D(32, 3) → ReLU\nlist: [a, bb]\nblock:\n  - x\n  - yy\n\n# trailing\n"
    root = load_yaml(src, "f.yaml")
    assert (root.span.line, root.span.col) == (1, 1)
    key = root.key_node("model")
    assert (key.span.line, key.span.col, key.span.end_line, key.span.end_col) == (1, 1, 1, 6)
    val = root.get("model")
    assert val.span.file == "f.yaml"
    assert (val.span.line, val.span.col) == (1, 8)
    assert val.span.end_col == val.span.col + len(val.value)  # characters, not bytes
    flow = root.get("list")
    assert (flow.span.line, flow.span.col, flow.span.end_line, flow.span.end_col) == (2, 7, 2, 14)
    bb = flow.items[1]
    assert (bb.span.col, bb.span.end_col) == (11, 13)
    block = root.get("block")
    # A block collection ends at its last child, not at the next token lines later.
    assert (block.span.line, block.span.col, block.span.end_line, block.span.end_col) == (4, 3, 5, 7)
    assert (root.span.end_line, root.span.end_col) == (5, 7)


def test_anchored_scalar_span_starts_at_its_text():
    root = load_yaml("a: &anc hello world\nb: *anc\n")
    node = root.get("a")
    assert (node.span.col, node.span.end_col) == (9, 20)
    assert node.pos(6) == (1, 15)
    assert root.get("b") is node


def test_map_get_and_key_node():
    root = load_yaml("a: 1\nb: [2]\n")
    assert root.get("a").value == 1
    assert root.key_node("b").span.line == 2
    assert root.get("zzz") is None and root.key_node("zzz") is None


# ---------------------------------------------------------------- safety


@pytest.mark.parametrize(("src", "tag", "line", "col"), [
    ("a: !!python/object/apply:os.system ['echo pwned']\n", "!!python/object/apply:os.system", 1, 4),
    ("a: !!python/name:os.system\n", "!!python/name:os.system", 1, 4),
    ("x:\n  y: !foo bar\n", "!foo", 2, 6),
    ("a: !!binary aGVsbG8=\n", "!!binary", 1, 4),
    ("a: !!str 3\n", "!!str", 1, 4),
    ("a: !!map {b: 1}\n", "!!map", 1, 4),
    ("- ! plain\n", "!", 1, 3),
    ("%TAG !e! tag:example.com,2000:\n---\na: !e!thing 1\n", "!e!thing", 3, 4),
])
def test_every_tag_is_rejected_at_the_node(src, tag, line, col):
    e = err(src)
    assert "tags are not allowed in netc specs" in e.diagnostics[0].message
    assert where(e) == (line, col)
    assert tag in e.hint


def test_tagged_object_is_never_constructed(monkeypatch):
    called = []
    monkeypatch.setattr("os.system", lambda *a: called.append(a))
    err("a: !!python/object/apply:os.system ['echo pwned']\n")
    assert called == []


def test_duplicate_key_located_at_second_occurrence():
    e = err("a: 1\nb:\n  c: 2\n  d: 3\n  c: 4\n")
    assert where(e) == (5, 3)
    assert "duplicate key 'c'" in e.diagnostics[0].message
    assert "line 3" in e.hint


def test_duplicate_keys_compare_typed_values():
    assert where(err("true: 1\nTrue: 2\n")) == (2, 1)
    assert where(err("0x1F: 1\n31: 2\n")) == (2, 1)
    assert to_python(load_yaml("1: a\n'1.0': b\n")) == {"1": "a", "1.0": "b"}


def test_same_key_in_different_maps_is_fine():
    assert to_python(load_yaml("a: {x: 1}\nb: {x: 2}\n")) == {"a": {"x": 1}, "b": {"x": 2}}


def test_alias_reuses_anchored_subtree():
    root = load_yaml("base: &b {act: relu, units: 8}\nother: *b\n")
    assert root.get("other") is root.get("base")
    assert to_python(root)["other"] == {"act": "relu", "units": 8}


def test_billion_laughs_is_stopped():
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    e = err("\n".join(lines) + "\n")
    assert f"more than {Y.MAX_NODES}" in e.diagnostics[0].message
    assert e.span.line <= len(lines) and "alias" in e.hint


def test_node_limit_counts_alias_expansions(monkeypatch):
    monkeypatch.setattr(Y, "MAX_NODES", 16)
    load_yaml("a: &a [1, 2, 3, 4]\nb: *a\n")  # map 1, keys 2, seq 5, alias 5: 13 nodes
    e = err("a: &a [1, 2, 3, 4]\nb: *a\nc: *a\n")
    assert where(e) == (3, 4)


def test_node_limit_without_aliases(monkeypatch):
    monkeypatch.setattr(Y, "MAX_NODES", 50)
    e = err("[" + ", ".join(["x"] * 60) + "]")
    assert e.span.line == 1 and "more than 50" in e.diagnostics[0].message


def test_undefined_recursive_and_duplicate_anchors():
    e = err("a: *nope\n")
    assert where(e) == (1, 4) and "undefined alias *nope" in e.diagnostics[0].message
    e = err("a: &x [1, *x]\n")
    assert where(e) == (1, 11)
    e = err("a: &x 1\nb: &x 2\n")
    assert where(e) == (2, 4) and "line 1" in e.hint


def test_merge_key_is_rejected():
    e = err("base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n")
    assert where(e) == (3, 3)
    assert "merge keys" in e.diagnostics[0].message
    assert to_python(load_yaml("'<<': 1\n")) == {"<<": 1}


@pytest.mark.parametrize("src", ["? [a, b]\n: 1\n", "{[a]: 1}\n", "? {x: 1}\n: 2\n",
                                 "s: &s [1]\n? *s\n: 2\n"])
def test_complex_key_is_rejected(src):
    e = err(src)
    assert "complex mapping keys" in e.diagnostics[0].message


def test_too_large_input_is_refused_before_parsing(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("parsed")

    monkeypatch.setattr(yaml, "parse", boom)
    big = "a: " + "x" * Y.MAX_BYTES + "\n"
    for data in (big, big.encode()):
        e = err(data)
        msg = e.diagnostics[0].message
        assert str(len(big)) in msg and str(Y.MAX_BYTES) in msg


def test_size_limit_counts_utf8_bytes(monkeypatch):
    monkeypatch.setattr(Y, "MAX_BYTES", 10)
    load_yaml("a: " + "x" * 7)
    e = err("a: " + "→" * 3)  # 3 + 9 bytes
    assert "12 bytes" in e.diagnostics[0].message


def test_10000_deep_flow_nesting_is_a_clean_error():
    e = err("[" * 10_000 + "]" * 10_000)
    assert where(e) == (1, Y.MAX_DEPTH + 1)
    assert "deeper than" in e.diagnostics[0].message


def test_10000_deep_block_nesting_is_a_clean_error():
    e = err("- " * 10_000 + "x\n")
    assert e.span.line == 1 and "deeper than" in e.diagnostics[0].message


def test_depth_limit_is_exact():
    ok = load_yaml("[" * Y.MAX_DEPTH + "]" * Y.MAX_DEPTH)
    assert isinstance(ok, YSeq)
    err("[" * (Y.MAX_DEPTH + 1) + "]" * (Y.MAX_DEPTH + 1))


def test_depth_limit_includes_alias_expansion():
    half = Y.MAX_DEPTH // 2 + 1
    src = "a: &a " + "[" * half + "]" * half + "\nb: " + "[" * half + "*a" + "]" * half + "\n"
    e = err(src)
    assert e.span.line == 2 and "deeper than" in e.diagnostics[0].message


def test_recursion_and_memory_errors_become_spec_errors(monkeypatch):
    for exc in (RecursionError, MemoryError):
        def fail(*a, exc=exc):
            raise exc()

        monkeypatch.setattr(Y._Builder, "run", fail)
        assert where(err("a: 1\n")) == (1, 1)


# ---------------------------------------------------------------- encodings and syntax


def test_bytes_with_utf8_bom():
    root = load_yaml("\ufeffa: →b\n".encode())
    assert to_python(root) == {"a": "→b"}
    assert (root.key_node("a").span.line, root.key_node("a").span.col) == (1, 1)


def test_str_with_bom():
    root = load_yaml("\ufeffa: 1\n")
    assert to_python(root) == {"a": 1}
    assert root.key_node("a").span.col == 1


def test_invalid_utf8_is_located():
    e = err(b"a: 1\nb: x\xffy\n")
    assert where(e) == (2, 5)
    assert "0xff" in e.diagnostics[0].message and "UTF-8" in e.hint


def test_invalid_utf8_column_counts_characters():
    e = err("a: →→".encode() + b"\xc3(")
    assert where(e) == (1, 6)


def test_crlf_line_endings():
    src = "a: 1\r\nmodel: Dense(3) → ReLU\r\ntext: |\r\n  one\r\n  two\r\n"
    root = load_yaml(src.encode())
    assert to_python(root) == {"a": 1, "model": "Dense(3) → ReLU", "text": "one\ntwo\n"}
    model = root.get("model")
    assert (model.span.line, model.span.col, model.span.end_col) == (2, 8, 23)
    assert model.pos(model.value.index("ReLU")) == (2, 19)
    assert root.get("text").pos(4) == (5, 3)


def test_tab_indentation_gets_a_hint():
    e = err("a:\n\t- x\n")
    assert where(e) == (2, 1)
    assert "use spaces, not tabs" in e.hint
    e = err("a:\n  b: 1\n\tc: 2\n")
    assert e.span.line == 3 and "use spaces, not tabs" in e.hint


def test_multiple_documents_rejected():
    e = err("a: 1\n---\nb: 2\n")
    assert where(e) == (2, 1)
    assert "one YAML document per spec file" in e.diagnostics[0].message
    assert to_python(load_yaml("---\na: 1\n...\n")) == {"a": 1}


@pytest.mark.parametrize(("src", "line", "col"), [
    ("a: [1, 2\nb: 3\n", 2, None),
    ("a: b: c\n", 1, 5),
    ("a: 'open\n", None, None),
    ("a:\n  - x\n - y\n", 3, None),
    ("a: @x\n", 1, 4),
])
def test_syntax_errors_are_located_spec_errors(src, line, col):
    e = err(src)
    assert e.diagnostics[0].message.startswith("invalid YAML")
    assert e.hint
    assert line is None or e.span.line == line
    assert col is None or e.span.col == col
    assert not isinstance(e.__cause__, yaml.YAMLError)


def test_control_character_is_located():
    e = err("a: 1\nb: x\x00y\n")
    assert where(e) == (2, 5)
    assert "U+0000" in e.diagnostics[0].message


# ---------------------------------------------------------------- YScalar.pos


def test_pos_plain_one_line_counts_characters():
    src = "model: Conv2D(32, 3) → ReLU\n"
    node = load_yaml(src).get("model")
    assert node.pos(node.value.index("ReLU")) == (1, 24)
    assert node.pos(node.value.index("→")) == (1, 22)
    assert node.pos(0) == (1, 8)


def test_pos_plain_folded_over_lines():
    src = "model: Conv2D(32, 3) →\n    BatchNorm →   ReLU\nnext: 1\n"
    node = load_yaml(src).get("model")
    assert node.value == "Conv2D(32, 3) → BatchNorm →   ReLU"
    assert node.pos(node.value.index("BatchNorm")) == (2, 5)
    assert node.pos(node.value.index("ReLU")) == (2, 19)
    assert node.pos(node.value.index("(32")) == (1, 14)


def test_pos_literal_block():
    src = "model: |\n  Dense(4)\n    → ReLU\n\n  → Softmax\nnext: 1\n"
    node = load_yaml(src).get("model")
    assert node.value == "Dense(4)\n  → ReLU\n\n→ Softmax\n"
    for word, expected in [("Dense", (2, 3)), ("ReLU", (3, 7)), ("Softmax", (5, 5))]:
        assert node.pos(node.value.index(word)) == expected
        assert char_at(src, expected) == word[0]


def test_pos_folded_block():
    src = "doc: >-\n   first line\n   second\n\n   third\n"
    node = load_yaml(src).get("doc")
    assert node.value == "first line second\nthird"
    assert node.pos(node.value.index("second")) == (3, 4)
    assert node.pos(node.value.index("third")) == (5, 4)


def test_pos_double_quoted():
    src = 'model: "Dense(3) → ReLU"\n'
    node = load_yaml(src).get("model")
    assert node.pos(node.value.index("ReLU")) == (1, 20)
    src = 'model: "Dense(3) \\u2192 \\"ReLU\\"\n   → Tanh"\n'
    node = load_yaml(src).get("model")
    assert node.value == 'Dense(3) → "ReLU" → Tanh'
    assert node.pos(node.value.index("ReLU")) == (1, 27)
    assert node.pos(node.value.index("Tanh")) == (2, 6)


def test_pos_single_quoted_with_doubled_quote():
    src = "m: 'it''s → ReLU'\n"
    node = load_yaml(src).get("m")
    assert node.value == "it's → ReLU"
    assert node.pos(node.value.index("'")) == (1, 7)
    assert node.pos(node.value.index("s")) == (1, 9)
    assert node.pos(node.value.index("ReLU")) == (1, 13)


def test_pos_of_escapes_maps_to_the_backslash():
    node = load_yaml('a: "\\x41\\x42\\tC"\n').get("a")
    assert node.value == "AB\tC"
    assert [node.pos(i) for i in range(4)] == [(1, 5), (1, 9), (1, 13), (1, 15)]


def test_pos_falls_back_to_scalar_start_when_text_does_not_match():
    real = load_yaml("a: 'xyz'\n").get("a")
    other = YScalar("abc", real.span, "'", "abc", real._src)
    assert other.pos(2) == (real.span.line, real.span.col)
    bare = YScalar("abc", real.span, "'")
    assert bare.pos(2) == (1, 6)


def test_pos_of_non_string_scalar_and_clamping():
    node = load_yaml("k: 0x1F\n").get("k")
    assert node.pos(2) == (1, 6)
    assert node.pos(-5) == (1, 4) and node.pos(99) == (1, 8)


# ---------------------------------------------------------------- helpers


def test_node_at_walks_as_far_as_possible():
    root = load_yaml("layers:\n  - op: dense\n    units: 3\n")
    assert node_at(root, ["layers", 0, "units"]).value == 3
    assert node_at(root, ["layers", 0, "missing"]) is root.get("layers").items[0]
    assert node_at(root, ["layers", 5]) is root.get("layers")
    assert node_at(root, []) is root


def test_to_python_none():
    assert to_python(None) is None


def test_module_does_not_import_torch():
    code = "import sys, netc.dsl.yamlload; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- properties


TEXT = st.text(alphabet="abcXY→_-.,:#'\"\\ \n", min_size=1, max_size=60)


@HYPO
@given(value=TEXT, style=st.sampled_from([None, "'", '"', "|", ">"]),
       width=st.integers(min_value=8, max_value=40))
def test_pos_points_at_the_same_character(value, style, width):
    src = yaml.safe_dump({"k": value}, default_style=style, width=width, allow_unicode=True)
    node = load_yaml(src).get("k")
    # Compare with PyYAML's own reading: its emitter is not always faithful.
    value = yaml.safe_load(src)["k"]
    assert node.value == value
    for i, ch in enumerate(value):
        if ch.isalnum() or ch == "→":
            assert char_at(src, node.pos(i)) == ch, (src, i)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(alphabet="abc XY→-_.", max_size=10),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(alphabet="abkey_", min_size=1, max_size=5), inner, max_size=4),
    max_leaves=20,
)


@HYPO
@given(obj=JSONISH, flow=st.sampled_from([None, True, False]))
def test_roundtrip_of_dumped_data(obj, flow):
    src = yaml.safe_dump(obj, default_flow_style=flow, allow_unicode=True)
    assert to_python(load_yaml(src)) == obj


@HYPO
@given(data=st.text(alphabet="ab:-? \n\t[]{},'\"&*!#|>%@`~0.\\→\r\x00", max_size=40)
       | st.binary(max_size=40))
def test_arbitrary_input_gives_tree_or_spec_error(data):
    try:
        load_yaml(data)
    except SpecError as e:
        assert e.diagnostics[0].kind == "yaml" and e.span is not None
