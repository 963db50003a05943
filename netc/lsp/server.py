"""``netc lsp``: the language server, over stdio, with pygls.

Diagnostics are published after every open and change; checks run in a
small pool of worker threads so hover and completion stay responsive and one slow
document never holds up another's diagnostics. Each check runs under a budget
(``initializationOptions.checkBudgetMs``, default 2000 ms): past it, the document gets
one diagnostic saying so; a check superseded by a newer edit of its document is
cancelled at once. A result is published only if no newer edit arrived meanwhile
(the latest version wins).
Every handler catches its own failures: a malformed document or a bug costs one
answer (logged), never the server.

Settings: the per-check budget is ``initializationOptions.checkBudgetMs`` (0: none). By default a
change is checked at once (a check takes a few ms: diagnostics arrive within the 50 ms bar), and only
a document whose checks are slow (the last took over ``SLOW_CHECK_MS``, or one has been running that
long) waits for typing to pause, 150 ms. A fixed debounce for every change can be set with
``initializationOptions.debounceMs`` (else ``--debounce-ms``, else ``$NETC_LSP_DEBOUNCE_MS``).
A newly opened document is checked at once.
Only YAML documents that look like specs are checked (a top-level ``netc:`` key, the schema
modeline, or a ``*.netc.yaml`` name), unless ``initializationOptions.allFiles`` is true.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from netc import __version__
from netc.dsl.budget import Budget, Cancelled, budget
from netc.lsp.actions import code_actions
from netc.lsp.analysis import Analysis, analyze
from netc.lsp.completion import TRIGGERS, completion
from netc.lsp.definition import definition
from netc.lsp.documents import Document, Documents, is_netc_spec
from netc.lsp.hover import hover
from netc.lsp.outline import document_symbols
from netc.lsp.publish import lsp_diagnostics

__all__ = ["NetcServer", "build_server", "serve"]

log = logging.getLogger("netc.lsp")
DEFAULT_DEBOUNCE_MS = 150.0  # the wait after a change, only for documents whose checks are slow (see schedule)
SLOW_CHECK_MS = 40.0  # a check slower than this is worth skipping while the user types
DEFAULT_BUDGET_MS = 2000.0  # per check of one document; a check past it stops with one diagnostic
CHECK_WORKERS = 4  # documents checked at once: a hostile one occupies one worker, not the server
F = TypeVar("F", bound=Callable[..., Any])


class NetcProtocol(LanguageServerProtocol):
    """pygls's protocol, leaving document text to the server's own :class:`Documents`.

    pygls's workspace splits lines with ``str.splitlines``, which disagrees with LSP
    about what ends a line; these three methods only forward to the server's handlers.
    """

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):  # type: ignore[override]
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):  # type: ignore[override]
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):  # type: ignore[override]
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None


class NetcServer(LanguageServer):
    """The netc language server: open documents, their analyses, the debounced checker."""

    def __init__(self, debounce_ms: float | None = None):
        super().__init__("netc", __version__, protocol_cls=NetcProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.docs = Documents()
        self.debounce_ms = debounce_ms  # None: adaptive (at once unless this document's checks are slow)
        self.last_ms: dict[str, float] = {}  # how long each document's latest finished check took
        self.started: dict[str, float] = {}  # when each document's running check started (loop time)
        self.checker = ThreadPoolExecutor(max_workers=CHECK_WORKERS, thread_name_prefix="netc-check")
        self.pending: dict[str, asyncio.TimerHandle] = {}
        self.running: dict[str, Budget] = {}  # the latest check of each document, to cancel when superseded
        self.budget_ms = DEFAULT_BUDGET_MS
        self.shutdown_requested = False
        self.all_files = False  # initializationOptions.allFiles: check YAML files that do not look like specs

    @property
    def encoding(self) -> str:
        """The negotiated position encoding: utf-16 unless the client offered utf-8 or utf-32 first."""
        try:
            enc = self.server_capabilities.position_encoding
        except Exception:
            return "utf-16"
        return str(getattr(enc, "value", enc) or "utf-16")

    def report_server_error(self, error: Exception, source: Any) -> None:
        """A message that could not be read or handled: log it, never pop up, never stop."""
        log.error("netc lsp: %s: %s", getattr(source, "__name__", source), error)

    # ------------------------------------------------------------------ checking
    def schedule(self, uri: str, delay_ms: float | None = None) -> None:
        """Check ``uri`` after the debounce (or ``delay_ms``); a newer edit restarts the wait and cancels
        a check of the older text that is still running."""
        self.cancel_check(uri)
        loop = asyncio.get_running_loop()
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()
        delay = self.delay_ms(uri) if delay_ms is None else delay_ms
        self.pending[uri] = loop.call_later(max(delay, 0.0) / 1000, self._launch, uri)

    def delay_ms(self, uri: str) -> float:
        """How long to wait after a change of ``uri`` before checking it.

        A fixed debounce when one was configured; else none, unless this document's checks are
        slow (its last check took over SLOW_CHECK_MS, or the one running has taken that long
        already): then DEFAULT_DEBOUNCE_MS, so a slow document is not re-checked on every keystroke.
        """
        if self.debounce_ms is not None:
            return self.debounce_ms
        running_ms = 0.0
        if uri in self.started:
            running_ms = (asyncio.get_running_loop().time() - self.started[uri]) * 1e3
        slow = max(self.last_ms.get(uri, 0.0), running_ms) > SLOW_CHECK_MS
        return DEFAULT_DEBOUNCE_MS if slow else 0.0

    def cancel_check(self, uri: str) -> None:
        """Stop a running check of ``uri`` at its next budget check (its result would be discarded anyway)."""
        running = self.running.pop(uri, None)
        if running is not None:
            running.cancel()

    def _launch(self, uri: str) -> None:
        self.pending.pop(uri, None)
        doc = self.docs.get(uri)
        if doc is not None:
            asyncio.ensure_future(self._check(uri, doc.version, doc.text, doc.path))

    async def _check(self, uri: str, version: int | None, text: str, path: str) -> None:
        b = Budget(self.budget_ms / 1000 if self.budget_ms > 0 else None, path)
        self.cancel_check(uri)
        self.running[uri] = b
        self.started[uri] = asyncio.get_running_loop().time()

        def work() -> Analysis | None:
            d = self.docs.get(uri)
            if d is None or d.text is not text or b.cancelled:
                return None  # superseded before it started: skip the work
            try:
                with budget(b):
                    return analyze(text, path, version)
            except Cancelled:
                return None

        try:
            if not self.is_spec(uri, text):  # not a netc spec: clear what an earlier version had
                self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri, [], version))
                return
            try:
                a = await asyncio.get_running_loop().run_in_executor(self.checker, work)
            finally:
                if self.running.get(uri) is b:
                    del self.running[uri]
                    self.started.pop(uri, None)
            if a is None:
                return
            self.last_ms[uri] = a.seconds * 1e3
            doc = self.docs.get(uri)
            if doc is None:
                return
            if a.ok and (doc.good is None or doc.good.version is None or version is None
                         or version >= doc.good.version):
                doc.good = a  # even if superseded: hover maps its lines onto the newer text
            if doc.text is not text:
                return  # a newer edit is pending: its own check will publish
            doc.analysis = a
            diags = lsp_diagnostics(a, doc.index, self.text_of)
            log.debug("checked %s v%s in %.1f ms: %d diagnostics", uri, version, a.seconds * 1e3, len(diags))
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri, diags, version))
        except Exception:
            log.exception("netc lsp: checking %s failed", uri)

    def is_spec(self, uri: str, text: str) -> bool:
        """Whether to treat a document as a netc spec (see :func:`is_netc_spec`)."""
        return self.all_files or is_netc_spec(uri, text)

    def text_of(self, path: str) -> str | None:
        """A file's text: the open document's, else read from disk (None if unreadable)."""
        for d in self.docs.values():
            if d.path == path:
                return d.text
        try:
            return Path(path).read_bytes().decode("utf-8", "replace")
        except OSError:
            return None


def _guard(default: Any = None) -> Callable[[F], F]:
    """Run a handler; on any exception log it and answer ``default``."""
    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(ls: NetcServer, params: Any) -> Any:
            try:
                return fn(ls, params)
            except Exception:
                log.exception("netc lsp: %s failed", fn.__name__)
                return default
        return wrapper  # type: ignore[return-value]
    return deco


def build_server(debounce_ms: float | None = None) -> NetcServer:
    """A server with every feature registered (not yet connected)."""
    server = NetcServer(debounce_ms)

    @server.feature(types.INITIALIZE)
    @_guard()
    def initialize(ls: NetcServer, params: types.InitializeParams) -> None:
        opts = params.initialization_options
        if isinstance(opts, dict):
            if opts.get("debounceMs") is not None:
                ls.debounce_ms = float(opts["debounceMs"])
            if opts.get("checkBudgetMs") is not None:
                ls.budget_ms = float(opts["checkBudgetMs"])
            ls.all_files = bool(opts.get("allFiles", False))

    @server.feature(types.SHUTDOWN)
    @_guard()
    def shutdown(ls: NetcServer, params: Any) -> None:
        ls.shutdown_requested = True
        for h in ls.pending.values():
            h.cancel()
        ls.pending.clear()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @_guard()
    def did_open(ls: NetcServer, params: types.DidOpenTextDocumentParams) -> None:
        td = params.text_document
        ls.docs.open(td.uri, td.text, td.version, ls.encoding)
        ls.schedule(td.uri, delay_ms=0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @_guard()
    def did_change(ls: NetcServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        doc = ls.docs.get(uri)
        if doc is None:
            log.warning("netc lsp: change to %s, which is not open", uri)
            return
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                r = change.range
                doc.edit((r.start.line, r.start.character), (r.end.line, r.end.character), change.text)
            else:
                doc.edit(None, None, change.text)
        doc.version = params.text_document.version
        ls.schedule(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    @_guard()
    def did_save(ls: NetcServer, params: types.DidSaveTextDocumentParams) -> None:
        for uri in list(ls.docs):  # a saved file may be imported by the other open specs
            ls.schedule(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @_guard()
    def did_close(ls: NetcServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        h = ls.pending.pop(uri, None)
        if h is not None:
            h.cancel()
        ls.cancel_check(uri)
        ls.last_ms.pop(uri, None)
        ls.started.pop(uri, None)
        if ls.docs.pop(uri, None) is not None:
            ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri, []))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @_guard()
    def on_hover(ls: NetcServer, params: types.HoverParams) -> types.Hover | None:
        doc = _doc(ls, params.text_document.uri)
        return hover(doc, params.position.line, params.position.character) if doc else None

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=TRIGGERS))
    @_guard()
    def on_completion(ls: NetcServer, params: types.CompletionParams) -> types.CompletionList | None:
        doc = _doc(ls, params.text_document.uri)
        return completion(doc, params.position.line, params.position.character) if doc else None

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
    @_guard()
    def on_code_action(ls: NetcServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        doc = _doc(ls, params.text_document.uri)
        if doc is None:
            return None
        return code_actions(params.text_document.uri, doc.index, list(params.context.diagnostics)) or None

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @_guard()
    def on_document_symbol(ls: NetcServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol] | None:
        doc = _doc(ls, params.text_document.uri)
        return document_symbols(doc) if doc else None

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @_guard()
    def on_definition(ls: NetcServer, params: types.DefinitionParams) -> list[types.Location] | None:
        doc = _doc(ls, params.text_document.uri)
        return definition(doc, params.position.line, params.position.character, ls.text_of) if doc else None

    return server


def _doc(ls: NetcServer, uri: str) -> Document | None:
    doc = ls.docs.get(uri)
    return doc if doc is not None and ls.is_spec(uri, doc.text) else None


def _debounce_default(flag: float | None) -> float | None:
    """A fixed debounce from ``--debounce-ms`` or ``$NETC_LSP_DEBOUNCE_MS``; None: adaptive (the default)."""
    if flag is not None:
        return flag
    env = os.environ.get("NETC_LSP_DEBOUNCE_MS")
    try:
        return float(env) if env else None
    except ValueError:
        return None


def _warm_up() -> None:
    """Load the grammar, the schema and the op registry (plugins too) before the first document arrives.

    The registry loads plugins on first use; doing it here, before the checker thread
    exists, keeps that one-time load out of any race between threads.
    """
    from netc.compiler.registry import REGISTRY

    REGISTRY.all()
    analyze("netc: 1\ninput: [4]\nblocks:\n  B(c): Dense(c)\nmodel:\n  a: B(2) → ReLU\n  b: Add(a, a)\n",
            "<warm-up>")


def serve(debounce_ms: float | None = None, log_file: str | None = None, verbose: bool = False) -> NoReturn:
    """Run the server on stdin/stdout until ``exit`` (or end of input), then end the process.

    Exit code 0 after ``shutdown``, 1 otherwise (LSP: ``exit`` without ``shutdown`` is an error).
    """
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not verbose:
        logging.getLogger("pygls").setLevel(logging.ERROR)  # pygls logs each message at INFO
    server = build_server(_debounce_default(debounce_ms))
    try:
        _warm_up()
    except Exception:
        log.exception("netc lsp: warm-up failed")
    server.start_io()
    server.checker.shutdown(wait=False, cancel_futures=True)
    code = 0 if server.shutdown_requested else 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    # pygls reads stdin in a pool thread that may still block on a read: do not wait for it
    os._exit(code)


def main() -> None:  # pragma: no cover - `python -m netc.lsp.server`
    serve()


if __name__ == "__main__":  # pragma: no cover
    main()

