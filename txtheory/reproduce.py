"""Run the registered experiments' grid points as independent tasks, in worker processes or
on a Dask cluster, resuming from the results cache.

Explained in ``book/reproduce.md`` ("Reproducing the paper at scale"), section "Running
every experiment", and used by ``txtheory reproduce``.

    summary = reproduce("full", jobs=2)                      # local worker processes
    summary = reproduce("full", scheduler="tcp://host:8786")  # a Dask cluster

A task is one experiment at one scale, or, for an experiment that declares ``split``
(``experiments.Experiment``), one value of that config key: ``delay`` splits on
``rpes``, so its ``ci`` scale is two tasks. Each task runs through ``experiments.run``
with its own config, so it is cached on its own: an interrupted run resumes where it
stopped, and a failed task is reported with its config and error while the others go on.
When every point of a split experiment is done, their rows are joined, in the order of
the split list, into the experiment's own cache entry, the one its chapter reads.

Threads: every worker runs torch with ``threads_per_task`` threads (default: the cores
over the jobs), so the workers do not oversubscribe the machine. Experiments whose config
fixes ``threads`` (every ``ci`` scale) keep it, which is what makes a run repeat bit for
bit whatever executes it: serially, in processes, or on a Dask cluster.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
import traceback
from dataclasses import dataclass, field

from tqdm import tqdm

from . import experiments
from ._checks import check_choice, check_int
from .train import DEVICE_VARIABLE, pick_device, torch_threads


@dataclass(frozen=True)
class Task:
    """One independent piece of work: an experiment at a scale, with config overrides."""

    name: str
    scale: str
    overrides: dict = field(default_factory=dict)

    def label(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.overrides.items())
        return f"{self.name} ({self.scale}{', ' + extra if extra else ''})"


def tasks(scale: str, only: list[str] | None = None) -> list[Task]:
    """Every task of ``scale`` for the experiments ``only`` (default: all), in name order."""
    check_choice("scale", scale, experiments.SCALES)
    chosen = experiments.names() if not only else list(dict.fromkeys(only))
    out = []
    for name in chosen:
        exp = experiments.get(name)  # an unknown name raises, listing the known ones
        if exp.split is None:
            out.append(Task(name, scale))
        else:
            out.extend(Task(name, scale, {exp.split: [value]}) for value in exp.scales[scale][exp.split])
    return out


def is_done(task: Task) -> bool:
    """Whether the task's result is in the cache."""
    return experiments.load(task.name, task.scale, **task.overrides) is not None


def run_task(task: Task, threads: int | None = None, use_cache: bool = True, device: str | None = None) -> dict:
    """Run one task (in whatever process executes it): {"seconds", "from_cache"}.
    ``device`` (cpu | cuda | auto) trains on it, through ``train.DEVICE_VARIABLE``."""
    start = time.perf_counter()
    before = os.environ.get(DEVICE_VARIABLE)
    if device is not None:
        os.environ[DEVICE_VARIABLE] = device
    try:
        with torch_threads(threads):
            entry = experiments.run(task.name, task.scale, use_cache=use_cache, **task.overrides)
    finally:
        if device is not None and before is None:  # leave the worker as it was
            del os.environ[DEVICE_VARIABLE]
        elif device is not None:
            os.environ[DEVICE_VARIABLE] = before
    return {"seconds": time.perf_counter() - start, "from_cache": entry["from_cache"]}


def join(name: str, scale: str) -> dict:
    """The rows of a split experiment's cached points, joined into its own cache entry."""
    exp = experiments.get(name)
    if exp.split is None:
        raise ValueError(f"{name!r} declares no split: it is one task, with nothing to join")
    config = experiments.config_for(name, scale)
    points = [experiments.load(name, scale, **t.overrides) for t in tasks(scale, [name])]
    if any(p is None for p in points):
        raise ValueError(f"{name!r} at {scale!r}: not every point is in the cache yet")
    result = dict(points[0]["result"])
    for key, value in result.items():  # a dict per point (e.g. keyed by the split's value): their union
        if isinstance(value, dict):
            result[key] = {k: v for p in points for k, v in p["result"][key].items()}
    result["rows"] = [row for p in points for row in p["result"]["rows"]]
    return experiments.store(name, scale, config, result, f"txtheory reproduce --scale {scale} --only {name}",
                             points[0].get("environment", experiments.current_environment()))


def reproduce(scale: str = "ci", only: list[str] | None = None, *, jobs: int = 1, scheduler: str | None = None,
              use_cache: bool = True, threads_per_task: int | None = None, progress: bool = True,
              device: str | None = None) -> dict:
    """Run every task of ``scale`` not yet cached and join the split experiments.

    ``jobs``: worker processes (1: in this process); ``scheduler``: the address of a Dask
    scheduler (then ``jobs`` is ignored and the cluster's workers run the tasks); ``device``:
    where every model trains (cpu | cuda | auto; default: TXTHEORY_DEVICE, else the CPU;
    with a scheduler it is checked on the workers, not here). Returns
    {"tasks": [{"task", "status" ("cached" | "done" | "failed"), "seconds", "error"}],
    "experiments": {name: {"points", "done", "seconds", "status", "paper"}}}, "paper" being
    what the paper reports where the experiment's result quotes it.
    """
    jobs = check_int("jobs", jobs, minimum=1)
    if device is not None and scheduler is None:
        pick_device(device)  # cuda asked for on a machine without it: a clear error, before any work
    todo = tasks(scale, only)
    if threads_per_task is None:
        threads_per_task = max(1, (os.cpu_count() or 1) // jobs) if scheduler is None else 1
    threads_per_task = check_int("threads_per_task", threads_per_task, minimum=1)
    records = [{"task": t.label(), "status": "cached", "seconds": 0.0, "error": None} for t in todo]
    # an experiment whose own entry is cached (a run of it whole, or an earlier join) is done
    whole = {t.name for t in todo if use_cache and experiments.load(t.name, scale) is not None}
    pending = [i for i, t in enumerate(todo) if t.name not in whole and not (use_cache and is_done(t))]
    bar = tqdm(total=len(todo), initial=len(todo) - len(pending), desc=f"reproduce {scale}", disable=not progress)
    waiting = set(pending)  # the tasks not yet finished

    def finished(i, outcome=None, error=None):
        task, rec = todo[i], records[i]
        if error is None:
            rec.update(status="done", seconds=outcome["seconds"])
        else:
            rec.update(status="failed", error=error,
                       config=experiments.config_for(task.name, task.scale, **task.overrides))
            tqdm.write(f"failed: {task.label()}: {error.splitlines()[-1] if error else ''}")
        waiting.discard(i)
        if progress and not any(todo[j].name == task.name for j in waiting):  # its last point: a line
            mine = [r for t, r in zip(todo, records) if t.name == task.name]
            ok = sum(r["status"] != "failed" for r in mine)
            tqdm.write(f"{task.name}: {ok}/{len(mine)} points done, {sum(r['seconds'] for r in mine):.0f} s")
        bar.update(1)

    if scheduler is not None:
        from dask.distributed import Client, as_completed  # optional: pip install distributed

        with Client(scheduler) as client:
            futures = {client.submit(run_task, todo[i], threads_per_task, use_cache, device, pure=False): i for i in pending}
            for future in as_completed(futures):
                _collect(future, futures[future], finished)
    elif jobs > 1 and len(pending) > 1:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch state
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = {pool.submit(run_task, todo[i], threads_per_task, use_cache, device): i for i in pending}
            for future in concurrent.futures.as_completed(futures):
                _collect(future, futures[future], finished)
    else:
        for i in pending:
            try:
                finished(i, run_task(todo[i], threads_per_task, use_cache, device))
            except Exception:  # noqa: BLE001  a failed point must not stop the others
                finished(i, error=traceback.format_exc())
    bar.close()

    summary = {}
    for name in dict.fromkeys(t.name for t in todo):
        mine = [rec for t, rec in zip(todo, records) if t.name == name]
        done = sum(r["status"] != "failed" for r in mine)
        status = "ok" if done == len(mine) else "incomplete"
        if status == "ok" and experiments.get(name).split is not None and name not in whole:
            join(name, scale)
        entry = experiments.load(name, scale) if status == "ok" else None
        paper = entry["result"].get("paper") if entry and isinstance(entry["result"], dict) else None
        summary[name] = {"points": len(mine), "done": done, "seconds": sum(r["seconds"] for r in mine),
                         "status": status, "paper": paper}
    return {"tasks": records, "experiments": summary}


def _collect(future, i, finished):
    try:
        outcome = future.result()
    except Exception:  # noqa: BLE001
        finished(i, error=traceback.format_exc())
    else:
        finished(i, outcome)


def format_summary(summary: dict) -> str:
    """A text table: one line per experiment (points done, seconds, status), then failures."""
    lines = [f"{'experiment':<16}{'points':>8}{'done':>6}{'seconds':>10}  status"]
    for name, s in summary["experiments"].items():
        lines.append(f"{name:<16}{s['points']:>8}{s['done']:>6}{s['seconds']:>10.1f}  {s['status']}")
        if s.get("paper"):  # what the paper reports, beside the run (its chapter compares them)
            lines.append(f"{'':<16}the paper: {s['paper']}")
    for rec in summary["tasks"]:
        if rec["status"] == "failed":
            lines.append(f"FAILED {rec['task']}:\n{rec['error']}")
    return "\n".join(lines)


__all__ = ["Task", "format_summary", "is_done", "join", "reproduce", "run_task", "tasks"]
