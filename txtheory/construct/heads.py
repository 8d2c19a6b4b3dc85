"""Head groups: what every construction of a DP-free attention layer shares.

Part of ``txtheory.construct``. A group of DP-free heads with rates p_h = beta_h and value
scales v_h realises the kernel sum_h v_h exp(p_h phi(s)) (normalisation-free), or the same
with each head divided by its softmax normaliser Z_h(t). This module builds such groups
(``head_group``, for ``book/kernels.md``), reads a layer's kernel back
(``impulse_response``), splits heads over memories (``head_allocation``, Theorem 3.1's
rule), turns a kernel fit into RPE parameters (``rates_to_raw``, ``value_scales``), and
evaluates the kernel a group realises at position t with a rigorous rounding allowance
(``group_kernel``), which the certificates of ``one_layer.Construction`` rest on.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import mpmath
import numpy as np
import torch

from txtheory import kinds, rpe as rpe_mod
from txtheory._checks import check_choice, check_int
from txtheory.attention import MultiHeadAttention
from txtheory.kernels import KernelFit

ALLOCATIONS = ("paper", "equal")
_U = 2.0**-53  # unit roundoff of float64


# ------------------------------------------------------------------------------------
# one head group as a layer (book/kernels.md)


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
    if not isinstance(layer, MultiHeadAttention):
        raise ValueError(f"layer must be an attention.MultiHeadAttention, got {type(layer).__name__}")
    if layer.d_model != 1:
        raise ValueError(f"layer must have d_model = 1 to have a scalar kernel, got {layer.d_model}")
    length = check_int("length", length, minimum=1)
    impulse = torch.zeros(1, length, 1, dtype=layer.W_V.dtype)
    impulse[0, 0, 0] = 1.0
    with torch.no_grad():
        return layer(impulse)[0, :, 0].double().numpy()


# ------------------------------------------------------------------------------------
# heads for several memories (App. B)


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
    kinds.check_kind(rpe, "rpe")
    M = len(memories)
    H = check_int("n_heads", n_heads, minimum=max(1, M))
    if M == 0:
        return (), ()
    if not isinstance(allocation, str):
        return _given_allocation(allocation, M, H)
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


def _given_allocation(allocation: Any, M: int, H: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
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


# ------------------------------------------------------------------------------------
# a kernel fit as RPE parameters


def rates_to_raw(fit: KernelFit, label: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The fit's rates as p_raw (softplus parametrisation), and the p the model will use.
    ``label`` names the kernel in the error message (e.g. "memory T=5")."""
    rates = [float(r) for r in fit.rates]
    if any(not (math.isfinite(r) and r > 0) for r in rates):
        raise ValueError(f"the kernel fit for {label} has rates {rates}; an RPE rate must be finite and > 0")
    beta = torch.tensor(rates, dtype=torch.float64)
    raw = rpe_mod.inverse_positive(beta)
    p = rpe_mod.positive(raw)
    if not (torch.isfinite(raw).all() and (p > 0).all() and torch.allclose(p, beta, rtol=1e-9, atol=0)):
        raise ValueError(
            f"the kernel fit for {label} has rates {rates} that p = softplus(p_raw) cannot represent in float64"
        )
    return raw, p


def value_scales(fit: KernelFit, p: torch.Tensor, rpe: str, normalized: bool, length: int, label: str) -> torch.Tensor:
    """α_h Z_h: the value scale of each head, (H_k,) float64.

    With softmax attention head h is divided by Z_h(t) = Σ_{s=first}^{t} e^{p_h φ(s)};
    multiplying its value by Z_h = Z_h(length - 1) undoes that at the window's last
    position, so the group realises the fit's kernel exactly there. Normalisation-free: Z_h = 1.
    """
    alpha = torch.tensor([float(a) for a in fit.coeffs], dtype=torch.float64)
    if normalized:
        lags = torch.arange(kinds.FIRST_LAG[rpe], length, dtype=torch.float64)
        Z = torch.exp(p[:, None] * kinds.phi(lags, rpe)[None, :]).sum(1)
    else:
        Z = torch.ones_like(alpha)
    scale = alpha * Z
    if not torch.isfinite(scale).all():
        raise ValueError(f"the kernel fit for {label} has coefficients that overflow float64")
    return scale


# ------------------------------------------------------------------------------------
# the kernel a group realises at position t, with its rounding allowance


def group_kernel_f64(p: np.ndarray, v: np.ndarray, rpe: str, normalized: bool, t: int) -> tuple[np.ndarray, np.ndarray]:
    """κ^{(t)}(s), s = 0..t, of heads with rates p and value scales v, in float64, and per
    lag an upper bound on its rounding error."""
    s = np.arange(t + 1, dtype=np.float64)
    on = s >= kinds.FIRST_LAG[rpe]
    phi = np.where(on, kinds.phi(np.where(on, s, 1.0), rpe), 0.0)
    arg = np.outer(p, phi)  # (H_k, t+1): p_h φ(s), rounded with error <= |arg| u (+ log's)
    w = np.where(on[None, :], np.exp(arg), 0.0)
    rel = (np.abs(arg) + 4.0) * _U  # relative error of each exp(p φ(s))
    if normalized:
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


def group_kernel_mp(p: np.ndarray, v: np.ndarray, rpe: str, normalized: bool, t: int) -> tuple[list, int]:
    """The same kernel in mpmath, exact for these float64 parameters (to ~1e-25), and the
    working digits used."""
    big = max([abs(float(x)) for x in v] + [1.0])
    dps = 30 + int(math.log10(big))
    with mpmath.workdps(dps):
        start = kinds.FIRST_LAG[rpe]
        ly = [-kinds.phi(mpmath.mpf(s), rpe) for s in range(start, t + 1)]
        out = [mpmath.mpf(0)] * (t + 1)
        for ph, vh in zip(p, v):
            w = [mpmath.exp(-mpmath.mpf(float(ph)) * y) for y in ly]
            Z = mpmath.fsum(w) if normalized else mpmath.mpf(1)
            scale = mpmath.mpf(float(vh)) / Z if Z > 0 else mpmath.mpf(0)  # log, t = 0: no key
            for i, wi in enumerate(w):
                out[start + i] += scale * wi
    return out, dps
