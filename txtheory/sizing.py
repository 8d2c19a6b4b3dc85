"""How large a Transformer a memory task needs: the paper's rates, the book's constructions
and fits, and the book's floors, side by side.

Explained in ``book/verdicts.md`` ("What the book found"), section "A sizing guide".

    size_fixed((8, 20), eps=1e-3)                   # Task I: memories at fixed lags
    size_chase(3, eps=1e-3)                         # Task II: a 3-hop pointer chase
    size_kernel(kernels.PowerDecay(0.5), 1e-3, window=1000)   # Task III: one kernel

Each returns a ``Sizing``: three columns, each a dict of layers and heads with a note on
its kind of evidence.

* ``paper``: what the paper's theorem says suffices. Its constants C(n) are unknown; for
  Task I the guide puts in the smallest value the book proves Lemma F.1's C(n) can have
  (``kernels.paper_constant_floor``: C(1) >= 50/e), so that column is what the rate asks
  for *at least*; for Task III no such floor is known and it puts in C = 1, and says so.
* ``book``: what the book's constructions and free fits show suffices (upper bounds).
* ``floor``: what the book proves necessary (lower bounds) for the models it names, or
  None where nothing is proved.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from txtheory import kernels, rates
from txtheory._checks import check_int

_MAX_HEADS = 64
MAX_LAG = 10_000  # the largest lag the fixed-memory guide accepts
MAX_RATE = 20  # the largest rate n it accepts (kernels.paper_constant_floor overflows near n = 200)


@dataclass(frozen=True)
class Sizing:
    """One task's sizes: what the paper's rate asks for, what the book's models need, and
    what the book proves necessary."""

    task: str
    eps: float
    paper: dict  # {"layers", "heads", "note"}
    book: dict  # {"layers", "heads", "note"}
    floor: dict  # {"layers", "heads", "note"}; None where nothing is proved

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(column, layers, heads, note) for a table."""
        def show(v):
            return "none proved" if v is None else f"{v:,}" if isinstance(v, int) else str(v)
        return [(name, show(col["layers"]), show(col["heads"]), col["note"])
                for name, col in (("the paper's rate", self.paper), ("the book's models", self.book),
                                  ("the book's floor", self.floor))]


def _check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (0 < eps < 1) or math.isnan(eps):
        raise ValueError(f"eps must be a number in (0, 1), the relative error asked for, got {eps!r}")
    return float(eps)


def size_fixed(lags, eps: float, n: int = 1) -> Sizing:
    """Task I: one memory at each lag in ``lags`` (Theorem 3.1, lin-RPE, rate n)."""
    eps = _check_eps(eps)
    n = check_int("n", n, minimum=1)
    if n > MAX_RATE:
        raise ValueError(f"n must be at most {MAX_RATE} (the floor of C(n) is computed up to it), got {n}")
    if not isinstance(lags, (tuple, list)) or not lags:
        raise ValueError(f"lags must be a non-empty tuple of positive integers, got {lags!r}")
    lags = tuple(check_int("lags", T, minimum=1) for T in lags)
    if len(set(lags)) != len(lags):
        raise ValueError(f"lags must be distinct, got {lags}")
    if max(lags) > MAX_LAG:
        raise ValueError(f"lags must be at most {MAX_LAG} (the delta fits behind the floors), got {max(lags)}")
    C, _ = kernels.paper_constant_floor(n)
    # log of (C (sum_k e^{T_k/100})^{n+1} / eps)^{1/n}, summed in log space: e^{T/100} overflows for T > 70 000
    top = max(lags) / 100
    log_weights = top + math.log(sum(math.exp(T / 100 - top) for T in lags))
    log_heads = (math.log(C) + (n + 1) * log_weights - math.log(eps)) / n
    paper_heads = math.ceil(math.exp(log_heads)) if log_heads < 60 else f"about 10^{log_heads / math.log(10):.0f}"
    book_heads = sum(kernels.head_threshold(T, "lin").any_accuracy for T in lags)
    floor_heads = max(kernels.head_threshold(T, "lin").l1_up_to for T in lags) + 1
    return Sizing(
        task=f"fixed lags {lags}", eps=eps,
        paper={"layers": 1, "heads": paper_heads,
               "note": f"Theorem 3.1 at n = {n}, with C(n) at its proved floor {C:.3g}: at least this many"},
        book={"layers": 1, "heads": book_heads,
              "note": "T + 1 lin heads per memory reach any accuracy in exact arithmetic, with coefficients "
                      "of order eps^-T (float64 failed at T = 4 for eps = 1e-4, book/kernels.md)"},
        floor={"layers": 1, "heads": floor_heads,
               "note": "the l1 floor, for a memory read linearly from a lin head group without the residual "
                       "path (T heads with it); an FFN that reads nonlinearly is not bound by it"},
    )


def size_chase(hops: int, eps: float, *, length: int = 24, max_heads: int = 32) -> Sizing:
    """Task II: a ``hops``-hop pointer chase with g(1), g(-1) = 1, 2 (Theorem 4.4)."""
    eps = _check_eps(eps)
    hops = check_int("hops", hops, minimum=1)
    if hops > 15:
        raise ValueError(f"hops must be at most 15 (the doubling model's lags must fit a short window), got {hops}")
    length = check_int("length", length, minimum=2 * hops + 2)
    max_heads = check_int("max_heads", max_heads, minimum=4)
    from txtheory import construct

    layers, heads, bound = construct.doubling_depth(hops), None, math.inf
    H = 4
    while H <= max_heads:
        built = construct.pointer_doubling(hops, H, length=length)
        if built.bound <= eps:
            heads, bound = H, float(built.bound)
            break
        H *= 2
    return Sizing(
        task=f"{hops}-hop pointer chase", eps=eps,
        paper={"layers": rates.thm44_depth(hops, hops), "heads": "C(n)-dependent",
               "note": "Theorem 4.4: K + 1 layers; its head count has an unknown constant"},
        book={"layers": layers if heads is not None else "not reached",
              "heads": heads if heads is not None else f"> {max_heads}",
              "note": (f"pointer doubling, certified in exact arithmetic: bound {bound:.1e} at {heads} heads "
                       f"per layer, window {length}") if heads is not None
              else f"pointer doubling did not reach {eps:g} with up to {max_heads} heads per layer"},
        floor={"layers": None, "heads": None,
               "note": "no lower bound on depth or heads for this chase in the paper's class is known"},
    )


def fewest_heads(shape: kernels.KernelShape, kind: str, window: int, eps: float,
                 max_heads: int = _MAX_HEADS) -> int | None:
    """The fewest heads of ``kind`` whose free-rate fit to ``shape`` on lags 1..window has
    relative l1 error <= eps (``kernels.fit_free``, measured by ``kernels.l1_error``); None if
    ``max_heads`` do not. An upper bound on the fewest that can: the fit is a local optimum."""
    eps = _check_eps(eps)
    window = check_int("window", window, minimum=2)
    max_heads = check_int("max_heads", max_heads, minimum=1)
    if not isinstance(shape, kernels.KernelShape):
        raise ValueError(f"shape must be a kernels.KernelShape (PowerDecay, ExpDecay, Tabulated, ...), got "
                         f"{type(shape).__name__}")
    total = float(np.sum(np.abs(shape.values(np.arange(1, window + 1)))))
    if total == 0:
        raise ValueError("shape is zero on lags 1..window: there is nothing to fit")
    for H in range(1, max_heads + 1):
        fit = kernels.fit_free(shape, H, kind, window=window, start=1)
        if kernels.l1_error(fit, shape, S=window, start=1).window / total <= eps:
            return H
    return None


def size_kernel(shape: kernels.KernelShape, eps: float, *, window: int, n: int = 1) -> Sizing:
    """Task III: one kernel ``shape`` on a window of ``window`` lags (Theorem 5.1, M = 1).
    The theorem covers ``ExpDecay`` with lin heads (case A) and ``PowerDecay`` with log heads
    (case B, beta >= 200/99); for any other shape, or outside those rates, its column says so."""
    eps = _check_eps(eps)
    n = check_int("n", n, minimum=1)
    lin, log = (fewest_heads(shape, kind, window, eps) for kind in ("lin", "log"))
    found = [(h, k) for h, k in ((lin, "lin"), (log, "log")) if h is not None]
    kind = "lin" if isinstance(shape, kernels.ExpDecay) else "log" if isinstance(shape, kernels.PowerDecay) else None
    paper_heads, paper_note = "outside the theorem", "Theorem 5.1 covers exponential and power tails only"
    if kind is not None:
        try:
            cap = rates.thm51_max_rate(shape.beta, kind)
        except ValueError as err:
            paper_note = f"outside Theorem 5.1: {err}"
        else:
            if n > cap:
                paper_note = f"Theorem 5.1 admits n <= {cap} for this tail, not n = {n}"
            else:
                paper_heads = math.ceil((1.0 / eps) ** (1 / n))
                paper_note = f"Theorem 5.1 ({kind}) at n = {n} (n <= {cap} admitted), C(n) unknown: 1 put in"
    return Sizing(
        task=f"kernel {shape!r}, window {window}", eps=eps,
        paper={"layers": 1, "heads": paper_heads, "note": paper_note},
        book={"layers": 1, "heads": min(found)[0] if found else f"> {_MAX_HEADS}",
              "note": f"free-rate fit, relative l1 on lags 1..{window}: lin {lin or '> 64'}, "
                      f"log {log or '> 64'} heads"},
        floor={"layers": 1, "heads": 1,
               "note": "one head for any eps < 1; no larger floor is proved for this tail"},
    )


__all__ = ["Sizing", "fewest_heads", "size_chase", "size_fixed", "size_kernel"]
