"""Theorem 5.1: the one-layer DP-free Transformer for an essentially sparse memory (App. E).

Part of ``txtheory.construct``; explained in ``book/essential-memory.md`` ("Task III:
essentially sparse memory"), which builds the model here for several decay rates β and
sets its certified error against the rate C(n) M^{n+1} / H^n.

Target: y_t = f((X*ρ_1)(t), ..., (X*ρ_M)(t)), (X*ρ)(t) = sum_{s>=0} x_{t-s} ρ(s)
(``targets.EssentialMemoryTarget``). The model is the one of Theorem 3.1 (``fixed``) with
decaying kernels in place of deltas: block 0 of the residual stream holds x_t, head group
G_k (``H/M`` heads, the paper's equal allocation) writes X*κ_k into block k + 1, and the
readout FFN reads blocks 1..M. A log head never sees lag 0, so for log-RPE the
embedding also writes ρ_k(0) x_t into block k + 1: the residual path carries the lag-0
term (``one_layer.skip_weight``). κ_k is a free-rate least-squares fit
(``kernels.fit_free``) of ρ_k on the lags 0..length-1 the model sees: a sum of
exponentials e^{-β_h s} (lin-RPE, case A of the theorem, for ρ = O(e^{-βs})) or of
powers s^{-β_h} (log-RPE, case B, for ρ = O(s^{-β})). Either kind may be asked for
either tail: that mismatch is what the chapter measures.

A kernel undefined at lag 0 (``kernels.PowerDecay``) counts as ρ(0) = 0 here, as in
``shapes.KernelShape.tabulate``; a lin group, which sees lag 0, is then fitted to that
table, zero at lag 0 included, so the certificate covers every lag it sees.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from txtheory import kernels, kinds
from txtheory._checks import check_bool, check_int
from txtheory.construct.heads import ALLOCATIONS, _U, head_allocation
from txtheory.construct.one_layer import Construction, blank_model, head_slices, kernel_errors, load_weights
from txtheory.kernels import KernelFit, KernelShape
from txtheory.targets import EssentialMemoryTarget, LinearReadout


class EssentialMemoryConstruction(Construction):
    """Theorem 5.1's construction: the kernel targets are decaying kernels ρ_k."""


def essential_memory_transformer(
    kernel_shapes: Sequence[KernelShape],
    n_heads: int,
    rpe: str = "lin",
    *,
    length: int,
    readout: Any = None,
    normalized: bool = True,
    allocation: Any = "equal",
    fit_options: dict | None = None,
) -> EssentialMemoryConstruction:
    """Theorem 5.1's one-layer DP-free Transformer for the kernels ρ_1..ρ_M.

    kernel_shapes: M ``kernels`` shapes (``ExpDecay``, ``PowerDecay``, ``Tabulated``).
    n_heads: H >= M. rpe: "lin" or "log". length: the window the model runs on; the
    fits and the certificate cover the lags 0..length-1. readout: a ``targets``
    readout on M d inputs that describes its FFN weights (``LinearReadout``,
    ``ReLUReadout``); default the sum of the M memories, d = 1. normalized: softmax (the
    kernel is then exact at the window's last position, see ``fixed``) or the paper's
    normalisation-free form (exact at every position). allocation: "equal" (the paper's
    H/M per kernel), "paper" or M head counts (``heads.head_allocation``). fit_options:
    keyword arguments for ``kernels.fit_free`` (restarts, seed, max_iter).
    """
    shapes = _check_shapes(kernel_shapes)
    M = len(shapes)
    kinds.check_kind(rpe, "rpe")
    length = check_int("length", length, minimum=2)
    H = check_int("n_heads", n_heads, minimum=1)
    if H < M:
        raise ValueError(f"n_heads must be >= the number of kernels M = {M} (one head at least per kernel), got {H}")
    check_bool("normalized", normalized)
    readout = LinearReadout([1.0] * M) if readout is None else readout
    if not hasattr(readout, "ffn_weights") or not hasattr(readout, "lipschitz") or not hasattr(readout, "n_in"):
        raise ValueError("readout must describe its FFN weights and Lipschitz constant (a targets.LinearReadout "
                         f"or ReLUReadout), got {type(readout).__name__}")
    if readout.n_in % M:
        raise ValueError(f"readout must read M d inputs (M = {M} kernels), got n_in = {readout.n_in}")
    d = readout.n_in // M
    fit_options = {} if fit_options is None else fit_options
    if not isinstance(fit_options, dict):
        raise ValueError(f"fit_options must be a dict of keyword arguments or None, got {type(fit_options).__name__}")
    if isinstance(allocation, str) and allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS} or M head counts, got {allocation!r}")
    # head_allocation weighs memories by length; a decaying kernel has none, so "paper"
    # falls back on equal weights (the theorem's H/M).
    counts, ideal = head_allocation(range(1, M + 1), H, rpe, "equal" if allocation == "paper" else allocation)

    fits = tuple(_fit_kernel(rho, H_k, rpe, length, fit_options) for rho, H_k in zip(shapes, counts))
    groups = head_slices(counts)
    weights = readout.ffn_weights()
    model = blank_model(d, readout.d_out, M, H, weights.width, rpe, normalized)
    # readout slot i (kernel-major: all d channels of X*ρ_1, then X*ρ_2, ...) reads block i // d + 1
    # A log group cannot see lag 0: the residual path carries ρ_k(0) x_t into block k + 1.
    skips = [float(rho.tabulate(1)[0]) if kinds.FIRST_LAG[rpe] > 0 else 0.0 for rho in shapes]
    scales = load_weights(model, groups, fits, weights, [k + 1 for k in range(M)], rpe, normalized, length,
                          [f"kernel {k}" for k in range(M)], skips)
    errors = kernel_errors(model, groups, shapes, rpe, normalized, length - 1)
    target = EssentialMemoryTarget([rho.tabulate(length) for rho in shapes], readout, d_in=d,
                                   label=f"Theorem 5.1 target, {M} kernel(s)")
    lip = float(readout.lipschitz)
    coeff_sum = max(float(s.abs().sum()) for s in scales)
    return EssentialMemoryConstruction(
        model=model, theorem="Theorem 5.1", kernel_targets=shapes, groups=groups, allocation=counts,
        ideal_allocation=ideal, fits=fits, l1_errors=errors, lipschitz=lip, exact_on=weights.exact_on,
        bound=lip * max(errors), float64_noise=_U * lip * coeff_sum * (2 + math.log2(length)),
        target=target, length=length, rpe=rpe, normalized=normalized, method="free",
        readout=weights, slot_blocks=tuple(k + 1 for k in range(M)),
    )


def _check_shapes(kernel_shapes) -> tuple[KernelShape, ...]:
    if isinstance(kernel_shapes, KernelShape):
        kernel_shapes = (kernel_shapes,)
    try:
        shapes = tuple(kernel_shapes)
    except TypeError:
        raise ValueError(f"kernel_shapes must be a sequence of kernels shapes, got {kernel_shapes!r}") from None
    if not shapes:
        raise ValueError("kernel_shapes must hold at least one kernel")
    for i, rho in enumerate(shapes):
        if not isinstance(rho, KernelShape) or isinstance(rho, kernels.Delta):
            raise ValueError(f"kernel_shapes[{i}] must be an ExpDecay, PowerDecay or Tabulated kernel "
                             f"(a delta is Theorem 3.1's: construct.fixed_memory_transformer), got {rho!r}")
    return shapes


def _fit_kernel(rho: KernelShape, H_k: int, rpe: str, length: int, options: dict) -> KernelFit:
    """The group's kernel: a free-rate fit of ρ on the lags the model sees."""
    if kinds.FIRST_LAG[rpe] < rho.start:  # a lin group sees lag 0, where ρ counts as 0
        rho = kernels.Tabulated(tuple(rho.tabulate(length)))
    return kernels.fit_free(rho, H_k, rpe, window=length - 1, **options)

