"""Pointer doubling: a K-hop pointer chase in ⌈log₂(K + 1)⌉ layers (ours, not the paper's).

Part of ``txtheory.construct``; explained in ``book/adaptive-memory.md`` ("Depth, as
upper bounds"), which sets it beside Theorem 4.4's K + 1 layers and the direct K.

The chase (``targets.pointer_chase``) follows n(s) = s - g(x_s) from t: y_t = x_{n^K(t)}.
Write c_j(s) = x_{n^j(s)} for the token j hops from s. With the tokens c_0..c_{m-1} of
every position in its residual stream, a layer can fetch, from the key n^m(s), that key's
own c_0..c_{m-1}, which are c_m..c_{2m-1} of s: the key sits at lag
d_m(s) = g(c_0(s)) + ... + g(c_{m-1}(s)), affine in the tokens s holds (g is affine on
±1 tokens), so a dot-product query computes it, as in the direct schedule
(``construct.adaptive``). Each layer doubles m, so L layers hold c_0..c_{2^L - 1} and
L = ⌈log₂(K + 1)⌉ reach c_K. (The same idea as the k-hop induction heads of Sanford, Hsu
and Telgarsky, ICML 2024, built here for this chase with the paper's RPE heads.)

The model, float64, normalisation-free DP layers, D = K + 2: slot 0 holds x_t = c_0,
slot 1 the constant 1, slot 1 + j the token c_j (j >= 1).

* Layer l (m = 2^{l-1}): every head scores -β_h s + β_h d_m(t) (W_Q^h = √β_h q_m, W_K^h =
  √β_h e_1), so it weighs lag s by exp(-β_h (s - d_m)); W_V^h = α_h copies slot j to
  slot m + j for every j < m with m + j <= K; W_O = I. One fit (``kernels.fit_points``)
  makes κ_d(s) = Σ_h α_h exp(-β_h (s - d)) ≈ 1{s = d} for every value d of d_m at once.
* The FFN after layer l < L replaces each fetched slot z by r(z) = -1 + 2 ReLU(z + 1/2)
  - 2 ReLU(z - 1/2), which is ±1 exactly when |z ∓ 1| < 1/2 and lies in [-1, 1] for every
  z: the paper's "FFN with precision", here a ReLU FFN of the paper's class (4 units per
  slot and one constant unit), with no rounding outside it.
* The readout FFN returns slot K + 1: y = ReLU(z) - ReLU(-z).

The certificate (``DoublingConstruction.bound``). Every slot of every position lies in
[-1, 1] when a layer reads it (tokens, the constant, zeros; r keeps fetched slots there
at positions whose chase leaves the window too). So, at a position t whose chase stays
in the window (t >= first_valid), layer l's fetched slot m + j is off by at most
ε_l = max over d of Σ_s Σ_i |K_{m+j,i}(s; d) - 1{i = j, s = d}| with K(s; d) = Σ_h
W_O W_V^h exp(score_h(s, d)), read from the model's weights over every lag of the
window; other slots get nothing (checked: their rows of W_O W_V^h are 0). If every
ε_l < 1/2 for l < L, the FFNs make every fetched token exact, every query lag exact, and
|TF_t - y_t| <= ε_L. Evaluated in mpmath from the float64 weights, so it holds in exact
arithmetic for the model as built; ``certify`` checks it on inputs against
``exact.exact_output``, which reads every weight.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import mpmath
import numpy as np
import torch

from txtheory._checks import check_int
from txtheory.attention import score_cap
from txtheory.construct.exact import EXACT_DPS, exact_output, mp_matrix
from txtheory.construct.lookups import ONE_SLOT, X_SLOT, start_residual
from txtheory.kernels import fit_points
from txtheory.model import Transformer, TransformerConfig
from txtheory.rpe import inverse_positive
from txtheory.targets import pointer_chase
from txtheory.targets.adaptive import check_lag_pair

ROUNDING_MARGIN = 0.5  # r(z) is exact for tokens fetched to within this


def chase_slot(j: int) -> int:
    """The residual slot of c_j, the token j hops back: x_t itself for j = 0."""
    return X_SLOT if j == 0 else 1 + j


def doubling_depth(steps: int) -> int:
    """⌈log₂(steps + 1)⌉: the layers pointer doubling needs for a ``steps``-hop chase."""
    K = check_int("steps", steps, minimum=1)
    return (K).bit_length()  # smallest L with 2^L >= K + 1


@dataclass
class DoublingConstruction:
    """The pointer-doubling model of a K-hop chase, and what it certifies."""

    model: Transformer = field(repr=False)
    target: object = field(repr=False)
    steps: int
    lags: tuple[int, int]
    length: int
    layer_lags: tuple[tuple[int, ...], ...]  # the values of d_m each layer's heads must hit
    layer_errors: tuple[float, ...]  # ε_l, upper bounds (module docstring)

    @property
    def n_layers(self) -> int:
        return self.model.config.n_layers

    @property
    def first_valid(self) -> int:
        return self.target.first_valid

    @property
    def bound(self) -> float:
        """ε_L when every earlier ε_l < 1/2 (so every rounding is exact); inf otherwise."""
        if any(e >= ROUNDING_MARGIN for e in self.layer_errors[:-1]):
            return math.inf
        return self.layer_errors[-1]

    @torch.no_grad()
    def sup_error(self, n: int = 256, seed: int = 0) -> float:
        """max |model - target| of the float64 forward pass over n random ±1 sequences, t >= first_valid."""
        n = check_int("n", n, minimum=1)
        g = torch.Generator().manual_seed(seed)
        x = (torch.randint(0, 2, (n, self.length, 1), generator=g) * 2 - 1).double()
        err = (self.model(x) - self.target(x))[:, self.first_valid:]
        return float(err.abs().max())

    def certify(self, x: torch.Tensor, positions=None, dps: int = EXACT_DPS) -> list[dict]:
        """For each position t (default: the last), the largest |TF_t(X) - y_t| over the
        ±1 sequences x (N, T, 1), TF the model's exact output (``exact_output``), beside
        ``bound`` and the float64 forward pass's largest error. The certificate holds where
        ``error <= bound``."""
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[2] != 1 or not bool((x.abs() == 1).all()):
            raise ValueError("x must be ±1 sequences, a tensor (N, T, 1)")
        x = x.double()
        T = x.shape[1]
        positions = [T - 1] if positions is None else [
            check_int("t", t, minimum=self.first_valid, maximum=T - 1) for t in positions]
        with torch.no_grad():
            y, out64 = self.target(x), self.model(x)
        rows = []
        for t in positions:
            err = max(abs(float(exact_output(self.model, x[n, :t + 1], t, dps)[0]) - float(y[n, t, 0]))
                      for n in range(x.shape[0]))
            rows.append({"t": t, "error": err, "bound": self.bound,
                         "float64_error": float((out64[:, t] - y[:, t]).abs().max())})
        return rows


def pointer_doubling(steps: int, n_heads: int, *, length: int, lags: Sequence[int] = (1, 2),
                     restarts: int = 4) -> DoublingConstruction:
    """The pointer-doubling model of the ``steps``-hop chase with g(1), g(-1) = ``lags``:
    ⌈log₂(steps + 1)⌉ layers of ``n_heads`` heads, for windows of ``length``."""
    K = check_int("steps", steps, minimum=1)
    H = check_int("n_heads", n_heads, minimum=1)
    pair = check_lag_pair("lags", lags)
    target = pointer_chase(K, pair)
    length = check_int("length", length, minimum=target.first_valid + 1)
    L = doubling_depth(K)
    D = K + 2
    c0, c1 = (pair[0] + pair[1]) / 2, (pair[0] - pair[1]) / 2  # g(x) = c0 + c1 x on ±1
    fetched = [[j for j in range(2 ** l) if 2 ** l + j <= K] for l in range(L)]  # sources per layer
    width = max(1 + 4 * len(f) for f in fetched[:-1]) if L > 1 else 2
    config = TransformerConfig(d_in=1, d_model=D, n_layers=L, n_heads=H, ffn_width=max(width, 2), d_out=1,
                               rpe="lin", score="dp", normalized=False, d_qk=1, d_value=D, dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten
        model = Transformer(config)
    layer_lags = []
    cap = score_cap(torch.float64)
    with torch.no_grad():
        start_residual(model)
        for l in range(L):
            m = 2 ** l
            values = sorted({a * pair[0] + (m - a) * pair[1] for a in range(m + 1)})  # every d_m
            if max(values) >= length:
                raise ValueError(f"length must exceed the largest lag {max(values)} of layer {l + 1}, got {length}")
            layer_lags.append(tuple(values))
            s = np.arange(0, length, dtype=np.float64)
            x_pts = np.concatenate([s - d for d in values])
            y_pts = np.concatenate([(s == d).astype(np.float64) for d in values])
            beta, alpha = fit_points(x_pts, y_pts, H, restarts=restarts,
                                     max_rate=min(403.0, 0.9 * cap / max(values)))  # β d < cap: no clamp
            attn = model.attn[l]
            b = torch.as_tensor(beta)
            attn.p_raw.copy_(inverse_positive(b))
            q = torch.zeros(D, dtype=torch.float64)
            q[ONE_SLOT] = m * c0
            for j in range(m):
                q[chase_slot(j)] = c1
            attn.W_Q[:, 0] = b.sqrt()[:, None] * q
            attn.W_K[:, 0, ONE_SLOT] = b.sqrt()
            for j in fetched[l]:
                attn.W_V[:, chase_slot(m + j), chase_slot(j)] = torch.as_tensor(alpha)
            attn.W_O.copy_(torch.eye(D, dtype=torch.float64))
            if l < L - 1:
                _rounding_ffn(model.ffn[l], [chase_slot(m + j) for j in fetched[l]])
        out = model.ffn[L - 1]
        out.hidden.weight[0, chase_slot(K)] = 1.0
        out.hidden.weight[1, chase_slot(K)] = -1.0
        out.out.weight[0, :2] = torch.tensor([1.0, -1.0])
    construction = DoublingConstruction(model, target, K, pair, length, tuple(layer_lags), ())
    construction.layer_errors = tuple(layer_error(model, l, fetched[l], layer_lags[l], pair, length)
                                      for l in range(L))
    return construction


def _rounding_ffn(ffn, slots: list[int]) -> None:
    """FFN adding r(z) - z to each slot: -1 (shared unit) + 2ReLU(z+½) - 2ReLU(z-½) - ReLU(z) + ReLU(-z)."""
    ffn.hidden.weight[0, ONE_SLOT] = 1.0  # ReLU(1) = 1
    for k, slot in enumerate(slots):
        units = range(1 + 4 * k, 5 + 4 * k)
        for u, (w, bias, a) in zip(units, ((1.0, 0.5, 2.0), (1.0, -0.5, -2.0), (1.0, 0.0, -1.0), (-1.0, 0.0, 1.0))):
            ffn.hidden.weight[u, slot] = w
            ffn.hidden.bias[u] = bias
            ffn.out.weight[slot, u] = a
        ffn.out.weight[slot, 0] = -1.0


def layer_error(model: Transformer, l: int, sources: list[int], values: Sequence[int], pair, length: int,
                dps: int = 30) -> float:
    """ε_l of the module docstring, from layer l's weights in ``dps``-digit mpmath: over every
    ±1 assignment of the query's tokens (hence every d_m), every lag 0..length-1 and every
    input slot, the l1 distance of K(s; d) from the ideal copy, rows of the fetched slots.
    Raises if the layer writes any other slot or a key reads anything but the constant."""
    attn = model.attn[l]
    m = 2 ** l
    D, H = model.config.d_model, model.config.n_heads
    W_OV = (attn.W_O @ attn.W_V).detach()  # (H, D, D)
    rows = [chase_slot(m + j) for j in sources]
    others = [o for o in range(D) if o not in rows]
    if bool(W_OV[:, others].abs().max() > 0):
        raise ValueError(f"layer {l + 1} writes a slot it does not fetch")
    key_reads = attn.W_K[:, 0].detach().clone()
    key_reads[:, ONE_SLOT] = 0
    if bool(key_reads.abs().max() > 0):
        raise ValueError(f"a key of layer {l + 1} reads more than the constant slot")
    worst = mpmath.mpf(0)
    with mpmath.workdps(dps):
        p = [mpmath.mpf(float(v)) for v in attn.p.detach()]
        WQ, WK1 = mp_matrix(attn.W_Q[:, 0]), [mpmath.mpf(float(v)) for v in attn.W_K[:, 0, ONE_SLOT].detach()]
        OV = [mp_matrix(W_OV[h]) for h in range(H)]
        for code in range(2 ** m):  # the query's tokens c_0..c_{m-1}
            tokens = [1 if (code >> j) & 1 else -1 for j in range(m)]
            d = sum(pair[0] if v > 0 else pair[1] for v in tokens)
            if d not in values:
                raise ValueError(f"layer {l + 1}'s query can take lag {d}, outside its fitted lags {tuple(values)}")
            h_q = [mpmath.mpf(0)] * D
            h_q[ONE_SLOT] = mpmath.mpf(1)
            for j, v in enumerate(tokens):
                h_q[chase_slot(j)] = mpmath.mpf(v)
            content = [mpmath.fsum(a * b for a, b in zip(WQ[h], h_q)) * WK1[h] for h in range(H)]
            for j, row in zip(sources, rows):
                total = mpmath.mpf(0)
                for s in range(length):
                    w = [mpmath.exp(-p[h] * s + content[h]) for h in range(H)]
                    for i in range(D):
                        k = mpmath.fsum(w[h] * OV[h][row][i] for h in range(H))
                        total += abs(k - (1 if (i == chase_slot(j) and s == d) else 0))
                worst = max(worst, total)
        return float(worst) * (1 + 1e-12)
