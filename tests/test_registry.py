"""The op registry: built-in ops without an extra import, and pass facts that name real arguments."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

from netc.compiler.registry import REGISTRY


def test_registry_holds_the_built_in_ops_as_soon_as_it_is_imported():
    code = ("import sys\nfrom netc.compiler.registry import REGISTRY\n"
            "assert REGISTRY.get('Conv2D', plugins=False) is not None\n"
            "assert 'torch' not in sys.modules\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("name", sorted(REGISTRY.ops))
def test_pass_facts_name_declared_arguments(name):
    op = REGISTRY.ops[name]
    for arg in (op.dropout_arg, op.merge_width, op.seq_len_arg, op.id_range_arg):
        assert arg is None or op.arg(arg) is not None, f"{name} names an undeclared argument {arg!r}"
    assert op.window_pool in (None, "max", "avg")
    assert op.merge_width is None or op.channel_axis is not None  # merged outputs are sliced on the channels
    assert op.weight_out_axis is None or op.channel_axis is not None  # fold_batchnorm checks the channel axis
    fns = REGISTRY.ops["InplaceActivation"].arg("fn").choices
    assert op.inplace_fn is None or op.inplace_fn in fns
