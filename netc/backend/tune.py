"""Choose the inference module by measurement: candidates timed on the real module, the decision cached.

    fast = tune_module(trained, batch=16)     # fastest of the candidates below, outputs checked first
    fast.netc_choice                          # e.g. "prepacked"; the decision is cached on disk

Candidates (each built from the trained module; one that fails to build or to match is skipped):

- ``unoptimised``: the module itself, in eval mode — the floor: the choice is never slower than it;
- ``O2``: ``optimize_module(m, 2)`` (BatchNorm folded, fused activations, channels-last);
- ``O2 without channels_last``: channels-last costs time on some nets and batch sizes;
- ``prepacked``: -O2 with every Conv2d replaced by oneDNN's ``_convolution_pointwise`` on weights
  pre-packed for the input shape, fused with a following ReLU or add + ReLU (CPU only);
- ``prepacked dense``: the same, but a convolution whose input is no larger than its kernel (a 3×3 over
  2×2: ResNet's last stage at small images) as one pre-packed oneDNN matrix product of its dense
  matrix, which skips the padded taps (CPU only; skipped where no convolution qualifies);
- ``jit frozen``: ``torch.jit.optimize_for_inference`` of the frozen TorchScript of -O2 without
  channels_last (conv + add + relu fusion, MKLDNN weights);
- ``jit frozen unoptimised``: the same of the unoptimised module (the peer itself, kept where -O2's
  rewrites give TorchScript less to work with);
- ``O2 + CUDA graph`` (CUDA only, batches up to ``GRAPH_MAX_BATCH``): -O2 captured once in a CUDA graph
  for the tuned input shapes and replayed, which removes the per-kernel launch cost that dominates small
  batches; other shapes run -O2 eagerly. On CUDA the tuner also turns on cuDNN's autotuning
  (``torch.backends.cudnn.benchmark``) before it measures: the shapes are fixed, so cuDNN's
  per-shape algorithm search pays once. The CUDA paths are unverified until a GPU run of
  ``bench/gpu.py`` (its inference step times the tuner's choice).

Each candidate's outputs must equal the unoptimised module's on a random batch of the given size
within ``TOLERANCE`` (max |Δ| / max |y|). Timing is paired: every round runs every candidate once in
a shuffled order, and a candidate's score is the median over rounds of its time / unoptimised's
time in the same round (load that drifts cancels). The fastest is kept if it beats the unoptimised module by
more than ``MARGIN``, else the unoptimised module is: never slower than it. The decision is keyed by the graph, the input
shapes, the device, the thread count, the torch version and ``CANDIDATES``, and stored as one JSON file per key in
``cache_dir`` (the run directory's ``tune/`` when the runner has one), else ``$NETC_CACHE_DIR``,
else ``~/.cache/netc/tune``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import operator
import os
import random
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

TOLERANCE = 1e-4  # max |Δ| / max |y_unoptimised|: reassociated float32 sums of fused/pre-packed kernels
CACHE_ENV = "NETC_CACHE_DIR"
MARGIN = 0.02  # a candidate is kept only when at least 2 % faster than unoptimised (paired median)
GRAPH_MAX_BATCH = 64  # CUDA graphs pay where launches dominate: small batches
# Part of every decision's key: bump it when a candidate's name comes to mean another module (a cached
# choice names a candidate, so a stale one would otherwise build the new meaning unmeasured). 2: "prepacked"
# lost its matrix products to "prepacked dense".
CANDIDATES = 2


def default_cache_dir() -> Path:
    """``$NETC_CACHE_DIR`` if set, else ``~/.cache/netc/tune``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "netc" / "tune"


def decision_key(graph: Any, inputs: tuple[torch.Tensor, ...]) -> str:
    """Hash of what the decision depends on: graph, input shapes/dtypes, device, threads, torch version and
    the candidates' meaning (``CANDIDATES``)."""
    import torch

    parts = [repr(graph), *(f"{tuple(x.shape)}:{x.dtype}:{x.device}" for x in inputs),
             f"threads={torch.get_num_threads()}", f"torch={torch.__version__}", f"candidates={CANDIDATES}"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


# ---------------------------------------------------------------- candidates

def _relu(n: Any) -> bool:
    import torch

    return ((n.op == "call_method" and n.target in ("relu", "relu_"))
            or (n.op == "call_function" and n.target in (torch.relu, torch.relu_, torch.nn.functional.relu)))


DENSE_MAX = 1 << 24  # elements of a convolution's dense matrix (64 MiB float32): larger ones stay convolutions


def dense_conv_weight(weight: torch.Tensor, in_hw: tuple[int, int], stride: tuple[int, int],
                      padding: tuple[int, int], dilation: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """The (Cout·Ho·Wo, Cin·H·W) matrix of a groups=1 convolution on an (H, W) input, NCHW order on both
    sides, and (Ho, Wo): ``conv(x).flatten(1) == x.flatten(1) @ matrix.T``. Each entry is one weight or 0."""
    from netc.compiler.ops.conv import conv_out

    cout, cin, kh, kw = weight.shape
    (h, w), (sh, sw), (ph, pw), (dh, dw) = in_hw, stride, padding, dilation
    ho, wo = conv_out(h, kh, sh, ph, dh), conv_out(w, kw, sw, pw, dw)
    big = weight.new_zeros(cout, ho, wo, cin, h, w)
    for i in range(ho):
        for j in range(wo):
            for a in range(kh):
                for b in range(kw):
                    y, x = i * sh - ph + a * dh, j * sw - pw + b * dw
                    if 0 <= y < h and 0 <= x < w:
                        big[:, i, j, :, y, x] = weight[:, :, a, b]
    return big.reshape(cout * ho * wo, cin * h * w), (ho, wo)


def _dense_pays(c: nn.Conv2d, shape: list[int]) -> bool:
    """A convolution whose input is no larger than its kernel (ResNet's last stage at small images: a 3×3
    kernel over 2×2) costs no more multiply-adds as one matrix product — padded taps vanish — and a
    matrix product keeps the vector units busier than a convolution over four positions."""
    from netc.compiler.ops.conv import conv_out

    h, w = shape[-2:]
    kh, kw = c.kernel_size
    if c.groups != 1 or h * w > kh * kw:
        return False
    ho, wo = (conv_out(n, k, s, p, d) for n, k, s, p, d in zip((h, w), c.kernel_size, c.stride, c.padding, c.dilation))
    return ho > 0 and wo > 0 and c.in_channels * h * w * c.out_channels * ho * wo <= DENSE_MAX


def prepack(module: nn.Module, inputs: tuple[torch.Tensor, ...], fuse_add: bool = True,
            dense: bool = False) -> nn.Module:
    """Conv2d → oneDNN ``_convolution_pointwise`` on weights pre-packed for ``inputs``' shapes, with a
    following ReLU (``relu``) or add + ReLU (binary ``add`` + ``relu``) fused in; with ``dense``, a
    convolution whose input is no larger than its kernel → oneDNN ``_linear_pointwise`` on its dense
    matrix, pre-packed (``_dense_pays``; ValueError when no convolution qualifies). CPU, float32."""
    import torch
    from torch import fx, nn
    from torch.fx.passes.shape_prop import ShapeProp

    gm = fx.symbolic_trace(module)
    mods = dict(gm.named_modules())
    ShapeProp(gm).propagate(*inputs)
    g = gm.graph
    mk = torch.ops.mkldnn
    lowered: list[str] = []  # the convolutions run as matrix products, by module name
    for k, n in enumerate(list(g.nodes)):
        if n.op != "call_module" or type(mods[n.target]) is not nn.Conv2d:
            continue
        c = mods[n.target]
        if c.padding_mode != "zeros" or isinstance(c.padding, str) or c.weight.dtype != torch.float32:
            continue
        geo = (list(c.padding), list(c.stride), list(c.dilation), c.groups)
        shape = list(n.args[0].meta["tensor_meta"].shape)
        as_matrix = dense and _dense_pays(c, shape)
        if as_matrix:
            lowered.append(n.target)
        if as_matrix:
            matrix, (ho, wo) = dense_conv_weight(c.weight.detach(), tuple(shape[-2:]), c.stride, c.padding,
                                                 c.dilation)
            gm.register_buffer(f"_netc_w{k}", mk._reorder_linear_weight(matrix, shape[0]))
            bias = None if c.bias is None else c.bias.detach().repeat_interleave(ho * wo)
            out_shape = (-1, c.out_channels, ho, wo)
        else:
            gm.register_buffer(f"_netc_w{k}", torch._C._nn.mkldnn_reorder_conv2d_weight(
                c.weight.detach().to_mkldnn(), *geo, shape))
            bias = None if c.bias is None else c.bias.detach()
        gm.register_buffer(f"_netc_b{k}", bias)
        with g.inserting_before(n):
            w = g.get_attr(f"_netc_w{k}")
            b = g.get_attr(f"_netc_b{k}") if bias is not None else None
            x = g.call_method("flatten", (n.args[0], 1)) if as_matrix else n.args[0]

        def lower(where: fx.Node, attr: str, other: fx.Node | None = None) -> fx.Node:
            """The convolution (+ ``other``) + ``attr`` as one oneDNN call, inserted before ``where``."""
            with g.inserting_before(where):
                if not as_matrix:
                    if other is None:
                        return g.call_function(mk._convolution_pointwise.default, (x, w, b, *geo, attr, [], ""))
                    return g.call_function(mk._convolution_pointwise.binary,
                                           (x, other, w, b, *geo, "add", None, attr, [], ""))
                if other is None:
                    y = g.call_function(mk._linear_pointwise.default, (x, w, b, attr, [], ""))
                else:  # oneDNN's binary linear takes no activation after the add
                    y = g.call_function(mk._linear_pointwise.binary,
                                        (x, g.call_method("flatten", (other, 1)), w, b, "add"))
                    y = g.call_function(torch.relu, (y,)) if attr == "relu" else y
                return g.call_method("reshape", (y, out_shape))

        users, last, new = list(n.users), n, None
        add = users[0] if len(users) == 1 else None
        if (fuse_add and add is not None and add.op == "call_function" and add.target in (operator.add, torch.add)
                and len(add.args) == 2 and not add.kwargs and len(add.users) == 1 and _relu(next(iter(add.users)))):
            other = add.args[1] if add.args[0] is n else add.args[0]
            relu = next(iter(add.users))
            if isinstance(other, fx.Node) and other.meta.get("tensor_meta") is not None \
                    and other.meta["tensor_meta"].shape == n.meta["tensor_meta"].shape:
                new, last = lower(relu, "relu", other), relu
        elif add is not None and _relu(add):
            new, last = lower(add, "relu"), add
        if new is None:
            new = lower(n, "none")
        new.meta = dict(last.meta)
        last.replace_all_uses_with(new)
        g.eliminate_dead_code()
    if dense and not lowered:
        raise ValueError("no convolution's input is as small as its kernel")
    gm.delete_all_unused_submodules()
    gm.recompile()
    gm.netc_as_matrices = tuple(lowered)  # for netc profile
    return gm


def jit_frozen(module: nn.Module) -> nn.Module:
    """``torch.jit.optimize_for_inference`` of the frozen TorchScript of ``module``."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(copy.deepcopy(module).eval())))


def candidates(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, Callable[[], nn.Module]]:
    """Name → builder of each candidate (built lazily: a cached decision builds one)."""
    from netc.backend.weights import optimize_module
    from netc.compiler.passes import PIPELINE

    no_cl = [p for p in PIPELINE if p != "channels_last"]
    cpu = all(x.device.type == "cpu" for x in inputs)
    out: dict[str, Callable[[], nn.Module]] = {
        "unoptimised": lambda: module.eval(),
        "O2": lambda: optimize_module(module, 2),
        "O2 without channels_last": lambda: optimize_module(module, names=no_cl),
    }
    if cpu:
        out["prepacked"] = lambda: prepack(optimize_module(module, 2), inputs)
        # a separate candidate: the matrix products pay on the machines measured so far, but a GEMM's
        # speed depends on the BLAS and the CPU more than a convolution's does
        out["prepacked dense"] = lambda: prepack(optimize_module(module, 2), inputs, dense=True)
        out["jit frozen"] = lambda: jit_frozen(optimize_module(module, names=no_cl))
        # torch's own optimiser on the unoptimised module: where netc's passes give TorchScript nothing to
        # gain (a transformer's fused attention), the peer itself is the one to keep
        out["jit frozen unoptimised"] = lambda: jit_frozen(module)
    elif all(x.device.type == "cuda" for x in inputs) and all(x.shape[0] <= GRAPH_MAX_BATCH for x in inputs if x.dim()):
        out["O2 + CUDA graph"] = lambda: cuda_graphed(optimize_module(module, 2), inputs)
    return out


def cuda_graphed(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> nn.Module:
    """``module`` captured in a CUDA graph for ``inputs``' shapes; other shapes (and autograd) run eagerly."""
    global _GRAPHED
    if _GRAPHED is None:
        _GRAPHED = _graphed_class()
    return _GRAPHED(module, inputs)


def _graphed_class() -> type:
    import torch
    from torch import nn
    from torch.utils._pytree import tree_map

    class CudaGraphed(nn.Module):
        """Replays one captured forward: inputs copied into static buffers, outputs cloned out."""

        def __init__(self, inner: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            super().__init__()
            self.inner = inner.eval()
            # plain tensors (not inference tensors): replay copies into them under any grad mode
            self.static_in = [x.detach().clone() for x in inputs]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.no_grad():  # warm-up off the capture: lazy inits, cuDNN search
                for _ in range(3):
                    inner(*self.static_in)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.no_grad(), torch.cuda.graph(self.graph):
                self.static_out = inner(*self.static_in)

        def forward(self, *xs: torch.Tensor) -> Any:
            same = len(xs) == len(self.static_in) and all(
                x.shape == s.shape and x.dtype == s.dtype and x.device == s.device for x, s in zip(xs, self.static_in))
            if not same or (torch.is_grad_enabled() and any(x.requires_grad for x in xs)):
                return self.inner(*xs)
            for s, x in zip(self.static_in, xs):
                s.copy_(x)
            self.graph.replay()
            return tree_map(lambda t: t.clone() if isinstance(t, torch.Tensor) else t, self.static_out)

    return CudaGraphed


_GRAPHED: type | None = None


# ---------------------------------------------------------------- measurement

def relative_error(a: Any, b: Any) -> float:
    """max |a - b| / max |b| over (possibly nested) tensor outputs."""
    import torch

    if isinstance(b, torch.Tensor):
        scale = float(b.abs().max()) if b.numel() else 0.0
        return float((a - b).abs().max()) / (scale or 1.0) if b.numel() else 0.0
    if isinstance(b, (tuple, list)):
        return max((relative_error(x, y) for x, y in zip(a, b)), default=0.0)
    if isinstance(b, dict):
        return max((relative_error(a[k], b[k]) for k in b), default=0.0)
    return 0.0


def paired_scores(fns: dict[str, Callable], inputs: tuple, budget_s: float = 2.0, rounds: int = 200,
                  warmup: int = 2) -> dict[str, float]:
    """Median over rounds of time(candidate) / time(unoptimised) in the same round: up to ``rounds``
    rounds within ``budget_s`` seconds (at least 5), so that small models get many and large ones few."""
    import torch

    order = list(fns.items())
    shuffle = random.Random(0).shuffle
    times: dict[str, list[float]] = {k: [] for k in fns}
    # kernels on a GPU run asynchronously: a time without a synchronize measures the launch only
    cuda = any(x.device.type == "cuda" for x in inputs)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with torch.inference_mode():
        for f in fns.values():
            for _ in range(warmup):
                f(*inputs)
        sync()
        start = time.perf_counter()
        for r in range(rounds):
            shuffle(order)
            for name, f in order:
                t = time.perf_counter()
                f(*inputs)
                sync()
                times[name].append(time.perf_counter() - t)
            if r >= 4 and time.perf_counter() - start > budget_s:
                break
    base = times["unoptimised"]
    return {k: statistics.median(x / y for x, y in zip(v, base)) for k, v in times.items()}


def tune_module(module: nn.Module, batch: int = 1, *, inputs: tuple[torch.Tensor, ...] | None = None,
                cache_dir: str | Path | None = None, budget_s: float = 2.0,
                log: Callable[[str], None] | None = None) -> nn.Module:
    """The fastest candidate for this batch size, device and thread count (see the module docstring).

    The result carries ``netc_choice`` (the candidate's name), ``netc_scores`` (time / unoptimised per
    candidate, or ``None`` when the decision came from the cache) and ``netc_graph``/``input_names``.
    """
    import torch

    from netc.backend.build import example_inputs

    graph = module.netc_graph
    if inputs is None:
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        inputs = tuple(x.to(device) for x in example_inputs(graph, batch=batch, seed=0))
    if any(x.device.type == "cuda" for x in inputs):
        torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN's algorithm search pays once (see above)
    key = decision_key(graph, inputs)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = cache / f"{key}.json"
    builders = candidates(module.eval(), inputs)
    chosen: str | None = None
    scores: dict[str, float] | None = None
    if entry.exists():
        try:
            chosen = json.loads(entry.read_text())["choice"]
        except (OSError, ValueError, KeyError):
            chosen = None
        if chosen not in builders:
            chosen = None
    if chosen is not None:
        try:
            return _finish(builders[chosen](), module, chosen, None)
        except Exception:  # noqa: BLE001  a cached choice this torch can no longer build: measure again
            chosen = None
    # 1. build every candidate and check its outputs against the unoptimised module's
    with torch.inference_mode():
        reference = module(*inputs)
    built: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, build in builders.items():
        try:
            cand = build()
            with torch.inference_mode():
                err = relative_error(cand(*inputs), reference)
        except Exception as e:  # noqa: BLE001  a candidate torch cannot build here is simply not kept
            errors[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            continue
        if err <= TOLERANCE:
            built[name] = cand
        else:
            errors[name] = f"outputs differ by {err:.1e} (relative), over {TOLERANCE}"
    # 2. time them, paired against unoptimised; 3. keep the fastest
    scores = paired_scores(built, inputs, budget_s)
    best = min(scores, key=lambda k: (scores[k], k != "unoptimised"))
    # a candidate must beat the unoptimised module by more than the timing noise: a model no pass
    # changes (an RNN) otherwise gets a look-alike chosen on a coin toss
    chosen = best if scores[best] <= 1.0 - MARGIN else "unoptimised"
    if log is not None:
        log(f"tuned: {chosen} " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(scores.items(), key=lambda kv: kv[1])))
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(".tmp")
        tmp.write_text(json.dumps({"choice": chosen, "scores": scores, "skipped": errors,
                                   "shapes": [list(x.shape) for x in inputs],
                                   "threads": torch.get_num_threads(), "torch": torch.__version__}, indent=1))
        tmp.replace(entry)
    except OSError:
        pass  # an unwritable cache only costs a re-measurement next time
    return _finish(built[chosen], module, chosen, scores)


def _finish(fast: Any, source: nn.Module, choice: str, scores: dict[str, float] | None) -> nn.Module:
    """Every choice as an ``nn.Module`` carrying netc's attributes (a frozen TorchScript module takes them as
    it is: no wrapper, whose call would cost time on models whose forward is microseconds)."""
    from torch import nn

    if fast is source:  # a shallow copy (shared weights): the attributes below stay off the caller's module,
        fast = copy.copy(source)  # and no wrapper's call costs time on a model whose forward is microseconds
    fast.netc_graph = getattr(fast, "netc_graph", None) or source.netc_graph
    fast.netc_source_graph = getattr(source, "netc_source_graph", None) or source.netc_graph
    fast.input_names = getattr(source, "input_names", None)
    fast.netc_choice = choice
    fast.netc_scores = scores
    assert isinstance(fast, nn.Module)
    return fast.eval()
