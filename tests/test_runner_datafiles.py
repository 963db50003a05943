"""Bounded data reads: special files refused, decompression and image bombs stopped at the limit that names its flag.

Each case is one the independent attack of issue 21 found (a hang, an exhausted memory or an
internal error on the old main); the files are written here in their real formats.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from netc.diagnostics import DataError
from netc.runner.config import DataConfig
from netc.runner.sources import SOURCES

IMAGE = [("image", (1, 8, 8), "float32")]
FLAT = [("x", (64,), "float32")]


def read(source: str, path: Path, inputs=FLAT, **keys):
    return SOURCES[source].read(DataConfig(source=source, path=str(path), **keys), inputs)


def test_a_fifo_as_data_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "data.npz"
    os.mkfifo(fifo)
    for source in ("npz", "csv", "idx"):
        with pytest.raises(DataError, match="not a regular file"):
            read(source, fifo)


def test_a_device_as_data_is_refused():
    with pytest.raises(DataError, match="not a regular file"):
        read("csv", Path("/dev/zero"))


def test_a_gzipped_csv_bomb_stops_at_max_bytes(tmp_path):
    p = tmp_path / "bomb.csv.gz"
    p.write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * 250_000))  # 1 MB of text from a few KB
    assert p.stat().st_size < 20_000
    with pytest.raises(DataError, match=r"decompresses to more than 97.7 KiB.*train\.data\.max_bytes") as e:
        read("csv", p, max_bytes=100_000)
    assert "--set train.data.max_bytes=" in e.value.hint
    assert len(read("csv", p).y) == 250_000  # within the default limit it reads as before


def test_a_gzipped_idx_bomb_stops_at_max_bytes(tmp_path):
    header = b"\x00\x00\x08\x03" + (1000).to_bytes(4, "big") + (100).to_bytes(4, "big") * 2
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(header + bytes(1000 * 100 * 100)))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (1000).to_bytes(4, "big")
                                                                        + bytes(1000)))
    with pytest.raises(DataError, match="decompresses to more than .*train.data.max_bytes"):
        read("idx", tmp_path, max_bytes=1_000_000)


def test_an_npz_whose_members_inflate_past_the_limit_is_refused_unread(tmp_path):
    p = tmp_path / "bomb.npz"
    buf = io.BytesIO()
    np.save(buf, np.zeros((20_000, 64)))
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", buf.getvalue())
        z.writestr("y.npy", buf.getvalue())
    with pytest.raises(DataError, match="inflates to more than .*train.data.max_bytes"):
        read("npz", p, max_bytes=1_000_000)


def test_a_cifar_batch_of_shared_nested_lists_is_refused(tmp_path):
    d = tmp_path / "cifar"
    d.mkdir()
    row = [0] * 3072
    with open(d / "data_batch_1", "wb") as f:  # a few KB that numpy would expand to 10,000 × 3072 int64
        pickle.dump({b"data": [row] * 10_000, b"labels": [0] * 10_000}, f, protocol=2)
    with pytest.raises(DataError, match="data must be a numpy array and labels a list of class ids"):
        read("cifar10", d, inputs=[("image", (3, 32, 32), "float32")])


def test_an_image_past_max_pixels_is_refused_before_decoding(tmp_path):
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        Image.new("L", (8, 8)).save(tmp_path / c / "small.png")
    Image.new("L", (400, 300)).save(tmp_path / "b" / "large.png")
    with pytest.raises(DataError, match=r"400 × 300 = 120,000 pixels, more than 100,000 \(train.data.max_pixels"):
        read("folder", tmp_path, inputs=IMAGE, max_pixels=100_000)
    assert len(read("folder", tmp_path, inputs=IMAGE).y) == 3


def test_netc_predict_on_zero_samples_or_a_fifo_is_a_clean_error(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("netc: 1\nname: t\ninput: [64]\nmodel: Dense(10)\ntrain:\n  data: {source: digits, limit: 100}\n"
                    "  epochs: 1\n  plots: false\n")

    def netc(*args):
        return subprocess.run([sys.executable, "-m", "netc", *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, check=False)

    assert netc("train", "s.yaml", "--out", "run").returncode == 0
    np.save(tmp_path / "none.npy", np.zeros((0, 64)))
    out = netc("predict", "run", "none.npy", "-o", "p.csv")
    assert out.returncode == 1 and "no samples for input 'x'" in out.stderr and "Traceback" not in out.stderr
    os.mkfifo(tmp_path / "fifo.npy")
    out = netc("predict", "run", "fifo.npy", "-o", "p.csv")
    assert out.returncode == 1 and "not a regular file" in out.stderr


def test_netc_predict_output_paths_are_checked_before_any_work(tmp_path):
    from netc.cli import main

    spec = tmp_path / "s.yaml"
    spec.write_text("netc: 1\nname: t\ninput: [64]\nmodel: Dense(10)\ntrain:\n  data: {source: digits, limit: 100}\n"
                    "  epochs: 1\n  plots: false\n")
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 0
    np.save(tmp_path / "x.npy", np.zeros((3, 64)))
    os.mkfifo(tmp_path / "out.csv")  # nobody reads it: writing would block forever
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "out.csv")]) == 2
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.npy")]) == 2
    assert np.load(tmp_path / "x.npy").shape == (3, 64)  # the input is intact
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "x.npy"), "-o",
                 str(tmp_path / "no" / "dir" / "p.csv")]) == 2
