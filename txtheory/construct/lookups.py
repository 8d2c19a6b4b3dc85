"""FFNs exact on a finite grid of tokens: the lookups of Task II's constructions.

Part of ``txtheory.construct``; explained in ``book/adaptive-memory.md`` ("Task II:
adaptive, long but sparse memory"), whose constructions (``construct.adaptive``) compute
lags and readouts with these blocks, and whose width-condition section replaces the
exact lookup with random ReLU features to show where the rounding goes wrong.

Residual-stream convention shared with ``construct.adaptive``: slot 0 holds x_t and
slot 1 the constant 1 (the embedding's bias), which a lookup reads for its constant.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from txtheory._checks import check_int

X_SLOT, ONE_SLOT = 0, 1


def start_residual(model) -> None:
    """Zero every parameter of a constructed model, then embed x_t into slot 0 and the
    constant 1 into slot 1: the residual-stream convention above. Call under no_grad."""
    for p in model.parameters():
        p.zero_()
    model.embed.weight[X_SLOT, 0] = 1.0
    model.embed.bias[ONE_SLOT] = 1.0




@dataclass
class Lookup:
    """One FFN block: hidden units (W (m, D), b (m,)) and output weights A (D_out, m)."""

    W: np.ndarray
    b: np.ndarray
    A: np.ndarray
    lipschitz: float  # sup-norm Lipschitz constant of the block in its input slots

    @property
    def width(self) -> int:
        return self.W.shape[0]


def check_alphabet(alphabet) -> np.ndarray:
    """At least two distinct, evenly spaced, finite token values, sorted."""
    try:
        a = np.sort(np.asarray(alphabet, dtype=np.float64).ravel())
    except (TypeError, ValueError):
        raise ValueError(f"alphabet must be a sequence of numbers, got {alphabet!r}") from None
    if a.size < 2 or not np.all(np.isfinite(a)) or np.any(np.diff(a) <= 0):
        raise ValueError(f"alphabet must hold at least two distinct finite values, got {alphabet!r}")
    if not np.allclose(np.diff(a), a[1] - a[0], rtol=1e-12, atol=0):
        raise ValueError(f"alphabet must be evenly spaced (the lookup FFNs code the grid linearly), got {alphabet!r}")
    return a


def grid_points(alphabet: np.ndarray, k: int) -> np.ndarray:
    """Every point of alphabet^k, in the order of its code: (V^k, k)."""
    return np.array([p[::-1] for p in itertools.product(alphabet, repeat=k)], dtype=np.float64)


def lookup_ffn(slots: Sequence[int], alphabet: np.ndarray, values: np.ndarray, d_model: int,
               out: Sequence[int]) -> Lookup:
    """A ReLU FFN exact on the grid alphabet^k of the residual ``slots``: values (V^k, len(out)).

    The code c(z) = Σ_j (z_j - a_0)/Δ · V^j numbers the grid points 0..V^k - 1 in
    ``grid_points`` order; F(c) = f_0 ReLU(1) + Σ_{n>=1} (σ_n - σ_{n-1}) ReLU(c - (n - 1)),
    σ_n = f_n - f_{n-1} (σ_0 = 0), is the piecewise-linear interpolant through them. The
    constant ReLU(1) reads slot 1. Width V^k; Lipschitz max|σ| · Σ_j V^j / Δ.
    """
    V, k = alphabet.size, len(slots)
    step = alphabet[1] - alphabet[0]
    weights = V ** np.arange(k) / step  # code = weights · (z - a_0)
    values = np.asarray(values, dtype=np.float64).reshape(V ** k, len(out))
    N = V ** k
    W = np.zeros((N, d_model))
    b = np.zeros(N)
    W[0, ONE_SLOT] = 1.0  # ReLU(1) = 1
    for n in range(1, N):
        W[n, list(slots)] = weights
        b[n] = -weights.sum() * alphabet[0] - (n - 1)  # ReLU(c(z) - (n - 1))
    slopes = np.vstack([np.zeros((1, len(out))), np.diff(values, axis=0)])  # σ_0..σ_{N-1}
    A_units = np.vstack([values[:1], np.diff(slopes, axis=0)[: N - 1]]) if N > 1 else values[:1]
    A = np.zeros((max(out) + 1, N))
    A[list(out)] = A_units.T
    lip = float(np.abs(slopes).max() * weights.sum())
    return Lookup(W, b, A, lip)


def random_feature_ffn(slots: Sequence[int], alphabet: np.ndarray, values: np.ndarray, d_model: int,
                       out: int, width: int, seed: int) -> Lookup:
    """Width-m random ReLU features on ``slots`` with least-squares output weights.

    A Barron-style approximation of the lag function (the width the theorems' conditions
    are about): hidden weights b_k ~ N(0, I) and a kink through a uniform random point
    p_k of the grid's box (bias -b_k·p_k), seeded; the output weights fit the lag values
    on the grid in least squares. Exact on the grid, in general, only from width about
    the grid size on.
    """
    width = check_int("lag_ffn_width", width, minimum=1)
    k = len(slots)
    rng = np.random.default_rng(seed)
    W = np.zeros((width, d_model))
    W[:, list(slots)] = rng.standard_normal((width, k))
    kinks = rng.uniform(alphabet[0], alphabet[-1], (width, k))
    b = -np.sum(W[:, list(slots)] * kinks, axis=1)
    Z = grid_points(alphabet, k)
    features = np.maximum(Z @ W[:, list(slots)].T + b, 0.0)  # (N, m)
    a, *_ = np.linalg.lstsq(features, np.asarray(values, dtype=np.float64).ravel(), rcond=None)
    A = np.zeros((out + 1, width))
    A[out] = a
    lip = float(np.sum(np.abs(a) * np.abs(W[:, list(slots)]).sum(1)))
    return Lookup(W, b, A, lip)
