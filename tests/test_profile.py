"""netc profile: per-layer table, totals of the -O2 variants and peers, the tuner's choice."""

from __future__ import annotations

import re
import shlex

import pytest

pytest.importorskip("torch")

from conftest import ROOT

from netc.cli import main

DOC = ROOT / "docs" / "inference.md"


def test_profile_spec_prints_layers_totals_and_choice(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("NETC_CACHE_DIR", str(tmp_path))
    assert main(["profile", "specs/lenet5.yaml", "--batch", "2", "--rounds", "3"]) == 0
    out = capsys.readouterr().out
    assert "convpool_conv2d" in out and "Conv2d" in out and "%" in out and "total" in out
    for row in ("unoptimised", "O2 without channels_last", "peer: torch.fx fuse"):
        assert row in out
    assert "netc -O2 as tuned keeps:" in out and "(measured now)" in out
    assert list(tmp_path.glob("*.json"))  # the decision went to the cache
    assert main(["profile", "specs/lenet5.yaml", "--batch", "2", "--rounds", "3"]) == 0
    assert "(from the decision cache)" in capsys.readouterr().out


def test_the_documented_profile_command_runs_and_prints_what_the_doc_shows(capsys, monkeypatch, tmp_path):
    """docs/inference.md's `$ netc profile ...` transcript: the same command (fewer rounds) prints the same rows."""
    monkeypatch.setenv("NETC_CACHE_DIR", str(tmp_path))
    text = DOC.read_text(encoding="utf-8")
    commands = re.findall(r"^\$ netc (profile .*)$", text, re.M)
    assert commands
    for line in commands:
        assert main([*shlex.split(line), "--rounds", "3"]) == 0
        out = capsys.readouterr().out
        for row in ("stem_maxpool", "whole forward, time / unoptimised", "prepacked dense", "peer: torch.fx fuse",
                    "netc -O2 as tuned keeps:"):
            assert row in out and row in text
        if "keeps: prepacked dense" in out:  # the tuner's choice depends on the machine; the names do not
            assert "convolutions run as matrix products: stages_stage_2_resdown_body_convbn_conv2d" in out
