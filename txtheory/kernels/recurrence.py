"""Why a delta at lag T needs T + 1 lin heads: H decaying exponentials obey a linear
recurrence of order H, which certifies a lower bound on the error of every kernel they
make.

Part of ``txtheory.kernels`` (``book/kernels.md``, "Free rates and an exact limit").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import mpmath
import numpy as np

from txtheory._checks import check_int
from txtheory.kernels.kernel import KernelFit
from txtheory.kernels.shapes import Delta


def exact_delta_possible(T: int, H: int, S: int | None = None) -> bool:
    """Can H exponentials with distinct rates > 0 equal 1{s = T} exactly on lags 0..S?

    S defaults to T. a_s = sum_h alpha_h x_h^s (x_h = e^{-beta_h}) obeys the recurrence
    sum_j c_j a_{s+j} = 0 of order H, c the coefficients of prod_h (z - x_h). If H <= T,
    the H zeros at lags T-H..T-1 force a_T = 0: impossible (for any complex rates). With
    real rates, a_s has at most H - 1 real zeros, and 1{s=T} on 0..S has S of them, so
    H >= S + 1 is needed; H = S + 1 suffices (an invertible Vandermonde system). On all
    of N no finite H works: the zeros after T never end.
    """
    T = check_int("T", T, minimum=0)
    H = check_int("H", H, minimum=1)
    S = T if S is None else check_int("S", S, minimum=T)
    return H >= S + 1


@dataclass(frozen=True)
class PrefixDelta:
    """Best fit of 1{s=T} on lags 0..T by given rates, with the recurrence certificate."""

    fit: KernelFit
    residual: float  # min_alpha sqrt(sum_{s=0}^{T} (a_s - 1{s=T})^2), exact to dps digits
    lower_bound: float  # 1/||c||_2 from the recurrence when H <= T, else 0


def prefix_delta_fit(T: int, rates: Sequence[float], dps: int = 50) -> PrefixDelta:
    """Fit 1{s=T} on lags 0..T by sum_h alpha_h e^{-beta_h s} in mpmath.

    When H <= T the recurrence gives, for every alpha, sum_j c_j e_{T-H+j} = -1 with
    e = a - delta and c monic, so ||e||_2 >= 1/||c||_2 > 0 (Cauchy-Schwarz). When
    H >= T + 1 the residual is zero up to rounding.
    """
    T = check_int("T", T, minimum=0)
    dps = check_int("dps", dps, minimum=15)
    rates = [float(r) for r in np.asarray(rates, dtype=np.float64).ravel()]
    if not rates or any(not (r > 0 and math.isfinite(r)) for r in rates):
        raise ValueError(f"rates must be a non-empty sequence of finite numbers > 0, got {rates}")
    if len(set(rates)) != len(rates):
        raise ValueError("rates must be distinct")
    H = len(rates)
    with mpmath.workdps(dps + 10 * (T + H)):
        xs = [mpmath.exp(-mpmath.mpf(r)) for r in rates]
        A = mpmath.matrix([[x**s for x in xs] for s in range(T + 1)])
        y = mpmath.matrix([1 if s == T else 0 for s in range(T + 1)])
        if H <= T + 1:
            alpha, _ = mpmath.qr_solve(A, y)
        else:  # more heads than lags: the minimum-norm exact solution
            alpha = A.T * mpmath.lu_solve(A * A.T, y)
        res = mpmath.norm(A * alpha - y)
        bound = mpmath.mpf(0)
        if H <= T:
            c = [mpmath.mpf(1)]  # prod_h (z - x_h), lowest degree first
            for x in xs:
                c = [(-x * c[0])] + [c[i - 1] - x * c[i] for i in range(1, len(c))] + [c[-1]]
            bound = 1 / mpmath.sqrt(mpmath.fsum(ci**2 for ci in c))
        fit = KernelFit("lin", tuple(mpmath.mpf(r) for r in rates), tuple(+a for a in alpha),
                        target=Delta(T), window=T, dps=mpmath.mp.dps, method="prefix-delta")
    return PrefixDelta(fit, float(res), float(bound))

