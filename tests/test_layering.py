"""The front end never imports torch: editors re-check specs in milliseconds."""

from __future__ import annotations

import subprocess
import sys

from conftest import EXAMPLES, ROOT


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
