"""Time DP-free attention, fast path (scan or FFT) against the dense reference, side by side.

Used by ``book/framework.md`` ("Sequence modelling with Transformers"), section
"DP-free attention is a convolution", by ``book/reproduce.md`` ("Reproducing the paper at
scale", section "What a training step costs"), and by ``txtheory bench``.

    from txtheory.bench import bench_attention, format_bench
    print(format_bench(bench_attention(T=1000, H=64, B=100, D=16)))

What is timed: one forward and one backward pass (loss = y.square().mean(), gradients
for the layer's parameters) of a single ``MultiHeadAttention(D, H, rpe, score="free")``
on x: (B, T, D), for

* ``fast``:       path="fast" over all T positions: the chunked scan for softmax lin-RPE,
  the quadrature scan for softmax log-RPE (where its error budget holds), the FFT
  convolution otherwise (see ``txtheory.attention``);
* ``fft``:        path="fft", the exact FFT, timed too where ``fast`` is not it (softmax
  forms), so a scan is seen against the path it replaced;
* ``log_scan``:   for a normalisation-free log layer, the quadrature scan with Z = 1, to
  see whether the construction that pays in the softmax form pays there (it is not what
  ``fast`` takes: there the FFT merges the heads in frequency space);
* ``dense``:      path="dense", the T×T reference over all T positions;
* ``dense_last``: path="dense" restricted to the last position (``positions=[T-1]``),
  which is all a one-layer model needs when its loss reads one position.

The three are interleaved inside each repeat, so a machine that slows down mid-run
slows all of them alike; each figure is the best of ``repeats``.

For the softmax form there is also the anchor a practitioner would write instead:
``torch.nn.functional.scaled_dot_product_attention`` with the RPE as an additive (H, T, T)
mask (zero queries and keys, so only the mask scores). Its CPU kernel materialises the
mask for every sequence, (B, H, T, T), so it is timed at the largest batch whose
(B, H, T, T) float32 tensor stays under ``SDPA_BYTES`` and scaled linearly to B: the
table labels it so.

``bench_experiments`` runs registered experiments' own runners inside ``train.probe``: every
model an experiment would train runs a few steps, and its seconds per step times its
configured steps gives the training time of that experiment at that scale (evaluation and
any fits the runner makes are not counted).

``bench_architectures`` times one AdamW training step of every architecture of
``txtheory.arena`` (``book/suggestions.md``) on one task at matched parameters, the
architectures interleaved inside each repeat, and gives each as a ratio to the fastest.

What the memory figures are (``memory=True``): for each path, the growth of the peak
resident set size (RSS) of a *fresh Python process* over one forward+backward pass:
peak RSS after the pass minus peak RSS just before it (Linux's VmHWM, elsewhere
``ru_maxrss``), with the same layer and input rebuilt in that process. A fresh process
is used because, inside a long-running one, the peak RSS only grows and freed memory is
not always returned to the system, so deltas there mean little. The figure includes
everything the pass allocates (activations kept for backward, gradients, temporaries)
and nothing allocated before it; on CUDA it is ``torch.cuda.max_memory_allocated``
instead, measured in this process.
"""
from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from . import rpe as rpe_mod
from ._checks import check_choice, check_int
from .attention import MultiHeadAttention
from .kinds import ENCODINGS
from .powerlaw import head_error_bound

DTYPES = {"float32": torch.float32, "float64": torch.float64}
PATHS = ("fast", "dense", "dense_last", "fft", "log_scan")
SDPA_BYTES = 2**30  # the anchor's (B, H, T, T) mask is kept under this size (1 GiB)


def bench_attention(
    T: int = 1000,
    H: int = 64,
    B: int = 100,
    D: int = 16,
    dtype: str = "float32",
    normalized: bool = False,
    repeats: int = 3,
    rpe: str = "log",
    *,
    memory: bool = True,
    device: str = "cpu",
    seed: int = 0,
) -> dict:
    """Time forward+backward of DP-free attention on the fast and dense paths.

    Returns a JSON-able dict: "config" (the arguments, torch threads, device),
    "fast_path" (which path ``fast`` took: "scan", "log scan" or "FFT"),
    "ms" {path: best time in milliseconds} ("fft" only where it is not ``fast``),
    "ratio" (dense / fast), "ratio_last" (dense_last / fast), "max_abs_diff" (max
    |fast - dense| over the outputs), "error_bound" (the log scan's proved bound on that
    difference in exact arithmetic, Σ_h ||W_OV^h||_∞ B(p_h) max|x|, else None), "nodes"
    (the log scan's J + 1 carried rates, else None), "memory_mb" {path: peak memory
    growth in MiB} or None, "memory_method".
    """
    args = _check_args(T, H, B, D, dtype, normalized, repeats, rpe, memory, device, seed)
    repeats = args.pop("repeats")
    attn, x = _setup(**args, device=device)
    with torch.no_grad():
        diff = (attn(x, path="fast") - attn(x, path="dense")).abs().max().item()
    fast_path, bound, nodes = "FFT", None, None
    if args["normalized"] and rpe == "lin":
        fast_path = "scan"
    elif args["normalized"] and rpe == "log":
        within, grid = attn.log_scan_plan(T, DTYPES[dtype])
        if within:
            fast_path, nodes = "log scan", (grid.J + 1 if grid is not None else 0)
            bound = log_scan_bound(attn, x, grid)
    paths = [p for p in PATHS if (p != "fft" or fast_path != "FFT")
             and (p != "log_scan" or (rpe == "log" and not args["normalized"]))]

    best = {p: float("inf") for p in paths}
    for _ in range(repeats):
        for p in paths:  # interleaved: each repeat times every path once
            best[p] = min(best[p], _time_pass(attn, x, p))

    if not memory:
        mem, method = None, None
    elif device == "cuda":
        mem = {p: _cuda_peak_mb(attn, x, p) for p in paths}
        method = "torch.cuda.max_memory_allocated during one forward+backward pass"
    else:
        mem = {p: _fresh_process_peak_mb(args, p) for p in paths}
        method = "peak RSS growth of a fresh process over one forward+backward pass"

    ms = {p: 1e3 * t for p, t in best.items()}
    return {
        "config": {**args, "repeats": repeats, "device": device, "threads": torch.get_num_threads()},
        "ms": ms,
        "ratio": ms["dense"] / ms["fast"],
        "ratio_last": ms["dense_last"] / ms["fast"],
        "max_abs_diff": diff,
        "fast_path": fast_path,
        "error_bound": bound,
        "nodes": nodes,
        "memory_mb": mem,
        "memory_method": method,
        "sdpa": _bench_sdpa(attn, x, repeats) if args["normalized"] else None,
    }


def log_scan_bound(attn: MultiHeadAttention, x: torch.Tensor, grid) -> float:
    """The log scan's proved bound on max |scan - exact| for this layer and input:
    Σ_h ||W_O W_V^h||_∞ B(p_h) max|x| (``txtheory.powerlaw``); 0 when no lag goes through
    the quadrature (``grid`` None)."""
    if grid is None:
        return 0.0
    with torch.no_grad():
        B = head_error_bound(attn.p.double().cpu().numpy(), grid)
        norms = attn._W_OV().abs().sum(-1).amax(-1).double().cpu().numpy()  # (H,) ||W_OV^h||_∞
        return float((norms * B).sum() * float(x.abs().max()))


def _bench_sdpa(attn, x, repeats: int) -> dict:
    """The practitioner's anchor at the largest batch it can hold, scaled to x's batch:
    {"batch", "scale", "ms_measured", "ms" (scaled), "max_abs_diff" (against dense)}."""
    B, T, _ = x.shape
    per_sequence = attn.n_heads * T * T * 4  # bytes of one sequence's (H, T, T) float32 mask
    batch = max(1, min(B, SDPA_BYTES // per_sequence))
    xb = x[:batch]
    with torch.no_grad():
        diff = (sdpa_attention(attn, xb) - attn(xb, path="dense")).abs().max().item()
    best = float("inf")
    for _ in range(repeats):
        _sync(x)
        start = time.perf_counter()
        sdpa_attention(attn, xb).square().mean().backward()
        attn.zero_grad(set_to_none=True)
        _sync(x)
        best = min(best, time.perf_counter() - start)
    return {"batch": batch, "scale": B / batch, "ms_measured": 1e3 * best, "ms": 1e3 * best * B / batch,
            "max_abs_diff": diff}


def sdpa_attention(attn: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """A softmax DP-free layer written with ``scaled_dot_product_attention`` and an additive
    (H, T, T) RPE mask: the same function as ``attn(x)``, x: (B, T, D) -> (B, T, D)."""
    if not attn.normalized or attn.score != "free":
        raise ValueError("sdpa_attention writes the softmax DP-free layer (normalized=True, score='free')")
    B, T, D = x.shape
    lags = torch.arange(T, device=x.device)[:, None] - torch.arange(T, device=x.device)[None, :]
    score, ok = rpe_mod.log_weights(lags, attn.p, attn.rpe)  # (H, T, T)
    has_key = ok.any(-1, keepdim=True)  # (H, T, 1); a log row at t = 0 has none: output 0
    mask = torch.where(has_key, torch.where(ok, score, -math.inf), 0.0)  # (H, T, T)
    v = torch.einsum("btd,hvd->bhtv", x, attn.W_V)  # (B, H, T, Dv)
    zeros = v.new_zeros(B, attn.n_heads, T, 1)  # DP-free: no query, no key
    out = torch.nn.functional.scaled_dot_product_attention(zeros, zeros, v, attn_mask=mask) * has_key
    return torch.einsum("bhtv,ev->bte", out, attn.W_O)  # (B, T, D)


STAGES = ("sample", "target", "forward", "backward", "optimizer")


def bench_step(model_config, target, *, length: int, batch_size: int, loss_at: str = "last",
               steps: int = 20, seed: int = 0) -> dict:
    """Milliseconds per stage of one AdamW training step, taken two ways, interleaved step by
    step on two copies of the same model:

    * ``"fast"``, as ``train.train`` takes it: the target at the read positions only, the
      first layer on the tokens [x_t, 1] (``model.Transformer.forward``);
    * ``"plain"``: the target over the whole window, then sliced; the first layer on the
      embedding (``tokens_first = False``).

    Returns {"fast": {stage: ms}, "plain": {stage: ms}, "ratio": plain / fast in total};
    each figure is the mean over ``steps`` steps after one warm-up step.
    """
    from . import train as tr

    steps = check_int("steps", steps, minimum=1)
    models = {way: tr.build_model(model_config, seed) for way in ("fast", "plain")}
    models["plain"].tokens_first = False
    optimizers = {way: tr.adamw(m, 1e-3, 0.01) for way, m in models.items()}
    first = tr.first_read(target, length, loss_at)
    read = torch.arange(first, length)
    generator = torch.Generator().manual_seed(seed)
    ms = {way: dict.fromkeys(STAGES, 0.0) for way in models}
    for step in range(steps + 1):
        for way, model in models.items():
            clock = [time.perf_counter()]
            x = tr.SAMPLERS["pm1"](batch_size, length, target.d_in, generator=generator, dtype=model.config.dtype)
            clock.append(time.perf_counter())
            y = target(x, positions=read) if way == "fast" else target(x)[:, first:]  # (B, P, c)
            clock.append(time.perf_counter())
            query = tr._query_positions(model, first, length, x.device)
            loss = (tr._predict(model, x, first, query) - y).square().mean()
            clock.append(time.perf_counter())
            optimizers[way].zero_grad(set_to_none=True)
            loss.backward()
            clock.append(time.perf_counter())
            optimizers[way].step()
            loss.item()
            clock.append(time.perf_counter())
            if step:  # the first step warms up
                for stage, a, b in zip(STAGES, clock, clock[1:]):
                    ms[way][stage] += 1e3 * (b - a) / steps
    return {**ms, "ratio": sum(ms["plain"].values()) / sum(ms["fast"].values())}


def bench_experiments(names: list[str] | None = None, scale: str = "paper", steps: int = 3,
                      progress: bool = True) -> dict:
    """The training cost of each experiment at ``scale``, from its own runner under
    ``train.probe(steps)``: {name: {"models", "steps", "ms_per_step" (mean over models,
    weighted by their steps), "ms_per_step_max", "train_seconds" (the sum over models of
    seconds per step times steps), "error"}}. A runner that fails reports its error."""
    from tqdm import tqdm

    from . import experiments
    from .train import probe

    names = experiments.names() if names is None else [experiments.get(n).name for n in names]
    check_choice("scale", scale, experiments.SCALES)
    steps = check_int("steps", steps, minimum=1)
    out = {}
    for name in tqdm(names, desc=f"bench {scale}", disable=not progress, leave=False):
        config = experiments.config_for(name, scale)
        try:
            with probe(steps) as records:
                experiments.get(name).runner(config, progress=False)
            error = None
        except Exception as exc:  # reported beside the others, never hidden
            error = f"{type(exc).__name__}: {exc}"
        total = sum(r["steps"] for r in records)
        seconds = sum(r["seconds_per_step"] * r["steps"] for r in records)
        out[name] = {"models": len(records), "steps": total,
                     "ms_per_step": 1e3 * seconds / total if total else math.nan,
                     "ms_per_step_max": 1e3 * max((r["seconds_per_step"] for r in records), default=math.nan),
                     "train_seconds": seconds, "error": error}
    return {"scale": scale, "probe_steps": steps, "threads": torch.get_num_threads(), "experiments": out}


def format_experiments(result: dict) -> str:
    """A text table of ``bench_experiments``: per experiment, its models, steps and time."""
    lines = [f"training cost at {result['scale']} scale, {result['threads']} thread(s):",
             f"each model timed over {result['probe_steps']} steps after a warm-up step",
             f"{'experiment':<16}{'models':>7}{'steps':>10}{'ms/step':>9}{'max':>8}{'train (min)':>13}"]
    for name, r in result["experiments"].items():
        if r["error"]:
            lines.append(f"{name:<16}  failed: {r['error'][:60]}")
            continue
        lines.append(f"{name:<16}{r['models']:>7}{r['steps']:>10}{r['ms_per_step']:>9.1f}"
                     f"{r['ms_per_step_max']:>8.1f}{r['train_seconds'] / 60:>13.1f}")
    total = sum(r["train_seconds"] for r in result["experiments"].values() if not r["error"])
    lines.append(f"{'total':<16}{'':>7}{'':>10}{'':>9}{'':>8}{total / 60:>13.1f}")
    return "\n".join(lines)


def format_bench(result: dict) -> str:
    """A small text table of a ``bench_attention`` result."""
    c = result["config"]
    norm = "normalised" if c["normalized"] else "normalisation-free"
    fast = {"scan": "chunked scan", "log scan": f"quadrature scan, {result.get('nodes')} carried rates",
            "FFT": "FFT"}[result.get("fast_path", "FFT")]
    lines = [
        f"DP-free attention, {c['rpe']}-RPE, {norm}: T={c['T']} H={c['H']} B={c['B']} D={c['D']} "
        f"{c['dtype']} on {c['device']} ({c['threads']} threads), forward+backward, best of {c['repeats']}; "
        f"fast = {fast}",
        f"{'path':<12}{'time (ms)':>12}{'peak memory (MiB)':>20}",
    ]
    mem = result.get("memory_mb")
    for p in result["ms"]:
        m = f"{mem[p]:.1f}" if mem else "-"
        lines.append(f"{p:<12}{result['ms'][p]:>12.1f}{m:>20}")
    sdpa = result.get("sdpa")
    if sdpa:
        lines.append(f"{'sdpa':<12}{sdpa['ms']:>12.1f}{'-':>20}   scaled: measured at B={sdpa['batch']} "
                     f"({sdpa['ms_measured']:.1f} ms) x {sdpa['scale']:g}")
    lines.append(f"dense / fast = {result['ratio']:.1f}x;  dense_last / fast = {result['ratio_last']:.2f}x;  "
                 f"max |fast - dense| = {result['max_abs_diff']:.1e}")
    if result.get("error_bound") is not None:
        lines.append(f"fft / fast = {result['ms']['fft'] / result['ms']['fast']:.1f}x;  the scan's proved "
                     f"error bound (exact arithmetic) = {result['error_bound']:.1e}")
    if sdpa:
        lines.append(f"sdpa / fast = {sdpa['ms'] / result['ms']['fast']:.1f}x (scaled);  "
                     f"max |sdpa - dense| = {sdpa['max_abs_diff']:.1e}")
    if mem:
        lines.append(f"memory: {result['memory_method']}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------
# Helpers


def _check_args(T, H, B, D, dtype, normalized, repeats, rpe, memory, device, seed) -> dict:
    """Every argument checked; returns the layer's arguments and ``repeats``."""
    T = check_int("T", T, minimum=1)
    H = check_int("H", H, minimum=1)
    B = check_int("B", B, minimum=1)
    D = check_int("D", D, minimum=1)
    check_choice("dtype", dtype, tuple(DTYPES))
    check_choice("normalized", normalized, (True, False))
    repeats = check_int("repeats", repeats, minimum=1)
    check_choice("rpe", rpe, ENCODINGS)
    check_choice("memory", memory, (True, False))
    check_choice("device", device, ("cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device must be 'cpu' here: torch.cuda.is_available() is False")
    seed = check_int("seed", seed, minimum=0)
    return dict(T=T, H=H, B=B, D=D, dtype=dtype, normalized=bool(normalized), rpe=rpe, seed=seed, repeats=repeats)


def _setup(T, H, B, D, dtype, normalized, rpe, seed, device="cpu"):
    """The layer and its input, the same for the same arguments: (attn, x: (B, T, D))."""
    torch.manual_seed(seed)
    attn = MultiHeadAttention(D, H, rpe=rpe, score="free", normalized=normalized,
                              p_range=(0.05, 2.0), dtype=DTYPES[dtype]).to(device)
    x = torch.randn(B, T, D, dtype=DTYPES[dtype], generator=torch.Generator().manual_seed(seed + 1)).to(device)
    return attn, x


def _one_pass(attn, x, path: str) -> None:
    """Forward + backward of one path."""
    if path == "dense_last":
        y = attn(x, positions=torch.tensor([x.shape[1] - 1], device=x.device), path="dense")  # (B, 1, D)
    elif path == "log_scan":  # the scan where forward does not take it (normalisation-free)
        _, grid = attn.log_scan_plan(x.shape[1], x.dtype)
        y = attn._forward_log_scan(x, attn._W_OV(), grid)
    else:
        y = attn(x, path=path)  # (B, T, D)
    y.square().mean().backward()
    attn.zero_grad(set_to_none=True)


def _time_pass(attn, x, path: str) -> float:
    """Seconds for one forward+backward pass."""
    _sync(x)
    start = time.perf_counter()
    _one_pass(attn, x, path)
    _sync(x)
    return time.perf_counter() - start


def _sync(x):
    if x.is_cuda:
        torch.cuda.synchronize()


def _cuda_peak_mb(attn, x, path: str) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    _one_pass(attn, x, path)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def _peak_rss_mb() -> float:
    """Peak RSS of this process so far, in MiB.

    On Linux, VmHWM from /proc/self/status: it belongs to the process image, whereas
    ``ru_maxrss`` survives execve and would start the child at its parent's peak.
    Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB -> MiB
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def _fresh_process_peak_mb(args: dict, path: str) -> float:
    """Run one pass of ``path`` in a fresh Python process; return its peak RSS growth (MiB)."""
    code = "import sys; from txtheory.bench import _child; _child(sys.argv[1], sys.argv[2])"
    env = dict(os.environ)  # let the child import this very copy of txtheory
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                      env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", code, json.dumps(args), path],
                         capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"the memory measurement of path {path!r} failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def _child(args_json: str, path: str) -> None:
    """Entry point of the fresh process: print the peak RSS growth of one pass, in MiB."""
    attn, x = _setup(**json.loads(args_json))
    # Warm the allocator and torch's lazy initialisation on a tiny input first, so that
    # their one-off cost is not counted against the pass.
    _one_pass(attn, x[:1, :2], path if path not in ("dense_last", "log_scan") else "dense")
    before = _peak_rss_mb()
    _one_pass(attn, x, path)
    print(max(0.0, _peak_rss_mb() - before))


def bench_architectures(task: str = "mqar", *, length: int = 64, d_model: int = 32, n_layers: int = 2,
                        n_heads: int = 4, ffn_width: int = 64, batch_size: int = 32, steps: int = 3,
                        repeats: int = 5, seed: int = 0, threads: int | None = 1) -> dict:
    """Milliseconds per AdamW training step (forward, backward, update) of each architecture
    of ``arena.ARCHITECTURES`` on ``task``, at matched parameters (``arena.matched_configs``).

    Each repeat runs ``steps`` steps of every architecture in turn on one fixed batch;
    each figure is the best repeat's mean. ``threads``: torch's CPU threads while timing
    (1, as the experiment trains; None: as set). The loss reads the positions where an
    answer is due (token tasks, as ``train_tokens``) or every valid position through a
    forward pass over the whole window (regression; ``train`` may ask for fewer).
    Returns {"task", "settings", "ms": {arch: ms},
    "ratio": {arch: ms / fastest ms}, "params": {arch: count}}.
    """
    from . import arena
    from .model import count_params
    from .train import adamw, build_model, torch_threads

    spec = arena.check_task(task)
    for name, value, low in (("length", length, 2), ("steps", steps, 1), ("repeats", repeats, 1),
                             ("batch_size", batch_size, 1), ("seed", seed, 0)):
        check_int(name, value, minimum=low)
    if threads is not None:
        check_int("threads", threads, minimum=1)
    configs = arena.matched_configs(spec, length=length, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                                    ffn_width=ffn_width)
    generator = torch.Generator().manual_seed(seed)
    target = spec.build(length)
    if spec.kind == "tokens":
        x, y = target.sample(batch_size, generator)

        def loss_of(model):
            asked = y >= 0
            return torch.nn.functional.cross_entropy(model(x)[asked], y[asked])
    else:
        x = torch.sign(torch.randn(batch_size, length, 1, generator=generator))
        y = target(x)

        def loss_of(model):
            return (model(x)[:, target.first_valid:] - y[:, target.first_valid:]).square().mean()

    models = {a: build_model(c, seed) for a, c in configs.items()}
    optimizers = {a: adamw(m, 1e-3, 0.0) for a, m in models.items()}
    best = dict.fromkeys(models, math.inf)
    with torch_threads(threads):
        used = torch.get_num_threads()
        for _ in range(repeats):
            for a, model in models.items():
                start = time.perf_counter()
                for _ in range(steps):
                    optimizers[a].zero_grad(set_to_none=True)
                    loss_of(model).backward()
                    optimizers[a].step()
                best[a] = min(best[a], (time.perf_counter() - start) / steps * 1e3)
    fastest = min(best.values())
    return {"task": spec.name, "ms": best, "ratio": {a: v / fastest for a, v in best.items()},
            "params": {a: count_params(c) for a, c in configs.items()},
            "settings": dict(length=length, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                             batch_size=batch_size, steps=steps, repeats=repeats, threads=used)}


def format_architectures(result: dict) -> str:
    """A text table of ``bench_architectures``: ms per step and the ratio to the fastest."""
    lines = [f"one training step on {result['task']} ({result['settings']['threads']} threads)",
             f"{'architecture':<12} {'params':>8} {'ms/step':>9} {'ratio':>7}"]
    for a in sorted(result["ms"], key=result["ms"].get):
        lines.append(f"{a:<12} {result['params'][a]:>8} {result['ms'][a]:>9.2f} {result['ratio'][a]:>7.2f}")
    return "\n".join(lines)
