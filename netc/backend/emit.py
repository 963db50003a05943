"""Emit readable, standalone PyTorch source for IR graphs.

This is the one lowering path of netc: ``netc compile`` writes this text to a
file and ``netc.build`` executes the same text (see ``build.py``), so what a
user reads is what runs. Emission itself never imports torch.

Every value in the emitted text comes from an op's :class:`Lowering`: ints,
floats, bools, strings and ``None``, tuples of them and nested Lowerings. Module
names and forward templates come from op declarations, never from the spec, so
nothing a spec says is evaluated as code. The user's own text that does reach the
source (file name, model, input and node names, symbolic sizes, string arguments)
passes through one function, :func:`source_text`, whose output cannot end a
comment, a string or a docstring; identifiers go through :func:`py_name`.
"""

from __future__ import annotations

import ast
import keyword
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import netc.compiler.ops  # noqa: F401  registers the built-in ops
from netc import __version__
from netc.compiler.ir import Graph, Node, Program, TensorType
from netc.compiler.registry import REGISTRY, A, Lowering
from netc.compiler.train.initializers import initializer
from netc.diagnostics import NetcError

LAYERS_FILE = Path(__file__).with_name("layers.py")
MAX_LINE = 100  # wrap a constructor call whose line would be longer than this

# Attributes of ``torch.nn.Module`` (and those ``netc.build`` adds) that a submodule must not
# shadow; a test keeps this in sync with torch. Kept as data so emission needs no torch import.
MODULE_ATTRS = frozenset("""
    T_destination _apply _backward_hooks _backward_pre_hooks _buffers _call_impl _compiled_call_impl
    _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks
    _forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name
    _is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
    _maybe_warn_non_full_backward_hook _modules _named_members _non_persistent_buffers_set _parameters
    _register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
    _save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _version _wrapped_call_impl
    add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches eval
    extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu
    load_state_dict modules mtia named_buffers named_children named_modules named_parameters parameters
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
    register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
    to_empty train training type xpu zero_grad
    netc_graph input_names
""".split())

# Names the generated module defines or imports at top level; forward's locals must not shadow them.
MODULE_GLOBALS = frozenset({"self", "torch", "nn", "math"})

_MODULE_RE = re.compile(r"^(nn\.[A-Za-z_]\w*|[A-Za-z_]\w*|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$")


class BackendError(NetcError):
    """The model cannot be lowered to or exported from torch."""

    kind = "backend"


# ----------------------------------------------------------------------------- lowering a node

def lower_node(graph: Graph, node: Node) -> Lowering:
    """The op's :class:`Lowering` for one node, from its arguments and input/output shapes."""
    op = REGISTRY.get(node.op)
    if op is None:
        raise BackendError(f"node '{node.name}' uses unknown op {node.op!r}", node.span,
                           "is the plugin that declares it installed?")
    values = {a.name: (None if a.required else a.default) for a in op.args}  # ref args are not kept in the IR
    values.update(node.args)
    ins = [graph.type_of(i).shape for i in node.inputs]
    try:
        low = op.lower(A(values), ins, node.type.shape)
    except Exception as e:  # noqa: BLE001  a plugin's (or our) lowering crashed: still a located message
        raise BackendError(f"{node.op} cannot be lowered to torch: {type(e).__name__}: {e}", node.span,
                           "this is a bug in the op's declaration; please report it") from None
    if not isinstance(low, Lowering):
        raise BackendError(f"{node.op}.lower returned {type(low).__name__}, not a Lowering", node.span,
                           "this is a bug in the op's declaration")
    return low


# ----------------------------------------------------------------------------- user text in source

def source_text(text: str) -> str:
    """User text made inert for emitted source: one line, safe in a ``#`` comment, a ``"…"`` string or a docstring."""
    # Backslashes and double quotes are escaped and every unprintable character (newline, CR, NUL,
    # U+2028/2029, tab, the lone surrogates of an undecodable file name) becomes a \x/\u/\U escape:
    # no quote sequence or line break survives, the text is valid UTF-8, and a literal reads back `text`.
    out: list[str] = []
    for ch in text:
        if ch == "\\" or ch == '"':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            c = ord(ch)
            out.append(f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}")
    return "".join(out)


def render_value(v: Any) -> str:
    """Python source for a constructor argument; refuses anything but plain data."""
    if isinstance(v, Lowering):
        return render_call(v)
    if isinstance(v, str):
        return '"' + source_text(v) + '"'
    if v is None or isinstance(v, bool | int):
        return repr(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return f"float({str(v)!r})"
        return repr(v)
    if isinstance(v, tuple | list):
        items = [render_value(x) for x in v]
        return "(" + items[0] + ",)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    raise BackendError(f"cannot render constructor argument of type {type(v).__name__}: {v!r}",
                       hint="op lowerings may pass only ints, floats, bools, strings, None, tuples and Lowerings")


def _ctor_name(low: Lowering) -> str:
    if low.module is None or not _MODULE_RE.match(low.module):
        raise BackendError(f"invalid module name in a lowering: {low.module!r}")
    return low.module.split(":")[-1]


def _ctor_args(low: Lowering) -> list[str]:
    return [render_value(a) for a in low.args] + [f"{k}={render_value(v)}" for k, v in low.kwargs]


def render_call(low: Lowering) -> str:
    """``nn.Conv2d(3, 32, 3, padding='same')``."""
    return f"{_ctor_name(low)}({', '.join(_ctor_args(low))})"


def _walk(low: Lowering):
    yield low
    for v in (*low.args, *(v for _, v in low.kwargs)):
        if isinstance(v, Lowering):
            yield from _walk(v)


# ----------------------------------------------------------------------------- helpers from layers.py

@cache
def _layer_defs() -> dict[str, tuple[str, frozenset[str]]]:
    """Top-level definitions of layers.py: name → (source text, names it refers to)."""
    text = LAYERS_FILE.read_text(encoding="utf-8")
    lines = text.splitlines()
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            src = "\n".join(lines[start - 1:node.end_lineno])
            used = frozenset(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
            out[node.name] = (src, used)
    return out


def helper_names() -> frozenset[str]:
    """Names of the helper classes and functions that layers.py defines."""
    return frozenset(_layer_defs())


def _helpers_source(names: set[str]) -> list[str]:
    """Sources of the named helpers and the helpers they use, in layers.py order."""
    defs = _layer_defs()
    todo, need = list(names), set()
    while todo:
        n = todo.pop()
        if n in need:
            continue
        if n not in defs:
            raise BackendError(f"lowering names helper {n!r}, which netc/backend/layers.py does not define")
        need.add(n)
        todo.extend(u for u in defs[n][1] if u in defs)
    return [src for name, (src, _) in defs.items() if name in need]


# ----------------------------------------------------------------------------- names

def py_name(name: str, reserved: frozenset[str] | set[str] = frozenset()) -> str:
    """A spec name as a Python identifier: invalid characters become ``_``; keywords and
    reserved names get a trailing ``_`` (``lambda`` → ``lambda_``, ``train`` → ``train_``)."""
    # Python reads identifiers NFKC-normalised; any character an identifier cannot hold becomes `_`.
    s = "".join(ch if ("_" + ch).isidentifier() else "_" for ch in unicodedata.normalize("NFKC", name))
    if not s or not s.isidentifier():
        s = "_" + s
    while keyword.iskeyword(s) or s in reserved:
        s += "_"
    return s


def _unique(names: Sequence[str], reserved: frozenset[str] | set[str]) -> dict[str, str]:
    """Map each spec name to a distinct Python name (stable: depends only on the names)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for n in names:
        p = py_name(n, reserved)
        while p in taken:
            p += "_"
        taken.add(p)
        out[n] = p
    return out


def class_name(model: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """CapWords class name for a model: ``generator`` → ``Generator``, ``disc_net`` → ``DiscNet``."""
    s = "".join(p[:1].upper() + p[1:] for p in re.split(r"\W|_", model) if p)
    if not s or not s.isidentifier() or s[0].isdigit():
        s = "Model" + s
    if keyword.iskeyword(s) or s in taken or s in helper_names() or s in ("nn", "torch", "math"):
        s += "Model"
    while s in taken:
        s += "_"
    return s


def class_names(program: Program) -> dict[str, str]:
    """Model name → class name: ``Model`` for a one-model spec, CapWords of each name otherwise."""
    if len(program.graphs) == 1:
        return {next(iter(program.graphs)): "Model"}
    out: dict[str, str] = {}
    for m in program.graphs:
        out[m] = class_name(m, set(out.values()))
    return out


# ----------------------------------------------------------------------------- one class

def _weight_init(node: Node) -> str | None:
    """The initialiser a node names through its op's ``init_arg`` (a checked name), or None."""
    op = REGISTRY.get(node.op)
    return node.arg(op.init_arg) if op is not None and op.init_arg is not None else None


@dataclass(frozen=True)
class _Layer:
    node: Node
    attr: str | None  # None for functional ops
    low: Lowering


def _fmt_type(t: TensorType) -> str:
    shape = "(" + ", ".join(str(d) for d in t.shape) + ")"
    return shape if t.dtype == "float32" else f"{shape} {t.dtype}"


def _tensor_vars(graph: Graph, input_vars: dict[str, str], reserved: frozenset[str]) -> dict[str, str]:
    """The local variable holding each tensor in ``forward``.

    A tensor used only by the very next node (and not returned) lives in one running
    variable, ``x``, as in hand-written code: ``x = self.conv(x)``. Every other tensor
    (used twice, later, or returned) gets a variable named after its node.
    """
    users: dict[str, set[int]] = {}
    for k, n in enumerate(graph.nodes):
        for i in n.inputs:
            users.setdefault(i, set()).add(k)
    temp = {n.name for k, n in enumerate(graph.nodes)
            if users.get(n.name) == {k + 1} and n.name not in graph.outputs}
    last = graph.nodes[-1].name if graph.nodes else None
    if graph.outputs == (last,) and last not in users:
        temp.add(last)  # `x = self.head(x)` then `return x`
    named = _unique([n.name for n in graph.nodes if n.name not in temp],
                    reserved | set(input_vars.values()))
    # The running variable's name: `x`, unless a named tensor or a still-needed input owns it.
    owned = set(named.values()) | {v for i, v in input_vars.items() if users.get(i, set()) - {0}}
    running = next(c for c in ("x", "h", "y", "z", *(f"x{k}" for k in range(len(owned) + 1)))
                   if c not in owned and c not in reserved)
    var = dict(input_vars)
    for n in graph.nodes:
        var[n.name] = running if n.name in temp else named[n.name]
    return var


def _init_line(attr: str, low: Lowering, comment: str) -> list[str]:
    head = f"        self.{attr} = "
    call = render_call(low)
    if comment.startswith("<"):  # spec given as text: "<string>:7"
        comment = "spec line " + comment.rsplit(":", 1)[-1]
    tail = f"  # {source_text(comment)}" if comment else ""
    if len(head) + len(call) <= MAX_LINE:
        return [head + call + tail]
    lines = [f"{head}{_ctor_name(low)}({tail}"]
    lines += [f"            {a}," for a in _ctor_args(low)]
    lines.append("        )")
    return lines


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for k, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:k].strip())
            start = k + 1
    parts.append(text[start:].strip())
    return parts


def _wrap(line: str) -> list[str]:
    """Break a too-long ``target = f(a, b)[0]`` line inside its outermost call, black-style."""
    if len(line) <= MAX_LINE or "(" not in line:
        return [line]
    indent = line[:len(line) - len(line.lstrip())]
    open_at = line.index("(")
    depth = 0
    for close_at in range(open_at, len(line)):
        depth += {"(": 1, ")": -1}.get(line[close_at], 0)
        if depth == 0:
            break
    else:
        return [line]
    head, inner, tail = line[:open_at + 1], line[open_at + 1:close_at], line[close_at:]
    args = [a for a in _split_top(inner) if a]
    one = f"{indent}    {', '.join(args)}"
    body = [one] if len(one) <= MAX_LINE else [f"{indent}    {a}," for a in args]
    return [head, *body, indent + tail]


def emit_class(graph: Graph, name: str = "Model") -> tuple[str, set[str], set[str]]:
    """Source of one ``nn.Module`` class for ``graph``, the layers.py helpers and the plugin
    classes (``pkg.mod:Class``) it uses."""
    layers = [_Layer(n, None, lower_node(graph, n)) for n in graph.nodes]
    attrs = _unique([n.name for n in graph.nodes], MODULE_ATTRS)
    helpers: set[str] = set()
    imports: set[str] = set()
    for i, la in enumerate(layers):
        if la.low.module is not None:
            layers[i] = _Layer(la.node, attrs[la.node.name], la.low)
            for sub in _walk(la.low):
                if sub.module and ":" in sub.module:
                    imports.add(sub.module)
                elif sub.module and not sub.module.startswith("nn."):
                    helpers.add(sub.module)
        helpers.update(la.low.helpers)
    local_reserved = frozenset(MODULE_GLOBALS | helper_names())
    input_vars = _unique([i.name for i in graph.inputs], local_reserved)

    ins = ", ".join(f"{i.name} {_fmt_type(i.type)}" for i in graph.inputs)
    outs = ", ".join(_fmt_type(graph.type_of(o)) for o in graph.outputs)
    doc = '    """' + source_text(f"{graph.name}: {ins} → {outs}; {graph.params:,} parameters.") + '"""'

    init = ["    def __init__(self):", "        super().__init__()"]
    for la in layers:
        if la.attr is not None:
            init += _init_line(la.attr, la.low, la.node.source)
            scheme = _weight_init(la.node)
            if scheme is not None:  # the node's init= (or train.init): after construction, as torch's own runs first
                init.append(f"        {initializer(scheme).call(f'self.{la.attr}')}")
                helpers.add("init_weights")

    fwd_args = ", ".join(f"{input_vars[i.name]}: torch.Tensor" for i in graph.inputs)
    ret_t = "torch.Tensor" if len(graph.outputs) == 1 else \
        "tuple[" + ", ".join("torch.Tensor" for _ in graph.outputs) + "]"
    fwd = [f"    def forward(self, {fwd_args}) -> {ret_t}:"]
    var = _tensor_vars(graph, input_vars, local_reserved)
    for la in layers:
        xs = [var[i] for i in la.node.inputs]
        fields = {f"x{k}": x for k, x in enumerate(xs)}
        fields.update(m=f"self.{la.attr}" if la.attr else "", x=xs[0] if xs else "", xs=", ".join(xs))
        try:
            expr = la.low.forward.format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise BackendError(f"{la.node.op}'s forward template {la.low.forward!r} does not fit its "
                               f"{len(xs)} input(s): {type(e).__name__}: {e}", la.node.span,
                               "this is a bug in the op's declaration; please report it") from None
        target = var[la.node.name]
        if expr != target:  # an Identity on the running variable needs no line
            fwd += _wrap(f"        {target} = {expr}")
    fwd.append("        return " + ", ".join(var[o] for o in graph.outputs))

    body = [f"class {name}(nn.Module):", doc, "", *init, "", *fwd]
    return "\n".join(body), helpers, imports


# ----------------------------------------------------------------------------- a whole file

def emit_source(graphs: Sequence[tuple[Graph, str]], origin: str = "") -> str:
    """Standalone source for ``(graph, class name)`` pairs: imports, copied helpers, classes."""
    classes: list[str] = []
    helpers: set[str] = set()
    plugins: set[str] = set()
    for g, cname in graphs:
        text, used, imported = emit_class(g, cname)
        classes.append(text)
        helpers |= used
        plugins |= imported
    helper_src = _helpers_source(helpers)
    names = ", ".join(f"`{cname}()`" for _, cname in graphs)
    where = f" from {source_text(origin)}" if origin else ""
    header = [f'"""PyTorch source generated by netc {__version__}{where}.',
              "",
              f"Standalone: needs only torch. Build with {names}.",
              "Change the spec and recompile rather than editing this file.",
              '"""', ""]
    imports = ["import math", ""] if any(re.search(r"\bmath\.", s) for s in helper_src) else []
    imports += ["import torch", "from torch import nn"]
    for m in sorted(plugins):
        mod, cls = m.split(":")
        imports.append(f"from {mod} import {cls}")
    parts = ["\n".join(header + imports)] + helper_src + classes
    return "\n\n\n".join(parts) + "\n"


def graph_source(graph: Graph, cname: str = "Model", origin: str = "") -> str:
    """Standalone source defining one class for one graph."""
    return emit_source([(graph, cname)], origin)


def program_source(program: Program, models: Sequence[str] | None = None,
                   graphs: dict[str, Graph] | None = None) -> str:
    """Standalone source for the models of a program (all of them by default).

    ``graphs`` replaces some graphs by name (e.g. after optimisation passes).
    """
    names = class_names(program)
    selected = list(models) if models is not None else list(program.graphs)
    pairs = [((graphs or {}).get(m, program.graphs[m]), names[m]) for m in selected]
    return emit_source(pairs, Path(program.file).name if program.file not in ("", "<string>") else "")
