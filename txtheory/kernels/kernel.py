"""The kernel a head group realises, `KernelFit`, its evaluation at integer lags, and the
record of its l1 error, `L1Error`.

Part of ``txtheory.kernels`` (``book/kernels.md``, "Why kernels"). A group of H DP-free
heads with rates beta_h and value weights alpha_h realises
κ(s) = sum_h alpha_h exp(beta_h kinds.phi(s, kind)): e^{-beta s} (lin) or s^{-beta} (log).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from txtheory import kinds
from txtheory.kernels.shapes import Target


@dataclass(frozen=True)
class L1Error:
    """l1 error split at a cutoff S: sum_{s=start}^{S} |rho - κ| plus the rest.

    `window` is exact. `tail` is sum_{s>S} |rho - κ| itself when `tail_exact`, else an
    analytic upper bound on it. `total` = window + tail is therefore the l1 error or an
    upper bound on it. `total` is inf when the error is truly infinite (a log-kind term
    with rate <= 1, or a target that is not in l1); on a finite window read `window`.
    """

    window: float
    tail: float
    tail_exact: bool
    S: int
    start: int

    @property
    def total(self) -> float:
        return self.window + self.tail


@dataclass(frozen=True)
class KernelFit:
    """A head group's kernel: rates beta_h > 0 and coefficients alpha_h.

    kind "lin" is sum_h alpha_h exp(-beta_h s) on s >= 0 (lin-RPE heads); kind "log" is
    sum_h alpha_h s^(-beta_h) on s >= 1 (log-RPE heads). High-precision fits (dps set)
    keep mpmath numbers, since their coefficients reach 1e15-1e30 and cancel; float fits
    keep Python floats. `grid = (offset, step)` says that rate k is offset + step * j_k
    for integers j_k, which lets `l1_error` sum the whole tail exactly.
    """

    kind: str
    rates: tuple
    coeffs: tuple
    target: Target | None = None
    l1: L1Error | None = None
    l2_residual: float | None = None  # sqrt of the least-squares objective it minimised
    window: int | None = None  # last lag of the least-squares range (None: all lags)
    dps: int | None = None
    grid: tuple | None = None
    method: str = ""

    def __post_init__(self):
        kinds.check_kind(self.kind)
        if len(self.rates) != len(self.coeffs) or not self.rates:
            raise ValueError("rates and coeffs must be non-empty and of equal length")
        for r in self.rates:
            if not (r > 0 and mpmath.isfinite(r)):
                raise ValueError(f"rates must be finite and > 0 (a head's RPE rate p > 0), got {r}")
        for c in self.coeffs:
            if not mpmath.isfinite(c):
                raise ValueError(f"coeffs must be finite, got {c}")

    @property
    def l1_error(self) -> float:
        """The stored l1 error's total (exact or an upper bound; see `L1Error`)."""
        return math.nan if self.l1 is None else self.l1.total

    @property
    def rates_f64(self) -> np.ndarray:
        return np.array([float(r) for r in self.rates])

    @property
    def coeffs_f64(self) -> np.ndarray:
        return np.array([float(c) for c in self.coeffs])

    def value_mp(self, s: int) -> mpmath.mpf:
        """κ(s) in mpmath at the current precision."""
        ly = -kinds.phi(mpmath.mpf(s), self.kind)  # the head weighs lag s by e^{-beta ly}
        # mpf(b) is exact for a float: the kernel of exactly these numbers
        return mpmath.fsum(mpmath.mpf(a) * mpmath.exp(-mpmath.mpf(b) * ly) for a, b in zip(self.coeffs, self.rates))

    def __call__(self, s: Any) -> np.ndarray:
        """κ(s) as float64 at integer lags s; evaluated in mpmath for mp fits and for
        coefficients >= 1e6, whose cancellation float64 cannot resolve."""
        s = np.asarray(s, dtype=np.int64)
        if (s < kinds.FIRST_LAG[self.kind]).any():
            raise ValueError(f"lags s must be >= {kinds.FIRST_LAG[self.kind]} for kind {self.kind!r}")
        if self.dps is not None or max(abs(float(c)) for c in self.coeffs) >= 1e6:
            with mpmath.workdps(_eval_dps(self)):
                return np.array([float(self.value_mp(int(v))) for v in s.ravel()]).reshape(s.shape)
        return _values_f64(self, s)


def _values_f64(fit: KernelFit, s: np.ndarray) -> np.ndarray:
    x = -kinds.phi(s.astype(np.float64), fit.kind)  # (S,): s (lin) or log s (log)
    return np.exp(-np.multiply.outer(x, fit.rates_f64)) @ fit.coeffs_f64


def _eval_dps(fit: KernelFit) -> int:
    """Working digits that survive the cancellation between huge coefficients."""
    big = max(abs(mpmath.mpf(c)) for c in fit.coeffs)
    digits = int(mpmath.log10(big)) if big > 1 else 0
    return max(fit.dps or 15, digits + 30)



def _segment_sum(kind: str, rate: mpmath.mpf, a: int, b: int | None) -> mpmath.mpf:
    """sum_{s=a}^{b} of exp(-rate s) (lin) or s^-rate (log), b=None meaning infinity."""
    if kind == "lin":
        head = mpmath.exp(-rate * a)
        stop = 0 if b is None else mpmath.exp(-rate * (b + 1))
        return (head - stop) / -mpmath.expm1(-rate)
    stop = 0 if b is None else mpmath.zeta(rate, b + 1)
    return mpmath.zeta(rate, a) - stop

