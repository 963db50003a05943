"""``textDocument/hover``: what the thing under the cursor is, and the shapes it makes.

Over an op call: its signature and doc, its output shape and parameter count (one
line per instance when the call sits in a block or is repeated). Over a block call:
its header, where it is defined, and each instance's output and parameters. Over an
argument name: the argument's doc. Over a name: the node, input or parameter it is.
Shapes come from the latest analysis or, while the document is broken, from the last
good one (only on lines the edits since then have not touched).
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from netc.compiler.ir import Node, TensorType
from netc.compiler.registry import REGISTRY, Arg, OpDef, fmt_shape
from netc.diagnostics import REQUIRED, Span, show
from netc.dsl.spec import BlockDef
from netc.lsp.analysis import Analysis, BlockUse, LineMap, contains
from netc.lsp.context import call_context, word_at
from netc.lsp.documents import Document
from netc.lsp.keys import key_hover
from netc.lsp.symbols import Symbol, block_namespace, resolve

__all__ = ["arg_markdown", "hover", "op_markdown"]

MAX_INSTANCES = 8


def hover(doc: Document, line: int, character: int) -> types.Hover | None:
    """The hover at LSP position (line, character) of ``doc``, or None."""
    idx = doc.index
    off = idx.offset(line, character)
    text = idx.line(line)
    col = off - idx.offset(line, 0)
    ws, we, word = word_at(text, col)
    word_range = _range(idx.position(off - col + ws), idx.position(off - col + we))
    nl, nc = idx.netc_linecol(off)
    ctx = call_context(text, ws) if word else None
    if ctx is None and (kh := key_hover(doc, line, character)) is not None:
        return kh  # a YAML key (`epochs:`): the schema's description, default and choices

    # 1. an argument name (`padding` in `Conv2D(32, 3, padding=same)`): its doc
    if word and ctx is not None and ctx.kwarg is None and text[we:].lstrip(" \t").startswith("="):
        md = _argument(doc, ctx.callee, word, nl, nc)
        if md:
            return _hover(md, word_range)

    analyses = doc.analyses()
    # 2. a name used as an argument (`body` in `Add(body, in)`, `classes` in `Dense(classes)`)
    if word and ctx is not None:
        for a, lm in analyses:
            sym = _resolve(a, lm, word, nl, nc, col - ws)
            if sym is not None:
                return _hover(_symbol_markdown(sym, a), word_range)

    # 3. the op or block call under the cursor, with its shapes (just after a name counts too)
    cols = [nc] if not word or ws == col else [nc, idx.netc_linecol(off - (col - ws))[1]]
    for a, lm in analyses:
        old = lm.to_old(nl)
        if old is None:
            continue
        for c in cols:
            nodes, uses = a.nodes_at(old, c), a.uses_at(old, c)
            if nodes:
                span = lm.span_to_new(nodes[0].span)
                return _hover(_nodes_markdown(nodes), _span_range(idx, span) if span else word_range)
            if uses:
                span = lm.span_to_new(uses[0].span)
                return _hover(_uses_markdown(uses, a), _span_range(idx, span) if span else word_range)
            entry = [e for e in a.entries if contains(e.span, a.file, old, c)]
            if entry:
                return _hover(_entry_markdown(entry[0].name, entry, "node"), word_range)

    if not word:
        return None
    # 4. a name: a node reference at the start of a chain, a block, an input, a parameter
    for a, lm in analyses:
        sym = _resolve(a, lm, word, nl, nc, col - ws)
        if sym is not None:
            return _hover(_symbol_markdown(sym, a), word_range)
    # 5. an op the analysis has no node for (the chain fails before it): signature and doc
    op = REGISTRY.get(word)
    if op is not None:
        clean = doc.analysis is not None and doc.analysis.ok and doc.analysis.text == doc.text
        note = ("no output shape here: the call is in a block this file does not use" if clean
                else "output shape: not known until the errors before it are fixed")
        return _hover(f"{op_markdown(op)}\n\n*{note}*", word_range)
    return None


# ---------------------------------------------------------------------------- markdown

def op_markdown(op: OpDef) -> str:
    """Signature in a code block, then the doc."""
    alias = f" (alias: {', '.join(op.aliases)})" if op.aliases else ""
    return f"```text\n{op.signature()}\n```\n{op.doc}{alias}"


def arg_markdown(op_name: str, a: Arg) -> str:
    """``filters`` · int · required — doc."""
    bits = [f"**{a.name}**", a.kind]
    bits.append("required" if a.required else f"default `{show(a.default)}`")
    if a.choices:
        bits.append("one of " + ", ".join(f"`{c}`" for c in a.choices))
    if a.min is not None or a.max is not None:
        lo = "" if a.min is None else f"{show(a.min)} ≤ "
        hi = "" if a.max is None else f" ≤ {show(a.max)}"
        bits.append(f"{lo}{a.name}{hi}")
    return f"{' · '.join(bits)}  \nargument of `{op_name}`: {a.doc or a.name}"


def _shape(t: TensorType | None) -> str:
    if t is None:
        return "unknown (an error upstream)"
    dtype = "" if t.dtype == "float32" else f" {t.dtype}"
    return f"`{fmt_shape(t.shape)}`{dtype}"


def _nodes_markdown(nodes: list[Node]) -> str:
    op = REGISTRY.get(nodes[0].op)
    head = op_markdown(op) if op is not None else f"`{nodes[0].op}`"
    if len(nodes) == 1:
        n = nodes[0]
        args = ", ".join(f"{k}={show(v)}" for k, v in n.args)
        macs = f" · **MACs** {n.macs:,}" if n.macs else ""
        return (f"{head}\n\n**output** {_shape(n.type)} · **params** {n.params:,}{macs}  \n"
                f"node `{n.name}` = {n.op}({args})")
    lines = [head, "", f"**{len(nodes)} instances** (the call is in a block or repeated):"]
    for n in nodes[:MAX_INSTANCES]:
        lines.append(f"- `{n.name}`: output {_shape(n.type)}, {n.params:,} params")
    if len(nodes) > MAX_INSTANCES:
        lines.append(f"- … and {len(nodes) - MAX_INSTANCES} more")
    return "\n".join(lines)


def _block_markdown(name: str, b: BlockDef, a: Analysis) -> str:
    where = f"line {b.span.line}" if b.span.file == a.file else f"{Path(b.span.file).name}:{b.span.line}"
    comment = _comment_above(b.span, a)
    out = f"```text\nblock {b.signature(name)}\n```\ndefined at {where}"
    return f"{out}  \n{comment}" if comment else out


def _uses_markdown(uses: list[BlockUse], a: Analysis) -> str:
    u0 = uses[0]
    name = _called_name(u0, a)
    head = _block_markdown(name, u0.block, a)
    if len(uses) == 1:
        return (f"{head}\n\n**output** {_shape(u0.output)} · **params** {u0.params:,} "
                f"({len(u0.nodes)} nodes)")
    lines = [head, "", f"**{len(uses)} instances** (the call is in a block or repeated):"]
    for u in uses[:MAX_INSTANCES]:
        first = f"`{u.nodes[0]}`…" if u.nodes else "(no nodes)"
        lines.append(f"- {first}: output {_shape(u.output)}, {u.params:,} params")
    if len(uses) > MAX_INSTANCES:
        lines.append(f"- … and {len(uses) - MAX_INSTANCES} more")
    return "\n".join(lines)


def _called_name(u: BlockUse, a: Analysis) -> str:
    if a.spec is not None:
        for n, b in block_namespace(a.spec).items():
            if b is u.block:
                return n
    return u.block.name


def _entry_markdown(name: str, results: list, kind: str) -> str:
    if len(results) == 1:
        return f"{kind} `{name}`: output {_shape(results[0].type)}"
    lines = [f"{kind} `{name}`, {len(results)} instances:"]
    lines += [f"- `{r.tensor}`: output {_shape(r.type)}" for r in results[:MAX_INSTANCES]]
    return "\n".join(lines)


def _symbol_markdown(sym: Symbol, a: Analysis) -> str:
    if sym.kind == "node":
        results = a.entries_named(sym.span)
        if results:
            return _entry_markdown(sym.name, results, "node")
        return f"node `{sym.name}` (defined at line {sym.span.line})"
    if sym.kind == "input":
        decl = next((i for m in a.spec.models for i in m.inputs if i.span == sym.span), None) if a.spec else None
        if decl is not None:
            t = TensorType(("N", *decl.shape), decl.dtype)
            return f"input `{sym.name}`: {_shape(t)} (the batch axis N is implicit)"
        return f"input `{sym.name}`"
    if sym.kind == "param":
        return f"spec parameter `{sym.name}` = `{show(sym.value)}` (override with `--param {sym.name}=...`)"
    if sym.kind == "block_param":
        if sym.name == "in":
            return f"`in`: the input of block `{sym.block.name}`"
        default = "required" if sym.value is REQUIRED else f"default `{show(sym.value)}`"
        return f"parameter `{sym.name}` of block `{sym.block.name}` ({default})"
    if sym.kind == "block" and sym.block is not None:
        md = _block_markdown(sym.name, sym.block, a)
        uses = [u for u in a.block_uses if u.block is sym.block]
        if not uses:
            return md
        lines = [md, "", f"**{len(uses)} instance{'s' * (len(uses) != 1)}** in this file:"]
        for u in uses[:MAX_INSTANCES]:
            lines.append(f"- line {u.span.line}: output {_shape(u.output)}, {u.params:,} params")
        if len(uses) > MAX_INSTANCES:
            lines.append(f"- … and {len(uses) - MAX_INSTANCES} more")
        return "\n".join(lines)
    if sym.kind == "import":
        return f"imported spec `{sym.span.file}`"
    return f"`{sym.name}`"


def _argument(doc: Document, callee: str, word: str, line: int, col: int) -> str | None:
    op = REGISTRY.get(callee)
    if op is not None:
        arg = op.arg(word)
        return arg_markdown(op.name, arg) if arg is not None else None
    for a, lm in doc.analyses():
        b = block_namespace(a.spec).get(callee)
        if b is not None:
            for p in b.params:
                if p.name == word:
                    default = "required" if p.default is REQUIRED else f"default `{show(p.default)}`"
                    return f"**{p.name}** · {default}  \nparameter of block `{b.signature(callee)}`"
    return None


def _resolve(a: Analysis, lm: LineMap, word: str, line: int, col: int, into_word: int) -> Symbol | None:
    old = lm.to_old(line)
    if old is None or a.spec is None:
        return None
    alias_part = "." in word and into_word <= word.index(".")
    return resolve(a.spec, word, old, col, alias_part=alias_part)


def _comment_above(span: Span, a: Analysis) -> str:
    """The ``#`` comment lines right above a block's definition, as its documentation."""
    spec = a.spec
    if spec is None:
        return ""
    source = spec.source if span.file == spec.file else next(
        (s.source for s in spec.imports.values() if s.file == span.file), "")
    lines = source.splitlines()
    out: list[str] = []
    k = span.line - 2
    while 0 <= k < len(lines) and lines[k].strip().startswith("#") and len(out) < 12:
        out.append(lines[k].strip().lstrip("#").strip())
        k -= 1
    return " ".join(reversed(out))


def _range(a: tuple[int, int], b: tuple[int, int]) -> types.Range:
    return types.Range(types.Position(*a), types.Position(*b))


def _span_range(idx, span: Span) -> types.Range:
    a, b = idx.span_range(span)
    return _range(a, b)


def _hover(md: str, rng: types.Range | None) -> types.Hover:
    return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, md), rng)
