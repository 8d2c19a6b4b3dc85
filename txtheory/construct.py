"""The proofs' weights: `model.Transformer` instances that realise the paper's constructions.

Explained in ``book/fixed-memory.md`` ("Task I: fixed, long but sparse memory"), which
builds Theorem 3.1's model here, runs it, and sets its measured sup-norm error against
the bound that the construction itself certifies. Later chapters add Theorems 4.1, 4.4,
5.1 and Propositions 4.2(A), 4.3 to this module; each gets one public builder that
returns a :class:`Construction`.

Theorem 3.1 (App. B of the paper), as built by :func:`fixed_memory_transformer`
--------------------------------------------------------------------------------
Target: y_t = f(x_{t-lags[0]}, ..., x_{t-lags[n-1]}) (``targets.FixedMemoryTarget``);
the non-zero lags, sorted, are the memories T_1 < ... < T_M. The model has one layer,
DP-free attention (W_Q = W_K = 0) and a readout FFN:

* Embedding, D = (M+1) d: W_E = (I_d, 0, ..., 0)ᵀ, b_E = 0. Block 0 of the residual
  stream holds x_t; block k (k = 1..M) is empty until attention writes x_{t-T_k} there.
* Heads: memory k owns a group G_k of H_k heads, sum_k H_k = H. Head h in G_k has rate
  p_h = β_h and value matrix W_V^h = α_h Z_h E_{k<-0} (E_{k<-0} copies block 0 into
  block k); W_O = I_D. The group then writes into block k the convolution of x with
  the kernel κ_k(s) = sum_{h in G_k} α_h e^{-β_h s} (lin) or α_h s^{-β_h} (log), which
  approximates the delta 1{s = T_k}: the rates and coefficients are a
  ``kernels.fit_free`` fit (method="free") or the paper's grid (method="grid",
  Lemmas F.1 / F.4).
* Z_h undoes the softmax's normaliser. With ``normalized=True`` the softmax at position
  t divides head h by Z_h(t) = sum_{j=start}^{t} e^{p_h φ(j)} (start = 0 lin, 1 log), which
  depends on t on a finite window; we take Z_h = Z_h(length - 1), the normaliser at the
  window's LAST position. So the kernel is realised exactly at t = length - 1, and at an
  earlier t it is κ^{(t)}(s) = sum_h α_h e^{p_h φ(s)} Z_h / Z_h(t): every head is scaled up
  by Z_h / Z_h(t) >= 1 (most for slowly decaying heads), and the error is larger there
  (:meth:`Construction.bound_at` gives the bound at any t). With ``normalized=False``
  (the paper's normalisation-free attention) Z_h = 1 and the kernel is realised exactly
  at every t.
* Readout (last FFN, no residual): a ``ReLUReadout`` f(z) = sum_k a_k ReLU(w_kᵀz + b_k)
  is copied exactly (width K), its input slots (the tokens at ``target.lags``, lag 0 =
  block 0) mapped onto their blocks; a ``LinearReadout`` f(z) = wᵀz becomes
  ReLU(wᵀz) - ReLU(-wᵀz) (width 2c). So E_FFN = 0, and all the error is attention's.

The bound. Let |x| <= x_max elementwise and t >= max(lags). Block 0 is exact (the
residual). Block k holds sum_{s=0}^{t} κ_k^{(t)}(s) x_{t-s} in place of x_{t-T_k}, so each
of its coordinates is off by |sum_s (κ_k^{(t)}(s) - 1{s=T_k}) x_{t-s}| <= x_max e_k(t) with
e_k(t) = sum_{s=0}^{t} |κ_k^{(t)}(s) - 1{s=T_k}|: only lags inside the window count, so
e_k(t) is at most the fit's whole l1 error (for normalized=False). The readout's input
is therefore off by at most x_max max_k e_k(t) in the sup norm, and a readout with
|f(z) - f(z')| <= Lip ||z - z'||_inf moves by at most Lip times that:

    |TF_t(X) - H_t(X)| <= Lip · x_max · max_k e_k(t),   Lip = max_j sum_k |a_jk| ||w_k||_1
                                                     (ReLU), max_j ||w_j||_1 (linear).

``Construction.bound`` is this at t = length - 1 with x_max = 1. For normalized=False,
e_k(t) grows with t (more lags in the sum), so it bounds every position of the window;
for normalized=True use ``bound_at(t)``. This is the paper's E_FFN + ||f||_Lip E_attn
with E_FFN = 0. It holds in exact arithmetic for the model's actual float64 parameters:
e_k is evaluated in float64 plus a rigorous allowance for that evaluation's own
rounding, or in mpmath where the allowance would matter. The model's float64 forward
pass adds its own rounding, of order u·sum_h |W_V^h| (u = 1.1e-16), which the bound
does not cover: free-rate fits reach coefficients of 1e10-1e13, and there the forward
pass, not the kernel, limits the accuracy. ``Construction.float64_noise`` estimates it
(pessimistically: about ten times the rounding error observed on small windows).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import mpmath
import numpy as np
import torch

from . import kernels, rpe as rpe_mod
from ._checks import check_bool, check_choice, check_int
from .kernels import KernelFit
from .attention import MultiHeadAttention
from .model import Transformer, TransformerConfig
from .targets import FixedMemoryTarget, LinearReadout, ReLUReadout

__all__ = [
    "Construction",
    "fixed_memory_transformer",
    "head_allocation",
    "readout_lipschitz",
    "METHODS",
    "ALLOCATIONS",
]

METHODS = ("free", "grid")
ALLOCATIONS = ("paper", "equal")
_START = {"lin": 0, "log": 1}  # first lag a head of this RPE type attends to
_U = 2.0**-53  # unit roundoff of float64


# ------------------------------------------------------------------------------------
# head allocation (App. B)


def head_allocation(
    memories: Sequence[int], n_heads: int, rpe: str = "lin", allocation: Any = "paper"
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Split ``n_heads`` heads over the memories T_1..T_M: returns (H_k, ideal H_k).

    ``allocation="paper"``: the paper's optimum (App. B; derived in
    ``rates.derive_allocation``) H_k = w_k H / sum_j w_j with w_k = e^{0.01 T_k} (lin) or
    T_k^{1.01} (log). The real-valued ideal is rounded by largest remainders (ties to
    the longer memory) so that the H_k sum to H; a memory rounded to 0 heads gets 1,
    taken from the memory whose count most exceeds its ideal. ``"equal"``: H // M each,
    the remainder one each to the longest memories. A sequence of M positive integers
    summing to H is used as given. Every H_k >= 1, so n_heads >= M is required.
    """
    memories = tuple(check_int(f"memories[{i}]", T, minimum=1) for i, T in enumerate(memories))
    check_choice("rpe", rpe, rpe_mod.RPE_TYPES)
    M = len(memories)
    H = check_int("n_heads", n_heads, minimum=max(1, M))
    if M == 0:
        return (), ()
    if not isinstance(allocation, str):
        try:
            given = tuple(allocation)
        except TypeError:
            raise ValueError(
                f"allocation must be one of {ALLOCATIONS} or a sequence of M={M} head counts, got {allocation!r}"
            ) from None
        if len(given) != M:
            raise ValueError(f"allocation must hold one head count per memory (M={M}), got {len(given)}")
        given = tuple(check_int(f"allocation[{i}]", h, minimum=1) for i, h in enumerate(given))
        if sum(given) != H:
            raise ValueError(f"allocation must sum to n_heads={H}, got {sum(given)}")
        return given, tuple(float(h) for h in given)
    check_choice("allocation", allocation, ALLOCATIONS)
    if allocation == "equal":
        base, extra = divmod(H, M)
        counts = [base + (1 if k >= M - extra else 0) for k in range(M)]
        return tuple(counts), tuple(H / M for _ in range(M))
    # weights relative to the largest, so e^{0.01 T} cannot overflow for huge T
    if rpe == "lin":
        Tmax = max(memories)
        w = [math.exp(0.01 * (T - Tmax)) for T in memories]
    else:
        w = [T**1.01 for T in memories]
    ideal = [H * wk / sum(w) for wk in w]
    counts = [math.floor(v) for v in ideal]
    order = sorted(range(M), key=lambda k: (ideal[k] - counts[k], k), reverse=True)
    for k in order[: H - sum(counts)]:
        counts[k] += 1
    for k in range(M):
        if counts[k] == 0:
            donor = max((j for j in range(M) if counts[j] > 1), key=lambda j: (counts[j] - ideal[j], j))
            counts[donor] -= 1
            counts[k] = 1
    return tuple(counts), tuple(ideal)


# ------------------------------------------------------------------------------------
# readouts as FFN weights


def _readout_relu_form(readout: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W: (m, n_in), b: (m,), a: (c, m)) with f(z) = a ReLU(W z + b), exactly."""
    if isinstance(readout, ReLUReadout):
        return (readout.W.to(torch.float64), readout.b.to(torch.float64), readout.a.to(torch.float64))
    if isinstance(readout, LinearReadout):
        w = readout.weights.to(torch.float64)  # (c, n_in)
        c = w.shape[0]
        eye = torch.eye(c, dtype=torch.float64)
        # u = ReLU(u) - ReLU(-u), exactly in floating point too
        return torch.cat([w, -w]), torch.zeros(2 * c, dtype=torch.float64), torch.cat([eye, -eye], dim=1)
    raise ValueError(
        "target.readout must be a targets.ReLUReadout or targets.LinearReadout (an FFN can copy "
        f"those exactly), got {type(readout).__name__}"
    )


def readout_lipschitz(readout: Any) -> float:
    """Lip with |f(z) - f(z')|_inf <= Lip ||z - z'||_inf: max_j sum_k |a_jk| ||w_k||_1 for
    a ReLUReadout (ReLU is 1-Lipschitz), max_j ||w_j||_1 for a LinearReadout."""
    if isinstance(readout, LinearReadout):
        return float(readout.weights.to(torch.float64).abs().sum(1).max())
    W, _, a = _readout_relu_form(readout)
    return float((a.abs() @ W.abs().sum(1)).max())


# ------------------------------------------------------------------------------------
# the result


@dataclass(eq=False)
class Construction:
    """A constructed model and what the construction certifies about it.

    ``model``: the ``Transformer`` (float64). ``memories``: the lags T_1 < ... < T_M;
    memory i (0-based) is written into block i+1 by the heads ``groups[i]`` (a slice of
    head indices). ``allocation``: the H_k; ``ideal_allocation``: the paper's real-valued
    H_k before rounding. ``fits``: the KernelFit of each memory (its ``l1`` is over the
    fit's own lags, tail included). ``l1_errors``: e_k(length-1), the l1 error of the
    kernel the model realises at the last position, over the lags 0..length-1 it sees.
    ``lipschitz``: the readout's Lip. ``bound``: Lip · max_k e_k(length-1), the sup-norm
    error bound at the last position for |x| <= 1 (every position if not normalized).
    ``float64_noise``: a rough estimate (not a bound) of the float64 forward pass's own
    rounding error, u · Lip · max_k sum_{h in G_k} |W_V^h| · (2 + log2 length).
    """

    model: Transformer = field(repr=False)
    theorem: str
    memories: tuple[int, ...]
    groups: tuple[slice, ...]
    allocation: tuple[int, ...]
    ideal_allocation: tuple[float, ...]
    fits: tuple[KernelFit, ...]
    l1_errors: tuple[float, ...]
    lipschitz: float
    bound: float
    float64_noise: float
    target: FixedMemoryTarget = field(repr=False)
    length: int = 0
    rpe: str = "lin"
    normalized: bool = True
    method: str = "free"

    @property
    def first_valid(self) -> int:
        return self.target.first_valid

    def _head_params(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rates p_h and value scales v_h (the block k <- block 0 entry of W_O W_V^h)."""
        attn = self.model.attn[0]
        d = self.model.config.d_in
        g = self.groups[k]
        with torch.no_grad():
            p = attn.p.detach()[g].cpu().numpy().astype(np.float64)
            W_OV = attn._W_OV().detach()[g]  # (H_k, D, D)
            v = W_OV[:, (k + 1) * d, 0].cpu().numpy().astype(np.float64)
        return p, v

    def kernel(self, k: int, t: int | None = None) -> np.ndarray:
        """κ_k^{(t)}(s) for s = 0..t: the kernel memory k's heads realise at position t
        (default: the last position of the window), read from the model's parameters.
        Evaluated in mpmath where float64 cannot resolve the heads' cancellation."""
        k = check_int("k", k, minimum=0, maximum=len(self.memories) - 1)
        t = self.length - 1 if t is None else check_int("t", t, minimum=0)
        kern, slack = self._kernel_f64(k, t)
        if slack.sum() > 1e-13:
            return np.array([float(v) for v in self._kernel_mp(k, t)[0]])
        return kern

    def _kernel_f64(self, k: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        """The kernel in float64, and per lag an upper bound on its rounding error."""
        p, v = self._head_params(k)
        s = np.arange(t + 1, dtype=np.float64)
        on = s >= _START[self.rpe]
        phi = np.where(on, -s if self.rpe == "lin" else -np.log(np.where(on, s, 1.0)), 0.0)
        arg = np.outer(p, phi)  # (H_k, t+1): p_h φ(s), rounded with error <= |arg| u (+ log's)
        w = np.where(on[None, :], np.exp(arg), 0.0)
        rel = (np.abs(arg) + 4.0) * _U  # relative error of each exp(p φ(s))
        if self.normalized:
            Z = w.sum(1)  # Z_h(t): a sum of positive terms
            safe = np.where(Z > 0, Z, 1.0)
            rel_Z = (w * rel).sum(1) / safe + (t + 2) * _U
            terms = v[:, None] * w / safe[:, None]
            rel = rel + rel_Z[:, None] + 2 * _U
        else:
            terms = v[:, None] * w
            rel = rel + _U
        slack = 1.01 * ((rel + (len(p) + 1) * _U) * np.abs(terms)).sum(0)
        return terms.sum(0), slack

    def _kernel_mp(self, k: int, t: int) -> tuple[list, int]:
        """The kernel in mpmath, exact for the model's float64 parameters (to ~1e-25)."""
        p, v = self._head_params(k)
        big = max([abs(float(x)) for x in v] + [1.0])
        dps = 30 + int(math.log10(big))
        with mpmath.workdps(dps):
            start = _START[self.rpe]
            ly = [mpmath.mpf(s) if self.rpe == "lin" else mpmath.log(s) for s in range(max(start, 0), t + 1)]
            out = [mpmath.mpf(0)] * (t + 1)
            for ph, vh in zip(p, v):
                w = [mpmath.exp(-mpmath.mpf(float(ph)) * y) for y in ly]
                Z = mpmath.fsum(w) if self.normalized else mpmath.mpf(1)
                scale = mpmath.mpf(float(vh)) / Z if Z > 0 else mpmath.mpf(0)  # log, t = 0: no key
                for i, wi in enumerate(w):
                    out[start + i] += scale * wi
        return out, dps

    def kernel_errors(self, t: int | None = None) -> tuple[float, ...]:
        """e_k(t) = sum_{s=0}^{t} |κ_k^{(t)}(s) - 1{s=T_k}| for every memory k, as upper
        bounds: float64 plus its rounding allowance, or mpmath where that allowance
        would matter (more than 1e-12, or 0.1% of the error)."""
        t = self.length - 1 if t is None else check_int("t", t, minimum=self.first_valid)
        out = []
        for k, T in enumerate(self.memories):
            kern, slack = self._kernel_f64(k, t)
            kern[T] -= 1.0
            err, allow = math.fsum(np.abs(kern)), math.fsum(slack)
            if allow > max(1e-12, 1e-3 * err):
                vals, dps = self._kernel_mp(k, t)
                with mpmath.workdps(dps):
                    vals[T] -= 1
                    err, allow = float(mpmath.fsum(abs(x) for x in vals)), 0.0
            out.append((err + allow) * (1 + 1e-12))
        return tuple(out)

    def bound_at(self, t: int, x_max: float = 1.0) -> float:
        """Lip · x_max · max_k e_k(t): the sup-norm error bound at position t >= max(lags)
        for inputs with |x| <= x_max elementwise (any t, also beyond ``length``: the
        model is then run on a longer window)."""
        t = check_int("t", t, minimum=self.first_valid)
        x_max = float(x_max)
        if not (math.isfinite(x_max) and x_max >= 0):
            raise ValueError(f"x_max must be a finite number >= 0, got {x_max!r}")
        errs = self.kernel_errors(t)
        return self.lipschitz * x_max * (max(errs) if errs else 0.0)


# ------------------------------------------------------------------------------------
# Theorem 3.1


def _fit_memory(T: int, H_k: int, rpe: str, method: str, window: int, dps: int, options: dict) -> KernelFit:
    if method == "free":
        return kernels.fit_free(kernels.Delta(T), H_k, rpe, window=window, **options)
    lemma = kernels.lemma_f1 if rpe == "lin" else kernels.lemma_f4
    return lemma(T, H_k, window=window, dps=dps, **options)


def _rates_to_raw(fit: KernelFit, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fit's rates as p_raw (softplus parametrisation), and the p the model will use."""
    rates = [float(r) for r in fit.rates]
    if any(not (math.isfinite(r) and r > 0) for r in rates):
        raise ValueError(f"the kernel fit for memory T={T} has rates {rates}; an RPE rate must be finite and > 0")
    beta = torch.tensor(rates, dtype=torch.float64)
    raw = rpe_mod.inverse_positive(beta)
    p = rpe_mod.positive(raw)
    if not (torch.isfinite(raw).all() and (p > 0).all() and torch.allclose(p, beta, rtol=1e-9, atol=0)):
        raise ValueError(
            f"the kernel fit for memory T={T} has rates {rates} that p = softplus(p_raw) cannot represent in float64"
        )
    return raw, p


def fixed_memory_transformer(
    target: FixedMemoryTarget,
    n_heads: int,
    rpe: str = "lin",
    *,
    length: int,
    method: str = "free",
    normalized: bool = True,
    allocation: Any = "paper",
    window: int | None = None,
    dps: int = 50,
    fit_options: dict | None = None,
) -> Construction:
    """Theorem 3.1's one-layer DP-free Transformer for a fixed-memory target (App. B).

    target: a ``FixedMemoryTarget`` with a ``ReLUReadout`` or ``LinearReadout``.
    n_heads: H >= M (one head at least per non-zero lag). rpe: "lin" or "log".
    length: the window T the model will run on (> max(lags)); with normalized=True the
    softmax is undone for the window's last position (see the module docstring).
    method: "free" (``kernels.fit_free``, free rates in float64) or "grid" (the proof's
    rate grids, Lemma F.1 / F.4, solved in mpmath with ``dps`` digits; their
    coefficients reach 1e20 and beyond, so the float64 model does not realise them).
    allocation: "paper", "equal" or M head counts (see :func:`head_allocation`).
    window: the last lag of the kernel fit's least-squares range; default length - 1,
    the lags the model sees. fit_options: extra keyword arguments for ``kernels.fit_free``
    (e.g. restarts, seed) or for ``kernels.lemma_f1/f4`` (weight).
    Returns a :class:`Construction`; ``bound`` is the certified sup-norm error.
    """
    if not isinstance(target, FixedMemoryTarget):
        raise ValueError(f"target must be a targets.FixedMemoryTarget, got {type(target).__name__}")
    W_f, b_f, a_f = _readout_relu_form(target.readout)
    check_choice("rpe", rpe, rpe_mod.RPE_TYPES)
    check_choice("method", method, METHODS)
    check_bool("normalized", normalized)
    if isinstance(allocation, str):
        check_choice("allocation", allocation, ALLOCATIONS)
    max_lag = max(target.lags)
    try:
        length = check_int("length", length, minimum=max_lag + 1)
    except ValueError:
        raise ValueError(
            f"length must be an integer > the largest lag {max_lag} (the window must hold the whole memory), "
            f"got {length!r}"
        ) from None
    memories = tuple(sorted(lag for lag in target.lags if lag > 0))
    M = len(memories)
    H = check_int("n_heads", n_heads, minimum=1)
    if H < M:
        raise ValueError(
            f"n_heads must be >= the number of memories M = {M} (one head at least per non-zero lag "
            f"{memories}), got {H}"
        )
    window = length - 1 if window is None else check_int("window", window, minimum=max(max_lag, 1))
    dps = check_int("dps", dps, minimum=15)
    if fit_options is None:
        fit_options = {}
    elif not isinstance(fit_options, dict):
        raise ValueError(f"fit_options must be a dict of keyword arguments or None, got {type(fit_options).__name__}")
    counts, ideal = head_allocation(memories, H, rpe, allocation)

    d, c = target.d_in, target.d_out
    D = (M + 1) * d
    m = W_f.shape[0]
    config = TransformerConfig(
        d_in=d, d_model=D, n_layers=1, n_heads=H, ffn_width=m, d_out=c, rpe=rpe, score="free",
        normalized=normalized, dtype=torch.float64,
    )
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten: leave the global RNG alone
        model = Transformer(config)
    attn, ffn = model.attn[0], model.ffn[0]

    # heads: group k writes block k+1 (0-based memory k)
    fits, groups, raws = [], [], torch.zeros(H, dtype=torch.float64)
    W_V = torch.zeros(H, D, D, dtype=torch.float64)  # (H, Dv = D, D)
    eye = torch.eye(d, dtype=torch.float64)
    first = 0
    for k, (T, H_k) in enumerate(zip(memories, counts)):
        fit = _fit_memory(T, H_k, rpe, method, window, dps, fit_options)
        raw, p = _rates_to_raw(fit, T)
        alpha = torch.tensor([float(a) for a in fit.coeffs], dtype=torch.float64)
        if normalized:  # Z_h = Z_h(length - 1), from the rate the model will use
            lags = torch.arange(_START[rpe], length, dtype=torch.float64)
            phi = -lags if rpe == "lin" else -torch.log(lags)
            Z = torch.exp(p[:, None] * phi[None, :]).sum(1)
        else:
            Z = torch.ones_like(alpha)
        scale = alpha * Z
        if not torch.isfinite(scale).all():
            raise ValueError(f"the kernel fit for memory T={T} has coefficients that overflow float64")
        g = slice(first, first + H_k)
        raws[g] = raw
        rows = slice((k + 1) * d, (k + 2) * d)
        W_V[g, rows, 0:d] = scale[:, None, None] * eye  # α_h Z_h E_{k+1 <- 0}
        fits.append(fit)
        groups.append(g)
        first += H_k

    # readout input slot i (the token at lag target.lags[i]) -> its block
    block_of = {0: 0, **{T: k + 1 for k, T in enumerate(memories)}}
    W_hidden = torch.zeros(m, D, dtype=torch.float64)
    for i, lag in enumerate(target.lags):
        b = block_of[lag]
        W_hidden[:, b * d:(b + 1) * d] = W_f[:, i * d:(i + 1) * d]

    with torch.no_grad():
        model.embed.weight.zero_()
        model.embed.weight[:d, :d] = eye  # W_E = (I_d, 0)ᵀ: (D, d)
        model.embed.bias.zero_()
        attn.p_raw.copy_(raws)
        attn.W_V.copy_(W_V)
        attn.W_O.copy_(torch.eye(D, dtype=torch.float64))
        ffn.hidden.weight.copy_(W_hidden)
        ffn.hidden.bias.copy_(b_f)
        ffn.out.weight.copy_(a_f)

    lip = readout_lipschitz(target.readout)
    V = W_V[:, d:, 0].abs().amax(1) if M else torch.zeros(0)  # |v_h|, one per head
    coeff_sum = max((float(V[g].sum()) for g in groups), default=0.0)
    noise = _U * lip * coeff_sum * (2 + math.log2(length))
    con = Construction(
        model=model, theorem="Theorem 3.1", memories=memories, groups=tuple(groups),
        allocation=counts, ideal_allocation=ideal, fits=tuple(fits), l1_errors=(), lipschitz=lip,
        bound=0.0, float64_noise=noise, target=target, length=length, rpe=rpe,
        normalized=normalized, method=method,
    )
    con.l1_errors = con.kernel_errors(length - 1)
    con.bound = lip * (max(con.l1_errors) if M else 0.0)
    return con


# ---------------------------------------------------------------------------------------
# One head group on its own (book/kernels.md): the layer that realises a kernel fit


def head_group(fit: KernelFit, dtype: torch.dtype = torch.float64) -> MultiHeadAttention:
    """A normalisation-free DP-free attention layer (d_model = 1) whose heads realise ``fit``.

    Head h gets rate p_h = β_h and value weight W_V^h = α_h, and W_O = 1, so the layer
    computes y_t = Σ_s φ(s) x_{t-s} with φ the fit's kernel. Explained in
    ``book/kernels.md`` ("Why kernels").
    """
    if not isinstance(fit, KernelFit):
        raise ValueError(f"fit must be a kernels.KernelFit, got {type(fit).__name__}")
    check_choice("dtype", dtype, (torch.float32, torch.float64))
    H = len(fit.rates)
    layer = MultiHeadAttention(1, H, rpe=fit.kind, score="free", normalized=False, dtype=dtype)
    with torch.no_grad():
        layer.p_raw.copy_(rpe_mod.inverse_positive(torch.tensor(fit.rates_f64)))  # p_h = β_h
        layer.W_V.copy_(torch.tensor(fit.coeffs_f64).view(H, 1, 1))  # W_V^h = α_h
        layer.W_O.fill_(1.0)
    return layer


def impulse_response(layer: MultiHeadAttention, length: int) -> np.ndarray:
    """The kernel a d_model = 1 layer computes, φ(0..length-1): its response to a unit impulse
    at position 0, read at positions 0..length-1 (float64 numpy array)."""
    if layer.d_model != 1:
        raise ValueError(f"layer must have d_model = 1 to have a scalar kernel, got {layer.d_model}")
    length = check_int("length", length, minimum=1)
    impulse = torch.zeros(1, length, 1, dtype=layer.W_V.dtype)
    impulse[0, 0, 0] = 1.0
    with torch.no_grad():
        return layer(impulse)[0, :, 0].double().numpy()
