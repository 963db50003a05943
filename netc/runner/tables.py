"""Tables: CSV with a header row, JSON Lines (one object per line) or Parquet, read into rows of text cells.

One reader for every source that reads a table: the numeric ``csv`` source (whole, or streamed row
by row for CSV and JSON Lines), the text sources (``text_labels``, ``pairs``) and the samples of
``netc predict``. The same located errors serve them all: file:line for text formats, file:row for
Parquet (read with pyarrow, the ``[parquet]`` extra: the format Hugging Face datasets publish).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netc.diagnostics import DataError, did_you_mean
from netc.runner import datafiles

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
SUFFIXES = (".csv", ".csv.gz", *JSONL_SUFFIXES, *PARQUET_SUFFIXES)  # every table file this module reads


class Table:
    """How one line of a table file becomes cells: CSV (a header row) or JSON Lines (one object per line,
    the first object's keys as the header). The same checks and messages serve the whole and the streamed read.
    """

    def __init__(self, p: Path):
        self.p = p
        self.jsonl = p.name.lower().endswith(JSONL_SUFFIXES)
        self.parquet = p.name.lower().endswith(PARQUET_SUFFIXES)
        self.first = 1 if self.jsonl or self.parquet else 2  # the file line (Parquet: the row) of data row 0
        self.header: list[str] = []
        self.kind = "JSON Lines file" if self.jsonl else "Parquet file" if self.parquet else "CSV file"

    def at(self, n: int) -> str:
        """Where data line ``n`` is, for messages: ``file:n`` (Parquet: ``file:row n``)."""
        return f"{self.p}:row {n}" if self.parquet else f"{self.p}:{n}"

    def cells(self, n: int, line: str) -> list[str]:
        """Line ``n``'s cells, one string per header column ('' for an empty cell or a JSON null); a JSON
        object's values in the header's order."""
        import csv
        import json

        if not self.jsonl:
            try:
                return next(csv.reader([line]), [])
            except csv.Error as e:
                raise DataError(f"{self.p}:{n}: cannot read CSV: {e}", hint="expected UTF-8 CSV") from None
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{self.p}:{n}:{e.colno}: not JSON: {e.msg}",
                            hint="JSON Lines: one object per line, no blank lines") from None
        if not isinstance(obj, dict):
            raise DataError(f"{self.p}:{n}: expected a JSON object, got {type(obj).__name__}",
                            hint='one object per line, e.g. {"x1": 0.5, "x2": 1.0, "label": 3}')
        if not self.header:
            self.header = [str(k) for k in obj]
        if len(obj) != len(self.header) or any(k not in obj for k in self.header):
            missing = [k for k in self.header if k not in obj]
            what = f"no key {missing[0]!r}" if missing else f"key {next(k for k in obj if k not in self.header)!r}"
            near = did_you_mean(missing[0], [k for k in obj if k not in self.header]) if missing else None
            raise DataError(f"{self.p}:{n}: {what}; line 1 has {', '.join(self.header)}",
                            hint=f"{near + ' ' if near else ''}every line needs the keys of the first line")
        return [cell(self.at(n), k, obj[k]) for k in self.header]

    def check_width(self, n: int, row: list[str],
                    hint: str = "every row needs one value per column (quote cells holding commas)") -> None:
        """A located error when CSV line ``n`` has not one cell per header column."""
        if len(row) != len(self.header):
            raise DataError(f"{self.p}:{n}: row has {len(row)} fields, the header has {len(self.header)}", hint=hint)

    def start(self, first_line: str) -> list[str] | None:
        """Read the first line: the header (CSV, returns None) or the first data row's cells (JSON Lines)."""
        row = self.cells(1, first_line)
        if self.jsonl:
            return row
        self.header = [h.strip() for h in row]
        return None


def cell(at: str, key: str, v: Any, what: str = "key") -> str:
    """A JSON (``what="key"``) or Parquet (``"column"``) value at ``at`` (:meth:`Table.at`) as the text a CSV
    cell would hold: numbers and strings as written, true/false as JSON spells them (class names), null
    (and a Parquet NaN) as empty."""
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if not isinstance(v, (int, float, str)):
        kind = f"a JSON {type(v).__name__}" if what == "key" else f"a {type(v).__name__}"
        raise DataError(f"{at}: {what} {key!r} holds {kind}, not a number or a text",
                        hint="table values are numbers, texts (class names), true/false or null")
    return v if isinstance(v, str) else repr(v)


def _parquet_columns(schema: Any) -> list[str]:
    """A Parquet schema's data columns: without the index pandas stores beside them (``__index_level_0__``
    after a shuffle or a filter), which would otherwise be read as a feature, or as the label."""
    meta = schema.pandas_metadata or {}
    index = {c for c in meta.get("index_columns", []) if isinstance(c, str)}
    return [str(n) for n in schema.names if n not in index]


def read_parquet(p: Path, max_bytes: int) -> tuple[Table, list[list[str]]]:
    """A whole Parquet file (pyarrow): its column names and its rows as cells, as :func:`cell` writes them;
    a value that is not a number, a text, a boolean or null (a list, a struct, a date) is a located error."""
    import pyarrow as pa  # the [parquet] extra: a missing one is exit 2 naming it
    import pyarrow.parquet as pq

    table = Table(p)
    size = datafiles.regular(p, table.kind).stat().st_size
    if size > max_bytes:
        raise DataError(f"{p}: {size:,} bytes, over train.data.max_bytes ({max_bytes:,})",
                        hint="raise train.data.max_bytes if the file is meant to be this large")
    try:
        # bounded before it is spent: a compressed column can decode to many times the file's size
        # (dictionary and run-length encoding hide repeats even from the uncompressed sizes: count 8 bytes
        # a value at least)
        meta = pq.read_metadata(p)
        encoded = sum(meta.row_group(g).column(c).total_uncompressed_size
                      for g in range(meta.num_row_groups) for c in range(meta.num_columns))
        decoded = max(encoded, 8 * meta.num_rows * meta.num_columns)
        if decoded > max_bytes:
            raise DataError(f"{p}: decodes to {decoded:,} bytes, over train.data.max_bytes ({max_bytes:,})",
                            hint="raise train.data.max_bytes if the table is meant to be this large")
        names = _parquet_columns(meta.schema.to_arrow_schema())  # the footer already read: no second open
        data = pq.read_table(p, columns=names)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DataError(f"{p}: cannot read {table.kind}: {str(e).splitlines()[0] if str(e) else e}",
                        hint=PARQUET_HINT) from None
    table.header = [h.strip() for h in names]
    columns = [data.column(k).to_pylist() for k in range(data.num_columns)]
    rows = [[cell(table.at(r + 1), key, v, "column") for key, v in zip(table.header, values)]
            for r, values in enumerate(zip(*columns))]
    if not rows:
        raise DataError(f"{p}: needs at least one data row", hint="add rows to the file")
    return table, rows


def read_table(p: Path, max_bytes: int) -> tuple[Table, list[list[str]]]:
    """A whole CSV, JSON Lines or Parquet file: its header and its data rows as cells, one per header column."""
    import csv
    import io
    import zlib

    table = Table(p)
    if table.parquet:
        return read_parquet(p, max_bytes)
    try:
        with io.TextIOWrapper(datafiles.open_binary(p, max_bytes, table.kind), encoding="utf-8",
                              newline="") as f:
            if table.jsonl:
                lines = f.read().split("\n")  # as the streamed read splits (not str.splitlines: U+2028 is text)
                if lines[-1] == "":
                    lines.pop()
                rows = [table.cells(n, line) for n, line in enumerate(lines, start=1)]
            else:
                rows = list(csv.reader(f))  # whole: quoted line breaks are allowed here
                table.header = [h.strip() for h in rows.pop(0)] if rows else []
                for r, row in enumerate(rows):
                    table.check_width(r + table.first, row)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{p}: cannot read {table.kind}: {e}", hint=HINT[table.jsonl]) from None
    if not rows:
        raise DataError(f"{p}: needs {'a header row and ' if not table.jsonl else ''}at least one data row",
                        hint="add rows to the file")
    return table, rows


HINT = {False: "expected UTF-8 text with a header row", True: "expected UTF-8 JSON Lines, one object per line"}
PARQUET_HINT = "expected a Parquet file (as pandas.DataFrame.to_parquet or pyarrow.parquet.write_table write it)"


def header_of(p: Path) -> list[str]:
    """A table file's column names without reading its rows (CSV: the header row; JSON Lines: the first
    object's keys; Parquet: the schema); [] when the file cannot be read as a table."""
    table = Table(p)
    try:
        if table.parquet:
            import pyarrow.parquet as pq

            return [h.strip() for h in _parquet_columns(pq.read_schema(p))]
        with datafiles.open_binary(p, datafiles.DEFAULT_MAX_BYTES, table.kind) as f:
            table.start(f.readline().decode("utf-8"))
    except (DataError, UnicodeDecodeError, OSError, EOFError, ValueError, ImportError):
        return []
    return table.header


def column_indices(p: Path, table: Table, names: list[str] | tuple[str, ...], hint: str) -> list[int]:
    """Where the named columns (or JSON keys) are in the table's header; a located error for a missing one."""
    for c in names:
        if c not in table.header:
            near = did_you_mean(c, table.header)
            what = "key" if table.jsonl else "column"
            raise DataError(f"{p}: no {what} {c!r} ({what}s: {', '.join(table.header)})",
                            hint=f"{near + ' ' if near else ''}{hint}")
    return [table.header.index(c) for c in names]
