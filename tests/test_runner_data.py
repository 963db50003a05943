"""Data sources on small files written here in the exact formats; splits, normalisation, faults, augmentation."""

from __future__ import annotations

import csv
import json
import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from netc.diagnostics import DataError
from netc.runner.augment import Augment
from netc.runner.config import AugmentConfig, DataConfig, SplitConfig, TrainConfig
from netc.runner.data import fit_targets, load_data
from netc.runner.sources import SOURCES, infer_source, read_idx

NO_SPLIT = SplitConfig(val=0.0, test=0.0)


# ---------------------------------------------------------------- writers (the real on-disk formats)

def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """MNIST IDX: 00 00 <type 0x08=ubyte> <ndim>, big-endian uint32 dims, raw data."""
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_mnist(directory: Path, n_train=40, n_test=12, size=4, gz=False, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(directory / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, size, size)), gz)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n), gz)
    return directory


def write_cifar(directory: Path, per_batch=6, batches=2, seed=0) -> Path:
    """CIFAR-10 python format: pickled dicts with bytes keys, data uint8 (n, 3072), labels list."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, batches + 1)] + ["test_batch"]
    for name in names:
        d = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, per_batch).tolist(),
             b"data": rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8),
             b"filenames": [f"img{i}.png".encode() for i in range(per_batch)]}
        with open(directory / name, "wb") as f:
            pickle.dump(d, f, protocol=2)
    meta = {b"label_names": [c.encode() for c in ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                 "horse", "ship", "truck"]], b"num_vis": 3072}
    with open(directory / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return directory


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_images(directory: Path, classes=("cat", "dog"), per_class=5, mode="RGB") -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for ci, c in enumerate(classes):
        (directory / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = 10 + i, 12 + 2 * i  # different sizes: the loader resizes
            shape = (h, w, 3) if mode == "RGB" else (h, w)
            Image.fromarray(rng.integers(0, 256, shape).astype(np.uint8), mode).save(directory / c / f"{i}.png")
    (directory / "cat" / "notes.txt").write_text("not an image")
    return directory


def npz_ids(path: Path, n=50, classes=3) -> Path:
    """x holds each sample's id, so splits can be traced back to rows."""
    np.savez(path, x=np.arange(n, dtype=np.float32)[:, None].repeat(2, axis=1), y=np.arange(n) % classes)
    return path


# ---------------------------------------------------------------- digits

@pytest.mark.parametrize("shape", [(1, 8, 8), (8, 8), (64,), ("T", 8)])
def test_digits_reshaped_to_declared_input(shape):
    ds = load_data(DataConfig(source="digits"), [("x", shape, "float32")])
    expected = tuple(8 if d == "T" else d for d in shape)
    assert tuple(ds.train.xs[0].shape[1:]) == expected
    assert len(ds.train) + len(ds.val) + len(ds.test) == 1797
    assert ds.task == "classification" and ds.num_classes == 10 and ds.class_names[:2] == ["0", "1"]
    assert ds.train.xs[0].dtype == torch.float32 and ds.train.y.dtype == torch.int64


def test_digits_shape_mismatch_names_both_shapes():
    with pytest.raises(DataError) as e:
        load_data(DataConfig(source="digits"), [("image", (3, 8, 8), "float32")])
    assert "(64,)" in str(e.value) and "(3, 8, 8)" in str(e.value)
    assert e.value.hint


def test_digits_as_int64_tokens():
    ds = load_data(TrainConfig.from_dict({"data": "digits"}), [("tokens", (64,), "int64")])
    x = ds.train.xs[0]
    assert x.dtype == torch.int64 and int(x.min()) >= 0 and int(x.max()) <= 16  # not normalised


# ---------------------------------------------------------------- splits and normalisation

def test_splits_deterministic_disjoint_and_complete(tmp_path):
    p = npz_ids(tmp_path / "ids.npz", n=50)
    cfg = TrainConfig.from_dict({"data": {"source": "npz", "path": str(p)}, "normalize": "none",
                                 "split": {"val": 0.2, "test": 0.2, "seed": 7}})
    inputs = [("x", (2,), "float32")]
    ids = lambda s: set(s.xs[0][:, 0].long().tolist())
    a, b = load_data(cfg, inputs), load_data(cfg, inputs)
    for name in ("train", "val", "test"):
        assert torch.equal(getattr(a, name).xs[0], getattr(b, name).xs[0])
    tr, va, te = ids(a.train), ids(a.val), ids(a.test)
    assert (len(tr), len(va), len(te)) == (30, 10, 10)
    assert not (tr & va or tr & te or va & te) and tr | va | te == set(range(50))
    other = load_data(cfg.apply_overrides(["train.split.seed=8"]), inputs)
    assert ids(other.test) != te
    assert all(int(a.train.y[i]) == int(a.train.xs[0][i, 0]) % 3 for i in range(len(a.train)))


def test_standard_normalisation_uses_train_statistics_only(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(5, 3, (200, 4)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=rng.integers(0, 2, 200))
    ds = load_data(TrainConfig.from_dict({"data": str(tmp_path / "d.npz"), "normalize": "standard"}),
                   [("x", (4,), "float32")])
    tr = ds.train.xs[0].double()
    assert torch.allclose(tr.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(tr.std(0, unbiased=False), torch.ones(4, dtype=torch.float64), atol=1e-4)
    assert not torch.allclose(ds.test.xs[0].double().mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-5)
    # the stored statistics are those of the raw training rows
    raw_train = tr * torch.tensor(ds.input_norm[0]["scale"]).double() + torch.tensor(ds.input_norm[0]["shift"]).double()
    assert torch.allclose(torch.tensor(ds.input_norm[0]["shift"]).double().reshape(-1), raw_train.mean(0), atol=1e-4)


def test_minmax_normalisation_is_per_channel_for_images(tmp_path):
    ds = load_data(TrainConfig.from_dict({"data": str(write_images(tmp_path / "img", per_class=6)),
                                          "normalize": "minmax", "split": {"val": 0, "test": 0.25}}),
                   [("image", (3, 8, 8), "float32")])
    x = ds.train.xs[0]
    for c in range(3):
        assert float(x[:, c].min()) == pytest.approx(0.0) and float(x[:, c].max()) == pytest.approx(1.0)
    assert np.asarray(ds.input_norm[0]["shift"]).shape == (1, 3, 1, 1)


def test_limit_takes_the_first_samples():
    ds = load_data(TrainConfig.from_dict({"data": {"source": "digits", "limit": 100}}), [("x", (64,), "float32")])
    assert len(ds.train) + len(ds.val) + len(ds.test) == 100


# ---------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory_with_official_test_set(tmp_path, gz):
    d = write_mnist(tmp_path / "mnist", gz=gz)
    ds = load_data(TrainConfig.from_dict({"data": {"source": "idx", "path": str(d)}, "split": {"val": 0.25}}),
                   [("image", (1, 4, 4), "float32")])
    assert (len(ds.train), len(ds.val), len(ds.test)) == (30, 10, 12)  # test = the t10k files
    raw = read_idx(next(d.glob("t10k-labels*")))
    assert ds.test.y.tolist() == raw.tolist()
    assert infer_source(str(d)) == "idx" and SOURCES["idx"].normalize == "minmax"


def test_idx_reader_roundtrip_and_shape(tmp_path):
    a = np.arange(2 * 3 * 5).reshape(2, 3, 5) % 256
    assert np.array_equal(read_idx(write_idx(tmp_path / "a-ubyte", a)), a)
    assert np.array_equal(read_idx(write_idx(tmp_path / "b-ubyte", a, gz=True)), a)


def test_idx_truncated_and_bad_magic(tmp_path):
    p = write_idx(tmp_path / "t-images-idx3-ubyte", np.zeros((4, 3, 3)))
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"header says \(4, 3, 3\).*holds 31 bytes"):
        read_idx(p)
    q = tmp_path / "junk-ubyte"
    q.write_bytes(b"\x12\x34\x56\x78rest")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(q)
    g = tmp_path / "bad-ubyte.gz"
    g.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")[:-6])
    with pytest.raises(DataError, match="cannot read IDX"):
        read_idx(g)


def test_idx_count_mismatch(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", np.zeros((5, 2, 2)))
    write_idx(d / "train-labels-idx1-ubyte", np.zeros(4))
    with pytest.raises(DataError, match="5 samples but train-labels-idx1-ubyte holds 4 labels"):
        load_data(DataConfig(source="idx", path=str(d)), [("x", (1, 2, 2), "float32")])


# ---------------------------------------------------------------- CIFAR-10

def test_cifar_batches(tmp_path):
    d = write_cifar(tmp_path / "cifar-10-batches-py")
    ds = load_data(TrainConfig.from_dict({"data": str(d), "split": {"val": 0.25}}), [("image", (3, 32, 32), "float32")])
    assert (len(ds.train), len(ds.val), len(ds.test)) == (9, 3, 6)
    assert ds.class_names[:3] == ["airplane", "automobile", "bird"]
    with open(d / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert ds.test.y.tolist() == raw[b"labels"]
    # channel-major layout: the first 1024 bytes are the red plane of image 0
    lo, hi = raw[b"data"][0, :1024].min(), raw[b"data"][0, :1024].max()
    red = ds.test.xs[0][0, 0] * ds.input_norm[0]["scale"][0, 0, 0, 0] + ds.input_norm[0]["shift"][0, 0, 0, 0]
    assert float(red.min()) == pytest.approx(lo, abs=1e-3) and float(red.max()) == pytest.approx(hi, abs=1e-3)


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_cifar_pickle_that_runs_code_is_refused(tmp_path):
    d = write_cifar(tmp_path / "c")
    marker = tmp_path / "pwned"
    with open(d / "data_batch_1", "wb") as f:
        pickle.dump({b"data": _Exploit(marker), b"labels": [0]}, f, protocol=2)
    with pytest.raises(DataError, match="refusing to load (posix|os).system"):
        load_data(DataConfig(source="cifar10", path=str(d)), [("image", (3, 32, 32), "float32")])
    assert not marker.exists()


def test_cifar_wrong_content(tmp_path):
    d = write_cifar(tmp_path / "c")
    with open(d / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(DataError, match=r"expected uint8 \(n, 3072\)"):
        load_data(DataConfig(source="cifar10", path=str(d)), [("image", (3, 32, 32), "float32")])


# ---------------------------------------------------------------- NPZ

def test_npz_default_and_custom_keys(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, features=np.ones((20, 3), np.float32), target=np.arange(20) % 2)
    cfg = TrainConfig.from_dict({"data": {"path": str(p), "x_key": "features", "y_key": "target"},
                                 "split": {"val": 0, "test": 0.5}})
    ds = load_data(cfg, [("x", (3,), "float32")])
    assert len(ds.train) == 10 and ds.num_classes == 2
    with pytest.raises(DataError, match=r"no array 'x' \(found \['features', 'target'\]\)"):
        load_data(DataConfig(source="npz", path=str(p)), [("x", (3,), "float32")])


def test_npz_one_array_per_model_input(tmp_path):
    p = tmp_path / "two.npz"
    np.savez(p, image=np.zeros((20, 1, 4, 4), np.float32), meta=np.ones((20, 3), np.float32), y=np.arange(20) % 2)
    inputs = [("image", (1, 4, 4), "float32"), ("meta", (3,), "float32")]
    ds = load_data(DataConfig(source="npz", path=str(p)), inputs, split=NO_SPLIT)
    assert [tuple(x.shape) for x in ds.train.xs] == [(20, 1, 4, 4), (20, 3)]
    with pytest.raises(DataError, match="lacks"):
        load_data(DataConfig(source="npz", path=str(p)), [("image", (1, 4, 4), "float32"), ("aux", (3,), "float32")])


def test_npz_object_arrays_are_refused(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match="unpickle"):
        load_data(DataConfig(source="npz", path=str(p)), [("x", (1,), "float32")])


def test_npz_channels_last_images_are_transposed(tmp_path):
    x = np.random.default_rng(0).random((10, 5, 6, 3)).astype(np.float32)
    np.savez(tmp_path / "hwc.npz", x=x, y=np.arange(10) % 2)
    ds = load_data(TrainConfig.from_dict({"data": str(tmp_path / "hwc.npz"), "normalize": "none"}),
                   [("x", (3, 5, 6), "float32")], split=NO_SPLIT)
    expected = torch.from_numpy(x.transpose(0, 3, 1, 2))
    assert all(any(torch.equal(a, b) for b in expected) for a in ds.train.xs[0])  # same images, shuffled


# ---------------------------------------------------------------- CSV

def test_csv_numeric_labels_and_feature_selection(tmp_path):
    rows = [[i, i * 2.5, "ignored", i % 3] for i in range(30)]
    p = write_csv(tmp_path / "d.csv", ["a", "b", "note", "label"], rows)
    cfg = TrainConfig.from_dict({"data": {"path": str(p), "label": "label", "features": ["a", "b"]},
                                 "normalize": "none", "split": {"val": 0, "test": 0}})
    ds = load_data(cfg, [("x", (2,), "float32")])
    assert ds.task == "classification" and ds.num_classes == 3
    assert ds.train.xs[0].shape == (30, 2)
    i = int(ds.train.xs[0][0, 0])
    assert float(ds.train.xs[0][0, 1]) == i * 2.5 and int(ds.train.y[0]) == i % 3


def test_csv_string_labels_become_class_names(tmp_path):
    rows = [[i, ["setosa", "virginica"][i % 2]] for i in range(10)]
    p = write_csv(tmp_path / "iris.csv", ["f", "species"], rows)
    ds = load_data(DataConfig(source="csv", path=str(p)), [("x", (1,), "float32")], split=NO_SPLIT)
    assert ds.class_names == ["setosa", "virginica"]
    assert set(ds.train.y.tolist()) == {0, 1}


def test_csv_regression_targets_with_mse(tmp_path):
    rows = [[i, 0.5 * i + 0.25] for i in range(20)]
    p = write_csv(tmp_path / "r.csv", ["x", "y"], rows)
    cfg = TrainConfig.from_dict({"data": str(p), "loss": "mse"})
    ds = load_data(cfg, [("x", (1,), "float32")])
    assert ds.task == "regression" and ds.train.y.dtype == torch.float32 and ds.train.y.shape[1:] == (1,)


@pytest.mark.parametrize("header, rows, cfg, message", [
    (["a", "label"], [[1, 0], ["x", 1]], {}, r"d.csv:3: column 'a' holds 'x', not a number"),
    (["a", "label"], [[1, 0], [2]], {}, "row has 1 fields, the header has 2"),
    (["a", "label"], [[1, 0]], {"label": "lable"}, "no column 'lable'"),
    (["a", "label"], [[1, 0], ["", 1]], {}, "NaN"),
])
def test_csv_faults(tmp_path, header, rows, cfg, message):
    p = write_csv(tmp_path / "d.csv", header, rows)
    with pytest.raises(DataError, match=message) as e:
        load_data(DataConfig(source="csv", path=str(p), **cfg), [("x", (1,), "float32")], split=NO_SPLIT)
    if "lable" in message:
        assert "did you mean 'label'?" in e.value.hint


def test_json_lines_read_as_the_same_table(tmp_path):
    """A JSON Lines file (the source inferred from its name) reads as the same table written as CSV: the first
    object's keys as the header (later lines in any order), class names as labels."""
    rows = [{"a": i, "b": i * 2.5, "species": ["setosa", "virginica"][i % 2]} for i in range(10)]
    p = tmp_path / "iris.jsonl"
    p.write_text("".join(json.dumps(dict(reversed(r.items())) if i % 2 else r) + "\n"  # key order may vary
                         for i, r in enumerate(rows)), encoding="utf-8")
    ds = load_data(DataConfig(path=str(p)), [("x", (2,), "float32")], split=NO_SPLIT)
    as_csv = load_data(DataConfig(path=str(write_csv(tmp_path / "iris.csv", list(rows[0]),
                                                     [list(r.values()) for r in rows]))),
                       [("x", (2,), "float32")], split=NO_SPLIT)
    assert ds.class_names == as_csv.class_names == ["setosa", "virginica"]
    assert torch.equal(ds.train.xs[0], as_csv.train.xs[0]) and torch.equal(ds.train.y, as_csv.train.y)


@pytest.mark.parametrize("lines, message", [
    (['{"a": 1, "label": 0}', '{"a": 1, "label": 0'], r"d.jsonl:2:\d+: not JSON"),
    (['{"a": 1, "label": 0}', "", '{"a": 2, "label": 1}'], r"d.jsonl:2:1: not JSON"),  # a blank line
    (['{"a": 1, "label": 0}', '[1, 0]'], r"d.jsonl:2: expected a JSON object, got list"),
    (['{"a": 1, "label": 0}', '{"label": 1}'], r"d.jsonl:2: no key 'a'; line 1 has a, label"),
    (['{"a": 1, "label": 0}', '{"a": 1, "label": 0, "b": 2}'], r"d.jsonl:2: key 'b'; line 1 has a, label"),
    (['{"a": true, "label": 0}'], r"d.jsonl:1: column 'a' holds 'true', not a number"),
    (['{"a": [1, 2], "label": 0}'], r"d.jsonl:1: key 'a' holds a JSON list, not a number or a text"),
    (['{"a": "x", "label": 0}'], r"d.jsonl:1: column 'a' holds 'x', not a number"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_json_lines_faults_are_located(tmp_path, lines, message, stream):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = TrainConfig.from_dict({"data": {"path": str(p), "stream": stream, "workers": 0},
                                 "split": {"val": 0, "test": 0}})
    with pytest.raises(DataError, match=message):
        ds = load_data(cfg, [("x", (1,), "float32")])
        for _ in ds.train:  # the streamed path parses feature cells as batches are read
            pass


# ---------------------------------------------------------------- image folders

@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_resized_to_declared_input(tmp_path, channels):
    d = write_images(tmp_path / "pets", per_class=4)
    ds = load_data(TrainConfig.from_dict({"data": str(d), "split": {"val": 0, "test": 0}}),
                   [("image", (channels, 9, 7), "float32")])
    assert tuple(ds.train.xs[0].shape) == (8, channels, 9, 7)
    assert ds.class_names == ["cat", "dog"] and sorted(ds.train.y.tolist()) == [0] * 4 + [1] * 4
    assert infer_source(str(d)) == "folder"


def test_image_folder_needs_an_image_shape(tmp_path):
    with pytest.raises(DataError, match=r"\(channels, height, width\)"):
        load_data(DataConfig(source="folder", path=str(write_images(tmp_path / "p"))), [("x", (10,), "float32")])


# ---------------------------------------------------------------- time series

def test_sunspots_windows_are_chronological_with_naive_baseline():
    import statsmodels.api as sm

    series = sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy()
    cfg = TrainConfig.from_dict({"data": "sunspots", "split": {"val": 0.1, "test": 0.2}})
    ds = load_data(cfg, [("x", (12, 1), "float32")])
    assert ds.task == "regression" and ds.series and tuple(ds.train.xs[0].shape[1:]) == (12, 1)
    shift, scale = ds.target_scale
    unz = lambda t: t.double().numpy() * float(scale) + float(shift)
    t1 = int(round(len(series) * 0.7))
    # normalisation statistics come from the training segment only
    assert float(shift) == pytest.approx(series[:t1].mean(), rel=1e-5)
    assert float(scale) == pytest.approx(series[:t1].std(), rel=1e-5)
    # train targets come before val targets, which come before test targets; the last target is the last value
    assert unz(ds.test.y)[-1, 0] == pytest.approx(series[-1], abs=1e-3)
    assert unz(ds.train.y)[-1, 0] == pytest.approx(series[t1 - 1], abs=1e-3)
    assert unz(ds.val.y)[0, 0] == pytest.approx(series[t1], abs=1e-3)
    # windows are consecutive values; the target follows the window
    x0, y0 = unz(ds.train.xs[0][0, :, 0]), unz(ds.train.y[0])
    assert np.allclose(x0, series[:12], atol=1e-3) and y0[0] == pytest.approx(series[12], abs=1e-3)
    naive = ds.baselines["naive_rmse"]
    test_y, last = unz(ds.test.y)[:, 0], unz(ds.test.xs[0][:, -1, 0])
    assert naive == pytest.approx(np.sqrt(((test_y - last) ** 2).mean()), rel=1e-4)


def test_co2_gaps_interpolated_and_horizon():
    cfg = TrainConfig.from_dict({"data": {"source": "co2", "window": 8, "horizon": 4}})
    ds = load_data(cfg, [("x", ("T",), "float32")])
    assert tuple(ds.train.xs[0].shape[1:]) == (8,) and tuple(ds.train.y.shape[1:]) == (4,)
    for s in (ds.train, ds.val, ds.test):
        assert torch.isfinite(s.xs[0]).all() and torch.isfinite(s.y).all()


@pytest.mark.parametrize("data, shape, message", [
    ("sunspots", ("T", 1), "set train.data.window"),
    ({"source": "sunspots", "window": 6}, (12, 1), "window is 6 but input 'x' is declared with 12 steps"),
    ("sunspots", (12, 2), r"\(window,\) or \(window, 1\)"),
    ({"source": "sunspots", "window": 300}, ("T",), "has no complete window"),
])
def test_series_faults(data, shape, message):
    with pytest.raises(DataError, match=message) as e:
        load_data(TrainConfig.from_dict({"data": data}), [("x", shape, "float32")])
    assert e.value.hint


# ---------------------------------------------------------------- faults before training

def test_missing_file():
    with pytest.raises(DataError, match="data file not found: /no/such/file.npz") as e:
        load_data(DataConfig(source="npz", path="/no/such/file.npz"), [("x", (2,), "float32")])
    assert "train.data.path" in e.value.hint


def test_labels_out_of_range_for_the_model():
    ds = load_data(DataConfig(source="digits"), [("x", (64,), "float32")])
    with pytest.raises(DataError, match="class id 9 but the model outputs 5 classes") as e:
        fit_targets(ds, (5,), "classification")
    assert "Dense(10)" in e.value.hint


def test_bce_needs_binary_labels_and_one_logit():
    ds = load_data(DataConfig(source="digits"), [("x", (64,), "float32")])
    with pytest.raises(DataError, match="bce needs 0/1 labels"):
        fit_targets(ds, (1,), "binary")
    with pytest.raises(DataError, match="one logit per sample"):
        fit_targets(ds, (10,), "binary")


def test_regression_targets_must_fit_the_output():
    ds = load_data(TrainConfig.from_dict({"data": {"source": "sunspots", "horizon": 3}}), [("x", (12,), "float32")])
    with pytest.raises(DataError, match=r"outputs \(1,\) per sample \(1 values\) but the targets have 3"):
        fit_targets(ds, (1,), "regression")
    assert tuple(fit_targets(ds, (3,), "regression").train.y.shape[1:]) == (3,)


def test_empty_split(tmp_path):
    p = npz_ids(tmp_path / "tiny.npz", n=4)
    with pytest.raises(DataError, match="the val split is empty: 0.1 of 4 samples rounds to 0") as e:
        load_data(TrainConfig.from_dict({"data": str(p), "split": {"val": 0.1, "test": 0.25}}), [("x", (2,), "float32")])
    assert "split.val: 0" in e.value.hint


def test_nan_in_inputs(tmp_path):
    x = np.ones((10, 2), np.float32)
    x[7, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=np.zeros(10, np.int64))
    with pytest.raises(DataError, match="NaN or infinite values in 1 sample\\(s\\), first at index 7"):
        load_data(DataConfig(source="npz", path=str(tmp_path / "nan.npz")), [("x", (2,), "float32")], split=NO_SPLIT)


def test_several_inputs_need_npz():
    with pytest.raises(DataError, match="declares 2 inputs"):
        load_data(DataConfig(source="digits"), [("a", (64,), "float32"), ("b", (64,), "float32")])


# ---------------------------------------------------------------- augmentation

def _images(n=6):
    return (torch.arange(n * 2 * 5 * 5, dtype=torch.float32).reshape(n, 2, 5, 5) + 1,)


def test_random_crop_shifts_images_with_zero_padding():
    aug = Augment(AugmentConfig(crop=2), [(2, 5, 5)], [torch.float32])
    x = _images()
    out = aug(x, torch.Generator().manual_seed(0))[0]
    assert out.shape == x[0].shape
    padded = torch.nn.functional.pad(x[0], (2, 2, 2, 2))
    for i in range(len(out)):  # every output is some 5x5 window of its padded input
        assert any(torch.equal(out[i], padded[i, :, dy:dy + 5, dx:dx + 5]) for dy in range(5) for dx in range(5))
    again = aug(x, torch.Generator().manual_seed(0))[0]
    assert torch.equal(out, again)


def test_flip_and_noise():
    x = _images(64)
    flipped = Augment(AugmentConfig(flip=True), [(2, 5, 5)], [torch.float32])(x, torch.Generator().manual_seed(0))[0]
    same = [torch.equal(a, b) for a, b in zip(flipped, x[0])]
    mirrored = [torch.equal(a, b.flip(-1)) for a, b in zip(flipped, x[0])]
    assert all(s or m for s, m in zip(same, mirrored)) and 10 < sum(mirrored) < 54
    noisy = Augment(AugmentConfig(noise=0.5), [(2, 5, 5)], [torch.float32])(x, torch.Generator().manual_seed(0))[0]
    assert (noisy - x[0]).std().item() == pytest.approx(0.5, rel=0.1)
    assert not Augment(AugmentConfig(), [(2, 5, 5)], [torch.float32])


def test_augment_refuses_non_images():
    with pytest.raises(DataError, match="work on images"):
        Augment(AugmentConfig(crop=2), [(64,)], [torch.float32])
    with pytest.raises(DataError, match="needs a float input"):
        Augment(AugmentConfig(noise=0.1), [(64,)], [torch.int64])


def test_symmetric_normalisation_spans_minus_one_to_one():
    ds = load_data(TrainConfig.from_dict({"data": "digits", "normalize": "symmetric"}), [("x", (1, 8, 8), "float32")])
    x = ds.train.xs[0]
    assert float(x.min()) == pytest.approx(-1.0) and float(x.max()) == pytest.approx(1.0)
    assert float(np.asarray(ds.input_norm[0]["shift"]).squeeze()) == pytest.approx(8.0)  # pixels 0..16
