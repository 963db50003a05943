"""``netc train`` / ``eval`` / ``predict`` through the real command line entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from netc.cli import main

SPEC = """\
netc: 1
name: tiny_digits
input: [64]
model: Dense(32) → ReLU → Dense(10)
train:
  data: {{source: digits, limit: 400}}
  optimizer: {optimizer}
  epochs: {epochs}
  batch_size: 32
  metrics: [accuracy, f1]
  plots: false
"""


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def spec(tmp_path: Path, optimizer="adam(lr=1e-2)", epochs=2, name="s.yaml") -> str:
    p = tmp_path / name
    p.write_text(SPEC.format(optimizer=optimizer, epochs=epochs), encoding="utf-8")
    return str(p)


def test_train_eval_predict(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", spec(tmp_path), "--out", str(run), "--set", "train.epochs=1"]) == 0
    assert {"spec.yaml", "run.json", "config.json", "metrics.jsonl", "results.json", "best", "last"} <= \
        {p.name for p in run.iterdir()}
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # --set applied
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "test split, 80 samples" in out and "accuracy" in out and "precision" in out
    assert main(["eval", str(run), "--split", "val"]) == 0
    assert "val split, 40 samples" in capsys.readouterr().out
    from sklearn.datasets import load_digits

    np.save(tmp_path / "x.npy", load_digits().data[:7])
    assert main(["predict", str(run), str(tmp_path / "x.npy"), "-o", str(tmp_path / "p.csv")]) == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0].startswith("pred,p_0,p_1") and len(lines) == 8
    probs = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert main(["predict", str(run / "best"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "p.npy")]) == 0
    assert np.load(tmp_path / "p.npy").shape == (7,)


def test_existing_run_needs_force_or_resume(tmp_path, capsys):
    s, run = spec(tmp_path, epochs=1), tmp_path / "run"
    assert main(["train", s, "--out", str(run)]) == 0
    assert main(["train", s, "--out", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", s, "--resume", str(run), "--set", "train.epochs=2"]) == 0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    assert main(["train", s, "--out", str(run), "--force"]) == 0


def test_bad_set_is_a_usage_error(tmp_path, capsys):
    assert main(["train", spec(tmp_path), "--out", str(tmp_path / "r"), "--set", "train.epoch=3"]) == 2
    err = capsys.readouterr().err
    assert "train has no key 'epoch'" in err and "did you mean 'epochs'?" in err


def test_train_block_errors_point_into_the_spec(tmp_path, capsys):
    s = spec(tmp_path, optimizer="adam(lrr=1e-3)")
    assert main(["train", s, "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert f"{s}:7:14: error[arg]: train.optimizer: adam has no argument 'lrr'" in err
    assert "optimizer: adam(lrr=1e-3)" in err and "did you mean 'lr'?" in err


def test_divergence_exit_code(tmp_path, capsys):
    assert main(["train", spec(tmp_path, optimizer="sgd(lr=1e12)", epochs=3), "--out", str(tmp_path / "r")]) == 3
    assert "loss became NaN/Inf at epoch 1" in capsys.readouterr().err


def test_eval_of_a_bare_checkpoint_needs_the_spec(tmp_path, capsys):
    s, run = spec(tmp_path, epochs=1), tmp_path / "run"
    assert main(["train", s, "--out", str(run)]) == 0
    weights = tmp_path / "w.safetensors"
    weights.write_bytes((run / "best" / "model.safetensors").read_bytes())
    assert main(["eval", str(weights)]) == 2
    assert "--spec" in capsys.readouterr().err
    assert main(["eval", str(weights), "--spec", s]) == 0
    results = json.loads((run / "results.json").read_text())
    assert f"{results['test']['accuracy']:.4f}" in capsys.readouterr().out


def test_two_models_that_are_not_a_gan_are_refused_clearly(tmp_path, capsys):
    p = tmp_path / "two.yaml"
    p.write_text("""\
netc: 1
name: two
models:
  encoder: {input: [64], model: Dense(8)}
  decoder: {input: [8], model: Dense(64)}
train: {data: digits}
""", encoding="utf-8")
    assert main(["train", str(p), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "defines 2 models (encoder, decoder)" in err and "generator and discriminator" in err


def test_train_block_check_is_torch_free(tmp_path):
    import subprocess
    import sys

    s = spec(tmp_path, optimizer="adam(lrr=1e-3)")
    code = ("import sys\nfrom netc.compiler.check import check_file\nfrom netc.runner.cli import train_config\n"
            "from netc.diagnostics import SpecError\n"
            f"try:\n    train_config(check_file({s!r}))\nexcept SpecError as e:\n    print(e.span.line, e.span.col)\n"
            "print([m for m in ('torch', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "7 14" and out[1] == "[]"


# ---------------------------------------------------------------- one run directory, one writer

def test_a_failed_resume_leaves_the_run_intact(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", spec(tmp_path), "--out", str(run), "--set", "train.epochs=1"]) == 0
    before = {name: (run / name).read_bytes() for name in ("spec.yaml", "run.json", "config.json")}
    other = tmp_path / "other.yaml"
    other.write_text(SPEC.format(optimizer="adam(lr=1e-2)", epochs=2).replace("Dense(32)", "Dense(16)"))
    capsys.readouterr()
    assert main(["train", str(other), "--resume", str(run)]) == 1  # the checkpoint does not fit Dense(16)
    assert "does not match the model" in capsys.readouterr().err
    assert {name: (run / name).read_bytes() for name in before} == before
    assert main(["eval", str(run)]) == 0  # the good run still evaluates


def test_a_second_writer_of_a_run_directory_is_refused(tmp_path, capsys):
    from netc.runner.rundir import RunDir

    run = tmp_path / "run"
    with RunDir(run).lock():  # as another netc train holding the directory would
        assert main(["train", spec(tmp_path), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "is being written by another netc train" in err and "Traceback" not in err
    assert main(["train", spec(tmp_path), "--out", str(run), "--set", "train.epochs=1"]) == 0  # free again


def test_out_that_is_a_file_is_a_clean_error(tmp_path, capsys):
    f = tmp_path / "taken"
    f.write_text("not a run")
    assert main(["train", spec(tmp_path), "--out", str(f)]) == 2
    assert "is a file, not a run directory" in capsys.readouterr().err
    assert f.read_text() == "not a run"


def test_a_finished_run_says_what_to_do_next_and_eval_speaks_json(tmp_path, capsys):
    run = tmp_path / "run"
    s = spec(tmp_path)
    assert main(["train", s, "--out", str(run), "--set", "train.epochs=1"]) == 0
    err = capsys.readouterr().err
    assert f"netc eval {run}" in err and f"netc predict {run} SAMPLES.npy" in err
    assert f"netc train {s} --resume {run} --set train.epochs=2" in err
    assert main(["eval", str(run), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "test" and result["samples"] == 80 and 0 <= result["accuracy"] <= 1
    assert result["report"]["per_class"]


def test_a_data_error_during_training_is_located_at_train_data(tmp_path, capsys):
    """netc check cannot read files; what netc train finds in them points at the spec's train.data."""
    p = tmp_path / "s.yaml"
    p.write_text("netc: 1\ninput: [4]\nmodel: Dense(3)\ntrain:\n  data: {source: csv, path: missing.csv}\n"
                 "  epochs: 1\n")
    assert main(["train", str(p), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert f"{p}:5:3: error[data]: data file not found" in err and "data: {source: csv" in err
