"""The spec schema: generated from the registry, committed, valid under draft-07 and 2020-12."""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import EXAMPLES, ROOT, SPECS

from netc.compiler.schema import build_schema, schema_text
from netc.dsl.schema import SCHEMA_PATH
from netc.dsl.yamlload import load_yaml, to_python


def test_committed_schema_is_up_to_date():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), \
        "regenerate with: netc schema -o netc/dsl/netc.schema.json"


@pytest.mark.parametrize("cls", [jsonschema.Draft7Validator, jsonschema.Draft202012Validator])
def test_schema_is_valid_under_draft07_and_2020_12(cls):
    cls.check_schema(build_schema())


def test_op_names_come_from_the_registry():
    from netc.compiler.registry import REGISTRY

    step = build_schema()["definitions"]["step"]["properties"]
    assert set(step) == set(REGISTRY.names())
    conv = step["Conv2D"]
    assert conv["required"] == ["filters", "kernel"]
    assert all("description" in p for p in conv["properties"].values())


@pytest.mark.parametrize("cls", [jsonschema.Draft7Validator, jsonschema.Draft202012Validator])
@pytest.mark.parametrize("path", EXAMPLES + SPECS, ids=[p.name for p in EXAMPLES + SPECS])
def test_examples_and_specs_validate(cls, path):
    data = to_python(load_yaml(path.read_bytes(), str(path)))
    errors = list(cls(json.loads(SCHEMA_PATH.read_text())).iter_errors(data))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("doc", [
    "netc: 1\ninput: [8]\nmodle: Dense(2)\n",
    "netc: 1\ninput: 8\nmodel: Dense(2)\n",
    "netc: 1\ninput: [8]\nmodel: Dense(2)\nmodels: {}\n",
    "netc: 1\ninput: [0]\nmodel: Dense(2)\n",
    "netc: 1\ninput: [8]\nmodel: [{Dense: {unit: 3}}]\n",
    "netc: 1\ninput: [8]\nmodel: Dense(2)\ntrain: {epochz: 3}\n",
])
def test_broken_documents_fail_under_both_drafts(doc):
    data = to_python(load_yaml(doc))
    schema = json.loads(SCHEMA_PATH.read_text())
    for cls in (jsonschema.Draft7Validator, jsonschema.Draft202012Validator):
        assert list(cls(schema).iter_errors(data)), (cls.__name__, doc)


def test_every_example_has_the_modeline():
    for p in EXAMPLES + SPECS:
        first = p.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=") and first.endswith("netc.schema.json"), p
        target = (p.parent / first.split("=", 1)[1]).resolve()
        assert target == SCHEMA_PATH.resolve(), p
    assert ROOT
