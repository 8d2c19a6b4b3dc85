"""Relative positional encodings (RPE): the paper's φ_lin and φ_log, and the encodings
practitioners use (ALiBi, T5 buckets, KERPLE-log) for comparison.

Explained in the book chapter ``book/framework.md`` ("Sequence modelling with
Transformers"), section "Relative positional encodings".

Conventions (shared by every module):

* A *lag* ``s = t - τ`` is how far the key τ lies behind the query t.  Keys in the
  future (s < 0) are never admissible: the causal mask.
* The paper's RPE adds ``p_h · φ(s)`` to the score of head h, with ``p_h > 0``. The
  kinds ``lin`` and ``log``, their first lags and φ itself are defined once, in
  ``txtheory.kinds``: a lin head weighs lag s >= 0 by e^{-p s}, a log head weighs lag
  s >= 1 by s^{-p} (φ_log(0) = -∞: a log head never attends to the current token).

* An attention layer takes any encoding through one interface: a *bias* b_h(s) over
  lags, added to head h's score. ``"paper"`` is p_h φ(s) with the layer's own trainable
  rates; :func:`relative_bias` builds the practitioners' (ALiBi, T5 buckets, KERPLE-log)
  as modules with one signature, ``bias(lags) -> (score, mask)``, the same pair that
  :func:`log_weights` returns for the paper's (``book/suggestions.md``).

* φ is -∞ outside its support.  Code that needs gradients never multiplies p by -∞
  (that would give NaN gradients); it evaluates φ on the support only and masks
  afterwards (:func:`log_weights`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import kinds
from ._checks import check_choice, check_int, check_positive



def support(lags: torch.Tensor, rpe: str) -> torch.Tensor:
    """Boolean mask of admissible lags: s >= ``kinds.FIRST_LAG[rpe]`` (0 lin, 1 log)."""
    kinds.check_kind(rpe, "rpe", kinds.ENCODINGS)
    return lags >= kinds.FIRST_LAG[rpe]


def phi(lags: torch.Tensor, rpe: str) -> torch.Tensor:
    """``kinds.phi`` on a tensor of lags, with -∞ outside the support (for plots and tests)."""
    ok = support(lags, rpe)
    s = lags.to(torch.get_default_dtype() if not lags.is_floating_point() else lags.dtype)
    safe = torch.where(ok, s, torch.ones_like(s))  # log(1) = 0: keeps log finite off-support
    value = kinds.phi(safe, rpe)
    return torch.where(ok, value, torch.full_like(value, -math.inf))


def log_weights(lags: torch.Tensor, p: torch.Tensor, rpe: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores ``p_h φ(s)`` on the support, and the support mask.

    lags: (...,) integer tensor; p: (H,) positive rates.
    Returns ``(score, mask)`` of shape (H, ...): ``score`` is finite everywhere (0 off the
    support), so gradients stay finite; ``mask`` says where it is meaningful.
    """
    ok = support(lags, rpe)
    s = torch.where(ok, lags, torch.ones_like(lags)).to(p.dtype)
    phi_s = kinds.phi(s, rpe)  # (...,)
    shape = (-1,) + (1,) * lags.ndim
    score = p.view(shape) * phi_s  # (H, ...)
    return torch.where(ok, score, torch.zeros_like(score)), ok.expand_as(score)


def kernel(lags: torch.Tensor, p: torch.Tensor, rpe: str) -> torch.Tensor:
    """Unnormalised attention weight ``exp(p_h φ(s))`` per head, 0 off the support: (H, ...)."""
    score, ok = log_weights(lags, p, rpe)
    return torch.where(ok, torch.exp(score), torch.zeros_like(score))


def bias_matrix(length: int, p: torch.Tensor, rpe: str) -> torch.Tensor:
    """The paper's R^{(h)}_{t,τ} = p_h φ(t - τ) on a window: (H, T, T), -∞ where inadmissible."""
    length = check_int("length", length, minimum=1)
    t = torch.arange(length)
    score, ok = log_weights(t[:, None] - t[None, :], p, rpe)
    return score.masked_fill(~ok, -math.inf)


# --- keeping p > 0 by parametrisation --------------------------------------------------


def positive(raw: torch.Tensor) -> torch.Tensor:
    """Map an unconstrained parameter to p > 0 (softplus), so p never needs clamping."""
    return F.softplus(raw)


def inverse_positive(p: torch.Tensor | float) -> torch.Tensor:
    """Inverse of :func:`positive`: the raw parameter that gives rate ``p`` (> 0)."""
    p = torch.as_tensor(p, dtype=torch.get_default_dtype() if not torch.is_tensor(p) else p.dtype)
    if not torch.all(p > 0):
        raise ValueError(f"rate p must be > 0, got {p.tolist()}")
    # softplus^{-1}(p) = log(e^p - 1) = p + log(1 - e^{-p}), stable for large and small p.
    return p + torch.log(-torch.expm1(-p))


def geometric_rates(n_heads: int, p_min: float, p_max: float) -> torch.Tensor:
    """``n_heads`` rates spaced geometrically from ``p_min`` to ``p_max`` (a common init)."""
    n_heads = check_int("n_heads", n_heads, minimum=1)
    p_min, p_max = check_positive("p_min", p_min), check_positive("p_max", p_max)
    if p_min > p_max:
        raise ValueError(f"p_min must be <= p_max, got p_min={p_min}, p_max={p_max}")
    if n_heads == 1:
        return torch.tensor([math.sqrt(p_min * p_max)], dtype=torch.float64)
    return torch.logspace(math.log10(p_min), math.log10(p_max), n_heads, dtype=torch.float64)


# --- the practitioners' encodings, as published ------------------------------------------


def alibi_slopes(n_heads: int) -> list[float]:
    """ALiBi head slopes (Press et al., 2022), as in the authors' reference code.

    For n a power of two: 2^{-8/n}, 2^{-16/n}, ..., 2^{-8}.  Otherwise the slopes of the
    closest smaller power of two, followed by every other slope of the next power of two.
    """
    n_heads = check_int("n_heads", n_heads, minimum=1)

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if n_heads & (n_heads - 1) == 0:
        return power_of_two(n_heads)
    closest = 2 ** int(math.floor(math.log2(n_heads)))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: n_heads - closest]


def alibi_bias(lags: torch.Tensor, slope: float) -> torch.Tensor:
    """ALiBi's causal bias ``-slope · s`` for s >= 0: the paper's lin-RPE with p = slope.

    lags: integer lags (a tensor or a sequence); slope: a finite number > 0 (ALiBi's
    head slopes are positive, see :func:`alibi_slopes`).  -∞ where s < 0.
    """
    slope = check_positive("slope", slope)
    lags = integer_lags(lags)
    return torch.where(lags >= 0, -slope * lags.to(torch.float64), torch.full(lags.shape, -math.inf, dtype=torch.float64))


def integer_lags(lags) -> torch.Tensor:
    """``lags`` as a long tensor; a non-integer value (1.5) raises instead of being truncated."""
    try:
        t = torch.as_tensor(lags)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"lags must be integers (a tensor or a sequence), got {type(lags).__name__}") from None
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"lags must be integers, got dtype {t.dtype}")
    if t.is_floating_point():
        bad = ~torch.isfinite(t) | (t != torch.round(t))
        if bad.any():
            raise ValueError(f"lags must be integers, got {t[bad].flatten()[0].item()}")
    return t.to(torch.long)


def t5_bucket(lags: torch.Tensor, num_buckets: int = 32, max_distance: int = 128) -> torch.Tensor:
    """T5's unidirectional relative-position bucket of each lag s >= 0 (Raffel et al., 2020).

    Lags below ``num_buckets // 2`` get their own bucket; larger lags share buckets
    spaced logarithmically up to ``max_distance``; beyond it all share the last bucket.
    Same arithmetic as the reference implementation (float32 log, truncation to int).
    """
    num_buckets = check_int("num_buckets", num_buckets, minimum=2)
    max_distance = check_int("max_distance", max_distance, minimum=num_buckets // 2 + 1)
    lags = integer_lags(lags)
    if torch.any(lags < 0):
        raise ValueError("lags must be >= 0 for the unidirectional (causal) T5 bucket")
    max_exact = num_buckets // 2
    # Clamp to 1 inside the log: those small lags take the exact branch anyway.
    ratio = lags.clamp(min=1).to(torch.float32) / max_exact
    large = max_exact + (
        torch.log(ratio) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    ).to(torch.long)
    large = torch.clamp(large, max=num_buckets - 1)
    return torch.where(lags < max_exact, lags.to(torch.long), large)


def kerple_log_bias(lags: torch.Tensor, r1: float, r2: float) -> torch.Tensor:
    """KERPLE's logarithmic bias ``-r1 · log(1 + r2 · s)`` with r1, r2 > 0 (Chi et al., 2022).

    For large s this is ≈ -r1 log s - r1 log r2: the paper's log-RPE with p = r1.
    """
    r1, r2 = check_positive("r1", r1), check_positive("r2", r2)
    lags = integer_lags(lags)
    s = lags.to(torch.float64)
    return torch.where(lags >= 0, -r1 * torch.log1p(r2 * s.clamp(min=0)), torch.full(lags.shape, -math.inf, dtype=torch.float64))


# --- the practitioners' encodings as attention biases: one interface -------------------

BIASES = ("paper", "alibi", "t5", "kerple_log")  # what MultiHeadAttention(bias=...) accepts


class RelativeBias(nn.Module):
    """A bias b_h(s) over lags s >= 0, one per head, added to the attention score.

    ``forward(lags)``: lags (...,) integers -> ``(score, mask)``, both (H, ...): ``score``
    finite everywhere (0 where s < 0, so no gradient is NaN), ``mask`` True where s >= 0
    (the causal mask). The same contract as :func:`log_weights`, so attention treats the
    paper's encodings and these alike.
    """

    def __init__(self, n_heads: int):
        super().__init__()
        self.n_heads = check_int("n_heads", n_heads, minimum=1)

    def values(self, lags: torch.Tensor) -> torch.Tensor:  # (H, ...) on lags >= 0
        raise NotImplementedError

    def forward(self, lags: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ok = lags >= 0
        score = self.values(lags.clamp(min=0))  # (H, ...)
        ok = ok.expand_as(score)
        return torch.where(ok, score, torch.zeros_like(score)), ok


class ALiBiBias(RelativeBias):
    """ALiBi: b_h(s) = -m_h s with the fixed slopes of :func:`alibi_slopes` (no parameters).
    The paper's lin-RPE with p_h = m_h frozen."""

    def __init__(self, n_heads: int, dtype: torch.dtype = torch.float32):
        super().__init__(n_heads)
        self.register_buffer("slopes", torch.tensor(alibi_slopes(self.n_heads), dtype=dtype))

    def values(self, lags):
        return -self.slopes.view((-1,) + (1,) * lags.ndim) * lags.to(self.slopes.dtype)


class T5Bias(RelativeBias):
    """T5: b_h(s) = a learned scalar per head and bucket (:func:`t5_bucket`). Unlike T5, each
    layer has its own table (T5 shares one across layers), it starts at zero (T5: random
    normal), and AdamW decays it as it decays every 2-D weight."""

    def __init__(self, n_heads: int, num_buckets: int = 32, max_distance: int = 128,
                 dtype: torch.dtype = torch.float32):
        super().__init__(n_heads)
        self.num_buckets = check_int("num_buckets", num_buckets, minimum=2)
        self.max_distance = check_int("max_distance", max_distance, minimum=num_buckets // 2 + 1)
        self.table = nn.Parameter(torch.zeros(self.n_heads, self.num_buckets, dtype=dtype))  # (H, buckets)

    def values(self, lags):
        buckets = t5_bucket(lags, self.num_buckets, self.max_distance)  # (...,)
        return self.table[:, buckets]  # (H, ...)


class KerpleLogBias(RelativeBias):
    """KERPLE-log: b_h(s) = -r1_h log(1 + r2_h s), r1, r2 > 0 learned (softplus), started
    at r1 = 1, r2 = 1 in every head (the published code draws them at random per head and
    clamps them positive). For large s about -r1 log s: the paper's log-RPE, seeing lag 0."""

    def __init__(self, n_heads: int, dtype: torch.dtype = torch.float32):
        super().__init__(n_heads)
        one = inverse_positive(torch.ones(self.n_heads, dtype=dtype))
        self.r1_raw = nn.Parameter(one.clone())  # (H,)
        self.r2_raw = nn.Parameter(one.clone())  # (H,)

    def values(self, lags):
        shape = (-1,) + (1,) * lags.ndim
        r1, r2 = positive(self.r1_raw).view(shape), positive(self.r2_raw).view(shape)
        return -r1 * torch.log1p(r2 * lags.to(r1.dtype))


def relative_bias(kind: str, n_heads: int, dtype: torch.dtype = torch.float32) -> RelativeBias:
    """The practitioners' bias ``kind`` ("alibi", "t5" or "kerple_log") for ``n_heads`` heads.
    ("paper" is not built here: it is the attention layer's own rates p_h.)"""
    check_choice("bias", kind, BIASES[1:])
    return {"alibi": ALiBiBias, "t5": T5Bias, "kerple_log": KerpleLogBias}[kind](n_heads, dtype=dtype)


def bias_param_count(kind: str, n_heads: int) -> int:
    """Trainable numbers of a layer's encoding: H rates (paper), 0 (ALiBi), 32 H (T5), 2 H (KERPLE)."""
    return {"paper": n_heads, "alibi": 0, "t5": 32 * n_heads, "kerple_log": 2 * n_heads}[kind]
