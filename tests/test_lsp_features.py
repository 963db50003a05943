"""The language server's features as plain functions: analysis, hover, completion, definition,
diagnostics conversion and the text scanner (no client, no subprocess)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, SPECS

from netc.compiler.check import check_text
from netc.diagnostics import SpecError
from netc.lsp.analysis import analyze
from netc.lsp.completion import completion
from netc.lsp.context import call_context, chain_slot, in_chain_value, key_path, word_at
from netc.lsp.definition import definition
from netc.lsp.documents import Document
from netc.lsp.hover import hover
from netc.lsp.publish import lsp_diagnostics

RESNET = ROOT / "examples" / "digits_resnet.yaml"
GOOGLENET = ROOT / "specs" / "googlenet.yaml"
BLOCKS = ROOT / "specs" / "blocks.yaml"


def _doc(path: Path, text: str | None = None, version: int = 1) -> Document:
    text = path.read_text(encoding="utf-8") if text is None else text
    doc = Document(path.resolve().as_uri(), text, version)
    _check(doc)
    return doc


def _check(doc: Document) -> None:
    a = analyze(doc.text, doc.path, doc.version)
    doc.analysis = a
    if a.ok:
        doc.good = a


def _at(doc: Document, needle: str, k: int = 0) -> tuple[int, int]:
    """LSP position of character ``k`` of the first ``needle`` in the document."""
    return doc.index.position(doc.text.index(needle) + k)


def _read(path: str) -> str | None:
    return Path(path).read_text(encoding="utf-8")


def _hover_text(doc: Document, needle: str, k: int = 0) -> str:
    h = hover(doc, *_at(doc, needle, k))
    assert h is not None, needle
    return h.contents.value


# ------------------------------------------------------------------ analysis

@pytest.mark.parametrize("path", EXAMPLES + SPECS, ids=lambda p: p.name)
def test_analysis_builds_the_same_program_as_check_text(path):
    text = path.read_text(encoding="utf-8")
    a = analyze(text, str(path))
    prog = check_text(text, str(path))
    assert a.ok and a.diagnostics == prog.extra["warnings"]
    assert {k: g.text() for k, g in a.program.graphs.items()} == {k: g.text() for k, g in prog.graphs.items()}
    assert len(a.nodes) == sum(len(g.nodes) for g in prog.graphs.values())


def test_analysis_diagnostics_equal_check_text_and_keep_the_nodes_that_did_build():
    text = RESNET.read_text().replace("GlobalAvgPool → Dense(10)", "Dense(10)")
    with pytest.raises(SpecError) as err:
        check_text(text, str(RESNET))
    a = analyze(text, str(RESNET))
    assert not a.ok and a.diagnostics == err.value.diagnostics
    assert any(n.op == "Conv2D" for n in a.nodes)  # hover still has the convolution before the error


MLP = ROOT / "examples" / "digits_mlp.yaml"
TRAIN_MISTAKES = [
    ("optimizer: adam(lr=1e-3, weight_decay=1e-4)", "optimizer: adam(lrr=1e-3)", "has no argument 'lrr'"),
    ("{monitor: val.loss, patience: 10}", "{monitor: val.acc}", "'val.acc' is not a logged value"),
]


@pytest.mark.parametrize("old, new, message", TRAIN_MISTAKES, ids=["optimizer-arg", "monitor"])
def test_analysis_reports_train_block_mistakes_exactly_as_check(old, new, message):
    text = MLP.read_text(encoding="utf-8").replace(old, new)
    with pytest.raises(SpecError) as err:
        check_text(text, str(MLP))
    a = analyze(text, str(MLP))
    assert not a.ok and a.diagnostics == err.value.diagnostics  # same message, hint and span
    (d,) = a.diagnostics
    assert message in d.message and d.span is not None and d.span.line == text[:text.index(new)].count("\n") + 1
    assert any(n.op == "Dense" for n in a.nodes)  # the model itself still checked: hover keeps working


def test_analysis_never_raises():
    for text in ["", "\x00\x01", "model: [", "netc: 1\nmodel: Conv2D(", "\ud800: x", "a: b\n" * 3]:
        a = analyze(text, "/tmp/x.yaml")
        assert not a.ok and a.diagnostics


# ------------------------------------------------------------------ hover

def test_hover_op_call_signature_doc_shape_params():
    doc = _doc(RESNET)
    md = _hover_text(doc, "Conv2D(32, 3, padding=same) → BatchNorm → ReLU → Res", 2)
    assert "Conv2D(filters, kernel, stride=1" in md and "2-D convolution" in md
    assert "**output** `(N, 32, 8, 8)`" in md and "**params** 320" in md


def test_hover_range_is_the_call():
    doc = _doc(RESNET)
    h = hover(doc, *_at(doc, "GlobalAvgPool", 3))
    line, ch = _at(doc, "GlobalAvgPool")
    assert (h.range.start.line, h.range.start.character, h.range.end.character) == (line, ch, ch + 13)


def test_hover_inside_a_block_definition_lists_each_instance():
    doc = _doc(RESNET)
    md = _hover_text(doc, "Add(body, in)", 1)
    assert "Add(*refs)" in md and "**2 instances**" in md
    assert md.count("output `(N, 32, 8, 8)`") == 2


def test_hover_block_call_and_imported_block():
    doc = _doc(RESNET)
    md = _hover_text(doc, "Res(32) * 2", 1)
    assert "block Res(c)" in md and "18,624 params" in md
    g = _doc(GOOGLENET)
    md = _hover_text(g, "lib.Inception(64, 96", 6)
    assert "block lib.Inception(c1, c3r, c3, c5r, c5, pool" in md and "blocks.yaml:" in md
    assert "Inception module" in md  # the comment above the definition
    assert "**output** `(N, 256, 28, 28)`" in md and "**params** 155,872" in md


def test_hover_argument_name_shows_its_doc():
    doc = _doc(RESNET)
    md = _hover_text(doc, "padding=same", 2)
    assert "**padding**" in md and "`same`" in md and "argument of `Conv2D`" in md


def test_hover_names_nodes_params_inputs():
    doc = _doc(RESNET)
    assert "node `body`" in _hover_text(doc, "Add(body", 5) and "(N, 32, 8, 8)" in _hover_text(doc, "Add(body", 5)
    g = _doc(GOOGLENET)
    assert "spec parameter `dropout` = `0.2`" in _hover_text(g, "Dropout(dropout)", 9)
    assert "parameter `stride` of block `Conv`" in _hover_text(g, "Conv(c, k, stride=1", 2) or \
        "**stride**" in _hover_text(g, "Conv(c, k, stride=1", 12)
    assert "node `stem`: output `(N, 192, 28, 28)`" in _hover_text(g, "stem:", 1)


def test_hover_uses_the_last_good_analysis_while_the_document_is_broken():
    doc = _doc(RESNET)
    assert doc.good is not None
    doc.edit(None, None, doc.text.replace("netc: 1", "netc: [1"))  # YAML syntax error, line 4
    _check(doc)
    assert not doc.analysis.ok and doc.analysis.spec is None and doc.good.ok
    md = _hover_text(doc, "GlobalAvgPool", 2)
    assert "**output** `(N, 32)`" in md
    # insert two lines at the top: lines shift, the stale analysis still maps onto them
    doc.edit((0, 0), (0, 0), "# one\n# two\n")
    _check(doc)
    md = _hover_text(doc, "GlobalAvgPool", 2)
    assert "**output** `(N, 32)`" in md
    h = hover(doc, *_at(doc, "GlobalAvgPool", 2))
    assert h.range.start.line == _at(doc, "GlobalAvgPool")[0]
    # an edited line is not answered from the stale analysis
    doc.edit(*[_at(doc, "GlobalAvgPool")] * 2, "ReLU → ")
    doc.analysis = None
    assert "**output**" not in hover(doc, *_at(doc, "GlobalAvgPool", 2)).contents.value


def test_hover_on_an_op_the_analysis_never_reached():
    doc = _doc(RESNET, RESNET.read_text().replace("→ GlobalAvgPool", "→ Dense(3) → GlobalAvgPool"))
    md = _hover_text(doc, "GlobalAvgPool", 2)
    assert "GlobalAvgPool()" in md and "not known" in md


def test_hover_nowhere_is_none():
    doc = _doc(RESNET)
    assert hover(doc, 0, 0) is None or "output" not in hover(doc, 0, 0).contents.value
    assert hover(doc, 999, 999) is None


# ------------------------------------------------------------------ completion

def _labels(doc: Document, pos: tuple[int, int]) -> list[str]:
    c = completion(doc, *pos)
    return [i.label for i in c.items] if c else []


def test_completion_ops_and_blocks_after_an_arrow():
    doc = _doc(RESNET, RESNET.read_text().replace("→ Dense(10)", "→ De"))
    pos = _at(doc, "→ De\n", 4)
    c = completion(doc, *pos)
    labels = [i.label for i in c.items]
    assert {"Dense", "Conv2D", "ReLU", "Res", "Linear"} <= set(labels)
    dense = next(i for i in c.items if i.label == "Dense")
    assert dense.detail == "Dense(units, bias=true, init=none)"
    assert dense.text_edit.range.start.character == pos[1] - 2 and dense.text_edit.new_text == "Dense"


def test_completion_with_ascii_arrow_and_at_chain_start():
    doc = _doc(RESNET, RESNET.read_text().replace("→ Dense(10)", "->"))
    assert "Dense" in _labels(doc, _at(doc, "->\n", 2))
    assert "Dense" in _labels(doc, _at(doc, "model: ", 7))
    g = _doc(GOOGLENET)
    labels = _labels(g, _at(g, "GlobalAvgPool → Dropout", 0))
    assert "lib.Inception" in labels and "Conv" in labels and "stem" in labels  # start: names too


def test_completion_argument_names_inside_a_call():
    text = RESNET.read_text().replace("Conv2D(32, 3, padding=same) → BatchNorm → ReLU → Res",
                                      "Conv2D(32, 3, ) → BatchNorm → ReLU → Res")
    doc = _doc(RESNET, text)
    c = completion(doc, *_at(doc, "Conv2D(32, 3, )", 14))
    names = [i.label for i in c.items]
    assert names[:3] == ["stride", "padding", "dilation"] and "filters" not in names
    assert c.items[0].text_edit.new_text == "stride="


def test_completion_skips_given_keywords_and_offers_choices():
    doc = _doc(RESNET, RESNET.read_text().replace("padding=same) → BatchNorm → ReLU → Res",
                                                  "padding=same, ) → BatchNorm → ReLU → Res"))
    names = _labels(doc, _at(doc, "padding=same, )", 14))
    assert "padding" not in names and "stride" in names
    doc = _doc(RESNET, RESNET.read_text().replace("padding=same) → BatchNorm → ReLU → Res",
                                                  "padding=) → BatchNorm → ReLU → Res"))
    assert _labels(doc, _at(doc, "padding=)", 8)) == ["same", "valid"]
    assert _labels(doc, _at(doc, "Conv2D(32", 7))[:2] == ["filters", "kernel"]


def test_completion_of_a_required_argument_shows_its_kind_and_required():
    doc = _doc(RESNET)
    items = {i.label: i for i in completion(doc, *_at(doc, "Conv2D(32", 7)).items}
    assert items["filters"].detail == "int, required"  # was 'int, default <object object at 0x…>'
    assert items["kernel"].detail == "int2, required"
    assert items["stride"].detail == "int2, default 1" and items["bias"].detail == "bool, default true"
    assert all("object at" not in i.detail for i in items.values())
    doc.edit(*[_at(doc, "Res(32) * 2", 4)] * 2, "")
    doc.edit(_at(doc, "Res(32)", 4), _at(doc, "Res(32)", 6), "")
    (c,) = completion(doc, *_at(doc, "Res()", 4)).items
    assert (c.label, c.detail) == ("c", "required")


def test_completion_block_params_and_merge_refs():
    doc = _doc(RESNET)  # checked once: the blocks are known while the new call is typed
    doc.edit(*[_at(doc, "Res(32) * 2", 6)] * 2, ", ")
    _check(doc)
    assert _labels(doc, _at(doc, "Res(32, ", 8)) == []  # c is already given positionally
    doc.edit(*[_at(doc, "Res(32, ", 4)] * 2, "c=")
    assert _labels(doc, _at(doc, "Res(c=32, ", 10)) == []
    doc = _doc(RESNET)
    doc.edit(*[_at(doc, "Res(32) * 2", 4)] * 2, "")
    doc.edit(_at(doc, "Res(32)", 4), _at(doc, "Res(32)", 6), "")
    assert _labels(doc, _at(doc, "Res()", 4)) == ["c"]
    doc = _doc(RESNET, RESNET.read_text().replace("Add(body, in)", "Add(body, )"))
    doc.good = _doc(RESNET).good
    labels = _labels(doc, _at(doc, "Add(body, )", 10))
    assert "in" in labels and "body" in labels


def test_outside_chains_no_ops_only_the_schemas_values():
    doc = _doc(RESNET)
    labels = _labels(doc, _at(doc, "data: digits", 6))  # a plain value: the schema's choices, never ops
    assert "digits" in labels and "sunspots" in labels and "Conv2D" not in labels
    assert completion(doc, *_at(doc, "# A small", 3)) is None


# ------------------------------------------------------------------ definition

def _loc(doc, needle, k):
    locs = definition(doc, *_at(doc, needle, k), _read)
    assert locs, needle
    r = locs[0].range
    return locs[0].uri, r.start.line, r.start.character


def test_definition_block_use_to_definition():
    doc = _doc(RESNET)
    assert _loc(doc, "Res(32) * 2", 1) == (doc.uri, *_at(doc, "Res(c):"))


def test_definition_into_an_imported_file():
    g = _doc(GOOGLENET)
    uri, line, ch = _loc(g, "lib.Inception(64", 6)
    blocks = BLOCKS.read_text()
    assert uri == BLOCKS.resolve().as_uri()
    assert blocks.splitlines()[line][ch:].startswith("Inception(c1, c3r")
    assert _loc(g, "lib.Inception(64", 1) == (BLOCKS.resolve().as_uri(), 0, 0)  # `lib` → the file
    assert _loc(g, "blocks.yaml}", 2) == (BLOCKS.resolve().as_uri(), 0, 0)  # the import's path


def test_definition_node_reference_param_and_block_param():
    doc = _doc(RESNET)
    assert _loc(doc, "Add(body", 5) == (doc.uri, *_at(doc, "body:"))
    g = _doc(GOOGLENET)
    assert _loc(g, "Dense(classes)", 8) == (g.uri, *_at(g, "classes: 1000"))
    assert _loc(g, "ConvBNReLU(c, k, stride=stride", 26) == (g.uri, *_at(g, "stride=1, padding=0)"))


def test_definition_of_an_op_is_none():
    doc = _doc(RESNET)
    assert definition(doc, *_at(doc, "GlobalAvgPool", 2), _read) is None


# ------------------------------------------------------------------ diagnostics

def test_diagnostics_in_an_imported_block_are_shown_at_the_call(tmp_path):
    (tmp_path / "lib.yaml").write_text("netc: 1\nblocks:\n  Head(n): Dense(n)\n", encoding="utf-8")
    spec = tmp_path / "m.yaml"
    text = "netc: 1\nimports: {lib: lib.yaml}\ninput: [1, 8, 8]\nmodel: Conv2D(4, 3) → lib.Head(10)\n"
    spec.write_text(text, encoding="utf-8")
    doc = _doc(spec)
    diags = lsp_diagnostics(doc.analysis, doc.index, _read)
    assert len(diags) == 1 and diags[0].code == "shape"
    assert diags[0].message.startswith("lib.yaml:3:12: Dense(10) expects")
    assert (diags[0].range.start.line, diags[0].range.start.character) == (3, text.splitlines()[3].index("lib.Head"))
    rel = diags[0].related_information[0].location
    assert rel.uri == (tmp_path / "lib.yaml").as_uri() and rel.range.start.line == 2


def test_diagnostic_fields():
    text = "netc: 1\ninput: [1, 8, 8]\nmodel: Conv2D(4, 3) → Dense(10)\n"
    doc = _doc(Path("/tmp/netc_lsp_fields.yaml"), text)
    (d,) = lsp_diagnostics(doc.analysis, doc.index, _read)
    assert (d.range.start.line, d.range.start.character, d.range.end.character) == (2, 22, 31)
    assert d.severity == 1 and d.code == "shape" and d.source == "netc"
    assert d.message.endswith("\nhint: insert Flatten before Dense")


def test_unused_node_warning_is_tagged_unnecessary():
    text = "netc: 1\ninput: [4]\nmodel:\n  a: Dense(3)\n  b: in → Dense(2)\n"
    doc = _doc(Path("/tmp/netc_lsp_unused.yaml"), text)
    (d,) = lsp_diagnostics(doc.analysis, doc.index, _read)
    assert d.severity == 2 and d.tags == [1] and d.range.start.line == 3


# ------------------------------------------------------------------ the text scanner

def test_call_context():
    c = call_context("model: A → Conv2D(32, kernel=3, st", 34)
    assert (c.callee, c.positional, c.given, c.kwarg, c.prefix) == ("Conv2D", 1, ("kernel",), None, "st")
    assert call_context("model: Conv2D(32, 3, padding=", 29).kwarg == "padding"
    assert call_context("model: Conv2D(32, [3, ", 22).nested
    assert call_context("model: Conv2D(32) → Re", 22) is None
    assert call_context("model: Dense(10) # Conv2D(", 26) is None
    assert call_context("x: Concat(a, 'b,(', ", 20).positional == 2


def test_chain_slot_and_key_path():
    assert chain_slot("model: Conv2D(32) → Re", 22) == "arrow"
    assert chain_slot("model: Conv2D(32)->Re", 21) == "arrow"
    assert chain_slot("model: Re", 9) == "start"
    assert chain_slot("model: Conv2D(32) Re", 20) is None
    assert chain_slot("# → Re", 6) is None
    lines = ["netc: 1", "blocks:", "  Res(c):", "    body: Conv2D(c, 3)", "model:", "  - Conv2D: {filters: 3}",
             "  - Re"]
    assert key_path(lines, 3, 12) == ["blocks", "Res(c)", "body"] and in_chain_value(["blocks", "Res(c)", "body"])
    assert key_path(lines, 6, 6) == ["model"] and in_chain_value(["model"])
    assert not in_chain_value(key_path(lines, 5, 20))  # a long-form step holds arguments, not a chain
    assert not in_chain_value(["train", "optimizer"])
    assert word_at("a → lib.Res(2)", 6) == (4, 11, "lib.Res") and word_at("Dense(10)", 7)[2] == ""


def test_which_yaml_documents_are_specs():
    from netc.lsp.documents import is_netc_spec

    assert is_netc_spec("file:///x.yaml", "netc: 1\nmodel: Dense(2)\n")
    assert is_netc_spec("file:///x.yaml", "# yaml-language-server: $schema=../netc/dsl/netc.schema.json\n")
    assert is_netc_spec("file:///m.netc.yaml", "")
    assert not is_netc_spec("file:///ci.yaml", "jobs:\n  netc: {run: netc check}\nmodel: x\n")


def test_hover_block_header_lists_its_instances_and_library_ops_explain_missing_shapes():
    doc = _doc(RESNET)
    md = _hover_text(doc, "Res(c):", 1)
    assert "block Res(c)" in md and "**2 instances** in this file" in md
    lib = _doc(BLOCKS)
    md = _hover_text(lib, "BatchNorm(eps=eps)", 2)
    assert "BatchNorm(momentum=0.1" in md and "a block this file does not use" in md
