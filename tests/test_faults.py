"""Runner faults end to end, as a user meets them: kill -9 mid-run then --resume; CLI misuse."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

MLP = str(ROOT / "examples" / "digits_mlp.yaml")
SETS = ["--set", "train.epochs=8", "--set", "train.checkpoint_every=1", "--set", "train.early_stopping=null"]


def netc(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "netc", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600, **kw)


def losses(run: Path) -> list[float]:
    return [json.loads(line)["train"]["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_kill_9_mid_run_then_resume_reproduces_the_uninterrupted_losses(tmp_path):
    ref = netc("train", MLP, *SETS, "--out", "ref", cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    expected = losses(tmp_path / "ref")
    assert len(expected) == 8

    rng = random.Random(0)
    for attempt in range(4):  # the kill must land mid-run; retry with a shorter delay if the run won
        run = tmp_path / f"killed{attempt}"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        p = subprocess.Popen([sys.executable, "-m", "netc", "train", MLP, *SETS, "--out", str(run)],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + 300
        while time.time() < deadline and p.poll() is None:
            m = run / "metrics.jsonl"
            if m.exists() and len(m.read_text().splitlines()) >= 2:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.2) / (attempt + 1))
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            break
    else:
        pytest.skip("the run always finished before the kill could land")
    assert p.returncode == -signal.SIGKILL
    resumed = netc("train", MLP, *SETS, "--resume", str(run), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    got = losses(run)
    assert len(got) == 8
    assert got == pytest.approx(expected, rel=0, abs=1e-6)


@pytest.mark.parametrize("args,code,needle", [
    (["train", "missing.yaml"], 1, "no such file"),
    (["train", MLP, "--set", "train.epoch=2"], 2, "did you mean 'epochs'"),
    (["train", MLP, "--set", "train.epochs=two"], 2, "expects an integer"),
    (["train", MLP, "--set", "epochs"], 2, "expected key=value"),
    (["train", MLP, "--bogus"], 2, "unrecognized arguments"),
    (["eval", "no_such_run"], 1, "no such run directory"),
    (["train", "."], 1, "is a directory"),
])
def test_cli_faults_are_clean(tmp_path, args, code, needle):
    out = netc(*args, cwd=tmp_path)
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    assert needle in out.stderr


def test_existing_run_directory_is_refused_unless_forced(tmp_path):
    first = netc("train", MLP, "--set", "train.epochs=1", "--out", "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = netc("train", MLP, "--set", "train.epochs=1", "--out", "run", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    forced = netc("train", MLP, "--set", "train.epochs=1", "--out", "run", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    import torch

    from netc.diagnostics import CheckpointError
    from netc.runner import checkpoint

    model = torch.nn.Linear(3, 2)
    target = tmp_path / "last"
    checkpoint.save_checkpoint(target, model, {"epoch": 1})
    before = checkpoint.read_weights(target / checkpoint.WEIGHTS)

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "_write_synced", full)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(CheckpointError) as info:
        checkpoint.save_checkpoint(target, model, {"epoch": 2})
    msg = str(info.value)
    assert "No space left on device" in msg and "previous checkpoint" in msg and "intact" in msg
    after = checkpoint.read_weights(target / checkpoint.WEIGHTS)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert checkpoint.load_state(target)["epoch"] == 1
    assert not (tmp_path / ".last.tmp").exists()
