"""GAN quality bench: digits drawn by the netc-trained GAN, judged by a netc-trained digits CNN.

    python bench/gan_quality.py                      # trains both (netc train), samples, judges
    python bench/gan_quality.py --cnn-run runs/digits_cnn --gan-run runs/digits_gan   # reuse runs
    python bench/gan_quality.py --samples 1000 --work /tmp/ganq

Every step goes through the ``netc`` command line, as a user would run it:

1. ``netc train examples/digits_cnn.yaml``   -> the judge (its run's best weights; config.json
   records the normalisation it was trained with: per-channel mean/std of the training split).
2. ``netc train examples/digits_gan.yaml``   -> the generator (real digits scaled to [-1, 1]:
   config.json records shift 8, scale 8, i.e. pixel = 8 * x + 8).
3. ``netc predict GAN_RUN -n 1000 -o samples.npy`` -> 1,000 samples, already mapped back from
   the generator's [-1, 1] to digit pixel units [0, 16] with the GAN run's recorded statistics.
4. ``netc predict CNN_RUN samples.npy -o judged.csv`` -> class probabilities; ``netc predict``
   applies the CNN run's own normalisation ((pixel - mean) / std) before the forward pass, so the
   judge sees exactly the input distribution it was trained on.

The same judge scores two references in the same run: uniform noise in the generator's
output range (uniform [-1, 1], i.e. uniform pixels in [0, 16]) and the real held-out test digits.
This judge is confident on noise too (it calls almost all of it an 8, ~0.92), so confidence alone
does not separate digits from noise here; the class spread does, and so does a second opinion the
bench adds: the Fréchet distance (FID's formula) between each set and the real test digits in the
judge's penultimate features, with the real training digits as the floor.

Targets (issue 6): every class >= 3 % of the samples and mean top-1 confidence >= 0.85.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MIN_CLASS_FRACTION = 0.03
MIN_CONFIDENCE = 0.85


def netc(*args: str) -> float:
    """Run one ``netc`` command (the installed CLI, this checkout's package); seconds it took."""
    cmd = [sys.executable, "-m", "netc", *args]
    print("$ netc " + " ".join(args), flush=True)
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    tail = [ln for ln in done.stdout.splitlines() if ln.startswith(("test ", "epoch "))][-1:]
    for ln in tail:
        print("  " + ln, flush=True)
    return time.perf_counter() - t


def judge(cnn_run: Path, x: np.ndarray, work: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, top-1 probability) of the CNN for raw digit images ``x`` in pixel units."""
    inp, out = work / f"{name}.npy", work / f"{name}_judged.csv"
    np.save(inp, x.astype(np.float32))
    netc("predict", str(cnn_run), str(inp), "-o", str(out))
    table = np.loadtxt(out, delimiter=",", skiprows=1, ndmin=2)
    probs = table[:, 1:]
    return probs.argmax(1), probs.max(1)


def describe(name: str, pred: np.ndarray, conf: np.ndarray) -> dict:
    fractions = np.bincount(pred, minlength=10) / len(pred)
    row = {"name": name, "n": len(pred), "mean_confidence": float(conf.mean()),
           "min_class_fraction": float(fractions.min()), "min_class": int(fractions.argmin()),
           "class_fractions": [round(float(f), 3) for f in fractions]}
    print(f"{name:<22} n={len(pred):<5} mean top-1 confidence {conf.mean():.3f}   smallest class "
          f"{fractions.argmin()} at {fractions.min():.1%}   classes " +
          " ".join(f"{f:.0%}" for f in fractions), flush=True)
    return row


def judge_features(cnn_run: Path, xs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The judge's penultimate features (the input of its last Dense layer) for raw digit images."""
    import torch

    import netc
    from netc.compiler.check import check_file
    from netc.runner.checkpoint import load_weights, resolve_dir
    from netc.runner.loop import predict

    model = netc.build(check_file(str(cnn_run / "spec.yaml")))
    load_weights(model, resolve_dir(cnn_run / "best"))
    preprocess = json.loads((cnn_run / "config.json").read_text())["preprocess"]
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    seen: list[torch.Tensor] = []
    hook = last.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach().flatten(1)))
    feats = {}
    for name, x in xs.items():
        seen.clear()
        predict(model, torch.from_numpy(x.astype(np.float32)), preprocess=preprocess)
        feats[name] = torch.cat(seen).double().numpy()
    hook.remove()
    return feats


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID's formula, on the judge's features)."""
    from scipy import linalg

    mu, nu = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(sa @ sb)
    return float(((mu - nu) ** 2).sum() + np.trace(sa + sb - 2 * np.real(root)))


def real_digits(cnn_run: Path, split: str = "test") -> np.ndarray:
    """A split of the CNN run's data (same split as its training: the run's config), in raw pixel units."""
    from netc.runner.config import TrainConfig
    from netc.runner.data import load_data

    cfg = TrainConfig.from_dict(json.loads((cnn_run / "config.json").read_text())["train"])
    ds = load_data(cfg, [("image", (1, 8, 8), "float32")], normalize="none")
    return getattr(ds, split).xs[0].numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cnn-run", type=Path, help="an existing digits_cnn run (default: train one)")
    ap.add_argument("--gan-run", type=Path, help="an existing digits_gan run (default: train one)")
    ap.add_argument("--gan-spec", default="examples/digits_gan.yaml")
    ap.add_argument("--cnn-spec", default="examples/digits_cnn.yaml")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--work", type=Path, default=None, help="directory for runs and sample files")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    a = ap.parse_args()
    work = (a.work or Path(tempfile.mkdtemp(prefix="gan_quality_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    # 1. the judge: a digits CNN trained with netc
    cnn_run = a.cnn_run
    if cnn_run is None:
        cnn_run = work / "digits_cnn"
        timings["train_cnn_s"] = netc("train", a.cnn_spec, "--out", str(cnn_run), "--force")
    # 2. the GAN, trained with netc
    gan_run = a.gan_run
    if gan_run is None:
        gan_run = work / "digits_gan"
        timings["train_gan_s"] = netc("train", a.gan_spec, "--out", str(gan_run), "--force")
    gan_norm = json.loads((gan_run / "config.json").read_text())["preprocess"]["inputs"][0]
    cnn_norm = json.loads((cnn_run / "config.json").read_text())["preprocess"]["inputs"][0]
    print(f"GAN data scaling: {gan_norm['method']} (pixel = x * {np.ravel(gan_norm['scale'])[0]:g} + "
          f"{np.ravel(gan_norm['shift'])[0]:g}); judge input: {cnn_norm['method']} ((pixel - "
          f"{np.ravel(cnn_norm['shift'])[0]:.4g}) / {np.ravel(cnn_norm['scale'])[0]:.4g})", flush=True)

    # 3. samples from the generator, mapped back to pixel units by netc predict
    samples_file = work / "samples.npy"
    timings["sample_s"] = netc("predict", str(gan_run), "-n", str(a.samples), "-o", str(samples_file))
    samples = np.load(samples_file)
    print(f"samples: {samples.shape}, pixel range [{samples.min():.2f}, {samples.max():.2f}] (real digits: [0, 16])")

    # 4. judge the samples and the two references with the same CNN
    rows = [describe("GAN samples", *judge(cnn_run, samples, work, "gan"))]
    rng = np.random.default_rng(0)
    noise = rng.uniform(-1.0, 1.0, size=samples.shape)  # the generator's output range ...
    noise = noise * np.ravel(gan_norm["scale"])[0] + np.ravel(gan_norm["shift"])[0]  # ... in pixel units
    rows.append(describe("uniform noise", *judge(cnn_run, noise, work, "noise")))
    real = real_digits(cnn_run, "test")
    rows.append(describe("real test digits", *judge(cnn_run, real, work, "real")))

    # 5. a second opinion the judge's confidence cannot give: how far each set lies from real digits in
    #    the judge's own feature space (Fréchet distance; real training digits give the floor)
    feats = judge_features(cnn_run, {"real_test": real, "real_train": real_digits(cnn_run, "train"),
                                     "gan": samples, "noise": noise})
    distances = {k: frechet(feats[k], feats["real_test"]) for k in ("real_train", "gan", "noise")}
    print("Fréchet distance to the real test digits in the judge's feature space: " +
          ", ".join(f"{k} {v:.2f}" for k, v in distances.items()), flush=True)

    gan = rows[0]
    ok_classes = gan["min_class_fraction"] >= MIN_CLASS_FRACTION
    ok_conf = gan["mean_confidence"] >= MIN_CONFIDENCE
    print(f"\ntarget: every class >= {MIN_CLASS_FRACTION:.0%}: {'PASS' if ok_classes else 'FAIL'} "
          f"(smallest {gan['min_class_fraction']:.1%}, class {gan['min_class']})")
    print(f"target: mean top-1 confidence >= {MIN_CONFIDENCE}: {'PASS' if ok_conf else 'FAIL'} "
          f"({gan['mean_confidence']:.3f}; uniform noise {rows[1]['mean_confidence']:.3f}, real digits "
          f"{rows[2]['mean_confidence']:.3f})")
    print("timings: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + f"   (work dir {work})")
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "timings": timings, "frechet": distances, "cnn_run": str(cnn_run),
                                      "gan_run": str(gan_run), "pass": ok_classes and ok_conf}, indent=2))
    return 0 if ok_classes and ok_conf else 1


if __name__ == "__main__":
    sys.exit(main())
