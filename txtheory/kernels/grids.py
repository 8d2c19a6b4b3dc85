"""The paper's own constructions (Lemmas F.1, F.3, F.4, F.6): the best kernel on the
proof's rate grid, solved exactly in mpmath, and a certified lower bound for every kernel
on that grid.

Part of ``txtheory.kernels`` (``book/kernels.md``, "The constructions, run").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mpmath

from txtheory import kinds
from txtheory._checks import check_choice, check_int, check_positive
from txtheory.kernels.kernel import KernelFit, L1Error, _segment_sum
from txtheory.kernels.l1 import l1_error
from txtheory.kernels.shapes import Delta, ExpDecay, PowerDecay, Tabulated, Target, _check_target, _lag_start, _mpf


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
    kinds.check_kind(kind)
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
    approximated by a Jackson polynomial Q_m(x) = sum_k alpha_k x^k, and κ(t) =
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

    The proof's variable is x = t^{-0.01}, κ(t) = t^{-1.01} Q_m(x). Coefficients as in
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
    kinds.check_kind(kind)
    T, m, n = check_int("T", T, minimum=1), check_int("m", m, minimum=1), check_int("n", n, minimum=1)
    C = check_positive("C", C)
    grow = math.exp(0.01 * (n + 1) * T) if kind == "lin" else T ** (1.01 * (n + 1))
    return C * grow / m**n

