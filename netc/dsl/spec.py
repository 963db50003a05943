"""Read a spec document: YAML → schema validation → a Spec of chains with spans.

The structure is checked by the JSON Schema first (every violation reported,
located); after that this module can trust types and only parses the chain
strings and block headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from netc.diagnostics import (
    REQUIRED,
    Diagnostic,
    NetcError,
    ParamError,
    Span,
    SpecError,
    did_you_mean,
    remember_source,
    show,
)
from netc.dsl import ast
from netc.dsl.chain import parse_chain
from netc.dsl.files import read_spec_bytes
from netc.dsl.yamlload import YMap, YNode, YScalar, YSeq, load_yaml, node_at, to_python

DEFAULT_INPUT = "x"


@dataclass(frozen=True)
class InputDecl:
    """A declared model input: per-sample shape and dtype."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str
    span: Span


@dataclass(frozen=True)
class Entry:
    """A named node (``stem: Conv2D(...) → ReLU``) or the whole chain of a chain-only model."""

    name: str | None
    chain: ast.Chain
    span: Span


@dataclass(frozen=True)
class Param:
    """A block parameter, possibly with a default."""

    name: str
    default: object  # REQUIRED when the call must give it
    span: Span

    def signature(self) -> str:
        """``name=default``, or ``name`` for a required parameter."""
        return self.name if self.default is REQUIRED else f"{self.name}={show(self.default)}"


@dataclass(frozen=True)
class BlockDef:
    """A parameterised user block."""

    name: str
    params: tuple[Param, ...]
    entries: tuple[Entry, ...]
    span: Span
    file: str

    def signature(self, name: str | None = None) -> str:
        """``Res(c, stride=1)``, called ``name`` if given (``lib.Res`` for an imported block)."""
        name = name or self.name
        return f"{name}({', '.join(p.signature() for p in self.params)})" if self.params else name


@dataclass(frozen=True)
class ModelDef:
    """One model: its inputs and its entries."""

    name: str
    inputs: tuple[InputDecl, ...]
    entries: tuple[Entry, ...]
    span: Span


@dataclass
class Spec:
    """A parsed spec file."""

    file: str
    source: str
    name: str
    models: list[ModelDef]
    blocks: dict[str, BlockDef]
    train: dict | None
    train_node: YNode | None
    root: YMap
    imports: dict[str, Spec] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)  # spec-wide parameters (after overrides)
    import_count: int = 0  # imports in its whole import tree (a file imported twice counts twice)
    import_depth: int = 0  # the longest chain of imports below it


def _scalar_mapper(s: YScalar):
    def to_span(start: int, end: int) -> Span:
        l1, c1 = s.pos(start)
        l2, c2 = s.pos(max(start, end - 1))
        return Span(s.span.file, l1, c1, l2, c2 + 1)
    return to_span


def _schema_errors(root: YNode, data: object, file: str) -> list[Diagnostic]:
    import jsonschema

    from netc.dsl.schema import load_schema

    schema = load_schema()
    validator = jsonschema.Draft7Validator(schema)
    diags: list[Diagnostic] = []
    seen: set[tuple] = set()
    for err in sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))):
        for d in _explain(err, root, file, schema):
            key = (d.span.line if d.span else 0, d.span.col if d.span else 0, d.message)
            if key not in seen:
                seen.add(key)
                diags.append(d)
    return diags


def _leaf_errors(err):
    """For oneOf/anyOf failures, the errors of the branch the user evidently meant.

    Branches whose type does not even match the instance are dropped (a list is not "the object
    form"); among the rest, the one whose errors reach deepest into the document wins.
    """
    import jsonschema

    if err.validator not in ("oneOf", "anyOf") or not err.context:
        return [err]
    branches: dict[int, list] = {}
    for e in err.context:
        branches.setdefault(e.relative_schema_path[0], []).append(e)

    def mismatched(errs) -> bool:
        return any(e.validator == "type" and not e.relative_path for e in errs)

    good = [errs for errs in branches.values() if not mismatched(errs)]
    if not good:
        best = jsonschema.exceptions.best_match(err.context)
        return [best] if best is not None else [err]
    def reach(e) -> int:  # how deep into the document this error (or a nested branch's) goes
        return max([len(e.absolute_path), *(reach(c) for c in e.context or ())])

    errs = max(good, key=lambda es: (max(reach(e) for e in es), -sum(e.validator == "type" for e in es)))
    deepest = max(reach(e) for e in errs)
    out = []
    for e in errs:
        if reach(e) == deepest:
            out.extend(_leaf_errors(e))
    return out[:3]


def _explain(err, root: YNode, file: str, schema: dict) -> list[Diagnostic]:
    path = list(err.absolute_path)
    node = node_at(root, path) if root is not None else None
    span = node.span if node is not None else Span(file, 1, 1, 1, 2)
    where = "/".join(str(p) for p in path) or "the document"
    if err.validator == "additionalProperties" and isinstance(node, YMap):
        allowed = list(err.schema.get("properties", {}))
        out = []
        for k, _ in node.items:
            if k.value not in allowed and str(k.value) in str(err.message):
                hint = did_you_mean(str(k.value), allowed) or f"allowed keys: {', '.join(allowed)}"
                out.append(Diagnostic("schema", f"unknown key '{k.value}' in {where}", k.span, hint))
        if out:
            return out
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return [Diagnostic("schema", f"missing key '{missing}' in {where}",
                           Span(span.file, span.line, span.col, span.line, span.col + 1),
                           f"add `{missing}:`")]
    if err.validator == "oneOf" and not path and err.validator_value and "models" in str(err.validator_value):
        both = isinstance(err.instance, dict) and "model" in err.instance and "models" in err.instance
        msg = "a spec has `model:` or `models:`, not both" if both else \
            "a spec needs `model:` (or `models:` for several models)"
        return [Diagnostic("schema", msg, Span(file, 1, 1, 1, 2),
                           "write `model: Flatten → Dense(10)`, or a `models:` mapping for a GAN's two networks")]
    if err.validator == "propertyNames" or "propertyNames" in err.schema_path:
        bad = err.instance
        if isinstance(node, YMap):
            for k, _ in node.items:
                if k.value == bad:
                    span = k.span
        hint = ("block names start with a capital letter, e.g. Res(c)" if path and path[-1] == "blocks"
                else "names are identifiers: letters, digits, _")
        return [Diagnostic("schema", f"invalid name {bad!r} in {where}", span, hint)]
    desc0 = err.schema.get("description", "") if isinstance(err.schema, dict) else ""
    if err.validator == "oneOf" and desc0 and not isinstance(err.instance, dict | list):
        return [Diagnostic("schema", f"{where}: expected {desc0.split(': ')[0] if ': ' in desc0 else desc0}, "
                                     f"got {err.instance!r}"[:240], span, desc0[:200])]
    leaves = _leaf_errors(err)
    if leaves[0] is not err:
        return [d for leaf in leaves for d in _explain(leaf, root, file, schema)]
    desc = err.schema.get("description", "") if isinstance(err.schema, dict) else ""
    msg = err.message
    if err.validator == "type":
        msg = f"{where}: expected {err.validator_value}, got {type(err.instance).__name__} {err.instance!r}"[:200]
    elif err.validator == "const":
        msg = f"{where}: expected {err.validator_value!r}, got {err.instance!r}"
    elif err.validator == "enum":
        head = str(err.instance).split("(", 1)[0]  # `adma(lr=1e-3)`: compare the name
        return [Diagnostic("schema", f"{where}: {err.instance!r} is not one of {err.validator_value}", span,
                           did_you_mean(head, [str(v) for v in err.validator_value], cutoff=0.5))]
    else:
        msg = f"{where}: {msg}"[:240]
    return [Diagnostic("schema", msg, span, desc[:160] or None)]


def _chain_of(node: YNode, file: str) -> ast.Chain:
    """A chain from a string, or from a list of strings / single-key ``{Op: {args}}`` mappings."""
    if isinstance(node, YScalar):
        return parse_chain(str(node.value), _scalar_mapper(node))
    steps: list[ast.Step] = []
    assert isinstance(node, YSeq)
    for item in node.items:
        if isinstance(item, YScalar):
            steps.extend(parse_chain(str(item.value), _scalar_mapper(item)).steps)
        else:
            assert isinstance(item, YMap) and len(item.items) == 1
            key, val = item.items[0]
            kwargs: list[ast.KwArg] = []
            refs: list[ast.Expr] = []
            if isinstance(val, YMap):
                for k, v in val.items:
                    if k.value == "inputs" and isinstance(v, YSeq):
                        refs.extend(ast.Word(str(r.value), r.span) for r in v.items if isinstance(r, YScalar))
                        continue
                    kwargs.append(ast.KwArg(str(k.value), _yaml_expr(v), k.span))
            call = ast.Call(str(key.value), tuple(refs), tuple(kwargs), key.span, bare=False)
            steps.append(ast.Step(call, 1, item.span))
    return ast.Chain(tuple(steps), node.span)


def _yaml_expr(v: YNode) -> ast.Expr:
    if isinstance(v, YSeq):
        return ast.ListExpr(tuple(_yaml_expr(i) for i in v.items), v.span)
    assert isinstance(v, YScalar)
    if isinstance(v.value, bool) or v.value is None:
        return ast.Word(str(v.value).lower() if v.value is not None else "none", v.span)
    if isinstance(v.value, int | float):
        return ast.Num(v.value, v.span)
    if v.style is None:
        return ast.Word(str(v.value), v.span)
    return ast.Str(str(v.value), v.span)


def _entries(node: YNode, file: str, errors: list[Diagnostic]) -> tuple[Entry, ...]:
    out = []
    if isinstance(node, YMap):
        for k, v in node.items:
            try:
                out.append(Entry(str(k.value), _chain_of(v, file), k.span))
            except NetcError as e:
                errors.extend(e.diagnostics)
    else:
        try:
            out.append(Entry(None, _chain_of(node, file), node.span))
        except NetcError as e:
            errors.extend(e.diagnostics)
    return tuple(out)


def _inputs(node: YNode | None, errors: list[Diagnostic], fallback: Span,
            params: dict[str, object]) -> tuple[InputDecl, ...]:
    if node is None:
        return ()

    def tensor(name: str, n: YNode, span: Span) -> InputDecl:
        if isinstance(n, YMap):
            shape_node = n.get("shape")
            dtype = n.get("dtype")
            dt = str(dtype.value) if isinstance(dtype, YScalar) else "float32"
        else:
            shape_node, dt = n, "float32"
        dims = tuple(params.get(i.value, i.value) if isinstance(i.value, str) else i.value
                     for i in shape_node.items) if isinstance(shape_node, YSeq) else ()
        for d, i in zip(dims, shape_node.items if isinstance(shape_node, YSeq) else ()):
            if isinstance(d, bool) or not isinstance(d, int | str) or (isinstance(d, int) and d < 1):
                errors.append(Diagnostic("schema", f"input size must be a positive integer or a name, got {d!r}",
                                         i.span, "e.g. input: [1, 28, 28] or [T, 8]"))
        return InputDecl(name, dims, dt, span)

    if isinstance(node, YSeq) or (isinstance(node, YMap) and node.get("shape") is not None
                                  and isinstance(node.get("shape"), YSeq)):
        return (tensor(DEFAULT_INPUT, node, node.span),)
    assert isinstance(node, YMap)
    return tuple(tensor(str(k.value), v, k.span) for k, v in node.items)


def _block_header(key: YScalar) -> tuple[str, tuple[Param, ...]]:
    text = str(key.value)
    if "(" not in text:
        return text, ()
    chain = parse_chain(text, _scalar_mapper(key))
    call = chain.steps[0].call
    params: list[Param] = []
    for a in call.args:
        if not isinstance(a, ast.Word):
            raise SpecError(f"block parameters are names, got {text!r}", a.span,
                            "write a block header like Res(c, stride=1)", kind="syntax")
        params.append(Param(a.name, REQUIRED, a.span))
    from netc.dsl.chain import literal

    for kw in call.kwargs:
        params.append(Param(kw.name, literal(kw.value), kw.span))
    names = [p.name for p in params]
    for p in params:
        if names.count(p.name) > 1:
            raise SpecError(f"block parameter '{p.name}' is declared twice", p.span, kind="syntax")
    return call.name, tuple(params)


def read_spec(text: str | bytes, file: str = "<string>", _seen: tuple[str, ...] = (),
              overrides: dict[str, object] | None = None, _reads: list[int] | None = None) -> Spec:
    """Load, validate and parse a spec; raises SpecError carrying every independent diagnostic.

    ``overrides`` replace values of the spec's ``params:`` (``--param classes=100``).
    """
    source = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    remember_source(file, source.lstrip("\ufeff"))
    root = load_yaml(text, file)
    if not isinstance(root, YMap):
        span = root.span if root is not None else Span(file, 1, 1, 1, 2)
        raise SpecError("a spec is a YAML mapping with at least `netc: 1` and `model:`", span,
                        "start from examples/mnist_mlp.yaml", kind="schema", source=source)
    data = to_python(root)
    errors = _schema_errors(root, data, file)
    if errors:
        raise SpecError("schema", diagnostics=errors, source=source)
    fallback = root.span
    spec_params = to_python(root.get("params")) if root.get("params") is not None else {}
    for k, v in (overrides or {}).items():
        if k not in spec_params:
            errors.append(Diagnostic("cli", f"--param {k}: this spec has no parameter '{k}'",
                                     root.key_node("params").span if root.get("params") is not None else None,
                                     did_you_mean(k, spec_params) or
                                     f"parameters: {', '.join(spec_params) or 'none (add a params: mapping)'}"))
        elif type(v) is not type(spec_params[k]) and not (isinstance(v, int) and isinstance(spec_params[k], float)):
            given = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
            errors.append(Diagnostic("cli", f"--param {k}={given}: expected {type(spec_params[k]).__name__} like the "
                                            f"default {spec_params[k]!r}", root.get("params").get(k).span))
        else:
            spec_params[k] = v
    if errors:  # a bad --param is the command line's mistake: reported alone, exit 2 like a bad --set
        raise ParamError("params", diagnostics=errors, source=source)
    name_node = root.get("name")
    name = str(name_node.value) if isinstance(name_node, YScalar) else Path(file).stem.replace("-", "_")
    if not name.isidentifier():
        name = "model"
    blocks: dict[str, BlockDef] = {}
    bnode = root.get("blocks")
    if isinstance(bnode, YMap):
        for k, v in bnode.items:
            try:
                bname, params = _block_header(k)
            except NetcError as e:
                errors.extend(e.diagnostics)
                continue
            if bname in blocks:
                errors.append(Diagnostic("name", f"block '{bname}' is defined twice", k.span))
                continue
            blocks[bname] = BlockDef(bname, params, _entries(v, file, errors), k.span, file)
    models: list[ModelDef] = []
    if root.get("model") is not None:
        models.append(ModelDef(name, _inputs(root.get("input"), errors, fallback, spec_params),
                               _entries(root.get("model"), file, errors), root.key_node("model").span))
    mnode = root.get("models")
    if isinstance(mnode, YMap):
        for k, v in mnode.items:
            assert isinstance(v, YMap)
            models.append(ModelDef(str(k.value), _inputs(v.get("input"), errors, k.span, spec_params),
                                   _entries(v.get("model"), file, errors), k.span))
    for m in models:
        if not m.inputs:
            errors.append(Diagnostic("schema", f"model '{m.name}' declares no input", m.span,
                                     "add `input: [1, 28, 28]` (per-sample shape; the batch axis is implicit)"))
    imports: dict[str, Spec] = {}
    reads = _reads if _reads is not None else [0]  # imports in the whole tree so far: the work is bounded by it
    first, depth = reads[0], 0
    inode = root.get("imports")
    if isinstance(inode, YMap):
        for k, v in inode.items:
            if reads[0] >= MAX_IMPORTS:  # re-imports and failed imports count too, so no tree is exponential work
                errors.append(Diagnostic("resource", f"the spec imports more than {MAX_IMPORTS} files "
                                                     f"(counting the imports of imported files)", v.span,
                                         "import fewer files, or gather blocks into one library file"))
                break
            try:
                spec = _import(str(v.value), file, v.span, _seen + (file,), reads)
            except NetcError as e:
                known = set(errors)  # a library reached by several paths reports its errors once
                errors.extend(d for d in dict.fromkeys(e.diagnostics) if d not in known)
                continue
            imports[str(k.value)] = spec
            depth = max(depth, 1 + spec.import_depth)
    if errors:
        raise SpecError("spec", diagnostics=errors, source=source)
    train = to_python(root.get("train")) if root.get("train") is not None else None
    return Spec(file, source, name, models, blocks, train, root.get("train"), root, imports, spec_params,
                reads[0] - first, depth)


# Parsed imported specs by (path, mtime, size).
_IMPORTED: dict[tuple[str, int, int], Spec] = {}
MAX_IMPORTS = 256  # imports in a spec's whole import tree (each file is read once; re-imports are counted)
MAX_IMPORT_DEPTH = 16  # files in the longest chain of imports (a imports b imports c ...)


def _import(rel: str, file: str, span: Span, seen: tuple[str, ...], reads: list[int]) -> Spec:
    base = Path(file).parent if file not in ("<string>", "<stdin>") else Path.cwd()
    reads[0] += 1
    if len(seen) >= MAX_IMPORT_DEPTH:
        raise SpecError(f"cannot import {rel}: imports nest more than {MAX_IMPORT_DEPTH} files deep", span,
                        "import the library directly from the spec instead of through a chain of files",
                        kind="resource")
    if "\0" in rel:
        raise SpecError(f"cannot import {rel!r}: the path contains a NUL byte", span,
                        "file names cannot contain NUL", kind="import")
    try:
        path = (base / rel).resolve()
        is_file = path.is_file()
    except (OSError, RuntimeError, ValueError):  # a symlink loop (RuntimeError before Python 3.13), a bad name
        raise SpecError(f"cannot import {rel}: the path cannot be resolved (a symlink loop?)", span,
                        "point the import at a real file", kind="import") from None
    if str(path) in seen:
        raise SpecError(f"import cycle: {rel} imports this file again", span, kind="import")
    if not is_file and not path.exists():
        raise SpecError(f"cannot import {rel}: no such file ({base / rel})", span,
                        "paths are relative to the importing spec file", kind="import")
    try:
        st = path.stat()
    except OSError as e:
        raise SpecError(f"cannot read {rel}: {e.strerror}", span, kind="import") from None
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key in _IMPORTED:  # an editor re-checks often; imported files rarely change
        cached = _IMPORTED[key]
        reads[0] += cached.import_count  # as if read again: the same count, cold or cached
        if len(seen) + cached.import_depth >= MAX_IMPORT_DEPTH:  # read at a shallower depth before
            raise SpecError(f"cannot import {rel}: imports nest more than {MAX_IMPORT_DEPTH} files deep", span,
                            "import the library directly from the spec instead of through a chain of files",
                            kind="resource")
        return cached
    text = read_spec_bytes(path, span, label=rel, kind="import")  # regular files only, size-capped
    try:
        spec = read_spec(text, str(path), seen, _reads=reads)
        if len(_IMPORTED) > 256:
            _IMPORTED.clear()
        _IMPORTED[key] = spec
        return spec  # an imported spec uses its own parameter defaults
    except SpecError as e:
        # The imported file's own diagnostics, plus one located at the import line.
        lead = Diagnostic("import", f"imported spec {rel} has errors", span, None)
        raise SpecError("import", diagnostics=[lead, *e.diagnostics], source=None) from None
