"""Train a model on a target with AdamW and measure its errors.

Used by ``book/framework.md`` ("Sequence modelling with Transformers"), section
"Training a model on a target", and by every chapter's *trained* evidence through
``txtheory.experiments``.

    model  = build_model(TransformerConfig(...), seed=0)   # seeded initialisation
    result = train(model, target, TrainConfig(steps=300))  # AdamW on the squared loss
    result.eval   # {"mse": ..., "max_abs": ...} on held-out sequences

Conventions (shared by every module):

* The loss and the errors read only the positions t >= ``target.first_valid``, whose
  whole memory lies inside the window (``loss_at="valid"``), or only the last position of
  the window (``loss_at="last"``: one scalar per sequence, as the paper writes its
  experiments' targets). The target and the model are asked for those positions only
  (``positions=``), which for a one-layer model skips the others entirely, unless the
  FFT path over all positions is cheaper (long windows; see ``_query_positions``).
* ``TrainConfig.seed`` fixes the training batches (a ``torch.Generator`` on the CPU) and
  ``build_model(config, seed)`` fixes the initialisation, so a CPU run repeats bit for
  bit on the same machine and thread count (``TrainConfig.threads``); on another CPU
  or thread count the last bits of float32 sums differ, and training amplifies them.
  Held-out sequences come from a generator seeded with ``seed + EVAL_SEED_OFFSET``.
* ``mse`` is the mean of (model - target)^2 over held-out sequences, valid positions and
  outputs; ``max_abs`` is the largest |model - target| over the same entries: the
  empirical sup-norm that the paper's theorems bound.
* AdamW decays the weight matrices only (nanoGPT's rule: tensors with >= 2 dimensions);
  biases and the RPE rates p_h are not decayed, so weight decay does not pull p_h
  towards softplus(0).
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from . import targets
from ._checks import check_choice, check_int
from .model import Transformer, TransformerConfig

SAMPLERS = {
    "pm1": targets.sample_pm1,  # uniform on {-1, +1}
    "ternary": targets.sample_ternary,  # uniform on {-1, 0, +1}
    "uniform": targets.sample_uniform,  # uniform on [-1, 1)
}
DEVICES = ("cpu", "cuda", "auto")
SCHEDULES = ("constant", "cosine")
LOSS_AT = ("valid", "last")  # every position t >= first_valid, or only t = length - 1
FORWARDS = ("auto", "window")  # the cheaper of the two ways below, or every position always
EVAL_SEED_OFFSET = 10**6  # held-out data never coincides with a training batch's seed
ERRORS = ("mse", "max_abs", "mean_error", "y_var", "rel_mse")  # what ``evaluate`` returns


@dataclass
class TrainConfig:
    """How to train: AdamW on the squared loss, fresh batches each step."""

    steps: int = 1000  # AdamW steps, one fresh batch each
    batch_size: int = 64  # sequences per step
    length: int = 64  # T: window length of every sequence
    lr: float = 1e-2  # peak learning rate
    weight_decay: float = 0.01  # AdamW decay of the weight matrices (not biases, not p_h)
    schedule: str = "cosine"  # "constant" | "cosine" (decay from lr to lr/100)
    seed: int = 0  # fixes the training batches (initialisation: build_model's seed)
    sampler: str = "pm1"  # input distribution: "pm1" | "ternary" | "uniform"
    device: str = field(default_factory=lambda: default_device())  # "cpu" | "cuda" | "auto"
    eval_size: int = 1000  # held-out sequences for the final evaluation
    progress: bool = True  # show a tqdm bar with the running loss
    log_every: int = 50  # refresh the bar's loss every this many steps
    threads: int | None = None  # torch CPU threads while training (None: leave as is)
    loss_at: str = "valid"  # "valid": every t >= first_valid; "last": only t = length - 1
    # "auto": the last layer computes only the read positions or every position, whichever
    # is cheaper (_query_positions); "window": every position, through the layers' fast
    # paths, and the read positions sliced out (to train a model on those paths)
    forward: str = "auto"

    def __post_init__(self):
        self.steps = check_int("steps", self.steps, minimum=1)
        self.batch_size = check_int("batch_size", self.batch_size, minimum=1)
        self.length = check_int("length", self.length, minimum=1)
        self.lr = _check_float("lr", self.lr, positive=True)
        self.weight_decay = _check_float("weight_decay", self.weight_decay, positive=False)
        check_choice("schedule", self.schedule, SCHEDULES)
        self.seed = check_int("seed", self.seed, minimum=0)
        check_choice("sampler", self.sampler, tuple(SAMPLERS))
        check_choice("device", self.device, DEVICES)
        self.eval_size = check_int("eval_size", self.eval_size, minimum=1)
        if not isinstance(self.progress, bool):
            raise ValueError(f"progress must be True or False, got {self.progress!r}")
        self.log_every = check_int("log_every", self.log_every, minimum=1)
        if self.threads is not None:
            self.threads = check_int("threads", self.threads, minimum=1)
        check_choice("loss_at", self.loss_at, LOSS_AT)
        check_choice("forward", self.forward, FORWARDS)


@dataclass
class TrainResult:
    """What a training run produced: one loss per step, the held-out errors, the time."""

    losses: list[float]  # training loss at each step (before that step's update)
    eval: dict  # {"mse": float, "max_abs": float} on held-out sequences
    seconds: float  # wall-clock time of the training loop and the evaluation
    steps: int
    config: dict = field(default_factory=dict)  # the TrainConfig, as plain values

    def to_dict(self) -> dict:
        """Plain JSON-able values (no tensors)."""
        return {
            "losses": [float(v) for v in self.losses],
            "eval": {k: float(v) for k, v in self.eval.items()},
            "seconds": float(self.seconds),
            "steps": int(self.steps),
            "config": dict(self.config),
        }


# ----------------------------------------------------------------------------------
# Seeding and devices


def seed_everything(seed: int) -> None:
    """Seed torch's and numpy's global generators (the model's initialisation uses them)."""
    seed = check_int("seed", seed, minimum=0)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def build_model(model_config: TransformerConfig, seed: int = 0) -> Transformer:
    """Seed, then build ``Transformer(model_config)``: the same seed gives the same weights."""
    if not isinstance(model_config, TransformerConfig):
        raise ValueError(f"model_config must be a TransformerConfig, got {type(model_config).__name__}")
    seed_everything(seed)
    return Transformer(model_config)


DEVICE_VARIABLE = "TXTHEORY_DEVICE"  # set by ``txtheory reproduce --device``


def default_device() -> str:
    """The device a TrainConfig (and an LMTrainConfig) uses unless told: the environment
    variable TXTHEORY_DEVICE ("cpu", "cuda" or "auto"), else "cpu". It is not part of an
    experiment's config, so results from any device share one cache entry; the entry's
    environment records the device."""
    return check_choice(DEVICE_VARIABLE, os.environ.get(DEVICE_VARIABLE, "cpu"), DEVICES)


def pick_device(device: str = "auto") -> str:
    """"auto" -> "cuda" if available, else "cpu"; asking for "cuda" without CUDA raises."""
    check_choice("device", device, DEVICES)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device must be 'cpu' or 'auto' here: 'cuda' was asked for but "
                         "torch.cuda.is_available() is False")
    return device


# ----------------------------------------------------------------------------------
# Probing the cost of a step (``txtheory bench``)

_PROBE: tuple[int, list] | None = None  # inside ``probe``: (its steps, one record per model)


@contextlib.contextmanager
def probe(steps: int = 3):
    """Inside: every ``train`` (and ``language.train_lm``) runs ``steps`` + 1 steps only,
    skips its evaluation (its errors come back NaN) and appends a record to the list this
    yields: {"steps": the steps it was asked for, "seconds_per_step": the mean over the
    steps after the first (which warms up), "params": the model's parameter count}.

    So an experiment's own runner, run at any scale, says what each of its models costs
    per step without training any of them: ``bench.bench_experiments`` uses it.
    """
    global _PROBE
    steps = check_int("steps", steps, minimum=1)
    if _PROBE is not None:
        raise RuntimeError("probe() does not nest")
    records = []
    _PROBE = (steps, records)
    try:
        yield records
    finally:
        _PROBE = None


def probed_steps(configured: int) -> int:
    """The steps a training loop runs: ``configured``, or the probe's few (plus a warm-up)."""
    return configured if _PROBE is None else min(configured, _PROBE[0] + 1)


def record_probe(model, configured: int, step_seconds: list[float]) -> bool:
    """Inside ``probe``: record one trained model's cost and return True (skip the rest)."""
    if _PROBE is None:
        return False
    timed = step_seconds[1:] or step_seconds  # the first step warms up
    _PROBE[1].append({"steps": configured, "seconds_per_step": sum(timed) / len(timed),
                   "params": sum(p.numel() for p in model.parameters())})
    return True


# ----------------------------------------------------------------------------------
# Training and evaluation


def train(model: Transformer, target, config: TrainConfig | None = None) -> TrainResult:
    """Train ``model`` on ``target`` with AdamW on the squared loss; return a TrainResult.

    The model is moved to ``config.device`` and trained in place. Each step draws a
    fresh batch x: (B, T, d) from a CPU generator seeded with ``config.seed``, computes
    y = target(x): (B, T, c), and fits the model at positions t >= target.first_valid.
    """
    config = config if config is not None else TrainConfig()
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    _check_compatible(model, target, config.length)
    device = pick_device(config.device)
    model.to(device)
    dtype = model.config.dtype
    first = first_read(target, config.length, config.loss_at)  # the loss reads positions first..T-1
    read = torch.arange(first, config.length)  # (P,) the positions the loss reads
    query = None if config.forward == "window" else _query_positions(model, first, config.length, device)
    sample = SAMPLERS[config.sampler]

    optimizer = adamw(model, config.lr, config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)  # on the CPU: same batches everywhere
    steps = probed_steps(config.steps)
    losses = torch.empty(steps, dtype=torch.float64)  # (steps,) one loss per step
    step_seconds = []

    start = time.perf_counter()
    with torch_threads(config.threads):
        model.train()
        bar = tqdm(range(steps), disable=not config.progress, desc="train", leave=False)
        for step in bar:
            step_start = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, config)
            x = sample(config.batch_size, config.length, target.d_in, generator=generator, dtype=dtype)  # (B, T, d)
            y = target(x, positions=read)  # (B, P, c)
            x, y = x.to(device), y.to(device)
            pred = _predict(model, x, first, query)  # (B, P, c)
            loss = (pred - y).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses[step] = value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"the training loss became {value} at step {step}; "
                                         f"lower the learning rate (lr={config.lr})")
            if step % config.log_every == 0 or step == config.steps - 1:
                bar.set_postfix(loss=f"{value:.3g}")
            step_seconds.append(time.perf_counter() - step_start)
        bar.close()
        if record_probe(model, config.steps, step_seconds):
            nan = float("nan")
            return TrainResult(losses=losses.tolist(), eval=dict.fromkeys(ERRORS, nan), seconds=nan,
                               steps=steps, config=asdict(config))
        errors = evaluate(model, target, config.length, config.eval_size, config.seed,
                          sampler=config.sampler, batch_size=config.batch_size, loss_at=config.loss_at,
                          forward=config.forward)
    seconds = time.perf_counter() - start
    return TrainResult(losses=losses.tolist(), eval=errors, seconds=seconds,
                       steps=config.steps, config=asdict(config))


@torch.no_grad()
def evaluate(model: Transformer, target, length: int, n: int, seed: int, *,
             sampler: str = "pm1", batch_size: int = 256, loss_at: str = "valid",
             forward: str = "auto") -> dict:
    """Errors of ``model`` against ``target`` on ``n`` held-out sequences of ``length``.

    The sequences come from a CPU generator seeded with ``seed + EVAL_SEED_OFFSET``
    (never a training batch of seed ``seed``). Only positions t >= target.first_valid
    count (``loss_at="last"``: only t = length - 1). Returns {"mse": mean squared error,
    "max_abs": max absolute error, "mean_error": the mean of the signed error (a constant
    offset; mse - mean_error**2 is what is left once it is removed), "y_var": the target's
    variance over those entries, "rel_mse": mse / y_var (1 = no better than predicting the
    mean)}.
    """
    length = check_int("length", length, minimum=1)
    n = check_int("n", n, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    check_choice("sampler", sampler, tuple(SAMPLERS))
    _check_compatible(model, target, length)
    device = next(model.parameters()).device
    dtype = model.config.dtype
    first = first_read(target, length, check_choice("loss_at", loss_at, LOSS_AT))
    read = torch.arange(first, length)  # (P,)
    check_choice("forward", forward, FORWARDS)
    query = None if forward == "window" else _query_positions(model, first, length, device)
    generator = torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET)

    was_training = model.training
    model.eval()
    sq_sum, err_sum, count, max_abs = 0.0, 0.0, 0, 0.0
    y_sum, y_sq_sum = 0.0, 0.0
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        x = SAMPLERS[sampler](b, length, target.d_in, generator=generator, dtype=dtype)  # (b, T, d)
        y = target(x, positions=read).to(device)  # (b, P, c)
        err = (_predict(model, x.to(device), first, query) - y).double()  # (b, P, c)
        sq_sum += err.square().sum().item()
        err_sum += err.sum().item()
        count += err.numel()
        max_abs = max(max_abs, err.abs().max().item())
        y_sum += y.double().sum().item()
        y_sq_sum += y.double().square().sum().item()
    model.train(was_training)
    y_var = max(y_sq_sum / count - (y_sum / count) ** 2, 0.0)
    return {"mse": sq_sum / count, "max_abs": max_abs, "mean_error": err_sum / count, "y_var": y_var,
            "rel_mse": sq_sum / count / y_var if y_var > 0 else math.inf}


# ----------------------------------------------------------------------------------
# Helpers


def train_tokens(model: Transformer, task, config: TrainConfig | None = None) -> TrainResult:
    """Train ``model`` on a token-recall task (``txtheory.recall``) with AdamW on the
    cross-entropy of the answers; return a TrainResult whose ``eval`` is
    :func:`evaluate_tokens` on held-out sequences (``book/suggestions.md``).

    The model reads token ids (B, T) and gives logits (B, T, V); only the positions where
    an answer is due enter the loss. ``config.length`` must be the task's length and
    ``config.sampler`` is unused (the task draws its own sequences).
    """
    config = config if config is not None else TrainConfig(length=getattr(task, "length", 64))
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    _check_token_task(model, task, config.length)
    device = pick_device(config.device)
    model.to(device)
    optimizer = adamw(model, config.lr, config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    steps = probed_steps(config.steps)
    losses = torch.empty(steps, dtype=torch.float64)
    step_seconds = []
    start = time.perf_counter()
    with torch_threads(config.threads):
        model.train()
        bar = tqdm(range(steps), disable=not config.progress, desc="train", leave=False)
        for step in bar:
            step_start = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, config)
            x, y = (v.to(device) for v in task.sample(config.batch_size, generator))  # (B, T) each
            asked = y >= 0  # (B, T) where an answer is due
            loss = torch.nn.functional.cross_entropy(model(x)[asked], y[asked])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses[step] = value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"the training loss became {value} at step {step}; "
                                         f"lower the learning rate (lr={config.lr})")
            if step % config.log_every == 0 or step == config.steps - 1:
                bar.set_postfix(loss=f"{value:.3g}")
            step_seconds.append(time.perf_counter() - step_start)
        bar.close()
        if record_probe(model, config.steps, step_seconds):
            nan = float("nan")
            return TrainResult(losses=losses.tolist(), eval={"accuracy": nan, "error": nan, "loss": nan},
                               seconds=nan, steps=steps, config=asdict(config))
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):  # the last update's
            raise FloatingPointError(f"a parameter became non-finite at the last step; "
                                     f"lower the learning rate (lr={config.lr})")
        errors = evaluate_tokens(model, task, config.eval_size, config.seed, batch_size=config.batch_size)
    return TrainResult(losses=losses.tolist(), eval=errors, seconds=time.perf_counter() - start,
                       steps=config.steps, config=asdict(config))


@torch.no_grad()
def evaluate_tokens(model: Transformer, task, n: int, seed: int, *, batch_size: int = 256) -> dict:
    """Answers of ``model`` on ``n`` held-out sequences of a token task (a generator seeded
    with ``seed + EVAL_SEED_OFFSET``): {"accuracy": the share of answers right, "error":
    1 - accuracy, "loss": their mean cross-entropy}."""
    n = check_int("n", n, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    _check_token_task(model, task, task.length)
    generator = torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    right = total = 0
    loss_sum = 0.0
    for start in range(0, n, batch_size):
        x, y = (v.to(device) for v in task.sample(min(batch_size, n - start), generator))
        asked = y >= 0
        logits = model(x)[asked]  # (answers, V)
        right += int((logits.argmax(-1) == y[asked]).sum())
        total += int(asked.sum())
        loss_sum += float(torch.nn.functional.cross_entropy(logits.double(), y[asked], reduction="sum"))
    model.train(was_training)
    accuracy = right / total
    return {"accuracy": accuracy, "error": 1 - accuracy, "loss": loss_sum / total}


def _check_token_task(model, task, length: int) -> None:
    """Clear errors for a token task that does not fit the model or the window."""
    if not all(hasattr(task, a) for a in ("sample", "n_classes", "length")):
        raise ValueError(f"task must be a token task of txtheory.recall (with sample, n_classes and length), "
                         f"got {type(task).__name__}")
    config = getattr(model, "config", None)
    if not isinstance(model, Transformer):
        raise ValueError(f"model must be a txtheory.model.Transformer (it reads token ids), got {type(model).__name__}")
    if config.d_in != task.n_classes or config.d_out != task.n_classes:
        raise ValueError(f"the model's d_in and d_out must both be the task's vocabulary, {task.n_classes}; "
                         f"got d_in={config.d_in}, d_out={config.d_out}")
    if length != task.length:
        raise ValueError(f"length={length} must be the task's length, {task.length}")


def _check_compatible(model, target, length: int) -> None:
    """Clear errors for a target that does not fit the model or the window."""
    config = getattr(model, "config", None)
    if not isinstance(model, torch.nn.Module) or not all(hasattr(config, a) for a in ("d_in", "d_out", "dtype")):
        raise ValueError("model must be a txtheory.model.Transformer or a txtheory.baselines model "
                         f"(a torch module with a config of d_in, d_out and dtype), got {type(model).__name__}")
    for attr in ("d_in", "d_out", "first_valid"):
        if not hasattr(target, attr):
            raise ValueError(f"target must have d_in, d_out and first_valid (a txtheory.targets target); "
                             f"{type(target).__name__} has no {attr}")
    c = model.config
    if target.d_in != c.d_in:
        raise ValueError(f"target.d_in={target.d_in} must equal the model's d_in={c.d_in}")
    if target.d_out != c.d_out:
        raise ValueError(f"target.d_out={target.d_out} must equal the model's d_out={c.d_out}")
    if length <= target.first_valid:
        raise ValueError(f"length={length} must be > target.first_valid={target.first_valid} "
                         "(the largest lag must lie inside the window)")


def first_read(target, length: int, loss_at: str) -> int:
    """The first position the loss and the errors read: first_valid, or length - 1."""
    return target.first_valid if loss_at == "valid" else length - 1


def _query_positions(model: Transformer, first_valid: int, length: int, device) -> torch.Tensor | None:
    """The positions to ask the model for: (P,) = first_valid..T-1, or None for all T.

    Asking for P positions restricts the last layer's attention to P query rows, which
    costs about H·P·T (dense). Without them a DP-free last layer takes the FFT path over
    all T rows, about n log n per head (normalised) or in all (normalisation-free),
    n = 2T. We take the cheaper; the constant 32 was measured on a CPU. For short windows,
    or a loss that reads a few late positions, the restricted dense path wins.
    """
    c = model.config
    P, T = length - first_valid, length
    if not isinstance(model, Transformer):  # a baseline computes every position anyway
        return None
    if c.score[-1] == "free":
        n = 2 * T
        fft_cost = 32 * n * math.log2(n) * (c.n_heads if c.normalized else 1)
        if fft_cost < c.n_heads * P * T:
            return None
    return torch.arange(first_valid, length, device=device)


def _predict(model: Transformer, x: torch.Tensor, first_valid: int, query) -> torch.Tensor:
    """Model outputs at the valid positions: x (B, T, d) -> (B, P, c)."""
    if query is None:
        return model(x)[:, first_valid:]  # (B, T, c) -> (B, P, c)
    return model(x, positions=query)  # (B, P, c)


def adamw(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW that decays the weight matrices only (tensors with >= 2 dimensions); biases,
    LayerNorm gains and the RPE rates p_h are not decayed."""
    decay = [p for p in model.parameters() if p.ndim >= 2]  # weight matrices
    no_decay = [p for p in model.parameters() if p.ndim < 2]  # biases, RPE rates p_h
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def lr_at(step: int, config) -> float:
    """The learning rate at ``step`` of a config with ``lr``, ``steps`` and ``schedule``:
    constant, or a cosine from lr down to lr/100 over the run."""
    if config.schedule == "constant" or config.steps == 1:
        return config.lr
    frac = step / (config.steps - 1)
    floor = config.lr / 100
    return floor + 0.5 * (config.lr - floor) * (1 + math.cos(math.pi * frac))


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run with ``n`` torch CPU threads, then restore the previous count (None: no change)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_float(name: str, value, positive: bool) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or (v <= 0 if positive else v < 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return v
