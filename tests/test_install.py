"""Installing netc: the core is the checker, the extras bring the rest, a missing extra is a clean exit 2,
every import is declared, and CI runs the README's commands verbatim.

Missing extras are simulated in a fresh interpreter by ``sys.modules[name] = None`` (Python then raises
ModuleNotFoundError for that name, as when the package is not installed); .ci/run also checks the real
thing in an environment that has only the core installed.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys

import pytest
from conftest import EXAMPLES, ROOT

from netc.diagnostics import EXTRAS

CORE = {"yaml": "pyyaml", "lark": "lark", "jsonschema": "jsonschema"}  # module -> distribution
DISTRIBUTIONS = {"PIL": "pillow"}  # module -> distribution, where the names differ
OPTIONAL = {"onnxscript"}  # used when present, never required: torch's newer ONNX exporter, a fallback
ALL_EXTRA_MODULES = sorted(EXTRAS)


def _run_without(modules: list[str], code: str) -> subprocess.CompletedProcess:
    blocker = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    return subprocess.run([sys.executable, "-c", blocker + code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


CLI = "from netc.cli import main\nrc = main(sys.argv[1:])\n"


@pytest.mark.parametrize(("args", "blocked", "extra"), [
    (["train", "examples/digits_cnn.yaml"], ["torch"], "train"),
    (["train", "examples/digits_cnn.yaml"], ["numpy"], "train"),
    (["eval", "runs/none"], ["torch"], "train"),
    (["predict", "runs/none", "x.npy"], ["torch"], "train"),
    (["compile", "examples/digits_cnn.yaml", "--format", "torchscript", "-o", "m.pt"], ["torch"], "train"),
    pytest.param(["compile", "examples/digits_cnn.yaml", "--format", "onnx", "-o", "m.onnx"], ["onnx"], "onnx",
                 marks=pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                          reason="without torch this asks for [train] first")),
    (["lsp"], ["pygls", "lsprotocol"], "lsp"),
    (["tune", "examples/digits_cnn_tune.yaml", "--trials", "1"], ["optuna"], "tune"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else str(v))
def test_a_missing_extra_is_a_clean_exit_2_naming_it(args, blocked, extra, tmp_path):
    args = [str(tmp_path / a) if a in ("m.pt", "m.onnx", "x.npy") else a for a in args]
    p = _run_without(blocked, f"sys.argv[1:] = {args!r}\n{CLI}sys.exit(rc)\n")
    assert p.returncode == 2, p.stderr
    assert f"pip install 'netc[{extra}]'" in p.stderr and "needs the" in p.stderr
    assert "internal error" not in p.stderr and "Traceback" not in p.stderr
    message, hint = p.stderr.strip().splitlines()[-2:]  # one message, one hint (torch may warn before)
    assert message.startswith("netc: error[cli]: `netc ") and hint == f"  hint: pip install 'netc[{extra}]'"


def test_the_checker_needs_none_of_the_extras(tmp_path):
    code = (
        "from netc.cli import main\n"
        f"examples = {[str(e) for e in EXAMPLES]!r}\n"
        "assert main(['check', *examples]) == 0\n"
        "assert main(['summary', examples[0]]) == 0\n"
        f"assert main(['compile', examples[0], '-o', {str(tmp_path / 'm.py')!r}]) == 0\n"
        f"assert main(['schema', '-o', {str(tmp_path / 's.json')!r}]) == 0\n"
        "assert main(['ops']) == 0\n"
        f"assert main(['graph', examples[0], '-o', {str(tmp_path / 'g.mmd')!r}]) == 0\n"
        f"print(sorted(m for m in {ALL_EXTRA_MODULES!r} if sys.modules.get(m) is not None))\n"
    )
    p = _run_without(ALL_EXTRA_MODULES, code)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "[]"
    ast.parse((tmp_path / "m.py").read_text(encoding="utf-8"))  # the source compiles on this Python


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party module -> the netc files importing it (function-level imports included)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "netc").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "find_spec" and node.args
                  and isinstance(node.args[0], ast.Constant)):  # probed, then used through another package
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top != "netc" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_import_is_the_core_or_an_extra():
    imported = _third_party_imports()
    undeclared = {m: sorted(f) for m, f in imported.items() if m not in CORE and m not in EXTRAS and m not in OPTIONAL}
    assert not undeclared, f"imported but in no extra of pyproject.toml (add to diagnostics.EXTRAS): {undeclared}"
    unused = sorted(set(EXTRAS) - set(imported))
    assert not unused, f"declared in an extra but never imported: {unused}"


def test_pyproject_declares_what_netc_imports():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(reqs: list[str]) -> set[str]:
        return {re.match(r"[A-Za-z0-9_.\-]+(\[[^\]]*\])?", r).group().lower() for r in reqs}

    assert names(project["dependencies"]) == set(CORE.values())  # the checker and nothing else
    extras = {k: names(v) for k, v in project["optional-dependencies"].items()}
    for module, extra in EXTRAS.items():
        assert DISTRIBUTIONS.get(module, module).lower() in extras[extra], (module, extra)
    assert extras["all"] == {"netc[train,lsp,onnx,tune,parquet]"}


def _bash_blocks(text: str) -> list[list[str]]:
    return [[ln for ln in m.group(1).splitlines() if ln.strip()]
            for m in re.finditer(r"```bash\n(.*?)```", text, re.S)]


def test_ci_runs_the_readme_commands_verbatim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    quick = _bash_blocks(readme[readme.index("## Quick start"):readme.index("## A spec")])
    train, tests = quick[0], quick[1]
    assert train[-1].endswith('pip install -e ".[train]" && netc train examples/digits_cnn.yaml')
    assert tests[-1].endswith('pip install -e ".[all,test]" && python -m pytest')
    at = [ci.index(line) for line in tests]  # every line verbatim, in the README's order
    assert at == sorted(at)
    assert train[0] == tests[0]  # the same fresh environment for both
