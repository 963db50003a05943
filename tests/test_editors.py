"""The editor packages: the VS Code extension builds into a .vsix with the npm tooling, Neovim
(headless, the real `nvim`) receives a shape error from `netc lsp`, the SchemaStore entry matches.

The .vsix build runs `npm ci` once per package-lock.json into a cache directory
($NETC_TEST_CACHE, default ~/.cache/netc-tests) and packages from there afterwards (a few
seconds). Each test skips, naming the missing tool, only when node/npm or nvim is not installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

VSCODE = ROOT / "editors" / "vscode"
SCHEMA = ROOT / "netc" / "dsl" / "netc.schema.json"
SOURCES = ("package.json", "package-lock.json", "extension.js", "README.md", ".vscodeignore")


def test_vscode_manifest_starts_netc_lsp_for_specs_and_contributes_the_schema():
    pkg = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    assert pkg["name"] == "netc" and pkg["main"] == "./extension.js"
    assert "onLanguage:yaml" in pkg["activationEvents"]
    assert {"id": "yaml", "filenamePatterns": ["*.netc.yaml", "*.netc.yml"]} in pkg["contributes"]["languages"]
    assert pkg["contributes"]["yamlValidation"] == [{"fileMatch": ["*.netc.yaml", "*.netc.yml"],
                                                    "url": "./netc.schema.json"}]
    assert set(pkg["contributes"]["configuration"]["properties"]) == {
        "netc.path", "netc.debounceMs", "netc.checkBudgetMs", "netc.allFiles"}
    assert "vscode-languageclient" in pkg["dependencies"]
    js = (VSCODE / "extension.js").read_text(encoding="utf-8")
    assert 'args: ["lsp"]' in js and "vscode-languageclient/node" in js


def test_schemastore_catalog_entry_matches_the_schema_and_the_extension():
    entry = json.loads((ROOT / "editors" / "schemastore-catalog.json").read_text(encoding="utf-8"))
    assert entry["url"] == json.loads(SCHEMA.read_text(encoding="utf-8"))["$id"]
    assert entry["fileMatch"] == ["*.netc.yaml", "*.netc.yml"]
    assert set(entry) == {"name", "description", "fileMatch", "url"}


def _cache() -> Path:
    base = Path(os.environ.get("NETC_TEST_CACHE") or Path.home() / ".cache" / "netc-tests")
    key = hashlib.sha256((VSCODE / "package-lock.json").read_bytes()).hexdigest()[:16]
    return base / f"vscode-{key}"


@pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None,
                    reason="node/npm are not installed (apt-get install nodejs npm)")
def test_vsix_builds_with_the_npm_tooling(tmp_path):
    build = _cache()
    build.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        shutil.copyfile(VSCODE / name, build / name)
    shutil.copyfile(SCHEMA, build / "netc.schema.json")
    if not (build / "node_modules" / ".bin" / "vsce").exists():  # once per package-lock.json
        proc = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=build,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"npm ci failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert subprocess.run(["node", "--check", "extension.js"], cwd=build).returncode == 0
    vsix = tmp_path / "netc.vsix"
    proc = subprocess.run([str(build / "node_modules" / ".bin" / "vsce"), "package", "--skip-license",
                           "--allow-missing-repository", "--out", str(vsix)], cwd=build,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"vsce package failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    with zipfile.ZipFile(vsix) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("extension/package.json"))
        assert manifest["contributes"] == json.loads((VSCODE / "package.json").read_text())["contributes"]
        assert z.read("extension/netc.schema.json") == SCHEMA.read_bytes()
        assert "extension/extension.js" in names
        assert "extension/node_modules/vscode-languageclient/package.json" in names
        assert not any(n.startswith("extension/node_modules/@vscode/vsce/") for n in names)  # a dev tool
        assert 'Id="netc"' in z.read("extension.vsixmanifest").decode()


SHAPE_ERROR = "netc: 1\ninput: [1, 8, 8]\nmodel: Conv2D(8, 3) → ReLU → Dense(10)\n"


@pytest.mark.skipif(shutil.which("nvim") is None, reason="nvim is not installed (apt-get install neovim)")
def test_neovim_headless_receives_the_shape_error(tmp_path):
    spec = tmp_path / "shape.netc.yaml"
    spec.write_text(SHAPE_ERROR, encoding="utf-8")
    out = tmp_path / "diagnostics.json"
    env = {**os.environ, "NETC_NVIM_DIR": str(ROOT / "editors" / "nvim"), "NETC_PYTHON": sys.executable,
           "NETC_SPEC": str(spec), "NETC_OUT": str(out), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(["nvim", "--headless", "--clean", "-u", str(ROOT / "tests" / "nvim_diagnostics.lua")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert out.exists(), f"nvim wrote nothing (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    got = json.loads(out.read_text())
    assert got["ok"] and got["filetype"] == "yaml"
    (d,) = got["diagnostics"]
    assert d["source"] == "netc" and d["code"] == "shape" and (d["lnum"], d["col"]) == (2, 33)
    assert d["message"].startswith("Dense(10) expects (N, features), got (N, 8, 6, 6)")
    assert "insert Flatten before Dense" in d["message"]
