"""Keras/PyTorch habits get the hint that says what netc writes (netc/compiler/habits.py); golden cases: habit_*."""

from __future__ import annotations

import pytest

from netc.compiler import habits
from netc.compiler.check import check_text
from netc.compiler.registry import REGISTRY
from netc.diagnostics import SpecError


def _diags(model: str, input_: str = "[1, 8, 8]") -> list:
    with pytest.raises(SpecError) as info:
        check_text(f"netc: 1\ninput: {input_}\nmodel: {model}\n")
    return info.value.diagnostics


def test_every_table_entry_names_a_real_op():
    for word, op in habits.ACTIVATIONS.items():
        if REGISTRY.get(op, plugins=False) is not None:
            assert REGISTRY.get(op, plugins=False).category == "activation", word
    for name, target in habits.OPS.items():
        assert REGISTRY.get(name, plugins=False) is None, f"{name} is an op: no hint needed"
        assert REGISTRY.get(target.split("(")[0], plugins=False) is not None, target


@pytest.mark.parametrize("model,arg,fixed", [
    ("Flatten → Dense(10) → Softmax(axis=-1)", "axis", "Softmax(dim=-1)"),
    ("Flatten → Dense(10) → Dropout(p=0.1)", "p", "Dropout(rate=0.1)"),
    ("Conv2D(4, 3, strides=2) → Flatten → Dense(10)", "strides", "Conv2D(4, 3, stride=2)"),
])
def test_keras_and_pytorch_argument_names(model, arg, fixed):
    (d,) = _diags(model)
    assert f"no argument '{arg}'" in d.message and fixed in d.hint


def test_an_activation_inside_a_layer_names_the_op_to_write():
    (d,) = _diags("Flatten → Dense(10, activation=sigmoid)")
    assert d.hint.endswith("Dense(10) → Sigmoid")


def test_input_size_first_only_when_one_argument_too_many():
    """Dense(8) on (N, 1, 8, 8) is a missing Flatten, not PyTorch's input size, although 8 is a width there."""
    (d,) = _diags("Dense(8)")
    assert "Flatten" in d.hint
    (d,) = _diags("Flatten → Dense(64, 10)")
    assert d.hint.endswith("leave it out, Dense(10)")


def test_a_stacked_gru_after_a_sequence_is_fine_and_without_one_is_hinted():
    check_text("netc: 1\ninput: [10, 8]\nmodel: GRU(16, return_sequences=true) → GRU(16) → Dense(2)\n")
    (d,) = _diags("GRU(16) → GRU(16) → Dense(2)", "[10, 8]")
    assert "return_sequences=true to GRU(16) before it" in d.hint


def test_after_a_failed_op_the_rest_of_the_chain_is_checked_without_cascading():
    chain = "Conv2D(4, 3, bais=true) → Dense(10) → Dropout(7) → Dense(0)"
    ds = _diags(chain)
    at = [len("model: ") + 1 + i for i in (chain.index("bais"), chain.index("(7)") + 1, chain.index("(0)") + 1)]
    assert [d.span.col for d in ds] == at  # bais, the rates and units; no shape error for Dense(10)
    assert all(d.kind == "arg" for d in ds)


def test_a_channels_last_input_that_fits_is_a_warning():
    """[32, 32, 3] convolves (32 channels of 32×3 images): no error, but a warning that says what was meant."""
    (w,) = check_text("netc: 1\ninput: [32, 32, 3]\nmodel: Conv2D(8, 3, padding=same) → Flatten → Dense(10)\n"
                      ).extra["warnings"]
    assert w.severity == "warning" and "channels-last" in w.message and w.hint.endswith("[3, 32, 32]")
    assert not check_text("netc: 1\ninput: [3, 32, 32]\nmodel: Conv2D(8, 3) → Flatten → Dense(10)\n").extra["warnings"]


@pytest.mark.parametrize("keras,netc", [("binary_crossentropy", "bce"), ("sparse_categorical_crossentropy",
                                                                         "cross_entropy"),
                                        ("MSELoss", "mse"), ("BCEWithLogitsLoss", "bce")])
def test_keras_and_pytorch_loss_names(keras, netc):
    with pytest.raises(SpecError) as info:
        check_text(f"netc: 1\ninput: [4]\nmodel: Dense(1)\ntrain:\n  data: {{source: csv, path: x.csv}}\n"
                   f"  loss: {keras}\n")
    assert info.value.diagnostics[0].hint.startswith(f"did you mean '{netc}'?")


def test_true_and_none_are_not_taken_for_undeclared_parameters():
    (d,) = _diags("Flatten → Dense(true)")
    assert "declared parameter" not in d.message and d.message.endswith("expects an integer, got True")
