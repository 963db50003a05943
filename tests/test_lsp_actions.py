"""Quick fixes read from hints (netc/lsp/actions.py): each rule on the diagnostic the front end gives."""

from __future__ import annotations

import pytest

from netc.lsp.actions import fixes
from netc.lsp.analysis import analyze


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for a, b, new in sorted(edits, reverse=True):
        text = text[:a] + new + text[b:]
    return text


def _fixed(text: str) -> list[str]:
    """Each fix of the first diagnostic of ``text``, applied."""
    d = analyze(text, "/tmp/actions.yaml").diagnostics[0]
    lines = text.splitlines(keepends=True)
    start = sum(len(x) for x in lines[:d.span.line - 1]) + d.span.col - 1
    end = sum(len(x) for x in lines[:d.span.end_line - 1]) + d.span.end_col - 1
    return [_apply(text, edits) for _, edits in fixes(d.hint or "", text, start, end)]


HEAD = "netc: 1\ninput: {image: [1, 8, 8]}\n"


@pytest.mark.parametrize("bad, good", [
    ("model: Flatten → Dnese(10)\n", "model: Flatten → Dense(10)\n"),
    ("model: Flatten -> Dense(10) -> relu\n", "model: Flatten -> Dense(10) -> ReLU\n"),
    ("model: Flatten → Dense(10)\ntrain:\n  data: digits\n  metrics: [acuracy]\n",
     "model: Flatten → Dense(10)\ntrain:\n  data: digits\n  metrics: [accuracy]\n"),
    ("model: Flatten → Dense(10)\ntrain:\n  data: digits\n  optimizer: adm(lr=1e-3)\n",
     "model: Flatten → Dense(10)\ntrain:\n  data: digits\n  optimizer: adam(lr=1e-3)\n"),
    ("model: Flatten → Dense(10)\ntrain:\n  data: digits\n  epoch: 3\n",
     "model: Flatten → Dense(10)\ntrain:\n  data: digits\n  epochs: 3\n"),
    ("model: Conv2D(8, 3) → Dense(10)\n", "model: Conv2D(8, 3) → Flatten → Dense(10)\n"),
    ("model: Conv2D(8, 3) -> Dense(10)\n", "model: Conv2D(8, 3) -> Flatten -> Dense(10)\n"),
    ("model: Flatten → Dense(10) → Softmax\ntrain:\n  loss: cross_entropy\n",
     "model: Flatten → Dense(10)\ntrain:\n  loss: cross_entropy\n"),
    ("model: Flatten → Dense(32, activation=relu) → Dense(10)\n", "model: Flatten → Dense(32) → ReLU → Dense(10)\n"),
    ("model: Flatten -> Dense(32, relu) -> Dense(10)\n", "model: Flatten -> Dense(32) -> ReLU -> Dense(10)\n"),
    ("model: Reshape([8, 8]) → LSTM(16) → LSTM(8) → Dense(2)\n",
     "model: Reshape([8, 8]) → LSTM(16, return_sequences=true) → LSTM(8) → Dense(2)\n"),
])
def test_a_hint_with_a_mechanical_fix_becomes_an_edit_that_checks(bad, good):
    assert _fixed(HEAD + bad) == [HEAD + good]
    assert not [d for d in analyze(HEAD + good, "/tmp/actions.yaml").diagnostics if d.severity == "error"]


def test_remove_a_step_and_add_a_keyword():
    text = "model: Conv2D(8, 3) → GlobalAvgPool → MaxPool(2)\n"
    assert fixes("it is already pooled: remove it", text, text.index("MaxPool"), len(text) - 1) == [
        ("Remove MaxPool(2)", [(text.index(" → MaxPool"), len(text) - 1, "")])]
    text = "model: LSTM(16) → LSTM(8) → Dense(2)\n"
    (title, edits), = fixes("set return_sequences=true on LSTM(16)", text, text.index("LSTM(8)"),
                            text.index("LSTM(8)") + 7)
    assert _apply(text, edits) == "model: LSTM(16, return_sequences=true) → LSTM(8) → Dense(2)\n"


def test_hints_without_a_mechanical_fix_offer_nothing():
    text = "model: Dense(3)\n"
    assert fixes("see `netc ops` for the list of ops", text, 7, 15) == []
    assert fixes("did you mean 'Dense'?", text, 7, 7) == []
