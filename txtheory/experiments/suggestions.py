"""The experiment of ``book/suggestions.md``, registered on import: every architecture of
``txtheory.arena`` on every task, at matched parameters, over a small learning-rate grid
and several seeds, with the same step budget for all.

* ``suggestions``: split over ``tasks`` (``txtheory reproduce --jobs 2`` runs two tasks at
  once). For each task, architecture, learning rate and seed: train, then score on two
  held-out sets, *validation* (which chooses the learning rate) and *test* (what the
  chapter reports). The error is the relative mean squared error on the regression
  tasks and 1 - accuracy on the token tasks. A run whose loss stops being finite is
  kept as ``diverged``.

The ``full`` grid's smallest rate turned out to be chosen often, so a control one step
lower (``LOW_LRS``) is cached task by task beside it (``low_lr_rows``); the chapter
chooses each rate over the union.
"""
from __future__ import annotations

import math

from txtheory import arena
from txtheory.experiments import Experiment, register
from txtheory.model import count_params
from txtheory.train import TrainConfig, build_model, evaluate, evaluate_tokens, train, train_tokens
from tqdm import tqdm

LOW_LRS = [1e-3]  # the full grid's control below its smallest rate, one cached point per task
VALID_SEED_SHIFT = 500  # the validation set's seed: seed + this (the test set's is the seed itself)


def run_suggestions(config: dict, progress: bool = False) -> dict:
    """Rows (task, arch, lr, seed, params, ffn_width, valid, test, diverged, seconds)."""
    rows = []
    sizes = {k: config[k] for k in ("d_model", "n_layers", "n_heads", "ffn_width", "ssm_states")}
    jobs = [(t, a, lr, seed) for t in config["tasks"] for a in config["architectures"]
            for lr in config["lrs"] for seed in config["seeds"]]
    configs = {t: arena.matched_configs(t, length=config["length"], architectures=tuple(config["architectures"]),
                                        **sizes) for t in config["tasks"]}
    for t, a, lr, seed in tqdm(jobs, disable=not progress, desc="suggestions"):
        task = arena.check_task(t)
        model_config = configs[t][a]
        rows.append({"task": t, "arch": a, "lr": lr, "seed": seed, "params": count_params(model_config),
                     "ffn_width": model_config.ffn_width,
                     **train_one(task, model_config, config, lr, seed)})
    return {"rows": rows}


def train_one(task: arena.Task, model_config, config: dict, lr: float, seed: int) -> dict:
    """Train one model; its validation and test errors (NaN and ``diverged`` if the loss
    stopped being finite or the errors are not finite)."""
    target = task.build(config["length"])
    model = build_model(model_config, seed)
    train_config = TrainConfig(steps=config["steps"], batch_size=config["batch_size"], length=config["length"],
                               lr=lr, seed=seed, eval_size=config["eval_size"], progress=False,
                               threads=config.get("threads"))
    try:
        if task.kind == "tokens":
            fit = train_tokens(model, target, train_config)
            test = fit.eval["error"]
            valid = evaluate_tokens(model, target, config["eval_size"], seed + VALID_SEED_SHIFT)["error"]
        else:
            fit = train(model, target, train_config)
            test = fit.eval["rel_mse"]
            valid = evaluate(model, target, config["length"], config["eval_size"], seed + VALID_SEED_SHIFT,
                             batch_size=config["batch_size"])["rel_mse"]
    except FloatingPointError:
        return {"valid": math.nan, "test": math.nan, "diverged": True, "seconds": math.nan}
    diverged = not (math.isfinite(valid) and math.isfinite(test))
    return {"valid": valid, "test": test, "diverged": diverged, "seconds": fit.seconds}


DIVERGED_ERROR = 1.0  # a diverged run counts as no better than the mean (regression) or all wrong (tokens)


def chosen(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """Per (task, arch): the learning rate with the lowest mean validation error over seeds,
    a diverged run counting as ``DIVERGED_ERROR`` (so it is never dropped in silence: a
    rate where it happens is rarely chosen, and an architecture diverged at every rate
    stays in the comparison at that error); ties go to the smaller rate. Returns
    {"lr", "test": [per seed], "valid_mean", "params", "diverged": at that rate, "at_grid_edge"}."""
    def error(r, key):
        return DIVERGED_ERROR if r["diverged"] else r[key]

    out = {}
    for key in sorted({(r["task"], r["arch"]) for r in rows}):
        by_lr = {}
        for r in rows:
            if (r["task"], r["arch"]) == key:
                by_lr.setdefault(r["lr"], []).append(r)
        lr = min(sorted(by_lr), key=lambda v: sum(error(r, "valid") for r in by_lr[v]) / len(by_lr[v]))
        rs = sorted(by_lr[lr], key=lambda r: r["seed"])
        out[key] = {"lr": lr, "test": [error(r, "test") for r in rs],
                    "valid_mean": sum(error(r, "valid") for r in rs) / len(rs), "params": rs[0]["params"],
                    "diverged": sum(r["diverged"] for r in rs), "at_grid_edge": lr in (min(by_lr), max(by_lr))}
    return out


def low_lr_rows(tasks: list[str]) -> list[dict] | None:
    """The rows of the ``full`` grid's control at ``LOW_LRS``, run task by task
    (``txtheory run suggestions --scale full --set lrs=[0.001] --set tasks=[TASK]``), so
    that a rate chosen at the grid's low end is checked one step lower; None if a task's
    point is not cached."""
    from txtheory import experiments

    entries = [experiments.load("suggestions", "full", tasks=[t], lrs=LOW_LRS) for t in tasks]
    if any(e is None for e in entries):
        return None
    return [row for e in entries for row in e["result"]["rows"]]


def _same_but(a: dict, b: dict, keys: tuple[str, ...]) -> bool:
    return {k: v for k, v in a.items() if k not in keys} == {k: v for k, v in b.items() if k not in keys}


def with_low_lr(entry: dict | None) -> dict | None:
    """A ``full`` entry with the rows of its low-rate control added (a copy; the entry as it
    is where the control is not cached, or at another scale): what the chapter and
    ``verdicts`` read."""
    if entry is None or entry["scale"] != "full":
        return entry
    low = low_lr_rows(entry["config"]["tasks"])
    if low is None:
        return entry
    from txtheory import experiments

    control = experiments.config_for("suggestions", "full", lrs=LOW_LRS)
    if not _same_but(control, entry["config"], ("lrs", "tasks")):  # the same models, steps and sets
        raise ValueError("the low-rate control's config differs from the grid's beyond lrs and tasks")
    rows = entry["result"]["rows"] + low
    keys = [(r["task"], r["arch"], r["lr"], r["seed"]) for r in rows]
    if len(set(keys)) != len(keys):
        raise ValueError("the grid and its low-rate control share a (task, arch, lr, seed) run")
    return {**entry, "result": {**entry["result"], "rows": rows}}


def outcomes(rows: list[dict]) -> dict[tuple[str, str], arena.Outcome]:
    """Each (task, rule) prediction judged against the chosen runs (``arena.judge``), in
    the tasks' own order."""
    picked = chosen(rows)
    present = {r["task"] for r in rows}
    result = {}
    for task in [t for t in arena.TASKS if t in present]:
        errors = {a: v["test"] for (t, a), v in picked.items() if t == task}
        for rule in arena.rules_for(task):
            result[task, rule] = arena.judge(arena.predict(task, rule), errors)
    return result


_COMMON = dict(architectures=list(arena.ARCHITECTURES), tasks=list(arena.TASKS), length=64, n_layers=2,
               ssm_states=16)

register(Experiment(
    name="suggestions", title="The paper's suggestions side by side: 7 architectures on 8 tasks",
    chapter="book/suggestions.md",
    description="Matched parameters, a learning-rate grid, 3 seeds; the theory's predictions scored.",
    scales={
        "ci": dict(_COMMON, d_model=16, n_heads=2, ffn_width=16, steps=40, batch_size=16, lrs=[1e-2],
                   seeds=[0], eval_size=64, threads=1),
        "full": dict(_COMMON, d_model=32, n_heads=4, ffn_width=64, steps=1000, batch_size=32,
                     lrs=[3e-3, 1e-2, 3e-2], seeds=[0, 1, 2], eval_size=500, threads=1),
        "paper": dict(_COMMON, d_model=32, n_heads=4, ffn_width=64, steps=4000, batch_size=64,
                      lrs=[1e-3, 3e-3, 1e-2, 3e-2], seeds=[0, 1, 2], eval_size=2000, threads=1),
    },
    runner=run_suggestions, split="tasks",
))
