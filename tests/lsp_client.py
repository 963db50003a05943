"""A minimal LSP client over a subprocess's stdio, as an editor drives ``netc lsp``.

Used by the tests and by ``bench/lsp_latency.py``; standard library only. Messages
are framed with ``Content-Length`` headers; a reader thread timestamps each message
on arrival, so latencies measured with it do not include the test's own work.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["LspClient", "frame"]


def frame(payload: bytes) -> bytes:
    """A message body with its ``Content-Length`` header."""
    return b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)


class LspClient:
    """Starts ``python -m netc lsp`` (or ``cmd``) and speaks JSON-RPC with it."""

    def __init__(self, cmd: list[str] | None = None, env: dict[str, str] | None = None,
                 cwd: str | Path | None = None):
        self.proc = subprocess.Popen(cmd or [sys.executable, "-m", "netc", "lsp"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
        self._next_id = 0
        self._inbox: queue.Queue[tuple[float, dict | None]] = queue.Queue()
        self.notifications: list[tuple[float, dict]] = []  # everything not yet claimed, in arrival order
        self.responses: dict[int, tuple[float, dict]] = {}
        self.stderr = bytearray()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    # ------------------------------------------------------------------ transport
    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        try:
            while True:
                length = None
                while True:
                    line = out.readline()
                    if not line:
                        self._inbox.put((time.perf_counter(), None))
                        return
                    if line in (b"\r\n", b"\n"):
                        break
                    name, _, value = line.decode("ascii", "replace").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length is None:
                    continue
                body = out.read(length)
                self._inbox.put((time.perf_counter(), json.loads(body)))
        except Exception:  # the server died mid-message: report end of stream
            self._inbox.put((time.perf_counter(), None))

    def _drain_stderr(self) -> None:
        err = self.proc.stderr
        assert err is not None
        for chunk in iter(lambda: err.read1(65536) if hasattr(err, "read1") else err.read(65536), b""):
            self.stderr.extend(chunk)

    def send_raw(self, payload: bytes) -> None:
        """Write one framed message body as given (possibly not JSON, not UTF-8)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(frame(payload))
        self.proc.stdin.flush()

    def send(self, msg: dict) -> float:
        """Send one JSON-RPC message; returns the time it was written."""
        msg = {"jsonrpc": "2.0", **msg}
        self.send_raw(json.dumps(msg).encode("utf-8"))
        return time.perf_counter()

    def _pump(self, deadline: float) -> bool:
        """Move one arriving message into notifications/responses; False on timeout."""
        try:
            t, msg = self._inbox.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue.Empty:
            return False
        if msg is None:
            raise ConnectionError(f"the server closed its output; stderr:\n{self.stderr.decode(errors='replace')}")
        if "id" in msg and "method" not in msg:
            self.responses[msg["id"]] = (t, msg)
        elif "id" in msg:  # a request from the server (e.g. workDoneProgress): answer null
            self.send({"id": msg["id"], "result": None})
        else:
            self.notifications.append((t, msg))
        return True

    # ------------------------------------------------------------------ JSON-RPC
    def request(self, method: str, params: Any = None, timeout: float = 10.0) -> Any:
        """Send a request and wait for its result (raises on an error response or timeout)."""
        self._next_id += 1
        rid = self._next_id
        self.send({"id": rid, "method": method, "params": params})
        deadline = time.perf_counter() + timeout
        while rid not in self.responses:
            if not self._pump(deadline):
                raise TimeoutError(f"no answer to {method} within {timeout} s")
        _, msg = self.responses.pop(rid)
        if "error" in msg:
            raise RuntimeError(f"{method} failed: {msg['error']}")
        return msg.get("result")

    def notify(self, method: str, params: Any = None) -> float:
        """Send a notification; returns the time it was written."""
        return self.send({"method": method, "params": params})

    def wait_for(self, method: str, pred=lambda p: True, timeout: float = 10.0) -> tuple[float, dict]:
        """The first unclaimed notification ``method`` whose params satisfy ``pred``: (arrival time, params)."""
        deadline = time.perf_counter() + timeout
        i = 0
        while True:
            while i < len(self.notifications):
                t, msg = self.notifications[i]
                if msg.get("method") == method and pred(msg.get("params")):
                    del self.notifications[i]
                    return t, msg["params"]
                i += 1
            if not self._pump(deadline):
                raise TimeoutError(f"no {method} within {timeout} s")

    def diagnostics(self, uri: str, version: int | None = None, timeout: float = 10.0) -> list[dict]:
        """The next publishDiagnostics for ``uri`` (for ``version``, if given)."""
        def match(p: dict) -> bool:
            return p.get("uri") == uri and (version is None or p.get("version") == version)
        return self.wait_for("textDocument/publishDiagnostics", match, timeout)[1]["diagnostics"]

    # ------------------------------------------------------------------ editor actions
    def initialize(self, root: Path | None = None, options: dict | None = None,
                   encodings: list[str] | None = None) -> dict:
        """initialize + initialized; returns the server's capabilities."""
        caps: dict = {"textDocument": {"hover": {"contentFormat": ["markdown", "plaintext"]},
                                       "documentSymbol": {"hierarchicalDocumentSymbolSupport": True},
                                       "completion": {"completionItem": {"snippetSupport": False}},
                                       "publishDiagnostics": {"relatedInformation": True}}}
        if encodings:
            caps["general"] = {"positionEncodings": encodings}
        result = self.request("initialize", {"processId": None, "rootUri": root.resolve().as_uri() if root else None,
                                             "capabilities": caps, "initializationOptions": options or {}})
        self.notify("initialized", {})
        return result["capabilities"]

    def open(self, uri: str, text: str, version: int = 1) -> float:
        return self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "yaml",
                                                                     "version": version, "text": text}})

    def change(self, uri: str, version: int, changes: list[dict]) -> float:
        """didChange; each change is ``{"range": ..., "text": ...}`` or ``{"text": ...}`` (whole document)."""
        return self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                                      "contentChanges": changes})

    def hover(self, uri: str, line: int, character: int) -> dict | None:
        return self.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                   "position": {"line": line, "character": character}})

    def completion(self, uri: str, line: int, character: int) -> list[dict]:
        r = self.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                     "position": {"line": line, "character": character}})
        if r is None:
            return []
        return r["items"] if isinstance(r, dict) else r

    def definition(self, uri: str, line: int, character: int) -> list[dict]:
        r = self.request("textDocument/definition", {"textDocument": {"uri": uri},
                                                     "position": {"line": line, "character": character}})
        if r is None:
            return []
        return r if isinstance(r, list) else [r]

    def code_actions(self, uri: str, diagnostics: list[dict]) -> list[dict]:
        """The code actions for ``diagnostics`` (as published), over the range of the first one."""
        rng = diagnostics[0]["range"] if diagnostics else {"start": {"line": 0, "character": 0},
                                                           "end": {"line": 0, "character": 0}}
        return self.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": rng,
                                                        "context": {"diagnostics": diagnostics}}) or []

    def document_symbols(self, uri: str) -> list[dict]:
        return self.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}}) or []

    def close(self, timeout: float = 10.0) -> int:
        """shutdown + exit; returns the server's exit code."""
        try:
            self.request("shutdown", None, timeout)
            self.notify("exit")
        except (OSError, ConnectionError, TimeoutError):
            pass
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """Stop the server process if it is still running (only this client's own process)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for s in (self.proc.stdin, self.proc.stdout):
            try:
                if s is not None:
                    s.close()
            except OSError:
                pass
