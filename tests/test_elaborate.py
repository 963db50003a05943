"""Elaboration: names, blocks, imports, graphs, shapes and parameter counts (no torch)."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import pytest

from netc.compiler.check import check_file, check_text
from netc.compiler.ir import verify
from netc.compiler.registry import REGISTRY, Arg, L, OpDef
from netc.diagnostics import SpecError


def check(doc: str, **kw):
    return check_text(textwrap.dedent(doc), "<test>", **kw)


def test_keras_parameter_counts_of_the_classic_examples(tmp_path):
    from conftest import ROOT

    assert check_file(ROOT / "examples/mnist_mlp.yaml").main.params == 101_770
    assert check_file(ROOT / "examples/cifar10_cnn.yaml").main.params == 122_570


def test_chain_names_shapes_and_text_form():
    g = check("""
        netc: 1
        name: tiny
        input: [1, 8, 8]
        model: Conv2D(4, 3, padding=same) → ReLU → MaxPool(2) → Flatten → Dense(10)
    """).main
    verify(g)
    assert g.text() == textwrap.dedent("""\
        graph tiny(x: f32[N, 1, 8, 8]) {
          conv2d = Conv2D[filters=4, kernel=3, stride=1, padding=same, dilation=1, groups=1, bias=true](x) : f32[N, 4, 8, 8]
          relu = ReLU[](conv2d) : f32[N, 4, 8, 8]
          maxpool = MaxPool[kernel=2, stride=none, padding=0, ceil_mode=false](relu) : f32[N, 4, 4, 4]
          flatten = Flatten[](maxpool) : f32[N, 64]
          dense = Dense[units=10, bias=true](flatten) : f32[N, 10]
          return dense
        }""")
    assert g.node("conv2d").span.line == 5 and g.node("dense").span.col > g.node("conv2d").span.col


def test_residual_block_with_repetition_and_spec_params():
    p = check("""
        netc: 1
        params: {classes: 10, width: 16}
        input: [1, 8, 8]
        blocks:
          Res(c):
            body: Conv2D(c, 3, padding=same) → BatchNorm → ReLU → Conv2D(c, 3, padding=same) → BatchNorm
            out: Add(body, in) → ReLU
        model: Conv2D(width, 3, padding=same) → BatchNorm → ReLU → Res(width) * 2 → GlobalAvgPool → Dense(classes)
    """, params={"classes": 3})
    g = p.main
    verify(g)
    names = [n.name for n in g.nodes]
    assert "res_body_conv2d" in names and "res_1_body_conv2d" in names and "res_1_out_add" in names
    add = g.node("res_out_add")
    assert add.inputs == ("res_body_batchnorm_1", "relu")
    assert g.output_type.shape == ("N", 3)
    conv = 16 * 16 * 9 + 16
    assert g.params == (1 * 16 * 9 + 16) + 32 + 2 * (2 * conv + 2 * 32) + 16 * 3 + 3


def test_block_parameter_naming_a_tensor():
    """A block parameter given a tensor's name reads that tensor inside the block (a decoder's memory)."""
    g = check("""
        netc: 1
        input: {src: [3, 8], tgt: [3, 8]}
        blocks:
          Cross(heads, memory):
            read: MultiHeadAttention(heads, kv=memory)
            out: Add(in, read, memory)
        model:
          enc: src → Dense(8)
          out: tgt → Cross(2, enc) * 2
    """).main
    verify(g)
    assert [n.inputs[1] for n in g.nodes if n.op == "MultiHeadAttention"] == ["enc_dense", "enc_dense"]
    assert [n.inputs[2] for n in g.nodes if n.op == "Add"] == ["enc_dense", "enc_dense"]  # merges read it too
    with pytest.raises(SpecError, match="expects an integer"):  # as a value it is still a word
        check("""
            netc: 1
            input: {src: [5, 8], tgt: [3, 8]}
            blocks:
              Wide(memory): Dense(memory)
            model:
              enc: src → Dense(8)
              out: tgt → Wide(enc)
        """)


def test_named_graph_with_two_inputs_and_concat():
    g = check("""
        netc: 1
        input: {image: [1, 8, 8], meta: [4]}
        model:
          a: image → Flatten → Dense(16)
          b: meta → Dense(16)
          joined: Concat(a, b) → ReLU
          head: Dense(2)
    """).main
    assert [i.name for i in g.inputs] == ["image", "meta"]
    assert g.node("joined_concat").type.shape == ("N", 32)
    assert g.node("head").inputs == ("joined_relu",)


def test_forward_references_resolve_and_mid_chain_merge():
    g = check("""
        netc: 1
        input: [16]
        model:
          out: h → Add(skip) → Dense(2)
          h: x → Dense(16) → ReLU
          skip: x → Dense(16)
    """).main
    verify(g)
    assert g.output_type.shape == ("N", 2)


def test_symbolic_sequence_length_and_embedding():
    g = check("""
        netc: 1
        input: {tokens: {shape: [T], dtype: int64}}
        model: Embedding(100, 16) → LSTM(32, return_sequences=true) → GRU(8, bidirectional=true) → Dense(2)
    """).main
    assert g.node("embedding").type.shape == ("N", "T", 16)
    assert g.node("lstm").type.shape == ("N", "T", 32)
    assert g.node("gru").type.shape == ("N", 16)
    # torch: 4*32*(16+32) + 8*32 ; GRU bi: 2 * (3*8*(32+8) + 6*8)
    assert g.node("lstm").params == 4 * 32 * (16 + 32) + 8 * 32
    assert g.node("gru").params == 2 * (3 * 8 * (32 + 8) + 6 * 8)


def test_long_form_steps_equal_the_chain_form():
    a = check("netc: 1\ninput: [8]\nmodel: Dense(4, bias=false) → ReLU\n").main
    b = check("netc: 1\ninput: [8]\nmodel:\n  - Dense: {units: 4, bias: false}\n  - ReLU:\n").main
    assert [(n.op, n.args, n.type) for n in a.nodes] == [(n.op, n.args, n.type) for n in b.nodes]


def test_two_models_in_one_file():
    p = check("""
        netc: 1
        models:
          generator:
            input: {z: [16]}
            model: Dense(64) → ReLU → Dense(64) → Tanh → Reshape([1, 8, 8])
          discriminator:
            input: [1, 8, 8]
            model: Flatten → Dense(32) → LeakyReLU(0.2) → Dense(1)
    """)
    assert list(p.graphs) == ["generator", "discriminator"]
    assert p.graphs["generator"].output_type.shape == ("N", 1, 8, 8)


def test_import_blocks_from_another_spec(tmp_path):
    (tmp_path / "lib.yaml").write_text(textwrap.dedent("""
        netc: 1
        blocks:
          Inner(c): Dense(c) → ReLU
          Outer(c): Inner(c) → Inner(c * 2)
    """))
    main = tmp_path / "sub" / "main.yaml"
    main.parent.mkdir()
    main.write_text("netc: 1\nimports: {lib: ../lib.yaml}\ninput: [4]\nmodel: lib.Outer(8) → Dense(1)\n")
    g = check_file(main).main
    assert g.node("outer_inner_1_dense").type.shape == ("N", 16)


def test_import_cycle_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("netc: 1\nimports: {b: b.yaml}\nblocks: {A: Dense(1)}\n")
    (tmp_path / "b.yaml").write_text("netc: 1\nimports: {a: a.yaml}\nblocks: {B: Dense(1)}\n")
    with pytest.raises(SpecError, match="import cycle"):
        check_file(tmp_path / "a.yaml")


def test_independent_errors_are_all_reported_without_cascades():
    with pytest.raises(SpecError) as info:
        check("""
            netc: 1
            input: [8]
            model:
              a: Dense(0) → Dense(4)
              b: x → Foo(3)
              c: a → Dense(2)
        """)
    kinds = [d.message for d in info.value.diagnostics]
    assert len(kinds) == 2, kinds  # c depends on a: no third, cascading error


def test_unused_node_is_a_warning_not_an_error():
    p = check("netc: 1\ninput: [8]\nmodel:\n  a: Dense(4)\n  b: x → Dense(2)\n")
    warnings = p.extra["warnings"]
    assert len(warnings) == 1 and warnings[0].severity == "warning" and "'a'" in warnings[0].message


def test_plugin_ops_from_entry_points(monkeypatch):
    import importlib.metadata as md

    plugin = OpDef("Scale", "multiply by a constant", (Arg("factor", "float", 1.0),),
                   infer=lambda a, ins: ins[0], lower=lambda a, ins, out: L(None, forward="{x} * " + repr(a.factor)))
    ep = SimpleNamespace(load=lambda: SimpleNamespace(OPS=[plugin]))
    monkeypatch.setattr(md, "entry_points", lambda group: [ep] if group == "netc.ops" else [])
    monkeypatch.setattr(REGISTRY, "_plugins_loaded", False)
    try:
        g = check("netc: 1\ninput: [8]\nmodel: Dense(4) → Scale(factor=2)\n").main
        assert g.nodes[-1].op == "Scale" and g.nodes[-1].arg("factor") == 2.0
    finally:
        REGISTRY.ops.pop("Scale", None)


@pytest.mark.parametrize("op", sorted(REGISTRY.ops))
def test_every_op_has_docs_and_a_signature(op):
    o = REGISTRY.ops[op]
    assert o.doc and o.signature().startswith(op + "(")
    assert all(a.doc for a in o.args)
