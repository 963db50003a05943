"""Source spans, diagnostics and the one error hierarchy of netc.

Every mistake a user can make ends up as a :class:`Diagnostic`: a kind, a
message, a hint and a :class:`Span` into the user's text. Rendering follows the
compiler convention ``file:line:col: error[kind]: message`` followed by the
source line with carets under the offending text.

The lowest layer, so it also holds what every layer shows a user the same way:
the ``REQUIRED`` sentinel, :func:`show` for values, :func:`did_you_mean` for
near misses and the command's exit codes.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

# Exit codes of the netc command, in one table: the CLI, the runner and the errors raised below agree on them.
EXIT_OK: Final = 0
EXIT_INVALID: Final = 1  # the spec, data or a checkpoint is wrong; diagnostics were printed
EXIT_USAGE: Final = 2  # the command line is wrong, or an optional extra is not installed
EXIT_DIVERGED: Final = 3  # training stopped because the loss became NaN or infinite
EXIT_INTERNAL: Final = 70  # a bug in netc (BSD's EX_SOFTWARE)
EXIT_INTERRUPTED: Final = 130  # Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)


class _Required:
    """The type of :data:`REQUIRED`: one instance, which survives copying and pickling."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "REQUIRED"

    def __reduce__(self) -> str:
        return "REQUIRED"  # copy and pickle hand back the module-level instance


# The default of an argument or parameter the call must give: op arguments, block parameters and
# the train vocabulary's factories all use this one object, so any layer can compare against it.
REQUIRED: Final = _Required()


def show(value: object) -> str:
    """A value as a spec writes it (``true``, ``none``, ``[1, 2]``, ``same``), for hovers, hints and signatures."""
    if value is REQUIRED:
        return "required"
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(show(x) for x in value) + "]"
    return str(value)


# Words users bring from other tools, and what they mean here. None: no choice means that, so no
# spelling neighbour is offered either (fp64 is not a near miss of fp16; netc has no float64 training).
SYNONYMS: Final[dict[str, str | None]] = {
    "gpu": "cuda", "cuda:0": "cuda", "mps": None, "tpu": None,
    "fp64": None, "float64": None, "double": None, "float32": "fp32", "single": "fp32",
    "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
    # Keras and PyTorch names of losses, metrics, schedules and arguments (binary_crossentropy is bce, not
    # its spelling neighbour cross_entropy)
    "categorical_crossentropy": "cross_entropy", "sparse_categorical_crossentropy": "cross_entropy",
    "crossentropyloss": "cross_entropy", "binary_crossentropy": "bce", "bcewithlogitsloss": "bce",
    "bceloss": "bce", "nllloss": "nll", "mean_squared_error": "mse", "mseloss": "mse",
    "mean_absolute_error": "mae", "l1loss": "mae", "huber_loss": "huber", "huberloss": "huber",
    "smoothl1loss": "huber", "sparse_categorical_accuracy": "accuracy", "categorical_accuracy": "accuracy",
    "root_mean_squared_error": "rmse", "reducelronplateau": "plateau", "cosineannealinglr": "cosine",
    "steplr": "step", "exponentiallr": "exponential", "onecyclelr": "onecycle", "learning_rate": "lr",
}


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice ``word`` most likely meant, or None.

    In order: the same word in another case (``relu`` → ``ReLU``), a known synonym (``gpu`` →
    ``cuda``; see SYNONYMS), a choice the word abbreviates (``acc`` → ``accuracy``; two letters at
    least), then the nearest spelling (difflib ratio ≥ ``cutoff``, case ignored).
    """
    by_lower: dict[str, str] = {}
    for c in sorted(choices):
        by_lower.setdefault(c.lower(), c)
    low = word.lower()
    if low in by_lower:
        return by_lower[low]
    if low in SYNONYMS:
        meant = SYNONYMS[low]
        return by_lower.get(meant) if meant is not None else None
    prefix = [c for lc, c in by_lower.items() if len(low) > 1 and lc.startswith(low)]  # one letter says too little
    if prefix:
        return prefix[0]
    near = difflib.get_close_matches(low, list(by_lower), n=1, cutoff=cutoff)
    return by_lower[near[0]] if near else None


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The hint ``did you mean 'X'?`` for a near miss of one of ``choices``, or None."""
    match = closest(word, choices, cutoff)
    return f"did you mean '{match}'?" if match is not None else None


@dataclass(frozen=True)
class Span:
    """A range in a source file; lines and columns are 1-based, end is exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    @staticmethod
    def point(file: str, line: int, col: int, width: int = 1) -> Span:
        """A span of ``width`` characters on one line."""
        return Span(file, line, col, line, col + max(width, 1))


# Source texts by file name, so a diagnostic in an imported file renders its own line.
SOURCES: dict[str, str] = {}


def remember_source(file: str, text: str) -> None:
    """Register a file's text for rendering diagnostics that point into it."""
    SOURCES[file] = text


@dataclass(frozen=True)
class Diagnostic:
    """One located problem: what is wrong, where, and how to fix it."""

    kind: str  # yaml, schema, syntax, name, arg, shape, graph, import, data, cli, io
    message: str
    span: Span | None = None
    hint: str | None = None
    severity: str = "error"

    def render(self, source: str | None = None) -> str:
        """Render as ``file:line:col: error[kind]: message``, source line, carets, hint."""
        loc = f"{self.span.file}:{self.span.line}:{self.span.col}: " if self.span else ""
        out = [f"{loc}{self.severity}[{self.kind}]: {self.message}"]
        if self.span and (self.span.file in SOURCES or source is not None):
            lines = SOURCES.get(self.span.file, source or "").splitlines()
            if 1 <= self.span.line <= len(lines):
                text = lines[self.span.line - 1].expandtabs(1)
                end = self.span.end_col if self.span.end_line == self.span.line else len(text) + 1
                width = max(1, min(end, len(text) + 1) - self.span.col)
                out.append(f"    {text}")
                out.append("    " + " " * (self.span.col - 1) + "^" * width)
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)

    def to_json(self) -> dict:
        """The dict an editor plugin consumes (``netc check --format json``)."""
        s = self.span
        return {
            "file": s.file if s else None,
            "line": s.line if s else None,
            "column": s.col if s else None,
            "end_line": s.end_line if s else None,
            "end_column": s.end_col if s else None,
            "severity": self.severity,
            "code": self.kind,
            "message": self.message,
            "hint": self.hint,
        }


class NetcError(Exception):
    """Base of every error netc reports to a user; carries one or more diagnostics."""

    kind = "error"
    exit_code = EXIT_INVALID

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 *, kind: str | None = None, diagnostics: list[Diagnostic] | None = None,
                 source: str | None = None):
        if diagnostics is None:
            diagnostics = [Diagnostic(kind or self.kind, message, span, hint)]
        self.diagnostics = diagnostics
        self.source = source
        super().__init__(message)

    @property
    def span(self) -> Span | None:
        return self.diagnostics[0].span

    @property
    def hint(self) -> str | None:
        return self.diagnostics[0].hint

    def __str__(self) -> str:
        return "\n".join(d.render(self.source) for d in self.diagnostics)


class SpecError(NetcError):
    """The spec file is malformed: YAML, schema, grammar, names, arguments or shapes."""

    kind = "spec"


class ParamError(SpecError):
    """A ``--param`` override that the spec cannot take: a usage mistake (exit code 2), like a bad ``--set``."""

    exit_code = EXIT_USAGE


class ShapeError(SpecError):
    """Raised by shape rules; the checker adds the span of the offending call."""

    kind = "shape"


class DataError(NetcError):
    """The data given to the runner does not fit the spec or cannot be read."""

    kind = "data"


class CheckpointError(NetcError):
    """A checkpoint is missing, corrupt, unsafe or belongs to another spec."""

    kind = "checkpoint"


class UsageError(NetcError):
    """The command line is wrong (exit code 2)."""

    kind = "cli"
    exit_code = EXIT_USAGE


# The optional extras of pyproject.toml, by the top-level modules each one brings (the core is
# pyyaml, lark and jsonschema: the checker). What a missing one is called in messages.
EXTRAS: Final = {"torch": "train", "numpy": "train", "safetensors": "train", "matplotlib": "train", "PIL": "train",
                 "tokenizers": "train", "num2words": "train",
                 "pygls": "lsp", "lsprotocol": "lsp", "onnx": "onnx", "onnxruntime": "onnx", "optuna": "tune",
                 "pyarrow": "parquet"}
EXTRA_NAMES: Final = {"train": "training", "lsp": "language-server", "onnx": "ONNX", "tune": "tuning",
                      "parquet": "Parquet"}


class MissingExtra(UsageError):
    """A command needs an optional extra that is not installed (exit code 2): names it and its install line."""

    def __init__(self, command: str, module: str):
        self.extra = EXTRAS.get(module.partition(".")[0], "all")
        super().__init__(f"`{command}` needs the {EXTRA_NAMES.get(self.extra, 'full')} extra "
                         f"({module.partition('.')[0]} is not installed)", hint=f"pip install 'netc[{self.extra}]'")

    @staticmethod
    def of(command: str, e: ModuleNotFoundError) -> MissingExtra | None:
        """The MissingExtra behind an import failure, or None when the module belongs to no extra."""
        name = e.name or ""
        return MissingExtra(command, name) if name.partition(".")[0] in EXTRAS else None


def diagnostics_json(diags: list[Diagnostic]) -> str:
    """Serialise diagnostics as a JSON list."""
    return json.dumps([d.to_json() for d in diags], indent=2)
