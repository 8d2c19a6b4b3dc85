"""The paper's approximation rates as SymPy expressions, and helpers to test them.

Explained in `book/fixed-memory.md` (Theorem 3.1: the rate, the head allocation and the
heads needed for an error epsilon, lin-RPE versus log-RPE), in `book/kernels.md` and
`book/essential-memory.md` (Theorem 5.1: its rate, heads and admissible rates) and in
`book/adaptive-memory.md` (Theorems 4.1, 4.4 and Proposition 4.5). The RPE type is "lin" or "log" (`txtheory.kinds`).

Every bound is ||H - TF|| <= E_FFN + ||f||_Lip E_attn, with C(n) an unknown constant
depending only on the free rate n. The expressions use exact rationals (1/100, not
0.01), so SymPy's algebra stays exact. `fit_constant` and `loglog_slope` turn a bound
into a check that can fail: fit C(n) on some points, assert the bound on the others.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import sympy as sp

from txtheory._checks import check_int, check_positive
from txtheory.kinds import check_kind

# symbols shared by every expression (positive, so SymPy may simplify powers)
H = sp.Symbol("H", positive=True)  # attention heads
n = sp.Symbol("n", positive=True, integer=True)  # the free rate of the Jackson step
C = sp.Symbol("C", positive=True)  # the unknown constant C(n)
T = sp.Symbol("T", positive=True)  # a memory length (M = 1)
M = sp.Symbol("M", positive=True, integer=True)  # number of memories / kernels
eps = sp.Symbol("epsilon", positive=True)  # a target error
m = sp.Symbol("m", positive=True)  # FFN width
B = sp.Symbol("B", positive=True)  # the readout's Barron norm ||f||_B
Lip = sp.Symbol("L", positive=True)  # the readout's Lipschitz norm ||f||_Lip

_RATE = sp.Rational(1, 100)  # the 0.01 of the lin rate grid
_POWER = sp.Rational(101, 100)  # the 1.01 of the log rate grid


def memory_lengths(M_: int) -> tuple[sp.Symbol, ...]:
    """The positive symbols T_1..T_M."""
    M_ = check_int("M", M_, minimum=1)
    return sp.symbols(f"T_1:{M_ + 1}", positive=True)


def memory_weight(kind: str, T_: Any) -> sp.Expr:
    """w(T): e^{T/100} (lin) or T^{101/100} (log), the memory's cost in Lemmas F.1/F.4.

    One memory at lag T with H_k heads has kernel error C w(T)^{n+1} / H_k^n.
    """
    check_kind(kind)
    return sp.exp(_RATE * T_) if kind == "lin" else T_**_POWER


def per_memory_error(kind: str, T_: Any, H_k: Any) -> sp.Expr:
    """Lemma F.1 (lin) / F.4 (log): the l1 error of H_k heads for a delta at lag T."""
    return C * memory_weight(kind, T_) ** (n + 1) / H_k**n


def thm31_attention_error(kind: str, M_: int) -> sp.Expr:
    """Theorem 3.1: E_attn = C/H^n (sum_i w(T_i))^{n+1} in the symbols H, n, C, T_1..T_M."""
    Ts = memory_lengths(M_)
    return C / H**n * sp.Add(*(memory_weight(kind, t) for t in Ts)) ** (n + 1)


def thm31_attention_error_at(kind: str, Ts: Sequence[float], H_: float, n_: int, C_: float = 1.0) -> float:
    """Theorem 3.1's E_attn with numbers substituted."""
    check_kind(kind)
    Ts = [check_positive("T", t) for t in Ts]
    if not Ts:
        raise ValueError("Ts must hold at least one memory length")
    H_, n_, C_ = check_positive("H", H_), check_int("n", n_, minimum=1), check_positive("C", C_)
    w = sum(np.exp(0.01 * t) if kind == "lin" else t**1.01 for t in Ts)
    return float(C_ / H_**n_ * w ** (n_ + 1))


def optimal_allocation(kind: str, M_: int) -> list[sp.Expr]:
    """The paper's allocation H_k = w(T_k) / sum_j w(T_j) * H (App. B)."""
    Ts = memory_lengths(M_)
    total = sp.Add(*(memory_weight(kind, t) for t in Ts))
    return [memory_weight(kind, t) / total * H for t in Ts]


def derive_allocation(kind: str, M_: int) -> dict[str, Any]:
    """Derive the head allocation with a Lagrange multiplier, in SymPy.

    Minimise E(H_1..H_M) = sum_k C w_k^{n+1} / H_k^n subject to sum_k H_k = H (heads
    relaxed to reals): the errors of the M extracted tokens add, as in the proof of
    Theorem 3.1. Stationarity gives n C w_k^{n+1} / H_k^{n+1} = lambda, so H_k is
    proportional to w_k, and the constraint fixes H_k = w_k H / sum_j w_j: the paper's
    formula. At that point E = C (sum_k w_k)^{n+1} / H^n, Theorem 3.1's rate. (Were the
    errors combined by a max instead, the optimum would equalise them and give
    H_k proportional to w_k^{(n+1)/n}: a different rule.)

    Returns {"allocation": [H_k in T_1..T_M], "error": E at the optimum, "lambda": the
    multiplier}, all derived, not typed in.
    """
    check_kind(kind)
    M_ = check_int("M", M_, minimum=1)
    lam = sp.Symbol("lambda", positive=True)
    w = sp.symbols(f"w_1:{M_ + 1}", positive=True)
    Hk = sp.symbols(f"H_1:{M_ + 1}", positive=True)
    error = sp.Add(*(C * wk ** (n + 1) / hk**n for wk, hk in zip(w, Hk)))
    lagrangian = error + lam * (sp.Add(*Hk) - H)
    # each stationarity equation involves one H_k only
    stationary = [sp.solve(sp.diff(lagrangian, hk), hk)[0] for hk in Hk]
    stationary = [sp.powsimp(sp.expand_power_base(h, force=True), force=True) for h in stationary]
    lam_opt = sp.solve(sp.Eq(sp.Add(*stationary), H), lam)[0]
    alloc = [sp.simplify(h.subs(lam, lam_opt)) for h in stationary]
    # E at the optimum, term by term so that powers with symbolic n combine
    E_opt = sp.Add(*(
        sp.powsimp(sp.expand_power_base(C * wk ** (n + 1) / hk**n, force=True), force=True)
        for wk, hk in zip(w, alloc)
    ))
    Ts = memory_lengths(M_)
    to_T = {wk: memory_weight(kind, t) for wk, t in zip(w, Ts)}
    return {
        "allocation": [a.subs(to_T) for a in alloc],
        "error": sp.powsimp(sp.factor(E_opt), force=True).subs(to_T),
        "lambda": lam_opt.subs(to_T),
    }


def heads_for_error(kind: str, M_: int = 1) -> sp.Expr:
    """Solve Theorem 3.1's E_attn = epsilon for H: (C (sum_i w(T_i))^{n+1} / epsilon)^{1/n}."""
    W = sp.Symbol("W", positive=True)  # sum_i w(T_i), kept whole so SymPy does not expand it
    sols = sp.solve(sp.Eq(C * W ** (n + 1) / H**n, eps), H)
    if len(sols) != 1:
        raise RuntimeError(f"expected one positive solution for H, got {sols}")
    total = sp.Add(*(memory_weight(kind, t) for t in memory_lengths(M_)))
    return sols[0].subs(W, total)


def heads_growth(kind: str) -> sp.Expr:
    """The T-dependence of the heads needed for one memory (M = 1), constants dropped:
    e^{(n+1) T / (100 n)} (lin) or T^{101 (n+1) / (100 n)} (log)."""
    return sp.powsimp(memory_weight(kind, T) ** ((n + 1) / n), force=True)


def heads_ratio_lin_log() -> sp.Expr:
    """Heads needed by lin-RPE over heads needed by log-RPE for one memory at lag T
    (same C and epsilon): e^{(n+1) T / (100 n)} / T^{101 (n+1) / (100 n)}. It falls
    below 1 for moderate T and then grows without bound (exponential over polynomial)."""
    return heads_growth("lin") / heads_growth("log")


def as_numpy(expr: sp.Expr, *args: sp.Symbol) -> Callable[..., Any]:
    """A numpy function of `args` (for plots), e.g. as_numpy(heads_ratio_lin_log(), T, n)."""
    free = expr.free_symbols - set(args)
    if free:
        names = ", ".join(sorted(str(s) for s in free))
        raise ValueError(f"args must name every free symbol of expr; missing {names}")
    return sp.lambdify(args, expr, modules="numpy")


def heads_for_error_fn(kind: str) -> Callable[..., Any]:
    """numpy (T, epsilon, n, C) -> heads needed for one memory at lag T."""
    expr = heads_for_error(kind, 1).subs(sp.Symbol("T_1", positive=True), T)
    return as_numpy(expr, T, eps, n, C)


def heads_ratio_fn() -> Callable[..., Any]:
    """numpy (T, n) -> lin heads / log heads for one memory at lag T."""
    return as_numpy(heads_ratio_lin_log(), T, n)


# -----------------------------------------------------------------------------
# Theorem 5.1 and the FFN term


def thm51_attention_error() -> sp.Expr:
    """Theorem 5.1: E_attn = C M^{n+1} / H^n, with no dependence on memory length."""
    return C * M ** (n + 1) / H**n


def thm51_heads_for_error() -> sp.Expr:
    """Solve Theorem 5.1's E_attn = epsilon for H: M^{(n+1)/n} (C / epsilon)^{1/n}, with no
    memory length in it (``book/essential-memory.md``)."""
    sols = sp.solve(sp.Eq(thm51_attention_error(), eps), H)
    if len(sols) != 1:
        raise RuntimeError(f"expected one positive solution for H, got {sols}")
    return sols[0]


def thm51_max_rate(beta: Any, kind: str) -> int:
    """Largest admissible rate n in Theorem 5.1 for kernels decaying like beta.

    kind "lin": rho = O(e^{-beta t}) with lin-RPE (case A), n in [floor(99 beta)].
    kind "log": rho = O(t^{-beta}) with log-RPE (case B), n in [floor(0.99 beta) - 1].
    beta is read as an exact decimal, so 0.99 * 5 is 4.95, not 4.9499999. Raises
    ValueError when no n >= 1 is admissible (e.g. log with beta < 200/99 ~ 2.02).
    """
    check_kind(kind)
    check_positive("beta", beta)
    b = sp.Rational(repr(beta)) if isinstance(beta, float) else sp.Rational(beta)
    top = sp.floor(99 * b) if kind == "lin" else sp.floor(sp.Rational(99, 100) * b) - 1
    if top < 1:
        need = "beta >= 1/99" if kind == "lin" else "beta >= 200/99 (about 2.02)"
        raise ValueError(f"beta={beta} admits no rate n >= 1 for kind {kind!r}; Theorem 5.1 needs {need}")
    return int(top)


def ffn_error() -> sp.Expr:
    """E_FFN = ||f||_B / sqrt(m) (Lemma G.6), up to the logarithmic factors the paper's
    O-tilde hides and leaves unspecified."""
    return B / sp.sqrt(m)


def thm31_total_error(kind: str, M_: int) -> sp.Expr:
    """Theorem 3.1's whole bound: E_FFN + ||f||_Lip E_attn (logarithmic factors dropped)."""
    return ffn_error() + Lip * thm31_attention_error(kind, M_)


# -----------------------------------------------------------------------------
# checking a bound so that the check can fail


def _positive_array(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be a non-empty sequence of finite numbers > 0")
    return arr


def fit_constant(errors: Sequence[float], xs: Sequence[Any], rate_fn: Callable[[Any], float], fit_on: Any) -> float:
    """The smallest C with errors[i] <= C * rate_fn(xs[i]) on the fit points.

    fit_on selects the fit points: a sequence of indices or a boolean mask. It must
    leave at least one point out, since a constant fitted on every point and then
    checked on those same points proves nothing; the caller asserts the bound on the
    rest (see `bound_holds`).
    """
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if errors.size == 0 or not np.all(np.isfinite(errors)) or np.any(errors < 0):
        raise ValueError("errors must be a non-empty sequence of finite numbers >= 0")
    if len(xs) != errors.size:
        raise ValueError(f"xs must have one entry per error ({errors.size}), got {len(xs)}")
    mask = _fit_mask(fit_on, errors.size)
    rates = _positive_array("rate_fn(xs)", [rate_fn(x) for x in xs])
    return float(np.max(errors[mask] / rates[mask]))


def bound_holds(errors: Sequence[float], xs: Sequence[Any], rate_fn: Callable[[Any], float], C_: float) -> np.ndarray:
    """Boolean array: errors[i] <= C * rate_fn(xs[i])."""
    C_ = check_positive("C", C_)
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if len(xs) != errors.size:
        raise ValueError(f"xs must have one entry per error ({errors.size}), got {len(xs)}")
    rates = _positive_array("rate_fn(xs)", [rate_fn(x) for x in xs])
    return errors <= C_ * rates


def _fit_mask(fit_on: Any, size: int) -> np.ndarray:
    sel = np.asarray(fit_on)
    if sel.dtype == bool:
        if sel.shape != (size,):
            raise ValueError(f"fit_on as a mask must have length {size}, got shape {sel.shape}")
        mask = sel.copy()
    else:
        if sel.size == 0 or not np.issubdtype(sel.dtype, np.integer):
            raise ValueError("fit_on must be a boolean mask or a non-empty sequence of integer indices")
        if sel.min() < -size or sel.max() >= size:
            raise ValueError(f"fit_on indices must lie in [0, {size}), got {sel.tolist()}")
        mask = np.zeros(size, dtype=bool)
        mask[sel] = True
    if not mask.any():
        raise ValueError("fit_on selects no point")
    if mask.all():
        raise ValueError("fit_on must leave at least one point out to check the bound on")
    return mask


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log y against log x (the exponent of a power law)."""
    x = _positive_array("xs", xs)
    y = _positive_array("ys", ys)
    if x.size != y.size:
        raise ValueError(f"xs and ys must have equal lengths, got {x.size} and {y.size}")
    if x.size < 2 or np.ptp(np.log(x)) == 0:
        raise ValueError("xs must hold at least two distinct values")
    lx, ly = np.log(x), np.log(y)
    lx0 = lx - lx.mean()
    return float(lx0 @ (ly - ly.mean()) / (lx0 @ lx0))


# ----------------------------------------------------------------------------------
# Task II (book/adaptive-memory.md): Theorems 4.1, 4.4 and Proposition 4.5


def thm44_depth(K: int, M_: int) -> int:
    """Theorem 4.4's depth L = K + 1 + 1{M >= K + 1} (L = 2 for Theorem 4.1's K = 0)."""
    M_ = check_int("M", M_, minimum=1)
    K = check_int("K", K, minimum=0, maximum=M_)
    return K + 1 + int(M_ >= K + 1)


def thm44_attention_error(kind: str, K: int, M_: int) -> sp.Expr:
    """Theorem 4.4: C/H^n sqrt(sum_{l<=K} w(T_l)^{2(n+1)} + (sum_{l>K} w(T_l))^{2(n+1)}).

    w(T) = e^{T/100} (lin) or T^{101/100} (log), so w^{2(n+1)} is the paper's
    e^{0.02(n+1)T} or T^{2.02(n+1)}. Nested memories get a layer, and all H heads, each;
    the others share one layer, as in Theorem 3.1. K = 0 is Theorem 4.1 (the same
    E_attn as Theorem 3.1), K = M is Proposition 4.5.
    """
    check_kind(kind)
    M_ = check_int("M", M_, minimum=1)
    K = check_int("K", K, minimum=0, maximum=M_)
    w = [memory_weight(kind, t) for t in memory_lengths(M_)]
    nested = sp.Add(*(wi ** (2 * (n + 1)) for wi in w[:K]))
    shared = sp.Add(*w[K:]) ** (2 * (n + 1)) if K < M_ else sp.Integer(0)
    return C / H**n * sp.sqrt(nested + shared)


def width_cost(kind: str, M_: int) -> tuple[sp.Symbol, ...]:
    """Symbols a_1..a_M: ||g_i||_B^2 (lin) or ||log g_i||_B^2 T_i^2 (log), one per memory."""
    check_kind(kind)
    M_ = check_int("M", M_, minimum=1)
    return sp.symbols(f"a_1:{M_ + 1}", positive=True)


def width_needed(kind: str, K: int, M_: int) -> sp.Expr:
    """Theorem 4.4's width condition, up to logarithms: max_{i<=K} a_i  v  sum_{i>K} a_i.

    K = 0 is Theorem 4.1 (sum_i a_i); K = M is Proposition 4.5 (max_i a_i). The lag
    functions a layer's FFN computes together add up; those in layers of their own do not.
    """
    K = check_int("K", K, minimum=0, maximum=check_int("M", M_, minimum=1))
    a = width_cost(kind, M_)
    shared = sp.Add(*a[K:]) if K < M_ else sp.Integer(0)
    return sp.Max(*a[:K], shared) if K else shared


def heads_needed(kind: str, K: int, M_: int) -> sp.Expr:
    """H with thm44_attention_error = epsilon: (C S / epsilon)^{1/n}, S the square root."""
    S = sp.powsimp(thm44_attention_error(kind, K, M_) * H**n / C)  # free of H: E = C S / H^n
    H_ = (C * S / eps) ** (1 / n)
    assert sp.simplify(thm44_attention_error(kind, K, M_).subs(H, H_) - eps) == 0  # it solves E = epsilon
    return H_


def prop45_head_ratio(kind: str, M_: int) -> sp.Expr:
    """(H needed by M + 1 layers / H needed by 2 layers)^{2n}, derived from the two rates.

    = sum_i w_i^{2(n+1)} / (sum_i w_i)^{2(n+1)}. The paper prints sum b_i^2 / (sum b_i)^2,
    which with b_i = w_i^{n+1} is larger (``prop45_printed_ratio``): the derived saving
    is bigger than the printed one.
    """
    deep, shallow = heads_needed(kind, M_, M_), heads_needed(kind, 0, M_)
    return sp.simplify(sp.powsimp((deep / shallow) ** (2 * n), force=True))


def prop45_printed_ratio(kind: str, M_: int) -> sp.Expr:
    """The paper's printed head ratio, sum b_i^2 / (sum b_i)^2, read with b_i = w(T_i)^{n+1}."""
    b = [memory_weight(kind, t) ** (n + 1) for t in memory_lengths(M_)]
    return sp.Add(*(bi**2 for bi in b)) / sp.Add(*b) ** 2
