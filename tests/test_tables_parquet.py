"""Parquet tables (netc.runner.tables.read_parquet, the [parquet] extra): files written by pyarrow read as the
same tables as CSV for the numeric csv source, the text sources and netc predict; bad files and cells are
located errors; streaming is refused with a hint; a missing pyarrow is a clean exit naming the extra."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from test_runner_data import NO_SPLIT, write_csv  # noqa: E402

from netc.diagnostics import DataError, MissingExtra  # noqa: E402
from netc.runner import tables  # noqa: E402
from netc.runner.config import DataConfig, TrainConfig  # noqa: E402
from netc.runner.data import load_data  # noqa: E402
from netc.runner.sources import infer_source  # noqa: E402


def write_parquet(path, columns: dict) -> str:
    pq.write_table(pa.table(columns), path)
    return str(path)


ROWS = [{"a": i, "b": i * 2.5, "species": ["setosa", "virginica"][i % 2]} for i in range(10)]


def test_parquet_reads_as_the_same_table_as_csv(tmp_path):
    p = write_parquet(tmp_path / "iris.parquet", {k: [r[k] for r in ROWS] for k in ROWS[0]})
    assert infer_source(p) == "csv"
    ds = load_data(DataConfig(path=p), [("x", (2,), "float32")], split=NO_SPLIT)
    as_csv = load_data(DataConfig(path=str(write_csv(tmp_path / "iris.csv", list(ROWS[0]),
                                                     [list(r.values()) for r in ROWS]))),
                       [("x", (2,), "float32")], split=NO_SPLIT)
    assert ds.class_names == as_csv.class_names == ["setosa", "virginica"]
    assert torch.equal(ds.train.xs[0], as_csv.train.xs[0]) and torch.equal(ds.train.y, as_csv.train.y)


def test_cells_are_written_as_a_csv_would_hold_them(tmp_path):
    p = write_parquet(tmp_path / "t.parquet", {"i": [1, None], "f": [0.5, float("nan")], "s": ["x", "y"],
                                                "b": [True, False]})
    table, rows = tables.read_table(tmp_path / "t.parquet", 1 << 20)
    assert table.header == ["i", "f", "s", "b"] and table.kind == "Parquet file"
    # null and NaN are both a missing value, as an empty CSV cell
    assert rows == [["1", "0.5", "x", "true"], ["", "", "y", "false"]] and p.endswith("t.parquet")


def test_the_index_pandas_stores_is_not_a_column(tmp_path):
    """pandas writes a shuffled or filtered DataFrame's index as a last column (__index_level_0__): read as
    the table's last column it would become the label; it is left out."""
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({k: [r[k] for r in ROWS] for k in ROWS[0]}).sample(frac=1, random_state=0)
    df.to_parquet(tmp_path / "shuffled.parquet")
    assert "__index_level_0__" in pq.read_schema(tmp_path / "shuffled.parquet").names  # pandas did store it
    table, rows = tables.read_table(tmp_path / "shuffled.parquet", 1 << 20)
    assert table.header == ["a", "b", "species"] and tables.header_of(tmp_path / "shuffled.parquet") == table.header
    ds = load_data(DataConfig(path=str(tmp_path / "shuffled.parquet")), [("x", (2,), "float32")], split=NO_SPLIT)
    assert ds.class_names == ["setosa", "virginica"]


@pytest.mark.parametrize("columns, message", [
    ({"a": [[1, 2], [3]], "label": [0, 1]}, r"t.parquet:row 1: column 'a' holds a list, not a number or a text"),
    ({"a": [1.0, float("nan")], "label": [0, 1]}, "NaN"),
    ({"a": ["1.5", "many"], "label": [0, 1]}, r"t.parquet:row 2: column 'a' holds 'many', not a number"),
    ({"a": [1.0, 2.0], "label": [0, 1]}, None),  # the control: reads
])
def test_bad_cells_are_located_by_row(tmp_path, columns, message):
    p = write_parquet(tmp_path / "t.parquet", columns)
    cfg = DataConfig(path=p)
    if message is None:
        assert len(load_data(cfg, [("x", (1,), "float32")], split=NO_SPLIT).train.y) == 2
        return
    with pytest.raises(DataError, match=message):
        load_data(cfg, [("x", (1,), "float32")], split=NO_SPLIT)


def test_a_file_that_is_not_parquet_and_one_over_max_bytes(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really parquet at all")
    with pytest.raises(DataError, match=r"bad.parquet: cannot read Parquet file") as e:
        load_data(DataConfig(path=str(bad)), [("x", (1,), "float32")], split=NO_SPLIT)
    assert "to_parquet" in e.value.hint
    p = write_parquet(tmp_path / "t.parquet", {"a": [1.0] * 100, "label": [0] * 100})
    with pytest.raises(DataError, match="over train.data.max_bytes"):
        load_data(DataConfig(path=p, max_bytes=100), [("x", (1,), "float32")], split=NO_SPLIT)
    # a small file whose columns decode to far more than it holds: refused from its metadata, before reading
    bomb = write_parquet(tmp_path / "bomb.parquet", {"a": [0.0] * 200_000, "label": [0] * 200_000})
    size = (tmp_path / "bomb.parquet").stat().st_size
    with pytest.raises(DataError, match=r"decodes to [\d,]+ bytes, over train.data.max_bytes"):
        load_data(DataConfig(path=bomb, max_bytes=20 * size), [("x", (1,), "float32")], split=NO_SPLIT)


def test_streaming_a_parquet_file_is_refused_with_a_hint_and_auto_reads_it_whole(tmp_path):
    p = write_parquet(tmp_path / "t.parquet", {"a": [float(i) for i in range(20)], "label": [i % 2 for i in range(20)]})
    cfg = TrainConfig.from_dict({"data": {"path": p, "stream": True, "workers": 0}, "split": {"val": 0, "test": 0}})
    with pytest.raises(DataError, match="read whole, not streamed") as e:
        load_data(cfg, [("x", (1,), "float32")])
    assert "stream: false" in e.value.hint
    auto = TrainConfig.from_dict({"data": {"path": p, "stream_above": 1}, "split": {"val": 0, "test": 0}})
    assert len(load_data(auto, [("x", (1,), "float32")]).train.y) == 20


def test_text_sources_and_predict_read_parquet(tmp_path, capsys):
    from netc.runner.textfit import _texts
    from netc.runner.textread import text_labels

    p = write_parquet(tmp_path / "reviews.parquet", {"text": ["good film", "bad film", "fine"],
                                                      "label": ["pos", "neg", "pos"]})
    raw = text_labels(DataConfig(source="text_labels", path=p, text="text", label="label"), None)
    assert list(raw.x) == ["good film", "bad film", "fine"] and raw.class_names == ["neg", "pos"]

    class Args:
        prompt, inputs = None, p

    assert _texts(Args) == ["good film", "bad film", "fine"]
    Args.inputs = write_parquet(tmp_path / "other.parquet", {"review": ["x"]})
    with pytest.raises(DataError, match="no column 'text'"):
        _texts(Args)


def test_predict_reads_samples_from_parquet(tmp_path):
    from netc.runner.cli import read_inputs

    p = write_parquet(tmp_path / "s.parquet", {"a": [1.0, 2.0], "b": [3.0, 4.0], "label": [0, 1]})
    (x,) = read_inputs(p, [("x", (2,), "float32")], DataConfig(path=p))  # the label column dropped
    assert x.shape == (2, 2) and x.tolist() == [[1.0, 3.0], [2.0, 4.0]]


def test_without_pyarrow_the_extra_is_named(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.partition(".")[0] == "pyarrow":
            raise ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow")
        return real(name, *args, **kwargs)

    write_parquet(tmp_path / "t.parquet", {"a": [1.0], "label": [0]})
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(ModuleNotFoundError) as e:
        tables.read_table(tmp_path / "t.parquet", 1 << 20)
    missing = MissingExtra.of("netc train", e.value)
    assert missing is not None and "pip install 'netc[parquet]'" in missing.hint and "Parquet extra" in str(missing)
