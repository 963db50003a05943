"""Self-contained runs: data paths resolve from the spec's folder, eval and predict work from any
working directory, predict reads the training CSV (label column dropped), and a second ``netc train``
of a spec gets a new numbered run directory (``--force`` still overwrites)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from netc.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

SPEC = """\
netc: 1
name: rows
imports: {lib: lib/blocks.yaml}
input: [4]
model: lib.DenseReLU(8) → Dense(1)
train:
  data: {source: csv, path: data/rows.csv, label: y}
  loss: mse
  epochs: 1
  batch_size: 16
  plots: false
"""


def project(root: Path) -> Path:
    """A spec in root/proj importing root/proj/lib/blocks.yaml, its CSV (4 features and the target y, in the
    middle) in root/proj/data."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 3.0]) + 10
    (root / "proj" / "data").mkdir(parents=True)
    rows = ["a,b,y,c,d"] + [f"{r[0]:.5f},{r[1]:.5f},{t:.5f},{r[2]:.5f},{r[3]:.5f}" for r, t in zip(x, y)]
    (root / "proj" / "data" / "rows.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (root / "proj" / "lib").mkdir()
    (root / "proj" / "lib" / "blocks.yaml").write_text("netc: 1\nblocks:\n  DenseReLU(n): Dense(n) → ReLU\n",
                                                       encoding="utf-8")
    (root / "proj" / "rows.yaml").write_text(SPEC, encoding="utf-8")
    return root / "proj" / "rows.yaml"


def test_runs_are_self_contained_and_numbered(tmp_path, monkeypatch, capsys):
    spec = project(tmp_path)
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    # 1. the data path is relative to the spec, not to where netc runs; the run records it absolute
    monkeypatch.chdir(work)
    assert main(["train", str(spec)]) == 0
    saved = json.loads((work / "runs" / "rows" / "config.json").read_text())
    assert saved["train"]["data"]["path"] == str(tmp_path / "proj" / "data" / "rows.csv")
    kept = (work / "runs" / "rows" / "spec.yaml").read_text()  # the run's copy of the spec: absolute paths
    assert str(tmp_path / "proj" / "lib" / "blocks.yaml") in kept and str(tmp_path / "proj" / "data") in kept
    # 2. a second run of the same spec: a new numbered directory; --force overwrites the first
    assert main(["train", str(spec)]) == 0
    assert main(["train", str(spec), "--force"]) == 0
    assert sorted(p.name for p in (work / "runs").iterdir()) == ["rows", "rows-2"]
    capsys.readouterr()
    # 3. eval and predict from another directory (the import found too); predict drops the CSV's label
    monkeypatch.chdir(elsewhere)
    run = str(work / "runs" / "rows-2")
    assert main(["eval", run, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 16  # the test split: 0.2 of 80 rows
    assert main(["predict", run, str(tmp_path / "proj" / "data" / "rows.csv"), "-o", "p.csv"]) == 0
    preds = np.loadtxt(elsewhere / "p.csv", delimiter=",", skiprows=1)
    assert preds.shape == (80,) and np.isfinite(preds).all()
    # the same rows as JSON Lines: the same predictions
    lines = (tmp_path / "proj" / "data" / "rows.csv").read_text().splitlines()
    keys = lines[0].split(",")
    (elsewhere / "rows.jsonl").write_text("".join(json.dumps(dict(zip(keys, map(float, r.split(","))))) + "\n"
                                                  for r in lines[1:]), encoding="utf-8")
    assert main(["predict", run, str(elsewhere / "rows.jsonl"), "-o", "pj.csv"]) == 0
    assert np.loadtxt(elsewhere / "pj.csv", delimiter=",", skiprows=1).tolist() == preds.tolist()


def test_a_tuning_trial_spec_keeps_the_data_path_of_the_original_spec(tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    import yaml

    from netc.compiler.check import front_end_file
    from netc.runner.tune import trial_spec

    spec = project(tmp_path)
    spec.write_text(SPEC + "tune:\n  params: {}\n  train:\n    optimizer.lr: loguniform(1e-3, 1e-2)\n",
                    encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # neither the spec's folder nor the trial's
    checked = front_end_file(str(spec))
    text = trial_spec(checked, checked.space, {"train.optimizer.lr": 0.005}, None, tmp_path / "study" / "trial_0", [])
    assert yaml.safe_load(text)["train"]["data"]["path"] == str(tmp_path / "proj" / "data" / "rows.csv")
