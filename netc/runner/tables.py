"""Tables: CSV with a header row or JSON Lines (one object per line), read into rows of text cells.

One reader for every source that reads a table: the numeric ``csv`` source (whole or streamed row
by row), the text sources (``text_labels``, ``pairs``) and the samples of ``netc predict``. The
same line-located errors serve them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netc.diagnostics import DataError, did_you_mean
from netc.runner import datafiles

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson")


class Table:
    """How one line of a table file becomes cells: CSV (a header row) or JSON Lines (one object per line,
    the first object's keys as the header). The same checks and messages serve the whole and the streamed read.
    """

    def __init__(self, p: Path):
        self.p = p
        self.jsonl = p.name.lower().endswith(JSONL_SUFFIXES)
        self.first = 1 if self.jsonl else 2  # the file line of data row 0
        self.header: list[str] = []
        self.kind = "JSON Lines file" if self.jsonl else "CSV file"

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
        return [cell(self.p, n, k, obj[k]) for k in self.header]

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


def cell(p: Path, n: int, key: str, v: Any) -> str:
    """A JSON value as the text a CSV cell would hold: numbers and strings as written, true/false as
    JSON spells them (class names), null as empty."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if not isinstance(v, (int, float, str)):
        raise DataError(f"{p}:{n}: key {key!r} holds a JSON {type(v).__name__}, not a number or a text",
                        hint="table values are numbers, texts (class names), true/false or null")
    return v if isinstance(v, str) else repr(v)


def read_table(p: Path, max_bytes: int) -> tuple[Table, list[list[str]]]:
    """A whole CSV or JSON Lines file: its header and its data rows as cells, one per header column."""
    import csv
    import io
    import zlib

    table = Table(p)
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


def column_indices(p: Path, table: Table, names: list[str] | tuple[str, ...], hint: str) -> list[int]:
    """Where the named columns (or JSON keys) are in the table's header; a located error for a missing one."""
    for c in names:
        if c not in table.header:
            near = did_you_mean(c, table.header)
            what = "key" if table.jsonl else "column"
            raise DataError(f"{p}: no {what} {c!r} ({what}s: {', '.join(table.header)})",
                            hint=f"{near + ' ' if near else ''}{hint}")
    return [table.header.index(c) for c in names]
