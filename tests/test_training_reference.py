"""docs/training.md is generated from the training registries and fails when stale (netc/compiler/train/reference.py)."""

from __future__ import annotations

import dataclasses
import json

from conftest import ROOT

from netc.compiler.train import config as cfg
from netc.compiler.train import reference
from netc.compiler.train.metrics import METRICS
from netc.compiler.train.objectives import LOSSES, OPTIMIZERS, SCHEDULES, LossEntry
from netc.compiler.train.registry import Param
from netc.compiler.train.sources import SOURCES

PAGE = ROOT / "docs" / "training.md"


def test_the_page_is_current():
    assert PAGE.read_text(encoding="utf-8") == reference.render(), \
        f"docs/training.md is stale: regenerate it with `{reference.COMMAND}`"


def test_every_name_and_key_is_on_the_page():
    page = reference.render()
    for table in (LOSSES, OPTIMIZERS, SCHEDULES):
        for e in table.values():
            assert f"#### `{reference._call(e)}`" in page
            for k in e.params:
                assert f"| `{k}` |" in page
    for name in [*METRICS, *SOURCES]:
        assert f"`{name}`" in page
    for cls in (cfg.TrainConfig, cfg.DataConfig, cfg.SplitConfig, cfg.AugmentConfig, cfg.EarlyStoppingConfig):
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in page, f.name


def test_a_new_entry_appears_without_touching_the_generator(monkeypatch):
    entry = LossEntry("squared_hinge", "squared hinge loss on {-1, 1} targets",
                      {"margin": Param(1.0, float, "the margin")}, task="binary")
    monkeypatch.setitem(LOSSES, "squared_hinge", entry)
    page = reference.render()
    assert "#### `squared_hinge(margin=1.0)`" in page and "| `margin` | number | `1.0` | the margin |" in page


def test_every_section_has_a_checked_example():
    """Each example is a complete spec; tests/test_docs.py checks every one of them on the page."""
    page = reference.render()
    for key, text in reference.EXAMPLES.items():
        assert text.startswith("netc: 1\n") and text.rstrip("\n") in page, key


def test_netc_ops_training_lists_the_vocabulary(capsys):
    from netc.cli import main

    assert main(["ops", "--training"]) == 0
    out = capsys.readouterr().out
    assert "train.optimizer:" in out and "sgd(lr=0.01" in out and "docs/training.md" in out
    assert main(["ops", "--training", "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert {e["table"] for e in entries} >= {"loss", "optimizer", "schedule", "metric", "source", "augment"}
    assert {e["name"] for e in entries if e["table"] == "loss"} == set(LOSSES)


def test_netc_ops_names_one_op_or_entry(capsys):
    from netc.cli import main

    assert main(["ops", "Conv2D", "adam", "mse"]) == 0
    out = capsys.readouterr().out
    assert "op:\n  Conv2D(filters, kernel" in out and "train.optimizer:\n  adam(lr=0.001" in out
    assert "train.loss:\n  mse" in out and "train.metric:\n  mse" in out  # mse is both
    assert main(["ops", "adm"]) == 2
    assert "did you mean 'adam'?" in capsys.readouterr().err
