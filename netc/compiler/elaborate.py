"""Elaborate a parsed Spec into IR graphs: expand blocks and repetitions, resolve names,
bind and check arguments against the registry, and infer every tensor's shape.

Independent mistakes are all reported: a failing node poisons only the tensors
that depend on it, so one error does not cascade into many.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from netc.compiler import habits
from netc.compiler.ir import Graph, Input, Node, Program, TensorType
from netc.compiler.registry import REGISTRY, A, Arg, OpDef, fmt_shape, numel
from netc.compiler.train.initializers import NAMES as INIT_NAMES
from netc.diagnostics import (
    REQUIRED,
    Diagnostic,
    NetcError,
    ShapeError,
    Span,
    SpecError,
    did_you_mean,
    show,
)
from netc.dsl import ast, budget
from netc.dsl.chain import arith, word_value
from netc.dsl.spec import BlockDef, Entry, ModelDef, Spec

MAX_BLOCK_DEPTH = 32
MAX_NODES = 100_000  # default bound on expanded nodes (ops applied + blocks expanded) of a whole program
DEFAULT_MAX_PARAMS = 4_000_000_000
MAX_ACTIVATION = 2**31  # elements per sample of any one tensor


NO_INPUT: Any = "<no input>"  # implicit input of a multi-input model's first node


class _Failed(Exception):
    """Raised after a diagnostic was recorded, to abandon the current chain."""


@dataclass
class _Scope:
    """Names visible while elaborating one model or one block instance."""

    spec: Spec
    prefix: str
    params: dict[str, Any]
    entries: tuple[Entry, ...]
    implicit: Callable[[], str | None]
    env: dict[str, str | None] = field(default_factory=dict)  # spec name → tensor (None: poisoned)
    results: dict[int, str | None] = field(default_factory=dict)
    visiting: list[int] = field(default_factory=list)
    _index: dict[str, int] | None = None

    def index_of(self, name: str) -> int | None:
        if self._index is None:
            self._index = {}
            for i, e in enumerate(self.entries):
                if e.name is not None:
                    self._index.setdefault(e.name, i)
        return self._index.get(name)


class Elaborator:
    """Builds one Graph per model of a Spec."""

    def __init__(self, spec: Spec, max_params: int = DEFAULT_MAX_PARAMS, max_nodes: int = MAX_NODES):
        self.spec = spec
        self.max_params = max_params
        self.max_nodes = max_nodes
        self.expanded = 0  # ops applied and blocks expanded so far, across every model
        self.over_limit = False  # the node limit was reported (once)
        self.diags: list[Diagnostic] = []
        self.block_stack: list[str] = []
        self.call_stack: list[tuple[str, Span]] = []
        init = spec.train.get("init") if isinstance(spec.train, dict) else None
        # train.init, the initialiser of every weight-carrying node that names none (a wrong name: the
        # train config reports it, located)
        self.default_init = init if isinstance(init, str) and init in INIT_NAMES else None

    # -------------------------------------------------------------- driver
    def program(self) -> Program:
        graphs: dict[str, Graph] = {}
        for m in self.spec.models:
            g = self.model(m)
            if g is not None:
                graphs[m.name] = g
        if self.diags:
            errors = [d for d in self.diags if d.severity == "error"]
            if errors:
                raise SpecError("spec", diagnostics=self.diags, source=self.spec.source)
        return Program(self.spec.name, self.spec.file, graphs, self.spec.train, self.spec.source,
                       {"warnings": [d for d in self.diags if d.severity != "error"]})

    def model(self, m: ModelDef) -> Graph | None:
        self.nodes: list[Node] = []
        self.types: dict[str, TensorType | None] = {}
        self.used: set[str] = set()
        self.next_suffix: dict[str, int] = {}  # base name → first suffix fresh() has not yet tried
        inputs = []
        for d in m.inputs:
            t = TensorType(("N", *d.shape), d.dtype)
            inputs.append(Input(d.name, t, d.span))
            self.types[d.name] = t
            self.used.add(d.name)
        default = inputs[0].name if len(inputs) == 1 else NO_INPUT
        self.input_names = {i.name for i in inputs}
        scope = _Scope(self.spec, "", dict(self.spec.params), m.entries, lambda: default)
        for i in m.inputs:
            scope.env[i.name] = i.name
        if default is not NO_INPUT:
            scope.env["in"] = default
        out = self.entries(scope)
        if out is None:
            return None
        self.warn_unused(scope, out)
        return Graph(m.name, tuple(inputs), tuple(self.nodes), (out,), True, m.span)

    def warn_unused(self, scope: _Scope, out: str) -> None:
        live = {out}
        for n in reversed(self.nodes):
            if n.name in live:
                live.update(n.inputs)
        for e in scope.entries:
            t = scope.env.get(e.name or "")
            if e.name and t and t not in live:
                self.diags.append(Diagnostic("graph", f"node '{e.name}' is never used", e.span,
                                             "use it in a later node (e.g. Add or Concat) or remove it",
                                             severity="warning"))

    # -------------------------------------------------------------- entries and chains
    def entries(self, scope: _Scope) -> str | None:
        """Elaborate all entries; return the tensor of the output entry (``out`` or the last)."""
        for i in range(len(scope.entries)):
            self.resolve_entry(scope, i)
        if not scope.entries:
            return None
        oi = scope.index_of("out")
        return scope.results.get(oi if oi is not None else len(scope.entries) - 1)

    def resolve_entry(self, scope: _Scope, i: int, ref_span: Span | None = None) -> str | None:
        if i in scope.results:
            return scope.results[i]
        e = scope.entries[i]
        if i in scope.visiting:
            cyc = [scope.entries[j].name for j in scope.visiting[scope.visiting.index(i):]] + [e.name]
            self.error("graph", f"cycle: {' → '.join(str(c) for c in cyc)}", ref_span or e.span,
                       "a node cannot depend on itself; break the loop")
            scope.results[i] = None
            return None
        scope.visiting.append(i)

        def implicit() -> str | None:
            if i == 0:
                return scope.implicit()
            return self.resolve_entry(scope, i - 1)

        try:
            single = len(e.chain.steps) == 1 and e.chain.steps[0].repeat == 1 and e.chain.steps[0].count is None
            t = self.chain(e.chain, scope, implicit, e.name, single)
        except _Failed:
            t = None
        scope.visiting.remove(i)
        scope.results[i] = t
        if e.name:
            scope.env[e.name] = t
        return t

    def lookup(self, scope: _Scope, name: str, span: Span) -> str | None:
        """Tensor for a spec name (an input, ``in``, or a named entry, resolved on demand)."""
        if name in scope.env and scope.index_of(name) is None:
            return scope.env[name]
        i = scope.index_of(name)
        if i is not None:
            if i in scope.results:
                return scope.results[i]
            return self.resolve_entry(scope, i, span)
        if name in scope.env:
            return scope.env[name]
        names = list(dict.fromkeys([*scope.env, *(e.name for e in scope.entries if e.name)]))
        self.error("name", f"undefined name '{name}'", span,
                   did_you_mean(name, names) or f"defined names: {', '.join(names) or 'none'}")
        raise _Failed

    def chain(self, chain: ast.Chain, scope: _Scope, implicit: Callable[[], str | None],
              entry: str | None, single: bool) -> str | None:
        at = [0]  # the step being elaborated, for check_rest
        try:
            return self._chain(chain, scope, implicit, entry, single, at)
        except _Failed:
            if not self.over_limit:
                self.check_rest(chain.steps[at[0] + 1:], scope)
            raise

    def check_rest(self, steps: list[ast.Step] | tuple[ast.Step, ...], scope: _Scope) -> None:
        """After a failed step, report the rest of the chain's own mistakes (names, arguments, counts).

        Their input shapes are unknown, so no shape is inferred: an independent mistake is reported,
        a consequence of the first one is not.
        """
        for step in steps:
            c = step.call
            if c.bare and (c.name in scope.env or scope.index_of(c.name) is not None):
                continue  # a reference: reported where it is defined
            block = self.find_block(scope.spec, c.name)
            opdef = REGISTRY.get(c.name, plugins=block is None)
            try:
                if block is not None:
                    self.bind_block(block[0], c, scope)
                elif opdef is not None:
                    self.bind(opdef, c, scope)
                else:
                    self.unknown(c, scope)
                self.repeat_count(step, scope)
            except _Failed:
                pass

    def _chain(self, chain: ast.Chain, scope: _Scope, implicit: Callable[[], str | None],
               entry: str | None, single: bool, at: list[int]) -> str | None:
        cur: str | None = None
        started = False
        for k, step in enumerate(chain.steps):
            at[0] = k
            c = step.call
            is_ref = c.bare and step.repeat == 1 and step.count is None and (c.name in scope.env or scope.index_of(c.name) is not None) \
                and c.name not in (entry,)
            if is_ref:
                if k != 0:
                    self.error("graph", f"reference to '{c.name}' in the middle of a chain", c.span,
                               f"a chain can start from a name; to join tensors use Add({c.name}) or Concat({c.name})")
                    raise _Failed
                self.expanded += 1  # an alias costs work too: a block of 1,000 renames expanded 100,000 times
                if self.expanded > self.max_nodes:
                    self.too_many_nodes(c.span, c.name)
                cur = self.lookup(scope, c.name, c.span)
                if cur is None:
                    raise _Failed
                started = True
                continue
            if c.bare and c.name == entry and REGISTRY.get(c.name, plugins=False) is None \
                    and self.find_block(scope.spec, c.name) is None:
                self.error("graph", f"cycle: '{entry}' uses itself", c.span, "a node cannot depend on itself")
                raise _Failed
            block = self.find_block(scope.spec, c.name)
            # Blocks first: plugins (entry points, slow to scan) are loaded only for unknown names.
            opdef = REGISTRY.get(c.name, plugins=block is None)
            if opdef is None and block is None:
                self.unknown(c, scope)
                raise _Failed
            # Work is bounded before it is spent: a repetition that cannot fit in what is left of the
            # node budget is refused up front, and every expansion (blocks included) draws on the budget.
            repeat = self.repeat_count(step, scope)
            if repeat > self.max_nodes - self.expanded:
                self.too_many_nodes(step.span, f"{c.name} * {repeat:,}")
            for _ in range(repeat):
                self.expanded += 1
                if self.expanded > self.max_nodes:
                    self.too_many_nodes(c.span, c.name)
                if not started:
                    is_merge = opdef is not None and opdef.arity == "many" and bool(c.args)
                    if not is_merge:
                        cur = implicit()
                        if cur is NO_INPUT:
                            self.error("graph", f"'{c.name}' has no input: this model has several inputs",
                                       c.span, "start the chain with an input name, e.g. `image → Conv2D(...)`")
                            raise _Failed
                        if cur is None:
                            raise _Failed  # the previous node failed and was reported
                    started = True
                if block is not None:
                    cur = self.expand_block(block, c, scope, cur, entry)
                else:
                    name = self.fresh(scope.prefix, entry, c.name, single)
                    cur = self.apply(opdef, c, scope, cur, name)
                if cur is None:
                    raise _Failed
        return cur

    def too_many_nodes(self, span: Span, what: str) -> None:
        """Report (once) that the program expands past ``max_nodes``, then abandon the chain."""
        if not self.over_limit:
            self.over_limit = True
            self.error("resource", f"the spec expands to more than {self.max_nodes:,} nodes (at {what})", span,
                       "repeat fewer times, or raise the limit with --max-nodes")
        raise _Failed

    def unknown(self, c: ast.Call, scope: _Scope) -> None:
        blocks = list(self.namespace(scope.spec))
        names = [*scope.env, *(e.name for e in scope.entries if e.name)]
        first = c.args[0] if c.args else None
        hint = (habits.unknown_op(c.name, first.name if isinstance(first, ast.Word) else getattr(first, "value", None))
                or did_you_mean(c.name, [*REGISTRY.names(), *blocks, *names]) or "see `netc ops` for the list of ops")
        what = "unknown op or name" if c.bare else "unknown op"
        self.error("name", f"{what} '{c.name}'", c.span, hint)

    def fresh(self, prefix: str, entry: str | None, op: str, single: bool) -> str:
        """A stable, readable, unique node name: ``head``, ``conv2d_1``, ``res_1_conv2d``."""
        if entry and single and prefix + entry not in self.used:
            name = prefix + entry
        else:
            base = prefix + (f"{entry}_" if entry else "") + op.rsplit(".", 1)[-1].lower()  # lib.Res → res
            # Names are only ever added, so every suffix below next_suffix[base] is taken: resuming there
            # gives the same first free name as counting from 0, and each suffix is tried once per model.
            # Naming is thus O(1) amortised per node and elaboration stays linear in the expanded size
            # (`Dense(8) * 20000` once took minutes by rescanning base_1 … base_k for every k).
            n = self.next_suffix.get(base, 0)
            name = f"{base}_{n}" if n else base
            while name in self.used:
                n += 1
                name = f"{base}_{n}"
            self.next_suffix[base] = n + 1
        self.used.add(name)
        return name

    # -------------------------------------------------------------- blocks
    def namespace(self, spec: Spec) -> dict[str, tuple[BlockDef, Spec]]:
        ns = {n: (b, spec) for n, b in spec.blocks.items()}
        for alias, sub in spec.imports.items():
            for n, b in sub.blocks.items():
                ns[f"{alias}.{n}"] = (b, sub)
        return ns

    def find_block(self, spec: Spec, name: str) -> tuple[BlockDef, Spec] | None:
        return self.namespace(spec).get(name)

    def expand_block(self, found: tuple[BlockDef, Spec], c: ast.Call, scope: _Scope, cur: str | None,
                     entry: str | None) -> str | None:
        b, bspec = found
        if b.name in self.block_stack or len(self.block_stack) >= MAX_BLOCK_DEPTH:
            self.error("graph", f"block '{b.name}' uses itself (recursion: {' → '.join([*self.block_stack, b.name])})",
                       c.span, "blocks cannot call themselves; repeat with `Block(...) * n` instead")
            return None
        params = self.bind_block(b, c, scope)
        if params is None:
            return None
        inst = self.fresh(scope.prefix, entry, c.name, False)
        inner = _Scope(bspec, inst + "_", {**bspec.params, **params}, b.entries, lambda: cur)
        inner.env["in"] = cur
        # a parameter given the name of one of the caller's tensors names that tensor inside the block as well
        # (a decoder layer's memory: `DecoderLayer(d, heads, memory)` then `MultiHeadAttention(heads, kv=memory)`)
        given = [*zip(b.params, c.args), *((p, kw.value) for kw in c.kwargs for p in b.params if p.name == kw.name)]
        for p, e in given:
            if isinstance(e, ast.Word) and (e.name in scope.env or  # the caller's tensors, its tensor parameters too
                                            e.name not in scope.params and scope.index_of(e.name) is not None):
                t = self.lookup(scope, e.name, e.span)
                if t is None:
                    return None
                inner.env[p.name] = t
        self.block_stack.append(b.name)
        self.call_stack.append((c.name + ("(" + ", ".join(map(show, params.values())) + ")" if params else ""),
                                c.span))
        try:
            out = self.entries(inner)
        finally:
            self.block_stack.pop()
            self.call_stack.pop()
        return out

    def bind_block(self, b: BlockDef, c: ast.Call, scope: _Scope) -> dict[str, Any] | None:
        sig = b.signature()
        if len(c.args) > len(b.params):
            self.error("arg", f"block {b.name} takes {len(b.params)} argument{'s' * (len(b.params) != 1)}, "
                              f"got {len(c.args)}", c.span, f"call it as {sig}")
            return None
        vals: dict[str, Any] = {}
        try:
            for p, e in zip(b.params, c.args):
                vals[p.name] = self.value(e, scope, None)
            for kw in c.kwargs:
                if kw.name not in [p.name for p in b.params]:
                    self.error("arg", f"block {b.name} has no parameter '{kw.name}'", kw.span,
                               did_you_mean(kw.name, [p.name for p in b.params]) or f"call it as {sig}")
                    return None
                if kw.name in vals:
                    self.error("arg", f"parameter '{kw.name}' of {b.name} is given twice", kw.span)
                    return None
                vals[kw.name] = self.value(kw.value, scope, None)
        except _Failed:
            return None
        for p in b.params:
            if p.name not in vals:
                if p.default is REQUIRED:
                    self.error("arg", f"block {b.name} is missing parameter '{p.name}'", c.span,
                               f"call it as {sig}")
                    return None
                vals[p.name] = p.default
        return vals

    # -------------------------------------------------------------- ops
    def value(self, e: ast.Expr, scope: _Scope, kind: str | None) -> Any:
        """Evaluate an argument expression (block parameters substituted)."""
        if isinstance(e, ast.Num | ast.Str):
            return e.value
        if isinstance(e, ast.Word):
            if kind == "ref" and e.name in scope.env:
                return e.name  # a tensor, also a block parameter given one (kv=memory)
            if e.name in scope.params:
                return scope.params[e.name]
            if kind == "ref":
                return e.name
            return word_value(e.name)
        if isinstance(e, ast.ListExpr):
            return tuple(self.value(i, scope, None) for i in e.items)
        if isinstance(e, ast.BinOp):
            a, b = self.value(e.left, scope, None), self.value(e.right, scope, None)
            if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b)):
                self.error("arg", f"arithmetic needs numbers, got {a!r} {e.op} {b!r}", e.span)
                raise _Failed
            try:
                return arith(e.op, a, b, e.span)
            except NetcError as err:
                self.diags.extend(err.diagnostics)
                raise _Failed from None
        raise AssertionError(e)  # pragma: no cover

    def check_kind(self, op: OpDef, a: Arg, v: Any, span: Span) -> Any:
        """Validate one argument value against its declaration; return it normalised."""
        def bad(expected: str) -> None:
            self.error("arg", f"{op.name} argument '{a.name}' expects {expected}, got {v!r}", span,
                       f"signature: {op.signature()}")
            raise _Failed

        def is_int(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool)

        if v is None:
            if a.nullable:
                return None
            bad("a value")
        k = a.kind
        if k == "int" and not is_int(v):
            bad("an integer")
        if k == "float":
            if not (is_int(v) or isinstance(v, float)):
                bad("a number")
            v = float(v)
        if k == "bool" and not isinstance(v, bool):
            bad("true or false")
        if k == "ints" and not (isinstance(v, tuple) and all(is_int(x) for x in v)):
            bad("a list of integers, e.g. [64, 4, 4]")
        if k == "int2" and not (is_int(v) or (isinstance(v, tuple) and len(v) == 2 and all(is_int(x) for x in v))):
            bad("an integer or a pair [h, w]")
        if k == "ref" and not isinstance(v, str):
            bad("a node name")
        if k == "int_or_str" and not (is_int(v) or isinstance(v, str)
                                      or (isinstance(v, tuple) and all(is_int(x) for x in v))):
            bad("an integer, a pair or one of " + ", ".join(a.choices or ()))
        if k in ("str", "int_or_str") and isinstance(v, str) and a.choices and v not in a.choices:
            self.error("arg", f"{op.name} argument '{a.name}' must be one of {', '.join(a.choices)}, got {v!r}",
                       span, did_you_mean(v, a.choices))
            raise _Failed
        if k == "str" and not isinstance(v, str):
            bad("one of " + ", ".join(a.choices or ()) if a.choices else "a word")
        nums = [v] if isinstance(v, int | float) and not isinstance(v, bool) else \
            list(v) if isinstance(v, tuple) and k in ("int2", "ints", "int_or_str") else []
        for x in nums:
            if a.min is not None and x < a.min:
                what = "positive" if a.min == 1 else f"at least {a.min}"
                self.error("arg", f"{op.name} argument '{a.name}' must be {what}, got {x}", span,
                           f"signature: {op.signature()}")
                raise _Failed
            if a.max is not None and x > a.max:
                self.error("arg", f"{op.name} argument '{a.name}' must be at most {a.max}, got {x}", span)
                raise _Failed
        return v

    def bind(self, op: OpDef, c: ast.Call, scope: _Scope) -> tuple[dict[str, Any], list[tuple[str, Span]]]:
        """Bind a call's arguments to the op's declaration; returns (values, refs to extra inputs)."""
        refs: list[tuple[str, Span]] = []
        pos = list(c.args)
        if op.arity == "many":
            for e in pos:
                if not isinstance(e, ast.Word):
                    self.error("arg", f"{op.name} takes names of tensors to join, got an expression", _span(e),
                               f"e.g. {op.name}(body, in)")
                    raise _Failed
                refs.append((e.name, e.span))
            pos = []
        positional = [a for a in op.args if not a.keyword_only]
        if len(pos) > len(positional):
            self.error("arg", f"{op.name} takes at most {len(positional)} positional argument"
                              f"{'s' * (len(positional) != 1)}, got {len(pos)}", c.span,
                       f"signature: {op.signature()}")
            raise _Failed
        vals: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        exprs: dict[str, ast.Expr] = {}
        for a, e in zip(positional, pos):
            vals[a.name] = self.value(e, scope, a.kind)
            spans[a.name] = _span(e)
            exprs[a.name] = e
        for kw in c.kwargs:
            a = op.arg(kw.name)
            if a is None:
                kept = ", ".join(show(self.value(e, scope, None)) for e in pos)
                self.error("arg", f"{op.name} has no argument '{kw.name}'", kw.span,
                           habits.unknown_arg(op, kw.name, self.value(kw.value, scope, None), kept)
                           or did_you_mean(kw.name, [x.name for x in op.args]) or f"signature: {op.signature()}")
                raise _Failed
            if kw.name in vals:
                self.error("arg", f"{op.name} argument '{kw.name}' is given twice", kw.span,
                           f"signature: {op.signature()}")
                raise _Failed
            vals[kw.name] = self.value(kw.value, scope, a.kind)
            spans[kw.name] = _span(kw.value)
            exprs[kw.name] = kw.value
        for a in op.args:
            if a.name not in vals:
                if a.required:
                    self.error("arg", f"{op.name} is missing argument '{a.name}'", c.span,
                               f"signature: {op.signature()}")
                    raise _Failed
                vals[a.name] = a.default
            elif not (vals[a.name] is None and a.nullable):
                try:
                    vals[a.name] = self.check_kind(op, a, vals[a.name], spans[a.name])
                except _Failed:
                    self.rehint_value(op, a, exprs[a.name], c, scope)
                    raise
            if a.kind == "ref" and vals[a.name] is not None:
                refs.append((vals[a.name], spans.get(a.name, c.span)))
        return vals, refs

    def rehint_value(self, op: OpDef, a: Arg, e: ast.Expr, c: ast.Call, scope: _Scope) -> None:
        """The last diagnostic (a bad value of ``a``) retold when the value is a habit, not a typo."""
        last = self.diags[-1]
        if not isinstance(e, ast.Word) or e.name in scope.params or not isinstance(word_value(e.name), str):
            return  # a number, a parameter, or true/false/none: the message says it already
        act = habits.activation_op(e.name)
        if act is not None:  # Dense(128, relu): Keras' activation, given positionally
            kept = ", ".join(show(self.value(x, scope, None)) for x in c.args if x is not e)
            self.diags[-1] = replace(last, hint=habits.as_own_op(op, act, kept))
        elif a.kind in ("int", "float", "ints", "int2"):  # Dense(num_classes) without params: {num_classes: …}
            self.diags[-1] = replace(last, message=f"'{e.name}' is not a declared parameter: {last.message}",
                                     hint=did_you_mean(e.name, list(scope.params))
                                     or f"declare it under params: (e.g. params: {{{e.name}: 10}}), or write a number")

    def rehint_input(self, op: OpDef, c: ast.Call, scope: _Scope, cur: str | None) -> None:
        """The last diagnostic retold when the call repeats the input size first, as PyTorch's layers do."""
        t = self.types.get(cur) if cur is not None else None
        if t is None or not c.args:
            return
        hint = habits.input_size_first(op, tuple(getattr(x, "value", None) for x in c.args), t.shape)
        if hint is not None:
            self.diags[-1] = replace(self.diags[-1], hint=hint)

    def shape_hint(self, op: OpDef, c: ast.Call, vals: dict[str, Any], inputs: list[str]) -> str | None:
        """A better hint for a shape error that a Keras or PyTorch habit explains, else None."""
        shape = self.types[inputs[0]].shape if inputs and self.types.get(inputs[0]) else ()
        prev = next((n for n in reversed(self.nodes) if n.name == inputs[0]), None) if inputs else None
        prev_op = REGISTRY.get(prev.op, plugins=False) if prev is not None else None
        if op.sequence_arg is not None and prev_op is not None and prev_op.sequence_arg is not None \
                and prev.arg(prev_op.sequence_arg) is False:
            return (f"add {prev_op.sequence_arg}=true to {prev.op}({show(prev.args[0][1])}) before it, so that it "
                    f"passes on every step (N, T, H) and not only its last state (N, H)")
        chw = habits.channels_last(shape) if op.input_width_axis == 1 else None
        if chw is not None:
            return (f"the input {fmt_shape(shape)} looks channels-last (height, width, channels), as Keras and image "
                    f"files store it; netc puts channels first, like PyTorch: write the shape as {show(chw)}")
        return habits.input_size_first(op, tuple(getattr(x, "value", None) for x in c.args), shape)

    def apply(self, op: OpDef, c: ast.Call, scope: _Scope, cur: str | None, name: str) -> str | None:
        try:
            vals, refs = self.bind(op, c, scope)
        except _Failed:
            self.rehint_input(op, c, scope, cur)
            raise
        if op.init_arg is not None and vals.get(op.init_arg) is None:
            vals[op.init_arg] = self.default_init
        inputs = [cur] if cur is not None else []
        for r, sp in refs:
            t = self.lookup(scope, r, sp)
            if t is None:
                raise _Failed
            inputs.append(t)
        types = [self.types.get(t) for t in inputs]
        if any(t is None for t in types):
            raise _Failed  # an upstream node already failed and was reported
        # the dtype each input must have: the op's, or a ref argument's own (attention's padding ids are int64)
        wanted = [op.input_dtype] * len(types)
        typed: dict[int, tuple[Arg, str, Span]] = {}  # input index → the ref argument that declares its dtype
        if op.arity != "many":
            given = [a for a in op.args if a.kind == "ref" and vals[a.name] is not None]
            for k, (a, (r, sp)) in enumerate(zip(given, refs), start=len(types) - len(given)):
                wanted[k] = a.dtype or op.input_dtype
                if a.dtype is not None:
                    typed[k] = (a, r, sp)
        for k, (t, want) in enumerate(zip(types, wanted)):
            if t.dtype != want and op.arity != "many":
                if k in typed:
                    a, r, sp = typed[k]
                    self.error("shape", f"{op.name} argument '{a.name}' must name an {want} tensor, got '{r}', "
                                        f"{t.dtype} {fmt_shape(t.shape)}", sp,
                               f"name an {want} input, e.g. {a.name}=tokens with tokens: {{shape: [T], dtype: {want}}}")
                elif want == "int64":
                    self.error("shape", f"{op.name} expects integer ids, got {t.dtype} input {fmt_shape(t.shape)}",
                               c.span, "declare the input as {shape: [T], dtype: int64}")
                else:
                    self.error("shape", f"{op.name} expects float input, got {t.dtype} ids {fmt_shape(t.shape)}",
                               c.span, "map token ids to vectors with Embedding(vocab, dim) first")
                raise _Failed
        if op.pad_id_arg is not None:
            self.check_pad_id(op, c, vals, inputs, wanted)
        shapes = [t.shape for t in types]
        a = A(vals)
        try:
            out = op.infer(a, shapes)
            params = op.params(a, shapes)
            macs = op.macs(a, shapes, out)
        except ShapeError as e:
            d = e.diagnostics[0]
            self.diags.append(Diagnostic("shape", d.message + self.where(), c.span,
                                         self.shape_hint(op, c, vals, inputs) or d.hint))
            raise _Failed from None
        except Exception as e:  # a plugin's (or our) shape rule crashed: still a located message
            self.error("internal", f"{op.name} shape rule failed: {type(e).__name__}: {e}", c.span,
                       "this is a bug in the op's declaration; please report it")
            raise _Failed from None
        if params > self.max_params:
            self.error("resource", f"{op.name} would hold {params:,} parameters "
                                   f"({_bytes(params * 4)} in float32); the limit is {self.max_params:,}",
                       c.span, "use smaller sizes, or raise the limit with --max-params")
            raise _Failed
        per_sample = numel(tuple(d for d in out[1:] if isinstance(d, int)))
        if per_sample is not None and per_sample > MAX_ACTIVATION:
            self.error("resource", f"{op.name} output {fmt_shape(out)} has {per_sample:,} elements per sample "
                                   f"({_bytes(per_sample * 4)} in float32)", c.span, "use smaller sizes")
            raise _Failed
        budget.check()  # the editor's per-document budget and cancellation (no-op elsewhere)
        args = tuple((x.name, vals[x.name]) for x in op.args  # declaration order; no init: torch's own
                     if x.kind != "ref" and not (x.name == op.init_arg and vals[x.name] is None))
        line = _line(c.span)
        node = Node(name, op.name, args, tuple(inputs), TensorType(out, op.output_dtype), c.span, params, macs, line)
        self.nodes.append(node)
        if op.input_width_axis == 1 and inputs and inputs[0] in self.input_names:
            self.warn_channels_last(op, c, types[0].shape)
        self.types[name] = node.type
        return name

    def check_pad_id(self, op: OpDef, c: ast.Call, vals: dict[str, Any], inputs: list[str], wanted: list[str]) -> None:
        """A padding id must be one of the ids: below the vocabulary of the op itself or of any node reading the
        same token ids (``MultiHeadAttention(ids=in, pad_id=…)`` beside ``Embedding(vocab, …)`` of ``in``)."""
        pad = vals.get(op.pad_id_arg)
        ids = [t for t, w in zip(inputs, wanted) if w == "int64"]
        if pad is None or not ids:
            return
        readers = []
        for n in self.nodes:
            reader = REGISTRY.get(n.op)
            if ids[0] in n.inputs and reader is not None and reader.id_range_arg is not None:
                readers.append((n.op, n.arg(reader.id_range_arg)))
        if op.id_range_arg is not None:
            readers.insert(0, (op.name, vals[op.id_range_arg]))
        for reader, vocab in readers:
            if isinstance(vocab, int) and pad >= vocab:
                self.error("arg", f"{op.name} {op.pad_id_arg}={pad} is outside the vocabulary: {reader} reads ids "
                                  f"0..{vocab - 1}", _arg_span(op, c, op.pad_id_arg),
                           f"use a padding id below {vocab} (0 is usual), or raise the vocabulary to {pad + 1}")
                raise _Failed

    def warn_channels_last(self, op: OpDef, c: ast.Call, shape: tuple) -> None:
        """A declared image input that fits, read channels first, but looks channels-last ([32, 32, 3])."""
        chw = habits.channels_last(shape)
        if chw is not None:
            self.diags.append(Diagnostic(
                "shape", f"the input {fmt_shape(shape)} looks channels-last (height, width, channels): {op.name} reads "
                         f"axis 1 ({shape[1]}) as its channels", c.span,
                f"netc puts channels first, like PyTorch: declare the input as {show(chw)}", severity="warning"))

    def repeat_count(self, step: ast.Step, scope: _Scope) -> int:
        """``Res(64) * 3`` repeats 3 times; ``Res(64) * depth`` as often as the parameter ``depth`` says."""
        if step.count is None:
            return step.repeat
        value = scope.params.get(step.count)
        if step.count not in scope.params:
            self.error("name", f"repetition count '{step.count}' is not a parameter", step.span,
                       did_you_mean(step.count, list(scope.params)) or
                       f"declare it in params: (e.g. params: {{{step.count}: 2}}) or write a whole number")
            raise _Failed
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.error("arg", f"repetition count {step.count} must be a whole number of at least 1, got "
                              f"{show(value)}", step.span, f"set {step.count} to 1 or more")
            raise _Failed
        return value

    def error(self, kind: str, message: str, span: Span | None, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(kind, message + self.where(), span, hint))

    def where(self) -> str:
        """`` (in Res(32) at line 10)`` for errors found inside a block instance."""
        if not self.call_stack:
            return ""
        name, sp = self.call_stack[-1]
        return f" (in {name} called at line {sp.line})"


def _arg_span(op: OpDef, c: ast.Call, name: str) -> Span:
    """Where a call gives argument ``name`` (its value), or the call itself when it is left at its default."""
    for kw in c.kwargs:
        if kw.name == name:
            return _span(kw.value)
    names = [a.name for a in op.args if not a.keyword_only]  # the order positional values bind in
    if op.arity != "many" and name in names and names.index(name) < len(c.args):
        return _span(c.args[names.index(name)])
    return c.span


def _span(e: ast.Expr) -> Span:
    return e.span


def _line(span: Span | None) -> str:
    """``file.yaml:7``: where a node came from, for comments in emitted code."""
    if span is None or span.line < 1:
        return ""
    return f"{span.file.replace(chr(92), '/').rsplit('/', 1)[-1]}:{span.line}"


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def elaborate(spec: Spec, max_params: int = DEFAULT_MAX_PARAMS, max_nodes: int = MAX_NODES) -> Program:
    """Spec → Program of checked, shaped graphs; raises SpecError with every diagnostic."""
    return Elaborator(spec, max_params, max_nodes).program()
