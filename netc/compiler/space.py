"""The search space of a spec's ``tune:`` block, checked at its corners so that no trial fails on a shape.

``netc tune`` (``netc.runner.tune``) samples one value per dimension for each trial. A dimension
names a spec parameter (``params:``) or a ``train:`` key, and a distribution::

    params: {width: 32, depth: 1, dropout: 0.2}
    model: ConvBNReLU(width) * depth → GlobalAvgPool → Dropout(dropout) → Dense(10)
    tune:
      params:
        width: choice(16, 32, 64)
        depth: int(1, 3)
        dropout: uniform(0.0, 0.5)
      train:
        optimizer.lr: loguniform(1e-4, 1e-2)   # an argument of the optimizer call
        batch_size: choice(32, 64, 128)

The front end reads the block (every mistake located), then elaborates the model at the corners
of the architecture space (each parameter at its smallest and largest value, every combination),
so a shape error any trial could meet is reported by ``netc check``. No torch here.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from netc.diagnostics import Diagnostic, NetcError, Span, SpecError, did_you_mean, show

# One line per distribution: the schema's description, the docs and the hints all use it.
DISTRIBUTIONS: dict[str, str] = {
    "choice": "one of the listed values: choice(16, 32, 64), choice(adam, sgd), choice(true, false)",
    "int": "a whole number from low to high, both included: int(1, 4), int(16, 128, step=16), "
           "int(8, 256, log=true)",
    "uniform": "a number between low and high: uniform(0.0, 0.5)",
    "loguniform": "a positive number between low and high, drawn on a log scale: loguniform(1e-4, 1e-2)",
}
PRUNERS = ("median", "hyperband", "none")
SAMPLERS = ("tpe", "random")
MAX_CORNERS = 64  # architecture corners elaborated by `netc check`; beyond, the all-low/all-high ones and one-at-a-time
CALL_KEYS = ("optimizer", "schedule", "loss")  # train: keys holding a call, whose arguments a dimension may name


@dataclass(frozen=True)
class Dim:
    """One searched value: where it goes (``params.width``, ``train.optimizer.lr``), its distribution."""

    target: str
    kind: str  # a key of DISTRIBUTIONS
    span: Span  # the distribution's text
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def name(self) -> str:
        """The name trials and tables show: ``width`` for a parameter, ``train.optimizer.lr`` otherwise."""
        return self.target.removeprefix("params.")

    @property
    def is_param(self) -> bool:
        return self.target.startswith("params.")

    def corners(self) -> tuple[Any, ...]:
        """The extreme values: low and high, or (for choices) the smallest and largest number, or every choice."""
        if self.kind != "choice":
            return tuple(dict.fromkeys((self.low, self.high)))
        if all(isinstance(c, int | float) and not isinstance(c, bool) for c in self.choices):
            return tuple(dict.fromkeys((min(self.choices), max(self.choices))))
        return self.choices

    def describe(self) -> str:
        """The distribution as the spec writes it."""
        if self.kind == "choice":
            return f"choice({', '.join(show(c) for c in self.choices)})"
        extra = (f", step={show(self.step)}" if self.step is not None else "") + (", log=true" if self.log
                                                                                  and self.kind == "int" else "")
        return f"{self.kind}({show(self.low)}, {show(self.high)}{extra})"


@dataclass(frozen=True)
class Space:
    """A spec's ``tune:`` block: the dimensions and how to search them."""

    dims: tuple[Dim, ...]
    span: Span  # the tune: key
    trials: int | None = None  # default for --trials
    pruner: str = "median"
    sampler: str = "tpe"
    seed: int = 0

    def defaults(self, spec: Any) -> dict[str, Any]:
        """The spec's own values of the searched dimensions, where they lie in the space (the hand-set trial)."""
        from netc.compiler.train.config import TrainConfig
        from netc.dsl.chain import call_literal, parse_call

        cfg = TrainConfig.from_dict(spec.train or {}).to_dict()
        out: dict[str, Any] = {}
        for d in self.dims:
            parts = d.target.split(".")
            try:
                if d.is_param:
                    value = spec.params[d.name]
                elif len(parts) == 3 and parts[1] in CALL_KEYS:
                    from netc.compiler.train.objectives import (
                        LOSSES,
                        OPTIMIZERS,
                        SCHEDULES,
                    )

                    table = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "loss": LOSSES}[parts[1]]
                    name, args, kwargs = call_literal(parse_call(cfg[parts[1]]))
                    entry = table[name]
                    value = {**{k: p.default for k, p in entry.params.items()},
                             **dict(zip(entry.params, args)), **kwargs}[parts[2]]
                else:
                    value = cfg
                    for p in parts[1:]:
                        value = value[p]
            except (KeyError, TypeError, NetcError):
                continue
            inside = (value in d.choices if d.kind == "choice" else
                      _number(value) and d.low <= value <= d.high)
            if inside:
                out[d.name] = value
        return out

    def split(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``{dim name: value}`` as (``params:`` overrides, ``{train key path: value}``)."""
        params = {d.name: values[d.name] for d in self.dims if d.is_param}
        train = {d.target.removeprefix("train."): values[d.name] for d in self.dims if not d.is_param}
        return params, train


# ---------------------------------------------------------------- reading the tune: block

def read_space(spec: Any) -> Space | None:
    """The ``tune:`` block of a parsed spec (None without one); every mistake located, reported at once."""
    from netc.dsl.yamlload import YMap, YScalar, YSeq, to_python

    root = spec.root
    node = root.get("tune") if isinstance(root, YMap) else None
    if node is None:
        return None
    key_span = root.key_node("tune").span
    errors: list[Diagnostic] = []
    dims: list[Dim] = []
    if not isinstance(node, YMap):  # the schema refuses it first; kept for callers without the schema
        raise SpecError("tune: is a mapping with params: and/or train:", node.span, kind="schema")
    for section in ("params", "train"):
        sec = node.get(section)
        if not isinstance(sec, YMap):
            continue
        for k, v in sec.items:
            try:
                dim = _dim(f"{section}.{k.value}", v, YScalar, YSeq, to_python)
                _check_target(dim, spec, k.span)
                dims.append(dim)
            except NetcError as e:
                errors.extend(e.diagnostics)
    if not dims and not errors:
        errors.append(Diagnostic("schema", "tune: searches nothing", key_span,
                                 "add e.g. `params: {width: choice(16, 32, 64)}` or "
                                 "`train: {optimizer.lr: loguniform(1e-4, 1e-2)}` under tune:"))
    if errors:
        raise SpecError("tune", diagnostics=errors, source=spec.source)
    opts = to_python(node)
    return Space(tuple(dims), key_span, opts.get("trials"), opts.get("pruner", "median"),
                 opts.get("sampler", "tpe"), opts.get("seed", 0))


def _dim(target: str, v: Any, YScalar: type, YSeq: type, to_python: Callable) -> Dim:
    """One distribution: ``choice(...)``, ``int(lo, hi)``, ``uniform(lo, hi)``, ``loguniform(lo, hi)`` or a list."""
    from netc.dsl.chain import call_literal, parse_call

    span = v.span
    if isinstance(v, YSeq):  # [16, 32, 64] is choice(16, 32, 64)
        return _choice(target, tuple(to_python(v)), span)
    text = str(v.value) if isinstance(v, YScalar) else ""
    hint = "; ".join(f"{k}: {d.split(': ', 1)[1]}" for k, d in DISTRIBUTIONS.items())
    try:
        name, args, kwargs = call_literal(parse_call(text))
    except NetcError:
        raise SpecError(f"tune.{target}: expected a distribution, got {text!r}", span, hint, kind="syntax") from None
    if name not in DISTRIBUTIONS:
        raise SpecError(f"tune.{target}: unknown distribution '{name}'", span,
                        did_you_mean(name, list(DISTRIBUTIONS)) or hint, kind="name")
    if name == "choice":
        if kwargs:
            raise SpecError(f"tune.{target}: choice takes values only, got {', '.join(kwargs)}=", span,
                            DISTRIBUTIONS["choice"], kind="arg")
        return _choice(target, tuple(args), span)
    allowed = {"int": ("step", "log"), "uniform": ("step",), "loguniform": ()}[name]
    for k in kwargs:
        if k not in allowed:
            raise SpecError(f"tune.{target}: {name} has no argument '{k}'", span, DISTRIBUTIONS[name], kind="arg")
    if len(args) != 2 or not all(_number(a) for a in args):
        raise SpecError(f"tune.{target}: {name} takes two numbers, low and high, got {text!r}", span,
                        DISTRIBUTIONS[name], kind="arg")
    low, high = args
    step, log = kwargs.get("step"), kwargs.get("log", False)
    if name == "int" and not all(isinstance(a, int) for a in (low, high)):
        raise SpecError(f"tune.{target}: int takes whole numbers, got {text!r}", span,
                        "use uniform(low, high) for fractions", kind="arg")
    if low > high or (name != "int" and low == high):
        raise SpecError(f"tune.{target}: low must be below high, got {show(low)} and {show(high)}", span,
                        DISTRIBUTIONS[name], kind="arg")
    if (name == "loguniform" or log is True) and low <= 0:
        raise SpecError(f"tune.{target}: a log scale needs low > 0, got {show(low)}", span,
                        "start the range above zero, e.g. loguniform(1e-5, 1e-2)", kind="arg")
    if not isinstance(log, bool):
        raise SpecError(f"tune.{target}: log is true or false, got {show(log)}", span, kind="arg")
    if step is not None and (not _number(step) or step <= 0 or (name == "int" and not isinstance(step, int))):
        raise SpecError(f"tune.{target}: step must be a positive {'whole ' if name == 'int' else ''}number, "
                        f"got {show(step)}", span, kind="arg")
    if step is not None and log:
        raise SpecError(f"tune.{target}: step and log=true cannot be combined", span, kind="arg")
    return Dim(target, name, span, low, high, step, bool(log))


def _choice(target: str, values: tuple[Any, ...], span: Span) -> Dim:
    if not values:
        raise SpecError(f"tune.{target}: choice needs at least one value", span, DISTRIBUTIONS["choice"], kind="arg")
    if any(isinstance(c, list | dict) for c in values):
        raise SpecError(f"tune.{target}: choices are single values (numbers, words, strings)", span,
                        DISTRIBUTIONS["choice"], kind="arg")
    if len(set(map(repr, values))) != len(values):
        raise SpecError(f"tune.{target}: a value is listed twice", span, kind="arg")
    return Dim(target, "choice", span, choices=values)


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_target(dim: Dim, spec: Any, key_span: Span) -> None:
    """The dimension names an existing parameter or train: key, with values of its type."""
    if dim.is_param:
        name = dim.name
        if name not in spec.params:
            raise SpecError(f"tune.params.{name}: this spec has no parameter '{name}'", key_span,
                            did_you_mean(name, list(spec.params)) or
                            f"declare it with a default in params: (e.g. params: {{{name}: ...}}) and use it in "
                            f"the model", kind="name")
        default = spec.params[name]
        if isinstance(default, int) and not isinstance(default, bool) and dim.kind in ("uniform", "loguniform"):
            raise SpecError(f"tune.params.{name}: {dim.kind}(...) draws fractions, but {name} is a whole number "
                            f"(default {show(default)})", dim.span,
                            f"write int({show(dim.low)}, {show(dim.high)}) or a choice of whole numbers", kind="arg")
        values = dim.choices if dim.kind == "choice" else (dim.low, dim.high)
        for v in values:
            ok = (isinstance(v, bool) if isinstance(default, bool) else
                  isinstance(v, int) and not isinstance(v, bool) if isinstance(default, int) else
                  _number(v) if isinstance(default, float) else isinstance(v, str))
            if not ok:
                raise SpecError(f"tune.params.{name}: {show(v)} does not fit the parameter, whose default "
                                f"is {show(default)} ({type(default).__name__})", dim.span,
                                "an integer parameter takes int(...) or a choice of whole numbers" if
                                isinstance(default, int) and not isinstance(default, bool) else None, kind="arg")
        return
    parts = dim.target.split(".")[1:]
    _train_field(parts, key_span, dim.target)


def _train_field(parts: list[str], span: Span | None, target: str) -> tuple[Any, bool]:
    """(the type hint of train key ``parts``, whether the last part is an argument of a call key)."""
    from netc.compiler.train.config import TrainConfig

    if len(parts) == 2 and parts[0] in CALL_KEYS:
        return None, True
    cls: Any = TrainConfig
    for i, key in enumerate(parts):
        known = {f.name: f for f in fields(cls)}
        if key not in known:
            where = "train." + ".".join(parts[:i]) if i else "train"
            hint = did_you_mean(key, list(known))
            raise SpecError(f"tune.{target}: {where} has no key '{key}'", span,
                            f"{hint + ' ' if hint else ''}known keys: {', '.join(sorted(known))}", kind="name")
        hint_t, inner = _hint(cls, key)
        if i == len(parts) - 1:
            return hint_t, False
        if not dataclasses.is_dataclass(inner):
            break
        cls = inner
    raise SpecError(f"tune.{target}: {'.'.join(['train', *parts])} names no setting", span,
                    "name a train: key (batch_size, epochs, early_stopping.patience) or an argument of the "
                    "optimizer, schedule or loss call (optimizer.lr)", kind="name")


def _hint(cls: Any, key: str) -> tuple[Any, Any]:
    """(the type hint of field ``key`` of dataclass ``cls``, that hint without ``| None``)."""
    hint_t = typing.get_type_hints(cls)[key]
    return hint_t, next((a for a in typing.get_args(hint_t) if a is not type(None)), hint_t)


# ---------------------------------------------------------------- applying values

def train_with(train: Mapping[str, Any] | None, values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the spec's ``train:`` mapping with ``{key path: value}`` set (``optimizer.lr`` edits the call)."""
    import copy

    from netc.compiler.train.config import TrainConfig

    out = copy.deepcopy(dict(train or {}))
    for path, value in values.items():
        parts = path.split(".")
        if len(parts) == 2 and parts[0] in CALL_KEYS:
            default = {f.name: f.default for f in fields(TrainConfig)}[parts[0]]
            out[parts[0]] = with_argument(out.get(parts[0], default), parts[0], parts[1], value)
            continue
        here, cls = out, TrainConfig
        for key in parts[:-1]:
            _, inner = _hint(cls, key)
            cur = here.get(key)
            if not isinstance(cur, dict):  # a shorthand (data: digits, early_stopping: true) or absent
                short = inner.shorthand(cur) if cur is not None and hasattr(inner, "shorthand") else None
                cur = {k: v for k, v in dataclasses.asdict(short).items() if v is not None} if short else {}
                here[key] = cur
            here, cls = cur, inner
        here[parts[-1]] = value
    return out


def with_argument(call: str | None, key: str, arg: str, value: Any) -> str:
    """``adam(lr=1e-3)`` with ``lr`` set to ``value``: the call ``train.<key>`` holds, one argument changed."""
    from netc.compiler.train.objectives import LOSSES, OPTIMIZERS, SCHEDULES
    from netc.dsl.chain import call_literal, parse_call

    if call is None:
        raise SpecError(f"tune.train.{key}.{arg}: the spec sets no {key} to take the argument", None,
                        f"set train.{key} (e.g. {key}: ...) first", kind="name")
    name, args, kwargs = call_literal(parse_call(call))
    table = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "loss": LOSSES}[key]
    entry = table.get(name) or table.get(name.lower())
    named = dict(zip(list(entry.params) if entry is not None else [], args))
    named.update(kwargs)
    named[arg] = value
    return f"{name}({', '.join(f'{k}={_word(v)}' for k, v in named.items())})"


def _word(v: Any) -> str:
    """A value as it reads back from a call: floats exactly (repr), strings as words or quoted."""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str) and not v.isidentifier():
        return repr(v)
    return show(v)


def plain_spec(spec: Any, params: Mapping[str, Any], train: Mapping[str, Any] | None, dest_dir: str | os.PathLike,
               header: list[str] = ()) -> str:  # type: ignore[assignment]
    """The spec with ``params`` and ``train`` filled in and no ``tune:`` block, to be saved in ``dest_dir``.

    A plain spec: ``netc train`` runs it unchanged (imports are rewritten relative to ``dest_dir``).
    ``header`` lines become comments at the top.
    """
    from pathlib import Path

    import yaml

    from netc.dsl.yamlload import to_python

    doc = to_python(spec.root)
    doc.pop("tune", None)
    if params:
        doc["params"] = {**(doc.get("params") or {}), **params}
    if train is not None:
        doc["train"] = dict(train)
    if isinstance(doc.get("imports"), dict) and spec.file not in ("<string>", "<stdin>"):
        base, dest = Path(spec.file).resolve().parent, Path(dest_dir).resolve()
        doc["imports"] = {k: os.path.relpath((base / v).resolve(), dest) for k, v in doc["imports"].items()}
    class Dumper(yaml.SafeDumper):  # mappings in block style, short lists inline ([1, 8, 8])
        pass

    def seq(dumper: yaml.SafeDumper, data: list) -> Any:
        flat = all(not isinstance(x, list | dict) for x in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)

    Dumper.add_representer(list, seq)
    body = yaml.dump(doc, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=1 << 20,
                     default_flow_style=False)
    return "".join(f"# {line}\n" for line in header) + body


# ---------------------------------------------------------------- corners

def check_space(spec: Any, space: Space, elaborate: Callable[[Any], Any]) -> None:
    """Elaborate the model at the corners of the architecture space and build the train config at every
    extreme train value; the first failure of each kind is a located error on the tune: line responsible.

    ``elaborate`` turns a spec (its ``params`` replaced) into a program, raising SpecError.
    """
    from netc.compiler.train.config import TrainConfig

    errors: list[Diagnostic] = []
    arch = [d for d in space.dims if d.is_param]
    for corner in _corners(arch):
        try:
            elaborate(replace(spec, params={**spec.params, **corner}))
        except NetcError as e:
            def fails_alone(d: Dim, c: dict[str, Any] = corner) -> bool:  # this value alone breaks the model
                try:
                    elaborate(replace(spec, params={**spec.params, d.name: c[d.name]}))
                except NetcError:
                    return True
                return False

            moved = [d for d in arch if corner[d.name] != spec.params.get(d.name)] or arch
            errors.append(_corner_error(e, arch, corner, next((d for d in moved if fails_alone(d)), moved[0])))
            break
    for d in space.dims:
        if d.is_param:
            continue
        for v in d.corners():
            try:
                TrainConfig.from_dict(train_with(spec.train, {d.target.removeprefix("train."): v}))
            except NetcError as e:
                inner = e.diagnostics[0]
                errors.append(Diagnostic("schema", f"tune.{d.target}: with {show(v)}, {inner.message}", d.span,
                                         inner.hint))
                break
    if errors:
        raise SpecError("tune", diagnostics=errors, source=spec.source)


def _corners(arch: list[Dim]) -> list[dict[str, Any]]:
    """Every combination of extremes when there are at most MAX_CORNERS, else all-low, all-high and one at a time."""
    options = [d.corners() for d in arch]
    total = 1
    for o in options:
        total *= len(o)
    if total <= MAX_CORNERS:
        return [dict(zip((d.name for d in arch), combo)) for combo in itertools.product(*options)]
    low = {d.name: o[0] for d, o in zip(arch, options)}
    high = {d.name: o[-1] for d, o in zip(arch, options)}
    out = [low, high]
    for d, o in zip(arch, options):
        out.extend({**low, d.name: v} for v in o[1:])
        out.extend({**high, d.name: v} for v in o[:-1])
    return out


def _corner_error(e: NetcError, arch: list[Dim], corner: dict[str, Any], culprit: Dim) -> Diagnostic:
    """The first diagnostic of a failed corner, located on the tune: line of the parameter that made it fail."""
    inner = e.diagnostics[0]
    at = f"{os.path.basename(inner.span.file)}:{inner.span.line}: " if inner.span is not None else ""
    values = ", ".join(f"{d.name}={show(corner[d.name])}" for d in arch)
    return Diagnostic(inner.kind, f"the search space fails at its corner {values}: {at}{inner.message}",
                      culprit.span, f"narrow the range of {culprit.name}, or change the "
                                     f"model so that every value fits" + (f" ({inner.hint})" if inner.hint else ""))


# ---------------------------------------------------------------- JSON Schema

def json_schema() -> dict[str, Any]:
    """The ``tune:`` block's schema (embedded in the spec schema)."""
    dist = {"description": "a distribution: " + "; ".join(DISTRIBUTIONS.values()),
            "oneOf": [{"type": "string", "pattern": r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*\("},  # names: did-you-mean
                      {"type": "array", "minItems": 1, "items": {"type": ["integer", "number", "boolean", "string"]}}]}
    return {
        "type": "object", "additionalProperties": False,
        "description": "the search space of netc tune: distributions over params: and train: keys",
        "properties": {
            "params": {"type": "object", "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                       "additionalProperties": dist,
                       "description": "spec parameters to search: `width: choice(16, 32, 64)`"},
            "train": {"type": "object", "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"},
                      "additionalProperties": dist,
                      "description": "train: keys to search: `batch_size: choice(32, 64)`, or an argument of the "
                                     "optimizer/schedule/loss call: `optimizer.lr: loguniform(1e-4, 1e-2)`"},
            "trials": {"type": "integer", "minimum": 1, "description": "trials to run (default for --trials)"},
            "pruner": {"enum": list(PRUNERS), "default": "median",
                       "description": "stop unpromising trials early from their per-epoch values: median (below "
                                      "the median of earlier trials at the same epoch), hyperband, or none"},
            "sampler": {"enum": list(SAMPLERS), "default": "tpe",
                        "description": "how trials choose values: tpe (Bayesian, learns from earlier trials) or random"},
            "seed": {"type": "integer", "default": 0, "description": "the sampler's seed"},
        },
    }
