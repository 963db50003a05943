"""Streamed data bench: ``netc train`` on a folder of PNG images against a hand-written DataLoader loop.

Writes (into a temporary folder) N small grayscale PNG images, 28x28, ten class folders: the
embedded digits upscaled from 8x8 with a little noise, so every image differs. Then measures:

1. images per second of one ``netc train`` epoch (``train.data.stream: true``; the epoch's own
   ``seconds`` from metrics.jsonl) against a hand-written script with the same model, batch size
   and DataLoader workers (an ImageFolder-style Dataset decoding with PIL, ``shuffle=True``).
   Each in a fresh subprocess, interleaved round by round; the verdict is the median of the
   per-round time ratios netc / hand (bar: <= 1.05, i.e. netc's images/s >= 0.95 x hand's).
2. peak memory of one streamed ``netc train`` epoch with the folder at 1x and 4x the images
   (proportional set size of the process and its workers from /proc/PID/smaps_rollup, sampled
   every 0.1 s, so pages the forked workers share are counted once); bar: growth under 10 %.
3. one streamed epoch over an .npy array larger than a memory cap (``--cap-mib``): peak memory
   stays under the cap.

    python bench/data.py --quick      # 5,000 / 20,000 images for memory, 20,000 for speed, .npy cap 640 MiB
    python bench/data.py              # 20,000 / 80,000 images, .npy cap 1 GiB
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
netc: 1
name: bench_stream
input: {image: [1, 28, 28]}
model: Conv2D(16, 3, stride=2) → ReLU → Conv2D(32, 3, stride=2) → ReLU → Flatten → Dense(10)
train:
  data: {source: SOURCE, path: PATH, stream: true, workers: WORKERS}
  split: {val: 0, test: 0, seed: 0}
  normalize: minmax
  optimizer: adam(lr=1e-3)
  epochs: 1
  batch_size: BATCH
  metrics: []
  plots: false
"""

HAND = r'''
import os, sys, time
from pathlib import Path
import numpy as np, torch
from PIL import Image
root, workers, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
classes = sorted(p.name for p in root.iterdir() if p.is_dir())
files = [(str(root / c / f), i) for i, c in enumerate(classes) for f in sorted(os.listdir(root / c))]

class Folder(torch.utils.data.Dataset):
    def __len__(self):
        return len(files)
    def __getitem__(self, i):
        f, y = files[i]
        with Image.open(f) as im:
            x = np.asarray(im.convert("L"), dtype=np.uint8)[None].astype(np.float32) / 255.0
        return torch.from_numpy(x), y

model = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3, stride=2),
                            torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32 * 6 * 6, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = torch.nn.CrossEntropyLoss()
loader = torch.utils.data.DataLoader(Folder(), batch_size=batch, shuffle=True, num_workers=workers)
t0 = time.perf_counter()
for x, y in loader:
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
print(time.perf_counter() - t0)
'''


def write_images(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` 28x28 grayscale PNGs: embedded digits upscaled (bilinear) with Gaussian noise, one folder per class."""
    from PIL import Image

    d = np.load(ROOT / "netc" / "data" / "digits.npz")
    x, y = d["data"].reshape(-1, 8, 8).astype(np.float32) * 15, d["target"]
    rng = np.random.default_rng(seed)
    for c in range(10):
        (root / str(c)).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        k = i % len(x)
        big = np.asarray(Image.fromarray(x[k]).resize((28, 28), Image.Resampling.BILINEAR))
        img = np.clip(big + rng.normal(0, 12, big.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / str(y[k]) / f"{i:06d}.png", compress_level=1)
    return root


def write_npy(root: Path, mib: int) -> Path:
    """An (n, 1, 28, 28) float32 x.npy of at least ``mib`` MiB (digits tiled, noisy) and its y.npy."""
    root.mkdir(parents=True, exist_ok=True)
    n = mib * 1024 * 1024 // (28 * 28 * 4) + 1
    d = np.load(ROOT / "netc" / "data" / "digits.npz")
    from PIL import Image

    base = np.stack([np.asarray(Image.fromarray(a.reshape(8, 8).astype(np.float32)).resize((28, 28)))
                     for a in d["data"]])
    x = np.lib.format.open_memmap(root / "x.npy", mode="w+", dtype=np.float32, shape=(n, 1, 28, 28))
    rng = np.random.default_rng(0)
    for s in range(0, n, 4096):
        k = np.arange(s, min(s + 4096, n)) % len(base)
        x[s:s + len(k), 0] = base[k] + rng.normal(0, 0.5, (len(k), 28, 28)).astype(np.float32)
    x.flush()
    del x
    np.save(root / "y.npy", d["target"][np.arange(n) % len(base)].astype(np.int64))
    return root


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return out


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_pss(cmd: list[str], env: dict[str, str]) -> tuple[int, subprocess.CompletedProcess]:
    """Run ``cmd``; the peak over time of the summed proportional set size of it and its children."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak, done = [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], sum(_pss(q) for q in _tree(p.pid)))
            done.wait(0.1)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = p.communicate()
    done.set()
    t.join()
    return peak[0], subprocess.CompletedProcess(cmd, p.returncode, out, err)


def netc_epoch(spec: Path, run: Path, env: dict[str, str]) -> float:
    """One streamed ``netc train`` epoch in a fresh process: its seconds from metrics.jsonl."""
    r = subprocess.run([sys.executable, "-m", "netc", "train", str(spec), "--out", str(run), "--force"],
                       capture_output=True, text=True, env=env, check=False)
    if r.returncode:
        raise SystemExit(r.stderr)
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer images and rounds (a few minutes on 2 cores)")
    ap.add_argument("--images", type=int, default=20_000, help="images of the speed test and of the 1x folder")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="DataLoader workers, both loops")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--cap-mib", type=int, default=1024, help="memory cap of the .npy test (the array is larger)")
    ap.add_argument("--only", choices=("speed", "memory", "npy"), help="run one of the three measures")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    mem_n = 5_000 if args.quick else args.images
    rounds = args.rounds
    cap = 640 if args.quick and args.cap_mib == 1024 else args.cap_mib
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    load = os.getloadavg()[0]
    results: dict = {"images": args.images, "workers": args.workers, "batch": args.batch, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="netc-bench-data-") as tmp:
        tmp_path = Path(tmp)
        t = time.perf_counter()
        speed = write_images(tmp_path / "speed", args.images)
        print(f"wrote {args.images} PNGs in {time.perf_counter() - t:.1f} s", flush=True)

        def spec_for(source: str, path: Path) -> Path:
            s = tmp_path / f"{path.name}.yaml"
            s.write_text(SPEC.replace("SOURCE", source).replace("PATH", str(path))
                         .replace("WORKERS", str(args.workers)).replace("BATCH", str(args.batch)))
            return s

        hand = tmp_path / "hand.py"
        hand.write_text(HAND)
        # 1. throughput, interleaved rounds
        ratios, netc_s, hand_s = [], [], []
        for r in range(rounds if args.only in (None, "speed") else 0):
            a = netc_epoch(spec_for("folder", speed), tmp_path / "run", env)
            h = subprocess.run([sys.executable, str(hand), str(speed), str(args.workers), str(args.batch)],
                               capture_output=True, text=True, env=env, check=True)
            b = float(h.stdout.strip().splitlines()[-1])
            netc_s.append(a)
            hand_s.append(b)
            ratios.append(a / b)
            print(f"round {r + 1}: netc {a:.2f} s ({args.images / a:,.0f} img/s)  hand {b:.2f} s "
                  f"({args.images / b:,.0f} img/s)  ratio {a / b:.3f}", flush=True)
        ratio = statistics.median(ratios) if ratios else float("nan")
        results["speed"] = {} if not ratios else {"netc_s": netc_s, "hand_s": hand_s, "ratio": ratio,
                            "netc_img_s": args.images / statistics.median(netc_s),
                            "hand_img_s": args.images / statistics.median(hand_s)}
        if ratios:
            print(f"throughput: netc {results['speed']['netc_img_s']:,.0f} img/s, hand "
                  f"{results['speed']['hand_img_s']:,.0f} img/s; median time ratio {ratio:.3f} (bar <= 1.05): "
                  f"{'PASS' if ratio <= 1.05 else 'FAIL'}")
        # 2. peak memory at 1x and 4x
        peaks = {}
        for k in (1, 4) if args.only in (None, "memory") else ():
            folder = speed if k * mem_n == args.images else write_images(tmp_path / f"mem{k}", k * mem_n, seed=k)
            peak, r = peak_pss([sys.executable, "-m", "netc", "train", str(spec_for("folder", folder)), "--out",
                                str(tmp_path / f"memrun{k}"), "--force"], env)
            if r.returncode:
                raise SystemExit(r.stderr)
            peaks[k] = peak
            print(f"{k}x ({k * mem_n} images): peak PSS {peak / 2**20:.1f} MiB", flush=True)
        if peaks:
            growth = peaks[4] / peaks[1] - 1
            results["memory"] = {"images_1x": mem_n, "peak_1x_mib": peaks[1] / 2**20,
                                 "peak_4x_mib": peaks[4] / 2**20, "growth": growth}
            print(f"memory growth 1x -> 4x: {growth * 100:+.1f} % (bar < 10 %): {'PASS' if growth < 0.10 else 'FAIL'}")
        # 3. an .npy larger than the cap, streamed
        if args.only not in (None, "npy"):
            results["load"] = [load, os.getloadavg()[0]]
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))
            return
        arrays = write_npy(tmp_path / "arrays", int(cap * 1.25))
        size = (arrays / "x.npy").stat().st_size
        peak, r = peak_pss([sys.executable, "-m", "netc", "train", str(spec_for("npy", arrays)), "--out",
                            str(tmp_path / "npyrun"), "--force"], env)
        if r.returncode:
            raise SystemExit(r.stderr)
        results["npy"] = {"array_mib": size / 2**20, "cap_mib": cap, "peak_mib": peak / 2**20}
        print(f"npy: x.npy {size / 2**20:.0f} MiB, cap {cap} MiB, streamed epoch peak PSS {peak / 2**20:.1f} MiB: "
              f"{'PASS' if peak < cap * 2**20 else 'FAIL'}")
    results["load"] = [load, os.getloadavg()[0]]
    print(f"load average before {load:.2f}, after {os.getloadavg()[0]:.2f} (1-min) on {os.cpu_count()} CPUs")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
