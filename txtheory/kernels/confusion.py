"""Inputs that a readout of H head outputs cannot tell apart: two ±1 sequences that differ
in the memory x_{t-T} while every head's output nearly agrees.

Part of ``txtheory.kernels`` (``book/fixed-memory.md``, "A nonlinear readout"). The floors
of ``recurrence`` bound linear readouts only; a nonlinear readout f of the head outputs
u_h = sum_s w_h(s) x_{t-s} escapes them, but not a Lipschitz bound: if x and x' differ by
2 at lag T and |u_h(x) - u_h(x')| <= gap for every h, then f(u(x)) and f(u(x')) differ
by at most L · gap (L the Lipschitz constant of f in the sup norm), while the memories
differ by 2, so on one of the two inputs the error is at least 1 - L · gap / 2.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from txtheory._checks import check_int


@dataclass(frozen=True)
class ConfusablePair:
    """x = base + d and x' = base - d (d in {-1, 0, 1}^n, d_T = 1, d = 0 on ``keep``), with
    ``gap`` = max_h |u_h(x) - u_h(x')| = 2 max_h |sum_s w_h(s) d_s|. ``d[s]`` is the entry
    at lag s."""

    d: np.ndarray
    gap: float

    def error_floor(self, lipschitz: float) -> float:
        """The sup-norm error any readout with this Lipschitz constant makes on x or x'."""
        return max(0.0, 1.0 - float(lipschitz) * self.gap / 2)

    def lipschitz_needed(self, error: float = 0.5) -> float:
        """The Lipschitz constant a readout needs to be within ``error`` on both inputs."""
        return 2 * (1.0 - float(error)) / self.gap if self.gap > 0 else float("inf")


def confusable_pair(weights: np.ndarray, lag: int, *, keep: Sequence[int] = (0,), iters: int = 50_000,
                    restarts: int = 4, seed: int = 0) -> ConfusablePair:
    """Search d with d_lag = 1 and d = 0 at the lags in ``keep`` (the current token, which
    the residual path carries), minimising max_h |sum_s weights[h, s] d_s|.

    weights: (H, n), head h's weight on lag s (for softmax heads, normalised at the read
    position). A randomised local search (one coordinate at a time, a move kept when it
    does not increase the objective), from ``restarts`` seeded starts: it finds a pair,
    so its ``gap`` is an upper bound on the smallest gap, and every ``error_floor`` it
    gives is a true lower bound for the readouts it is applied to.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or not np.isfinite(w).all():
        raise ValueError(f"weights must be a finite (H, n) array, got shape {w.shape}")
    n = w.shape[1]
    lag = check_int("lag", lag, minimum=0, maximum=n - 1)
    keep = {check_int("keep", k, minimum=0, maximum=n - 1) for k in keep}
    if lag in keep:
        raise ValueError(f"lag {lag} cannot be in keep {sorted(keep)}: the pair must differ there")
    iters = check_int("iters", iters, minimum=1)
    restarts = check_int("restarts", restarts, minimum=1)
    free = np.array([s for s in range(n) if s != lag and s not in keep])
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    best_d, best = None, np.inf
    for _ in range(restarts):
        d = np.zeros(n)
        d[lag] = 1.0
        r = w @ d  # (H,) half the difference of the head outputs
        score = np.abs(r).max()
        for s, v in zip(rng.choice(free, iters), rng.choice([-1.0, 0.0, 1.0], iters)):
            if v == d[s]:
                continue
            trial = r + w[:, s] * (v - d[s])
            m = np.abs(trial).max()
            if m <= score:
                d[s], r, score = v, trial, m
        if score < best:
            best_d, best = d.copy(), score
    return ConfusablePair(best_d, 2 * float(np.abs(w @ best_d).max()))
