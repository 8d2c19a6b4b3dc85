"""Memory kernels realised by groups of attention heads, and their exact l1 errors.

Explained in `book/kernels.md`, "Approximating memory kernels with attention heads".

A DP-free attention head with RPE rate p puts weight ∝ e^{-p s} on lag s >= 0 (lin-RPE)
or ∝ s^{-p} on lag s >= 1 (log-RPE). After the value matrix rescales each head, a group
of heads realises the kernel

    kind "lin":  phi(s) = sum_h alpha_h * exp(-beta_h * s),   s = 0, 1, 2, ...
    kind "log":  phi(s) = sum_h alpha_h * s**(-beta_h),       s = 1, 2, 3, ...

This module uses the RPE names "lin" and "log" for these two kernel kinds throughout.
It provides:

- targets: `Delta` (the memory kernel 1{s=T} of Theorem 3.1), `ExpDecay`, `PowerDecay`
  and `Tabulated` kernels (Theorem 5.1);
- `l1_error`: the l1 error on N (lin) or N+ (log), summed exactly up to a cutoff S, with
  the tail s > S computed exactly or bounded analytically; never silently truncated;
- `grid_fit` and `lemma_f1/f3/f4/f6`: the best kernel on the paper's own rate grids
  (Lemmas F.1-F.6), solved in high precision with mpmath;
- `fit_free`: a least-squares fit with free rates, i.e. what training could find;
- `exact_delta_possible` and `prefix_delta_fit`: H decaying exponentials satisfy a
  linear recurrence of order H, so an exact delta at lag T needs H >= T + 1 heads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import mpmath
import numpy as np

from txtheory._checks import check_choice, check_int, check_positive

KINDS = ("lin", "log")
_START = {"lin": 0, "log": 1}  # first lag a head group of this kind can attend to
_S_MAX_FLOAT = 1_000_000  # longest automatic head sum in float64 ...
_S_MAX_MP = 2_000  # ... and in mpmath, which is ~1000x slower per term


def _mpf(x: Any) -> mpmath.mpf:
    """Exact decimal reading of a float (0.01 means 1/100, not its binary neighbour)."""
    if isinstance(x, float):
        return mpmath.mpf(repr(x))
    return mpmath.mpf(x)


# -----------------------------------------------------------------------------
# targets


@dataclass(frozen=True)
class Delta:
    """The memory kernel rho(s) = 1{s = T} that extracts the token at lag T."""

    T: int

    def __post_init__(self):
        object.__setattr__(self, "T", check_int("T", self.T, minimum=0))

    start = 0

    def values(self, s: np.ndarray) -> np.ndarray:
        return (np.asarray(s) == self.T).astype(np.float64)

    def value_mp(self, s: int) -> mpmath.mpf:
        return mpmath.mpf(1) if s == self.T else mpmath.mpf(0)

    def tail(self, S: int) -> float:
        """sum_{s>S} |rho(s)|, exactly."""
        return 1.0 if self.T > S else 0.0

    def default_S(self) -> int:
        return self.T


@dataclass(frozen=True)
class ExpDecay:
    """rho(s) = exp(-beta s) on s >= 0: a light-tailed kernel (Theorem 5.1 A)."""

    beta: float

    def __post_init__(self):
        object.__setattr__(self, "beta", check_positive("beta", self.beta))

    start = 0

    def values(self, s: np.ndarray) -> np.ndarray:
        return np.exp(-self.beta * np.asarray(s, dtype=np.float64))

    def value_mp(self, s: int) -> mpmath.mpf:
        return mpmath.exp(-_mpf(self.beta) * s)

    def tail(self, S: int) -> float:
        b = self.beta
        return math.exp(-b * (S + 1)) / -math.expm1(-b)

    def default_S(self) -> int:
        # the target's own tail is then below 1e-15
        return max(1, math.ceil((35.0 - math.log(-math.expm1(-self.beta))) / self.beta))


@dataclass(frozen=True)
class PowerDecay:
    """rho(s) = s^(-beta) on s >= 1: a heavy-tailed kernel (Theorem 5.1 B).

    It is undefined at s = 0, so a lin-kind fit to it must say `start=1`. For beta <= 1
    it is not in l1: only errors on a finite window are finite.
    """

    beta: float

    def __post_init__(self):
        object.__setattr__(self, "beta", check_positive("beta", self.beta))

    start = 1

    def values(self, s: np.ndarray) -> np.ndarray:
        return np.asarray(s, dtype=np.float64) ** (-self.beta)

    def value_mp(self, s: int) -> mpmath.mpf:
        return mpmath.mpf(s) ** (-_mpf(self.beta))

    def tail(self, S: int) -> float:
        if self.beta <= 1:
            return math.inf
        return float(mpmath.zeta(_mpf(self.beta), S + 1))  # Hurwitz zeta: exact

    def default_S(self) -> int:
        return 1000


@dataclass(frozen=True)
class Tabulated:
    """rho(s) = values[s - start] on start <= s < start + len(values), zero elsewhere."""

    table: tuple
    start: int = 0

    def __post_init__(self):
        object.__setattr__(self, "start", check_int("start", self.start, minimum=0))
        table = tuple(float(v) for v in np.asarray(self.table, dtype=np.float64).ravel())
        if not table or not all(math.isfinite(v) for v in table):
            raise ValueError("table must be a non-empty sequence of finite numbers")
        object.__setattr__(self, "table", table)

    @property
    def end(self) -> int:
        return self.start + len(self.table) - 1

    def values(self, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s)
        inside = (s >= self.start) & (s <= self.end)
        out = np.zeros(s.shape)
        out[inside] = np.asarray(self.table)[s[inside] - self.start]
        return out

    def value_mp(self, s: int) -> mpmath.mpf:
        return _mpf(self.table[s - self.start]) if self.start <= s <= self.end else mpmath.mpf(0)

    def tail(self, S: int) -> float:
        return float(sum(abs(v) for v in self.table[max(0, S + 1 - self.start):]))

    def default_S(self) -> int:
        return self.end


Target = Delta | ExpDecay | PowerDecay | Tabulated


def _check_target(target: Any) -> Target:
    if not isinstance(target, (Delta, ExpDecay, PowerDecay, Tabulated)):
        raise ValueError(
            f"target must be a Delta, ExpDecay, PowerDecay or Tabulated kernel, got {target!r}"
        )
    return target


def _lag_start(kind: str, target: Target, start: int | None) -> int:
    """First lag of the error sum: the kind's own domain, unless the caller narrows it."""
    s0 = _START[kind] if start is None else check_int("start", start, minimum=_START[kind])
    if isinstance(target, PowerDecay) and s0 < 1:
        raise ValueError("start must be >= 1 for a PowerDecay target (s^-beta is undefined at 0)")
    if isinstance(target, Delta) and target.T < s0:
        raise ValueError(
            f"T={target.T} lies outside the lags s >= {s0} that a {kind!r} kernel covers"
        )
    return s0


# -----------------------------------------------------------------------------
# the kernel realised by a head group, and its l1 error


@dataclass(frozen=True)
class L1Error:
    """l1 error split at a cutoff S: sum_{s=start}^{S} |rho - phi| plus the rest.

    `window` is exact. `tail` is sum_{s>S} |rho - phi| itself when `tail_exact`, else an
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
        check_choice("kind", self.kind, KINDS)
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
        """phi(s) in mpmath at the current precision."""
        ly = mpmath.mpf(s) if self.kind == "lin" else mpmath.log(s)  # y = e^{-ly}
        # mpf(b) is exact for a float: the kernel of exactly these numbers
        return mpmath.fsum(mpmath.mpf(a) * mpmath.exp(-mpmath.mpf(b) * ly) for a, b in zip(self.coeffs, self.rates))

    def __call__(self, s: Any) -> np.ndarray:
        """phi(s) as float64 at integer lags s; evaluated in mpmath for mp fits and for
        coefficients >= 1e6, whose cancellation float64 cannot resolve."""
        s = np.asarray(s, dtype=np.int64)
        if (s < _START[self.kind]).any():
            raise ValueError(f"lags s must be >= {_START[self.kind]} for kind {self.kind!r}")
        if self.dps is not None or max(abs(float(c)) for c in self.coeffs) >= 1e6:
            with mpmath.workdps(_eval_dps(self)):
                return np.array([float(self.value_mp(int(v))) for v in s.ravel()]).reshape(s.shape)
        return _values_f64(self, s)


def _values_f64(fit: KernelFit, s: np.ndarray) -> np.ndarray:
    x = s.astype(np.float64) if fit.kind == "lin" else np.log(s.astype(np.float64))
    return np.exp(-np.multiply.outer(x, fit.rates_f64)) @ fit.coeffs_f64


def _eval_dps(fit: KernelFit) -> int:
    """Working digits that survive the cancellation between huge coefficients."""
    big = max(abs(mpmath.mpf(c)) for c in fit.coeffs)
    digits = int(mpmath.log10(big)) if big > 1 else 0
    return max(fit.dps or 15, digits + 30)


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


def _segment_sum(kind: str, rate: mpmath.mpf, a: int, b: int | None) -> mpmath.mpf:
    """sum_{s=a}^{b} of exp(-rate s) (lin) or s^-rate (log), b=None meaning infinity."""
    if kind == "lin":
        head = mpmath.exp(-rate * a)
        stop = 0 if b is None else mpmath.exp(-rate * (b + 1))
        return (head - stop) / -mpmath.expm1(-rate)
    stop = 0 if b is None else mpmath.zeta(rate, b + 1)
    return mpmath.zeta(rate, a) - stop


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


# -----------------------------------------------------------------------------
# the paper's constructions: the best kernel on the proof's own rate grid


@dataclass(frozen=True)
class _Sums:
    """Closed-form weighted sums over lags start..window (None: all lags), in mpmath.

    The weight is w_s = y_s^-c with y_s = e^-s (lin) or 1/s (log), so a weighted sum of
    y^b is the plain sum of y^(b-c): geometric sums, Hurwitz zeta or Lerch phi.
    """

    kind: str
    start: int
    window: int | None
    c: mpmath.mpf

    def y(self, s: int, b: mpmath.mpf) -> mpmath.mpf:
        return mpmath.exp(-b * s) if self.kind == "lin" else mpmath.mpf(s) ** (-b)

    def power_sum(self, b: mpmath.mpf) -> mpmath.mpf:
        """sum_s w_s y_s^b."""
        b = b - self.c
        if self.window is None and (b <= 0 if self.kind == "lin" else b <= 1):
            raise ValueError(
                "weight: the weighted sum over all lags diverges (a sum of y^b needs b > 0 for lin, "
                "b > 1 for log); lower the weight, raise the offset, or pass a window"
            )
        return _segment_sum(self.kind, b, self.start, self.window)

    def _direct(self, target: Target, b: mpmath.mpf, stop: int | None) -> mpmath.mpf:
        if stop is None:
            raise ValueError("this target/kind pair needs a finite window for a weighted fit")
        return mpmath.fsum(target.value_mp(s) * self.y(s, b - self.c) for s in range(self.start, stop + 1))

    def cross(self, target: Target, b: mpmath.mpf, square: bool = False) -> mpmath.mpf:
        """sum_s w_s rho(s) y_s^b, or sum_s w_s rho(s)^2 when square (b is then ignored)."""
        lin, last = self.kind == "lin", self.window
        if isinstance(target, Delta):
            if target.T < self.start or (last is not None and target.T > last):
                return mpmath.mpf(0)
            return self.y(target.T, (0 if square else b) - self.c)
        if isinstance(target, Tabulated):
            stop = target.end if last is None else min(target.end, last)
            return mpmath.fsum(
                target.value_mp(s) ** (2 if square else 1) * self.y(s, (0 if square else b) - self.c)
                for s in range(max(self.start, target.start), stop + 1)
            )
        beta = _mpf(target.beta)
        same = isinstance(target, ExpDecay) == lin  # rho is itself y^beta
        if same:
            return self.power_sum((beta if square else b) + beta)
        if square:  # rho^2 = exp(-2 beta s) or s^(-2 beta) of the other family
            target = type(target)(2 * target.beta)
            b, beta = mpmath.mpf(0), 2 * beta
        # mixed pair: sum_s z^s s^-p = z^a Lerch(z, p, a) - (the same from window + 1)
        if lin:  # rho = s^-beta, weight and head give e^{-(b - c) s}
            z, p = mpmath.exp(-(b - self.c)), beta
        else:  # rho = e^{-beta s}, head and weight give s^{-(b - c)}
            z, p = mpmath.exp(-beta), b - self.c
        if z == 1:  # a plain power sum
            return _segment_sum("log", p, self.start, last)
        if z > 1:
            return self._direct(target, b, last)
        a = self.start
        head = z**a * mpmath.lerchphi(z, p, a)
        return head if last is None else head - z ** (last + 1) * mpmath.lerchphi(z, p, last + 1)


def _solve_grid(sums: _Sums, target: Target, offset: Any, step: Any, m: int, dps: int):
    """Weighted least squares min_alpha sum_s w_s (rho - sum_k alpha_k y_s^beta_k)^2 via
    the exact Gram matrix; returns (rates, alpha, residual^2, working dps).

    The Gram matrix's condition number reaches 1e60 and beyond, so the rates themselves
    are rebuilt from offset and step at every working precision: rates rounded to fewer
    digits than the solve carries would be a different, perturbed problem.
    """
    work, previous = dps + 20, None
    while True:
        with mpmath.workdps(work):
            off, st = _mpf(offset), _mpf(step)
            rs = [off + st * k for k in range(m)]
            sums_w = _Sums(sums.kind, sums.start, sums.window, _mpf(sums.c))
            # beta_j + beta_k = 2 offset + step (j + k): only 2m - 1 distinct Gram entries
            diag = [sums_w.power_sum(2 * off + st * i) for i in range(2 * m - 1)]
            G = mpmath.matrix(m, m)
            for j in range(m):
                for k in range(m):
                    G[j, k] = diag[j + k]
            r = mpmath.matrix([sums_w.cross(target, b) for b in rs])
            alpha = mpmath.lu_solve(G, r)
            res2 = sums_w.cross(target, 0, square=True) - mpmath.fsum(r[j] * alpha[j] for j in range(m))
            big = max(abs(a) for a in alpha)
        # a solve loses about 2*log10(max|alpha|) digits to cancellation; redo until the
        # working precision covers that and two solves agree on the residual
        need = dps + 20 + 2 * (int(mpmath.log10(big)) + 1 if big > 1 else 0)
        agree = previous is not None and abs(res2 - previous) <= mpmath.mpf(10) ** (-dps // 2) * (1 + abs(res2))
        if need <= work and agree:
            return rs, list(alpha), res2, work
        previous = res2
        work = max(need, work) + 20


def _uniform_weight(kind: str, offset: mpmath.mpf, step: mpmath.mpf) -> mpmath.mpf:
    """The weight exponent c that makes sum_s w_s phi(s)^2 ~ integral of Q(x)^2 dx with
    uniform weight in the proof's variable x: c = 2 offset - step (lin), 2 offset - 1 - step
    (log). For Lemmas F.1 and F.4 l1 is then ~ the uniform integral of |Q| too."""
    return 2 * offset - step if kind == "lin" else 2 * offset - 1 - step


def grid_fit(
    target: Target,
    kind: str,
    m: int,
    offset: Any,
    step: Any,
    *,
    weight: Any = "uniform",
    window: int | None = None,
    start: int | None = None,
    dps: int = 50,
) -> KernelFit:
    """Best weighted-l2 kernel on the rate grid beta_k = offset + step*k, k = 0..m-1.

    The coefficients minimise sum_s w_s (rho(s) - phi(s))^2 over lags start..window (all
    lags when window is None), with w_s = e^{c s} (lin) or s^c (log). weight="uniform"
    picks c so that the sum weighs the proof's variable x = y^step uniformly, as the
    proof's sup-norm in x does; weight=0 is plain l2 (see `grid_l1_lower_bound`). Every
    sum over lags is in closed form (geometric sums, Hurwitz zeta, Lerch phi), so nothing
    is truncated, and the working precision grows until the solve is stable to `dps`
    digits. `l2_residual` is the square root of the minimised weighted sum.
    """
    fit = _grid_solution(target, kind, m, offset, step, weight, window, start, dps)
    return _with_l1(fit, l1_error(fit, target, S=window, start=start))


def _grid_solution(target, kind, m, offset, step, weight, window, start, dps) -> KernelFit:
    _check_target(target)
    check_choice("kind", kind, KINDS)
    m = check_int("m", m, minimum=1)
    dps = check_int("dps", dps, minimum=15)
    s0 = _lag_start(kind, target, start)
    if window is not None:
        window = check_int("window", window, minimum=s0)
    check_positive("offset", offset), check_positive("step", step)
    with mpmath.workdps(dps + 20):
        off, st = _mpf(offset), _mpf(step)
        if isinstance(weight, str):
            check_choice("weight", weight, ("uniform",))
            c = _uniform_weight(kind, off, st)
        else:
            try:
                c = _mpf(float(weight))
            except (TypeError, ValueError):
                c = mpmath.nan
            if not mpmath.isfinite(c):
                raise ValueError(f"weight must be 'uniform' or a finite number, got {weight!r}")
        rates, alpha, res2, work = _solve_grid(_Sums(kind, s0, window, c), target, offset, step, m, dps)
    with mpmath.workdps(work):
        grid = (_mpf(offset), _mpf(step))
    return KernelFit(kind, tuple(rates), tuple(alpha), target=target, window=window,
                     dps=work, grid=grid, method=f"grid-l2(c={mpmath.nstr(c, 6)})",
                     l2_residual=float(mpmath.sqrt(max(res2, 0))))


def grid_l1_lower_bound(
    target: Target, kind: str, m: int, offset: Any, step: Any, *,
    window: int | None = None, start: int | None = None, dps: int = 30,
) -> float:
    """min over all coefficients of the l2 error on the grid, exactly: since
    ||e||_1 >= ||e||_2 on the integers, no kernel on this grid (the proof's Jackson
    construction included) has a smaller l1 error over the same lags."""
    fit = _grid_solution(target, kind, m, offset, step, 0, window, start, dps)
    return fit.l2_residual


def _with_l1(fit: KernelFit, l1: L1Error) -> KernelFit:
    return KernelFit(**{**fit.__dict__, "l1": l1})


def lemma_f1(T: int, m: int, *, weight: Any = "uniform", window: int | None = None, dps: int = 50) -> KernelFit:
    """Lemma F.1: delta at lag T by m exponentials with rates 0.01 (1 + k), k = 0..m-1.

    In the proof, x = e^{-0.01 t}; a bump Psi_T at x = e^{-0.01 T}, divided by x, is
    approximated by a Jackson polynomial Q_m(x) = sum_k alpha_k x^k, and phi(t) =
    e^{-0.01 t} Q_m(x) = sum_k alpha_k e^{-0.01 (1+k) t}; its l1 error is at most
    ~100 sup_x |Psi_T/x - Q_m|. We keep the proof's rates and choose the alpha_k as the
    exact minimiser of sum_t e^{0.01 t} (delta - phi)^2 over all t in N: in x that is the
    uniformly weighted L2 distance, the Hilbert-space stand-in for the proof's sup norm
    (see `grid_fit`). The Jackson polynomial is one admissible choice of alpha, so it
    cannot beat this fit in that norm; `grid_l1_lower_bound` bounds every choice in l1.
    """
    T = check_int("T", T, minimum=1)
    return grid_fit(Delta(T), "lin", m, "0.01", "0.01", weight=weight, window=window, dps=dps)


def lemma_f4(T: int, m: int, *, weight: Any = "uniform", window: int | None = None, dps: int = 50) -> KernelFit:
    """Lemma F.4: delta at lag T by m powers t^{-beta_k}, beta_k = 1.01 + 0.01 k.

    The proof's variable is x = t^{-0.01}, phi(t) = t^{-1.01} Q_m(x). Coefficients as in
    `lemma_f1`: the exact minimiser of sum_t t^{1.01} (delta - phi)^2 over t in N+,
    which again weighs x uniformly.
    """
    T = check_int("T", T, minimum=1)
    return grid_fit(Delta(T), "log", m, "1.01", "0.01", weight=weight, window=window, dps=dps)


def lemma_f3(beta: float, m: int, *, weight: Any = "uniform", window: int | None = None, dps: int = 50) -> KernelFit:
    """Lemma F.3: rho(t) = e^{-beta t} by exponentials on the grid gamma + alpha k with
    alpha = 5e-3 and gamma = 1e-2 beta (the proof's x = e^{-alpha t} times e^{-gamma t})."""
    beta = check_positive("beta", beta)
    gamma = f"{beta!r}e-2"  # exactly beta/100 as a decimal
    return grid_fit(ExpDecay(beta), "lin", m, gamma, "0.005", weight=weight, window=window, dps=dps)


def lemma_f6(beta: float, m: int, *, weight: Any = "uniform", window: int | None = None, dps: int = 50) -> KernelFit:
    """Lemma F.6: rho(t) = t^{-beta}, beta > 1, by powers on the grid 1.01 + 0.01 k.

    The digest only says "the power grid"; we reuse Lemma F.4's grid (our reading). The
    uniform weight t^{1.01} needs beta > 1.005 for rho's weighted norm to be finite.
    """
    beta = check_positive("beta", beta)
    if beta <= 1:
        raise ValueError(f"beta must be > 1 for Lemma F.6 (rho must be in l1), got {beta}")
    return grid_fit(PowerDecay(beta), "log", m, "1.01", "0.01", weight=weight, window=window, dps=dps)


def lemma_bound(kind: str, T: int, m: int, n: int, C: float = 1.0) -> float:
    """Shape of Lemmas F.1/F.4: C e^{0.01(n+1)T}/m^n (lin) or C T^{1.01(n+1)}/m^n (log)."""
    check_choice("kind", kind, KINDS)
    T, m, n = check_int("T", T, minimum=1), check_int("m", m, minimum=1), check_int("n", n, minimum=1)
    C = check_positive("C", C)
    grow = math.exp(0.01 * (n + 1) * T) if kind == "lin" else T ** (1.01 * (n + 1))
    return C * grow / m**n


# -----------------------------------------------------------------------------
# free rates: what training could find


def geometric_rates(H: int, lo: float, hi: float) -> np.ndarray:
    """H rates spaced geometrically from lo to hi (a common RPE-slope initialisation)."""
    H = check_int("H", H, minimum=1)
    lo, hi = check_positive("lo", lo), check_positive("hi", hi)
    if hi < lo:
        raise ValueError(f"hi must be >= lo, got lo={lo}, hi={hi}")
    # Same ladder as rpe.geometric_rates, but numpy's geomspace: the fits' starting points,
    # and so the book's glued numbers, depend on these exact floats (torch.logspace differs
    # in the last bits and leads fit_free to another local optimum).
    return np.geomspace(lo, hi, H) if H > 1 else np.array([math.sqrt(lo * hi)])


def _window_data(target: Target, kind: str, window: int | None, start: int | None):
    s0 = _lag_start(kind, target, start)
    if window is None:
        if isinstance(target, Delta):
            window = max(200, 10 * (target.T + 1))  # room for the fit to decay after the spike
        else:
            window = target.default_S()
    window = check_int("window", window, minimum=s0)
    s = np.arange(s0, window + 1)
    return s0, window, s, target.values(s)


def _design(kind: str, s: np.ndarray, rates: np.ndarray) -> np.ndarray:
    x = s.astype(np.float64) if kind == "lin" else np.log(s.astype(np.float64))
    return np.exp(-np.multiply.outer(x, rates))


def _lstsq(Phi: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Scale columns first: rates spread over decades make raw columns differ by 1e30.
    # rcond=None truncates singular values below ~32 eps sigma_max. This is deliberate
    # regularisation: the exact least-squares coefficients for nearly collinear heads are
    # so large that a float64 forward pass cannot evaluate them (construct.py measures
    # this as float64_noise), at the price of a slightly worse kernel than the rates allow.
    # The l1 errors reported are always those of the coefficients returned.
    norms = np.linalg.norm(Phi, axis=0)
    norms[norms == 0] = 1.0
    coef, *_ = np.linalg.lstsq(Phi / norms, y, rcond=None)
    return coef / norms


def fit_rates(
    target: Target, rates: Sequence[float], kind: str = "lin", *, window: int | None = None, start: int | None = None
) -> KernelFit:
    """Least-squares coefficients (float64) for given rates on lags start..window."""
    _check_target(target)
    check_choice("kind", kind, KINDS)
    rates = np.asarray(rates, dtype=np.float64).ravel()
    if rates.size == 0 or not np.all(np.isfinite(rates)) or np.any(rates <= 0):
        raise ValueError(f"rates must be a non-empty sequence of finite numbers > 0, got {rates}")
    s0, window, s, y = _window_data(target, kind, window, start)
    coef = _lstsq(_design(kind, s, rates), y)
    fit = KernelFit(kind, tuple(rates.tolist()), tuple(coef.tolist()), target=target,
                    window=window, method="fixed-rates")
    l1 = l1_error(fit, target, S=window, start=s0)
    resid = float(np.linalg.norm(y - _design(kind, s, rates) @ coef))
    return KernelFit(**{**fit.__dict__, "l1": l1, "l2_residual": resid})


def _vp_residual(theta: np.ndarray, x: np.ndarray, y: np.ndarray):
    """Variable projection: r = y - P y, P the projector onto the span of the head
    kernels exp(-rate * x) with rates = exp(theta), so the coefficients never enter the
    optimisation. Returns r and the exact Jacobian dr/dtheta (Golub-Pereyra)."""
    rates = np.exp(theta)
    A = np.exp(-np.multiply.outer(x, rates))
    norms = np.linalg.norm(A, axis=0)
    norms[norms == 0] = 1.0
    Q, R = np.linalg.qr(A / norms)
    Rinv = np.linalg.pinv(R)  # pinv: two merged rates must not raise
    c = (Rinv @ (Q.T @ y)) / norms  # coefficients of A
    r = y - A @ c
    dA = -x[:, None] * rates[None, :] * A  # d(column h)/d(theta_h)
    # dr/dtheta_h = -(I - P) da_h c_h - (A^+)^T e_h (da_h . r)
    J = -(dA - Q @ (Q.T @ dA)) * c[None, :]
    J -= (Q @ Rinv.T) / norms[None, :] * (dA.T @ r)[None, :]
    return r, J


def _levenberg_marquardt(theta: np.ndarray, x: np.ndarray, y: np.ndarray, max_iter: int):
    """Minimise ||r(theta)||^2 by Levenberg-Marquardt; log-rates stay in [-25, 6]."""
    lam = 1e-3
    r, J = _vp_residual(theta, x, y)
    loss = float(r @ r)
    for _ in range(max_iter):
        g, JTJ = J.T @ r, J.T @ J
        improved = False
        while lam < 1e16:
            step = np.linalg.lstsq(JTJ + lam * np.diag(np.diag(JTJ) + 1e-300), -g, rcond=None)[0]
            step *= min(1.0, 1.0 / max(np.abs(step).max(), 1e-300))  # a rate moves <= e-fold
            trial = np.clip(theta + step, -25.0, 6.0)
            r_t, J_t = _vp_residual(trial, x, y)
            loss_t = float(r_t @ r_t)
            if np.isfinite(loss_t) and loss_t < loss:
                improved = loss - loss_t > 1e-15 * loss
                theta, r, J, loss, lam = trial, r_t, J_t, loss_t, max(lam / 3, 1e-12)
                break
            lam *= 4
        if not improved:
            break
    return theta, loss


def _initial_rates(kind: str, H: int, window: int, x: np.ndarray, y: np.ndarray, count: int) -> list:
    """The `count` best geometric rate ladders lo..hi on a log grid of (lo, hi), by their
    least-squares loss: the loss has many local minima (merged rates are one), and
    which one LM finds depends mostly on the scales it starts from."""
    span = (1.0 / (10 * window), 50.0) if kind == "lin" else (0.01, 20.0)
    ends = np.geomspace(*span, 10)
    ladders = [geometric_rates(H, lo, hi) for i, lo in enumerate(ends) for hi in ends[i + (H > 1):]]
    losses = [float(np.sum(_vp_residual(np.log(r), x, y)[0] ** 2)) for r in ladders]
    return [ladders[i] for i in np.argsort(losses)[:count]]


def fit_free(
    target: Target,
    H: int,
    kind: str = "lin",
    *,
    window: int | None = None,
    start: int | None = None,
    restarts: int = 4,
    seed: int = 0,
    init_rates: Sequence[float] | None = None,
    max_iter: int = 200,
) -> KernelFit:
    """Least-squares fit with free rates and coefficients on lags start..window.

    The coefficients are projected out (variable projection) and the log-rates are
    optimised by Levenberg-Marquardt in float64 with the exact Jacobian. Starts: the
    given `init_rates`, or else the best geometric ladders from a small grid search
    (see `_initial_rates`); half the restarts perturb the best start with a seeded
    generator, so a fit repeats exactly. Rates stay in [1.4e-11, 403].
    """
    _check_target(target)
    check_choice("kind", kind, KINDS)
    H = check_int("H", H, minimum=1)
    restarts = check_int("restarts", restarts, minimum=1)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    s0, window, s, y = _window_data(target, kind, window, start)
    if not np.any(y):
        raise ValueError("target is zero on the fit window; widen the window")
    x = s.astype(np.float64) if kind == "lin" else np.log(s.astype(np.float64))
    if init_rates is None:
        starts = _initial_rates(kind, H, window, x, y, max(1, (restarts + 1) // 2))
    else:
        init = np.asarray(init_rates, dtype=np.float64).ravel()
        if init.size != H or np.any(~np.isfinite(init)) or np.any(init <= 0):
            raise ValueError(f"init_rates must hold H={H} finite numbers > 0")
        starts = [init]
    rng = np.random.default_rng(seed)
    while len(starts) < restarts:
        starts.append(np.exp(np.log(starts[0]) + 0.5 * rng.standard_normal(H)))
    best_loss, best_theta = math.inf, np.log(starts[0])
    for rates0 in starts:
        theta, loss = _levenberg_marquardt(np.clip(np.log(rates0), -25.0, 6.0), x, y, max_iter)
        if loss < best_loss:
            best_loss, best_theta = loss, theta
    fit = fit_rates(target, np.sort(np.exp(best_theta)), kind, window=window, start=s0)
    return KernelFit(**{**fit.__dict__, "method": "free-rates"})


# -----------------------------------------------------------------------------
# why a delta at lag T needs T + 1 lin heads


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
