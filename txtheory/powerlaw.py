"""A power law s^{-p} as a fixed quadrature of exponentials, with a proved error budget:
what lets softmax log-RPE attention run as a scan (``attention.MultiHeadAttention``).

Explained in ``book/framework.md``, section "Log-RPE as a quadrature of exponentials".

The rule. For p > 0 and s > 0, with u = e^v,

    s^{-p} = (1/Γ(p)) ∫_{-∞}^{∞} f_s(v) dv,   f_s(v) = exp(p v - s e^v).

The trapezoidal rule on the nodes v_k = v_0 + k h (k = 0..J-1), with everything below
v_0 folded into one constant node, gives

    s^{-p} ≈ Σ_k c_k(p) e^{-u_k s} + c_0(p),   u_k = e^{v_k},
    c_k(p) = h e^{p v_k} / Γ(p),   c_0(p) = (h/Γ(p)) Σ_{k<0} e^{p v_k}
           = (p h / (1 - e^{-p h})) e^{p (v_0 - h)} / Γ(p + 1).

The rates u_k do not depend on p, so every head of a layer shares them; the weights are
smooth in p, so gradients reach p. ``grid`` chooses (h, v_0, J) for a window.

The budget (proved; ``relative_error_bound`` evaluates it). For C <= s <= T, with
p <= C e^{v_max} (v_max = v_{J-1}), the relative error |approx / s^{-p} - 1| is at most
D + U + L:

* D, discretisation: f_s is analytic in the strip |Im v| < π/2, where
  |f_s(x + iy)| = exp(p x - s cos(y) e^x), whose integral over x is Γ(p) (s cos y)^{-p}.
  The trapezoidal rule's error on the whole line is then at most
  2 M / (e^{2π a / h} - 1) with M = Γ(p) (s cos a)^{-p}, for any 0 < a < π/2
  (Trefethen and Weideman, SIAM Review 2014, Theorem 5.1). Relative to s^{-p}:
  D = min_a 2 (cos a)^{-p} / (e^{2π a / h} - 1).
* U, the nodes above v_max left out: for v >= v_max, s e^v >= C e^{v_max} >= p, where f_s
  decreases, so each left-out node is at most the integral over the step before it, and
  U = Q(p, C e^{v_max}) (the regularised upper incomplete gamma function; it decreases
  in s, so s = C is the worst).
* L, the constant node in place of the nodes below v_0: 0 <= e^{p v} - f_s(v)
  = e^{p v} (1 - e^{-s e^v}) <= s e^{(p+1) v}, so the error is at most
  (h s / Γ(p)) Σ_{k<0} e^{(p+1) v_k}, relative to s^{-p}:
  L = T^{p+1} h e^{(p+1)(v_0 - h)} / ((1 - e^{-(p+1) h}) Γ(p)) (s = T is the worst).

For p > C e^{v_max} the rule misses the peak of f_s, but every term is positive, so the
approximation lies between 0 and the whole-line sum, at most s^{-p}(1 + D) + c_0: the
error is at most s^{-p}(1 + D) + c_0.

How it reaches the layer (``head_error_bound``). The scan computes some lags >= C with
the rule and every other lag exactly, and divides by the exact normaliser
Z_h(t) = Σ_{s=1}^{t} s^{-p}. The share of Z_h(t) on the lags C..t,
m(t) = Σ_{s=C}^{t} s^{-p} / Z_h(t), grows with t (each added term has share 1), so it
is at most m = Σ_{s=C}^{T} s^{-p} / Σ_{s=1}^{T} s^{-p}. Head h's mixed value
Σ_s s^{-p} x_{t-s} / Z_h(t) is therefore off by at most

    B(p) = (D + U + L) m                        (p <= C e^{v_max})
    B(p) = (1 + D) m + c_0 (T - C + 1) / Z(C)   (otherwise)

times max |x|, per channel (for p > C e^{v_max} each far lag errs by at most
s^{-p}(1 + D) + c_0, summed over at most T - C + 1 lags; Z_h(t) >= Z_h(C) once a far lag
exists); the layer's output errs by at most Σ_h ||W_O W_V^h||_∞ B(p_h) max |x|. A heavy
tail (small p) is where the rule has to be good; a light tail puts so little weight on
far lags that the rule's relative error hardly matters.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import gammaincc, gammaln

from ._checks import check_int, check_positive

# Error budgets per dtype: the scan must be as exact as that dtype's dense path. Float32
# rounds the dense layer's outputs at 1e-7 to 1e-6 of their size (the framework chapter and
# tests/test_powerlaw.py compare both paths' float32 errors), so the rule's part is held at
# 1e-7 of max|x| per head; float64's at 1e-11.
BUDGET = {torch.float32: 1e-7, torch.float64: 1e-11}
# The step h and the top node per dtype, u_max = e^{v_max} = TOP / C: chosen so that D and
# U, weighted by the far share, meet half the budget for every p (tests/test_powerlaw.py).
STEP = {torch.float32: 0.44, torch.float64: 0.31}
TOP = {torch.float32: 18.5, torch.float64: 27.5}
_A = np.linspace(0.005, math.pi / 2 - 1e-4, 600)  # strip half-widths a tried in D's minimum
_P_CHECK = np.geomspace(1e-4, 60.0, 240)  # rates on which grid() places v_0


@dataclass(frozen=True)
class Grid:
    """Nodes v_k = v0 + k h, k = 0..J-1, for lags C..T (``rates`` = e^{v_k})."""

    h: float
    v0: float
    J: int
    C: int
    T: int

    @property
    def v(self) -> np.ndarray:
        return self.v0 + self.h * np.arange(self.J)

    @property
    def v_max(self) -> float:
        return self.v0 + self.h * (self.J - 1)

    @property
    def rates(self) -> np.ndarray:
        return np.exp(self.v)


def discretisation_bound(p: np.ndarray, h: float) -> np.ndarray:
    """D(p) = min over 0 < a < π/2 of 2 (cos a)^{-p} / (e^{2πa/h} - 1), for each p."""
    p = np.asarray(p, dtype=np.float64)
    log_terms = (math.log(2.0) - p[..., None] * np.log(np.cos(_A))
                 - np.log(np.expm1(2 * math.pi * _A / h)))
    return np.exp(log_terms.min(-1))


def far_share(p: np.ndarray, C: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """(m, Z(C)) for each p: m = Σ_{s=C}^{T} s^{-p} / Σ_{s=1}^{T} s^{-p}, the largest share
    of a head's weight on the lags the rule handles, and Z(C) = Σ_{s=1}^{C} s^{-p}."""
    s = np.arange(1, T + 1, dtype=np.float64)
    k = np.exp(-np.multiply.outer(np.asarray(p, dtype=np.float64), np.log(s)))  # (..., T)
    return k[..., C - 1:].sum(-1) / k.sum(-1), k[..., :C].sum(-1)


def constant_weight(p: np.ndarray, grid: Grid) -> np.ndarray:
    """c_0(p) in float64 (see the module docstring)."""
    p = np.asarray(p, dtype=np.float64)
    x = p * grid.h
    ratio = np.where(x > 0, x / -np.expm1(-np.where(x > 0, x, 1.0)), 1.0)
    return ratio * np.exp(p * (grid.v0 - grid.h) - gammaln(p + 1))


def relative_error_bound(p: np.ndarray, grid: Grid) -> np.ndarray:
    """D + U + L: the rule's relative error on the lags C..T, for p <= C e^{v_max}."""
    p = np.asarray(p, dtype=np.float64)
    D = discretisation_bound(p, grid.h)
    U = gammaincc(p, grid.C * math.exp(grid.v_max))
    log_L = ((p + 1) * math.log(grid.T) + math.log(grid.h) + (p + 1) * (grid.v0 - grid.h)
             - gammaln(p) - np.log(-np.expm1(-(p + 1) * grid.h)))
    return D + U + np.exp(log_L)


def head_error_bound(p: np.ndarray, grid: Grid, share: tuple | None = None) -> np.ndarray:
    """B(p): the largest error of a softmax head's mixed value per unit of max|x|
    (docstring). ``share``: ``far_share(p, grid.C, grid.T)`` if already computed."""
    p = np.asarray(p, dtype=np.float64)
    m, Z_C = far_share(p, grid.C, grid.T) if share is None else share
    inside = p <= grid.C * math.exp(grid.v_max)
    with np.errstate(over="ignore", invalid="ignore"):
        near_peak = relative_error_bound(np.where(inside, p, 1.0), grid) * m
    beyond = ((1 + discretisation_bound(p, grid.h)) * m
              + constant_weight(p, grid) * (grid.T - grid.C + 1) / Z_C)
    return np.where(inside, near_peak, beyond)


@functools.lru_cache(maxsize=64)
def grid(C: int, T: int, dtype: torch.dtype = torch.float32) -> Grid:
    """The nodes for lags C..T at ``dtype``'s budget: h and v_max fixed per dtype, J the
    fewest nodes whose B(p) stays under half the budget at 240 rates in [1e-4, 60]. This
    makes the budget likely for a layer's rates, not certain: ``log_scan_plan`` evaluates
    B at the actual rates before each call."""
    C = check_int("C", C, minimum=1)
    T = check_int("T", T, minimum=C)
    if dtype not in BUDGET:
        raise ValueError(f"dtype must be one of {list(BUDGET)}, got {dtype}")
    h, v_max, budget = STEP[dtype], math.log(TOP[dtype] / C), BUDGET[dtype]
    share = far_share(_P_CHECK, C, T)

    def fits(J: int) -> bool:
        g = Grid(h, v_max - h * (J - 1), J, C, T)
        with np.errstate(over="ignore"):
            return bool(np.all(head_error_bound(_P_CHECK, g, share) <= budget / 2))

    lo, hi = 1, 2  # the fewest nodes that fit, by doubling and bisection (fits is monotone in J)
    while not fits(hi):
        lo, hi = hi, 2 * hi
        if hi > 1024:
            raise ValueError(f"no grid meets the {dtype} budget for lags {C}..{T}")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return Grid(h, v_max - h * (hi - 1), hi, C, T)


def weights(p: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(J + 1, H): row 0 the constant node's c_0(p_h), rows 1.. the c_k(p_h), in p's dtype,
    differentiable in p. Written with 1/Γ(p) = p / Γ(p + 1), so p -> 0 is finite (the rule
    then gives c_0 = 1, c_k = 0: the constant s^0)."""
    check_positive("h", grid.h)
    v = torch.as_tensor(grid.v, dtype=p.dtype, device=p.device)  # (J,)
    log_norm = -torch.lgamma(p + 1)  # (H,)  log(p / Γ(p)) = log(1/Γ(p)) + log p
    nodes = grid.h * p[None, :] * torch.exp(p[None, :] * v[:, None] + log_norm[None, :])  # (J, H)
    x = p * grid.h
    # x / (1 - e^{-x}), with its series 1 + x/2 + x²/12 near 0 (error O(x⁴) < 1e-17 below
    # 1e-4), so that value and derivative are right at p = 0 too
    safe = torch.where(x > 1e-4, x, torch.ones_like(x))
    ratio = torch.where(x > 1e-4, safe / -torch.expm1(-safe), 1 + x / 2 + x * x / 12)
    constant = ratio * torch.exp(p * (grid.v0 - grid.h) + log_norm)  # (H,)
    return torch.cat([constant[None, :], nodes], dim=0)


def rule(p: float, s: np.ndarray, grid: Grid) -> np.ndarray:
    """The quadrature's value at lags ``s``, for one rate p, in float64: what the scan uses
    in place of s^{-p} on its far lags (the framework chapter and the tests check it)."""
    w = weights(torch.tensor([float(p)], dtype=torch.float64), grid)[:, 0].numpy()  # (J + 1,)
    rates = np.concatenate([[0.0], grid.rates])
    return np.exp(-np.outer(np.asarray(s, dtype=np.float64), rates)) @ w
