"""netc eval / predict run the optimised (tuned) inference graph by default, with the training graph's outputs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from conftest import ROOT

CNN = str(ROOT / "examples" / "digits_cnn.yaml")


def netc(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "netc", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


def test_predict_and_eval_optimised_equal_unoptimised(tmp_path):
    from sklearn.datasets import load_digits

    assert netc("train", CNN, "--set", "train.epochs=1", "--out", "run", cwd=tmp_path).returncode == 0
    np.save(tmp_path / "x.npy", load_digits().data[:64].astype("float32"))
    for name, extra in (("opt.npy", []), ("plain.npy", ["--no-optimize"])):
        out = netc("predict", "run", "x.npy", "-o", name, *extra, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    # predict keeps the tuner's measured choice, cached in the run directory (netc.backend.tune)
    decisions = list((tmp_path / "run" / "tune").glob("*.json"))
    assert len(decisions) == 1, decisions
    a, b = np.load(tmp_path / "opt.npy"), np.load(tmp_path / "plain.npy")
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)  # float32 BatchNorm folding tolerance
    e1 = netc("eval", "run", cwd=tmp_path)
    e2 = netc("eval", "run", "--no-optimize", cwd=tmp_path)
    assert e1.returncode == 0 and e2.returncode == 0
    assert e1.stdout.splitlines()[2] == e2.stdout.splitlines()[2]  # the accuracy line
