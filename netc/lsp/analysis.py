"""One check of one document text, kept for the editor: diagnostics plus what hover needs.

:func:`analyze` runs the one front end (:func:`netc.compiler.frontend.front_end`, as
``netc check`` does, ``train:`` block included), with an elaborator that also records,
for the editor, every node it built (even when another part of the spec fails), each
block call's instance (output type, parameters) and each named entry's output.
Nothing here imports torch or pygls.
"""

from __future__ import annotations

import difflib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from netc.compiler.elaborate import Elaborator
from netc.compiler.frontend import front_end
from netc.compiler.ir import Node, Program, TensorType
from netc.diagnostics import Diagnostic, NetcError, Span
from netc.dsl.spec import BlockDef, Spec

__all__ = ["Analysis", "BlockUse", "EntryResult", "LineMap", "analyze", "contains"]

log = logging.getLogger("netc.lsp")


@dataclass(frozen=True)
class BlockUse:
    """One call of a block and the instance it made."""

    span: Span  # the call, where it is written
    block: BlockDef
    output: TensorType | None
    params: int
    nodes: tuple[str, ...]  # the nodes of this instance, nested blocks included


@dataclass(frozen=True)
class EntryResult:
    """The output of a named entry (``stem: ...``) in a model or in one block instance."""

    name: str
    span: Span  # the entry's key
    tensor: str | None
    type: TensorType | None


@dataclass
class Analysis:
    """The result of checking one version of a document."""

    file: str
    text: str
    version: int | None
    diagnostics: list[Diagnostic]
    spec: Spec | None = None
    program: Program | None = None
    nodes: tuple[Node, ...] = ()
    block_uses: tuple[BlockUse, ...] = ()
    entries: tuple[EntryResult, ...] = ()
    # diagnostic index → the call in this file that led to it (errors inside imported blocks)
    call_sites: dict[int, Span] = field(default_factory=dict)
    seconds: float = 0.0
    _lines: list[str] | None = field(default=None, repr=False)
    _maps: dict[str, LineMap] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """True when the text checked without errors (a Program exists)."""
        return self.program is not None

    def nodes_at(self, line: int, col: int) -> list[Node]:
        """Nodes whose call contains netc position (line, col) of this text (one per instance)."""
        return [n for n in self.nodes if n.span is not None and contains(n.span, self.file, line, col)]

    def uses_at(self, line: int, col: int) -> list[BlockUse]:
        """Block instances whose call contains (line, col)."""
        return [u for u in self.block_uses if contains(u.span, self.file, line, col)]

    def entries_named(self, span: Span) -> list[EntryResult]:
        """Outputs of the entry whose key is ``span`` (one per model or block instance)."""
        return [e for e in self.entries if e.span == span]

    def line_map(self, text: str) -> LineMap:
        """Line correspondence between this analysis' text and ``text`` (the current document)."""
        if text == self.text:
            return IDENTITY
        m = self._maps.get(text)
        if m is None:
            from netc.lsp.positions import TextIndex

            if self._lines is None:
                self._lines = TextIndex(self.text).netc_lines()
            m = LineMap(self._lines, TextIndex(text).netc_lines())
            self._maps.clear()  # only the newest text is ever asked again
            self._maps[text] = m
        return m


def contains(span: Span, file: str, line: int, col: int) -> bool:
    """Whether 1-based (line, col) of ``file`` lies inside ``span`` (end exclusive)."""
    if span.file != file or span.line < 1:
        return False
    return (span.line, span.col) <= (line, col) < (span.end_line, span.end_col)


class LineMap:
    """Which lines of an analysed text survive unchanged in the current text, and where they are."""

    def __init__(self, old: list[str] | None, new: list[str] | None):
        self.fwd: dict[int, int] = {}
        self.back: dict[int, int] = {}
        if old is None or new is None:
            return
        sm = difflib.SequenceMatcher(None, old, new, autojunk=False)
        for a, b, size in sm.get_matching_blocks():
            for k in range(size):
                self.fwd[a + k + 1] = b + k + 1
                self.back[b + k + 1] = a + k + 1

    def to_old(self, line: int) -> int | None:
        """The analysed text's line for a current line (None if that line was edited)."""
        return self.back.get(line)

    def to_new(self, line: int) -> int | None:
        """The current line for a line of the analysed text (None if it was edited away)."""
        return self.fwd.get(line)

    def span_to_new(self, span: Span) -> Span | None:
        """``span`` moved to the current text, if both of its lines are unchanged."""
        a, b = self.to_new(span.line), self.to_new(span.end_line)
        if a is None or b is None:
            return None
        return Span(span.file, a, span.col, b, span.end_col)


class _Identity(LineMap):
    def __init__(self) -> None:
        super().__init__(None, None)

    def to_old(self, line: int) -> int | None:
        return line

    def to_new(self, line: int) -> int | None:
        return line


IDENTITY = _Identity()


class _Recorder(Elaborator):
    """The elaborator, also keeping what an editor asks about (the Program it builds is the same)."""

    def __init__(self, spec: Spec, *args: Any, **kwargs: Any):
        super().__init__(spec, *args, **kwargs)
        self.all_nodes: list[Node] = []
        self.uses: list[BlockUse] = []
        self.entry_results: list[EntryResult] = []
        self.call_sites: dict[int, Span] = {}

    def model(self, m):  # type: ignore[no-untyped-def]
        try:
            return super().model(m)
        finally:
            self.all_nodes.extend(getattr(self, "nodes", ()))

    def resolve_entry(self, scope, i, ref_span=None):  # type: ignore[no-untyped-def]
        done = i in scope.results
        t = super().resolve_entry(scope, i, ref_span)
        if not done:
            e = scope.entries[i]
            if e.name:
                self.entry_results.append(EntryResult(e.name, e.span, t, self.types.get(t) if t else None))
        return t

    def expand_block(self, found, c, scope, cur, entry):  # type: ignore[no-untyped-def]
        n0, d0 = len(self.nodes), len(self.diags)
        out = super().expand_block(found, c, scope, cur, entry)
        made = self.nodes[n0:]
        self.uses.append(BlockUse(c.span, found[0], self.types.get(out) if out else None,
                                  sum(n.params for n in made), tuple(n.name for n in made)))
        if c.span is not None and c.span.file == self.spec.file:
            for k in range(d0, len(self.diags)):
                sp = self.diags[k].span
                if sp is not None and sp.file != self.spec.file:
                    self.call_sites.setdefault(k, c.span)
        return out


def analyze(text: str, file: str, version: int | None = None) -> Analysis:
    """Check ``text`` as the spec file ``file``; never raises (a crash becomes a diagnostic)."""
    t0 = time.perf_counter()
    a = Analysis(file, text, version, [])
    made: list[_Recorder] = []

    def recorder(spec: Spec, max_params: int) -> _Recorder:
        made.append(_Recorder(spec, max_params))
        return made[-1]

    try:
        checked = front_end(text, file, elaborator=recorder)
    except NetcError as e:
        a.diagnostics = list(e.diagnostics)
    except Exception as e:  # a bug in the front end: still an answer, never a dead server
        log.exception("netc front end crashed on %s", file)
        a.diagnostics = [*(made[0].diags if made else ()), _internal(e)]
    else:
        a.program = checked.program
        a.diagnostics = list(checked.program.extra.get("warnings", []))
    if made:  # the spec parsed: keep what the elaborator built, even where it failed
        rec = made[0]
        a.spec = rec.spec
        a.nodes = tuple(rec.all_nodes)
        a.block_uses = tuple(rec.uses)
        a.entries = tuple(rec.entry_results)
        # the recorder counts its own diagnostics; re-key by the list kept here
        by_id = {id(rec.diags[k]): s for k, s in rec.call_sites.items() if k < len(rec.diags)}
        a.call_sites = {k: by_id[id(d)] for k, d in enumerate(a.diagnostics) if id(d) in by_id}
    a.seconds = time.perf_counter() - t0
    return a


def _internal(e: Exception) -> Diagnostic:
    return Diagnostic("internal", f"netc could not check this document: {type(e).__name__}: {e}"[:300], None,
                      "this is a bug in netc; please report it with the spec that triggers it")
