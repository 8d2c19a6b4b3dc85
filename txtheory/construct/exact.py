"""A model's forward pass in mpmath from its float64 weights: what the model computes in
exact arithmetic, against which the constructions' certificates are checked.

Part of ``txtheory.construct``; used in ``book/fixed-memory.md`` ("A certificate that
certifies"), ``book/essential-memory.md`` and ``book/adaptive-memory.md`` (pointer
doubling). Every weight of the model is read: a wrong entry anywhere shows in the output.
"""
from __future__ import annotations

import mpmath
import torch

from txtheory import kinds
from txtheory._checks import check_int
from txtheory.attention import score_cap
from txtheory.model import Transformer

EXACT_DPS = 50  # digits: far beyond the 1e13 coefficients' cancellation of Task I's heads


def mp_matrix(w: torch.Tensor) -> list[list]:
    """A float64 matrix as mpmath numbers, row by row (each float read exactly)."""
    return [[mpmath.mpf(float(v)) for v in row] for row in w.detach().to(torch.float64).cpu()]


def check_sequence(x, d: int, t: int) -> torch.Tensor:
    """One finite sequence (T, d) with 0 <= t < T."""
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"x must be one sequence, a tensor (T, {d}), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    check_int("t", t, minimum=0, maximum=x.shape[0] - 1)
    if not torch.isfinite(x).all():
        raise ValueError("x must be finite")
    return x


def _dot(row, v):
    return mpmath.fsum(a * b for a, b in zip(row, v))


def _ffn(ffn, z):
    W1, b1, W2 = mp_matrix(ffn.hidden.weight), [mpmath.mpf(float(b)) for b in ffn.hidden.bias.detach()], \
        mp_matrix(ffn.out.weight)
    hidden = [max(_dot(row, z) + b, 0) for row, b in zip(W1, b1)]
    return [_dot(row, hidden) for row in W2]


def exact_output(model: Transformer, x: torch.Tensor, t: int, dps: int = EXACT_DPS) -> list:
    """The output at position t of ``model`` on the sequence x (T, d), in mpmath with
    ``dps`` digits from the model's float64 parameters.

    Follows ``Transformer.forward`` term by term: h_s = W_E x_s + b_E (+ P_s); per layer,
    sum_h W_O W_V^h sum_τ w_h(t, τ) h_τ with score p_h φ(t - τ) (+ (W_Q^h h_t) · (W_K^h h_τ)
    for a dot product), w = exp(min(score, cap)) normalisation-free (the model's overflow
    guard, ``attention.score_cap``) or the softmax; the residual; the FFN between layers;
    the readout FFN. Layers before the last run at every position <= t. Takes DP-free and
    DP layers, lin and log, either normalisation, an FFN readout; no LayerNorm, TMX or
    precision rounding.
    """
    c = model.config
    if c.readout != "ffn" or c.layer_norm or c.precision or "tmx" in c.score:
        raise ValueError("exact_output takes models with an FFN readout and no LayerNorm, TMX score or "
                         f"precision, got readout={c.readout!r}, layer_norm={c.layer_norm}, score={c.score}, "
                         f"precision={c.precision!r}")
    x = check_sequence(x, c.d_in, t)
    L = c.n_layers
    with mpmath.workdps(dps):
        E, bE = mp_matrix(model.embed.weight), [mpmath.mpf(float(v)) for v in model.embed.bias.detach()]
        pos = mp_matrix(model.pos) if c.abs_positions else None
        h = {}
        for j in range(t + 1):
            xj = [mpmath.mpf(float(v)) for v in x[j]]
            h[j] = [_dot(row, xj) + b + (pos[j][i] if pos else 0) for i, (row, b) in enumerate(zip(E, bE))]
        for l in range(L):
            attn, rpe = model.attn[l], c.rpe[l]
            cap = mpmath.mpf(score_cap(attn.W_V.dtype))
            p = [mpmath.mpf(float(v)) for v in attn.p.detach()]
            W_O = mp_matrix(attn.W_O)
            W_V = [mp_matrix(attn.W_V[hd]) for hd in range(c.n_heads)]
            dp = c.score[l] == "dp"
            if dp:
                W_Q = [mp_matrix(attn.W_Q[hd]) for hd in range(c.n_heads)]
                W_K = [mp_matrix(attn.W_K[hd]) for hd in range(c.n_heads)]
                keys = {j: [[_dot(r, h[j]) for r in W_K[hd]] for hd in range(c.n_heads)] for j in h}
            start = kinds.FIRST_LAG[rpe]
            new = {}
            for s in ([t] if l == L - 1 else range(t + 1)):
                mixed = [mpmath.mpf(0)] * attn.d_value
                for hd in range(c.n_heads):
                    q = [_dot(r, h[s]) for r in W_Q[hd]] if dp else None
                    score = {tau: p[hd] * kinds.phi(mpmath.mpf(s - tau), rpe) + (_dot(q, keys[tau][hd]) if dp else 0)
                             for tau in range(0, s - start + 1)}
                    if not score:
                        continue
                    if c.normalized:
                        top = max(score.values())
                        w = {tau: mpmath.exp(v - top) for tau, v in score.items()}
                        Z = mpmath.fsum(w.values())
                    else:
                        w = {tau: mpmath.exp(min(v, cap)) for tau, v in score.items()}
                        Z = mpmath.mpf(1)
                    avg = [mpmath.fsum(w[tau] * h[tau][i] for tau in w) / Z for i in range(c.d_model)]
                    mixed = [m + _dot(row, avg) for m, row in zip(mixed, W_V[hd])]
                out = [_dot(row, mixed) for row in W_O]
                z = [(hi if c.residual else 0) + o for hi, o in zip(h[s], out)]
                if l < L - 1:
                    z = [zi + fi for zi, fi in zip(z, _ffn(model.ffn[l], z))]
                new[s] = z
            h = new
        return _ffn(model.ffn[L - 1], h[t])
