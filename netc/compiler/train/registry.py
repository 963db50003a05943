"""Named factories with declared arguments, and the one resolver for call strings.

Every table of the training vocabulary (losses, optimizers, schedules, metrics,
data sources) maps a name to an entry that declares the keyword arguments it
accepts; the runner attaches the implementations (:func:`implement`). A call
string from the ``train:`` block such as ``adam(lr=1e-3)`` is parsed with the
chain grammar and checked against that declaration here, so a misspelt name or
argument gets a "did you mean" hint in exactly one place.

This module (like ``config.py``) imports neither torch nor numpy: ``netc check``
and the language server validate the ``train:`` block at editor speed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from netc.diagnostics import REQUIRED, Span, SpecError, UsageError, did_you_mean, show


@dataclass(frozen=True)
class Param:
    """One keyword argument of a factory: default and expected type."""

    default: object = REQUIRED  # REQUIRED, or the value used when the call omits it
    kind: type = float  # bool, int, float, str or list; an int is accepted where a float is expected
    doc: str = ""  # one line for generated docs
    optional: bool = False  # None is accepted (e.g. "use a value derived elsewhere")

    def convert(self, value: object) -> tuple[bool, object]:
        """(True, value converted to ``kind``) or (False, None) when the type is wrong."""
        if value is None:
            return self.optional, None
        if self.kind is bool:
            return isinstance(value, bool), value
        if isinstance(value, bool):
            return False, None
        if self.kind is float and isinstance(value, int | float):
            return True, float(value)
        if self.kind is list and isinstance(value, list):
            return True, list(value)
        return isinstance(value, self.kind), value


@dataclass(frozen=True)
class Entry:
    """A named factory: what the name means, the arguments it takes, how to build it."""

    name: str
    doc: str
    params: Mapping[str, Param] = field(default_factory=dict)
    build: Callable[..., object] | None = None  # called with the bound keyword arguments (and context)


E = TypeVar("E")


class Table(dict[str, E]):
    """The built-in entries of one vocabulary, plus those installed packages declare in an entry-point group.

    Iterating gives the built-in names only (the committed schema and the generated docs stay the
    same on every machine); looking a name up (``table[name]``, ``get``, ``in``) loads the group's
    plugins on a miss, as the op registry does for ``netc.ops``. A plugin's entry point names a
    module (or callable returning one) with an ``attr`` list of finished entries, implementation
    included: ``LOSSES`` for ``netc.losses``, ``METRICS`` for ``netc.metrics``.
    """

    def __init__(self, group: str, attr: str, entries: Mapping[str, E] = (), fallback: Table | None = None):
        super().__init__(entries)
        self.group, self.attr = group, attr
        self.fallback = fallback  # the declared table whose plugins an implemented copy shares
        self.plugins: dict[str, E] | None = None if fallback is None else fallback.plugins

    def load_plugins(self) -> dict[str, E]:
        """The entries of installed plugins (loaded once), by name."""
        if self.fallback is not None:
            return self.fallback.load_plugins()
        if self.plugins is None:
            from importlib.metadata import entry_points

            found: dict[str, E] = {}
            for ep in entry_points(group=self.group):
                try:
                    obj = ep.load()
                    entries = list(getattr(obj() if callable(obj) else obj, self.attr, []))
                except Exception as e:  # noqa: BLE001 - a broken installed package: say which, not a traceback
                    raise UsageError(f"the installed plugin {ep.value!r} ({self.group}) failed to load: "
                                     f"{type(e).__name__}: {e}",
                                     hint="fix or uninstall that package (pip uninstall ...)") from None
                for entry in entries:
                    name = getattr(entry, "name", None)
                    if not isinstance(name, str) or dict.__contains__(self, name) or name in found:
                        raise ValueError(f"plugin {ep.value!r} of {self.group}: entry {name!r} is declared twice "
                                         f"or has no name")
                    found[name] = entry
            self.plugins = found
        return self.plugins

    def __missing__(self, key: str) -> E:
        found = self.load_plugins()
        if key in found:
            return found[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or (isinstance(key, str) and key in self.load_plugins())

    def everything(self) -> dict[str, E]:
        """Built-in and plugin entries (for hints listing what a name could be)."""
        return {**self, **self.load_plugins()}


def implement(table: Mapping[str, E], attr: str, impls: Mapping[str, Callable[..., Any]]) -> dict[str, E]:
    """The declared ``table`` with each entry's ``attr`` set to its implementation (one per name, no more).

    Plugin entries of a :class:`Table` come implemented; the copy looks them up in the declared table.
    """
    if set(impls) != set(table):
        raise AssertionError(f"implementations {sorted(impls)} do not match the declared names {sorted(table)}")
    done = {name: dataclasses.replace(entry, **{attr: impls[name]}) for name, entry in table.items()}  # type: ignore[type-var]
    return Table(table.group, table.attr, done, fallback=table) if isinstance(table, Table) else done


def type_name(kind: type) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list"}.get(kind, kind.__name__)


def one_of(choices) -> str:
    return ", ".join(sorted(choices))


@dataclass(frozen=True)
class Bound:
    """A resolved call: the table entry and every argument with defaults filled in."""

    entry: Entry
    kwargs: dict[str, object]

    @property
    def name(self) -> str:
        return self.entry.name

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.entry.name}({args})"


def resolve(text: str, table: Mapping[str, Entry], what: str, *, where: str,
            span: Span | None = None) -> Bound:
    """Parse ``name(args)`` and bind it against ``table``; errors name ``where`` (e.g. train.loss)."""
    from netc.dsl.chain import call_literal, parse_call

    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"{where} must be a call string like name(arg=value), got {text!r}", span,
                        f"choose a {what} from: {one_of(table)}", kind="schema")
    try:
        name, args, kwargs = call_literal(parse_call(text.strip()))
    except SpecError as e:
        raise SpecError(f"{where}: cannot parse {text!r}: {e.diagnostics[0].message}", span,
                        e.hint or f"write it like {next(iter(table))}(arg=value)", kind="syntax") from None
    entry = table.get(name) or table.get(name.lower())
    if entry is None:
        known = table.everything() if isinstance(table, Table) else table
        hint = did_you_mean(name, list(known))
        hint = f"{hint} " if hint else ""
        raise SpecError(f"{where}: unknown {what} '{name}'", span,
                        f"{hint}known {what}{'es' if what.endswith('s') else 's'}: {one_of(known)}", kind="name")
    params = list(entry.params)
    if len(args) > len(params):
        raise SpecError(f"{where}: {entry.name} takes at most {len(params)} positional argument(s), "
                        f"got {len(args)}", span, _signature_hint(entry), kind="arg")
    given: dict[str, object] = dict(zip(params, args))
    for key, value in kwargs.items():
        if key not in entry.params:
            hint = did_you_mean(key, params)
            raise SpecError(f"{where}: {entry.name} has no argument '{key}'", span,
                            f"{hint + ' ' if hint else ''}{_signature_hint(entry)}", kind="arg")
        if key in given:
            raise SpecError(f"{where}: {entry.name} got '{key}' twice", span, _signature_hint(entry),
                            kind="arg")
        given[key] = value
    bound: dict[str, object] = {}
    for key, p in entry.params.items():
        if key not in given:
            if p.default is REQUIRED:
                raise SpecError(f"{where}: {entry.name} needs the argument '{key}'", span,
                                f"e.g. {entry.name}({key}=...); {_signature_hint(entry)}", kind="arg")
            bound[key] = p.default
            continue
        ok, value = p.convert(given[key])
        if not ok:
            raise SpecError(f"{where}: {entry.name}({key}=...) expects {type_name(p.kind)}, "
                            f"got {given[key]!r}", span, _signature_hint(entry), kind="arg")
        bound[key] = value
    return Bound(entry, bound)


def _signature_hint(entry: Entry) -> str:
    if not entry.params:
        return f"{entry.name} takes no arguments"
    parts = []
    for k, p in entry.params.items():
        parts.append(k if p.default is REQUIRED else f"{k}={show(p.default)}")
    return f"signature: {entry.name}({', '.join(parts)})"


def _example_call(table: Mapping[str, Entry]) -> str:
    e = next((e for e in table.values() if e.params), next(iter(table.values())))
    k, p = next(iter(e.params.items()), ("", None))
    return f"{e.name}({k}={p.default!r})" if p is not None else f"{e.name}()"


def call_schema(table: Mapping[str, Entry], description: str, nullable: bool = False) -> dict:
    """JSON Schema for a call-string field: a bare name from the table, or name(...)."""
    names = sorted(table)
    alts: list[dict] = [
        {"type": "string", "enum": names, "description": "a name with default arguments"},
        {"type": "string", "pattern": r"^\s*(" + "|".join(names) + r")\s*\(.*\)\s*$",
         "description": "a call with arguments, e.g. " + _example_call(table)},
    ]
    if isinstance(table, Table):  # names from installed plugins: checked (with a hint) by resolve
        alts.append(PLUGIN_NAME | {"description": f"from an installed package ({table.group} entry points)"})
    if nullable:
        alts.append({"type": "null", "description": "not used"})
    return {"description": description, "anyOf": alts}


# a name (or call) the committed schema cannot list: it comes from an installed package
PLUGIN_NAME = {"type": "string", "pattern": r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*(\(.*\))?\s*$"}
