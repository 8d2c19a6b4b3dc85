"""Theorems 4.1, 4.4 and Propositions 4.3, 4.5: adaptive memories (App. C, D).

Part of ``txtheory.construct``; explained in ``book/adaptive-memory.md`` ("Task II:
adaptive, long but sparse memory"), which builds these models, draws what each layer
attends to, and sets their measured errors against the certificates computed here.

Target: an ``AdaptiveMemoryTarget`` on tokens from a finite, evenly spaced ``alphabet``
(d_in = 1). Memory i (0-indexed) is computed at a *stage*, the layer whose FFN writes
its lag; the next layer's attention fetches the token at that lag. The ``schedule``:

* ``"paper"`` (Theorems 4.1, 4.4): nested memory i < K at stage i + 1, every other
  memory at stage K + 1, so L = K + 1 + 1{M >= K + 1} layers (L = 2 when K = 0);
* ``"sequential"`` (Proposition 4.5): memory i at stage i + 1, so L = M + 1;
* ``"direct"`` (ours, lin-RPE, integer tokens): no FFN computes a lag. When a lag is
  an affine function of the tokens it reads (on ±1 tokens every function of one token
  is, and so are the pointer chase's sums), the query computes it from the residual
  stream, so memory i is fetched by the layer right after its inputs: stage 0 (the
  embedding) for a memory of x_t alone. The FFNs do nothing but round the fetched
  tokens (precision on the token slots), so the next query reads them exactly. L = K
  layers for a K-hop chase, one fewer than Theorem 4.4's K + 1, and 1 layer when
  K = 0, as in Proposition 4.2 (A);
* a tuple of stages, checked: a memory comes after every memory it reads.

Residual stream, D = 2 + 2M: slot 0 holds x_t, slot 1 the constant 1 (the embedding's
bias), slot 2 + 2i memory i's lag (t_i, or log t_i for log-RPE), slot 3 + 2i its token.

* Layer 1's attention is zero (the paper's identity layer, W_O = 0).
* The FFN of stage l is a *lookup* (``lookups.lookup_ffn``): on the grid of the tokens it reads
  (x_t and the tokens of earlier memories) a piecewise-linear ReLU interpolant along a
  linear code of the grid is exact, width = grid size. The model rounds the lag slots
  after every FFN (``TransformerConfig.precision``): the paper's "FFN with precision".
* Layer l + 1's heads for memory i: rate p_h = β_h, and a score term β_h ℓ_i with ℓ_i the
  lag slot: dot product W_Q^h = √β_h e_lag, W_K^h = √β_h e_const (``score="dp"``), or
  TMX w_h = e_lag (``score="tmx"``: p_h (φ(s) + ℓ_i)). Normalisation-free, head h weighs
  lag s by exp(-β_h (s - g)) (lin) or (s / g)^(-β_h) (log), and W_V^h = α_h copies the
  token slot, so the group realises κ_g(s) = Σ_h α_h w_h(s, g) ≈ 1{s = g} for every lag
  value g the memory can take. The rates and coefficients are one ``kernels.fit_points``
  fit on all those (s, g) at once.
* The last FFN is the readout f: its own exact FFN weights where it has them
  (``targets.LinearReadout``, ``ProductReadout`` on ±1 tokens), else a lookup.

The certificate (``AdaptiveConstruction.bound``) is computed from the model's own
parameters. Memory i's extraction error is ε_i = max|a| · max_g Σ_s |κ_g(s) - 1{s = g}|
over the window's lags. Rounding makes a lag exact when its lookup's input error times
the lookup's Lipschitz constant stays below the rounding margin (1/2, or
log(1 + 1/(2 g_max)) for log), so ``margins_hold``; then every extraction reads exact
lags and the output error is at most Lip(readout) · max_i ε_i. Otherwise the bound is inf.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from txtheory import kinds
from txtheory._checks import check_choice, check_int
from txtheory.attention import score_cap
from txtheory.construct.heads import _U
from txtheory.construct.lookups import (
    ONE_SLOT, X_SLOT, Lookup, check_alphabet, grid_points, lookup_ffn, random_feature_ffn, start_residual,
)
from txtheory.kernels import fit_points
from txtheory.model import Transformer, TransformerConfig
from txtheory.rpe import inverse_positive
from txtheory.targets import AdaptiveMemoryTarget

SCHEDULES = ("paper", "sequential", "direct")
SCORES = ("dp", "tmx")


def lag_slot(i: int) -> int:
    return 2 + 2 * i


def token_slot(i: int) -> int:
    return 3 + 2 * i


# ------------------------------------------------------------------------------------
# the plan: which layer computes and fetches which memory


def memory_inputs(target: AdaptiveMemoryTarget, i: int) -> list[int]:
    """The memories whose tokens g_i reads: 0..min(i, K) - 1 (eq. 8)."""
    return list(range(min(i, target.n_nested)))


def stages_for(target: AdaptiveMemoryTarget, schedule: Any) -> tuple[int, ...]:
    """The stage (1-indexed layer whose FFN writes the lag) of every memory, checked."""
    M, K = len(target.memory_functions), target.n_nested
    if isinstance(schedule, str):
        check_choice("schedule", schedule, SCHEDULES)
        if schedule == "sequential":
            return tuple(range(1, M + 1))
        if schedule == "direct":  # fetched right after the memories it reads
            stages: list[int] = []
            for i in range(M):
                stages.append(1 + max((stages[j] for j in memory_inputs(target, i)), default=-1))
            return tuple(stages)
        return tuple(i + 1 if i < K else K + 1 for i in range(M))
    if not isinstance(schedule, (list, tuple)) or len(schedule) != M:
        raise ValueError(f"schedule must be one of {SCHEDULES} or {M} stages (one per memory), got {schedule!r}")
    stages = tuple(check_int(f"schedule[{i}]", s, minimum=1) for i, s in enumerate(schedule))
    for i in range(M):
        for j in memory_inputs(target, i):
            if stages[i] <= stages[j]:
                raise ValueError(
                    f"schedule puts memory {i} at stage {stages[i]}, but it reads the token of memory {j}, "
                    f"which the attention of layer {stages[j] + 1} fetches: memory {i} needs stage >= {stages[j] + 1}")
    return stages


def lag_table(target: AdaptiveMemoryTarget, i: int, alphabet: np.ndarray) -> np.ndarray:
    """g_i on the grid of (x_t, tokens it reads), in ``grid_points`` order: (V^k,) integers."""
    k = 1 + len(memory_inputs(target, i))
    u = torch.as_tensor(grid_points(alphabet, k))[:, None, :]  # (N, 1, k)
    lags = target.memory_functions[i](u)
    lags = target._check_lags(lags, i, (u.shape[0], 1))  # (N, 1)
    return lags[:, 0].numpy()


def readout_table(target: AdaptiveMemoryTarget, alphabet: np.ndarray) -> np.ndarray:
    """f on the grid of (x_t, t_1.., t_M tokens): (V^{M+1}, c)."""
    M = len(target.memory_functions)
    z = torch.as_tensor(grid_points(alphabet, M + 1))[:, None, :]  # (N, 1, M+1)
    out = target.readout(z)
    return out.reshape(z.shape[0], -1).double().numpy()


# ------------------------------------------------------------------------------------
# the construction


@dataclass
class MemoryPlan:
    """Memory i's place in the construction, and what its kernel achieves."""

    index: int
    stage: int
    lags: tuple[int, ...]  # every lag value the memory can take
    kernel_error: float = math.nan  # ε_i: max over lags g of the l1 error of κ_g, times max|a|
    noise: float = math.nan  # float64 allowance of the group's sum
    lookup_lipschitz: float = math.nan
    margin: float = math.nan  # how far the rounding can be pushed before a lag is wrong
    input_error: float = math.nan  # Lipschitz × the largest error of the tokens it reads
    query: np.ndarray | None = None  # q with q · h_t = the lag (or log lag) the heads use

    @property
    def margin_holds(self) -> bool:
        return self.input_error < self.margin


@dataclass
class AdaptiveConstruction:
    """The model of Theorem 4.1 / 4.4 / Prop 4.3 / 4.5, with its certificate."""

    model: Transformer
    target: AdaptiveMemoryTarget
    alphabet: np.ndarray
    rpe: str
    score: str
    length: int
    stages: tuple[int, ...]
    memories: list[MemoryPlan] = field(default_factory=list)
    readout_lipschitz: float = math.nan

    @property
    def n_layers(self) -> int:
        return self.model.config.n_layers

    @property
    def margins_hold(self) -> bool:
        return all(m.margin_holds for m in self.memories)

    @property
    def bound(self) -> float:
        """Lip(readout) · max_i ε_i when every rounding is safe; inf otherwise."""
        if not self.margins_hold:
            return math.inf
        return self.readout_lipschitz * max(m.kernel_error for m in self.memories)

    @property
    def float64_noise(self) -> float:
        return self.readout_lipschitz * max(m.noise for m in self.memories)

    @torch.no_grad()
    def sup_error(self, n: int = 256, seed: int = 0) -> float:
        """max |model - target| over n random sequences of the window, t >= first_valid."""
        n = check_int("n", n, minimum=1)
        g = torch.Generator().manual_seed(seed)
        idx = torch.randint(0, self.alphabet.size, (n, self.length, 1), generator=g)
        x = torch.as_tensor(self.alphabet)[idx]  # (n, T, 1) float64
        first = self.target.first_valid
        err = (self.model(x) - self.target(x))[:, first:]
        return float(err.abs().max())

    @torch.no_grad()
    def extraction(self, x: torch.Tensor, memory: int) -> torch.Tensor:
        """The kernel the heads of ``memory`` apply, query t against key τ: (B, T, T)."""
        layer = self.stages[memory]  # 0-indexed attention layer = stage
        attn = self.model.attn[layer]
        weights = attn.weights(self.model.residual_streams(x)[layer])  # (B, H, T, T)
        alpha = (attn.W_O @ attn.W_V)[:, token_slot(memory), X_SLOT]  # (H,)
        return torch.einsum("bhpt,h->bpt", weights, alpha)


def adaptive_transformer(
    target: AdaptiveMemoryTarget,
    n_heads: int,
    rpe: str = "lin",
    *,
    length: int,
    score: str = "dp",
    schedule: Any = "paper",
    alphabet: Sequence[float] = (-1.0, 1.0),
    restarts: int = 4,
    lag_ffn_width: int | None = None,
    lag_ffn_seed: int = 0,
) -> AdaptiveConstruction:
    """The proofs' model for ``target``: ``n_heads`` heads per layer, float64.

    ``score``: "dp" (Theorems 4.1, 4.4) or "tmx" (Proposition 4.3). ``schedule``: see the
    module docstring. ``lag_ffn_width``: approximate the lag functions with random ReLU
    features of this width (``random_feature_ffn``) instead of the exact lookup, to see
    the width condition at work: below it the rounding goes wrong.
    """
    if not isinstance(target, AdaptiveMemoryTarget):
        raise ValueError(f"target must be a targets.AdaptiveMemoryTarget, got {type(target).__name__}")
    if target.d_in != 1:
        raise ValueError(f"the constructions take scalar tokens (d_in = 1), got d_in = {target.d_in}")
    H = check_int("n_heads", n_heads, minimum=1)
    rpe = kinds.check_kind(rpe, "rpe")
    score = check_choice("score", score, SCORES)
    length = check_int("length", length, minimum=target.first_valid + 1)
    a = check_alphabet(alphabet)
    stages = stages_for(target, schedule)
    direct = schedule == "direct"
    if direct and rpe != "lin":
        raise ValueError("schedule='direct' needs rpe='lin': the query computes the lag itself, and a log lag "
                         "is not an affine function of the tokens")
    if direct and not np.all(a == np.round(a)):
        raise ValueError(f"schedule='direct' rounds the fetched tokens to integers, so the alphabet must hold "
                         f"integers, got {a.tolist()}")
    M = len(stages)
    L = max(stages) + 1
    D = 2 + 2 * M
    fetchers = [[i for i in range(M) if stages[i] == l] for l in range(L)]  # attention layer l fetches these
    writers = [[] if direct else [i for i in range(M) if stages[i] == l + 1] for l in range(L - 1)]  # FFN l
    if H < max(len(group) for group in fetchers):
        raise ValueError(f"n_heads must be >= {max(map(len, fetchers))}: a layer fetches that many memories "
                         f"with one head group each, got {H}")

    plans = [MemoryPlan(i, stages[i], tuple(sorted(set(lag_table(target, i, a).tolist())))) for i in range(M)]
    for plan in plans:
        if rpe == "log" and min(plan.lags) < 1:
            raise ValueError(f"memory {plan.index} takes lag 0, which log-RPE heads cannot see; use rpe='lin'")
        if max(plan.lags) >= length:
            raise ValueError(f"memory {plan.index} reaches lag {max(plan.lags)}, outside the window length {length}")
        plan.query = affine_query(target, plan.index, a, D) if direct else np.eye(D)[lag_slot(plan.index)]

    ffns = [_stage_ffn(target, plans, writers[l], a, D, rpe, lag_ffn_width, lag_ffn_seed) for l in range(L - 1)]
    readout = readout_ffn(target, a, D)
    width = max([_merge(blocks, D).width for blocks in ffns] + [readout.width])
    config = TransformerConfig(
        d_in=1, d_model=D, n_layers=L, n_heads=H, ffn_width=width, d_out=target.d_out, rpe=rpe,
        score=tuple(score if fetchers[l] else "free" for l in range(L)), normalized=False, d_qk=1, d_value=D,
        dtype=torch.float64, precision="lin" if direct else rpe,
        precision_dims=tuple(token_slot(i) if direct else lag_slot(i) for i in range(M)))
    model = Transformer(config)
    with torch.no_grad():
        start_residual(model)
        for l in range(L):
            _set_heads(model.attn[l], fetchers[l], plans, H, rpe, score, length, restarts)
            if l < L - 1:
                _set_ffn(model.ffn[l], _merge(ffns[l], D))
        _set_ffn(model.ffn[L - 1], readout)
    construction = AdaptiveConstruction(model, target, a, rpe, score, length, stages, plans, readout.lipschitz)
    _certify(construction, ffns, writers, direct)
    return construction


def affine_query(target: AdaptiveMemoryTarget, i: int, a: np.ndarray, D: int) -> np.ndarray:
    """q (D,) with q · h_t = g_i(x_t, tokens read) on the grid, if g_i is affine there."""
    slots = [X_SLOT] + [token_slot(j) for j in memory_inputs(target, i)]
    Z = grid_points(a, len(slots))
    design = np.hstack([np.ones((Z.shape[0], 1)), Z])
    lags = lag_table(target, i, a).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, lags, rcond=None)
    if np.abs(design @ coef - lags).max() > 1e-9:
        raise ValueError(f"schedule='direct' needs lags that are affine in the tokens they read; memory {i}'s "
                         "is not (use schedule='paper', whose FFNs compute any lag function)")
    q = np.zeros(D)
    q[[ONE_SLOT] + slots] = coef
    return q


def _stage_ffn(target, plans, memories, a, D, rpe, width, seed) -> list[Lookup]:
    blocks = []
    for i in memories:
        slots = [X_SLOT] + [token_slot(j) for j in memory_inputs(target, i)]
        lags = lag_table(target, i, a).astype(np.float64)
        values = lags if rpe == "lin" else np.log(lags)
        if width is None:
            blocks.append(lookup_ffn(slots, a, values[:, None], D, [lag_slot(i)]))
        else:
            blocks.append(random_feature_ffn(slots, a, values, D, lag_slot(i), width, seed + i))
    return blocks


def readout_ffn(target: AdaptiveMemoryTarget, a: np.ndarray, D: int) -> Lookup:
    """The last FFN: the readout's own exact FFN weights where it has them (Task I's
    readouts), with its own Lipschitz constant; else a lookup on the grid."""
    slots = [X_SLOT] + [token_slot(i) for i in range(len(target.memory_functions))]
    weights = getattr(target.readout, "ffn_weights", None)
    if weights is not None:
        w = weights()
        cube = w.exact_on != "all inputs"
        if not cube or set(a.tolist()) == {-1.0, 1.0}:
            W = np.zeros((w.width, D))
            W[:, slots] = w.W.numpy()
            return Lookup(W, w.b.numpy(), w.a.numpy(), float(target.readout.lipschitz))
    return lookup_ffn(slots, a, readout_table(target, a), D, list(range(target.d_out)))


def _merge(blocks: list[Lookup], D: int) -> Lookup:
    """Side by side: the units of every block, each writing its own slot."""
    if not blocks:
        return Lookup(np.zeros((1, D)), np.zeros(1), np.zeros((D, 1)), 0.0)
    A = np.zeros((D, sum(b.width for b in blocks)))
    col = 0
    for b in blocks:
        A[: b.A.shape[0], col: col + b.width] = b.A
        col += b.width
    return Lookup(np.vstack([b.W for b in blocks]), np.concatenate([b.b for b in blocks]), A,
                  max(b.lipschitz for b in blocks))


def _set_ffn(ffn, block: Lookup) -> None:
    m = block.width
    ffn.hidden.weight[:m] = torch.as_tensor(block.W)
    ffn.hidden.bias[:m] = torch.as_tensor(block.b)
    ffn.out.weight[:, :m] = torch.as_tensor(block.A[: ffn.out.weight.shape[0]])


def kernel_points(rpe: str, lags: Sequence[int], length: int) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) points of a memory's kernel fit: every lag s of the window for every g."""
    s = np.arange(kinds.FIRST_LAG[rpe], length, dtype=np.float64)
    x = np.concatenate([s - g if rpe == "lin" else np.log(s / g) for g in lags])
    y = np.concatenate([(s == g).astype(np.float64) for g in lags])
    return x, y


def fit_memory_kernel(rpe: str, lags: Sequence[int], length: int, n_heads: int,
                      restarts: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Rates β and coefficients α of one head group whose query-shifted kernel κ_g(s) is
    ≈ 1{s = g} for every lag g in ``lags`` at once, over the window's lags (float64
    ``kernels.fit_points``). Rates stay below 403 and below 0.9 × the overflow cap over
    β·g_max (lin) or β·log g_max (log), so the model's scores are never clamped."""
    g_max = max(lags)
    top = score_cap(torch.float64) / (g_max if rpe == "lin" else math.log(g_max) if g_max > 1 else 1.0)
    return fit_points(*kernel_points(rpe, lags, length), n_heads, restarts=restarts,
                      max_rate=min(403.0, 0.9 * top))


def _set_heads(attn, memories, plans, H, rpe, score, length, restarts) -> None:
    """Split the layer's heads over its memories and give each group its kernel fit."""
    if not memories:  # a stage that writes no lag: this layer's attention stays zero
        return
    attn.W_O.copy_(torch.eye(attn.d_model, dtype=attn.W_O.dtype))
    sizes = [H // len(memories) + (k < H % len(memories)) for k in range(len(memories))]
    start = 0
    for i, size in zip(memories, sizes):
        beta, alpha = fit_memory_kernel(rpe, plans[i].lags, length, size, restarts)
        heads = slice(start, start + size)
        start += size
        b = torch.as_tensor(beta)
        attn.p_raw[heads] = inverse_positive(b)
        attn.W_V[heads, token_slot(i), X_SLOT] = torch.as_tensor(alpha)
        q = torch.as_tensor(plans[i].query)
        if score == "dp":
            attn.W_Q[heads, 0] = b.sqrt()[:, None] * q
            attn.W_K[heads, 0, ONE_SLOT] = b.sqrt()
        else:
            attn.w_tmx[heads] = q


def realised_kernels(construction: AdaptiveConstruction, i: int) -> tuple[np.ndarray, ...]:
    """κ_g(s) of memory i from the model's parameters: (lags G, lags s, κ (G, S), and the
    (G, S) sums of |terms| that the float64 allowance needs)."""
    attn = construction.model.attn[construction.stages[i]]
    heads = attn.W_V[:, token_slot(i), X_SLOT].detach().numpy() != 0
    p = attn.p.detach().numpy()[heads]
    alpha = (attn.W_O @ attn.W_V)[:, token_slot(i), X_SLOT].detach().numpy()[heads]
    q = torch.as_tensor(construction.memories[i].query)  # the head's score reads q · h_t
    if construction.score == "dp":
        c = ((attn.W_Q[:, 0] @ q) / (q @ q) * attn.W_K[:, 0, ONE_SLOT]).detach().numpy()[heads]
    else:
        c = (attn.p * (attn.w_tmx @ q) / (q @ q)).detach().numpy()[heads]
    rpe = construction.rpe
    s = np.arange(kinds.FIRST_LAG[rpe], construction.length, dtype=np.float64)
    G = np.array(construction.memories[i].lags, dtype=np.float64)
    ell = G if rpe == "lin" else np.log(G)
    score = c[None, None, :] * ell[:, None, None] + p[None, None, :] * kinds.phi(s, rpe)[None, :, None]
    terms = alpha * np.exp(np.minimum(score, score_cap(torch.float64)))  # (G, S, h)
    return G, s, terms.sum(-1), np.abs(terms).sum(-1)


def _certify(c: AdaptiveConstruction, ffns, writers, direct: bool) -> None:
    top = float(np.abs(c.alphabet).max())
    n_terms = c.model.config.n_heads + c.length
    for plan in c.memories:  # in order: a memory's inputs come before it
        G, s, kappa, abs_sum = realised_kernels(c, plan.index)
        delta = (s[None, :] == G[:, None]).astype(np.float64)
        plan.kernel_error = top * float(np.abs(kappa - delta).sum(1).max())
        plan.noise = top * 10 * n_terms * _U * float(abs_sum.sum(1).max())
        if direct:  # the tokens it reads are rounded: exact if each was within 1/2
            reads = memory_inputs(c.target, plan.index)
            plan.input_error = max([c.memories[j].kernel_error + c.memories[j].noise for j in reads],
                                   default=0.0)
            plan.margin = 0.5
    for l, memories in enumerate(writers):
        for i, block in zip(memories, ffns[l]):
            plan = c.memories[i]
            reads = memory_inputs(c.target, i)
            err = max([c.memories[j].kernel_error + c.memories[j].noise for j in reads], default=0.0)
            plan.lookup_lipschitz = block.lipschitz
            # the exact lookup is exact on the grid; a random-feature one has its own miss
            miss = _grid_miss(c, i, block)
            plan.input_error = miss + block.lipschitz * err
            plan.margin = 0.5 if c.rpe == "lin" else math.log1p(0.5 / max(plan.lags))


def _grid_miss(c: AdaptiveConstruction, i: int, block: Lookup) -> float:
    """max over the grid of |lookup - lag value| (0 for the exact lookup, up to rounding)."""
    slots = [X_SLOT] + [token_slot(j) for j in memory_inputs(c.target, i)]
    Z = grid_points(c.alphabet, len(slots))
    h = np.zeros((Z.shape[0], c.model.config.d_model))
    h[:, slots] = Z
    h[:, ONE_SLOT] = 1.0
    out = np.maximum(h @ block.W.T + block.b, 0.0) @ block.A[lag_slot(i)]
    lags = lag_table(c.target, i, c.alphabet).astype(np.float64)
    values = lags if c.rpe == "lin" else np.log(lags)
    return float(np.abs(out - values).max())
