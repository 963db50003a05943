"""Streamed data (runner/stream.py, runner/lazy.py): the same run as in memory, exact resume, one share per rank.

Run by pytest, this file is also the torchrun workers' script (see ``test_two_ranks_read_each_sample_once``):
every rank logs the source rows its DataLoader workers read, per epoch.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT

from netc.diagnostics import DataError
from netc.runner import stream
from netc.runner.cli import _build, _program, inputs_of, train_config
from netc.runner.data import load_data
from netc.runner.loop import TrainingInterrupted, fit, seed_everything

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

SPEC = """\
netc: 1
name: streamed
input: {image: [1, 8, 8]}
model: Flatten → Dense(32) → ReLU → Dense(10)
train:
  data: {source: SOURCE, path: PATH}
  split: {val: 0.1, test: 0.1, seed: 0}
  optimizer: adam(lr=3e-3)
  epochs: 3
  batch_size: 32
  checkpoint_every: 1
  plots: false
"""
N = 240  # images: 192 train, 24 val, 24 test; batches of 32 split evenly over 2 ranks


def digits(n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` embedded digits as uint8 (n, 1, 8, 8) images (pixel counts 0-16 scaled to 0-240)."""
    d = np.load(ROOT / "netc" / "data" / "digits.npz")
    return (d["data"][:n].reshape(n, 1, 8, 8) * 15).astype(np.uint8), d["target"][:n].astype(np.int64)


def png(a: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(a[0]).save(out, format="PNG")
    return out.getvalue()


def write_folder(root: Path, n: int = N) -> Path:
    x, y = digits(n)
    for i in range(n):
        (root / str(y[i])).mkdir(parents=True, exist_ok=True)
        (root / str(y[i]) / f"{i:05d}.png").write_bytes(png(x[i]))
    return root


def write_shards(root: Path, n: int = N, per_shard: int = 100) -> Path:
    """WebDataset shards as webdataset.ShardWriter writes them: <key>.png and <key>.cls per sample."""
    x, y = digits(n)
    root.mkdir(parents=True)
    for s in range(0, n, per_shard):
        with tarfile.open(root / f"shard-{s // per_shard:04d}.tar", "w") as t:
            for i in range(s, min(s + per_shard, n)):
                for ext, data in ((".png", png(x[i])), (".cls", str(int(y[i])).encode())):
                    info = tarfile.TarInfo(f"{i:06d}{ext}")
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
    return root


def spec(tmp: Path, source: str, path: Path) -> Path:
    p = tmp / f"{source}.yaml"
    p.write_text(SPEC.replace("SOURCE", source).replace("PATH", str(path)), encoding="utf-8")
    return p


def train(spec_path: Path, out: Path, sets=(), resume=None, hook=None):
    program = _program(str(spec_path), None)
    cfg = train_config(program, list(sets))
    seed_everything(cfg.seed)
    model = _build(program)
    if hook is not None:
        model.register_forward_pre_hook(hook)
    return fit(model, inputs_of(program.main), cfg, out, resume=resume, progress=False)


def losses(result) -> list[float]:
    """Per epoch: the train loss, then the validation loss."""
    return [r[split]["loss"] for r in result.history for split in ("train", "val")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("stream") / "images")


# ---------------------------------------------------------------- the same numbers as in memory

@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_folder_trains_exactly_as_in_memory(folder, tmp_path, workers):
    s = spec(tmp_path, "folder", folder)
    memory = train(s, tmp_path / "memory")
    streamed = train(s, tmp_path / "streamed", ["train.data.stream=true", f"train.data.workers={workers}"])
    assert losses(streamed) == pytest.approx(losses(memory), abs=1e-6)
    assert streamed.test == pytest.approx(memory.test, abs=1e-6)
    config = json.loads((tmp_path / "streamed" / "config.json").read_text())
    assert config["train"]["data"]["stream"] is True
    assert config["preprocess"]["inputs"] == json.loads((tmp_path / "memory" / "config.json").read_text())[
        "preprocess"]["inputs"]  # minmax statistics from the streamed pass equal the in-memory ones


def test_npy_directory_streams_with_standard_statistics_as_in_memory(tmp_path):
    x, y = digits()
    (tmp_path / "arrays").mkdir()
    np.save(tmp_path / "arrays" / "x.npy", x.astype(np.float32))
    np.save(tmp_path / "arrays" / "y.npy", y)
    s = spec(tmp_path, "npy", tmp_path / "arrays")
    sets = ["train.normalize=standard", "train.epochs=2"]
    memory = train(s, tmp_path / "memory", sets)
    streamed = train(s, tmp_path / "streamed", [*sets, "train.data.stream=true", "train.data.workers=0"])
    assert losses(streamed) == pytest.approx(losses(memory), abs=1e-5)


def write_table(path, x, y) -> Path:
    """The digits as a table: CSV with a header row, or JSON Lines written by json.dumps."""
    names = [f"p{i}" for i in range(64)]
    if path.suffix == ".csv":
        lines = [",".join([*names, "digit"])] + [",".join([*(str(v) for v in x[i].reshape(-1)), f"d{y[i]}"])
                                                 for i in range(len(y))]
    else:
        lines = [json.dumps({**dict(zip(names, x[i].reshape(-1).tolist())), "digit": f"d{y[i]}"}) for i in range(len(y))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_tables_stream_row_by_row_as_in_memory(tmp_path, fmt):
    x, y = digits()
    s = spec(tmp_path, "csv", write_table(tmp_path / f"digits.{fmt}", x, y))
    memory = train(s, tmp_path / "memory", ["train.epochs=2"])
    streamed = train(s, tmp_path / "streamed", ["train.epochs=2", "train.data.stream=true", "train.data.workers=0"])
    assert losses(streamed) == pytest.approx(losses(memory), abs=1e-5)
    assert json.loads((tmp_path / "streamed" / "results.json").read_text())["report"]["classes"][:2] == ["d0", "d1"]
    if fmt == "jsonl":  # the same table as a CSV: the same training
        as_csv = spec(tmp_path, "csv", write_table(tmp_path / "digits.csv", x, y))
        assert losses(memory) == pytest.approx(losses(train(as_csv, tmp_path / "csv", ["train.epochs=2"])), abs=1e-6)


def test_shards_written_by_webdataset_read_as_written():
    """The layout as the webdataset library itself writes it (ShardWriter: <key>.png and <key>.cls)."""
    wds = pytest.importorskip("webdataset")
    import tempfile

    from netc.runner.config import DataConfig

    x, y = digits(30)
    with tempfile.TemporaryDirectory() as tmp:
        with wds.ShardWriter(os.path.join(tmp, "part-%04d.tar"), maxcount=12) as sink:
            for i in range(30):
                sink.write({"__key__": f"s{i:04d}", "png": png(x[i]), "cls": int(y[i])})
        assert len(list(Path(tmp).glob("*.tar"))) == 3
        ds = load_data(DataConfig(source="tar", path=tmp, stream=True, workers=0),
                       [("image", (1, 8, 8), "float32")], normalize="none")
        got = torch.cat([b[0] for b in ds.train.batches(8)])
        assert torch.equal(got, torch.from_numpy(x[ds.train.rows].astype(np.float32)))
        assert ds.train.y.tolist() == y[ds.train.rows].tolist()


def test_tar_shards_hold_the_same_samples_as_the_folder(folder, tmp_path):
    shards = write_shards(tmp_path / "shards")
    inputs = [("image", (1, 8, 8), "float32")]
    from netc.runner.config import DataConfig

    tar = load_data(DataConfig(source="tar", path=str(shards), stream=True, workers=0), inputs)
    mem = load_data(DataConfig(source="tar", path=str(shards), stream=False), inputs)
    assert isinstance(tar.train, stream.StreamSplit) and not isinstance(mem.train, stream.StreamSplit)
    assert torch.equal(torch.cat([b[0] for b in tar.train.batches(50)]), mem.train.xs[0])
    assert torch.equal(tar.train.y, mem.train.y)


def test_auto_streams_above_the_threshold_and_refuses_what_memory_cannot_hold(folder, monkeypatch):
    from netc.runner.config import DataConfig

    inputs = [("image", (1, 8, 8), "float32")]
    auto = load_data(DataConfig(source="folder", path=str(folder), stream_above=N * 64 * 4 - 1, workers=0), inputs)
    assert isinstance(auto.train, stream.StreamSplit)
    small = load_data(DataConfig(source="folder", path=str(folder), stream_above=N * 64 * 4), inputs)
    assert not isinstance(small.train, stream.StreamSplit)
    monkeypatch.setattr(stream, "available_memory", lambda: 100_000)
    with pytest.raises(DataError) as e:
        load_data(DataConfig(source="folder", path=str(folder), stream=False), inputs)
    assert "240 samples of 256 bytes each need about 180 KiB" in str(e.value)
    assert "97.7 KiB is available" in str(e.value) and "stream: true" in e.value.hint


# ---------------------------------------------------------------- bad files: clean errors naming the file

def netc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "netc", *args], check=False, cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def test_a_corrupt_image_found_by_a_worker_is_a_clean_error_naming_it(tmp_path):
    images = write_folder(tmp_path / "images", 60)
    bad = images / "3" / "00003.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG signature and nothing readable after it
    r = netc("train", str(spec(tmp_path, "folder", images)), "--out", str(tmp_path / "run"), "--set",
             "train.data.stream=true", "--set", "train.data.workers=1", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"error[data]: {bad}: cannot read image" in r.stderr and "hint: remove or replace the file" in r.stderr


def test_a_truncated_shard_and_an_npy_of_strings_are_refused_naming_the_file(tmp_path):
    from netc.runner.config import DataConfig

    shards = write_shards(tmp_path / "shards", 60, per_shard=30)
    cut = shards / "shard-0001.tar"
    cut.write_bytes(cut.read_bytes()[:3000])
    (tmp_path / "arrays").mkdir()
    np.save(tmp_path / "arrays" / "x.npy", np.array(["a"] * 60))
    np.save(tmp_path / "arrays" / "y.npy", np.zeros(60, dtype=np.int64))
    inputs = [("image", (1, 8, 8), "float32")]
    with pytest.raises(DataError, match=f"{cut}: cannot read tar shard"):
        load_data(DataConfig(source="tar", path=str(shards), stream=True), inputs)
    with pytest.raises(DataError, match="x.npy: arrays of dtype <U1 cannot be training data"):
        load_data(DataConfig(source="npy", path=str(tmp_path / "arrays"), stream=True), inputs)


# ---------------------------------------------------------------- exact resume

def test_interrupted_mid_epoch_resumes_from_the_next_batch(folder, tmp_path):
    s = spec(tmp_path, "folder", folder)
    sets = ["train.data.stream=true", "train.data.workers=1"]
    whole = train(s, tmp_path / "whole", sets)
    calls = [0]

    def ctrl_c(module, args):
        if module.training:
            calls[0] += 1
            if calls[0] == 6 + 3:  # the 3rd batch of epoch 2 (6 batches per epoch)
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted):
        train(s, tmp_path / "cut", sets, hook=ctrl_c)
    resumed = train(s, tmp_path / "cut", sets, resume=tmp_path / "cut")
    assert losses(resumed) == pytest.approx(losses(whole), abs=1e-7)


def test_kill_9_mid_run_then_resume_gives_the_uninterrupted_streamed_losses(folder, tmp_path):
    s = spec(tmp_path, "folder", folder)
    sets = ["--set", "train.data.stream=true", "--set", "train.data.workers=1", "--set", "train.epochs=4"]
    ref = netc("train", str(s), *sets, "--out", "ref", cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    expected = [json.loads(line)["train"]["loss"] for line in (tmp_path / "ref" / "metrics.jsonl").open()]
    rng = random.Random(0)
    for attempt in range(4):  # the kill must land mid-run
        run = tmp_path / f"killed{attempt}"
        p = subprocess.Popen([sys.executable, "-m", "netc", "train", str(s), *sets, "--out", str(run)], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ,
                                                                                          "OMP_NUM_THREADS": "1"})
        deadline = time.time() + 300
        while time.time() < deadline and p.poll() is None:
            m = run / "metrics.jsonl"
            if m.exists() and len(m.read_text().splitlines()) >= 2:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.1) / (attempt + 1))
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            break
    else:
        pytest.skip("the run always finished before the kill could land")
    resumed = netc("train", str(s), *sets, "--resume", str(run), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    got = [json.loads(line)["train"]["loss"] for line in (run / "metrics.jsonl").open()]
    assert got == pytest.approx(expected, rel=0, abs=1e-6)


# ---------------------------------------------------------------- two ranks, each sample once per epoch

def test_two_ranks_read_each_sample_once_per_epoch(folder, tmp_path):
    s = spec(tmp_path, "folder", folder)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          __file__, str(s), str(tmp_path)], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    from netc.runner.config import DataConfig, SplitConfig

    ds = load_data(DataConfig(source="folder", path=str(folder), stream=True, workers=0),
                   [("image", (1, 8, 8), "float32")], split=SplitConfig(val=0.1, test=0.1, seed=0))
    train_rows = sorted(ds.train.rows.tolist())
    reads: dict[tuple[int, str], list[int]] = {}
    for rank in (0, 1):
        for line in (tmp_path / f"reads{rank}.jsonl").open():
            r = json.loads(line)
            reads.setdefault((rank, r["phase"]), []).extend(r["rows"])
    for epoch in (1, 2, 3):
        mine = [reads[(rank, f"epoch{epoch}")] for rank in (0, 1)]
        assert all(len(m) == len(set(m)) == len(train_rows) // 2 for m in mine)  # once each, an even share
        assert not set(mine[0]) & set(mine[1])
        assert sorted(mine[0] + mine[1]) == train_rows
    single = train(s, tmp_path / "single", ["train.data.stream=true", "train.data.workers=0"])
    two = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").open()]
    assert [r[split]["loss"] for r in two for split in ("train", "val")] == pytest.approx(losses(single), abs=1e-5)


def worker(spec_path: Path, root: Path) -> None:
    """One rank: train streamed with one DataLoader worker, logging the rows every read asks for."""
    from netc.runner import distributed
    from netc.runner.supervised import Supervised

    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    log = root / f"reads{rank}.jsonl"
    phase = ["setup"]
    start, end = Supervised.start_epoch, Supervised.end_epoch
    read = stream.Rows.__getitems__

    def start_epoch(self, ctx, ep):
        phase[0] = f"epoch{ep.number}"  # set before the epoch's workers start: they inherit it
        return start(self, ctx, ep)

    def end_epoch(self, ctx, ep, record):
        phase[0] = "eval"
        return end(self, ctx, ep, record)

    def logged(self, positions):
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"phase": phase[0], "rows": self.rows[np.asarray(positions)].tolist()}) + "\n")
        return read(self, positions)

    Supervised.start_epoch, Supervised.end_epoch, stream.Rows.__getitems__ = start_epoch, end_epoch, logged
    train(spec_path, root / "ddp", ["train.data.stream=true", "train.data.workers=1"])
    distributed.teardown()


if __name__ == "__main__":  # a torchrun worker
    worker(Path(sys.argv[1]), Path(sys.argv[2]))
