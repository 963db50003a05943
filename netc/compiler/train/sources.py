"""The names of the data sources ``train.data`` can read, and what each one needs.

``train.data`` is validated against ``SOURCES`` (a file source needs a path, an
embedded one takes none, only series take a window); the runner attaches each
source's reader (``netc.runner.sources``). No numpy here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Source:
    """A named data source: what it is, what it needs, (in the runner) how to read it."""

    name: str
    doc: str
    read: Callable[..., Any] | None = field(default=None, repr=False)  # attached by netc.runner.sources
    task: str = "classification"  # classification | regression | any (decided by the loss / targets) | language | seq2seq
    needs_path: bool = False
    series: bool = False  # 1-D series cut into windows, split chronologically
    normalize: str = "standard"  # default of train.normalize
    example: str = ""  # example path for hints
    text: bool = False  # text through a tokenizer trained on the training split (netc.runner.text)
    layout: str = ""  # the files it reads, for docs/training.md
    classes: int | None = None  # number of classes when fixed by the data set (static loss/head checks)
    sample: tuple[int, ...] | None = None  # the shape of one sample when fixed by the data set (static input checks)
    streams: bool = False  # can be read on demand (train.data.stream) instead of whole into memory


SOURCES: dict[str, Source] = {s.name: s for s in [
    Source("digits", "8x8 handwritten digits from scikit-learn (1797 samples, 10 classes, embedded)",
           layout="embedded in the package (netc/data/digits.npz): 1797 images (1, 8, 8) of pixel counts "
                  "0-16, class ids 0-9", classes=10, sample=(1, 8, 8)),
    Source("sunspots", "yearly sunspot activity 1700-2008 from statsmodels (forecasting, embedded)",
           task="regression", series=True,
           layout="embedded in the package (netc/data/sunspots.npz): 309 yearly values, cut into windows "
                  "of `window` steps, each predicting the next `horizon` values"),
    Source("co2", "weekly Mauna Loa CO2 1958-2001 from statsmodels, gaps interpolated (forecasting, embedded)",
           task="regression", series=True,
           layout="embedded in the package (netc/data/co2.npz): 2284 weekly values, cut into windows like "
                  "sunspots"),
    Source("idx", "MNIST-style IDX files (train-images-idx3-ubyte[.gz] etc.)", needs_path=True,
           normalize="minmax", example="data/mnist",
           layout="a directory with train-images-idx3-ubyte and train-labels-idx1-ubyte (optionally .gz), "
                  "plus t10k-images/t10k-labels for the test set; or the path of one train-images file"),
    Source("cifar10", "CIFAR-10 python batches (data_batch_1..5, test_batch)", needs_path=True,
           normalize="minmax", example="data/cifar-10-batches-py", classes=10, sample=(3, 32, 32),
           layout="the extracted cifar-10-batches-py directory: data_batch_1..5, test_batch, batches.meta "
                  "(class names); read with a restricted unpickler (plain arrays only)"),
    Source("npz", "numpy .npz with arrays x and y (names configurable)", task="any", needs_path=True,
           example="data/train.npz",
           layout="one file written by np.savez(path, x=..., y=...): inputs x (one sample per row, any "
                  "shape that reshapes to the declared input) and targets y; several model inputs: one "
                  "array per input name; object arrays are refused (they would unpickle)"),
    Source("csv", "a table: CSV with a header row, JSON Lines or Parquet; numeric feature columns and a label column",
           task="any", needs_path=True, example="data/train.csv", streams=True,
           layout="UTF-8 CSV (optionally .gz) with a header row, or JSON Lines (.jsonl or .ndjson, optionally "
                  ".gz: one object per line, every line with the first line's keys, null "
                  "for a missing value), or Parquet (.parquet, read whole with pyarrow: the [parquet] extra; "
                  "not streamed); numeric feature columns and one label column (numbers: regression "
                  "or class ids; words: class names)"),
    Source("folder", "image folders, one subfolder per class (PNG/JPEG, resized to the declared input)",
           needs_path=True, normalize="minmax", example="data/images",
           layout="path/<class>/*.png|jpg|jpeg|bmp|gif|webp, one subfolder per class (sorted names are "
                  "the class ids); images converted to the declared channels (1: grayscale, 3: RGB) "
                  "and resized to its height and width", streams=True),
    Source("npy", "a directory of .npy arrays: x.npy and y.npy (names configurable; one array per model input)",
           task="any", needs_path=True, example="data/arrays", streams=True,
           layout="a directory with <x_key>.npy (inputs, one sample per row; several model inputs: one "
                  "<input name>.npy each) and <y_key>.npy (targets), written by np.save; C order, numeric "
                  "dtypes only; streamed rows are read from disk on demand"),
    Source("tar", "WebDataset tar shards: a .tar file or a directory of them, one sample per key (image or .npy "
                  "plus a .cls class id)", needs_path=True, normalize="minmax", example="data/shards", streams=True,
           layout="uncompressed tar files in the WebDataset layout: members <key>.png|jpg|jpeg|npy and "
                  "<key>.cls (the class id as text) next to each other; shards in sorted name order; under "
                  "torchrun each rank reads only the samples of its share"),
    Source("pydoc", "the English reference text that ships with CPython (pydoc_data.topics, about 465 KB; "
                    "language modelling, embedded)", task="language", text=True, normalize="none",
           layout="read at run time from the standard library (import pydoc_data.topics): the 79 help "
                  "topics joined in sorted order; split by position (train first, then val, then test)"),
    Source("text", "a plain UTF-8 text file (language modelling: contiguous blocks, split by position)",
           task="language", needs_path=True, text=True, normalize="none", example="data/corpus.txt",
           layout="one UTF-8 text file (optionally .gz); split by position, train first, then val, then test"),
    Source("pydoc_topics", "paragraphs of 8 CPython help topics (pydoc_data.topics), labelled by the topic "
                           "they come from (text classification, embedded)", text=True, normalize="none",
           classes=8,
           layout="read at run time from the standard library: the paragraphs (8+ words, blank-line "
                  "separated) of 8 help topics, the topic name as the class; repeated paragraphs dropped"),
    Source("text_labels", "CSV (header row), JSONL or Parquet with a text column and a label column (text "
                          "classification)", needs_path=True, text=True, normalize="none",
           example="data/reviews.csv",
           layout="UTF-8 CSV with a header row, JSON Lines (.jsonl, one object per line) or Parquet (.parquet, "
                  "the [parquet] extra); the columns named by `text` and `label` (class names or ids)"),
    Source("numbers", "English number words (num2words) and their digits, 0-9999: 'two hundred and six' "
                      "-> '206' (sequence-to-sequence, generated)", task="seq2seq", text=True, normalize="none",
           layout="generated at run time with the num2words package: 10,000 pairs (words, digits), "
                  "shuffled into splits"),
    Source("pairs", "CSV (header row), JSONL or Parquet with a source and a target text column "
                    "(sequence-to-sequence)", task="seq2seq", needs_path=True, text=True, normalize="none",
           example="data/pairs.jsonl",
           layout="UTF-8 CSV with a header row, JSON Lines or Parquet (the [parquet] extra); the columns "
                  "named by `text` (source) and `target`"),
]}

TOKENIZERS = ("char", "bpe", "word")  # train.data.tokenizer: characters, byte-level BPE, whitespace words


def infer_source(path: str) -> str:
    """Guess the source of ``data: <path>`` from the file name or directory contents."""
    p = Path(path).expanduser()
    name = p.name.lower()
    if name.endswith(".npz"):
        return "npz"
    if name.endswith((".csv", ".csv.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".parquet")):
        return "csv"  # a table; texts in a table name their source (text_labels, pairs)
    if name.endswith(".txt"):
        return "text"
    if name.endswith(".tar"):
        return "tar"
    if "ubyte" in name or name.endswith(".idx"):
        return "idx"
    if p.is_dir():
        names = {c.name for c in p.iterdir()}
        if "data_batch_1" in names or "test_batch" in names:
            return "cifar10"
        if any("ubyte" in n for n in names):
            return "idx"
        if any(n.endswith(".npy") for n in names):
            return "npy"
        if any(n.endswith(".tar") for n in names):
            return "tar"
    return "folder"
