"""``netc graph`` (netc/compiler/diagram.py): every example and library spec draws, in every format."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from netc.compiler import diagram as dg
from netc.compiler.check import check_file
from netc.diagnostics import UsageError

SPECS = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("specs/*.yaml")])
DRAWN = [p for p in SPECS if check_file(p).graphs]  # specs/blocks.yaml holds blocks only


@pytest.mark.parametrize("path", DRAWN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_spec_draws_every_node_and_edge(path):
    d = dg.diagram(path.read_bytes(), str(path))
    mermaid, dot = dg.to_mermaid(d), dg.to_dot(d)
    nodes = sum(len(g.nodes) for g in d.program.graphs.values())
    edges = sum(len(n.inputs) for g in d.program.graphs.values() for n in g.nodes)
    assert mermaid.startswith("flowchart TD\n")
    assert len(re.findall(r'^\s*n\d+\["', mermaid, re.M)) == nodes
    assert len(re.findall(r"-->\|", mermaid)) == edges + sum(len(g.outputs) for g in d.program.graphs.values())
    assert mermaid.count("subgraph") == len(re.findall(r"^\s+end$", mermaid, re.M))
    assert dot.count("{") == dot.count("}") and dot.count(" -> ") == mermaid.count("-->|")


def test_blocks_are_clusters_with_their_call_and_shapes_are_on_the_edges():
    d = dg.diagram((ROOT / "examples/digits_resnet.yaml").read_bytes(), "digits_resnet.yaml")
    m = dg.to_mermaid(d)
    assert m.count('subgraph c') == 2 and 'subgraph c0["Res(32)"]' in m
    assert '["Conv2D(32, 3, padding=same)<br/>9,248 params"]' in m  # the block's parameter, resolved
    assert '-->|"(N, 32, 8, 8)"|' in m and '-->|"(N, 10)"|' in m


def test_several_models_draw_one_cluster_each():
    d = dg.diagram((ROOT / "examples/digits_gan.yaml").read_bytes(), "digits_gan.yaml")
    m = dg.to_mermaid(d)
    assert 'subgraph m0["generator"]' in m and 'subgraph m1["discriminator"]' in m


def test_user_text_cannot_break_out_of_a_label():
    d = dg.diagram((ROOT / "examples/digits_resnet.yaml").read_bytes(), "digits_resnet.yaml")
    evil = 'R("]\nend\nx-->y; \\" | <b>")'
    d.clusters = [(evil, ns) for _, ns in d.clusters]  # a block call's text, as written in a spec
    m, dot = dg.to_mermaid(d), dg.to_dot(d)
    assert all('"]' not in line or line.rstrip().endswith(('"]', '"/]', '"])')) for line in m.splitlines())
    assert "\nend\n" not in m and "<b>" not in m and '"]\nend' not in m
    assert 'label="R(\\"]' in dot and "\nend\n" not in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_svg_and_png_through_graphviz(tmp_path):
    for fmt, magic in (("svg", b"<?xml"), ("png", b"\x89PNG")):
        out = tmp_path / f"r.{fmt}"
        proc = subprocess.run([sys.executable, "-m", "netc", "graph", str(ROOT / "examples/digits_resnet.yaml"),
                               "-o", str(out)], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        assert out.read_bytes().startswith(magic)


def test_without_graphviz_svg_is_a_clear_usage_error(monkeypatch):
    monkeypatch.setattr(dg.shutil, "which", lambda name: None)
    d = dg.diagram((ROOT / "examples/digits_mlp.yaml").read_bytes(), "digits_mlp.yaml")
    with pytest.raises(UsageError) as e:
        dg.render(d, "svg")
    assert "Graphviz" in str(e.value) and "--format mermaid" in e.value.hint
    assert dg.render(d, "mermaid").startswith(b"flowchart")


def test_cli_markdown_output_is_fenced_and_png_needs_a_file(tmp_path):
    md = tmp_path / "net.md"
    run = [sys.executable, "-m", "netc", "graph", str(ROOT / "examples/digits_mlp.yaml")]
    assert subprocess.run([*run, "-o", str(md)], cwd=ROOT).returncode == 0
    assert md.read_text().startswith("```mermaid\nflowchart TD\n")
    proc = subprocess.run([*run, "--format", "png"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "-o FILE.png" in proc.stderr
    proc = subprocess.run([*run, "--format", "dot"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith("digraph netc {")


def test_the_readme_shows_the_current_diagram():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    d = dg.diagram((ROOT / "examples/digits_resnet.yaml").read_bytes(), "examples/digits_resnet.yaml")
    assert f"```mermaid\n{dg.to_mermaid(d)}```" in readme, "README's diagram is stale: netc graph examples/digits_resnet.yaml"
