"""The spec library (specs/) and the examples (examples/): every file checks, the classics
have the parameter counts of their reference PyTorch definitions, and ``params:`` overrides work.

The references are written here in plain torch, copying the structure of torchvision's
definitions (torchvision cannot be installed here); they are built on the ``meta`` device, so
even VGG-16's 138 M parameters cost no memory and no initialisation time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, SPECS

from netc.cli import main as netc_main
from netc.compiler.check import check_file
from netc.diagnostics import SpecError
from netc.dsl.spec import read_spec

MODELINE = "# yaml-language-server: $schema=../netc/dsl/netc.schema.json"
FILES = SPECS + EXAMPLES


def spec(path: Path):
    return read_spec(path.read_bytes(), str(path))


def summary_json(path: Path, capsys, **params) -> dict:
    """``netc summary --format json FILE --param k=v ...``, run in-process."""
    argv = ["summary", "--format", "json", str(path)]
    for k, v in params.items():
        argv += ["--param", f"{k}={v}"]
    capsys.readouterr()
    assert netc_main(argv) == 0
    return json.loads(capsys.readouterr().out)


def out_shape(program, model: str | None = None) -> tuple:
    g = program.graphs[model] if model else program.main
    return g.output_type.shape


# ---------------------------------------------------------------------------- every file

@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_file_checks(path):
    program = check_file(path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == MODELINE
    if path.name == "blocks.yaml":
        assert program.graphs == {}
    else:
        assert program.graphs and all(g.params > 0 for g in program.graphs.values())


def test_library_is_complete():
    names = {p.stem for p in SPECS}
    assert names >= {"lenet5", "alexnet", "vgg16", "resnet18", "googlenet", "mlp", "cifar10_cnn",
                     "lstm_classifier", "gru_classifier", "lstm_forecaster", "transformer_classifier",
                     "transformer_primitives", "gan", "blocks"}
    ex = {p.stem for p in EXAMPLES}
    assert ex >= {"digits_mlp", "digits_cnn", "digits_resnet", "digits_lstm", "digits_gru", "digits_transformer",
                  "digits_inception", "multi_input", "sunspots_lstm", "digits_gan"}


# ---------------------------------------------------------------------------- the classics

def _torch():
    return pytest.importorskip("torch")


def lenet5(nn, classes=10, channels=1, size=32):
    """LeNet-5 (LeCun et al. 1998): C1 6@5×5, S2 2×2 average, C3 16@5×5, S4, F5 120, F6 84, output."""
    s = ((size - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(channels, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(16 * s * s, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, classes))


def alexnet(nn, classes=1000, channels=3):
    """torchvision/models/alexnet.py, class AlexNet."""
    return nn.Sequential(
        nn.Conv2d(channels, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, classes))


def vgg16(nn, classes=1000, channels=3):
    """torchvision/models/vgg.py: VGG(make_layers(cfgs["D"], batch_norm=False))."""
    layers, c = [], channels
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(),
        nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(0.5), nn.Linear(4096, classes))


def resnet18(nn, classes=1000, channels=3):
    """torchvision/models/resnet.py: ResNet(BasicBlock, [2, 2, 2, 2])."""
    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    layers, c = [], 64
    for planes, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        layers += [BasicBlock(c, planes, stride), BasicBlock(planes, planes)]
        c = planes
    return nn.Sequential(
        nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
        nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        *layers, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, classes))


def googlenet(nn, classes=1000, channels=3):
    """torchvision/models/googlenet.py: GoogLeNet(aux_logits=False), with its BasicConv2d and Inception."""
    import torch

    def conv(i, o, **kw):  # BasicConv2d
        return nn.Sequential(nn.Conv2d(i, o, bias=False, **kw), nn.BatchNorm2d(o, eps=0.001), nn.ReLU(inplace=True))

    class Inception(nn.Module):
        def __init__(self, i, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
            super().__init__()
            self.branch1 = conv(i, ch1x1, kernel_size=1)
            self.branch2 = nn.Sequential(conv(i, ch3x3red, kernel_size=1), conv(ch3x3red, ch3x3, kernel_size=3,
                                                                                 padding=1))
            # torchvision's known quirk: a 3×3 convolution where the paper has 5×5.
            self.branch3 = nn.Sequential(conv(i, ch5x5red, kernel_size=1), conv(ch5x5red, ch5x5, kernel_size=3,
                                                                                 padding=1))
            self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                                         conv(i, pool_proj, kernel_size=1))

        def forward(self, x):
            return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)

    return nn.Sequential(
        conv(channels, 64, kernel_size=7, stride=2, padding=3), nn.MaxPool2d(3, stride=2, ceil_mode=True),
        conv(64, 64, kernel_size=1), conv(64, 192, kernel_size=3, padding=1), nn.MaxPool2d(3, stride=2, ceil_mode=True),
        Inception(192, 64, 96, 128, 16, 32, 32), Inception(256, 128, 128, 192, 32, 96, 64),
        nn.MaxPool2d(3, stride=2, ceil_mode=True),
        Inception(480, 192, 96, 208, 16, 48, 64), Inception(512, 160, 112, 224, 24, 64, 64),
        Inception(512, 128, 128, 256, 24, 64, 64), Inception(512, 112, 144, 288, 32, 64, 64),
        Inception(528, 256, 160, 320, 32, 128, 128), nn.MaxPool2d(2, stride=2, ceil_mode=True),
        Inception(832, 256, 160, 320, 32, 128, 128), Inception(832, 384, 192, 384, 48, 128, 128),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1024, classes))


# file, reference builder, reference count at the defaults, default size, a smaller size that still fits
CLASSICS = [
    ("lenet5", lenet5, 61_706, 32, 28),
    ("alexnet", alexnet, 61_100_840, 224, 64),
    ("vgg16", vgg16, 138_357_544, 224, 32),
    ("resnet18", resnet18, 11_689_512, 224, 32),
    ("googlenet", googlenet, 6_624_904, 224, 32),
]


def _reference(torch, build, **kw):
    with torch.device("meta"):  # no memory, no initialisation: counting and shapes only
        return build(torch.nn, **kw)


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name,build,count,size,small", CLASSICS, ids=[c[0] for c in CLASSICS])
def test_classic_matches_reference(name, build, count, size, small, capsys):
    torch = _torch()
    path = ROOT / "specs" / f"{name}.yaml"
    defaults = spec(path).params
    assert {"classes", "size", "channels"} <= set(defaults), "classics take classes, channels and size"
    classes, channels = defaults["classes"], defaults["channels"]
    assert defaults["size"] == size

    # The reference torch module alone has the published count.
    ref = _reference(torch, build, classes=classes, channels=channels)
    assert _count(ref) == count
    # netc summary reports it, and the checker maps the full-size image to the logits.
    report = summary_json(path, capsys)
    assert report["total_params"] == count
    assert out_shape(check_file(path)) == ("N", classes)

    # Other classes and a smaller image: netc agrees with the reference on count and output shape.
    kw = {"size": small} if build is lenet5 else {}
    ref10 = _reference(torch, build, classes=10, channels=channels, **kw)
    program = check_file(path, params={"classes": 10, "size": small})
    assert program.main.params == _count(ref10)
    with torch.no_grad():
        y = ref10(torch.empty(2, channels, small, small, device="meta"))
    assert tuple(y.shape) == (2, 10)
    assert out_shape(program) == ("N", 10)


@pytest.mark.parametrize("name,size", [("alexnet", 62), ("vgg16", 31)])
def test_classic_rejects_too_small_images(name, size):
    with pytest.raises(SpecError, match="shrinks the spatial size below 1"):
        check_file(ROOT / "specs" / f"{name}.yaml", params={"size": size})


def test_blocks_library_is_imported():
    lib = (ROOT / "specs" / "blocks.yaml").resolve()
    blocks = spec(lib)
    assert not blocks.models and {"ConvBN", "ConvBNReLU", "Res", "ResDown", "Inception"} <= set(blocks.blocks)
    importers = [p.name for p in SPECS if any(Path(s.file).resolve() == lib for s in spec(p).imports.values())]
    assert {"resnet18.yaml", "googlenet.yaml"} <= set(importers)


# ---------------------------------------------------------------------------- smaller library specs

def test_known_counts(capsys):
    # mlp and cifar10_cnn are the Keras tutorial models at their defaults.
    assert summary_json(ROOT / "specs" / "mlp.yaml", capsys, features=784)["total_params"] == 101_770
    assert summary_json(ROOT / "specs" / "cifar10_cnn.yaml", capsys)["total_params"] == 122_570
    assert check_file(ROOT / "examples" / "cifar10_cnn.yaml").main.params == 122_570


def test_transformer_primitives_equal_one_op(capsys):
    one = ROOT / "specs" / "transformer_classifier.yaml"
    prim = ROOT / "specs" / "transformer_primitives.yaml"
    assert summary_json(one, capsys)["total_params"] == summary_json(prim, capsys)["total_params"]
    small = {"d_model": 32, "heads": 2, "ff": 64, "vocab": 100, "classes": 3}
    a = check_file(one, params={**small, "layers": 2}).main
    b = check_file(prim, params=small).main
    assert a.params == b.params and a.output_type == b.output_type
    assert a.macs == b.macs
    assert {n.op for n in b.nodes} >= {"MultiHeadAttention", "LayerNorm", "Add", "Dense", "PositionalEncoding"}
    assert "TransformerEncoder" not in {n.op for n in b.nodes}


def test_transformer_reference_count():
    torch = _torch()
    nn = torch.nn
    p = spec(ROOT / "specs" / "transformer_classifier.yaml").params
    with torch.device("meta"):
        layer = nn.TransformerEncoderLayer(p["d_model"], p["heads"], p["ff"], p["dropout"], batch_first=True)
        parts = [nn.Embedding(p["vocab"], p["d_model"]), nn.TransformerEncoder(layer, p["layers"],
                                                                             enable_nested_tensor=False),
                 nn.Linear(p["d_model"], p["classes"])]
    ref = sum(_count(m) for m in parts)
    assert check_file(ROOT / "specs" / "transformer_classifier.yaml").main.params == ref
    assert check_file(ROOT / "specs" / "transformer_primitives.yaml").main.params == ref


def test_seq2seq_reference_count():
    """specs/transformer_seq2seq.yaml = two embeddings, nn.TransformerEncoder, nn.TransformerDecoder, a Linear."""
    torch = _torch()
    nn = torch.nn
    p = spec(ROOT / "specs" / "transformer_seq2seq.yaml").params
    d, heads, ff, layers = p["d_model"], p["heads"], p["ff"], p["layers"]
    with torch.device("meta"):
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, heads, ff, batch_first=True), layers,
                                    enable_nested_tensor=False)
        dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(d, heads, ff, batch_first=True), layers)
        parts = [nn.Embedding(p["src_vocab"], d), nn.Embedding(p["tgt_vocab"], d), enc, dec,
                 nn.Linear(d, p["tgt_vocab"])]
    assert check_file(ROOT / "specs" / "transformer_seq2seq.yaml").main.params == sum(_count(m) for m in parts)


def test_recurrent_reference_counts():
    torch = _torch()
    nn = torch.nn
    p = spec(ROOT / "specs" / "lstm_classifier.yaml").params
    with torch.device("meta"):
        lstm = _count(nn.LSTM(p["features"], p["units"], p["layers"], dropout=p["dropout"], batch_first=True))
        lstm += _count(nn.Linear(p["units"], p["classes"]))
        q = spec(ROOT / "specs" / "gru_classifier.yaml").params
        gru = _count(nn.GRU(q["features"], q["units"], bidirectional=True, batch_first=True))
        gru += _count(nn.Linear(2 * q["units"], q["classes"]))
    assert check_file(ROOT / "specs" / "lstm_classifier.yaml").main.params == lstm
    assert check_file(ROOT / "specs" / "gru_classifier.yaml").main.params == gru


def test_forecaster_window():
    program = check_file(ROOT / "specs" / "lstm_forecaster.yaml", params={"window": 32, "horizon": 3})
    assert program.main.inputs[0].type.shape == ("N", 32, 1)
    assert out_shape(program) == ("N", 3)


@pytest.mark.parametrize("path", [ROOT / "specs" / "gan.yaml", ROOT / "examples" / "digits_gan.yaml"],
                         ids=["specs/gan.yaml", "examples/digits_gan.yaml"])
def test_gan_pair(path):
    program = check_file(path)
    assert set(program.graphs) == {"generator", "discriminator"}
    gen, disc = program.graphs["generator"], program.graphs["discriminator"]
    assert gen.inputs[0].type.shape == ("N", 64)
    assert gen.output_type.shape == ("N", 1, 8, 8) == disc.inputs[0].type.shape
    assert "Tanh" in [n.op for n in gen.nodes][-2:]
    assert disc.output_type.shape == ("N", 1)


# ---------------------------------------------------------------------------- params: overrides

# Every file with `params:` gets one set of overrides here, and the output shape they imply.
OVERRIDES = {
    "lenet5.yaml": ({"classes": 5, "channels": 3, "size": 28}, ("N", 5)),
    "alexnet.yaml": ({"classes": 10, "size": 96, "dropout": 0.2}, ("N", 10)),
    "vgg16.yaml": ({"classes": 100, "size": 64, "channels": 1}, ("N", 100)),
    "resnet18.yaml": ({"classes": 10, "size": 64}, ("N", 10)),
    "googlenet.yaml": ({"classes": 10, "size": 96}, ("N", 10)),
    "mlp.yaml": ({"classes": 3, "features": 20, "hidden": 32, "dropout": 0.0}, ("N", 3)),
    "cifar10_cnn.yaml": ({"classes": 100, "channels": 1, "size": 28, "width": 16}, ("N", 100)),
    "lstm_classifier.yaml": ({"classes": 4, "steps": 50, "features": 3, "units": 16}, ("N", 4)),
    "gru_classifier.yaml": ({"classes": 4, "steps": 50, "features": 3, "units": 16}, ("N", 4)),
    "lstm_forecaster.yaml": ({"window": 24, "features": 2, "horizon": 6}, ("N", 6)),
    "transformer_classifier.yaml": ({"classes": 5, "vocab": 500, "seq_len": 64, "d_model": 64, "layers": 1},
                                    ("N", 5)),
    "transformer_primitives.yaml": ({"classes": 5, "vocab": 500, "seq_len": 64, "d_model": 64}, ("N", 5)),
    "transformer_seq2seq.yaml": ({"src_vocab": 50, "tgt_vocab": 40, "tgt_len": 12, "d_model": 32, "layers": 1},
                                 ("N", 12, 40)),
    "transformer_seq2seq_primitives.yaml": ({"src_vocab": 50, "tgt_vocab": 40, "tgt_len": 12, "d_model": 32},
                                            ("N", 12, 40)),
    "char_gpt.yaml": ({"vocab": 64, "block": 32, "d_model": 64}, ("N", 32, 64)),
    "numbers_seq2seq.yaml": ({"vocab": 40, "tgt_len": 8, "d": 64}, ("N", 8, 40)),
    # more outputs than pydoc_topics' 8 classes (fewer is refused by netc check: ids 5-7 would not fit)
    "pydoc_topics_lstm.yaml": ({"classes": 12, "vocab": 5000, "seq_len": 64}, ("N", 12)),  # vocab >= vocab_size
    "gan.yaml": ({"latent": 100, "channels": 1, "size": 28, "hidden": 512}, ("N", 1, 28, 28)),
    "digits_cnn_tune.yaml": ({"width": 16, "depth": 3, "dropout": 0.1}, ("N", 10)),
}
WITH_PARAMS = [p for p in FILES if spec(p).params]


def test_every_file_with_params_has_overrides():
    assert {p.name for p in WITH_PARAMS} == set(OVERRIDES)


@pytest.mark.parametrize("path", WITH_PARAMS, ids=[p.name for p in WITH_PARAMS])
def test_param_overrides(path, capsys):
    params, shape = OVERRIDES[path.name]
    default = check_file(path)
    program = check_file(path, params=params)
    assert out_shape(program) == shape
    assert program.main.params != default.main.params
    # the same through the CLI
    report = summary_json(path, capsys, **params)
    report = report.get(program.main.name, report)  # several models: one report per model
    assert report["total_params"] == program.main.params
    with pytest.raises(SpecError, match="has no parameter"):
        check_file(path, params={"clases": 10})


# ---------------------------------------------------------------------------- examples

DIGITS = {"digits_mlp": ("N", 64), "digits_cnn": ("N", 1, 8, 8), "digits_resnet": ("N", 1, 8, 8),
          "digits_lstm": ("N", 8, 8), "digits_gru": ("N", 8, 8), "digits_transformer": ("N", 8, 8),
          "digits_inception": ("N", 1, 8, 8)}


@pytest.mark.parametrize("name", sorted(DIGITS))
def test_digits_examples(name):
    program = check_file(ROOT / "examples" / f"{name}.yaml")
    assert program.main.inputs[0].type.shape == DIGITS[name]
    assert out_shape(program) == ("N", 10)
    assert program.train["data"] == "digits" and program.train["loss"] == "cross_entropy"
    assert program.main.params < 200_000  # trains in about a minute on 2 CPU cores


def test_example_families():
    ops = {p.stem: {n.op for g in check_file(p).graphs.values() for n in g.nodes} for p in EXAMPLES}
    assert "Add" in ops["digits_resnet"] and "Concat" in ops["digits_inception"]
    assert "LSTM" in ops["digits_lstm"] and "GRU" in ops["digits_gru"]
    assert {"PositionalEncoding", "TransformerEncoder", "SeqPool"} <= ops["digits_transformer"]
    resnet = (ROOT / "examples" / "digits_resnet.yaml").read_text(encoding="utf-8")
    assert "Res(32) * 2" in resnet  # a parameterised block, repeated


def test_multi_input_example():
    g = check_file(ROOT / "examples" / "multi_input.yaml").main
    assert [(i.name, i.type.shape) for i in g.inputs] == [("image", ("N", 1, 8, 8)), ("features", ("N", 16))]
    assert g.node(g.outputs[0]).op == "Dense" and "Concat" in {n.op for n in g.nodes}
    assert g.output_type.shape == ("N", 10)


def test_sunspots_example():
    program = check_file(ROOT / "examples" / "sunspots_lstm.yaml")
    assert program.main.inputs[0].type.shape == ("N", 16, 1)
    assert out_shape(program) == ("N", 1)
    assert program.train["data"] == {"source": "sunspots", "window": 16, "horizon": 1}
    assert program.train["loss"] == "mse"
