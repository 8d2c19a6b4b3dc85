"""Free-rate fits: least squares over the rates and the coefficients of H heads, what
training could find (variable projection and Levenberg-Marquardt in float64).

Part of ``txtheory.kernels`` (``book/kernels.md``, "Free rates and an exact limit").
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from txtheory import kinds
from txtheory._checks import check_int, check_positive
from txtheory.kernels.kernel import KernelFit
from txtheory.kernels.l1 import l1_error
from txtheory.kernels.shapes import Delta, Target, _check_target, _lag_start


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


def design_matrix(kind: str, s: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """[e^{p_h phi(s)}]: (S, H), the head kernels of ``rates`` on the lags ``s``, one column
    per head. A group's kernel is this matrix times its values (Task III's chapter reads its
    condition number to show why trained values stall)."""
    x = -kinds.phi(np.asarray(s).astype(np.float64), kind)  # (S,): s (lin) or log s (log)
    return np.exp(-np.multiply.outer(x, rates))


def _lstsq(Phi: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Scale columns first: rates spread over decades make raw columns differ by 1e30.
    # rcond=None truncates singular values below ~32 eps sigma_max. This is deliberate
    # regularisation: the exact least-squares coefficients for nearly collinear heads are
    # so large that a float64 forward pass cannot evaluate them (txtheory.construct measures
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
    kinds.check_kind(kind)
    rates = np.asarray(rates, dtype=np.float64).ravel()
    if rates.size == 0 or not np.all(np.isfinite(rates)) or np.any(rates <= 0):
        raise ValueError(f"rates must be a non-empty sequence of finite numbers > 0, got {rates}")
    s0, window, s, y = _window_data(target, kind, window, start)
    coef = _lstsq(design_matrix(kind, s, rates), y)
    fit = KernelFit(kind, tuple(rates.tolist()), tuple(coef.tolist()), target=target,
                    window=window, method="fixed-rates")
    l1 = l1_error(fit, target, S=window, start=s0)
    resid = float(np.linalg.norm(y - design_matrix(kind, s, rates) @ coef))
    return KernelFit(**{**fit.__dict__, "l1": l1, "l2_residual": resid})


def min_l1_error(target: Target, rates: Sequence[float], kind: str = "lin", *, lags: Sequence[int]) -> float:
    """min over all coefficients of sum_{s in lags} |rho(s) - sum_h alpha_h e^{beta_h phi(s)}|
    for the given rates: a linear program (scipy's HiGHS), solved in float64.

    This is what the l1 floors of ``kernels.recurrence`` bound from below; the book uses it
    to measure where no floor is proved (log heads). Rates far apart make the columns differ
    by many orders of magnitude; they are scaled to unit l1 norm first.
    """
    from scipy.optimize import linprog  # here: scipy is needed by this function only

    _check_target(target)
    kinds.check_kind(kind)
    rates = np.asarray(rates, dtype=np.float64).ravel()
    if rates.size == 0 or not np.all(np.isfinite(rates)) or np.any(rates <= 0):
        raise ValueError(f"rates must be a non-empty sequence of finite numbers > 0, got {rates}")
    s = np.asarray(sorted(set(int(v) for v in lags)), dtype=np.int64)
    if s.size == 0 or s.min() < kinds.FIRST_LAG[kind]:
        raise ValueError(f"lags must be a non-empty set of lags >= {kinds.FIRST_LAG[kind]} for kind {kind!r}")
    A = design_matrix(kind, s, rates)  # (S, H)
    A = A / np.where(np.abs(A).sum(0) > 0, np.abs(A).sum(0), 1.0)
    y = target.tabulate(int(s.max()) + 1)[s]
    S, H = A.shape
    # variables (alpha, u): minimise sum u subject to -u <= A alpha - y <= u
    cost = np.concatenate([np.zeros(H), np.ones(S)])
    A_ub = np.block([[A, -np.eye(S)], [-A, -np.eye(S)]])
    b_ub = np.concatenate([y, -y])
    bounds = [(None, None)] * H + [(0, None)] * S
    res = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if not res.success:
        raise RuntimeError(f"the l1 linear program failed: {res.message}")
    return float(res.fun)


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


def _levenberg_marquardt(theta: np.ndarray, x: np.ndarray, y: np.ndarray, max_iter: int, top: float = 6.0):
    """Minimise ||r(theta)||^2 by Levenberg-Marquardt; log-rates stay in [-25, top]."""
    lam = 1e-3
    r, J = _vp_residual(theta, x, y)
    loss = float(r @ r)
    for _ in range(max_iter):
        g, JTJ = J.T @ r, J.T @ J
        improved = False
        while lam < 1e16:
            step = np.linalg.lstsq(JTJ + lam * np.diag(np.diag(JTJ) + 1e-300), -g, rcond=None)[0]
            step *= min(1.0, 1.0 / max(np.abs(step).max(), 1e-300))  # a rate moves <= e-fold
            trial = np.clip(theta + step, -25.0, top)
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
    kinds.check_kind(kind)
    H = check_int("H", H, minimum=1)
    restarts = check_int("restarts", restarts, minimum=1)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    s0, window, s, y = _window_data(target, kind, window, start)
    if not np.any(y):
        raise ValueError("target is zero on the fit window; widen the window")
    x = -kinds.phi(s.astype(np.float64), kind)  # (S,): the heads' weights are exp(-rate * x)
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



def fit_points(x: Sequence[float], y: Sequence[float], H: int, *, restarts: int = 4, seed: int = 0,
               max_iter: int = 200, max_rate: float = 403.0) -> tuple[np.ndarray, np.ndarray]:
    """Least squares of sum_h alpha_h exp(-beta_h x_i) against y_i on arbitrary points x_i.

    The kernels of Task II are of this form with several points per lag: a shifted
    lin kernel at lag s for a query whose lag is g has x = s - g, a rescaled log kernel
    x = log(s / g) (``construct.adaptive``). Rates and coefficients as in ``fit_free``
    (variable projection, Levenberg-Marquardt, seeded restarts). The fit runs on
    x - min(x) >= 0, so no column overflows; that only rescales each column, and the
    returned alpha_h = c_h exp(beta_h min(x)) undoes it. Rates stay below ``max_rate``
    (a construction keeps beta_h * g under the attention's overflow cap). Returns
    (beta, alpha), sorted by rate.
    """
    top = math.log(check_positive("max_rate", max_rate))
    H = check_int("H", H, minimum=1)
    restarts = check_int("restarts", restarts, minimum=1)
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size == 0 or x.shape != y.shape or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"x and y must be non-empty finite sequences of equal length, got {x.size} and {y.size}")
    if not np.any(y):
        raise ValueError("y is zero at every point; there is nothing to fit")
    shift = float(x.min())
    xs = x - shift
    starts = _initial_rates("lin", H, max(1, int(np.ceil(xs.max()))), xs, y, max(1, (restarts + 1) // 2))
    rng = np.random.default_rng(seed)
    while len(starts) < restarts:
        starts.append(np.exp(np.log(starts[0]) + 0.5 * rng.standard_normal(H)))
    best_loss, best_theta = math.inf, np.log(starts[0])
    for rates0 in starts:
        theta, loss = _levenberg_marquardt(np.clip(np.log(rates0), -25.0, top), xs, y, max_iter, top)
        if loss < best_loss:
            best_loss, best_theta = loss, theta
    rates = np.sort(np.exp(best_theta))
    coef = _lstsq(np.exp(-np.multiply.outer(xs, rates)), y)
    return rates, coef * np.exp(rates * shift)
