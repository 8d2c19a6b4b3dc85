"""The exact l1 error of a head group's kernel against a target kernel: the lags up to a
cutoff summed exactly, the tail beyond it summed in closed form or bounded, never dropped.

Part of ``txtheory.kernels`` (``book/kernels.md``, "Where we differ from the paper").
"""
from __future__ import annotations

import math
from typing import Sequence

import mpmath
import numpy as np

from txtheory._checks import check_int
from txtheory.kernels.kernel import KernelFit, L1Error, _eval_dps, _values_f64
from txtheory.kernels.shapes import ExpDecay, PowerDecay, Target, _check_target, _lag_start

_S_MAX_FLOAT = 1_000_000  # longest automatic head sum in float64 ...
_S_MAX_MP = 2_000  # ... and in mpmath, which is ~1000x slower per term


def _grid_index(fit: KernelFit) -> list[int]:
    """j_k with rate_k = offset + step * j_k (the powers of x in the grid polynomial)."""
    off, step = (mpmath.mpf(g) for g in fit.grid)
    out = []
    for r in fit.rates:
        j = (mpmath.mpf(r) - off) / step
        if abs(j - mpmath.nint(j)) > mpmath.mpf(10) ** (-10) or mpmath.nint(j) < 0:
            raise ValueError(f"rate {r} is not on the grid offset + step*j of {fit.grid}")
        out.append(int(mpmath.nint(j)))
    return out



def _hurwitz_many(rates: list, a: int) -> list:
    """[zeta(b, a) = sum_{n>=a} n^-b for b in rates], for a >= 2 dps + 10.

    Euler-Maclaurin at a: integral + half the first term + Bernoulli corrections. The
    k-th correction shrinks like ((b + 2k) / (2 pi a))^2, and for x^-b the remainder is
    below the first omitted term. One log serves every rate (mpmath's own Hurwitz zeta
    recomputes it, and the sums over many rates were this module's bottleneck).
    """
    eps = mpmath.mpf(10) ** (-mpmath.mp.dps - 5)
    la, inv_a2 = mpmath.log(a), mpmath.mpf(1) / a**2
    out = []
    for b in rates:
        first = mpmath.exp(-b * la)  # a^-b
        total = first * a / (b - 1) + first / 2
        rising, power = b, first / a  # (b)_{2k-1} and a^{-b-2k+1}
        for k in range(1, 4 * mpmath.mp.dps):
            term = mpmath.bernoulli(2 * k) / mpmath.factorial(2 * k) * rising * power
            total += term
            if abs(term) <= eps * abs(total):
                break
            rising *= (b + 2 * k - 1) * (b + 2 * k)
            power *= inv_a2
        out.append(total)
    return out


def _grid_tail(fit: KernelFit, S: int) -> mpmath.mpf | None:
    """sum_{s>S} |phi(s)| exactly, for a fit whose rates lie on a grid.

    phi(s) = y^offset * Q(x) with y = e^-s (lin) or 1/s (log), x = y^step and Q a
    polynomial. Between consecutive real roots of Q the sign of phi is constant, so the
    tail splits into finitely many runs of lags, each summed in closed form (geometric
    sums, or Hurwitz zeta differences). Splitting at a spurious root is harmless.
    Returns None if the root finder does not converge.
    """
    js = _grid_index(fit)
    step = mpmath.mpf(fit.grid[1])
    rates = [mpmath.mpf(r) for r in fit.rates]
    coeffs = [mpmath.mpf(a) for a in fit.coeffs]
    total = mpmath.mpf(0)
    if fit.kind == "log":
        # lags below 2 dps + 10 directly, so that Euler-Maclaurin converges fast beyond
        first = 2 * mpmath.mp.dps + 10
        total += mpmath.fsum(abs(fit.value_mp(s)) for s in range(S + 1, first))
        S = max(S, first - 1)
    poly = [mpmath.mpf(0)] * (max(js) + 1)
    for j, a in zip(js, coeffs):
        poly[j] += a
    while len(poly) > 1 and poly[-1] == 0:
        poly.pop()
    cuts = []
    if len(poly) > 1:
        roots = None
        for extra in (mpmath.mp.prec, 3 * mpmath.mp.prec):
            try:
                roots = mpmath.polyroots(poly[::-1], maxsteps=400, extraprec=extra)
                break
            except mpmath.libmp.NoConvergence:
                pass
        if roots is None:
            return None  # the caller falls back to the analytic bound
        for z in roots:
            x = mpmath.re(z)
            if abs(mpmath.im(z)) <= mpmath.mpf(10) ** (-8) * (1 + abs(z)) and 0 < x < 1:
                # the lag where x(s) = x: x = e^{-step s} (lin) or s^{-step} (log)
                s_root = -mpmath.log(x) / step if fit.kind == "lin" else x ** (-1 / step)
                if s_root > S:
                    cuts.append(int(mpmath.floor(s_root)))
    edges = [S] + sorted(set(cuts))

    def from_lag(a):  # sum_{s>=a} y_s^beta for every rate
        if fit.kind == "log":
            return _hurwitz_many(rates, a)
        return [mpmath.exp(-r * a) / -mpmath.expm1(-r) for r in rates]

    upper = [from_lag(e + 1) for e in edges]
    for i in range(len(edges)):
        nxt = upper[i + 1] if i + 1 < len(edges) else [0] * len(rates)
        total += abs(mpmath.fsum(a * (u - v) for a, u, v in zip(coeffs, upper[i], nxt)))
    return total


def _crude_tail(kind: str, rates: Sequence, coeffs: Sequence, S: int) -> float:
    """sum_h |alpha_h| sum_{s>S} y_s^beta_h >= sum_{s>S} |sum_h alpha_h y_s^beta_h|, with
    each head's sum in closed form: a geometric series (lin), or the Hurwitz zeta
    zeta(beta, S+1), which is below the integral bound S^(1-beta)/(beta-1) (log).
    Exact when all alpha_h share a sign."""
    total = 0.0
    for a, b in zip(coeffs, rates):
        a, b = float(a), float(b)
        if a == 0.0:
            continue
        if kind == "lin":
            total += abs(a) * math.exp(-b * (S + 1)) / -math.expm1(-b)
        elif b <= 1:  # mpmath's zeta would return the analytic continuation, not inf
            return math.inf
        else:
            total += abs(a) * float(mpmath.zeta(mpmath.mpf(b), S + 1))
    return total


def _one_sign(coeffs: Sequence) -> bool:
    return len({c > 0 for c in coeffs if c != 0}) <= 1


def _merged_terms(fit: KernelFit, target: Target) -> dict | None:
    """rho - phi as {rate: coefficient} when rho is itself a term of the fit's family
    (ExpDecay for lin, PowerDecay for log); None otherwise."""
    same = isinstance(target, ExpDecay) if fit.kind == "lin" else isinstance(target, PowerDecay)
    if not same:
        return None
    terms: dict = {}  # keyed by float rate, as `_diverges` matches them
    for a, b in zip(fit.coeffs, fit.rates):
        terms[float(b)] = terms.get(float(b), 0) - a
    terms[float(target.beta)] = terms.get(float(target.beta), 0) + 1
    return {r: c for r, c in terms.items() if c != 0}


def _diverges(fit: KernelFit, target: Target) -> bool:
    """True when sum_s |rho(s) - phi(s)| is infinite (the slowest power does not cancel)."""
    terms: dict[float, float] = {}
    if fit.kind == "log":
        for a, b in zip(fit.coeffs_f64, fit.rates_f64):
            terms[b] = terms.get(b, 0.0) + a
    if isinstance(target, PowerDecay) and target.beta <= 1:
        terms[target.beta] = terms.get(target.beta, 0.0) - 1.0
    live = [b for b, a in terms.items() if a != 0.0]
    return bool(live) and min(live) <= 1.0


def _auto_S(fit: KernelFit, target: Target, s0: int) -> int:
    """A cutoff past the target's own default, long enough that a lin fit's tail is tiny."""
    S = max(s0, target.default_S(), fit.window or 0)
    if fit.kind == "lin" and fit.grid is None:
        # smallest S with |alpha_h| e^{-beta_h (S+1)} / (1 - e^{-beta_h}) <= 1e-13 per head
        for a, b in zip(fit.coeffs_f64, fit.rates_f64):
            if a != 0.0:
                need = (math.log(abs(a) * 1e13 / -math.expm1(-b))) / b
                S = max(S, math.ceil(need))
    big = max(abs(float(c)) for c in fit.coeffs)
    cap = _S_MAX_MP if fit.dps is not None or big >= 1e6 else _S_MAX_FLOAT
    return min(S, max(cap, s0, getattr(target, "T", 0), target.default_S()))


def l1_error(fit: KernelFit, target: Target, S: int | None = None, start: int | None = None) -> L1Error:
    """l1 error sum_{s >= start} |rho(s) - phi(s)| of a head group's kernel.

    The lags start..S are summed exactly (in mpmath for high-precision fits and for
    coefficients >= 1e6). The tail s > S is never dropped:
    - exact for grid fits against a target that vanishes beyond S (a delta with T <= S):
      the tail is sum_{s>S} |phi|, summed run by run between sign changes;
    - exact when rho - phi, beyond S, is a one-signed sum of the fit's own family;
    - otherwise bounded by sum_{s>S} |phi| + sum_{s>S} |rho| (each term's sum in closed
      form: geometric for exponentials, Hurwitz zeta for powers, which is below the
      integral bound S^(1-beta)/(beta-1)).
    The tail is inf when the error is infinite (see `L1Error`). start defaults to 0
    (lin) or 1 (log); S defaults to the target's natural cutoff (T for a delta),
    extended for float lin fits until their tail bound is ~1e-13.
    """
    _check_target(target)
    s0 = _lag_start(fit.kind, target, start)
    S = _auto_S(fit, target, s0) if S is None else check_int("S", S, minimum=s0)
    big = max(abs(float(c)) for c in fit.coeffs)
    if fit.dps is None and big < 1e6:  # float64 loses ~log10(big) of its 16 digits
        window = 0.0
        for lo in range(s0, S + 1, 100_000):  # chunks keep the (lags, heads) matrix small
            s = np.arange(lo, min(S, lo + 99_999) + 1)
            window += float(np.abs(target.values(s) - _values_f64(fit, s)).sum())
    else:
        # exact for the kernel the (possibly float) coefficients define
        with mpmath.workdps(_eval_dps(fit)):
            window = float(mpmath.fsum(abs(target.value_mp(s) - fit.value_mp(s)) for s in range(s0, S + 1)))
    if _diverges(fit, target):
        return L1Error(window, math.inf, True, S, s0)
    fit_tail, fit_exact = None, False
    if fit.grid is not None:
        with mpmath.workdps(_eval_dps(fit)):
            fit_tail = _grid_tail(fit, S)
        fit_exact = fit_tail is not None
    if fit_tail is None:
        fit_tail = _crude_tail(fit.kind, fit.rates, fit.coeffs, S)
        fit_exact = _one_sign(fit.coeffs)  # one sign: sum |phi| = sum of |terms|
    fit_tail = float(fit_tail)
    merged = _merged_terms(fit, target)
    if merged is not None:
        # beyond S the error rho - phi is itself a sum of the family's terms
        if _one_sign(merged.values()):
            return L1Error(window, _crude_tail(fit.kind, merged.keys(), merged.values(), S), True, S, s0)
        bound = _crude_tail(fit.kind, merged.keys(), merged.values(), S)
        return L1Error(window, min(bound, fit_tail + target.tail(S)), False, S, s0)
    target_tail = target.tail(S)
    if math.isinf(target_tail):
        return L1Error(window, math.inf, True, S, s0)
    exact = target_tail == 0.0 and fit_exact
    return L1Error(window, fit_tail + target_tail, exact, S, s0)

