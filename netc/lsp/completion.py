"""``textDocument/completion``: op and block names where a step goes, argument names inside a call.

Read from the text (a half-typed chain does not parse): after ``→``/``->`` or at the
start of a chain value, every op, every block of the document and of its imports,
and (at the start) the names a chain may begin from; inside ``Conv2D(32, 3, |`` the
arguments not given yet, inserted as ``name=``; after ``padding=`` its choices.
Elsewhere, YAML keys and plain values come from the schema (:mod:`netc.lsp.keys`).
"""

from __future__ import annotations

from lsprotocol import types

from netc.compiler.registry import REGISTRY, Arg, OpDef
from netc.diagnostics import REQUIRED, show
from netc.dsl.spec import BlockDef
from netc.dsl.yamlload import YMap, load_yaml
from netc.lsp.context import (
    CallContext,
    call_context,
    chain_slot,
    in_chain_value,
    key_path,
    word_at,
)
from netc.lsp.documents import Document
from netc.lsp.hover import arg_markdown, op_markdown
from netc.lsp.keys import key_completion
from netc.lsp.symbols import block_namespace, scope_at

__all__ = ["TRIGGERS", "completion"]

TRIGGERS = ["(", ",", "=", ">", "→", " "]
K = types.CompletionItemKind


def completion(doc: Document, line: int, character: int) -> types.CompletionList | None:
    """Completion items at LSP position (line, character) of ``doc``, or None where nothing fits."""
    idx = doc.index
    off = idx.offset(line, character)
    text = idx.line(line)
    col = off - idx.offset(line, 0)
    ws, _, _ = word_at(text, col)
    start = idx.position(off - (col - ws))
    rng = types.Range(types.Position(*start), types.Position(*idx.position(off)))

    ctx = call_context(text, col)
    lines = [idx.line(i) for i in range(line + 1)]
    in_chain = in_chain_value(key_path(lines, line, col))
    items: list[types.CompletionItem] | None = None
    if ctx is not None:
        items = _in_call(doc, ctx, rng, line, col)
    else:
        slot = chain_slot(text, col)
        if slot is not None and in_chain:
            items = _steps(doc, rng, slot == "start", line, col)
    if not items and not in_chain and ctx is None:
        items = key_completion(doc, line, character)  # a YAML key or a plain value: from the schema
    if not items:
        return None
    return types.CompletionList(is_incomplete=False, items=items)


# ---------------------------------------------------------------------------- steps

def _steps(doc: Document, rng: types.Range, at_start: bool, line: int, col: int) -> list[types.CompletionItem]:
    items = [_op_item(op, op.name, rng) for op in REGISTRY.all()]
    for alias, target in sorted(REGISTRY.aliases.items()):
        op = REGISTRY.get(target)
        if op is not None:
            items.append(_op_item(op, alias, rng, f"alias of {op.name}"))
    blocks = {name: (b.signature(name), f"`{b.file.rsplit('/', 1)[-1]}` line {b.span.line}")
              for name, b in _blocks(doc).items()}
    for name, header in _yaml_blocks(doc.text).items():  # the spec may not parse yet; its YAML may
        blocks.setdefault(name, (header, "this file"))
    for name, (header, where) in sorted(blocks.items()):
        items.append(types.CompletionItem(
            label=name, kind=K.Module, detail=f"block {header}", documentation=_md(f"block defined in {where}"),
            text_edit=types.TextEdit(rng, name), sort_text=f"0{name}"))
    if at_start:
        for name in _names_in_scope(doc, line, col):
            items.append(types.CompletionItem(label=name, kind=K.Variable, detail="start the chain from this tensor",
                                              text_edit=types.TextEdit(rng, name), sort_text=f"2{name}"))
    return items


def _op_item(op: OpDef, label: str, rng: types.Range, note: str | None = None) -> types.CompletionItem:
    return types.CompletionItem(label=label, kind=K.Function, detail=note or op.signature(),
                                documentation=_md(op_markdown(op)), text_edit=types.TextEdit(rng, label),
                                sort_text=f"1{label}")


def _blocks(doc: Document) -> dict[str, BlockDef]:
    out: dict[str, BlockDef] = {}
    for a, _ in reversed(doc.analyses()):  # the latest analysis wins
        out.update(block_namespace(a.spec))
    return out


def _yaml_blocks(text: str) -> dict[str, str]:
    """Block name → header, read from the YAML alone (when the chains do not parse)."""
    try:
        root = load_yaml(text, "<completion>")
    except Exception:
        return {}
    blocks = root.get("blocks") if isinstance(root, YMap) else None
    if not isinstance(blocks, YMap):
        return {}
    out = {}
    for k, _ in blocks.items:
        header = str(k.value)
        name = header.split("(", 1)[0].strip()
        if name.isidentifier():
            out[name] = header
    return out


def _names_in_scope(doc: Document, line: int, col: int) -> list[str]:
    nl, nc = doc.index.to_netc(line, col)
    for a, lm in doc.analyses():
        old = lm.to_old(nl)
        if old is None:
            continue
        scope = scope_at(a.spec, old, nc)
        names = [e.name for e in scope.entries if e.name]
        if scope.block is not None:
            names.append("in")
        elif scope.model is not None:
            names += [i.name for i in scope.model.inputs]
        if names:
            return list(dict.fromkeys(names))
    return []


# ---------------------------------------------------------------------------- arguments

def _in_call(doc: Document, ctx: CallContext, rng: types.Range, line: int, col: int) -> list[types.CompletionItem]:
    if ctx.nested:
        return []
    op = REGISTRY.get(ctx.callee)
    if op is not None:
        if ctx.kwarg is not None:
            a = op.arg(ctx.kwarg)
            return _values(a, rng, doc, line, col) if a is not None else []
        items: list[types.CompletionItem] = []
        if op.arity == "many":  # Add(body, in): the tensors to join come first
            items += [types.CompletionItem(label=n, kind=K.Variable, detail="tensor to join",
                                           text_edit=types.TextEdit(rng, n), sort_text=f"0{n}")
                      for n in _names_in_scope(doc, line, col)]
            rest = list(op.args)
        else:
            rest = list(op.args[ctx.positional:])
        for i, a in enumerate(rest):
            if a.name in ctx.given:
                continue
            items.append(types.CompletionItem(
                label=a.name, kind=K.Property, detail=_arg_detail(a), documentation=_md(arg_markdown(op.name, a)),
                text_edit=types.TextEdit(rng, f"{a.name}="), filter_text=a.name, sort_text=f"1{i:03d}"))
        return items
    b = _blocks(doc).get(ctx.callee)
    if b is None or ctx.kwarg is not None:
        return []
    return [types.CompletionItem(label=p.name, kind=K.Property,
                                 detail="required" if p.default is REQUIRED else f"default {show(p.default)}",
                                 documentation=_md(f"parameter of block `{b.signature(ctx.callee)}`"),
                                 text_edit=types.TextEdit(rng, f"{p.name}="), filter_text=p.name,
                                 sort_text=f"1{i:03d}")
            for i, p in enumerate(b.params[ctx.positional:]) if p.name not in ctx.given]


def _values(a: Arg, rng: types.Range, doc: Document, line: int, col: int) -> list[types.CompletionItem]:
    if a.choices:
        values = list(a.choices)
    elif a.kind == "bool":
        values = ["true", "false"]
    elif a.kind == "ref":
        values = _names_in_scope(doc, line, col)
    else:
        return []
    default = None if a.required else show(a.default)
    return [types.CompletionItem(label=v, kind=K.EnumMember, text_edit=types.TextEdit(rng, v), sort_text=f"{i:03d}",
                                 detail=a.name + (" (default)" if v == default else ""))
            for i, v in enumerate(values)]


def _arg_detail(a: Arg) -> str:
    """``int, required`` or ``int2, default 1``: the argument's kind and what a call may leave out."""
    return f"{a.kind}, required" if a.required else f"{a.kind}, default {show(a.default)}"


def _md(text: str) -> types.MarkupContent:
    return types.MarkupContent(types.MarkupKind.Markdown, text)
