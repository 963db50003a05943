"""Readers of the text sources: a corpus, labelled texts, source/target pairs, as plain strings.

``netc.runner.sources`` registers them by name; tokenizing (a tokenizer trained on the training
split only) happens later, in ``netc.runner.text``. Each reader returns a :class:`TextRaw` whose ``x`` is the
corpus (language modelling) or one text per sample, and whose ``y`` holds labels or target texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netc.diagnostics import DataError
from netc.runner import datafiles, tables

if TYPE_CHECKING:
    from netc.compiler.train.config import DataConfig


@dataclass
class TextRaw:
    """What a text reader found: the corpus or one text per sample, and labels or target texts."""

    x: Any  # str (a corpus) or list[str]
    y: list[str] | None = None
    class_names: list[str] | None = None
    origin: str = ""

# The help topics of pydoc_topics: the 8 with the most paragraphs whose texts do not contain one another
# ('specialnames' holds 'customization' and 'attribute-access'; 'compound' holds 'if', 'for', 'try'...).
PYDOC_TOPICS = ("compound", "specialnames", "types", "string-methods", "debugger", "typesseq", "typesmapping",
                "formatstrings")
MIN_WORDS = 8  # pydoc_topics: shorter paragraphs (headings, one-line examples) are left out


def _raw(x: Any, origin: str, y: Any = None, class_names: list[str] | None = None) -> TextRaw:
    return TextRaw(x, y, class_names, origin)


def pydoc_text() -> dict[str, str]:
    """CPython's help topics (``pydoc_data.topics``): topic name → English text."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some Linux distributions split it out of the base Python package
        raise DataError("this Python has no pydoc_data package (the help text CPython ships)",
                        hint="install your distribution's full Python package, or train on a text file: "
                             "data: {source: text, path: corpus.txt}") from None
    return topics


def pydoc(cfg: DataConfig, inputs: Any):
    """The embedded corpus: every help topic, in sorted order, blank-line separated."""
    topics = pydoc_text()
    return _raw(x="\n\n".join(topics[k].strip() for k in sorted(topics)), origin="pydoc (CPython help text)")


def _read_text(cfg: DataConfig, what: str) -> tuple[Path, str]:
    import zlib

    if not cfg.path:
        raise DataError(f"source '{what}' needs train.data.path", hint=f"e.g. data: {{source: {what}, path: ...}}")
    p = Path(cfg.path).expanduser()
    try:
        return p, datafiles.read_bytes(p, cfg.max_bytes, "text file").decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not UTF-8 text at byte {e.start}", hint="convert the file to UTF-8") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{p}: cannot read text file: {e}", hint="expected a UTF-8 text file (optionally .gz)") \
            from None


def text(cfg: DataConfig, inputs: Any):
    """A plain text file as one corpus."""
    p, body = _read_text(cfg, "text")
    if not body.strip():
        raise DataError(f"{p}: the text file is empty", hint="give a file with some text in it")
    return _raw(x=body, origin=str(p))


def pydoc_topics(cfg: DataConfig, inputs: Any):
    """Paragraphs of ``PYDOC_TOPICS`` labelled by their topic; a paragraph found under two topics is dropped."""
    topics = pydoc_text()
    seen: dict[str, str | None] = {}
    for t in PYDOC_TOPICS:
        for para in re.split(r"\n\s*\n", topics.get(t, "")):
            para = " ".join(para.split())
            if len(para.split()) >= MIN_WORDS:
                seen[para] = t if seen.get(para, t) == t else None
    rows = [(p, t) for p, t in seen.items() if t is not None]
    return _raw(x=[p for p, _ in rows], y=[t for _, t in rows], class_names=sorted(PYDOC_TOPICS),
                origin="pydoc_topics (CPython help paragraphs)")


def rows(cfg: DataConfig, columns: tuple[str, ...], what: str) -> tuple[Path, list[tuple[str, ...]]]:
    """The named columns of a CSV file (header row) or a JSON Lines file, as strings, one tuple per row."""
    if not cfg.path:
        raise DataError(f"source '{what}' needs train.data.path", hint=f"e.g. data: {{source: {what}, path: ...}}")
    p = Path(cfg.path).expanduser()
    table, cells = tables.read_table(p, cfg.max_bytes)
    at = tables.column_indices(p, table, columns, "set train.data.text (and label or target) to the column names")
    return p, [tuple(row[i] for i in at) for row in cells]


def text_labels(cfg: DataConfig, inputs: Any):
    """Texts and their labels from a CSV or JSONL file."""
    p, table = rows(cfg, (cfg.text, cfg.label or "label"), "text_labels")
    labels = [label.strip() for _, label in table]
    return _raw(x=[t for t, _ in table], y=labels, class_names=sorted(set(labels)), origin=str(p))


def numbers(cfg: DataConfig, inputs: Any):
    """0..9999 spelt out in English words by num2words, and their digits."""
    from num2words import (
        num2words,  # [train]: a kept library spells the numbers, not netc
    )

    return _raw(x=[num2words(n) for n in range(10_000)], y=[str(n) for n in range(10_000)],
                origin="numbers (num2words, 0-9999)")


def pairs(cfg: DataConfig, inputs: Any):
    """Source and target texts from a CSV or JSONL file."""
    p, table = rows(cfg, (cfg.text, cfg.target), "pairs")
    return _raw(x=[s for s, _ in table], y=[t for _, t in table], origin=str(p))


READERS = {"pydoc": pydoc, "text": text, "pydoc_topics": pydoc_topics, "text_labels": text_labels,
           "numbers": numbers, "pairs": pairs}
