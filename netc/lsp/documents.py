"""The open documents: text and version as the editor sees them, and their last analyses.

The server keeps its own text instead of pygls's workspace because LSP lines end
only at ``\\n``, ``\\r\\n`` and ``\\r``, while ``str.splitlines`` (which the workspace
uses) also breaks at ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, U+2028 and U+2029:
an incremental edit after such a character would land in the wrong place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from netc.lsp.positions import Pos, TextIndex

if TYPE_CHECKING:
    from netc.lsp.analysis import Analysis, LineMap

__all__ = ["Document", "Documents", "is_netc_spec", "uri_to_path"]

_NETC_KEY = re.compile(r"^netc[ \t]*:", re.MULTILINE)


def is_netc_spec(uri: str, text: str) -> bool:
    """Whether a YAML document is a netc spec: a top-level ``netc:`` key, the schema modeline, or ``*.netc.yaml``.

    Editors start the server for every YAML file; a CI config or a compose file is left alone.
    """
    if uri.endswith((".netc.yaml", ".netc.yml")) or "netc.schema.json" in text[:2000]:
        return True
    return _NETC_KEY.search(text) is not None


def uri_to_path(uri: str) -> str:
    """The file-system path of a ``file:`` URI; other URIs (``untitled:``) are returned unchanged."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return uri
    path = unquote(parsed.path)
    if len(path) >= 3 and path[0] == "/" and path[2] == ":":  # file:///C:/x on Windows
        path = path[1:]
    if parsed.netloc:
        path = f"//{parsed.netloc}{path}"
    return path


@dataclass
class Document:
    """One open document."""

    uri: str
    text: str
    version: int | None = None
    encoding: str = "utf-16"
    analysis: Analysis | None = None  # of the latest version checked
    good: Analysis | None = None  # the last analysis whose spec checked without errors
    _index: TextIndex | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        return uri_to_path(self.uri)

    @property
    def index(self) -> TextIndex:
        """Position conversions for the current text (rebuilt after an edit, on demand)."""
        if self._index is None or self._index.text is not self.text:
            self._index = TextIndex(self.text, self.encoding)
        return self._index

    def analyses(self) -> list[tuple[Analysis, LineMap]]:
        """The latest analysis, then the last good one, each with its line map to the current text."""
        out = []
        for a in (self.analysis, self.good):
            if a is not None and a.spec is not None and all(a is not b for b, _ in out):
                out.append((a, a.line_map(self.text)))
        return out

    def edit(self, start: Pos | None, end: Pos | None, new: str) -> None:
        """Apply one content change of ``textDocument/didChange``."""
        if start is None or end is None:
            self.text = new
        else:
            idx = self.index
            a, b = sorted((idx.offset(*start), idx.offset(*end)))
            self.text = self.text[:a] + new + self.text[b:]
        self._index = None


class Documents(dict[str, Document]):
    """URI → open Document."""

    def open(self, uri: str, text: str, version: int | None, encoding: str = "utf-16") -> Document:
        """Register (or replace) an opened document."""
        doc = self.get(uri)
        if doc is None:
            doc = self[uri] = Document(uri, text, version, encoding)
        else:  # re-opened: keep the last good analysis for hover while the new text is checked
            doc.text, doc.version, doc.encoding, doc._index = text, version, encoding, None
        return doc
