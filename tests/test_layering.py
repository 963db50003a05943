"""The layers, as a test: no upward import, no import circle, torch only in backend/ and runner/;
and the front end never imports torch (editors re-check specs in milliseconds).

Layers, lowest first: diagnostics ← dsl ← compiler ← backend ← runner, lsp ← api, cli.
Every ``import`` of every module under netc/ counts, function-level and ``TYPE_CHECKING``
ones included (only the torch rule ignores ``TYPE_CHECKING`` blocks, which never run);
``netc/__init__.py`` may re-export lazily (its function-level and ``TYPE_CHECKING`` imports
are not edges).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLES, ROOT

PACKAGE = ROOT / "netc"
LAYERS = {"diagnostics": 0, "dsl": 1, "compiler": 2, "backend": 3, "runner": 4, "lsp": 4, "api": 5, "cli": 5,
          "__main__": 6}
TORCH_LAYERS = {"backend", "runner"}
HEAVY = {"torch", "numpy"}


def _module(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str | None:
    """The layer of a netc module (None for the root package, which only re-exports)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


class _Imports(ast.NodeVisitor):
    """(imported module, line, runs at run time) of one file, with the function nesting tracked."""

    def __init__(self, module: str, is_package: bool):
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[tuple[str, int, bool, bool]] = []  # (name, line, in a function, under TYPE_CHECKING)
        self.depth = 0
        self.type_checking = 0

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815

    def visit_If(self, node: ast.If) -> None:
        guard = "TYPE_CHECKING" in ast.unparse(node.test)
        self.type_checking += guard
        for child in node.body:
            self.visit(child)
        self.type_checking -= guard
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.found.append((a.name, node.lineno, self.depth > 0, self.type_checking > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for a in node.names:  # `from pkg import submodule` imports the submodule
            self.found.append((f"{source}.{a.name}", node.lineno, self.depth > 0, self.type_checking > 0))


def import_graph(package: Path = PACKAGE) -> tuple[dict[str, set[str]], list[str]]:
    """Edges between netc modules, and the violations of the torch/numpy rule."""
    files = {_module(p, package): p for p in sorted(package.rglob("*.py"))}
    edges: dict[str, set[str]] = {m: set() for m in files}
    heavy: list[str] = []
    for module, path in files.items():
        visitor = _Imports(module, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for name, line, lazy, type_only in visitor.found:
            top = name.split(".")[0]
            if top in HEAVY and not type_only and _layer(module) not in TORCH_LAYERS:
                heavy.append(f"{module}:{line} imports {top}")
            if top != "netc" or (module == "netc" and (lazy or type_only)):  # the root's lazy re-exports
                continue
            while name not in files and "." in name:  # `from netc.x import name` → netc.x
                name = name.rpartition(".")[0]
            if name != module:
                edges[module].add(name)
    return edges, heavy


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """Imports of a higher layer, or of a sibling layer (runner ↔ lsp, api ↔ cli)."""
    bad = []
    for module, targets in edges.items():
        for target in sorted(targets):
            a, b = _layer(module), _layer(target)
            if a is not None and b is not None and a != b and LAYERS[b] >= LAYERS[a]:
                bad.append(f"{module} ({a}) imports {target} ({b})")
    return bad


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    group.append(m)
                    if m == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_no_module_imports_a_higher_layer():
    edges, _ = import_graph()
    assert upward_imports(edges) == []


def test_no_import_circles():
    edges, _ = import_graph()
    assert circles(edges) == []


def test_torch_and_numpy_only_in_backend_and_runner():
    _, heavy = import_graph()
    assert heavy == []


def test_the_scan_sees_function_level_imports_and_circles(tmp_path):
    pkg = tmp_path / "netc"
    for rel, text in {"__init__.py": "def f():\n    from netc import cli\n",
                      "diagnostics.py": "", "cli.py": "import netc.compiler.a\n",
                      "compiler/__init__.py": "", "compiler/a.py": "def f():\n    from netc.compiler import b\n",
                      "compiler/b.py": "from netc.compiler.a import f\nimport numpy\n",
                      "dsl/__init__.py": "", "dsl/x.py": "def g():\n    from netc.runner import y\n",
                      "runner/__init__.py": "", "runner/y.py": "import torch\n"}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    edges, heavy = import_graph(pkg)
    assert upward_imports(edges) == ["netc.dsl.x (dsl) imports netc.runner.y (runner)"]
    assert circles(edges) == [["netc.compiler.a", "netc.compiler.b"]]
    assert heavy == ["netc.compiler.b:2 imports numpy"]


def test_front_end_does_not_import_torch():
    files = [str(p) for p in EXAMPLES]
    code = (
        "import sys, netc, netc.cli, netc.dsl.spec, netc.dsl.chain, netc.dsl.yamlload, netc.dsl.schema, "
        "netc.compiler.check, netc.compiler.elaborate, netc.compiler.summary, netc.compiler.registry, "
        "netc.compiler.ir\n"
        "from netc.compiler.check import check_file\n"
        "from netc.compiler.summary import summarize\n"
        f"for f in {files!r}:\n"
        "    p = check_file(f)\n"
        "    [summarize(g) for g in p.graphs.values()]\n"
        "assert 'torch' not in sys.modules, 'the front end imported torch'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_netc_check_cli_does_not_import_torch():
    code = ("import sys\nfrom netc.cli import main\n"
            f"rc = main(['check', {str(EXAMPLES[0])!r}])\n"
            "assert rc == 0\nassert 'torch' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr


def test_language_server_analysis_does_not_import_torch():
    code = ("import sys\nfrom netc.lsp.analysis import analyze\n"
            f"p = {str(EXAMPLES[0])!r}\n"
            "a = analyze(open(p, encoding='utf-8').read(), p)\n"
            "assert a.ok and 'torch' not in sys.modules and 'numpy' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
