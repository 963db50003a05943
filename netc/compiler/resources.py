"""One resource policy for every command: parameters, expanded nodes and memory against one set of limits.

``netc check``, ``summary``, ``compile`` and ``train`` (and the language server) run the one front end,
which bounds the expanded nodes while elaborating (``--max-nodes``) and then calls :func:`check_resources`
with the same :class:`Limits`: the whole program's parameters (``--max-params``) and the memory it needs
(``--max-memory``, default: the memory available now) are estimated from the IR's shapes and the op
registry, torch-free, and a program past a limit is refused at the op that dominates (or at the model).

The estimate, in bytes (float32 weights; the dtype of each tensor otherwise):

- inference (a spec without a ``train:`` block, at batch 1): parameters, plus the peak of the tensors
  alive at once in a forward pass (each freed after its last use), plus the op's scratch (attention scores);
- training (a spec with a ``train:`` block, or ``netc train``): parameters, gradients (one copy) and the
  optimizer's state (Adam: two copies), plus every activation and scratch tensor of a forward pass at the
  micro-batch (``batch_size / accumulate``), kept for the backward pass — or the evaluation forward pass at
  ``eval_batch_size`` when that needs more.

It is a lower bound of what torch allocates (workspaces, the allocator's rounding and the data are not
counted), so a refusal is never a false alarm about the model itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from netc.compiler.elaborate import DEFAULT_MAX_PARAMS, MAX_NODES
from netc.compiler.ir import Graph, Node, Program
from netc.compiler.registry import REGISTRY, A, concrete
from netc.diagnostics import Diagnostic, SpecError

FALLBACK_MEMORY = 8 * 2**30  # the limit when the platform says nothing about its memory
DTYPE_BYTES = {"float32": 4, "int64": 8, "float16": 2, "bfloat16": 2, "bool": 1}
Key = tuple[str, str]  # (model, node) names
DOMINANT_SHARE = 0.5  # an op holding at least this share of the estimate is where a refusal points


@dataclass(frozen=True)
class Limits:
    """The bounds every command applies (``--max-params``, ``--max-nodes``, ``--max-memory``)."""

    max_params: int = DEFAULT_MAX_PARAMS  # parameters of the whole program (and of any one op)
    max_nodes: int = MAX_NODES  # ops applied and blocks expanded, across every model
    max_memory: int | None = None  # bytes; None: the memory available when the check runs

    @staticmethod
    def of(max_params: int | None = None, max_nodes: int | None = None, max_memory: int | None = None) -> Limits:
        """Limits from command-line values, None meaning the default."""
        return Limits(DEFAULT_MAX_PARAMS if max_params is None else max_params,
                      MAX_NODES if max_nodes is None else max_nodes, max_memory)

    @staticmethod
    def of_options(values: object) -> Limits:
        """Limits from parsed ``--max-params``/``--max-nodes``/``--max-memory`` values (absent: defaults)."""
        return Limits.of(getattr(values, "max_params", None), getattr(values, "max_nodes", None),
                         getattr(values, "max_memory", None))

    def memory(self) -> tuple[int, str]:
        """The memory limit in bytes and where it comes from (for messages)."""
        if self.max_memory is not None:
            return self.max_memory, "--max-memory"
        return available_memory()


def available_memory() -> tuple[int, str]:
    """Memory this process could use now, torch-free: /proc/meminfo's MemAvailable, else sysconf, else 8 GiB."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f.read(65536).splitlines():
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024, "memory available now"
    except (OSError, ValueError, IndexError):
        pass
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            n = os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            continue
        if n > 0:
            return n, "memory available now" if pages == "SC_AVPHYS_PAGES" else "this machine's memory"
    return FALLBACK_MEMORY, "the default limit (the platform reports no memory size)"


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> int:
    """``"24GB"``, ``"16GiB"``, ``"512M"``, ``"1.5e9"`` → bytes; ValueError naming the accepted forms."""
    m = re.fullmatch(r"\s*([0-9]{1,15}(?:\.[0-9]{1,6})?(?:e[0-9]{1,2})?)\s*([a-z]{0,3})\s*", str(text).lower())
    if not m or m.group(2) not in _UNITS or float(m.group(1)) * _UNITS[m.group(2)] < 1:
        raise ValueError(f"expected a size such as 24GB, 16GiB or 512MB, got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def show_bytes(n: float) -> str:
    """``14.4 GB`` (decimal units, as memory sizes are quoted)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


@dataclass(frozen=True)
class Estimate:
    """What a program needs, in bytes, by part; and the op holding the most of it."""

    parts: dict[str, int]  # parameters, gradients, <optimizer> state, activations, attention/recurrent scratch
    training: bool
    batch: int
    params: int
    owner: dict[Key, int] = field(default_factory=dict)  # bytes attributed to each node, for blame
    nodes: dict[Key, tuple[Graph, Node]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Everything together."""
        return sum(self.parts.values())

    def mode(self) -> str:
        """``to train at batch 32`` / ``to run at batch 1``."""
        return f"to {'train' if self.training else 'run'} at batch {self.batch}"

    def breakdown(self) -> str:
        """``parameters 14.4 GB, gradients 14.4 GB, ...`` (parts above zero)."""
        return ", ".join(f"{k} {show_bytes(v)}" for k, v in self.parts.items() if v)


def _per_sample(shape: tuple, dtype: str) -> int:
    n = DTYPE_BYTES.get(dtype, 4)
    for d in shape[1:]:
        n *= concrete(d)
    return n


@dataclass(frozen=True)
class _Sizes:
    """One graph's bytes per sample: each input, each node's output (0 for a view) and scratch."""

    inputs: int
    out: list[int]
    scratch: list[int]
    last_use: dict[str, int]  # tensor → index of the last node reading it (graph outputs: never freed)


def _sizes(g: Graph) -> _Sizes:
    """Per-sample sizes of ``g`` in one linear pass (the op's facts looked up once per op name)."""
    types = {i.name: i.type for i in g.inputs} | {n.name: n.type for n in g.nodes}
    facts: dict[str, tuple[bool, object]] = {}
    out, scratch, last = [], [], {}
    for k, n in enumerate(g.nodes):
        if n.op not in facts:
            opdef = REGISTRY.get(n.op)
            facts[n.op] = (opdef is not None and opdef.reshape_only, opdef.scratch if opdef is not None else None)
        view, rule = facts[n.op]
        out.append(0 if view else _per_sample(n.type.shape, n.type.dtype))
        extra = 0
        if rule is not None:
            try:
                extra = int(rule(A(dict(n.args)), [types[i].shape for i in n.inputs if i in types])) * 4
            except Exception:  # noqa: BLE001  a plugin's rule that cannot say: count nothing rather than fail the check
                extra = 0
        scratch.append(extra)
        for i in n.inputs:
            last[i] = k
    for o in g.outputs:
        last.pop(o, None)
    return _Sizes(sum(_per_sample(i.type.shape, i.type.dtype) for i in g.inputs), out, scratch, last)


def _forward(g: Graph, sz: _Sizes, batch: int, keep_all: bool) -> tuple[int, dict[Key, int]]:
    """Activation bytes of one forward pass at ``batch``: all of them (training) or the peak alive at once.

    Linear in the graph: each tensor is freed after its last reader. Reshape-only ops make views (no bytes).
    """
    size = {i.name: _per_sample(i.type.shape, i.type.dtype) for i in g.inputs}
    own: dict[Key, int] = {}
    live = peak = sz.inputs
    for k, n in enumerate(g.nodes):
        out, scratch = sz.out[k], sz.scratch[k]
        size[n.name] = out
        own[g.name, n.name] = (out + scratch) * batch
        live += out
        if keep_all:
            live += scratch
            continue
        peak = max(peak, live + scratch)
        for i in n.inputs:
            if sz.last_use.get(i) == k:
                live -= size.pop(i, 0)
    return (live if keep_all else peak) * batch, own


def estimate(program: Program, train: object | None = None, *, training: bool | None = None) -> Estimate:
    """The memory ``program`` needs: training when ``training`` (default: it has a ``train:`` config).

    ``train`` is the program's TrainConfig (or None: inference at batch 1, or training with the defaults).
    """
    from netc.compiler.train.config import TrainConfig
    from netc.compiler.train.objectives import resolve_optimizer

    training = train is not None if training is None else training
    cfg = train if train is not None else TrainConfig.from_dict({})
    params = sum(g.params for g in program.graphs.values())
    nodes = {(g.name, n.name): (g, n) for g in program.graphs.values() for n in g.nodes}
    parts = {"parameters": params * 4}
    if not training:
        acts, owner = 0, {}
        for g in program.graphs.values():
            a, own = _forward(g, _sizes(g), 1, keep_all=False)
            acts, owner = acts + a, owner | own
        parts["activations"] = acts
        batch = 1
        for key, (_, n) in nodes.items():
            owner[key] = owner.get(key, 0) + n.params * 4
        return Estimate(parts, False, batch, params, owner, nodes)
    bound = resolve_optimizer(cfg.optimizer)
    state = bound.entry.state(bound.kwargs) if hasattr(bound.entry, "state") else 2
    batch = -(-cfg.batch_size // max(1, cfg.accumulate))  # a micro-batch's activations are alive at once
    per_param = 4 * (2 + state)
    parts["gradients"] = params * 4
    parts[f"{bound.name} state"] = params * 4 * state
    train_acts, owner = 0, {}
    eval_acts, eval_owner = 0, {}
    for g in program.graphs.values():
        sz = _sizes(g)
        a, own = _forward(g, sz, batch, keep_all=True)
        train_acts, owner = train_acts + a, owner | own
        a, own = _forward(g, sz, cfg.eval_batch_size, keep_all=False)
        eval_acts, eval_owner = eval_acts + a, eval_owner | own
    if eval_acts > train_acts:  # evaluation (no gradients, a bigger batch) is the peak
        parts["activations (evaluation at batch " + str(cfg.eval_batch_size) + ")"] = eval_acts
        owner = eval_owner
    else:
        parts["activations"] = train_acts
    for key, (_, n) in nodes.items():
        owner[key] = owner.get(key, 0) + n.params * per_param
    return Estimate(parts, True, batch, params, owner, nodes)


def check_resources(program: Program, train: object | None, limits: Limits, *,
                    training: bool | None = None) -> Estimate:
    """Refuse ``program`` past ``limits`` (whole-program parameters, memory) with a located SpecError."""
    est = estimate(program, train, training=training)
    if est.params > limits.max_params:
        _refuse(program, est, lambda k: est.nodes[k][1].params * 4,
                f"holds {est.params:,} parameters ({show_bytes(est.params * 4)} in float32)",
                f"the limit is {limits.max_params:,}", "use smaller sizes, or raise the limit with --max-params N")
    limit, source = limits.memory()
    if est.total > limit:
        acts = next((k for k in est.parts if k.startswith("activations")), "")
        fix = ""
        if est.training and est.parts.get(acts, 0) * 2 >= est.total:  # the batch is what makes it big
            key = "eval_batch_size" if "evaluation" in acts else "batch_size"
            fix = f"a smaller train.{key} (--set train.{key}=...), "
        _refuse(program, est, lambda k: est.owner.get(k, 0),
                f"needs about {show_bytes(est.total)} {est.mode()} ({est.breakdown()})",
                f"the limit is {show_bytes(limit)} ({source})",
                f"use smaller sizes, {fix}or set the limit with --max-memory {_suggest(est.total)} "
                f"if this machine has that much")
    return est


def _suggest(n: int) -> str:
    return f"{-(-n // 10**9)}GB"


def _refuse(program: Program, est: Estimate, held_by: Callable[[Key], int], what: str, limit: str,
            hint: str) -> None:
    """Raise the refusal at the op holding at least half of the total, else at the model naming the largest op."""
    whole = f"model '{program.main.name}'" if len(program.graphs) == 1 else \
        f"the models {', '.join(repr(g) for g in program.graphs)} together"
    span, share, tail = program.main.span, "", ""
    if est.nodes:
        key = max(est.nodes, key=held_by)
        g, n = est.nodes[key]
        held, call = held_by(key), _call_text(program, n)
        here = n.span is not None and n.span.file == program.file  # not inside an imported file's block
        if held >= DOMINANT_SHARE * sum(map(held_by, est.nodes)) and here:
            span, share = n.span, f", {show_bytes(held)} of it for {call}"
        elif held:
            span = g.span or span
            at = "" if n.span is None else f" at line {n.span.line}" if here else f" at {n.source or n.span.file}"
            tail = f"; the largest part is {call}{at} ({show_bytes(held)})"
    raise SpecError("resource", diagnostics=[Diagnostic("resource", f"{whole} {what}{share}; {limit}{tail}",
                                                         span, hint)], source=program.source)


def _call_text(program: Program, n: Node) -> str:
    """The op call as the spec writes it (``Dense(60000)``), from its span; the op name otherwise."""
    sp = n.span
    if sp is None or not program.source or sp.line < 1 or sp.file != program.file:
        return n.op
    lines = program.source.splitlines()
    if sp.line > len(lines):
        return n.op
    text = lines[sp.line - 1]
    end = sp.end_col if sp.end_line == sp.line else len(text) + 1
    call = text[sp.col - 1:end - 1].strip()
    return call if call and len(call) <= 60 else n.op
