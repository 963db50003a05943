"""bench/gpu.py --dry-run: the GPU bench's every step on the CPU at tiny sizes, so the script keeps working.

One process runs the whole dry run (about 30-50 s on 2 cores: in-process netc train/eval of every example,
the fit-vs-hand-written loop with and without train.compile (torch.compile's eager backend), two gloo
torchrun jobs, one with a worker SIGKILLed and resumed, and ResNet-18/GoogLeNet inference at 32x32);
the tests read the report it writes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import EXAMPLES, ROOT


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_dry")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--dry-run", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    return done, out


def test_dry_run_passes_every_row(dry_run):
    done, out = dry_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads((out / "gpu.json").read_text())
    assert report["exit_code"] == 0 and report["settings"]["device"] == "cpu"
    bad = [(r["step"], r["name"], r["detail"][:500]) for r in report["rows"] if r["status"] not in ("ok", "n/a")]
    assert not bad


def test_dry_run_covers_every_step_and_example(dry_run):
    _, out = dry_run
    rows = json.loads((out / "gpu.json").read_text())["rows"]
    steps = {r["step"] for r in rows}
    assert steps == {"examples", "overhead", "torchrun", "inference"}
    names = " ".join(r["name"] for r in rows if r["step"] == "examples")
    assert all(p.stem in names for p in EXAMPLES)  # every example has a row (trained, or n/a with netc's reason)
    trained = [r for r in rows if r["step"] == "examples" and r["name"].endswith("cpu fp32")]
    assert len(trained) >= 9 and all(r["status"] == "ok" for r in trained)
    assert sum("netc eval" in r["name"] for r in rows) >= 8  # the -O2 graph reproduces each run's test metric
    assert [r["name"].endswith("train.compile") for r in rows if r["step"] == "overhead"] == [False, True]
    ddp = [r for r in rows if r["step"] == "torchrun"]
    assert len(ddp) == 2 and ddp[1]["data"]["killed"] and ddp[1]["data"]["killed_after_epochs"] >= 2
    inference = [r for r in rows if r["step"] == "inference"]
    assert len(inference) == 4  # ResNet-18 and GoogLeNet at batch 1 and 4
    for r in inference:
        assert set(r["data"]["max_rel_err"]) == {"unoptimised", "netc -O2", "netc -O2 (tuned)", "torch.compile"}
        assert max(r["data"]["max_rel_err"].values()) <= 1e-4


def test_dry_run_writes_one_markdown_table(dry_run):
    _, out = dry_run
    md = (out / "gpu.md").read_text()
    assert "| step | what | result | verdict | seconds |" in md
    rows = json.loads((out / "gpu.json").read_text())["rows"]
    assert md.count("\n| ") == len(rows) + 2  # the header, its rule and one line per row
