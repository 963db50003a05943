"""Text through a real tokenizer: Hugging Face ``tokenizers`` trained on the training split, saved with the run.

Three kinds (``train.data.tokenizer``): ``char`` (one token per character), ``bpe`` (byte-level BPE, any
text encodes without unknowns) and ``word`` (whitespace/punctuation words). Every vocabulary starts with
the same special tokens: ``[PAD]`` 0, ``[UNK]`` 1, ``[BOS]`` 2, ``[EOS]`` 3. The tokenizer is trained on
the training split only (val and test text never shapes the vocabulary) and written to the run
directory as ``tokenizer.json``; eval and predict load that file.

The data sets built here:
- language modelling: the corpus split by position (train first, then val, then test: no text is in
  two splits), each split's tokens cut into blocks of ``block + 1`` (input and shifted target);
- classification: one text per sample, padded or cut to the declared length, labels as class ids;
- sequence-to-sequence: source texts padded to the first input's length, targets as
  ``[BOS] ids [EOS]`` padded to the second input's length + 1 (teacher forcing shifts them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netc.diagnostics import DataError, MissingExtra
from netc.runner import datafiles
from netc.runner.config import TrainConfig
from netc.runner.data import Dataset, Split, _count, _to_device
from netc.runner.sources import SOURCES, Inputs
from netc.runner.textread import TextRaw

SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
PAD, UNK, BOS, EOS = range(4)
FILE = "tokenizer.json"  # in the run directory


def _tokenizers():
    try:
        import tokenizers
    except ModuleNotFoundError as e:
        raise MissingExtra.of("netc train", e) or e from None
    return tokenizers


CHUNK_CHARS = 1 << 20  # characters per tokenizer call (encode_ids): bounds its per-token bookkeeping
_GAP = re.compile(r"(?<=\S) (?=\S)")  # a single space between two non-space characters


def _gap_after(text: str, at: int) -> int:
    """The first word gap (``_GAP``) at or after ``at`` — a cut there changes no token — else the text's end."""
    m = _GAP.search(text, at)
    return m.start() if m else len(text)


class TextTokenizer:
    """A trained ``tokenizers.Tokenizer`` with netc's special tokens: encode, decode, save, load."""

    def __init__(self, tok: Any):
        self.tok = tok

    @classmethod
    def train(cls, kind: str, texts: list[str], vocab_size: int, lowercase: bool = False) -> TextTokenizer:
        """Train a ``kind`` tokenizer (char, bpe, word) on ``texts`` (the training split)."""
        tk = _tokenizers()
        from tokenizers import (
            Regex,
            decoders,
            models,
            normalizers,
            pre_tokenizers,
            trainers,
        )

        if kind == "bpe":
            tok = tk.Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            trainer: Any = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                               show_progress=False)
        else:
            tok = tk.Tokenizer(models.WordLevel(unk_token="[UNK]"))
            if kind == "char":
                tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
                tok.decoder = decoders.Fuse()  # characters join without separators
                vocab_size = 1 << 30  # every character of the training split
            else:
                tok.pre_tokenizer = pre_tokenizers.Whitespace()
            trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS),
                                                show_progress=False)
        if lowercase:
            tok.normalizer = normalizers.Lowercase()  # saved in tokenizer.json: predict lowercases too
        tok.train_from_iterator(texts, trainer)
        return cls(tok)

    @classmethod
    def load(cls, path: str | Path) -> TextTokenizer:
        """The tokenizer a run saved (``RUN/tokenizer.json``)."""
        tk = _tokenizers()
        p = Path(path)
        if not p.is_file():
            raise DataError(f"{p}: no tokenizer saved with this run",
                            hint="the run was not trained on a text source, or the file was removed")
        try:
            return cls(tk.Tokenizer.from_file(str(p)))
        except Exception as e:  # noqa: BLE001 - the library raises plain Exception on a bad file
            raise DataError(f"{p}: not a tokenizer file: {e}", hint="retrain the run") from None

    def save(self, path: str | Path) -> None:
        """Write ``tokenizer.json`` atomically."""
        from netc.runner.checkpoint import atomic_write

        atomic_write(Path(path), self.tok.to_str())

    @property
    def vocab_size(self) -> int:
        return int(self.tok.get_vocab_size())

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def encode_ids(self, text: str, chunk: int = CHUNK_CHARS) -> np.ndarray:
        """``encode(text)`` as an int64 array, a piece of about ``chunk`` characters at a time.

        ``tokenizers`` keeps hundreds of bytes per token beside the id (offsets, token strings, masks):
        one call on a 20 MB text peaked at 7.7 GB. Pieces end inside a word gap — a single space between
        two non-space characters — where no tokenizer here joins across (characters, whitespace-split
        words, byte-level BPE whose pre-tokens start at that space), so the ids equal one call's
        (tests/test_language.py compares them for each kind).
        """
        out, start, n = [], 0, len(text)
        while start < n:
            end = n if n - start <= chunk else _gap_after(text, start + chunk)
            out.append(np.asarray(self.tok.encode(text[start:end], add_special_tokens=False).ids, dtype=np.int64))
            start = end
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode([int(i) for i in ids], skip_special_tokens=True)


def tokenizer_for(cfg: TrainConfig, train_texts: list[str], saved: Path | None) -> TextTokenizer:
    """The run's saved tokenizer when there is one (resume, eval), else one trained on ``train_texts``."""
    if saved is not None and saved.is_file():
        return TextTokenizer.load(saved)
    return TextTokenizer.train(cfg.data.tokenizer, train_texts, cfg.data.vocab_size, cfg.data.lowercase)


def check_ids(model: torch.nn.Module, tok: TextTokenizer) -> None:
    """Every layer reading token ids (Embedding) must hold the whole trained vocabulary."""
    from netc.compiler.train.causal import id_readers

    graph = getattr(model, "netc_graph", None)
    for node, bound in id_readers(graph) if graph is not None else []:
        if tok.vocab_size > bound:
            raise DataError(f"the tokenizer trained on this data has {tok.vocab_size} tokens but {node.op} "
                            f"'{node.name}' holds ids below {bound}",
                            hint=f"widen {node.op} (and the output Dense) to {tok.vocab_size} or more"
                                 + ("" if tok.tok.get_vocab().get("[UNK]") is None else
                                    ", or lower train.data.vocab_size (bpe, word)"))


def _read(cfg: TrainConfig, inputs: Inputs) -> TextRaw:
    name = cfg.data.source or "pydoc"
    return SOURCES[name].read(cfg.data, inputs)


def _length(inputs: Inputs, k: int, what: str) -> int:
    name, shape, dtype = inputs[k]
    if dtype != "int64" or len(shape) != 1 or not isinstance(shape[0], int):
        raise DataError(f"input '{name}' is declared as {tuple(shape)} {dtype}; {what} needs token ids of a fixed "
                        "length", hint=f"declare it like input: {{{name}: {{shape: [64], dtype: int64}}}}")
    return shape[0]


# ---------------------------------------------------------------- language modelling

@dataclass
class LMData:
    """Token blocks of each split (block + 1 ids: input and shifted target) and characters per token."""

    train: torch.Tensor
    val: torch.Tensor | None
    test: torch.Tensor | None
    chars_per_token: dict[str, float]
    tokenizer: TextTokenizer
    block: int
    train_ids: np.ndarray  # the whole training split's ids (n-gram baselines)
    test_ids: np.ndarray | None


BYTES_PER_CHAR = 32  # a corpus in memory, per character at worst (a token per character): int64 ids, their
# blocks, the n-gram baselines' copy and the text itself; plus one piece's tokenizer bookkeeping (CHUNK_CHARS)


def _check_memory(chars: int, origin: str) -> None:
    """Refuse a corpus whose ids would not fit in the memory available now, before tokenizing it."""
    from netc.runner import stream

    need = BYTES_PER_CHAR * chars + 400 * CHUNK_CHARS
    free = stream.available_memory()
    if free is not None and need > free:
        size = datafiles.size_text
        raise DataError(f"{origin}: {chars:,} characters need about {size(need)} in memory as token ids and "
                        f"blocks, but {size(free)} is available",
                        hint="train on part of it with train.data.limit (characters), or on a machine with more memory")


def _blocks(ids: np.ndarray, block: int, name: str, origin: str) -> np.ndarray:
    a = np.asarray(ids, dtype=np.int64)
    n = (len(a) - 1) // block
    if n < 1:
        raise DataError(f"{origin}: the {name} split has {len(a)} tokens, fewer than one block of {block} + 1",
                        hint="use more text, a smaller block, or a larger split fraction")
    starts = np.arange(n) * block  # consecutive blocks share one token: the last target is the next input
    return a[starts[:, None] + np.arange(block + 1)]


def language_data(cfg: TrainConfig, inputs: Inputs, device: torch.device | str = "cpu",
                  saved: Path | None = None) -> LMData:
    """The corpus split by position (train, val, test), tokenized, cut into blocks, on the device."""
    if len(inputs) != 1:
        raise DataError(f"a language model reads one sequence of token ids, the model declares {len(inputs)} inputs",
                        hint="declare one input, e.g. input: {shape: [64], dtype: int64}")
    raw = _read(cfg, inputs)
    corpus: str = raw.x
    if cfg.data.limit is not None:
        corpus = corpus[:cfg.data.limit]
    block = cfg.data.block or _length(inputs, 0, "a language model")
    n = len(corpus)
    _check_memory(n, raw.origin)  # before the tokenizer is trained or any id is made
    n_test, n_val = _count(n, cfg.split.test, "test", raw.origin), _count(n, cfg.split.val, "val", raw.origin)
    parts = {"train": corpus[:n - n_val - n_test], "val": corpus[n - n_val - n_test:n - n_test],
             "test": corpus[n - n_test:]}
    # the tokenizer sees the training text only; paragraphs as the unit (BPE merges never cross them)
    tok = tokenizer_for(cfg, [p for p in parts["train"].split("\n\n") if p], saved)
    ids = {k: tok.encode_ids(v) for k, v in parts.items() if v}
    cpt = {k: len(parts[k]) / max(len(v), 1) for k, v in ids.items()}
    blocks = {k: torch.from_numpy(_blocks(v, block, k, raw.origin)).to(device) for k, v in ids.items()}
    return LMData(blocks["train"], blocks.get("val"), blocks.get("test"), cpt, tok, block, ids["train"],
                  ids.get("test"))


def ngram_perplexity(train: np.ndarray, test: np.ndarray, vocab: int, order: int) -> float:
    """Perplexity on ``test`` of an add-one-smoothed unigram (order 1) or bigram (order 2) model of ``train``."""
    if order == 1:
        counts = np.bincount(train, minlength=vocab).astype(np.float64) + 1.0
        logp = np.log(counts / counts.sum())
        return float(np.exp(-logp[test].mean()))
    pair = np.bincount(train[:-1] * vocab + train[1:], minlength=vocab * vocab).astype(np.float64)
    ctx = np.bincount(train[:-1], minlength=vocab).astype(np.float64)
    cnt = pair[test[:-1] * vocab + test[1:]]
    logp = np.log((cnt + 1.0) / (ctx[test[:-1]] + vocab))
    return float(np.exp(-logp.mean()))


# ---------------------------------------------------------------- classification and pairs

def _split_ids(n: int, cfg: TrainConfig, origin: str) -> dict[str, np.ndarray]:
    perm = np.random.default_rng(cfg.split.seed).permutation(n)
    n_test, n_val = _count(n, cfg.split.test, "test", origin), _count(n, cfg.split.val, "val", origin)
    return {"test": perm[:n_test], "val": perm[n_test:n_test + n_val], "train": perm[n_test + n_val:]}


def _pad(seqs: list[list[int]], length: int) -> np.ndarray:
    out = np.full((len(seqs), length), PAD, dtype=np.int64)
    for i, s in enumerate(seqs):
        s = s[:length]
        out[i, :len(s)] = s
    return out


def classification_data(cfg: TrainConfig, inputs: Inputs, device: torch.device | str = "cpu",
                        saved: Path | None = None) -> tuple[Dataset, TextTokenizer]:
    """Texts and labels: a seeded split, a tokenizer trained on the training texts, ids padded or cut."""
    if len(inputs) != 1:
        raise DataError(f"a text classifier reads one sequence of token ids, the model declares {len(inputs)} "
                        "inputs", hint="declare one input, e.g. input: {shape: [128], dtype: int64}")
    raw = _read(cfg, inputs)
    texts, labels = list(raw.x), list(raw.y)
    if cfg.data.limit is not None:
        texts, labels = texts[:cfg.data.limit], labels[:cfg.data.limit]
    length = _length(inputs, 0, "a text classifier")
    names = raw.class_names or sorted(set(labels))
    index = {c: i for i, c in enumerate(names)}
    y = np.asarray([index[v] for v in labels], dtype=np.int64)
    parts = _split_ids(len(texts), cfg, raw.origin)
    tok = tokenizer_for(cfg, [texts[i] for i in parts["train"]], saved)
    x = _pad(tok.encode_batch(texts), length)

    def split(k: str) -> Split | None:
        rows = parts[k]
        return Split((torch.from_numpy(x[rows]),), torch.from_numpy(y[rows])) if len(rows) else None

    ds = Dataset(train=split("train"), val=split("val"), test=split("test"), task="classification",  # type: ignore[arg-type]
                 num_classes=len(names), class_names=names,
                 input_norm=[{"method": "none", "shift": 0.0, "scale": 1.0}])
    ds.source, ds.origin = cfg.data.source or "", raw.origin
    return _to_device(ds, device), tok


@dataclass
class PairData:
    """Sequence-to-sequence splits: source ids (n, S) and targets ``[BOS] ids [EOS]`` padded (n, T + 1)."""

    src: dict[str, torch.Tensor]
    tgt: dict[str, torch.Tensor]
    tokenizer: TextTokenizer
    targets: dict[str, list[str]]  # the target texts (exact match compares decodings with these)


def pair_data(cfg: TrainConfig, inputs: Inputs, device: torch.device | str = "cpu",
              saved: Path | None = None) -> PairData:
    """Source/target pairs: a seeded split, one tokenizer trained on both sides of the training pairs."""
    if len(inputs) != 2:
        raise DataError(f"a sequence-to-sequence model reads a source and a target prefix, the model declares "
                        f"{len(inputs)} input(s)", hint="declare input: {src: {shape: [48], dtype: int64}, "
                                                        "tgt: {shape: [8], dtype: int64}}")
    raw = _read(cfg, inputs)
    srcs, tgts = list(raw.x), list(raw.y)
    if cfg.data.limit is not None:
        srcs, tgts = srcs[:cfg.data.limit], tgts[:cfg.data.limit]
    s_len, t_len = _length(inputs, 0, "the source"), _length(inputs, 1, "the target")
    parts = _split_ids(len(srcs), cfg, raw.origin)
    tok = tokenizer_for(cfg, [srcs[i] for i in parts["train"]] + [tgts[i] for i in parts["train"]], saved)
    s_ids, t_ids = tok.encode_batch(srcs), tok.encode_batch(tgts)
    for what, ids, room, name in (("source", s_ids, s_len, inputs[0][0]), ("target", t_ids, t_len - 1, inputs[1][0])):
        longest = max(len(i) for i in ids)
        if longest > room:
            raise DataError(f"{raw.origin}: the longest {what} text has {longest} tokens but input '{name}' holds "
                            f"{room}{' (after [BOS] ... [EOS])' if what == 'target' else ''}",
                            hint=f"declare '{name}' with length {longest + (1 if what == 'target' else 0)} or more")
    src = _pad(s_ids, s_len)
    tgt = _pad([[BOS, *i, EOS] for i in t_ids], t_len + 1)
    out_src, out_tgt, texts = {}, {}, {}
    for k, rows in parts.items():
        if len(rows):
            out_src[k] = torch.from_numpy(src[rows]).to(device)
            out_tgt[k] = torch.from_numpy(tgt[rows]).to(device)
            texts[k] = [tgts[i] for i in rows]
    return PairData(out_src, out_tgt, tok, texts)
