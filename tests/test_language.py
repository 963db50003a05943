"""Text sources, tokenizers, the language-model and seq2seq objectives, generation with a key/value cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tokenizers")

import netc  # noqa: E402
from netc.backend.build import build_model  # noqa: E402
from netc.compiler.frontend import front_end  # noqa: E402
from netc.diagnostics import DataError, SpecError, UsageError  # noqa: E402
from netc.runner.config import TrainConfig  # noqa: E402
from netc.runner.generate import Cached, sample  # noqa: E402
from netc.runner.text import language_data  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]

PRIMITIVES = """
netc: 1
name: tiny_gpt
input: {shape: [16], dtype: int64}
blocks:
  Block(d):
    attention: LayerNorm → MultiHeadAttention(2, causal=true)
    mixed: Add(in, attention)
    feedforward: LayerNorm → Dense(32) → GELU → Dense(d)
    out: Add(mixed, feedforward)
model: Embedding(40, 16) → PositionalEncoding(max_len=16, learned=true) → Block(16) * 2 → LayerNorm → Dense(40)
"""
OP = """
netc: 1
name: tiny_op
input: {shape: [16], dtype: int64}
model: >-
  Embedding(40, 16) → PositionalEncoding(max_len=16)
  → TransformerEncoder(2, 2, ff=32, dropout=0.0, causal=true, norm_first=true) → Dense(40)
"""


@pytest.mark.parametrize("text", [PRIMITIVES, OP], ids=["primitives", "op"])
def test_cached_steps_give_the_full_forward_logits(text):
    torch.manual_seed(0)
    model = build_model(front_end(text).program, None, train=True).eval()
    run = Cached(model)
    assert run.supports, run.why_not
    ids = torch.randint(4, 40, (2, 16))
    full = model(ids)
    parts = [run.step(ids[:, :5])] + [run.step(ids[:, t:t + 1]) for t in range(5, 16)]
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)


def test_sampling_is_seeded_and_the_cache_changes_no_token():
    torch.manual_seed(0)
    model = build_model(front_end(PRIMITIVES).program, None, train=True).eval()
    a = sample(model, [5, 6, 7], 13, 16, temperature=1.0, top_k=10, seed=3)  # within the 16-position window
    assert a == sample(model, [5, 6, 7], 13, 16, temperature=1.0, top_k=10, seed=3, cached=False)
    assert len(sample(model, [5, 6, 7], 40, 16, seed=3)) == 40  # past it the cache restarts from its last half


SEQ2SEQ_PARAMS = {"src_vocab": 30, "tgt_vocab": 29, "src_len": 9, "tgt_len": 7, "d_model": 16, "heads": 2,
                  "ff": 32}
DECODER_LAYER = """
netc: 1
name: decoder_layer
input: {src: {shape: [9], dtype: int64}, tgt: {shape: [7], dtype: int64}}
model:
  memory: src → Embedding(30, 16) → PositionalEncoding(max_len=16)
  x: tgt → Embedding(30, 16) → PositionalEncoding(max_len=16)
  out: x → TransformerDecoderLayer(2, memory, ff=32, norm_first=true, memory_ids=src) → Dense(30)
"""


def _seq2seq(name: str):
    """A seq2seq model in eval mode, random weights: the ops (post-norm, 2 layers, padded source), their
    primitives (cross-attention as MultiHeadAttention(kv=memory, ids=src)), the numbers example, one
    pre-norm decoder layer."""
    from netc.compiler.check import check_file, check_text

    torch.manual_seed(0)
    if name == "pre-norm layer":
        graph = check_text(DECODER_LAYER).main
    elif name == "numbers example":
        graph = check_file(ROOT / "examples" / "numbers_seq2seq.yaml",
                           params={"vocab": 30, "src_len": 9, "tgt_len": 7, "d": 16, "heads": 2, "ff": 32}).main
    else:
        params = SEQ2SEQ_PARAMS | ({"layers": 2} if name == "ops" else {})
        graph = check_file(ROOT / "specs" / f"transformer_seq2seq{'' if name == 'ops' else '_primitives'}.yaml",
                           params=params).main
    return netc.build(graph, train=False).eval()


SEQ2SEQ_MODELS = ["ops", "primitives", "numbers example", "pre-norm layer"]


@pytest.mark.parametrize("name", SEQ2SEQ_MODELS)
def test_cached_seq2seq_steps_give_the_full_forward_logits(name):
    model = _seq2seq(name)
    src, tgt = torch.randint(1, 29, (3, 9)), torch.randint(1, 29, (3, 7))
    src[1, 5:] = 0  # a padded source: the cached cross-attention leaves it out like the full pass
    run = Cached(model, stream=model.netc_graph.inputs[1].name)
    assert run.supports, run.why_not
    with torch.no_grad():
        full = model(src, tgt)
        run.reset({model.netc_graph.inputs[0].name: src})
        parts = [run.step(tgt[:, :2])] + [run.step(tgt[:, t:t + 1]) for t in range(2, 5)]
        assert torch.allclose(torch.cat(parts, 1), full[:, :5], atol=1e-5)
        # beam search's reordering: rows 2, 0, 0 of every cache (and of the source's fixed nodes) go on
        rows = torch.tensor([2, 0, 0])
        run.reorder(rows)
        assert torch.allclose(run.step(tgt[rows, 5:7]), model(src[rows], tgt[rows])[:, 5:7], atol=1e-5)


@pytest.mark.parametrize("name", ["ops", "primitives"])
def test_cached_greedy_and_beam_decode_the_tokens_of_full_passes(name):
    from netc.runner.seq2seq import beam, greedy

    model = _seq2seq(name)
    src = torch.randint(1, 29, (6, 9))
    src[2, 4:] = 0
    assert greedy(model, src, 7, batch=4) == greedy(model, src, 7, batch=4, cached=False)
    assert beam(model, src[:3], 7, 3) == beam(model, src[:3], 7, 3, cached=False)


def test_causal_cross_attention_is_left_to_full_passes():
    """MultiHeadAttention(kv=memory, causal=true) masks memory positions by the query's position: not a fixed
    memory the cache can hold, so decoding runs full passes (same tokens)."""
    from netc.compiler.check import check_text
    from netc.runner.seq2seq import greedy

    text = DECODER_LAYER.replace("TransformerDecoderLayer(2, memory, ff=32, norm_first=true, memory_ids=src)",
                                 "MultiHeadAttention(2, kv=memory, causal=true)").replace("[9]", "[7]")
    model = netc.build(check_text(text).main, train=False).eval()
    run = Cached(model, stream="tgt")
    assert not run.supports and "not plain cross-attention" in run.why_not
    src = torch.randint(1, 29, (3, 7))
    assert greedy(model, src, 7) == greedy(model, src, 7, cached=False)


def test_a_decoder_the_cache_cannot_step_is_named_and_decodes_without_it():
    from netc.compiler.check import check_text
    from netc.runner.seq2seq import greedy

    text = DECODER_LAYER.replace("→ TransformerDecoderLayer", "→ GRU(16, return_sequences=true) → TransformerDecoderLayer")
    model = netc.build(check_text(text).main, train=False).eval()
    run = Cached(model, stream="tgt")
    assert not run.supports and "GRU" in run.why_not
    assert len(greedy(model, torch.randint(1, 29, (2, 9)), 7)) == 2


def test_language_model_over_non_causal_attention_is_refused_at_the_op():
    text = PRIMITIVES.replace("MultiHeadAttention(2, causal=true)", "MultiHeadAttention(2)") + \
        "train: {data: pydoc}\n"
    with pytest.raises(SpecError) as e:
        front_end(text, "gpt.yaml")
    d = e.value.diagnostics[0]
    assert "can see future tokens" in d.message and d.span.line == 7
    front_end(PRIMITIVES + "train: {data: pydoc}\n")  # causal: fine


def test_corpus_splits_by_position_and_the_tokenizer_sees_training_text_only(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("abcab " * 200 + "Z" * 300)  # 'Z' occurs only in the last (test) part
    cfg = TrainConfig.from_dict({"data": {"source": "text", "path": str(corpus)}, "split": {"val": 0.1, "test": 0.2}})
    d = language_data(cfg, [("x", (8,), "int64")])
    assert "Z" not in d.tokenizer.tok.get_vocab()
    assert d.train.shape[1] == 9 and torch.equal(d.train[0, 8], d.train[1, 0])  # blocks overlap by one token
    assert (d.test == 1).all()  # every test token is [UNK]: nothing of the test text shaped the vocabulary


def test_train_then_generate_from_the_command_line(tmp_path, capsys):
    from netc.cli import main

    spec = tmp_path / "gpt.yaml"
    spec.write_text(PRIMITIVES.replace("Embedding(40, 16)", "Embedding(128, 16)").replace("Dense(40)", "Dense(128)")
                    + "train: {data: {source: pydoc, limit: 6000}, epochs: 1, batch_size: 16, plots: false}\n")
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run)]) == 0
    res = json.loads((run / "results.json").read_text())
    assert {"perplexity", "bits_per_char", "unigram_perplexity", "bigram_perplexity"} <= set(res["test"])
    assert (run / "tokenizer.json").is_file()
    capsys.readouterr()
    assert main(["predict", str(run), "--prompt", "The ", "-n", "30", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The ") and len(out) > 10


def test_seq2seq_trains_and_decodes_greedy_and_beam(tmp_path, capsys):
    from netc.cli import main

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"text": w, "target": str(i)}) + "\n"
                             for i, w in enumerate(["zero", "one", "two", "three", "four", "five"] * 20)))
    spec = (ROOT / "examples" / "numbers_seq2seq.yaml").read_text().split("train:")[0]
    spec += (f"train: {{data: {{source: pairs, path: {pairs}}}, epochs: 2, batch_size: 16, plots: false,"
             " split: {val: 0.1, test: 0.2}}\n")
    f = tmp_path / "s.yaml"
    f.write_text(spec)
    run = tmp_path / "run"
    assert main(["train", str(f), "--out", str(run)]) == 0
    assert "exact_match" in json.loads((run / "results.json").read_text())["test"]
    capsys.readouterr()
    for beam in ("1", "3"):
        assert main(["predict", str(run), "--prompt", "two", "--beam", beam]) == 0
        row = json.loads(capsys.readouterr().out)
        assert row["source"] == "two" and isinstance(row["prediction"], str)


def test_sequence_outputs_are_jsonl_or_npy_never_csv(tmp_path, capsys):
    import numpy as np

    from netc.runner.cli import _predict_sequences

    out = torch.randn(3, 5, 7)
    assert _predict_sequences(out, "classification", None) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [len(r["pred"]) for r in rows] == [5, 5, 5]
    _predict_sequences(out, "classification", str(tmp_path / "p.npy"))
    assert np.load(tmp_path / "p.npy").shape == (3, 5)
    with pytest.raises(UsageError):
        _predict_sequences(out, "classification", str(tmp_path / "p.csv"))


@pytest.mark.parametrize("kind", ["char", "bpe", "word"])
@pytest.mark.parametrize("lowercase", [False, True])
def test_piecewise_encoding_gives_the_ids_of_one_call(kind, lowercase):
    """encode_ids cuts the text into pieces (here of ~300 characters: dozens of cuts) at single spaces between
    words; every tokenizer kind gives the ids of one encode over the whole text."""
    import pydoc_data.topics

    from netc.runner.text import TextTokenizer

    text = "".join(pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)[:6])
    text += "  two  spaces, tabs\tand\n\nnew  lines; ünïcödé wörds 12 34 x" * 20 + " ends with a space "
    tok = TextTokenizer.train(kind, text.split("\n\n"), 400, lowercase)
    whole = tok.encode(text)
    pieces = tok.encode_ids(text, chunk=300)
    assert pieces.dtype.name == "int64" and pieces.tolist() == whole and len(text) // 300 > 20
    assert tok.encode_ids("").tolist() == [] and tok.encode_ids("nospaces" * 100, chunk=10).tolist() == \
        tok.encode("nospaces" * 100)


def test_a_corpus_larger_than_memory_is_refused_before_tokenizing(tmp_path, monkeypatch):
    from netc.runner import stream
    from netc.runner import text as text_module

    corpus = tmp_path / "c.txt"
    corpus.write_text("some words here. " * 2000)
    monkeypatch.setattr(stream, "available_memory", lambda: 1000)
    called = []
    monkeypatch.setattr(text_module.TextTokenizer, "encode_ids", lambda *a, **k: called.append(1))
    cfg = TrainConfig.from_dict({"data": {"source": "text", "path": str(corpus), "tokenizer": "char"}})
    with pytest.raises(DataError, match=r"c.txt: 34,000 characters need about .* but .* is available") as e:
        language_data(cfg, [("x", (16,), "int64")])
    assert "train.data.limit" in e.value.hint and not called


def test_tokenizers_round_trip_and_save(tmp_path):
    from netc.runner.text import UNK, TextTokenizer

    texts = ["The quick brown fox jumps over the lazy dog.", "def f(x): return x ** 2  # ünïcode"]
    bpe = TextTokenizer.train("bpe", texts, 300)
    unseen = "Zebras \u00e9 quux"
    assert UNK not in bpe.encode(unseen) and bpe.decode(bpe.encode(unseen)) == unseen  # bytes: nothing unknown
    char = TextTokenizer.train("char", texts, 10)
    assert char.decode(char.encode(texts[1])) == texts[1] and char.vocab_size > 10  # every character kept
    word = TextTokenizer.train("word", texts, 100)
    assert word.encode("quick zebra")[1] == UNK
    word.save(tmp_path / "tokenizer.json")
    assert TextTokenizer.load(tmp_path / "tokenizer.json").encode("quick fox") == word.encode("quick fox")


def test_a_lowercase_tokenizer_folds_case_and_keeps_doing_so_when_loaded(tmp_path):
    from netc.runner.text import UNK, TextTokenizer

    texts = ["The Quick brown fox", "the quick Brown FOX"]
    cased, folded = TextTokenizer.train("word", texts, 100), TextTokenizer.train("word", texts, 100, lowercase=True)
    assert folded.vocab_size < cased.vocab_size  # The/the, Quick/quick, ... are one word each
    folded.save(tmp_path / "tokenizer.json")
    loaded = TextTokenizer.load(tmp_path / "tokenizer.json")
    assert loaded.encode("THE QUICK FOX") == loaded.encode("the quick fox") and UNK not in loaded.encode("QUICK")


def test_labelled_texts_from_csv_split_before_the_tokenizer(tmp_path):
    from netc.runner.text import UNK, classification_data

    rows = ["text,label"] + [f"apples and pears {i},fruit" for i in range(20)] + \
        [f"trains and buses {i},transport" for i in range(20)]
    f = tmp_path / "t.csv"
    f.write_text("\n".join(rows) + "\n")
    cfg = TrainConfig.from_dict({"data": {"source": "text_labels", "path": str(f), "tokenizer": "word"},
                                 "split": {"val": 0.1, "test": 0.25}})
    ds, tok = classification_data(cfg, [("x", (6,), "int64")])
    assert ds.class_names == ["fruit", "transport"] and ds.train.xs[0].shape[1:] == (6,)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 40
    test_numbers = {str(i) for i in range(20)} - set(tok.tok.get_vocab())
    assert test_numbers  # the numbers seen only in val/test rows are not in the vocabulary
    assert (ds.test.xs[0] == UNK).any()


def test_numbers_source_spells_with_num2words():
    pytest.importorskip("num2words")
    from netc.runner.textread import numbers

    raw = numbers(TrainConfig.from_dict({"data": "numbers"}).data, [])
    assert raw.x[206] == "two hundred and six" and raw.y[206] == "206" and len(raw.x) == 10_000


def test_a_vocabulary_wider_than_the_embedding_is_refused_before_training(tmp_path, capsys):
    from netc.cli import main

    spec = tmp_path / "gpt.yaml"
    spec.write_text(PRIMITIVES.replace("Embedding(40, 16)", "Embedding(20, 16)")
                    + "train: {data: {source: pydoc, limit: 3000}, epochs: 1}\n")
    assert main(["train", str(spec), "--out", str(tmp_path / "r")]) != 0
    err = capsys.readouterr().err
    assert "holds ids below 20" in err and "Traceback" not in err
    assert not (tmp_path / "r" / "metrics.jsonl").exists()
