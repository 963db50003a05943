"""The lowest layer's shared helpers: the REQUIRED sentinel, the value renderer, did-you-mean, exit codes."""

from __future__ import annotations

import copy
import pickle

from netc.compiler.registry import REGISTRY
from netc.compiler.train.registry import Param
from netc.diagnostics import (
    EXIT_INVALID,
    EXIT_USAGE,
    REQUIRED,
    NetcError,
    SpecError,
    UsageError,
    closest,
    did_you_mean,
    show,
)
from netc.dsl.spec import read_spec


def test_one_required_sentinel_for_ops_blocks_and_the_train_vocabulary():
    spec = read_spec("netc: 1\ninput: [4]\nblocks:\n  B(c):\n    body: Dense(c)\nmodel: B(2)\n", "<s>")
    assert REGISTRY.get("Conv2D").arg("filters").default is REQUIRED
    assert spec.blocks["B"].params[0].default is REQUIRED
    assert Param().default is REQUIRED
    assert copy.deepcopy(REQUIRED) is REQUIRED and pickle.loads(pickle.dumps(REQUIRED)) is REQUIRED
    assert repr(REQUIRED) == "REQUIRED" and show(REQUIRED) == "required"


def test_show_writes_values_as_a_spec_does():
    assert [show(v) for v in (True, None, 3, 1e-3, "same", (1, 2), [True, "x"])] == \
        ["true", "none", "3", "0.001", "same", "[1, 2]", "[true, x]"]


def test_did_you_mean_tries_case_then_abbreviation_then_spelling():
    assert closest("relu", ["ReLU", "Tanh"]) == "ReLU"
    assert closest("acc", ["accuracy", "auc_roc"]) == "accuracy"
    assert closest("Dnse", ["Dense", "Dropout"]) == "Dense"
    assert closest("zzz", ["Dense"]) is None
    assert did_you_mean("epoch", ["epochs", "seed"]) == "did you mean 'epochs'?"
    assert did_you_mean("f1_score", ["f1", "mae"], cutoff=0.5) is None


def test_errors_carry_their_exit_code():
    assert NetcError("x").exit_code == SpecError("x").exit_code == EXIT_INVALID
    assert UsageError("x").exit_code == EXIT_USAGE


def test_words_from_other_tools_get_their_meaning_not_a_neighbour():
    from netc.diagnostics import closest

    assert closest("gpu", ["auto", "cpu", "cuda"]) == "cuda"  # not 'cpu', one letter away
    assert closest("fp64", ["fp32", "bf16", "fp16"]) is None  # not 'fp16': netc has no float64 training
    assert closest("half", ["fp32", "bf16", "fp16"]) == "fp16"
    assert closest("gpu", ["relu", "gelu"]) is None  # a synonym only answers when its meaning is a choice
