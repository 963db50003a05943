"""netc tune: the tune: block (checked, located, corners shape-checked) and the Optuna study run on it.

The first tests are torch-free (the front end); the last ones run `netc tune` in subprocesses on a
few hundred digits, 3 epochs and tiny widths: pruning, best.yaml reproduced by `netc train`, two
workers sharing one embedded study, Ctrl-C and resume.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from netc.compiler.frontend import front_end
from netc.diagnostics import SpecError

SPACE = """\
netc: 1
name: tiny
params: {width: 8, depth: 1, dropout: 0.1}
input: [1, 8, 8]
model: Conv2D(width, 3, padding=same) * depth → ReLU → MaxPool(2) → Flatten → Dropout(dropout) → Dense(10)
train:
  data: {source: digits, limit: 300}
  optimizer: adam(lr=1e-3)
  epochs: 3
  batch_size: 32
tune:
  params:
    width: choice(4, 8)
    depth: int(1, 2)
    dropout: uniform(0.0, 0.3)
  train:
    optimizer.lr: choice(0.00001, 0.003)
  seed: 1
"""


def check(text: str) -> list:
    try:
        front_end(text, "t.yaml")
    except SpecError as e:
        return e.diagnostics
    return []


# ---------------------------------------------------------------- the search space, torch-free

def test_a_valid_space_reads_with_its_defaults():
    c = front_end(SPACE, "t.yaml")
    assert [d.name for d in c.space.dims] == ["width", "depth", "dropout", "train.optimizer.lr"]
    assert c.space.defaults(c.spec) == {"width": 8, "depth": 1, "dropout": 0.1}  # lr 1e-3 is not a choice


def test_a_shape_invalid_corner_is_a_located_error():
    text = SPACE.replace("padding=same", "").replace("depth: int(1, 2)", "depth: int(1, 4)")
    d, = check(text)
    assert d.kind == "shape" and "corner" in d.message and "depth=4" in d.message
    line = text.splitlines()[d.span.line - 1]
    assert line.strip() == "depth: int(1, 4)" and line[d.span.col - 1:d.span.end_col - 1] == "int(1, 4)"
    assert "narrow the range of depth" in d.hint


def test_netc_check_reports_the_corner(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPACE.replace("padding=same", "").replace("depth: int(1, 2)", "depth: int(1, 4)"))
    p = subprocess.run([sys.executable, "-m", "netc", "check", str(spec)], capture_output=True, text=True,
                       timeout=60, check=False)
    assert p.returncode == 1 and f"{spec}:14:12: error[shape]: the search space fails at its corner" in p.stderr


@pytest.mark.parametrize(("old", "new", "message"), [
    ("width: choice(4, 8)", "widht: choice(4, 8)", "no parameter 'widht'"),
    ("depth: int(1, 2)", "depth: uniform(1, 2)", "draws fractions"),
    ("depth: int(1, 2)", "depth: int(2, 1)", "low must be below high"),
    ("dropout: uniform(0.0, 0.3)", "dropout: gauss(0.0, 0.3)", "unknown distribution 'gauss'"),
    ("optimizer.lr: choice(0.00001, 0.003)", "optimizer.lr: loguniform(0, 1)", "log scale needs low > 0"),
    ("optimizer.lr: choice(0.00001, 0.003)", "optimizer.lrr: loguniform(1e-4, 1e-2)", "adam has no argument 'lrr'"),
    ("optimizer.lr: choice(0.00001, 0.003)", "batch_sz: choice(16, 32)", "train has no key 'batch_sz'"),
    ("optimizer.lr: choice(0.00001, 0.003)", "epochs: int(0, 3)", "train.epochs must be >= 1"),
    ("  seed: 1", "  pruner: medain", "not one of"),
])
def test_search_space_mistakes_are_located(old, new, message):
    text = SPACE.replace(old, new)
    diags = check(text)
    assert len(diags) == 1 and message in diags[0].message, diags
    lines = [ln.strip() for ln in text.splitlines()]
    assert diags[0].span is not None and diags[0].span.line == lines.index(new.strip()) + 1


def test_a_repeat_count_may_be_a_parameter():
    c = front_end(SPACE, "t.yaml", params={"depth": 3})
    assert sum(n.op == "Conv2D" for n in c.program.main.nodes) == 3
    assert "must be a whole number" in check(SPACE.replace("depth: 1,", "depth: 0,"))[0].message


def test_a_trial_spec_is_plain_and_exact():
    from netc.compiler.space import plain_spec, train_with

    c = front_end(SPACE, "t.yaml")
    params, train = c.space.split({"width": 4, "depth": 2, "dropout": 0.123456789012345,
                                   "train.optimizer.lr": 0.003})
    text = plain_spec(c.spec, params, train_with(c.spec.train, train), ".", ["a header"])
    assert "tune" not in text and "choice(" not in text and text.startswith("# a header\n")
    again = front_end(text, "best.yaml")
    assert again.space is None and again.spec.params["dropout"] == 0.123456789012345
    assert again.train.optimizer == "adam(lr=0.003)" and again.train.data.limit == 300


# ---------------------------------------------------------------- netc tune (torch + optuna)

optuna = pytest.importorskip("optuna")
pytest.importorskip("torch")


def tune(spec: Path, out: Path, *extra: str, wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "netc", "tune", str(spec), "--out", str(out), *extra]
    if not wait:
        return subprocess.Popen(cmd, cwd=spec.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(cmd, cwd=spec.parent, env=env, capture_output=True, text=True, timeout=300, check=False)


def study_of(out: Path):
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(out / "study.journal")))
    name, = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


@pytest.fixture
def spec(tmp_path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(SPACE)
    return p


def test_tune_prunes_writes_best_and_train_reproduces_it(spec, tmp_path):
    out = tmp_path / "study"
    p = tune(spec, out, "--trials", "7")
    assert p.returncode == 0, p.stderr
    states = [t.state.name for t in study_of(out).trials]
    assert len(states) == 7 and "PRUNED" in states and "COMPLETE" in states, states
    assert "pruned" in p.stdout and "trial" in p.stdout.splitlines()[0]  # the results table
    for f in ("best.yaml", "trials.csv", "history.png", "importance.png"):
        assert (out / f).stat().st_size > 0, f
    best = study_of(out).best_trial
    assert (out / f"trial_{best.number:04d}" / "results.json").exists()  # every trial is a run directory
    text = (out / "best.yaml").read_text()
    assert "\ntune:" not in text and "choice(" not in text
    run = tmp_path / "again"
    t = subprocess.run([sys.executable, "-m", "netc", "train", str(out / "best.yaml"), "--out", str(run)],
                       cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                       timeout=300, check=False)
    assert t.returncode == 0, t.stderr
    assert json.loads((run / "results.json").read_text())["best_value"] == best.value  # same seed, same value


def test_two_workers_share_one_embedded_study(spec, tmp_path):
    out = tmp_path / "shared"
    workers = [tune(spec, out, "--trials", "6", wait=False) for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    trials = study_of(out).trials
    assert sorted(t.number for t in trials) == list(range(6))  # N trials: none lost, none twice
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both took part
    assert sorted(p.name for p in out.glob("trial_*")) == [f"trial_{i:04d}" for i in range(6)]


def test_ctrl_c_stops_cleanly_and_the_study_resumes(spec, tmp_path):
    out = tmp_path / "stopped"
    w = tune(spec, out, "--trials", "3", wait=False)
    deadline = time.monotonic() + 120
    while not (out / "trial_0001" / "spec.yaml").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    w.send_signal(signal.SIGINT)
    _, err = w.communicate(timeout=120)
    assert w.returncode == 130 and "Traceback" not in err, err
    p = tune(spec, out, "--trials", "3")
    assert p.returncode == 0, p.stderr
    trials = study_of(out).trials
    done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == 3 and all(t.user_attrs.get("interrupted") for t in trials if t not in done)


def test_a_spec_without_a_tune_block_is_a_usage_error(tmp_path):
    p = tune(ROOT / "examples" / "digits_cnn.yaml", tmp_path / "x", "--trials", "1")
    assert p.returncode == 2 and "no tune: block" in p.stderr
