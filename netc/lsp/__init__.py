"""The netc language server (``netc lsp``): diagnostics, hover, completion, go-to-definition.

Only :mod:`netc.lsp.server` imports pygls; the other modules are plain functions over
a document's text and its last analyses, testable without a client.
"""

from __future__ import annotations

from netc.lsp.analysis import Analysis, analyze
from netc.lsp.documents import Document, Documents
from netc.lsp.positions import TextIndex

__all__ = ["Analysis", "Document", "Documents", "TextIndex", "analyze"]
