"""The ``txtheory`` command: a thin layer over ``txtheory.experiments`` and ``txtheory.bench``.

Named in ``book/framework.md`` ("Sequence modelling with Transformers"), where every
figure says which command regenerates it.

    txtheory list                                  the experiments, their chapters and scales
    txtheory run NAME [--scale ci|full|paper] [--set KEY=VALUE ...] [--corpus PATH] [--no-cache] [--quiet]
    txtheory reproduce [--scale S] [--only NAME ...] [--jobs N] [--scheduler ADDRESS] [--device D]
                                                   every grid point at scale S, resumably
    txtheory bench [--T 1000 --H 64 --B 100 --D 16 --dtype float32 --rpe lin|log --normalized|--nf
                    --repeats 3 --experiments NAME ... | --no-experiments --scale paper]
                                                   DP-free attention, fast against dense (both
                                                   forms and kinds unless told), the SDPA anchor,
                                                   and each experiment's training cost at --scale
    txtheory bench --architectures TASK [--repeats 3]
                                                   a training step of each architecture of
                                                   book/suggestions.md, as ratios to the fastest

``--set KEY=VALUE`` overrides one config key of the scale; VALUE is read as JSON
(``--set steps=50``, ``--set delays=[1,2]``), and as a plain string if it is not JSON.
``--corpus PATH`` trains the language experiments (``exp1a``, ``exp3b``) on a UTF-8 text
file of one's own; the file is checked before any training.
Bad arguments exit with argparse's code 2; an unknown experiment lists the known ones.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__, arena, experiments
from .bench import (DTYPES, bench_architectures, bench_attention, bench_experiments, format_architectures,
                    format_bench, format_experiments)
from .corpus import load_corpus
from .kinds import ENCODINGS, KINDS


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except ValueError as err:  # bad experiment name, config key or value
        print(f"txtheory {args.command}: error: {err}", file=sys.stderr)
        return 2


# ----------------------------------------------------------------------------------
# Sub-commands


def _list(args) -> int:
    for name in experiments.names():
        exp = experiments.get(name)
        print(f"{name}: {exp.title}")
        print(f"    chapter: {exp.chapter}")
        for scale in experiments.SCALES:
            config = json.dumps(exp.scales[scale], sort_keys=True)
            print(f"    {scale:<5} {config}")
    return 0


def _run(args) -> int:
    overrides = dict(args.set or [])
    experiments.get(args.name)  # an unknown name fails here, before any work
    if args.corpus is not None:
        users = [n for n in experiments.names() if "corpus" in experiments.get(n).scales[args.scale]]
        if args.name not in users:
            raise ValueError(f"--corpus applies to the experiments that train on a corpus "
                             f"({', '.join(users)}), not to {args.name!r}")
        load_corpus(args.corpus)  # a bad file fails here, before any training
        overrides["corpus"] = str(Path(args.corpus).resolve())
    entry = experiments.run(args.name, args.scale, progress=not args.quiet,
                            use_cache=not args.no_cache, **overrides)
    _summarise(entry)
    return 0


def _reproduce(args) -> int:
    from .reproduce import format_summary, reproduce

    summary = reproduce(args.scale, args.only, jobs=args.jobs, scheduler=args.scheduler,
                        use_cache=not args.no_cache, progress=not args.quiet, device=args.device)
    print(format_summary(summary))
    return 0 if all(s["status"] == "ok" for s in summary["experiments"].values()) else 1


def _bench(args) -> int:
    if args.architectures:
        print(format_architectures(bench_architectures(args.architectures, repeats=args.repeats)))
        return 0
    forms = [False, True] if args.normalized is None else [args.normalized]
    kinds = list(KINDS) if args.rpe is None else [args.rpe]  # the paper's two by default
    for normalized in forms:
        for rpe in kinds:
            result = bench_attention(T=args.T, H=args.H, B=args.B, D=args.D, dtype=args.dtype,
                                     normalized=normalized, repeats=args.repeats, rpe=rpe,
                                     memory=not args.no_memory)
            print(format_bench(result), end="\n\n", flush=True)
    if not args.no_experiments:
        print(format_experiments(bench_experiments(args.experiments, args.scale, progress=True)))
    return 0


def _summarise(entry: dict) -> None:
    """A few lines about a cache entry: what ran, a table of the result, where it is stored."""
    source = "loaded from the cache" if entry.get("from_cache") else "computed"
    print(f"{entry['name']} at scale {entry['scale']}: {source} ({entry['created']}, txtheory {entry['version']})")
    rows = entry["result"].get("rows") if isinstance(entry["result"], dict) else None
    if rows:
        # labels (strings, then integers) first, then the measured numbers
        order = {str: 0, int: 1, float: 2}
        keys = sorted((k for k, v in rows[0].items() if type(v) in order), key=lambda k: order[type(rows[0][k])])
        print("  " + "  ".join(f"{k:>10}" for k in keys))
        for row in rows:
            print("  " + "  ".join(f"{_fmt(row[k]):>10}" for k in keys))
    else:
        text = json.dumps(entry["result"], sort_keys=True)
        print("  result: " + (text if len(text) <= 300 else text[:300] + " ..."))
    print(f"  cached at: {entry['path']}")
    print(f"  regenerate: {entry['command']}")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


# ----------------------------------------------------------------------------------
# Arguments


def _key_value(text: str) -> tuple[str, object]:
    """--set KEY=VALUE: VALUE as JSON, or as a plain string when it is not JSON."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="txtheory",
        description="Experiments of the book on Wang & E (NeurIPS 2024): list, run, reproduce, bench.",
    )
    parser.add_argument("--version", action="version", version=f"txtheory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list the experiments, their chapters and scales")
    p.set_defaults(func=_list)

    p = sub.add_parser("run", help="run one experiment (through the results cache)")
    p.add_argument("name", help="experiment name (see `txtheory list`)")
    _add_run_options(p)
    p.add_argument("--set", metavar="KEY=VALUE", type=_key_value, action="append",
                   help="override one config key (VALUE as JSON); repeatable")
    p.add_argument("--corpus", metavar="PATH",
                   help="a UTF-8 text file to train the language experiments on (default: Python's docstrings)")
    p.set_defaults(func=_run)

    p = sub.add_parser("reproduce", help="run every experiment's grid points at one scale, resumably")
    _add_run_options(p)
    p.add_argument("--only", nargs="+", metavar="NAME", help="these experiments only (default: all)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1: this process)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="a Dask scheduler's address (e.g. tcp://host:8786): run the tasks on its workers")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                   help="where the models train (default: $TXTHEORY_DEVICE, else cpu)")
    p.set_defaults(func=_reproduce)

    p = sub.add_parser("bench", help="time DP-free attention: its fast paths (scans, FFT) against the dense reference")
    p.add_argument("--T", type=int, default=1000, help="window length (default 1000)")
    p.add_argument("--H", type=int, default=64, help="heads (default 64)")
    p.add_argument("--B", type=int, default=100, help="batch size (default 100)")
    p.add_argument("--D", type=int, default=16, help="model width (default 16)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--rpe", choices=ENCODINGS, default=None, help="one kind only (default: lin and log)")
    norm = p.add_mutually_exclusive_group()
    norm.add_argument("--normalized", dest="normalized", action="store_true",
                      help="softmax attention only")
    norm.add_argument("--nf", dest="normalized", action="store_false",
                      help="normalisation-free attention only (default: both forms)")
    p.set_defaults(normalized=None)
    p.add_argument("--repeats", type=int, default=3, help="best of this many runs (default 3)")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory measurement (one fresh process per path)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--experiments", nargs="+", metavar="NAME",
                      help="time these experiments' models (default: every registered experiment)")
    what.add_argument("--no-experiments", action="store_true", help="time the attention layer only")
    p.add_argument("--scale", choices=experiments.SCALES, default="paper",
                   help="the scale whose models are timed (default paper)")
    p.add_argument("--architectures", metavar="TASK", choices=sorted(arena.TASKS), default=None,
                   help="only this: a training step of every architecture of book/suggestions.md on TASK, "
                        "as ratios to the fastest")
    p.set_defaults(func=_bench)
    return parser


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", choices=experiments.SCALES, default="ci",
                   help="ci (seconds), full (minutes on a CPU), paper (the paper's settings)")
    p.add_argument("--no-cache", action="store_true", help="recompute even if a cached result exists")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


if __name__ == "__main__":
    sys.exit(main())
