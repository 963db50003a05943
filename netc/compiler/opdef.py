"""What an op declaration is: :class:`OpDef`, its :class:`Arg` list and its :class:`Lowering`.

An :class:`OpDef` holds everything netc knows about an op: its arguments (types,
defaults, ranges, docs), its shape rule, its parameter and MAC counts, its
lowering to torch (a :class:`Lowering` description, so this module never
imports torch) and every fact a pass needs about it (fresh output, layout,
dropout rate, channel axis...). The built-in declarations (``netc.compiler.ops``)
are made with :func:`op`; :mod:`netc.compiler.registry` collects them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from netc.compiler.train.initializers import NAMES as INIT_NAMES
from netc.diagnostics import REQUIRED, ShapeError, show

Dim = int | str
Shape = tuple[Dim, ...]


@dataclass(frozen=True)
class Arg:
    """One argument of an op."""

    name: str
    # "int", "float", "bool", "str", "int2" (an int or a pair), "ints" (a list of ints), "ref" (a node
    # name) or "int_or_str"
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    min: float | None = None  # bounds a number, or each element of a list
    max: float | None = None
    choices: tuple[str, ...] | None = None
    nullable: bool = False  # ``None`` is a legal value (e.g. "same as input")
    keyword_only: bool = False  # given only as name=value (init=he), never by position
    dtype: str | None = None  # for a "ref": the dtype the named tensor must have (None: the op's input_dtype)

    @property
    def required(self) -> bool:
        """Whether a call must give this argument."""
        return self.default is REQUIRED

    def signature(self) -> str:
        """``name=default`` or ``name`` for required arguments."""
        return self.name if self.required else f"{self.name}={show(self.default)}"


@dataclass(frozen=True)
class Lowering:
    """How an op becomes torch: a module constructor and a forward expression.

    ``module`` is ``"nn.Conv2d"`` (torch.nn), the name of a helper class in
    ``netc.backend.layers`` (e.g. ``"PositionalEncoding"``), ``"pkg.mod:Class"``
    for plugins, or ``None`` for a purely functional op. ``args``/``kwargs`` may
    contain nested :class:`Lowering` values (e.g. TransformerEncoder's layer).
    ``forward`` is a Python expression template: ``{m}`` is the submodule,
    ``{x}`` the first input, ``{x0}``, ``{x1}``... each input, ``{xs}`` all inputs
    comma-separated. ``helpers`` names functions of ``netc.backend.layers`` the
    expression uses.
    """

    module: str | None
    args: tuple = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    forward: str = "{m}({x})"
    helpers: tuple[str, ...] = ()


def L(module: str | None, *args: Any, forward: str = "{m}({x})", helpers: tuple[str, ...] = (),
      **kwargs: Any) -> Lowering:
    """Shorthand for a :class:`Lowering`."""
    return Lowering(module, tuple(args), tuple(kwargs.items()), forward, helpers)


class A(Mapping):
    """Resolved argument values of one node, readable as attributes (``a.filters``)."""

    __slots__ = ("_d",)

    def __init__(self, d: Mapping[str, Any]):
        object.__setattr__(self, "_d", dict(d))

    def __getattr__(self, k: str) -> Any:
        try:
            return self._d[k]
        except KeyError:
            raise AttributeError(k) from None

    def __getitem__(self, k: str) -> Any:
        return self._d[k]

    def __iter__(self):
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


ShapeRule = Callable[[A, list[Shape]], Shape]
CountRule = Callable[[A, list[Shape]], int]
MacRule = Callable[[A, list[Shape], Shape], int]
LowerRule = Callable[[A, list[Shape], Shape], Lowering]


def _zero(a: A, ins: list[Shape], *rest: Any) -> int:
    return 0


@dataclass(frozen=True)
class OpDef:
    """The single declaration of an op."""

    name: str
    doc: str
    args: tuple[Arg, ...]
    infer: ShapeRule
    lower: LowerRule
    params: CountRule = _zero
    macs: MacRule = _zero
    category: str = "layer"
    # "one": one tensor input (the chain's); "many": merge op (Add, Concat): the
    # chain input plus every positional reference; refs in kwargs (kind "ref") add inputs.
    arity: str = "one"
    aliases: tuple[str, ...] = ()
    input_dtype: str = "float32"  # the dtype the op consumes ("int64" for Embedding)
    output_dtype: str = "float32"
    example: str = ""
    # ---- facts the passes and the backend read (a new op states them here, not in a pass's table)
    fresh_output: bool = False  # output is always a new tensor, never a view of an input (fuse_activation)
    inplace_fn: str | None = None  # InplaceActivation's fn computing this activation in place (fuse_activation)
    dropout_arg: str | None = None  # argument holding a dropout rate that acts only in training (eliminate_dropout)
    reshape_only: bool = False  # output is the input's values in a new shape: in a chain only the last counts
    window_pool: str | None = None  # "max" or "avg": pools kernel-sized windows (kernel, stride, padding, ceil_mode)
    channel_axis: int | None = None  # axis of the output that holds its channels or features
    weight_out_axis: int | None = None  # axis of ``weight`` holding the output channels (fold_batchnorm scales it)
    merge_width: str | None = None  # the width argument of siblings that merge into one wider op (merge_projections)
    prefers_channels_last: bool = False  # runs faster on an NHWC input (channels_last converts its input)
    keeps_layout: bool = False  # a channels-last input gives a channels-last output (torch keeps the memory format)
    seq_len_arg: str | None = None  # argument capping the sequence length (T) the op accepts
    input_width_axis: int | None = None  # axis of the input whose size the op infers (PyTorch asks for it; hints)
    sequence_arg: str | None = None  # bool argument returning every step, not the last state (hints: RNN after RNN)
    # argument naming the initialiser of the op's weight tensors (:data:`INIT`); emitted source applies it and
    # a spec's train.init fills it where a node gives none
    init_arg: str | None = None
    # bool argument that restricts attention to earlier positions; set on every op that attends across
    # positions, so a language-model check can ask any node whether it sees future tokens (:meth:`is_causal`)
    causal_arg: str | None = None
    # always attends over its own (first) input, whatever other sequence it also reads: an encoder, or a decoder
    # whose memory is cross-attended beside it. Its causal switch masks that self-attention (a MultiHeadAttention
    # with kv= attends to the other sequence instead, so its switch is about that sequence)
    self_attention: bool = False
    id_range_arg: str | None = None  # argument bounding the integer ids the op reads (ids < its value)
    # argument holding a padding id among the integer ids the op reads (its input, or its int64 ref): the
    # front end checks it lies inside the vocabulary (an id_range_arg of a node reading the same ids)
    pad_id_arg: str | None = None
    # elements per sample the op holds beside its output while it runs (attention score matrices, a recurrent
    # layer's per-step states); training keeps them for the backward pass (compiler/resources.py counts them)
    scratch: CountRule | None = None
    # elements per sample that step-by-step generation keeps in a key/value cache (keys and values of every
    # attended position; 0 where nothing is cached), reported by `netc summary`
    kv_cache: CountRule | None = None

    def is_causal(self, args: Mapping[str, Any] | tuple[tuple[str, Any], ...]) -> bool | None:
        """Whether a node with these arguments (a mapping, or an IR node's ``args`` pairs) attends only to
        earlier positions; None for an op without a causal switch."""
        if self.causal_arg is None:
            return None
        return bool(dict(args).get(self.causal_arg, self.arg(self.causal_arg).default))

    def arg(self, name: str) -> Arg | None:
        """The declared argument ``name``, or None."""
        for a in self.args:
            if a.name == name:
                return a
        return None

    def signature(self) -> str:
        """``Conv2D(filters, kernel, stride=1, ...)``."""
        if self.arity == "many":
            inner = ["*refs"] + [a.signature() for a in self.args]
        else:
            inner = [a.signature() for a in self.args]
        return f"{self.name}({', '.join(inner)})"


# The weight-initialiser argument of every op whose weights one may choose (declare ``init_arg="init"`` too).
INIT = Arg("init", "str", None, doc="weight initialiser: " + ", ".join(INIT_NAMES[:10]) + "... (default: train.init, "
                                    "else torch's)", choices=INIT_NAMES, nullable=True, keyword_only=True)


def pad_args(ref: str = "ids", of: str = "the input sequence", effect: str = "are not attended to") -> list[Arg]:
    """The padding-mask arguments of the ops that can leave padded positions out: a reference to the token
    ids (N, S) and the padding id (declare ``pad_id_arg="pad_id"`` too)."""
    return [Arg(ref, "ref", None, doc=f"name of the token ids (N, S) of {of}: positions holding pad_id {effect}",
                nullable=True, dtype="int64"),
            Arg("pad_id", "int", 0, doc=f"the padding id in `{ref}`", min=0)]


def padding_ids(name: str, ids: Shape, seq: Shape) -> None:
    """Check that ``ids`` (N, T) are the token ids of the steps of ``seq`` (N, T, ·)."""
    if len(ids) != 2 or (len(seq) == 3 and isinstance(ids[1], int) and isinstance(seq[1], int) and ids[1] != seq[1]):
        raise ShapeError(f"{name}: padding ids {fmt_shape(ids)} are not the token ids of the {fmt_shape(seq)} steps",
                         hint="name the integer token input of this sequence, e.g. ids=tokens")


# The built-in declarations in the order netc.compiler.ops makes them; the registry registers them.
BUILTINS: list[OpDef] = []


def op(name: str, doc: str, args: list[Arg] | tuple[Arg, ...] = (), *, infer: ShapeRule,
       lower: LowerRule, **kw: Any) -> OpDef:
    """Declare a built-in op (in ``netc.compiler.ops``)."""
    d = OpDef(name, doc, tuple(args), infer, lower, **kw)
    BUILTINS.append(d)
    return d


# ----------------------------------------------------------------------------- shape helpers

def fmt_shape(s: Shape) -> str:
    """``(N, 64, 4, 4)``."""
    return "(" + ", ".join(str(d) for d in s) + ")"


def numel(dims: Shape) -> int | None:
    """Product of dims, or None if any is symbolic."""
    n = 1
    for d in dims:
        if not isinstance(d, int):
            return None
        n *= d
    return n


def concrete(d: Dim, default: int = 1) -> int:
    """A dim as an int for counting MACs (symbolic dims count as ``default``)."""
    return d if isinstance(d, int) else default


def pair(v: int | tuple | list) -> tuple[int, int]:
    """An int or a pair as a pair."""
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))
