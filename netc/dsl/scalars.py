"""The one scalar typer for command-line values (``--set train.epochs=3``, ``--param classes=100``)."""

from __future__ import annotations

from netc.diagnostics import SpecError
from netc.dsl.chain import word_value
from netc.dsl.yamlload import YScalar, load_yaml


def typed_scalar(text: str) -> object:
    """``text`` typed as a plain YAML 1.2 scalar in a spec would be, plus netc's bare words.

    ``3`` → 3, ``1e-3`` → 0.001, ``true``/``False`` → bool, ``null``/``~``/``none`` → None,
    ``'quoted'`` → the string; anything else (``adam(lr=1e-3)``, ``[a, b]``, ``yes``) stays
    the text itself. Empty text is the empty string.
    """
    t = text.strip()
    if not t:
        return ""
    try:
        node = load_yaml(t, "<command line>")
    except SpecError:
        return t
    if not isinstance(node, YScalar):
        return t  # a flow list or mapping: the caller reads the text (e.g. --set train.metrics=[a, b])
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return node.value  # quoted: always a string
    return word_value(t) if isinstance(node.value, str) else node.value
