"""The embedded data sets (netc/data/*.npz) are exactly scikit-learn's and statsmodels' copies.

netc ships digits, sunspots and co2 inside the package so that training needs neither library
(together about 345 MB installed, and 1.9 s of import at every ``netc train``). This test is
where the shipped files come from: ``NETC_UPDATE_DATA=1 python -m pytest tests/test_embedded_data.py``
rewrites them from the installed scikit-learn and statsmodels; without the flag it checks that the
shipped files and netc's reader of them give, value for value, what the runner used to compute
from those libraries (the same arrays, dtypes and gap interpolation).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from netc.compiler.train.config import DataConfig
from netc.runner.sources import DATA_DIR, SOURCES

UPDATE = os.environ.get("NETC_UPDATE_DATA") == "1"


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    assert np.array_equal(d.data, d.data.astype(np.uint8))  # integer pixel counts 0..16: uint8 is exact
    return {"data": d.data.astype(np.uint8), "target": d.target.astype(np.uint8)}


def _sunspots():
    import statsmodels.api as sm

    df = sm.datasets.sunspots.load_pandas().data
    return {"year": df["YEAR"].to_numpy().astype(np.int16), "activity": df["SUNACTIVITY"].to_numpy(dtype="float64")}


def _co2():
    import statsmodels.api as sm

    s = sm.datasets.co2.load_pandas().data["co2"]  # weekly, with gaps (NaN): shipped as measured
    return {"week": s.index.to_numpy().astype("datetime64[D]"), "co2": s.to_numpy(dtype="float64")}


UPSTREAM = {"digits": _digits, "sunspots": _sunspots, "co2": _co2}


def _as_before(name: str):
    """What netc's readers returned when they called scikit-learn and statsmodels (before 0.1.0's data/)."""
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.data.astype("float32"), d.target.astype("int64"), [str(c) for c in d.target_names]
    import statsmodels.api as sm

    if name == "sunspots":
        return sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(dtype="float64")
    return sm.datasets.co2.load_pandas().data["co2"].interpolate(limit_direction="both").to_numpy(dtype="float64")


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_shipped_file_is_the_upstream_data(name):
    fresh = UPSTREAM[name]()
    path = DATA_DIR / f"{name}.npz"
    if UPDATE:
        np.savez_compressed(path, **fresh)
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(fresh)
        for k, v in fresh.items():
            assert z[k].dtype == v.dtype and z[k].shape == v.shape, k
            np.testing.assert_array_equal(z[k], v, err_msg=f"{name}.npz: {k}")


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_reader_gives_what_the_libraries_gave(name):
    raw = SOURCES[name].read(DataConfig(source=name), [])
    before = _as_before(name)
    if name == "digits":
        x, y, classes = before
        assert raw.x.dtype == x.dtype and raw.y.dtype == y.dtype and raw.class_names == classes
        np.testing.assert_array_equal(raw.x, x)
        np.testing.assert_array_equal(raw.y, y)
    else:
        assert raw.series.dtype == before.dtype
        np.testing.assert_array_equal(raw.series, before)  # bit for bit, interpolated gaps included
        assert not np.isnan(raw.series).any()


def test_shipped_files_are_small():
    sizes = {p.name: p.stat().st_size for p in DATA_DIR.glob("*.npz")}
    assert set(sizes) == {"digits.npz", "sunspots.npz", "co2.npz"}
    assert sum(sizes.values()) < 100_000, sizes
