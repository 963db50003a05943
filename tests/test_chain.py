"""Chain grammar: positive parses, the table of malformed examples, and generated chains."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netc.diagnostics import SpecError
from netc.dsl import ast
from netc.dsl.chain import SYNTAX_EXAMPLES, call_literal, parse_call, parse_chain


def test_unicode_and_ascii_arrows_parse_the_same():
    a = parse_chain("Conv2D(32, 3) → ReLU → MaxPool(2)")
    b = parse_chain("Conv2D(32, 3) -> ReLU -> MaxPool(2)")
    assert [s.call.name for s in a.steps] == [s.call.name for s in b.steps] == ["Conv2D", "ReLU", "MaxPool"]


def test_arguments_of_every_kind():
    c = parse_chain("Op(1, 2.5, 1e-3, -4, 'str', \"dq\", same, [1, 2], (3, 4), k=v, flag=true)").steps[0].call
    name, args, kwargs = call_literal(c)
    assert name == "Op"
    assert args == [1, 2.5, 1e-3, -4, "str", "dq", "same", [1, 2], [3, 4]]
    assert kwargs == {"k": "v", "flag": True}
    assert isinstance(c.args[2], ast.Num) and isinstance(c.args[2].value, float)


def test_repetition_and_arithmetic():
    ch = parse_chain("Res(c * 2, k=c // 2 + 1) * 3 → lib.Block")
    assert ch.steps[0].repeat == 3
    assert isinstance(ch.steps[0].call.args[0], ast.BinOp)
    assert ch.steps[1].call.name == "lib.Block" and ch.steps[1].call.bare


def test_spans_point_at_calls():
    ch = parse_chain("Flatten → Dense(128)")
    dense = ch.steps[1].call
    assert (dense.span.col, dense.span.end_col) == (11, 21)


def test_parse_call_for_train_block_values():
    name, args, kwargs = call_literal(parse_call("adam(lr=1e-3, betas=(0.9, 0.99))"))
    assert (name, args, kwargs) == ("adam", [], {"lr": 0.001, "betas": [0.9, 0.99]})
    with pytest.raises(SpecError):
        parse_call("adam → sgd")


@pytest.mark.parametrize("label,example", [(label, ex) for label, exs in SYNTAX_EXAMPLES.items() for ex in exs])
def test_malformed_examples_get_their_label(label, example):
    with pytest.raises(SpecError) as info:
        parse_chain(example)
    d = info.value.diagnostics[0]
    assert d.kind == "syntax"
    assert d.message.startswith(label), d.message
    assert d.span is not None and d.span.col >= 1


def test_empty_chain_is_an_error():
    with pytest.raises(SpecError, match="empty chain"):
        parse_chain("   ")


NAMES = st.sampled_from(["Dense", "ReLU", "Conv2D", "Res", "lib.Block", "x"])
VALUES = st.one_of(st.integers(-5, 500), st.floats(0, 10, allow_nan=False).map(lambda f: round(f, 3)),
                   st.sampled_from(["same", "true", "'s'", "[1, 2]", "c * 2"]))


@st.composite
def chains(draw):
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        name = draw(NAMES)
        if draw(st.booleans()):
            args = [str(v) for v in draw(st.lists(VALUES, max_size=3))]
            kws = [f"k{i}={v}" for i, v in enumerate(draw(st.lists(VALUES, max_size=2)))]
            name += "(" + ", ".join(args + kws) + ")"
        if draw(st.booleans()):
            name += f" * {draw(st.integers(1, 4))}"
        steps.append(name)
    return draw(st.sampled_from([" → ", " -> ", "→"])).join(steps)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains())
def test_generated_valid_chains_parse(text):
    ch = parse_chain(text)
    assert len(ch.steps) == text.count("→") + text.count("->") + 1


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="DenseReLU()[],=*→->0123456789 .'\"_x", max_size=40))
def test_arbitrary_text_parses_or_gives_located_syntax_error(text):
    try:
        parse_chain(text)
    except SpecError as e:
        assert all(d.span is not None for d in e.diagnostics)
