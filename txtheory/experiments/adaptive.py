"""The trained experiments of the Task II chapter (``book/adaptive-memory.md``).

* ``prop42``: Proposition 4.2 on attention alone (a linear readout): DP-free, DP and TMX
  layers trained on the witness y_t = x_{t-g(x_t)}; the DP-free rows also get their exact
  sup error (``construct.affine_sup_error``), which the proposition bounds below.
* ``boolean``: the paper's adaptive Boolean example, with its lags (1, 2) and with lags
  (8, 16) above the head count, for 1 to 3 layers and five kinds of attention at
  matched parameter counts (DP against DP-free against TMX, insight 3b).
* ``pointer``: the K-step pointer chase, K = 1, 2, 3, trained with L = 1 .. K + 2 layers
  at matched parameter counts: where does the error drop (Theorem 4.4, insight 1a)?
* ``independent``: M = 3 independent adaptive memories, 2 layers against M + 1 = 4, for
  several head counts (Proposition 4.5).

Normalisation-free layers train with the attention's overflow guard and initial rates in
``NF_P_RANGE`` (see ``txtheory.attention``): from the default range, slow heads sum
hundreds of unnormalised weights and the first steps diverge.
"""
from __future__ import annotations

from txtheory import construct, targets
from txtheory.experiments import Experiment, register, train_model
from txtheory.model import TransformerConfig, count_params

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
# Independent memories: two layers with many heads, or M + 1 with few


def run_independent(config: dict, progress: bool = False) -> dict:
    """M independent adaptive memories, for each depth and head count."""
    target = targets.independent_memories(config["pairs"])
    rows = []
    for n_layers in config["layers"]:
        for n_heads in config["heads"]:
            model, fit = train_model(config, target, progress, n_layers=n_layers, n_heads=n_heads,
                                     ffn_width=config["ffn_width"], rpe="lin", score="dp")
            rows.append(_row(model, fit, n_layers=n_layers, n_heads=n_heads))
    return {"rows": rows, "memories": len(config["pairs"])}


register(Experiment(
    name="independent",
    split="layers",  # the runner's outermost loop: each value runs alone
    title="Independent adaptive memories: 2 layers against M + 1 (Prop 4.5)",
    chapter="book/adaptive-memory.md",
    description="Trained evidence: errors per depth and head count.",
    scales={
        "ci": dict(pairs=[[1, 3], [2, 4], [3, 1]], layers=[2, 4], heads=[2, 4], d_model=8, ffn_width=16,
                   steps=200, batch_size=32, length=24, lr=3e-3, seed=0, eval_size=200, threads=1),
        "full": dict(pairs=[[1, 3], [2, 4], [3, 1]], layers=[2, 4], heads=[2, 4, 8], d_model=16,
                     ffn_width=32, steps=1000, batch_size=32, length=32, lr=3e-3, seed=0, eval_size=500,
                     threads=None),
        "paper": dict(pairs=[[1, 3], [2, 4], [3, 1]], layers=[2, 4], heads=[2, 4, 8, 16], d_model=16,
                      ffn_width=64, steps=10000, batch_size=100, length=100, lr=1e-3, seed=0,
                      eval_size=1000, threads=None),
    },
    runner=run_independent,
))
