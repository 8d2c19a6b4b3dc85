"""The trained experiments of the Task II chapter (``book/adaptive-memory.md``).

* ``prop42``: Proposition 4.2 on attention alone (a linear readout): DP-free, DP and TMX
  layers trained on the witness y_t = x_{t-g(x_t)}; the DP-free rows also get their exact
  sup error (``construct.affine_sup_error``), which the proposition bounds below.
* ``boolean``: the paper's adaptive Boolean example, with its lags (1, 2) and with lags
  (8, 16) above the head count, for 1 to 3 layers and five kinds of attention at
  matched parameter counts (DP against DP-free against TMX, insight 3b).
* ``pointer``: the K-step pointer chase, K = 1, 2, 3, trained with L = 1 .. K + 2 layers
  at matched parameter counts: where does the error drop (Theorem 4.4, insight 1a)?
* ``pointer_heads``: the 3-hop chase with L = 1 .. 4 layers and 4, 8, 16 heads per layer,
  3 seeds, and each trained layer's attention on the chase's hop positions.
* ``dp_threshold``: one adaptive memory with lags (1, 6) and an FFN: DP against DP-free
  (softmax and normalisation-free) as the heads per layer grow.
* ``independent``: M = 3 independent adaptive memories, 2 layers against M + 1 = 4, for
  several head counts (Proposition 4.5).

Normalisation-free layers train with the attention's overflow guard and initial rates in
``NF_P_RANGE`` (see ``txtheory.attention``): from the default range, slow heads sum
hundreds of unnormalised weights and the first steps diverge.
"""
from __future__ import annotations

import torch

from txtheory import construct, targets
from txtheory.experiments import Experiment, register, train_model
from txtheory.model import TransformerConfig, count_params
from txtheory.train import torch_threads

NF_P_RANGE = (1.0, 4.0)  # initial rates of normalisation-free layers: fast-decaying heads
# name -> (score, normalised): the kinds of attention the experiments compare
ATTENTION = {
    "dp": ("dp", True), "free": ("free", True), "dp_nf": ("dp", False), "free_nf": ("free", False),
    "tmx_nf": ("tmx", False),
}


def attention_kind(name: str) -> dict:
    """The model settings of one of ``ATTENTION``'s kinds."""
    score, normalized = ATTENTION[name]
    extra = {} if normalized else {"p_range": NF_P_RANGE}
    return {"score": score, "normalized": normalized, **extra}


def matched_width(config: dict, budget: int, **architecture) -> int:
    """The FFN width whose model has the parameter count closest to ``budget``."""
    def params(width: int) -> int:
        return count_params(TransformerConfig(d_in=1, d_out=1, d_model=config["d_model"], ffn_width=width,
                                              **architecture))
    return min(range(1, 4097), key=lambda w: (abs(params(w) - budget), w))


def _row(model, fit, **labels) -> dict:
    return {**labels, **fit.eval, "params": model.n_params(), "final_loss": fit.losses[-1],
            "seconds": fit.seconds}


# ------------------------------------------------------------------------------------
# Proposition 4.2 on attention alone


def run_prop42(config: dict, progress: bool = False) -> dict:
    """Train one attention layer with a linear readout on the witness, per kind and H."""
    target = targets.prop42_witness()
    cfg = dict(config, sampler="ternary")
    rows = []
    for kind in config["kinds"]:
        rpes = ["lin"] if ATTENTION[kind][0] != "free" else config["rpes"]
        for rpe in rpes:
            for n_heads in config["heads"]:
                for seed in range(config["restarts"]):
                    model, fit = train_model(dict(cfg, seed=seed), target, progress, n_heads=n_heads, rpe=rpe,
                                             readout="linear", **attention_kind(kind))
                    row = _row(model, fit, kind=kind, rpe=rpe, n_heads=n_heads, seed=seed)
                    if kind.startswith("free"):  # affine in the tokens: its exact sup error
                        c, r = construct.affine_filter(model, config["length"] - 1, config["length"])
                        row["sup_error"] = construct.affine_sup_error(c, r)
                    rows.append(row)
    return {"rows": rows, "best_affine": construct.best_affine_error()}


register(Experiment(
    name="prop42",
    split="kinds",  # the runner's outermost loop: each value runs alone
    title="Prop 4.2 on attention alone: DP-free layers stay at error >= 1, DP does not",
    chapter="book/adaptive-memory.md",
    description="Trained evidence: witness errors of one attention layer with a linear readout.",
    scales={
        "ci": dict(kinds=["free", "free_nf", "dp_nf", "tmx_nf"], rpes=["lin", "log"], heads=[2, 8],
                   restarts=1, d_model=4, steps=300, batch_size=32, length=24, lr=1e-2, eval_size=200,
                   threads=1),
        "full": dict(kinds=["free", "free_nf", "dp_nf", "tmx_nf"], rpes=["lin", "log"], heads=[1, 4, 16, 64],
                     restarts=3, d_model=4, steps=1000, batch_size=64, length=32, lr=1e-2, eval_size=1000,
                     threads=None),
        "paper": dict(kinds=["free", "free_nf", "dp_nf", "tmx_nf"], rpes=["lin", "log"],
                      heads=[1, 4, 16, 64], restarts=5, d_model=4, steps=10000, batch_size=100, length=100,
                      lr=1e-3, eval_size=1000, threads=None),
    },
    runner=run_prop42,
))


# ------------------------------------------------------------------------------------
# The Boolean example, and DP against DP-free against TMX


def run_boolean(config: dict, progress: bool = False) -> dict:
    """The adaptive Boolean target per lag pair, depth and attention kind, matched params."""
    rows = []
    for lags in config["lag_pairs"]:
        target = targets.adaptive_boolean(lags)
        budget = count_params(TransformerConfig(
            d_in=1, d_out=1, d_model=config["d_model"], n_layers=max(config["layers"]),
            n_heads=config["n_heads"], ffn_width=config["ffn_width"], score="dp"))
        for n_layers in config["layers"]:
            for kind in config["kinds"]:
                arch = dict(n_layers=n_layers, n_heads=config["n_heads"], rpe="lin", **attention_kind(kind))
                width = matched_width(config, budget, **arch)
                model, fit = train_model(config, target, progress, ffn_width=width, **arch)
                rows.append(_row(model, fit, lags=list(lags), n_layers=n_layers, kind=kind, ffn_width=width))
    return {"rows": rows}


register(Experiment(
    name="boolean",
    split="lag_pairs",  # the runner's outermost loop: each value runs alone
    title="The adaptive Boolean example: depth, and DP against DP-free against TMX",
    chapter="book/adaptive-memory.md",
    description="Trained evidence: errors per lag pair, depth and attention kind at matched parameters.",
    scales={
        "ci": dict(lag_pairs=[[1, 2]], layers=[1, 2], kinds=["dp", "free", "tmx_nf"], n_heads=4, d_model=8,
                   ffn_width=16, steps=200, batch_size=32, length=24, lr=3e-3, seed=0, eval_size=200,
                   threads=1),
        "full": dict(lag_pairs=[[1, 2], [8, 16]], layers=[1, 2, 3], kinds=list(ATTENTION), n_heads=4,
                     d_model=16, ffn_width=32, steps=1000, batch_size=32, length=48, lr=3e-3, seed=0,
                     eval_size=500, threads=None),
        "paper": dict(lag_pairs=[[1, 2], [8, 16]], layers=[1, 2, 3], kinds=list(ATTENTION), n_heads=8,
                      d_model=16, ffn_width=64, steps=10000, batch_size=100, length=100, lr=1e-3, seed=0,
                      eval_size=1000, threads=None),
    },
    runner=run_boolean,
))


# ------------------------------------------------------------------------------------
# Depth against nesting: the pointer chase


def run_pointer(config: dict, progress: bool = False) -> dict:
    """Pointer chases of K steps, trained with L = 1 .. K + 2 layers at matched params."""
    rows = []
    deepest = max(config["steps_k"]) + 2
    budget = count_params(TransformerConfig(
        d_in=1, d_out=1, d_model=config["d_model"], n_layers=deepest, n_heads=config["n_heads"],
        ffn_width=config["ffn_width"], score="dp"))
    for K in config["steps_k"]:
        target = targets.pointer_chase(K, config["lags"])
        for n_layers in range(1, K + 3):
            for seed in range(config["seeds"]):
                arch = dict(n_layers=n_layers, n_heads=config["n_heads"], rpe="lin", score="dp")
                width = matched_width(config, budget, **arch)
                model, fit = train_model(dict(config, seed=seed), target, progress, ffn_width=width, **arch)
                rows.append(_row(model, fit, K=K, n_layers=n_layers, seed=seed, ffn_width=width))
    return {"rows": rows, "budget": budget}


register(Experiment(
    name="pointer",
    title="Depth against nesting: K-step pointer chases with L = 1 .. K + 2 layers",
    chapter="book/adaptive-memory.md",
    description="Trained evidence: error against depth, one line per K, at matched parameter counts.",
    scales={
        "ci": dict(steps_k=[1, 2], lags=[1, 2], seeds=1, n_heads=4, d_model=8, ffn_width=16, steps=300,
                   batch_size=32, length=24, lr=3e-3, seed=0, eval_size=200, threads=1),
        "full": dict(steps_k=[1, 2, 3], lags=[1, 2], seeds=2, n_heads=4, d_model=16, ffn_width=32,
                     steps=1500, batch_size=32, length=32, lr=3e-3, seed=0, eval_size=500, threads=None),
        "paper": dict(steps_k=[1, 2, 3, 4], lags=[1, 2], seeds=3, n_heads=8, d_model=16, ffn_width=64,
                      steps=10000, batch_size=100, length=100, lr=1e-3, seed=0, eval_size=1000,
                      threads=None),
    },
    runner=run_pointer,
))


# ------------------------------------------------------------------------------------
# The pointer chase with a heads control, and what each trained layer attends to


def random_pm1(n: int, length: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    """n seeded random ±1 sequences of ``length`` tokens: (n, length, 1)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (n, length, 1), generator=g) * 2 - 1).to(dtype)


def chase_keys(x: torch.Tensor, steps: int, lags) -> tuple[torch.Tensor, list, list]:
    """The chase's keys from every valid query t >= steps · max(lags) of x (n, T, 1):
    (queries (P,), hops, decoys), hops[j] (n, P) the position n^{j+1}(t) with
    n(s) = s - g(x_s), decoys[j] the key the same hop reaches had it taken the other lag."""
    lag = torch.where(x[..., 0] > 0, lags[0], lags[1])  # (n, T): g(x_s)
    other = torch.where(x[..., 0] > 0, lags[1], lags[0])  # the lag the token did not pick
    queries = torch.arange(steps * max(lags), x.shape[1])
    pos = queries.expand(x.shape[0], -1).clone()  # (n, P)
    hops, decoys = [], []
    for _ in range(steps):
        decoys.append(pos - other.gather(1, pos))
        pos = pos - lag.gather(1, pos)  # n(s) = s - g(x_s)
        hops.append(pos)
    return queries, hops, decoys


def heldout_r2(features: torch.Tensor, y: torch.Tensor) -> float:
    """R² on the second half of the sequences of the least-squares map from ``features``
    (n, P, F) to y (n, P), fitted on the first half."""
    half = features.shape[0] // 2
    X = features.double().reshape(features.shape[0], -1, features.shape[-1])
    train, test = X[:half].reshape(-1, X.shape[-1]), X[half:].reshape(-1, X.shape[-1])
    y = y.double()
    # SVD-based: unused or constant features make the design rank-deficient; one thread,
    # so the last bits do not depend on the caller's thread count
    with torch_threads(1):
        w = torch.linalg.lstsq(train, y[:half].reshape(-1, 1), driver="gelsd").solution
    resid = test @ w - y[half:].reshape(-1, 1)
    return float(1 - resid.pow(2).mean() / y[half:].var())


@torch.no_grad()
def hop_attention(model, steps: int, lags, length: int, n: int = 256, seed: int = 0) -> list[dict]:
    """Where each layer of a trained model looks on the ``steps``-hop chase, per layer and
    hop j = 1..steps, over n random ±1 sequences and every valid query t:

    * ``weight``: the largest, over heads, mean attention weight on the hop's key n^j(t)
      (n(s) = s - g(x_s));
    * ``selectivity``: the largest, over heads, mean of that weight minus the weight on
      the decoy, the key the chase would reach if its last hop took the other lag. A head
      whose kernel does not depend on the tokens scores about 0 (each lag is the true one
      as often as the decoy); a head that moves its weight to the lag the tokens name,
      as the constructions' heads do, scores up to 1.
    """
    x = random_pm1(n, length, seed, model.config.dtype)
    queries, hops, decoys = chase_keys(x, steps, lags)
    streams = model.residual_streams(x)
    layers = []
    for attn, norm, h in zip(model.attn, model.norm_attn, streams):
        w = attn.weights(norm(h), queries)  # (n, H, P, T)

        def on(keys):  # (n, H, P): each head's weight on the given key per query
            return w.gather(-1, keys[:, None, :, None].expand(-1, w.shape[1], -1, 1))[..., 0]

        weight = [float(on(k).mean((0, 2)).max()) for k in hops]
        selectivity = [float((on(k) - on(d)).mean((0, 2)).max()) for k, d in zip(hops, decoys)]
        layers.append({"weight": weight, "selectivity": selectivity})
    return layers


@torch.no_grad()
def hop_decoding(model, steps: int, lags, length: int, n: int = 512, seed: int = 1) -> list[dict]:
    """What the residual stream holds after each layer, by linear probes: per layer l (the
    stream after its FFN, or, for the last, the readout's input), the held-out R²
    (``heldout_r2``) of a least-squares map from the stream at a valid position t to

    * ``chase_r2``: each hop's token c_j(t) = x_{n^j(t)}, j = 1..steps;
    * ``lag_r2``: each raw token x_{t-s}, s = 1..steps · max(lags).

    Fit on the first half of n random ±1 sequences, scored on the second. R² near 1: the
    layer has the token, linearly readable; near 0: not linearly (it may still be there
    in a form a linear map cannot read). ``raw_window_r2`` is the baseline."""
    x = random_pm1(n, length, seed, model.config.dtype)
    queries, hops, _ = chase_keys(x, steps, lags)
    chase = [x[..., 0].gather(1, pos) for pos in hops]  # (n, P) each
    raw = [x[:, queries - s, 0] for s in range(1, steps * max(lags) + 1)]
    streams = model.residual_streams(x)
    last = streams[-1]
    readout_input = model._skip(last) + model.attn[-1].attend(model.norm_attn[-1](last), None, "auto")
    layers = []
    for h in streams[1:] + [readout_input]:  # after layer 1, ..., after layer L
        feats = torch.cat([h[:, queries], torch.ones_like(h[:, queries, :1])], -1)  # (n, P, D+1)
        layers.append({"chase_r2": [heldout_r2(feats, c) for c in chase],
                       "lag_r2": [heldout_r2(feats, r) for r in raw]})
    return layers


def raw_window_r2(steps: int, lags, length: int, n: int = 4096, seed: int = 0) -> list[float]:
    """The baseline of ``hop_decoding``: the held-out R² of the best linear map from the
    raw window x_t .. x_{t - steps · max(lags)} (and 1) to each hop's token. No linear
    read of the tokens alone does better (``book/adaptive-memory.md``, the heads control)."""
    x = random_pm1(n, length, seed)
    queries, hops, _ = chase_keys(x, steps, lags)
    window = torch.stack([x[:, queries - s, 0] for s in range(steps * max(lags) + 1)], -1)
    feats = torch.cat([window, torch.ones_like(window[..., :1])], -1)  # (n, P, far + 2)
    return [heldout_r2(feats, x[..., 0].gather(1, pos)) for pos in hops]


def run_pointer_heads(config: dict, progress: bool = False) -> dict:
    """The K-hop chase for L = 1 .. K + 1 layers and several heads per layer, parameters
    matched across depth at each head count (not across head counts), with each model's
    hop attention (``hop_attention``) and linear probes of its layers (``hop_decoding``)."""
    rows = []
    budgets = {}
    for n_heads in config["heads"]:
        for K in config["steps_k"]:
            target = targets.pointer_chase(K, config["lags"])
            budget = count_params(TransformerConfig(
                d_in=1, d_out=1, d_model=config["d_model"], n_layers=K + 1, n_heads=n_heads,
                ffn_width=config["ffn_width"], score="dp"))
            budgets[f"{n_heads},{K}"] = budget
            for n_layers in range(1, K + 2):
                arch = dict(n_layers=n_layers, n_heads=n_heads, rpe="lin", score="dp")
                width = matched_width(config, budget, **arch)
                for seed in range(config["seeds"]):
                    model, fit = train_model(dict(config, seed=seed), target, progress, ffn_width=width, **arch)
                    rows.append(_row(model, fit, K=K, n_heads=n_heads, n_layers=n_layers, seed=seed,
                                     ffn_width=width,
                                     hops=hop_attention(model, K, config["lags"], config["length"]),
                                     decoding=hop_decoding(model, K, config["lags"], config["length"])))
    return {"rows": rows, "budgets": budgets}


register(Experiment(
    name="pointer_heads",
    split="heads",  # the runner's outermost loop: each value runs alone
    title="The pointer chase with a heads control: depth against heads per layer, and where layers look",
    chapter="book/adaptive-memory.md",
    description="Trained evidence: errors per head count, depth and seed, with each layer's attention "
                "on the chase's hop positions.",
    scales={
        "ci": dict(steps_k=[2], heads=[2, 4], lags=[1, 2], seeds=1, d_model=8, ffn_width=16, steps=200,
                   batch_size=32, length=24, lr=3e-3, seed=0, eval_size=200, threads=1),
        "full": dict(steps_k=[3], heads=[4, 8, 16], lags=[1, 2], seeds=3, d_model=16, ffn_width=32,
                     steps=1500, batch_size=32, length=32, lr=3e-3, seed=0, eval_size=500, threads=None),
        "paper": dict(steps_k=[2, 3, 4], heads=[4, 8, 16], lags=[1, 2], seeds=3, d_model=16, ffn_width=64,
                      steps=10000, batch_size=100, length=100, lr=1e-3, seed=0, eval_size=1000,
                      threads=None),
    },
    runner=run_pointer_heads,
))


# ------------------------------------------------------------------------------------
# A trained case where the dot product should matter: one adaptive memory, lags (1, 6)


def run_dp_threshold(config: dict, progress: bool = False) -> dict:
    """y_t = x_{t-g(x_t)}, g(1), g(-1) = ``lags``, one layer with an FFN, per kind, H, seed.
    ``nf_p_range``: the initial rates of the normalisation-free kinds. ``NF_P_RANGE``'s fast
    heads give lag 6 a weight of e^{-6} at the start, and neither kind learns it."""
    target = targets.independent_memories([config["lags"]])
    rows = []
    for kind in config["kinds"]:
        arch = attention_kind(kind)
        if "p_range" in arch:
            arch["p_range"] = tuple(config["nf_p_range"])
        for n_heads in config["heads"]:
            for seed in range(config["seeds"]):
                model, fit = train_model(dict(config, seed=seed), target, progress, n_heads=n_heads, rpe="lin",
                                         ffn_width=config["ffn_width"], **arch)
                rows.append(_row(model, fit, kind=kind, n_heads=n_heads, seed=seed))
    return {"rows": rows}


register(Experiment(
    name="dp_threshold",
    split="kinds",  # the runner's outermost loop: each value runs alone
    title="One adaptive memory at lags (1, 6): DP against DP-free as the heads grow, with an FFN",
    chapter="book/adaptive-memory.md",
    description="Trained evidence: errors per attention kind, head count and seed.",
    scales={
        "ci": dict(kinds=["dp_nf", "free_nf"], heads=[2, 6], lags=[1, 6], nf_p_range=[0.2, 2.0], seeds=1,
                   d_model=8, ffn_width=16, steps=200, batch_size=32, length=24, lr=3e-3, seed=0, eval_size=200,
                   threads=1),
        "full": dict(kinds=["dp_nf", "free_nf", "dp", "free"], heads=[1, 2, 3, 4, 5, 6, 8], lags=[1, 6],
                     nf_p_range=[0.2, 2.0], seeds=3, d_model=8, ffn_width=32, steps=1500, batch_size=32,
                     length=32, lr=3e-3, seed=0, eval_size=500, threads=None),
        "paper": dict(kinds=["dp_nf", "free_nf", "dp", "free"], heads=[1, 2, 3, 4, 5, 6, 8, 16], lags=[1, 6],
                      nf_p_range=[0.2, 2.0], seeds=5, d_model=16, ffn_width=64, steps=10000, batch_size=100,
                      length=100, lr=1e-3, seed=0, eval_size=1000, threads=None),
    },
    runner=run_dp_threshold,
))


# ------------------------------------------------------------------------------------
# Independent memories: two layers with many heads, or M + 1 with few


def run_independent(config: dict, progress: bool = False) -> dict:
    """M independent adaptive memories, for each depth, head count and seed; at each head
    count the FFN widths match every depth's parameter count to that of a model with
    ``budget_layers`` layers and FFN width ``ffn_width`` (a key of its own, since the
    split runs each depth alone)."""
    target = targets.independent_memories(config["pairs"])
    rows = []
    for n_layers in config["layers"]:
        for n_heads in config["heads"]:
            budget = count_params(TransformerConfig(
                d_in=1, d_out=1, d_model=config["d_model"], n_layers=config["budget_layers"], n_heads=n_heads,
                ffn_width=config["ffn_width"], score="dp"))
            arch = dict(n_layers=n_layers, n_heads=n_heads, rpe="lin", score="dp")
            width = matched_width(config, budget, **arch)
            for seed in range(config["seeds"]):
                model, fit = train_model(dict(config, seed=seed), target, progress, ffn_width=width, **arch)
                rows.append(_row(model, fit, n_layers=n_layers, n_heads=n_heads, seed=seed, ffn_width=width))
    return {"rows": rows, "memories": len(config["pairs"])}


register(Experiment(
    name="independent",
    split="layers",  # the runner's outermost loop: each value runs alone
    title="Independent adaptive memories: 2 layers against M + 1 (Prop 4.5)",
    chapter="book/adaptive-memory.md",
    description="Trained evidence: errors per depth, head count and seed, parameters matched across depth.",
    scales={
        "ci": dict(pairs=[[1, 3], [2, 4], [3, 1]], layers=[2, 4], heads=[2, 4], seeds=1, budget_layers=4, d_model=8,
                   ffn_width=16, steps=200, batch_size=32, length=24, lr=3e-3, seed=0, eval_size=200, threads=1),
        "full": dict(pairs=[[1, 3], [2, 4], [3, 1]], layers=[2, 4], heads=[2, 4, 8], seeds=3, budget_layers=4,
                     d_model=16, ffn_width=32, steps=1000, batch_size=32, length=32, lr=3e-3, seed=0, eval_size=500,
                     threads=None),
        "paper": dict(pairs=[[1, 3], [2, 4], [3, 1]], layers=[2, 4], heads=[2, 4, 8, 16], seeds=3, budget_layers=4,
                      d_model=16,
                      ffn_width=64, steps=10000, batch_size=100, length=100, lr=1e-3, seed=0,
                      eval_size=1000, threads=None),
    },
    runner=run_independent,
))
