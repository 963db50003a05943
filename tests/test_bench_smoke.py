"""The inference benches run end to end at tiny sizes (their equality checks are part of the run); no timing
is asserted: the numbers are theirs to print, the behaviour is this test's to check."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("torch")

from conftest import ROOT  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dense_conv_bench_checks_every_variant_and_prints_each_convolution(capsys):
    assert _bench("dense_conv").main(["--batches", "2", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "→" in line]
    assert len(rows) == 7  # ResNet-18's seven 3×3 convolution shapes
    assert "| 512→512, 2×2, stride 1 | 2 | yes |" in out and out.count("| yes |") == 1


def test_decode_bench_checks_the_cached_tokens_and_prints_both_decodings(capsys):
    assert _bench("decode").main(["--rounds", "1", "--sources", "4", "--beam-sources", "1"]) == 0
    out = capsys.readouterr().out
    for row in ("| numbers_seq2seq | greedy |", "| transformer_seq2seq | beam 3 (1 sources) |"):
        assert row in out


def test_token_ids_bench_checks_both_encodings_and_prints_each(capsys):
    assert _bench("token_ids").main(["--mb", "0.3", "--kinds", "char"]) == 0
    out = capsys.readouterr().out
    assert "| char | one call | 300,000 |" in out and "| char | piecewise (encode_ids) | 300,000 |" in out
