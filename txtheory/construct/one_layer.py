"""One-layer DP-free constructions and their certificates (Theorems 3.1 and 5.1).

Part of ``txtheory.construct``. In such a model (App. B of the paper) block 0 of the
residual stream holds x_t, and head group G_k writes into block k + 1 the convolution of
x with its kernel κ_k, which approximates a target kernel ρ_k: the delta 1{s = T_k} of a
fixed memory (``book/fixed-memory.md``), or a decaying kernel of Task III. A readout FFN
then reads the blocks.

The certificate. Let |x| <= x_max elementwise and t >= ``first_valid``. Block 0 is exact
(the residual). Block k + 1 holds sum_{s=0}^{t} κ_k^{(t)}(s) x_{t-s} in place of
sum_s ρ_k(s) x_{t-s}, so each of its coordinates is off by at most x_max e_k(t) with
e_k(t) = sum_{s=0}^{t} |κ_k^{(t)}(s) - ρ_k(s)| (only lags inside the window count). If the
readout FFN equals f on the exact blocks (``targets.FFNWeights.exact_on``) and has
Lipschitz constant Lip in the sup norm, then

    |TF_t(X) - H_t(X)| <= Lip · x_max · max_k e_k(t).

This is the paper's E_FFN + ||f||_Lip E_attn with E_FFN = 0, computed rather than
estimated. It holds in exact arithmetic for the model's actual float64 parameters: e_k is
evaluated in float64 plus a rigorous allowance for that evaluation's own rounding, or in
mpmath where the allowance would matter (``heads.group_kernel_f64`` / ``_mp``). The
model's own float64 forward pass adds rounding of order u·sum_h |W_V^h| (u = 1.1e-16),
which the bound does not cover; ``float64_noise`` estimates it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import mpmath
import numpy as np
import torch

from txtheory import kinds
from txtheory._checks import check_choice, check_int
from txtheory.attention import DTYPES, check_input
from txtheory.construct.exact import EXACT_DPS, check_sequence as _check_sequence, exact_output, mp_matrix as _mp_matrix
from txtheory.construct.heads import group_kernel_f64, group_kernel_mp, rates_to_raw, value_scales
from txtheory.kernels import KernelFit, KernelShape
from txtheory.model import Transformer, TransformerConfig


@dataclass(frozen=True, eq=False)
class Construction:
    """A constructed one-layer DP-free model and what the construction certifies about it.

    ``model``: the ``Transformer`` (float64). ``kernel_targets``: the kernel ρ_k each head
    group approximates; group k (0-based) is ``groups[k]`` (a slice of head indices) and
    writes block k + 1. ``allocation``: the H_k; ``ideal_allocation``: the real-valued
    H_k before rounding. ``fits``: the ``KernelFit`` of each group (its ``l1`` is over the
    fit's own lags, tail included). ``l1_errors``: e_k(length - 1), the l1 error of the
    kernel the model realises at the last position, over the lags 0..length-1 it sees.
    ``lipschitz``: the readout FFN's Lip; ``exact_on``: where that FFN equals f.
    ``bound``: Lip · max_k e_k(length - 1), the sup-norm error bound at the last position
    for |x| <= 1 and inputs on which the readout is exact (every position when not
    normalized). ``float64_noise``: a rough estimate (not a bound) of the float64 forward
    pass's own rounding error, u · Lip · max_k sum_{h in G_k} |W_V^h| · (2 + log2 length).
    """

    model: Transformer = field(repr=False)
    theorem: str
    kernel_targets: tuple[KernelShape, ...]
    groups: tuple[slice, ...]
    allocation: tuple[int, ...]
    ideal_allocation: tuple[float, ...]
    fits: tuple[KernelFit, ...]
    l1_errors: tuple[float, ...]
    lipschitz: float
    exact_on: str
    bound: float
    float64_noise: float
    target: object = field(repr=False)
    length: int
    rpe: str
    normalized: bool
    method: str
    readout: object = field(repr=False, default=None)  # the target's FFNWeights (f, exactly)
    slot_blocks: tuple[int, ...] = ()  # readout input slot i reads block slot_blocks[i]

    @property
    def first_valid(self) -> int:
        return self.target.first_valid

    def kernel(self, k: int, t: int | None = None) -> np.ndarray:
        """κ_k^{(t)}(s) for s = 0..t: the kernel group k realises at position t (default:
        the last position of the window), read from the model's parameters. Evaluated in
        mpmath where float64 cannot resolve the heads' cancellation."""
        k = check_int("k", k, minimum=0, maximum=len(self.groups) - 1)
        t = self.length - 1 if t is None else check_int("t", t, minimum=0)
        p, v = self._head_params(k)
        kern, slack = group_kernel_f64(p, v, self.rpe, self.normalized, t)
        if slack.sum() > 1e-13:
            kern = np.array([float(x) for x in group_kernel_mp(p, v, self.rpe, self.normalized, t)[0]])
        kern[0] += skip_weight(self.model, k)
        return kern

    def kernel_errors(self, t: int | None = None) -> tuple[float, ...]:
        """e_k(t) for every group k, as upper bounds (see the module docstring)."""
        t = self.length - 1 if t is None else check_int("t", t, minimum=self.first_valid)
        return kernel_errors(self.model, self.groups, self.kernel_targets, self.rpe, self.normalized, t)

    def bound_at(self, t: int, x_max: float = 1.0) -> float:
        """Lip · x_max · max_k e_k(t): the sup-norm error bound at position t >= first_valid
        for inputs with |x| <= x_max elementwise (any t, also beyond ``length``: the
        model is then run on a longer window)."""
        t = check_int("t", t, minimum=self.first_valid)
        x_max = float(x_max)
        if not (math.isfinite(x_max) and x_max >= 0):
            raise ValueError(f"x_max must be a finite number >= 0, got {x_max!r}")
        errs = self.kernel_errors(t)
        return self.lipschitz * x_max * (max(errs) if errs else 0.0)

    def worst_input(self, k: int = 0, t: int | None = None) -> torch.Tensor:
        """The ±1 input, (1, t + 1, d), on which group k's extraction error at position t
        is exactly e_k(t) in every coordinate: x_{t-s} = sign(κ_k^{(t)}(s) - ρ_k(s)) (0 where
        they agree). For one memory read by a unit linear readout it attains ``bound_at(t)``."""
        k = check_int("k", k, minimum=0, maximum=len(self.groups) - 1)
        t = self.length - 1 if t is None else check_int("t", t, minimum=self.first_valid)
        error = self.kernel(k, t) - self.kernel_targets[k].tabulate(t + 1)  # over lags s = 0..t
        signs = torch.tensor(np.sign(error)[::-1].copy(), dtype=torch.float64)  # position t - s
        return signs.view(1, t + 1, 1).expand(1, t + 1, self.model.config.d_in).clone()

    def _head_params(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        return head_params(self.model, self.groups[k], k)

    def exact_target(self, x: torch.Tensor, t: int, dps: int = EXACT_DPS) -> list:
        """H_t(x) in mpmath: the target's own readout f (``readout``, exact where
        ``exact_on`` says) on the exact blocks, x_t and sum_s ρ_k(s) x_{t-s}. x: (t', d)."""
        x = _check_sequence(x, self.model.config.d_in, t)
        d = self.model.config.d_in
        with mpmath.workdps(dps):
            blocks = [[mpmath.mpf(float(v)) for v in x[t]]]
            for rho in self.kernel_targets:
                blocks.append([mpmath.fsum(rho.value_mp(s) * mpmath.mpf(float(x[t - s, i]))
                                           for s in range(rho.start, t + 1)) for i in range(d)])
            z = [v for b in self.slot_blocks for v in blocks[b]]
            W, b, a = (_mp_matrix(w) for w in (self.readout.W, self.readout.b[:, None], self.readout.a))
            hidden = [max(mpmath.fsum(wi * zi for wi, zi in zip(row, z)) + bi[0], 0) for row, bi in zip(W, b)]
            return [mpmath.fsum(ai * hi for ai, hi in zip(row, hidden)) for row in a]

    def certify(self, x: torch.Tensor, positions=None, dps: int = EXACT_DPS) -> list[dict]:
        """Check the certificate on inputs: for each position t (default: the last), the
        largest |TF_t(X) - H_t(X)| over the sequences x (N, T, d), with TF the model's
        exact output for its float64 parameters and H the target's (both in mpmath,
        ``exact_output``, ``exact_target``), beside ``bound_at(t)``, the float64 forward
        pass's largest deviation from the exact output (``float64_deviation``) and its
        largest error against the exact target (``float64_error``). Rows of dicts; the
        certificate holds where ``error <= bound`` (to the mpmath evaluation's 10^(10-dps))."""
        check_input(x, self.model.config.d_in, torch.float64, "d_in")
        T = x.shape[1]
        positions = [T - 1] if positions is None else [check_int("t", t, minimum=self.first_valid,
                                                               maximum=T - 1) for t in positions]
        with torch.no_grad():
            float64_out = self.model(x)  # (N, T, c)
        rows = []
        for t in positions:
            err, dev, err64 = 0.0, 0.0, 0.0
            for n in range(x.shape[0]):
                tf = exact_output(self.model, x[n, :t + 1], t, dps)
                h = self.exact_target(x[n, :t + 1], t, dps)
                with mpmath.workdps(dps):
                    f64 = [mpmath.mpf(float(f)) for f in float64_out[n, t]]
                    err = max(err, max(float(abs(a - b)) for a, b in zip(tf, h)))
                    dev = max(dev, max(float(abs(f - a)) for f, a in zip(f64, tf)))
                    err64 = max(err64, max(float(abs(f - b)) for f, b in zip(f64, h)))
            rows.append({"t": t, "error": err, "bound": self.bound_at(t, float(x.abs().max())),
                         "float64_deviation": dev, "float64_error": err64, "slack": 10.0 ** (10 - dps)})
        return rows


def head_params(model: Transformer, group: slice, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rates p_h and value scales v_h (the block k+1 <- block 0 entry of W_O W_V^h) of one group."""
    attn = model.attn[0]
    d = model.config.d_in
    with torch.no_grad():
        p = attn.p.detach()[group].cpu().numpy().astype(np.float64)
        W_OV = attn._W_OV().detach()[group]  # (H_k, D, D)
        v = W_OV[:, (k + 1) * d, 0].cpu().numpy().astype(np.float64)
    return p, v


def skip_weight(model: Transformer, k: int) -> float:
    """The lag-0 weight that the embedding writes into block k + 1 (W_E's block k + 1 <- x_t
    entry): the residual path's share of kernel k, 0 unless a construction needs it (a
    log group cannot see lag 0, so Theorem 5.1 puts ρ_k(0) there)."""
    d = model.config.d_in
    return float(model.embed.weight.detach()[(k + 1) * d, 0])


def kernel_errors(model: Transformer, groups, kernel_targets, rpe: str, normalized: bool, t: int) -> tuple[float, ...]:
    """e_k(t) = sum_{s=0}^{t} |κ_k^{(t)}(s) - ρ_k(s)| for every group, as upper bounds:
    float64 plus its rounding allowance, or mpmath where that allowance would matter
    (more than 1e-12, or 0.1% of the error). κ_k(0) includes the residual path's
    ``skip_weight``."""
    out = []
    for k, (g, rho) in enumerate(zip(groups, kernel_targets)):
        p, v = head_params(model, g, k)
        kern, slack = group_kernel_f64(p, v, rpe, normalized, t)
        skip = skip_weight(model, k)
        kern[0] += skip
        err, allow = math.fsum(np.abs(kern - rho.tabulate(t + 1))), math.fsum(slack)
        if allow > max(1e-12, 1e-3 * err):
            vals, dps = group_kernel_mp(p, v, rpe, normalized, t)
            with mpmath.workdps(dps):
                vals[0] += mpmath.mpf(skip)
                err, allow = float(mpmath.fsum(abs(x - rho.value_mp(s)) if s >= rho.start else abs(x)
                                               for s, x in enumerate(vals))), 0.0
        out.append((err + allow) * (1 + 1e-12))
    return tuple(out)


# ----------------------------------------------------------------------------------
# Building the model: shared by Theorem 3.1 (``fixed``) and Theorem 5.1 (``essential``)


def head_slices(counts) -> tuple[slice, ...]:
    """Consecutive head slices, one per group: counts (2, 3) -> (slice(0, 2), slice(2, 5))."""
    ends = [0]
    for c in counts:
        ends.append(ends[-1] + c)
    return tuple(slice(a, b) for a, b in zip(ends, ends[1:]))


def blank_model(d_in: int, d_out: int, M: int, H: int, width: int, rpe: str, normalized: bool) -> Transformer:
    """A float64 one-layer DP-free model of the right shape, D = (M + 1) d."""
    config = TransformerConfig(
        d_in=d_in, d_model=(M + 1) * d_in, n_layers=1, n_heads=H, ffn_width=width,
        d_out=d_out, rpe=rpe, score="free", normalized=normalized, dtype=torch.float64,
    )
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten: leave the global RNG alone
        return Transformer(config)


def load_weights(model, groups, fits, readout, slot_blocks, rpe, normalized, length, labels,
                 skips=None) -> list[torch.Tensor]:
    """Write the proof's weights into ``model``: group k (heads ``groups[k]``, kernel
    ``fits[k]``) writes block k + 1, and the readout's input slot i reads block
    ``slot_blocks[i]`` (block 0 is x_t itself). ``skips[k]``, if given, is a lag-0 weight
    the embedding adds to block k + 1 (``skip_weight``). ``labels`` name the groups in
    errors. Returns each group's value scales α_h Z_h."""
    d = model.config.d_in
    D, H = model.config.d_model, model.config.n_heads
    raws = torch.zeros(H, dtype=torch.float64)
    W_V = torch.zeros(H, D, D, dtype=torch.float64)  # (H, Dv = D, D)
    eye = torch.eye(d, dtype=torch.float64)
    scales = []
    for k, (g, fit, label) in enumerate(zip(groups, fits, labels)):
        raw, p = rates_to_raw(fit, label)
        scale = value_scales(fit, p, rpe, normalized, length, label)
        raws[g] = raw
        W_V[g, (k + 1) * d:(k + 2) * d, 0:d] = scale[:, None, None] * eye  # α_h Z_h E_{k+1 <- 0}
        scales.append(scale)
    W_hidden = torch.zeros(readout.width, D, dtype=torch.float64)
    for i, b in enumerate(slot_blocks):
        W_hidden[:, b * d:(b + 1) * d] = readout.W[:, i * d:(i + 1) * d]
    attn, ffn = model.attn[0], model.ffn[0]
    with torch.no_grad():
        model.embed.weight.zero_()
        model.embed.weight[:d, :d] = eye  # W_E = (I_d, 0)ᵀ: (D, d)
        for k, w in enumerate(skips or ()):
            model.embed.weight[(k + 1) * d:(k + 2) * d, :d] = w * eye  # x_t's share of block k + 1
        model.embed.bias.zero_()
        attn.p_raw.copy_(raws)
        attn.W_V.copy_(W_V)
        attn.W_O.copy_(torch.eye(D, dtype=torch.float64))
        ffn.hidden.weight.copy_(W_hidden)
        ffn.hidden.bias.copy_(readout.b)
        ffn.out.weight.copy_(readout.a)
    return scales


def widen(model: Transformer, d_model: int, ffn_width: int, dtype: torch.dtype | None = None) -> Transformer:
    """The same function in a wider one-layer model: ``model``'s weights in the leading
    corner of a fresh model with embedding dimension ``d_model`` and FFN width ``ffn_width``,
    zeros elsewhere (in exact arithmetic the same function). A constructed model so placed
    in a trained model's shape is a warm start for training (``book/fixed-memory.md``,
    "Representability or optimisation?"). ``dtype`` (default: the model's) casts the
    weights, e.g. to float32, to ask whether a float64 solution survives there."""
    c = model.config
    if c.n_layers != 1 or c.score != ("free",):
        raise ValueError(f"widen takes a one-layer DP-free model, got n_layers={c.n_layers}, score={c.score}")
    d_model = check_int("d_model", d_model, minimum=c.d_model)
    ffn_width = check_int("ffn_width", ffn_width, minimum=c.ffn_width)
    Dv = model.attn[0].d_value
    if Dv != c.d_model:
        raise ValueError(f"widen needs d_value = d_model, got {Dv} and {c.d_model}")
    dtype = c.dtype if dtype is None else check_choice("dtype", dtype, DTYPES)
    wide = Transformer(replace(c, d_model=d_model, ffn_width=ffn_width, d_qk=None, d_value=None, dtype=dtype))
    D = c.d_model
    src, dst = model.attn[0], wide.attn[0]
    with torch.no_grad():
        for p in wide.parameters():
            p.zero_()
        wide.embed.weight[:D] = model.embed.weight
        wide.embed.bias[:D] = model.embed.bias
        dst.p_raw.copy_(src.p_raw)
        dst.W_V[:, :D, :D] = src.W_V
        dst.W_O[:D, :D] = src.W_O
        wide.ffn[0].hidden.weight[:c.ffn_width, :D] = model.ffn[0].hidden.weight
        wide.ffn[0].hidden.bias[:c.ffn_width] = model.ffn[0].hidden.bias
        wide.ffn[0].out.weight[:, :c.ffn_width] = model.ffn[0].out.weight
    return wide
