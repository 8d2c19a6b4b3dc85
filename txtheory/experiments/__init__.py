"""A registry of named experiments, each at several scales, run through a results cache.

Used by every chapter that shows trained evidence; the first is ``book/framework.md``
("Sequence modelling with Transformers"), whose experiment ``delay`` is registered in
``experiments.fixed`` with Task I's (``book/fixed-memory.md``); Task II's are in
``experiments.adaptive`` (``book/adaptive-memory.md``). This module is the registry,
the cache and ``train_model``, the one training helper they share.

    from txtheory import experiments
    entry = experiments.run("delay", experiments.current_scale())
    entry["result"]        # what the experiment's runner returned
    entry["command"]       # how to regenerate it: "txtheory run delay --scale ci"

Scales: ``ci`` runs in seconds (the book build and CI run it), ``full`` is the
paper's grid at a size one CPU finishes in well under an hour, ``paper`` is the paper's own
settings (length 1000, batch 100, 10 000 AdamW steps). A chapter reads the scale from the
environment variable ``TXTHEORY_SCALE`` through :func:`current_scale`.

The cache. ``run`` stores each result as JSON in
``results_dir()/<name>/<scale>-<key[:12]>.json``, where ``key`` is the sha256 of the
experiment name, the scale, the full config and the package version. So a changed
config or a new version never reads an old result (that stale file is simply not used).
Writes are atomic (a temporary file in the same folder, then ``os.replace``), and an
entry that cannot be read or does not match its key is recomputed with a warning: a
broken cache never crashes a page.

What repeats. A run is a function of its config on one machine: the same torch build,
CPU instruction set and thread count give the same result bit for bit (the config's
``threads``, when set, is applied around the whole run). Each entry records those three
in ``environment``. Elsewhere expect close, not identical, numbers: torch chooses its CPU
kernels by instruction set (``torch.backends.cpu.get_cpu_capability()``) and splits
reductions by thread, which moves the last bits of float32 sums, and training amplifies
them (about 7 significant digits agree after a few hundred steps; see the README).
"""
from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import shlex
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from txtheory import __version__
from txtheory._checks import check_choice
from txtheory.model import TransformerConfig
from txtheory.train import TrainConfig, build_model, torch_threads, train

SCALES = ("ci", "full", "paper")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
ENTRY_KEYS = ("name", "scale", "config", "version", "created", "command", "result")  # required
# and, since 0.1.0's second release, "environment": what a bit-for-bit repeat needs to match


@dataclass
class Experiment:
    """A named experiment: one config per scale and a runner that turns a config into results."""

    name: str
    title: str
    chapter: str  # the book chapter that shows it, e.g. "book/framework.md"
    scales: dict[str, dict]  # scale -> plain JSON-able config; at least ci, full, paper
    runner: Callable[[dict, bool], dict]  # (config, progress) -> JSON-able result
    description: str = ""
    # A config key holding a list whose values are independent grid points: the runner
    # loops over it outermost and returns {"rows": [...], ...}, its other keys the same
    # for every value, or dicts whose union ``txtheory.reproduce`` takes. It runs one task
    # per value and joins the rows. None: the experiment is one task.
    split: str | None = None
    # What the config does not fix but a result depends on, checked when an entry is read:
    # (config, entry) -> None if the entry holds on this machine, else the reason it does
    # not (the language experiments' corpus is Python's own docstrings, which change with
    # the Python version). A stale entry is not used: a warning, then recomputed.
    stale: Callable[[dict, dict], str | None] | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"name must be a Python identifier (it names a results folder), got {self.name!r}")
        missing = [s for s in SCALES if s not in self.scales]
        if missing:
            raise ValueError(f"scales must define {', '.join(SCALES)}; {self.name!r} lacks {', '.join(missing)}")
        for scale, config in self.scales.items():
            try:
                json.dumps(config)
            except TypeError as err:
                raise ValueError(f"scales[{scale!r}] must be a plain JSON-able dict: {err}") from None
        if not callable(self.runner):
            raise ValueError(f"runner must be callable (config, progress) -> dict, got {self.runner!r}")
        if self.stale is not None and not callable(self.stale):
            raise ValueError(f"stale must be None or callable (config, entry) -> str | None, got {self.stale!r}")
        if self.split is not None:
            bad = [s for s, c in self.scales.items() if not isinstance(c.get(self.split), list) or not c[self.split]]
            if bad:
                raise ValueError(f"split={self.split!r} must name a non-empty list in every scale's config; "
                                 f"it does not in {', '.join(bad)}")


_REGISTRY: dict[str, Experiment] = {}


def register(exp: Experiment) -> Experiment:
    """Add ``exp`` to the registry (replacing one of the same name) and return it."""
    if not isinstance(exp, Experiment):
        raise ValueError(f"exp must be an Experiment, got {type(exp).__name__}")
    _REGISTRY[exp.name] = exp
    return exp


def get(name: str) -> Experiment:
    """The registered experiment ``name``; an unknown name raises, listing the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; known experiments: {', '.join(names()) or '(none)'}")
    return _REGISTRY[name]


def names() -> list[str]:
    """Names of every registered experiment, sorted."""
    return sorted(_REGISTRY)


# ----------------------------------------------------------------------------------
# Where results live, and at which scale a page renders


def results_dir() -> Path:
    """The folder of the results cache.

    ``$TXTHEORY_RESULTS`` if set; else ``<repo>/results`` when the package runs from a
    source checkout (its parent folder holds ``pyproject.toml``); else ``~/.cache/txtheory``.
    Chapters find results through this function, never through a relative path.
    """
    env = os.environ.get("TXTHEORY_RESULTS")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file():
        return repo / "results"
    return Path.home() / ".cache" / "txtheory"


def current_scale() -> str:
    """The scale a chapter renders at: ``$TXTHEORY_SCALE``, default "ci"."""
    scale = os.environ.get("TXTHEORY_SCALE", "ci")
    return check_choice("TXTHEORY_SCALE", scale, SCALES)


# ----------------------------------------------------------------------------------
# Running through the cache


# Training options any experiment's config may add through overrides, with train_model's
# defaults when absent (so adding one here changes no existing config's cache key).
TRAINING_OPTIONS = ("forward",)


def config_for(name: str, scale: str = "ci", **overrides) -> dict:
    """The scale's config with ``overrides`` merged in; an unknown key raises (the keys of
    ``TRAINING_OPTIONS`` are known to every experiment)."""
    exp = get(name)
    check_choice("scale", scale, SCALES)
    config = copy.deepcopy(exp.scales[scale])
    unknown = sorted(set(overrides) - set(config) - set(TRAINING_OPTIONS))
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(unknown)} for {name!r}; "
                         f"allowed: {', '.join(sorted(config))}")
    config.update(copy.deepcopy(overrides))
    try:
        json.dumps(config)
    except TypeError as err:
        raise ValueError(f"overrides must be plain JSON-able values: {err}") from None
    return config


def cache_key(name: str, scale: str, config: dict) -> str:
    """sha256 of the name, scale, full config and package version (hex)."""
    blob = json.dumps({"name": name, "scale": scale, "config": config, "version": __version__},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_path(name: str, scale: str, config: dict) -> Path:
    """Where the entry for this config lives: results_dir()/<name>/<scale>-<key[:12]>.json."""
    return results_dir() / name / f"{scale}-{cache_key(name, scale, config)[:12]}.json"


def command_for(name: str, scale: str, overrides: dict | None = None) -> str:
    """The shell command that regenerates an entry, e.g. "txtheory run delay --scale full"."""
    parts = ["txtheory", "run", name, "--scale", scale]
    for key, value in sorted((overrides or {}).items()):
        parts += ["--set", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return " ".join(shlex.quote(p) for p in parts)


def run(name: str, scale: str = "ci", *, progress: bool = False, use_cache: bool = True, **overrides) -> dict:
    """Run experiment ``name`` at ``scale`` (with config ``overrides``), through the cache.

    Returns the cache entry: {"name", "scale", "config", "version", "created", "command",
    "result"}, plus "path" (where it is stored) and "from_cache" (True when it was read
    rather than computed). ``use_cache=False`` recomputes and overwrites the entry.
    With ``TXTHEORY_CACHE_ONLY=1`` in the environment a ``full`` or ``paper`` entry that
    is not cached raises instead of training (``make book-full`` sets it, so a stale
    cache fails in seconds rather than training for hours).
    """
    exp = get(name)
    config = config_for(name, scale, **overrides)
    path = cache_path(name, scale, config)
    if use_cache:
        entry = _read_entry(path, name, scale, config)
        if entry is not None:
            return {**entry, "path": str(path), "from_cache": True}
    if scale != "ci" and os.environ.get("TXTHEORY_CACHE_ONLY") == "1":
        raise RuntimeError(f"TXTHEORY_CACHE_ONLY=1 and {name!r} at scale {scale!r} is not cached "
                           f"(looked for {path}); run `{command_for(name, scale, overrides)}` first")

    with torch_threads(config.get("threads")):
        environment = current_environment()
        result = exp.runner(copy.deepcopy(config), progress)
    return store(name, scale, config, result, command_for(name, scale, overrides), environment)


def store(name: str, scale: str, config: dict, result: dict, command: str, environment: dict) -> dict:
    """Write ``result`` as the cache entry of (name, scale, config) and return the entry
    (what ``run`` returns), "path" and "from_cache" = False included."""
    path = cache_path(name, scale, config)
    entry = {
        "name": name,
        "scale": scale,
        "config": config,
        "version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "environment": environment,
        "result": result,
    }
    try:
        text = json.dumps(entry, indent=1, sort_keys=True, allow_nan=True)
    except TypeError as err:
        raise ValueError(f"the runner of {name!r} must return plain JSON-able values: {err}") from None
    try:
        _atomic_write(path, text)
    except OSError as err:
        warnings.warn(f"could not cache {name!r} at {path}: {err}; the result is returned uncached",
                      stacklevel=2)
    return {**json.loads(text), "path": str(path), "from_cache": False}


def describe(config: dict) -> str:
    """A config's training settings in words, for a caption or a table: 'a window of 128,
    1500 AdamW steps of batch 64, lr 0.01, d_model 8, lin-RPE, seed 0' (the keys present)."""
    if not isinstance(config, dict):
        raise ValueError(f"config must be an experiment's config (a dict), got {type(config).__name__}")
    parts = []
    if "length" in config:
        parts.append(f"a window of {config['length']}")
    if "steps" in config:
        batch = f" of batch {config['batch_size']}" if "batch_size" in config else ""
        parts.append(f"{config['steps']} AdamW steps{batch}")
    for key, label in (("lr", "lr"), ("n_heads", "heads"), ("d_model", "d_model"), ("ffn_width", "FFN width")):
        if key in config:
            parts.append(f"{label} {config[key]}")
    if isinstance(config.get("rpe"), str):
        parts.append(f"{config['rpe']}-RPE")
    if "seed" in config:
        parts.append(f"seed {config['seed']}")
    return ", ".join(parts)


def current_environment() -> dict:
    """What a bit-for-bit repeat of a run needs to match: the torch build, the CPU
    instruction set torch dispatches its kernels for, and torch's CPU thread count."""
    from txtheory.train import default_device, pick_device

    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "device": pick_device(default_device())}


def load(name: str, scale: str = "ci", **overrides) -> dict | None:
    """The cached entry of ``name`` at ``scale`` (same config and version), or None.

    Chapters use it to show ``full``-scale results when someone has computed them.
    A corrupt entry gives a warning and None.
    """
    config = config_for(name, scale, **overrides)
    path = cache_path(name, scale, config)
    entry = _read_entry(path, name, scale, config)
    return None if entry is None else {**entry, "path": str(path), "from_cache": True}


def _read_entry(path: Path, name: str, scale: str, config: dict) -> dict | None:
    """The entry at ``path`` if it exists and matches; warn and return None if it is broken."""
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(entry, dict) or any(k not in entry for k in ENTRY_KEYS):
            raise ValueError(f"not a cache entry (needs the keys {', '.join(ENTRY_KEYS)})")
        expected = {"name": name, "scale": scale, "config": config, "version": __version__}
        wrong = [k for k, v in expected.items() if entry[k] != v]
        if wrong:
            raise ValueError(f"its {', '.join(wrong)} do(es) not match the key")
    except (OSError, UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        warnings.warn(f"ignoring the unreadable cache entry {path} ({err}); recomputing", stacklevel=3)
        return None
    check = get(name).stale
    reason = check(config, entry) if check is not None else None
    if reason:
        warnings.warn(f"ignoring the cache entry {path}: {reason}", stacklevel=3)
        return None
    return entry


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, then
    os.replace. A failure leaves any previous file at ``path`` untouched and no temp file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# ----------------------------------------------------------------------------------
# The training helper every experiment shares


def train_model(config: dict, target, progress: bool, model=None, **architecture):
    """Build a Transformer (seeded) from ``architecture`` and train it on ``target``.

    ``architecture`` sets the model (n_layers, n_heads, ffn_width, rpe, score, ...), with
    defaults of one softmax layer; d_model and every training setting come from the
    experiment's ``config``, which may also set the readings the paper leaves open:
    ``rates`` ("positive" or "free"), ``dtype`` ("float32" or "float64"), ``loss_at``
    ("valid" or "last"), ``sampler`` ("pm1" or "ternary") and ``forward`` ("auto" or
    "window": every position through the fast paths). ``model``, if given, is trained
    instead of a fresh one (a warm start; ``architecture`` is then ignored). Returns
    (model, TrainResult).
    """
    model = model if model is not None else build_model(TransformerConfig(**{
        "d_in": 1, "d_out": 1, "n_layers": 1, "d_model": config["d_model"], "normalized": True,
        "rates": config.get("rates", "positive"), "dtype": DTYPES[config.get("dtype", "float32")],
        **architecture,
    }), seed=config["seed"])
    fit = train(model, target, TrainConfig(
        steps=config["steps"], batch_size=config["batch_size"], length=config["length"],
        lr=config["lr"], seed=config["seed"], eval_size=config["eval_size"],
        threads=config.get("threads"), progress=progress, loss_at=config.get("loss_at", "valid"),
        sampler=config.get("sampler", "pm1"), forward=config.get("forward", "auto"),
    ))
    return model, fit


def thin(values: list[float], n: int) -> dict:
    """At most ``n`` evenly spaced (step, value) pairs of a per-step curve, last step included."""
    every = max(1, -(-len(values) // n))
    steps = list(range(0, len(values), every))
    if steps[-1] != len(values) - 1:
        steps.append(len(values) - 1)
    return {"step": steps, "value": [values[i] for i in steps]}


# The experiments register themselves on import.
from txtheory.experiments import adaptive, essential, fixed, language, suggestions  # noqa: E402,F401
