"""The experiments of the framework and Task I chapters, registered on import.

``delay`` (``book/framework.md``); the paper's 1b, 2a, 2b, 3a, their readings and the
heads-against-lag ``phase`` diagram (``book/fixed-memory.md``). Each runner turns one
scale's config into a JSON-able result; ``txtheory.experiments`` caches it.
"""
from __future__ import annotations

import torch

from txtheory import construct, targets
from txtheory.experiments import Experiment, register, thin, train_model
from txtheory.train import evaluate


# ----------------------------------------------------------------------------------
# The experiments


def run_delay(config: dict, progress: bool = False) -> dict:
    """Experiment ``delay`` (book/framework.md): learn y_t = x_{t-T} with one DP-free layer.

    For each RPE type and each delay T, train a fresh one-layer model whose attention
    has no dot product (score "free", softmax-normalised) on ±1 tokens, and report its
    held-out errors and the rates p_h it learned. The residual path carries x_t itself,
    so attention must supply the past token; a log head cannot look at lag 0 at all.
    """
    rows = []
    for rpe in config["rpes"]:
        for delay in config["delays"]:
            target = targets.FixedMemoryTarget(lags=(delay,), readout=targets.LinearReadout([1.0]))
            model, fit = train_model(config, target, progress, n_heads=config["n_heads"],
                                          ffn_width=config["ffn_width"], rpe=rpe, score="free")
            rows.append({
                "rpe": rpe,
                "delay": delay,
                "mse": fit.eval["mse"],
                "max_abs": fit.eval["max_abs"],
                "p": sorted(model.attn[0].p.tolist()),  # learned rates p_h, ascending
                "final_loss": fit.losses[-1],
                "losses": thin(fit.losses, 100),  # the learning curve, at most 100 points
                "seconds": fit.seconds,
            })
    return {"rows": rows}


register(Experiment(
    name="delay",
    title="A one-layer DP-free Transformer learns a delay y_t = x_{t-T}, lin- vs log-RPE",
    chapter="book/framework.md",
    split="rpes",
    description="Trained evidence: errors and learned rates p_h per RPE type and delay T.",
    scales={
        # seconds on 2 CPU cores (the book build and CI run this)
        "ci": dict(delays=[1, 2, 4, 8, 16], rpes=["lin", "log"], n_heads=4, d_model=4, ffn_width=16,
                   steps=500, batch_size=64, length=48, lr=3e-2, seed=0, eval_size=1000, threads=1),
        # minutes on a CPU: more delays, a longer window, more steps
        "full": dict(delays=[1, 2, 4, 8, 16, 32, 64], rpes=["lin", "log"], n_heads=4, d_model=4,
                     ffn_width=16, steps=4000, batch_size=100, length=128, lr=1e-2, seed=0,
                     eval_size=2000, threads=None),
        # the paper's settings: length 1000, batch 100, 10 000 AdamW steps (hours on a CPU)
        "paper": dict(delays=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512], rpes=["lin", "log"], n_heads=4,
                      d_model=4, ffn_width=16, steps=10000, batch_size=100, length=1000, lr=1e-2,
                      seed=0, eval_size=1000, threads=None),
    },
    runner=run_delay,
))


# ----------------------------------------------------------------------------------
# Task I, fixed sparse memory (book/fixed-memory.md): the paper's experiments 1b, 2a, 2b, 3a

PAPER_TARGETS = {
    "exp1b": targets.exp1b_target,  # g*(x_48, x_56, x_99), a 64-neuron ReLU readout
    "exp2a": targets.exp2a_target,  # g*(x_99), a 64-neuron ReLU readout of one token
    "exp2b": targets.exp2b_target,  # x_48 + x_56 + x_99, a linear readout
}


def run_memory_grid(config: dict, progress: bool = False) -> dict:
    """Experiments 1b, 2a, 2b, 3a: one-layer Transformers over a grid of heads H and widths m.

    For each attention score (``free``: DP-free; ``dp``: with the dot product), each H and
    each m, train a fresh one-layer model on the paper's target and report its held-out
    errors. ``read_at`` says where the paper's scalar target is read, which fixes the lags
    (see ``targets.exp1b_target``); the loss reads every position whose memory lies in
    the window, so one sequence gives many training positions.
    """
    make_target = PAPER_TARGETS[config["target"]]
    target = make_target(config["length"], generator=torch.Generator().manual_seed(config["seed"]),
                         read_at=config["read_at"])
    rows = []
    for dtype in config.get("dtypes", ["float32"]):
        for score in config["scores"]:
            for n_heads in config["heads"]:
                for width in config["widths"]:
                    _, fit = train_model(dict(config, dtype=dtype), target, progress, n_heads=n_heads,
                                         ffn_width=width, rpe=config["rpe"], score=score,
                                         **({"abs_positions": config["length"]}
                                            if config.get("abs_positions") else {}),
                                         **({"p_range": tuple(config["p_range"])}
                                            if "p_range" in config else {}))
                    rows.append({"dtype": dtype, "score": score, "n_heads": n_heads, "ffn_width": width,
                                 **fit.eval, "final_loss": fit.losses[-1], "seconds": fit.seconds})
    return {"lags": list(target.lags), "first_valid": target.first_valid, "rows": rows}


def _memory_grid_scales(target: str, scores: list[str]) -> dict:
    """The three scales of a Task I grid experiment (only the target and scores differ)."""
    common = dict(target=target, scores=scores, rpe="lin", read_at="last_memory", seed=0)
    full = dict(common, length=128, heads=[1, 4, 16, 64], widths=[4, 16, 64, 256], d_model=8,
                steps=1500, batch_size=64, lr=1e-2, eval_size=1000, threads=None)
    if "dp" in scores:  # dense dot-product attention costs B*H*P*T per step: a smaller grid
        full.update(length=100, heads=[4, 16], widths=[16, 256])
    return {
        # seconds on 2 CPU cores: a 2x2 corner of the grid, short training
        "ci": dict(common, length=100, heads=[2, 8], widths=[4, 64], d_model=8, steps=300,
                   batch_size=32, lr=1e-2, eval_size=500, threads=1),
        # under an hour on a CPU for all four: the paper's H and m ranges, a window of 128
        "full": full,
        # the paper's settings: length 1000, batch 100, 10 000 AdamW steps, and its target as
        # written: one scalar per sequence, at the end of the window (the literal reading)
        "paper": dict(common, length=1000, heads=[1, 4, 16, 32, 64], widths=[4, 16, 64, 256],
                      d_model=16, steps=10000, batch_size=100, lr=1e-3, eval_size=1000, threads=None,
                      read_at="end", loss_at="last"),
    }


for _name, _target, _scores, _title in [
    ("exp1b", "exp1b", ["free"], "1b: one DP-free layer, sparse Boolean target g*(x_48, x_56, x_99)"),
    ("exp2a", "exp2a", ["free"], "2a: a complex readout of one memory, g*(x_99): width or heads?"),
    ("exp2b", "exp2b", ["free"], "2b: a linear readout of three memories, x_48 + x_56 + x_99: heads or width?"),
    ("exp3a", "exp1b", ["free", "dp"], "3a: the 1b target with and without the dot product"),
]:
    register(Experiment(
        name=_name, title=_title, chapter="book/fixed-memory.md",
        description="Trained evidence: held-out errors over the (H, m) grid of one-layer models.",
        scales=_memory_grid_scales(_target, _scores), runner=run_memory_grid,
        # a point per value of the grid's outermost list with more than one value (so the
        # joined rows keep the runner's order): 3a's scores, the others' head counts
        split="scores" if len(_scores) > 1 else "heads",
    ))



# Readings of 1b and 2b the paper leaves open (book/fixed-memory.md, "The readings we
# have not tried"): each changes one thing of the exp1b / exp2b config.
READINGS = {
    "free": ("unconstrained rates p in R: a head may weigh the oldest tokens most",
             dict(rates="free"), {}),
    "log1p": ("a log encoding that sees lag 0, phi(s) = -log(1 + s)",
              dict(rpe="log1p"), {}),
    "literal": ("one scalar per sequence, at the end of a window of 1000, trained there only",
                dict(read_at="end", length=1000, loss_at="last"),
                dict(steps=10000, batch_size=100)),  # one position per sequence: the paper's 1M samples
    "heads": ("enough heads for an exact match (H = 64, 128), float32 and float64",
              dict(heads=[64, 128], widths=[16, 256], dtypes=["float32", "float64"]), {}),
    # The literal reading, with learned absolute positions: its memories sit at fixed
    # positions 48, 56, 99, which a head can find by position only through the dot product
    # (DP-free weights do not depend on the keys); DP-free with the same embedding is the
    # control. The RPE rates start small (1e-4 to 1e-2, not the default 0.05 to 2): at the
    # default, lags 901-952 get weight e^{-0.05 * 901} < 1e-19 and no gradient reaches them.
    "abspos": ("the literal reading, with the dot product and learned absolute positions, small initial "
               "RPE rates; DP-free as control",
               dict(read_at="end", length=1000, loss_at="last", scores=["dp", "free"], abs_positions=True,
                    heads=[4, 32], widths=[256], p_range=[1e-4, 1e-2]),
               dict(steps=10000, batch_size=100)),
}


def _reading_scales(target: str, changes: dict, full_extra: dict) -> dict:
    """exp1b / exp2b's scales with one reading changed; the full grid is thinned to
    H in {1, 4, 16, 64} and m in {16, 256} (unless the reading sets its own)."""
    base = _memory_grid_scales(target, ["free"])
    scales = {
        "ci": dict(base["ci"], **changes),
        "full": {**base["full"], "heads": [1, 4, 16, 64], "widths": [16, 256], **changes, **full_extra},
        "paper": dict(base["paper"], **changes),
    }
    if "heads" in changes:  # H = 128 on a CI budget: one head count and width, few steps
        scales["ci"].update(heads=[16], widths=[16], steps=100)
    if "abs_positions" in changes:  # a CI budget: one small model per arm
        scales["ci"].update(heads=[4], widths=[64], steps=200)
        scales["paper"].update(heads=[4, 32], widths=[256])
    return scales


for _target in ("exp1b", "exp2b"):
    for _reading, (_what, _changes, _full_extra) in READINGS.items():
        if _reading == "abspos" and _target != "exp1b":
            continue
        register(Experiment(
            name=f"{_target}_{_reading}", title=f"{_target[3:]} read another way: {_what}",
            chapter="book/fixed-memory.md",
            description="Trained evidence: does this reading of the paper reproduce its finding?",
            scales=_reading_scales(_target, _changes, _full_extra), runner=run_memory_grid,
            # the outermost list of more than one value
            split="dtypes" if "dtypes" in _changes else "scores" if "scores" in _changes else "heads",
        ))


# ----------------------------------------------------------------------------------
# Heads against lag (book/fixed-memory.md, "The phase diagram")


def run_phase(config: dict, progress: bool = False) -> dict:
    """Train y_t = x_{t-T} with one DP-free layer for every RPE kind, head count H and lag T:
    the held-out error in the (H, T) plane, where the kernel chapter's floors say a linear
    readout cannot go below C(2H, H) / 4^H for T >= H + 1."""
    rows = []
    for rpe in config["rpes"]:
        for n_heads in config["heads"]:
            for lag in config["lags"]:
                target = targets.FixedMemoryTarget(lags=(lag,), readout=targets.LinearReadout([1.0]))
                _, fit = train_model(config, target, progress, n_heads=n_heads,
                                          ffn_width=config["ffn_width"], rpe=rpe, score="free")
                rows.append({"rpe": rpe, "n_heads": n_heads, "lag": lag, **fit.eval,
                             "final_loss": fit.losses[-1], "seconds": fit.seconds})
    return {"rows": rows}


register(Experiment(
    name="phase",
    title="Heads against lag: when one DP-free layer learns y_t = x_{t-T}, lin vs log",
    chapter="book/fixed-memory.md",
    description="Trained evidence: held-out error over the (H, T) plane, beside the proven floors.",
    scales={
        # the window must hold T + H + 1 lags for the floors to apply at every position read
        "ci": dict(rpes=["lin", "log"], heads=[1, 2, 4, 8], lags=[1, 2, 4, 8, 16], d_model=4, ffn_width=16,
                   steps=300, batch_size=32, length=48, lr=3e-2, seed=0, eval_size=500, threads=1),
        "full": dict(rpes=["lin", "log"], heads=[1, 2, 4, 8, 16, 32, 64], lags=[1, 2, 4, 8, 16, 32, 64],
                     d_model=8, ffn_width=32, steps=1000, batch_size=32, length=136, lr=1e-2, seed=0,
                     eval_size=1000, threads=None),
        "paper": dict(rpes=["lin", "log"], heads=[1, 2, 4, 8, 16, 32, 64], lags=[1, 2, 4, 8, 16, 32, 64, 128, 256],
                      d_model=16, ffn_width=64, steps=10000, batch_size=100, length=1000, lr=1e-3, seed=0,
                      eval_size=1000, threads=None),
    },
    runner=run_phase,
    split="rpes",
))


def run_phase_wall(config: dict, progress: bool = False) -> dict:
    """Representability against optimisation at the phase diagram's wall (T = 4, 8).

    For each RPE kind and each (lag T, heads H) cell with H > T, train y_t = x_{t-T} in
    float64 in the phase diagram's model shape from three starts: the default
    initialisation at the diagram's budget; the same with a longer budget; and a warm
    start, Theorem 3.1's construction (a free-rate kernel fit, ``construct.
    fixed_memory_transformer``) widened into that shape (``construct.widen``), which
    realises the fit, trained at each of ``warm_lrs``. Reports the held-out errors before
    (warm starts) and after training, and the construction's certified bound and the
    largest value scale Σ|α_h| its heads carry.
    """
    rows = []
    for rpe in config["rpes"]:
        for lag, n_heads in config["cells"]:
            target = targets.FixedMemoryTarget(lags=(lag,), readout=targets.LinearReadout([1.0]))
            built = construct.fixed_memory_transformer(target, n_heads, rpe, length=config["length"])
            coeff_sum = float(built.model.attn[0]._W_OV().detach().abs().sum())
            for start, steps, lr in config["runs"]:
                run = dict(config, dtype="float64", steps=steps, lr=lr)
                model = None
                before = None
                if start == "warm":
                    model = construct.widen(built.model, config["d_model"], config["ffn_width"])
                    before = evaluate(model, target, config["length"], config["eval_size"], config["seed"])
                _, fit = train_model(run, target, progress, model=model, n_heads=n_heads,
                                     ffn_width=config["ffn_width"], rpe=rpe, score="free")
                rows.append({"rpe": rpe, "lag": lag, "n_heads": n_heads, "start": start, "steps": steps,
                             "lr": lr, "mse_before": None if before is None else before["mse"], **fit.eval,
                             "final_loss": fit.losses[-1], "losses": thin(fit.losses, 100),
                             "bound": built.bound, "coeff_sum": coeff_sum, "seconds": fit.seconds})
    return {"rows": rows}


register(Experiment(
    name="phase_wall",
    title="The phase diagram's wall: float64, a warm start from the construction, a longer budget",
    chapter="book/fixed-memory.md",
    description="Trained evidence: does training find, keep or leave an exact solution at T = 4, 8?",
    scales={
        # (start, steps, lr) runs per cell; the phase diagram's shape, window and batch
        "ci": dict(rpes=["lin", "log"], cells=[[4, 5]], runs=[["default", 100, 1e-2], ["warm", 100, 1e-2],
                                                               ["warm", 100, 1e-4]],
                   d_model=4, ffn_width=16, batch_size=32, length=48, seed=0, eval_size=200, threads=1),
        "full": dict(rpes=["lin", "log"], cells=[[4, 5], [4, 8], [8, 9], [8, 16]],
                     runs=[["default", 1000, 1e-2], ["default", 5000, 1e-2], ["warm", 1000, 1e-2],
                           ["warm", 1000, 1e-4], ["warm", 1000, 1e-6]],
                     d_model=8, ffn_width=32, batch_size=32, length=136, seed=0, eval_size=1000, threads=None),
        "paper": dict(rpes=["lin", "log"], cells=[[4, 5], [4, 8], [8, 9], [8, 16]],
                      runs=[["default", 10000, 1e-3], ["default", 50000, 1e-3], ["warm", 10000, 1e-3],
                            ["warm", 10000, 1e-5]],
                      d_model=16, ffn_width=64, batch_size=100, length=1000, seed=0, eval_size=1000,
                      threads=None),
    },
    runner=run_phase_wall,
    split="rpes",
))
