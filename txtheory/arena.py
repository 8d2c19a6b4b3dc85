"""The side-by-side test of the paper's architectural suggestions: the architectures, the
tasks with their declared memory structure, and the theory's prediction of the winner,
computed from that structure before any training.

Explained in ``book/suggestions.md`` ("The paper's suggestions, side by side").

    arch = ARCHITECTURES["free_log"]         # what it is, and what it can do
    task = TASKS["heavy_tail"]               # what memory it needs
    predict(task, "decay")                   # the architectures the theory says should win
    configs = matched_configs(task, length=64, d_model=32, n_layers=2, n_heads=4, ffn_width=64)

Every architecture is a ``model.Transformer``: one attention class, whose encoding is the
paper's or a practitioner's (``rpe.RelativeBias``), and whose layers may hold a diagonal
SSM in attention's place (``baselines.SSMMixer``). Parameter counts are matched through
the FFN width (``matched_configs``): one width for all the FFNs of a model, chosen so its
count is the closest to the largest architecture's at the base width.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import torch

from . import recall, targets
from ._checks import check_choice, check_int
from .kernels.shapes import ExpDecay, PowerDecay
from .model import TransformerConfig, count_params

CONTENTS = (None, "dp", "tmx")  # how an architecture's mixing reads the tokens' content
DECAYS = ("lin", "log")  # the type of its positional decay


@dataclass(frozen=True)
class Architecture:
    """One architecture of the comparison: its config (beyond the sizes) and two features
    the predictions read: ``content`` (what steers its mixing besides position: the dot
    product, TMX's query-token shift, or nothing) and ``decay`` (lin- or log-type)."""

    name: str
    label: str
    options: dict  # TransformerConfig fields, per layer where they are tuples
    content: str | None
    decay: str
    source: str  # whose suggestion or practice it is


ARCHITECTURES = {a.name: a for a in (
    Architecture("alibi", "DP + ALiBi", dict(score="dp", bias="alibi"), "dp", "lin",
                 "practice: softmax attention with ALiBi (Press et al. 2022)"),
    Architecture("kerple", "DP + KERPLE-log", dict(score="dp", bias="kerple_log"), "dp", "log",
                 "practice: softmax attention with KERPLE-log (Chi et al. 2022)"),
    Architecture("free_lin", "DP-free, lin", dict(score="free", rpe="lin"), None, "lin",
                 "the paper's suggestion 1 (Theorems 3.1, 5.1)"),
    Architecture("free_log", "DP-free, log", dict(score="free", rpe="log"), None, "log",
                 "the paper's suggestion 1 (Theorems 3.1, 5.1)"),
    Architecture("tmx", "TMX, no softmax", dict(score="tmx", rpe="lin", normalized=False), "tmx", "lin",
                 "the paper's suggestion 2 (Prop 4.3)"),
    Architecture("ssm", "diagonal SSM", dict(mixer="ssm"), None, "lin",
                 "practice: a real diagonal linear SSM with the LRU's decay lambda = exp(-exp nu); "
                 "not S4D's per-channel states, nor the LRU's complex, normalised ones"),
    Architecture("hybrid", "SSM, then DP + ALiBi", dict(mixer=("ssm", "attention"), score=("free", "dp"),
                                                         bias=("paper", "alibi")), "dp", "lin",
                 "practice: a hybrid, one SSM layer below one dot-product layer"),
)}


@dataclass(frozen=True)
class Task:
    """One task of the comparison and the memory structure it declares.

    ``memory``: "fixed" (Task I), "adaptive" (Task II) or "essential" (Task III).
    ``lookup`` (adaptive only): "pointer" when the lag to read is a function of the query
    token (the pointer chase: TMX can compute it), "match" when it is where a key equal to
    the query sits (MQAR), "select" when it depends on which earlier tokens are not blank
    (selective copying). ``tail`` (essential only): "heavy" or "light".
    """

    name: str
    label: str
    kind: str  # "regression" (tokens +-1, squared error) or "tokens" (ids, cross-entropy)
    memory: str
    lookup: str | None
    tail: str | None
    source: str
    make: Callable[[int], object]  # length -> a txtheory target or a recall task

    def build(self, length: int):
        return self.make(check_int("length", length, minimum=2))


def _relu_readout(n_in: int):
    return targets.random_relu_readout(n_in, 16, generator=torch.Generator().manual_seed(0))


SUPPORT = 40  # the kernels' support in the Task III representatives (first_valid = 39)

TASKS = {t.name: t for t in (
    Task("fixed", "fixed lags (0, 6, 19)", "regression", "fixed", None, None,
         "Task I (paper, sec. 3)",
         lambda T: targets.FixedMemoryTarget(lags=(0, 6, 19), readout=_relu_readout(3))),
    Task("fixed_short", "fixed lags (0, 2, 5)", "regression", "fixed", None, None,
         "Task I (paper, sec. 3)",
         lambda T: targets.FixedMemoryTarget(lags=(0, 2, 5), readout=_relu_readout(3))),
    Task("pointer", "2-hop pointer chase, hops 2 or 7", "regression", "adaptive", "pointer", None,
         "Task II (paper, sec. 4)", lambda T: targets.pointer_chase(2, lags=(2, 7))),
    Task("pointer_short", "2-hop pointer chase, hops 1 or 2", "regression", "adaptive", "pointer", None,
         "Task II (paper, sec. 4)", lambda T: targets.pointer_chase(2, lags=(1, 2))),
    Task("heavy_tail", "kernel s^-1.5", "regression", "essential", None, "heavy",
         "Task III (paper, sec. 5)",
         lambda T: targets.EssentialMemoryTarget([PowerDecay(1.5).tabulate(SUPPORT)], _relu_readout(1))),
    Task("light_tail", "kernel e^-0.3s", "regression", "essential", None, "light",
         "Task III (paper, sec. 5)",
         lambda T: targets.EssentialMemoryTarget([ExpDecay(0.3).tabulate(SUPPORT)], _relu_readout(1))),
    Task("mqar", "MQAR", "tokens", "adaptive", "match", None,
         "Arora et al. 2023 (Zoology)", lambda T: recall.MQAR(vocab_size=64, length=T, n_pairs=8)),
    Task("copying", "selective copying", "tokens", "adaptive", "select", None,
         "Gu and Dao 2023 (Mamba)", lambda T: recall.SelectiveCopying(vocab_size=16, length=T, n_tokens=8)),
)}


def check_architecture(name: str) -> Architecture:
    """The architecture ``name``; an unknown one raises, listing the known ones."""
    return ARCHITECTURES[check_choice("architecture", name, tuple(ARCHITECTURES))]


def check_task(name: str) -> Task:
    """The task ``name``; an unknown one raises, listing the known ones."""
    return TASKS[check_choice("task", name, tuple(TASKS))]


# --- the predictions ----------------------------------------------------------------------


RULES = ("content", "decay")  # the two features a prediction reads


@dataclass(frozen=True)
class Prediction:
    task: str
    rule: str  # "content" or "decay"
    winners: tuple[str, ...]  # the architectures the rule says should be best
    field: tuple[str, ...]  # the architectures compared (the decay rule: those the content rule allows)
    reason: str


def rules_for(task: Task | str) -> tuple[str, ...]:
    """The rules a task's structure engages: content always, decay where a tail is declared."""
    task = check_task(task) if isinstance(task, str) else task
    return ("content", "decay") if task.tail else ("content",)


def predict(task: Task | str, rule: str = "content") -> Prediction:
    """The architectures the theory predicts should win ``task`` under ``rule``, from the
    task's declared structure alone, and why.

    * ``"content"``, compared over every architecture. Fixed and essentially sparse memory
      need no dot product (Theorems 3.1 and 5.1 show DP-free attention suffices); our
      reading, not the paper's statement, is that at a matched count the weights a dot
      product or TMX costs then buy nothing, so the winners are among the architectures
      without content. Adaptive memory needs the lag to depend on the tokens (Prop 4.2,
      for attention alone): a pointer lag is a function of the query token, which TMX
      computes (Prop 4.3), so DP or TMX; a lag set by where a matching key or a non-blank
      token sits depends on tokens other than the query, which TMX's query-only shift
      cannot read, so the dot product (our extension: the paper treats no such task).
    * ``"decay"``, compared among the architectures the content rule allows (so content
      is held fixed): a heavy tail wants a log-type decay, a light one a lin-type decay
      (implications 4a and 4b). Only for tasks that declare a tail.

    The SSM counts as lin-type without content (its kernel is a sum of exponentials,
    like lin heads'): that placement is ours too.
    """
    task = check_task(task) if isinstance(task, str) else task
    check_choice("rule", rule, RULES)
    if task.memory == "adaptive":
        contents = ("dp", "tmx") if task.lookup == "pointer" else ("dp",)
        why = ("the lag is a function of the query token: the dot product or TMX (Prop 4.2, 4.3)"
               if task.lookup == "pointer" else
               "the lag depends on tokens other than the query: the dot product (Prop 4.2, extended; "
               "TMX reads the query only)")
    else:
        contents = (None,)
        why = (f"{task.memory} memory needs no dot product (Theorem {'3.1' if task.memory == 'fixed' else '5.1'}; "
               "at a matched count its weights buy nothing)")
    allowed = tuple(a.name for a in ARCHITECTURES.values() if a.content in contents)
    if rule == "content":
        return Prediction(task.name, rule, allowed, tuple(ARCHITECTURES), why)
    if not task.tail:
        raise ValueError(f"task {task.name!r} declares no tail, so the decay rule does not apply to it")
    decay = "log" if task.tail == "heavy" else "lin"
    winners = tuple(a for a in allowed if ARCHITECTURES[a].decay == decay)
    return Prediction(task.name, rule, winners, allowed,
                      f"a {task.tail} tail wants {decay}-type decay (implication "
                      f"{'4a' if task.tail == 'heavy' else '4b'}), among the architectures the content rule allows")


UNLEARNED = 0.5  # a best mean error above this: no architecture learned the task (as verdicts.UNLEARNED)
STATUSES = ("confirmed", "no separation", "missed", "uninformative")


@dataclass(frozen=True)
class Outcome:
    task: str
    rule: str
    best: str  # the architecture of the field with the lowest mean error
    best_predicted: str  # the predicted one with the lowest mean error
    best_other: str  # the best of the field's other architectures
    best_error: float  # the best's mean error
    margin: float  # best_other's mean error minus best_predicted's (> 0: the prediction ahead)
    noise: float  # 2 standard errors of that difference (the seeds' spread)
    status: str  # one of STATUSES

    @property
    def confirmed(self) -> bool:
        return self.status == "confirmed"


def judge(prediction: Prediction, errors: dict[str, list[float]]) -> Outcome:
    """Whether training confirms ``prediction``, comparing the best predicted architecture of
    its field with the best of the others (each mean test error over seeds, each at the
    learning rate its validation error chose):

    * "confirmed": the predicted one is lower by more than 2 standard errors of the
      difference (a difference within the seeds' spread is no difference);
    * "missed": the other is lower by more than that;
    * "no separation": neither;
    * "uninformative": even the field's best mean error is above ``UNLEARNED``, so no
      architecture learned the task and the order of the failures tests nothing.

    The standard errors treat the architectures' seeds as independent; with 3 seeds two of
    them are a convention of the book, not a test at a stated level.
    """
    if not errors or any(len(v) == 0 for v in errors.values()):
        raise ValueError("errors must map each architecture to a non-empty list of errors")
    missing = [a for a in prediction.field if a not in errors]
    if missing:
        raise ValueError(f"errors lacks the architecture(s) {', '.join(missing)} of the prediction's field")
    others = [a for a in prediction.field if a not in prediction.winners]
    if not prediction.winners or not others:
        raise ValueError("a prediction must name some architectures of its field and leave some out")
    stats = {a: mean_se(errors[a]) for a in prediction.field}
    best = min(stats, key=lambda a: stats[a][0])
    mine = min(prediction.winners, key=lambda a: stats[a][0])
    other = min(others, key=lambda a: stats[a][0])
    margin = stats[other][0] - stats[mine][0]
    noise = 2 * math.hypot(stats[mine][1], stats[other][1])
    if stats[best][0] > UNLEARNED:
        status = "uninformative"
    else:
        status = "confirmed" if margin > noise else "missed" if margin < -noise else "no separation"
    return Outcome(prediction.task, prediction.rule, best, mine, other, stats[best][0], margin, noise, status)


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (sample standard deviation / sqrt(n); 0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


# --- the models, at matched parameters ------------------------------------------------------


def base_config(task: Task, arch: Architecture, *, length: int, d_model: int, n_layers: int, n_heads: int,
                ffn_width: int, ssm_states: int = 16, dtype: torch.dtype = torch.float32) -> TransformerConfig:
    """``arch`` sized for ``task`` on windows of ``length``: tokens +-1 in one channel
    (regression) or ids read as one-hot vectors (tokens); d_qk = D / H for the dot product,
    as in multi-head practice."""
    d_in = d_out = task.build(length).n_classes if task.kind == "tokens" else 1
    options = {k: _stretch(v, n_layers) if isinstance(v, tuple) else v for k, v in arch.options.items()}
    return TransformerConfig(d_in=d_in, d_model=d_model, n_layers=n_layers, n_heads=n_heads, ffn_width=ffn_width,
                             d_out=d_out, d_qk=max(1, d_model // n_heads), ssm_states=ssm_states, dtype=dtype,
                             **options)


def _stretch(values: tuple, n_layers: int) -> tuple:
    """A hybrid's per-layer options for ``n_layers`` layers: the first value on every layer
    but the last, the last value on the last (one SSM layer below one DP layer at L = 2)."""
    if n_layers < 2:
        raise ValueError(f"a hybrid needs n_layers >= 2 (one layer below the last), got {n_layers}")
    return (values[0],) * (n_layers - 1) + (values[-1],)


def matched_configs(task: Task | str, *, length: int, d_model: int, n_layers: int, n_heads: int,
                    ffn_width: int, ssm_states: int = 16, architectures: tuple[str, ...] | None = None,
                    dtype: torch.dtype = torch.float32) -> dict[str, TransformerConfig]:
    """Every architecture sized for ``task`` with (nearly) one parameter count: the largest
    count at ``ffn_width``, met by each through its own FFN width. The count is affine in
    the width, so the closest width is solved for, not searched."""
    task = check_task(task) if isinstance(task, str) else task
    names = tuple(ARCHITECTURES) if architectures is None else tuple(check_architecture(a).name for a in architectures)
    sizes = dict(length=length, d_model=d_model, n_layers=n_layers, n_heads=n_heads, ssm_states=ssm_states,
                 dtype=dtype)
    base = {a: base_config(task, ARCHITECTURES[a], ffn_width=ffn_width, **sizes) for a in names}
    budget = max(count_params(c) for c in base.values())
    matched = {}
    for a, c in base.items():
        per_unit = count_params(replace(c, ffn_width=ffn_width + 1)) - count_params(c)
        width = ffn_width + round((budget - count_params(c)) / per_unit)
        matched[a] = replace(c, ffn_width=width)
    return matched
