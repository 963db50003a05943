"""Parse chain strings (``Conv2D(32, 3) → ReLU → Dense(10)``) with the Lark grammar."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cache, lru_cache
from pathlib import Path

from netc.diagnostics import Span, SpecError
from netc.dsl import ast
from netc.dsl.yamlload import MAX_DIGITS

GRAMMAR = Path(__file__).with_name("chain.lark")

OffsetMapper = Callable[[int, int], Span]

# Bounds on one argument expression, checked while the AST is built so that no later stage
# (elaboration, hover, the YAML dump) can recurse or format its way into a crash.
MAX_EXPR_DEPTH = 100  # `1 + 1 + … + 1` with more terms than this, or brackets nested deeper
MAX_REPEAT_DIGITS = 9  # `Block * n`: the total-node limit refuses far smaller counts anyway

# Malformed chains and the label each failure gets (lark's match_examples idiom).
# tests/test_chain.py loops over this same table.
SYNTAX_EXAMPLES: dict[str, list[str]] = {
    "missing arrow between two layers": ["Dense(10) ReLU", "ReLU Dense(3)", "A → Dense(10) ReLU",
                                         "A → B C", "A(1) → B(2) C(3)", "Res(2) * 2 ReLU", "A → Res(2) * 2 ReLU"],
    "chain ends with an arrow": ["Dense(10) →", "ReLU ->", "A → Dense(10) →", "A → B ->"],
    "chain starts with an arrow": ["→ Dense(10)", "-> ReLU"],
    "two arrows in a row": ["Dense(10) → → ReLU", "ReLU -> -> ReLU", "A → B → → C"],
    "unclosed parenthesis": ["Dense(10", "Conv2D(32, 3 → ReLU", "Dense(10, bias=true"],
    "missing value after '='": ["Dense(10, bias=)", "Conv2D(3, padding=)"],
    "two commas in a row": ["Dense(10,, 3)", "Conv2D(1,,2)"],
    "repetition needs a whole number": ["Res(64) * 1.5", "ReLU * ", "Res(64) * (2)"],
    "unexpected closing parenthesis": ["Dense(10))", "ReLU)", "A → Dense(10))", "A → B)"],
    "a layer inside a layer": ["Bidirectional(LSTM(32))", "TimeDistributed(Dense(10))", "A(B(1))",
                               "A → B(C(2))", "A(1, B(2))"],
}


@cache
def _parser():
    from lark import Lark  # lazy: keeps `import netc` fast

    return Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", propagate_positions=True,
                maybe_placeholders=False, cache=True)


def _identity_mapper(file: str) -> OffsetMapper:
    def to_span(start: int, end: int) -> Span:
        return Span(file, 1, start + 1, 1, end + 1)

    return to_span


def _build(tree, to_span: OffsetMapper, text: str):
    """Turn the lark tree into AST dataclasses (explicit stack-free recursion; chains are shallow)."""
    from lark import Token, Tree

    def span_of(node) -> Span:
        if isinstance(node, Token):
            return to_span(node.start_pos, node.end_pos)
        return to_span(node.meta.start_pos, node.meta.end_pos)

    def expr(node, depth: int = 0) -> ast.Expr:
        if isinstance(node, Token):  # pragma: no cover - grammar always wraps values
            raise AssertionError(node)
        if depth > MAX_EXPR_DEPTH:
            raise SpecError(f"expression too deep: more than {MAX_EXPR_DEPTH} nested terms or brackets", span_of(node),
                            "compute the value once (e.g. in params:) and use its name", kind="syntax")
        d = node.data
        if d == "number":
            tok = node.children[0]
            s = str(tok)
            if len(s) > MAX_DIGITS:
                raise SpecError(f"number literal of {len(s):,} characters; numbers are limited to {MAX_DIGITS} digits",
                                span_of(tok), "write a smaller number (sizes and rates fit in a few digits)",
                                kind="syntax")
            value: int | float = int(s) if s.isdigit() else float(s)
            return ast.Num(value, span_of(tok))
        if d == "string":
            tok = node.children[0]
            return ast.Str(str(tok)[1:-1], span_of(tok))
        if d == "word":
            tok = node.children[0]
            return ast.Word(str(tok), span_of(tok))
        if d in ("list", "tuple"):
            return ast.ListExpr(tuple(expr(c, depth + 1) for c in node.children if c is not None), span_of(node))
        if d == "neg":
            inner = expr(node.children[0], depth + 1)
            if isinstance(inner, ast.Num):
                return ast.Num(-inner.value, span_of(node))
            return ast.BinOp("*", ast.Num(-1, span_of(node)), inner, span_of(node))
        ops = {"add": "+", "sub": "-", "mul": "*", "floordiv": "//", "truediv": "/"}
        if d in ops:
            return ast.BinOp(ops[d], expr(node.children[0], depth + 1), expr(node.children[1], depth + 1),
                             span_of(node))
        raise AssertionError(f"unexpected tree {d}")  # pragma: no cover

    def call(node) -> ast.Call:
        if node.data == "ref":
            tok = node.children[0]
            return ast.Call(str(tok), (), (), span_of(tok), bare=True)
        name_tok = node.children[0]
        args: list[ast.Expr] = []
        kwargs: list[ast.KwArg] = []
        if len(node.children) > 1:
            for a in node.children[1].children:
                if isinstance(a, Tree) and a.data == "kwarg":
                    key = a.children[0]
                    if "." in str(key):
                        raise SpecError(f"argument name '{key}' cannot contain '.'", span_of(key),
                                        "write keyword arguments as name=value", kind="syntax")
                    kwargs.append(ast.KwArg(str(key), expr(a.children[1]), span_of(key)))
                else:
                    if kwargs:
                        raise SpecError("positional argument after a keyword argument", span_of(a),
                                        "put positional arguments first, e.g. Conv2D(32, 3, padding=same)",
                                        kind="syntax")
                    args.append(expr(a))
        return ast.Call(str(name_tok), tuple(args), tuple(kwargs), span_of(node))

    steps = []
    for st in tree.children:
        c = call(st.children[0])
        repeat, named = 1, None
        if len(st.children) > 1 and st.children[1].type == "NAME":
            named = str(st.children[1])  # `* depth`: a spec parameter, read when the chain is elaborated
        elif len(st.children) > 1:
            count = str(st.children[1])
            if len(count.lstrip("0")) > MAX_REPEAT_DIGITS:
                raise SpecError(f"repetition count of {len(count.lstrip('0')):,} digits is too large",
                                span_of(st.children[1]), "repeat a block at most a few thousand times",
                                kind="syntax")
            repeat = int(count)
            if repeat < 1:
                raise SpecError(f"repetition count must be at least 1, got {repeat}", span_of(st),
                                "write Block(...) * 2 or more, or remove '* 0'", kind="syntax")
        steps.append(ast.Step(c, repeat, span_of(st), named))
    return ast.Chain(tuple(steps), span_of(tree))


def _syntax_error(e, text: str, to_span: OffsetMapper) -> SpecError:
    from lark.exceptions import (
        UnexpectedCharacters,
        UnexpectedEOF,
        UnexpectedInput,
        UnexpectedToken,
    )

    label = None
    if isinstance(e, UnexpectedInput):
        try:
            label = e.match_examples(_parser().parse, SYNTAX_EXAMPLES, use_accepts=True)
        except Exception:  # match_examples re-parses; never let a labelling failure escape
            label = None
    pos = getattr(e, "pos_in_stream", None)
    if isinstance(e, UnexpectedEOF) or pos is None:
        pos = len(text.rstrip())
    if isinstance(e, UnexpectedToken) and e.token.type == "$END":
        pos = len(text.rstrip())
    width = 1
    if isinstance(e, UnexpectedToken) and e.token.type != "$END":
        width = max(1, len(str(e.token)))
    found = ""
    if isinstance(e, UnexpectedCharacters):
        found = f"unexpected character {text[pos]!r}" if pos < len(text) else "unexpected end"
    elif isinstance(e, UnexpectedToken):
        found = "unexpected end of chain" if e.token.type == "$END" else f"unexpected {str(e.token)!r}"
    else:
        found = "unexpected end of chain"
    msg = f"{label}: {found}" if label else f"invalid chain: {found}"
    expected = sorted(getattr(e, "expected", None) or getattr(e, "allowed", None) or [])
    pretty = {"_ARROW": "'→'", "RPAR": "')'", "LPAR": "'('", "COMMA": "','", "NAME": "a name",
              "NUMBER": "a number", "INT": "a whole number", "STRING": "a string", "EQUAL": "'='",
              "LSQB": "'['", "RSQB": "']'", "_STAR": "'*'", "MINUS": "'-'", "PLUS": "'+'", "SLASH": "'/'",
              "__ANON_0": "'//'"}
    exp = [pretty.get(x, x) for x in expected if not x.startswith("__")]
    hint = "expected " + ", ".join(dict.fromkeys(exp)) if exp else None
    if label == "missing arrow between two layers":
        hint = "separate layers with → (or ->)"
    if label == "a layer inside a layer":  # Keras' wrappers: what netc writes instead
        hint = ("netc has no wrapper layers: write LSTM(32, bidirectional=true) for Bidirectional, and Dense "
                "alone for TimeDistributed(Dense) (it applies to every step of a sequence)")
    return SpecError(msg, to_span(pos, pos + width), hint, kind="syntax")


def _offsets(start: int, end: int) -> Span:
    # Position-independent span: the character offsets, re-mapped by _respan.
    return Span("", 0, start, 0, end)


@lru_cache(maxsize=8192)
def _parse_cached(text: str) -> ast.Chain | SpecError:
    """Parse once per distinct chain text (a language server re-checks mostly unchanged chains)."""
    from lark.exceptions import LarkError

    try:
        tree = _parser().parse(text)
    except LarkError as e:
        return _syntax_error(e, text, _offsets)
    try:
        return _build(tree, _offsets, text)
    except SpecError as e:
        return e


def _respan(node, to_span: OffsetMapper):
    """Copy an offset-spanned AST with real file spans."""
    if isinstance(node, tuple):
        return tuple(_respan(n, to_span) for n in node)
    if not hasattr(node, "__dataclass_fields__"):
        return node
    changes = {}
    for f in node.__dataclass_fields__:
        v = getattr(node, f)
        if isinstance(v, Span):
            changes[f] = to_span(v.col, v.end_col)
        elif isinstance(v, tuple) or hasattr(v, "__dataclass_fields__"):
            changes[f] = _respan(v, to_span)
    return replace(node, **changes)


def parse_chain(text: str, to_span: OffsetMapper | None = None) -> ast.Chain:
    """Parse a chain; ``to_span(start, end)`` maps character offsets to file spans."""
    to_span = to_span or _identity_mapper("<chain>")
    if not text.strip():
        raise SpecError("empty chain", to_span(0, 1), "write at least one layer, e.g. Dense(10)",
                        kind="syntax")
    result = _parse_cached(text)
    if isinstance(result, SpecError):
        d = result.diagnostics[0]
        raise SpecError(d.message, to_span(d.span.col, d.span.end_col), d.hint, kind=d.kind)
    return _respan(result, to_span)


def parse_call(text: str, to_span: OffsetMapper | None = None) -> ast.Call:
    """Parse a single call such as ``adam(lr=1e-3)`` (used by the ``train:`` block)."""
    chain = parse_chain(text, to_span)
    if len(chain.steps) != 1 or chain.steps[0].repeat != 1 or chain.steps[0].count is not None:
        raise SpecError(f"expected a single call like name(arg=value), got {text!r}", chain.span,
                        "e.g. adam(lr=1e-3)", kind="syntax")
    return chain.steps[0].call


_WORDS = {"true": True, "false": False, "none": None, "null": None}


def word_value(name: str) -> object:
    """A bare word's value: true/false/none (any case), else the word itself (e.g. ``same``)."""
    return _WORDS.get(name.lower(), name)


def literal(e: ast.Expr) -> object:
    """Value of a constant expression (no block parameters): numbers, strings, words, lists."""
    if isinstance(e, ast.Num | ast.Str):
        return e.value
    if isinstance(e, ast.Word):
        return word_value(e.name)
    if isinstance(e, ast.ListExpr):
        return [literal(i) for i in e.items]
    if isinstance(e, ast.BinOp):
        a, b = literal(e.left), literal(e.right)
        if not isinstance(a, int | float) or not isinstance(b, int | float) or isinstance(a, bool) \
                or isinstance(b, bool):
            raise SpecError(f"arithmetic needs numbers, got {a!r} {e.op} {b!r}", e.span, kind="arg")
        return arith(e.op, a, b, e.span)
    raise AssertionError(e)  # pragma: no cover


def arith(op: str, a: int | float, b: int | float, span: Span) -> int | float:
    """Apply a binary arithmetic operator with located errors."""
    if op in ("/", "//") and b == 0:
        raise SpecError("division by zero", span, kind="arg")
    try:
        out = a + b if op == "+" else a - b if op == "-" else a * b if op == "*" else a // b if op == "//" else a / b
    except OverflowError:  # float arithmetic beyond 1.8e308
        raise SpecError(f"{op} overflows: the result is too large", span, kind="arg") from None
    if isinstance(out, int) and out.bit_length() > MAX_DIGITS * 10 // 3:  # ≈ MAX_DIGITS decimal digits
        raise SpecError(f"{op} produces an integer of more than {MAX_DIGITS} digits", span,
                        "use smaller numbers", kind="arg")
    return out


def call_literal(c: ast.Call) -> tuple[str, list, dict]:
    """(name, positional values, keyword values) of a constant call."""
    return c.name, [literal(a) for a in c.args], {k.name: literal(k.value) for k in c.kwargs}
