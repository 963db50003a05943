"""Fuzzing the front end in CI: a few hundred of bench/fuzz.py's cases plus grammar-generated chains.

Every input ends in a clean result or in located diagnostics — never a traceback or a hang.
"""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

sys.path.insert(0, str(ROOT / "bench"))
import fuzz  # noqa: E402


@pytest.mark.parametrize("seed", range(3))
def test_mutated_examples_never_crash(seed):
    outcomes = [(name, fuzz.run_case(doc, name)) for name, doc in fuzz.cases(150, seed)]
    bad = [(n, o) for n, o in outcomes if o not in ("ok", "diagnostics")]
    assert not bad, bad[:5]
    assert any(o == "ok" for _, o in outcomes) and any(o == "diagnostics" for _, o in outcomes)


def _grammar():
    from lark import Lark

    from netc.dsl.chain import GRAMMAR

    return Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr")  # uncached: hypothesis reads .grammar


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(from_lark(_grammar(), start="chain",
                 explicit={"_ARROW": st.sampled_from([" → ", " -> "]),
                           "NAME": st.sampled_from(["Dense", "ReLU", "Conv2D", "x", "Res", "lib.B", "padding"]),
                           "STRING": st.sampled_from(["'a'", '"same"']),
                           "INT": st.integers(0, 9).map(str), "NUMBER": st.sampled_from(["0", "3", "1e-3", ".5"])}))
def test_grammar_generated_chains_give_clean_outcomes(chain):
    doc = f"netc: 1\ninput: [1, 8, 8]\nblocks:\n  Res(c): Conv2D(c, 3, padding=same)\nmodel: {chain}\n"
    assert fuzz.run_case(doc) in ("ok", "diagnostics")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_give_clean_outcomes(data):
    assert fuzz.run_case(data) in ("ok", "diagnostics")


@pytest.mark.parametrize("doc", [
    "netc: 1\ninput: [1000000000, 1000000000]\nmodel: Flatten → Dense(10)\n",
    "netc: 1\ninput: [64]\nmodel: Dense(1000000000000)\n",
    "netc: 1\ninput: [3, 32, 32]\nmodel: Conv2D(100000000, 3)\n",
    "netc: 1\ninput: [99999999999999999999]\nmodel: Dense(2)\n",
    "netc: 1\ninput: {t: {shape: [T], dtype: int64}}\nmodel: Embedding(10000000000, 100000) → SeqPool → Dense(2)\n",
])
def test_resource_bombs_are_refused_before_any_allocation(doc):
    from netc.compiler.check import check_text
    from netc.diagnostics import SpecError

    with pytest.raises(SpecError) as info:
        check_text(doc, "bomb.yaml")
    d = info.value.diagnostics[0]
    assert d.span is not None
    assert d.kind in ("resource", "schema", "yaml")


def test_cli_sample_gives_clean_outcomes():
    """20 of bench/fuzz.py's CLI cases (saved failures first) in fresh processes, two at a time, 10 s each."""
    counts, bad = fuzz.run_cli(20, seed=0, jobs=2, train=False, save=False)
    assert not bad, bad[:3]
    assert sum(counts.values()) == 20


def test_cli_outcomes_are_classified():
    assert fuzz.classify(None, "") == "hang"
    assert fuzz.classify(70, "netc: internal error: KeyError") == "internal"
    assert fuzz.classify(1, "Traceback (most recent call last):\n") == "traceback"
    assert fuzz.classify(1, "s.yaml:3:8: error[shape]: Dense(10) expects ...") == "diagnostics"
    assert fuzz.classify(1, "error[cli]: --param n: expected int") == "unlocated"
    assert fuzz.classify(2, "netc: error[cli]: -o x is a directory") == "usage"
    assert fuzz.classify(0, "") == "ok"
