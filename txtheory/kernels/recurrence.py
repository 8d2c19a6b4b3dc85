"""Why a delta at lag T needs T + 1 lin heads: H decaying exponentials obey a linear
recurrence of order H, which certifies a lower bound on the error of every kernel they
make.

Part of ``txtheory.kernels`` (``book/kernels.md``, "Free rates and an exact limit").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import mpmath
import numpy as np

from txtheory import kinds
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


# -----------------------------------------------------------------------------
# floors that hold for every choice of coefficients (book/kernels.md, "An exact limit")


def characteristic_coefficients(rates: Sequence[Any]) -> list:
    """c_0, ..., c_H (lowest degree first) of P(z) = prod_h (z - x_h), x_h = e^{-beta_h},
    in mpmath at the current precision. Every lin kernel a_s = sum_h alpha_h x_h^s obeys
    sum_j c_j a_{s+j} = 0 for all s >= 0. A rate of +inf is the residual path (x = 0:
    the term 0^s = 1{s = 0})."""
    xs = [mpmath.mpf(0) if mpmath.isinf(mpmath.mpf(r)) else mpmath.exp(-mpmath.mpf(r)) for r in rates]
    c = [mpmath.mpf(1)]
    for x in xs:  # multiply by (z - x)
        c = [-x * c[0]] + [c[i - 1] - x * c[i] for i in range(1, len(c))] + [c[-1]]
    return c


@dataclass(frozen=True)
class L1Floor:
    """A lower bound on sum_{s in lags} |a_s - 1{s = T}| that holds for every kernel a of
    H heads of the kind, with any rates and coefficients (``proof`` says why; a bound of 0
    means none is proved for this (T, H, kind))."""

    bound: float
    lags: tuple[int, ...]
    proof: str


def l1_floor(T: int, H: int, kind: str = "lin") -> L1Floor:
    """The l1 floor of a delta at lag T for H heads (book/kernels.md, ``prop-l1-floor``).

    lin, H <= T: sum over W = [T-H, T+H] of |a - delta_T| >= 1, for all rates (complex too)
    and all coefficients: the recurrence at s in [T-H, T] reads sum_j c_j e_{s+j} =
    -c_{T-s}, and Young's inequality gives ||c||_1 <= ||c||_1 ||e||_{l1(W)}. The zero kernel
    attains it. A residual path counts as one more head (x = 0).
    log, H = 1 < T: |alpha| + |1 - alpha T^{-beta}| >= 1 on the lags {1, T} (for beta >= 0;
    for any sign of beta the dilation below with q = T covers the lags 1, T, T^2).
    log, q^H divides T for an integer q >= 2: s^{-beta} is an eigenfunction of s -> q s, so
    along m, q m, ..., q^{2H} m (m = T / q^H) the kernel is a lin kernel in the exponent,
    and the lin bound applies on those 2H + 1 lags. Otherwise no bound is proved (0).
    """
    T = check_int("T", T, minimum=1)
    H = check_int("H", H, minimum=1)
    kinds.check_kind(kind)
    if kind == "lin":
        if H <= T:
            return L1Floor(1.0, tuple(range(T - H, T + H + 1)), "recurrence of order H and Young's inequality")
        return L1Floor(0.0, (), "H > T: T + 1 heads can match the delta (see sharp_delta)")
    if H == 1 and T >= 2:
        return L1Floor(1.0, (1, T), "one power law: |alpha| + |1 - alpha T^-beta| >= 1")
    for q in range(2, T + 1):
        if q**H > T:
            break
        if T % q**H == 0:
            m = T // q**H
            return L1Floor(1.0, tuple(m * q**k for k in range(2 * H + 1)),
                           f"dilation by q = {q}: the lin bound along m q^k, m = {m}")
    return L1Floor(0.0, (), "not proved for this (T, H); measured in book/kernels.md")


@dataclass(frozen=True)
class HeadThreshold:
    """How many heads a delta at lag T takes, for one RPE kind with or without the residual
    path (book/kernels.md, "One table of thresholds"; every chapter cites these numbers).

    ``any_accuracy``: the fewest heads that reach every ε > 0 in exact arithmetic
    (``sharp_delta``; the residual can supply lag 0's value, which log never sees).
    ``l1_up_to``: for H <= this, the l1 error on W = [T-H, T+H] is at least 1 (the zero
    kernel's), for every rate and coefficient; ``l1_proved`` says for which H that is a
    theorem ("all": every H up to it; "some": H = 1 and q^H | T, the rest measured).
    ``l2_up_to``: for H <= this, a linear readout misses at least C(2H, H) / 4^H of the
    memory's variance (``prop-l2-floor``, lin only; None where no l2 floor is proved).
    """

    T: int
    kind: str
    residual: bool
    any_accuracy: int
    l1_up_to: int
    l1_proved: str
    l2_up_to: int | None


def head_threshold(T: int, kind: str = "lin", residual: bool = False) -> HeadThreshold:
    """The head counts of a delta at lag T >= 1 (``HeadThreshold``).

    lin: the residual path is one more exponential (ξ = 0), so it lowers every count by
    one: any accuracy from T + 1 heads without it, T with it; the l1 floor up to H = T
    without, T - 1 with; the l2 floor of a linear readout up to H = T without (the proof
    of prop-l2-floor with P in place of z P), T - 1 with. log never sees lag 0, where the delta is 0, so the
    residual changes nothing: any accuracy from T heads; the floor, H <= T - 1, proved for
    H = 1 and where q^H divides T, measured elsewhere; no l2 floor proved.
    """
    T = check_int("T", T, minimum=1)
    kinds.check_kind(kind, allowed=("lin", "log"))
    if not isinstance(residual, bool):
        raise ValueError(f"residual must be True or False, got {residual!r}")
    if kind == "lin":
        return HeadThreshold(T, kind, residual, any_accuracy=T if residual else T + 1,
                             l1_up_to=T - 1 if residual else T, l1_proved="all",
                             l2_up_to=T - 1 if residual else T)
    return HeadThreshold(T, kind, residual, any_accuracy=T, l1_up_to=T - 1, l1_proved="some", l2_up_to=None)


@dataclass(frozen=True)
class L2Floor:
    """Lower bounds on ||a - delta_T||_{l2(W)}, W = [T-H, T+H], for H lin heads with given
    rates and every choice of coefficients, from the strongest to the weakest:

    ``optimum``: the exact minimum over the coefficients, sqrt(b^T (A A^T)^{-1} b), A the
    (H+1) x (2H+1) band of c and b = c reversed: it depends on the rates, not on T;
    ``young``: ||c||_2 / ||c||_1 (Young's inequality in l2), for any rates;
    ``universal``: sqrt(C(2H, H)) / 2^H, below ``young`` for every real rate > 0.
    With iid ±1 tokens, the squared l2 error is the mean squared error of a linear readout.
    """

    T: int
    H: int
    optimum: float
    young: float
    universal: float


def l2_floor(rates: Sequence[float], T: int, dps: int = 50) -> L2Floor:
    """The l2 floors of a delta at lag T for lin heads with these rates (needs H <= T)."""
    T = check_int("T", T, minimum=1)
    rates = _check_rates(rates)
    H = len(rates)
    if H > T:
        raise ValueError(f"the floors need H <= T (the window W = [T-H, T+H] starts at lag T-H >= 0), "
                         f"got H={H}, T={T}")
    with mpmath.workdps(dps + 10 * H):
        c = characteristic_coefficients(rates)
        A = mpmath.matrix(H + 1, 2 * H + 1)
        for i in range(H + 1):
            for j in range(H + 1):
                A[i, i + j] = c[j]
        b = mpmath.matrix([c[H - i] for i in range(H + 1)])
        optimum = mpmath.sqrt((b.T * mpmath.lu_solve(A * A.T, b))[0])
        young = mpmath.sqrt(mpmath.fsum(x**2 for x in c)) / mpmath.fsum(abs(x) for x in c)
    return L2Floor(T, H, float(optimum), float(young), universal_l2_floor(H))


def universal_l2_floor(H: int) -> float:
    """sqrt(C(2H, H)) / 2^H: for real rates > 0, mean_theta prod_h |e^{i theta} - x_h|^2 /
    (1 + x_h)^2 >= mean_theta sin^{2H}(theta / 2) = C(2H, H) / 4^H, since each factor falls
    as x_h grows to 1. It is at least (pi (H + 1/2))^{-1/4}."""
    H = check_int("H", H, minimum=1)
    return math.sqrt(math.comb(2 * H, H) / 4**H)


def linear_readout_floor(lags: Sequence[int], H: int) -> float:
    """A lower bound on the mean squared error of any linear readout of H DP-free lin heads
    (real rates of either sign, softmax-normalised or not) plus the residual path, predicting
    sum_k x_{t - T_k} from iid ±1 tokens, at a position t >= max(lags) + H + 1:

        sum_{k, l} (-1)^{T_k - T_l} C(2H, H - |T_k - T_l|) / 4^H       (C = 0 beyond H)

    Lags 0 are free (the residual carries x_t); every other lag needs T_k >= H + 1. For
    one lag T this is C(2H, H) / 4^H. Proof in book/kernels.md (``prop-l2-floor``).
    """
    H = check_int("H", H, minimum=1)
    lags = tuple(check_int(f"lags[{i}]", T, minimum=0) for i, T in enumerate(lags))
    if not lags:
        raise ValueError("lags must hold at least one lag")
    memory = [T for T in lags if T > 0]
    short = [T for T in memory if T < H + 1]
    if short:
        raise ValueError(f"every non-zero lag must be >= H + 1 = {H + 1} for the floor, got {short}")
    total = 0
    for Tk in memory:
        for Tl in memory:
            d = abs(Tk - Tl)
            if d <= H:
                total += (-1) ** d * math.comb(2 * H, H - d)
    return total / 4**H


def _check_rates(rates) -> list[float]:
    rates = [float(r) for r in np.asarray(rates, dtype=np.float64).ravel()]
    if not rates or any(not (r > 0 and math.isfinite(r)) for r in rates):
        raise ValueError(f"rates must be a non-empty sequence of finite numbers > 0, got {rates}")
    return rates


def paper_constant_floor(n: int) -> tuple[float, int]:
    """A lower bound on Lemma F.1's C(n), and the lag T where it is attained.

    With m <= T terms the l1 error is >= 1 (``l1_floor``), so the lemma's
    C(n) e^{0.01 (n+1) T} / m^n >= 1 at m = T: C(n) >= T^n e^{-0.01 (n+1) T} for every T,
    largest near T = 100 n / (n + 1), where it is about (100 n / (e (n + 1)))^n.
    """
    n = check_int("n", n, minimum=1)
    best = max(range(1, 100 * n + 1), key=lambda T: n * math.log(T) - 0.01 * (n + 1) * T)
    return math.exp(n * math.log(best) - 0.01 * (n + 1) * best), best


# -----------------------------------------------------------------------------
# T + 1 heads are enough: the delta on all of N, in exact arithmetic


def sharp_delta(T: int, eps: float, kind: str = "lin", dps: int = 60) -> KernelFit:
    """Few heads whose kernel is within O(eps) of 1{s = T} in l1 on all lags, in exact arithmetic.

    lin, T + 1 heads: x_h = eps h (rates beta_h = -log(eps h)), h = 1..T+1, and coefficients
    that match the delta exactly on lags 0..T (a Vandermonde system). Beyond T,
    a_s = sum_h alpha_h x_h^s with |alpha_h| of order eps^-T, so a_{T+1} = O(eps) and the
    tail is a geometric O(eps).
    log, T heads: rates beta_h = B h with B = log(1/eps) / log(1 + 1/T), matching the
    delta on lags 1..T. Then a_s / a_T is about (T/s)^B beyond T, and (T/(T+1))^B = eps.
    Either way the coefficients are what make this useless in floating point: they grow
    like eps^-T (lin), or like T^(B T) (log).
    """
    T = check_int("T", T, minimum=1 if kind == "log" else 0)
    kinds.check_kind(kind)
    eps = float(eps)
    if not (0 < eps < 1 and (kind == "log" or (T + 1) * eps < 1)):
        raise ValueError(f"eps must lie in (0, 1), with (T + 1) eps < 1 for lin (every x_h = eps h < 1); got {eps}")
    with mpmath.workdps(dps + 20 * (T + 1)):
        if kind == "lin":
            rates = [-mpmath.log(mpmath.mpf(repr(eps)) * h) for h in range(1, T + 2)]
            lags = range(0, T + 1)
        else:
            B = mpmath.log(1 / mpmath.mpf(repr(eps))) / mpmath.log1p(mpmath.mpf(1) / T)
            rates = [B * h for h in range(1, T + 1)]
            lags = range(1, T + 1)
        u = [-kinds.phi(mpmath.mpf(s), kind) for s in lags]  # the head weighs lag s by e^{-beta u}
        A = mpmath.matrix([[mpmath.exp(-b * v) for b in rates] for v in u])
        y = mpmath.matrix([1 if s == T else 0 for s in lags])
        alpha = mpmath.lu_solve(A, y)
        return KernelFit(kind, tuple(rates), tuple(+a for a in alpha), target=Delta(T),
                         dps=mpmath.mp.dps, method="sharp-delta")
