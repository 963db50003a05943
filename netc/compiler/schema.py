"""The JSON Schema of spec files, generated from the op registry and the train config.

Committed as ``netc/dsl/netc.schema.json`` (read by ``netc.dsl.schema.load_schema``);
regenerate with ``netc schema -o netc/dsl/netc.schema.json``. It validates under
draft-07 (what yaml-language-server implements) and 2020-12.
"""

from __future__ import annotations

import json
from typing import Any

SCHEMA_ID = "https://netc.dev/schema/netc.schema.json"

BLOCK_KEY = r"^[A-Z][A-Za-z0-9_]*(\(.*\))?$"
NAME_KEY = r"^[A-Za-z_][A-Za-z0-9_]*$"
DIM = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": NAME_KEY}],
       "description": "a size, or a symbolic name such as T for a variable sequence length"}


def _arg_schema(a) -> dict[str, Any]:
    from netc.diagnostics import REQUIRED

    kinds: dict[str, dict[str, Any]] = {
        "int": {"type": "integer"},
        "float": {"type": "number"},
        "bool": {"type": "boolean"},
        "str": {"type": "string"},
        "int2": {"oneOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"},
                                                 "minItems": 2, "maxItems": 2}]},
        "ints": {"type": "array", "items": {"type": "integer"}},
        "ref": {"type": "string", "pattern": NAME_KEY},
        "int_or_str": {"oneOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}},
                                 {"type": "string"}]},
    }
    s = dict(kinds[a.kind])
    if a.choices and a.kind == "str":
        s["enum"] = list(a.choices)
    if a.min is not None and a.kind in ("int", "float"):
        s["minimum"] = a.min
    if a.max is not None and a.kind in ("int", "float"):
        s["maximum"] = a.max
    if a.nullable:
        s = {"oneOf": [s, {"type": "null"}]}
    s["description"] = a.doc or a.name
    if a.default is not REQUIRED and a.default is not None:
        s["default"] = list(a.default) if isinstance(a.default, tuple) else a.default
    return s


def _op_schema(o) -> dict[str, Any]:
    props = {a.name: _arg_schema(a) for a in o.args}
    body: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False,
                            "description": o.doc}
    req = [a.name for a in o.args if a.required]
    if req:
        body["required"] = req
    if o.arity == "many":
        props["inputs"] = {"type": "array", "items": {"type": "string", "pattern": NAME_KEY},
                           "description": "names of the tensors to join"}
    desc = f"{o.signature()}: {o.doc}"
    return {"description": desc, "oneOf": [body, {"type": "null"}]} if not req else {"description": desc, **body}


def build_schema() -> dict[str, Any]:
    """Generate the spec schema from the registry and the train config's schema."""
    from netc.compiler.registry import REGISTRY
    from netc.compiler.space import json_schema as tune_schema
    from netc.compiler.train.config import json_schema as train_schema

    ops = REGISTRY.all()
    op_names = sorted(REGISTRY.names())
    step_map = {
        "type": "object",
        "description": "one layer in long form: `- Conv2D: {filters: 32, kernel: 3}`",
        "properties": {o.name: _op_schema(o) for o in ops},
        "minProperties": 1, "maxProperties": 1,
        "additionalProperties": {"description": "a user block: `- Res: {c: 64}`",
                                 "type": ["object", "null"]},
        "propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_.]*$"},
    }
    for al, target in REGISTRY.aliases.items():
        step_map["properties"][al] = _op_schema(REGISTRY.get(target))
    chain = {
        "description": "a chain of layers: `Conv2D(32, 3) → ReLU → Dense(10)` (`->` works too), "
                       "or a list of steps (strings or `{Op: {args}}`). Ops: " + ", ".join(op_names),
        "oneOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "minItems": 1,
             "items": {"oneOf": [{"type": "string", "minLength": 1}, {"$ref": "#/definitions/step"}]}},
        ],
    }
    graph = {
        "description": "named nodes, in data-flow order; each value is a chain whose input is the previous "
                       "node unless it starts with a name (`skip: x → Dense(64)`) or a merge (`Add(a, b)`)",
        "type": "object", "minProperties": 1,
        "propertyNames": {"pattern": NAME_KEY},
        "additionalProperties": {"$ref": "#/definitions/chain"},
    }
    tensor = {
        "description": "per-sample shape (the batch axis N is implicit): [1, 28, 28], or "
                       "{shape: [T], dtype: int64} for token ids",
        "oneOf": [
            {"type": "array", "items": {"$ref": "#/definitions/dim"}, "minItems": 1},
            {"type": "object", "additionalProperties": False, "required": ["shape"],
             "properties": {"shape": {"type": "array", "items": {"$ref": "#/definitions/dim"}, "minItems": 1,
                                      "description": "per-sample shape"},
                            "dtype": {"enum": ["float32", "int64"], "default": "float32",
                                      "description": "int64 for token ids fed to Embedding"}}},
        ],
    }
    inputs = {
        "description": "model input(s): one per-sample shape (named x), or a mapping name → shape",
        "oneOf": [{"$ref": "#/definitions/tensor"},
                  {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_KEY},
                   "additionalProperties": {"$ref": "#/definitions/tensor"}}],
    }
    model = {"description": "the network: a chain, or a mapping of named nodes for graphs",
             "oneOf": [{"$ref": "#/definitions/chain"}, {"$ref": "#/definitions/graph"}]}
    block = {"description": "a reusable block: a chain, or named nodes where `in` is the block input and "
                            "`out` (or the last node) its output",
             "oneOf": [{"$ref": "#/definitions/chain"}, {"$ref": "#/definitions/graph"}]}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": "netc spec",
        "description": "A neural network declared for netc: inputs, blocks, model(s) and training.",
        "type": "object",
        "additionalProperties": False,
        "required": ["netc"],
        "oneOf": [{"required": ["model"], "not": {"required": ["models"]}},
                  {"required": ["models"], "not": {"required": ["model"]}},
                  {"not": {"anyOf": [{"required": ["model"]}, {"required": ["models"]}]},
                   "required": ["blocks"]}],
        "properties": {
            "netc": {"const": 1, "description": "spec language version (1)"},
            "name": {"type": "string", "pattern": NAME_KEY, "description": "model name (run directory, class name)"},
            "description": {"type": "string", "description": "free text"},
            "params": {"type": "object", "propertyNames": {"pattern": NAME_KEY},
                       "additionalProperties": {"type": ["integer", "number", "boolean", "string"]},
                       "description": "spec-wide parameters with defaults (e.g. classes: 10, size: 224), usable in "
                                      "chains and input shapes and overridable with --param classes=100"},
            "imports": {"type": "object", "propertyNames": {"pattern": NAME_KEY},
                        "additionalProperties": {"type": "string", "description": "path of a spec file, "
                                                 "relative to this one; its blocks are used as alias.Block"},
                        "description": "blocks from other spec files: `lib: ../specs/blocks.yaml`, used as lib.Res"},
            "input": inputs,
            "blocks": {"type": "object", "propertyNames": {"pattern": BLOCK_KEY},
                       "additionalProperties": {"$ref": "#/definitions/block"},
                       "description": "parameterised blocks: `Res(c, stride=1): ...`"},
            "model": model,
            "models": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_KEY},
                       "description": "several models in one file (a GAN's generator and discriminator)",
                       "additionalProperties": {
                           "type": "object", "additionalProperties": False, "required": ["input", "model"],
                           "properties": {"input": inputs, "model": model}}},
            "train": train_schema(),
            "tune": tune_schema(),
        },
        "definitions": {"dim": DIM, "tensor": tensor, "chain": chain, "graph": graph, "block": block,
                        "step": step_map},
    }


def schema_text() -> str:
    """The generated schema as pretty JSON."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"
