"""Theorem 3.1: the one-layer DP-free Transformer for a fixed, sparse memory (App. B).

Part of ``txtheory.construct``; explained in ``book/fixed-memory.md`` ("Task I: fixed,
long but sparse memory"), which builds the model here, runs it, and sets its measured
sup-norm error against the bound the construction certifies (``one_layer``).

Target: y_t = f(x_{t-lags[0]}, ..., x_{t-lags[n-1]}) (``targets.FixedMemoryTarget``); the
non-zero lags, sorted, are the memories T_1 < ... < T_M. The model has one layer,
DP-free attention (W_Q = W_K = 0) and a readout FFN:

* Embedding, D = (M+1) d: W_E = (I_d, 0, ..., 0)ᵀ, b_E = 0. Block 0 of the residual
  stream holds x_t; block k (k = 1..M) is empty until attention writes x_{t-T_k} there.
* Heads: memory k owns a group G_k of H_k heads, sum_k H_k = H (``heads.head_allocation``).
  Head h in G_k has rate p_h = β_h and value matrix W_V^h = α_h Z_h E_{k<-0} (E_{k<-0}
  copies block 0 into block k); W_O = I_D. The group then writes into block k the
  convolution of x with the kernel κ_k(s) = sum_{h in G_k} α_h e^{-β_h s} (lin) or
  α_h s^{-β_h} (log), which approximates the delta 1{s = T_k}: the rates and
  coefficients are a ``kernels.fit_free`` fit (method="free") or the paper's grid
  (method="grid", Lemmas F.1 / F.4).
* Z_h undoes the softmax's normaliser (``heads.value_scales``). With ``normalized=True``
  the softmax at position t divides head h by Z_h(t), which depends on t on a finite
  window; we take Z_h = Z_h(length - 1), the normaliser at the window's LAST position.
  So the kernel is realised exactly at t = length - 1, and at an earlier t every head is
  scaled up by Z_h / Z_h(t) >= 1 (most for slowly decaying heads): the error is larger
  there (``Construction.bound_at`` gives the bound at any t). With ``normalized=False``
  (the paper's normalisation-free attention) Z_h = 1 and the kernel is realised exactly
  at every t.
* Readout (last FFN, no residual): the readout's own FFN weights
  (``targets.ReLUReadout``/``LinearReadout``/``ProductReadout``, ``ffn_weights()``), its
  input slots (the tokens at ``target.lags``, lag 0 = block 0) mapped onto their blocks.
  So E_FFN = 0 on the inputs where those weights are exact, and all the error is
  attention's.

``Construction.bound`` is then Lip · max_k e_k(length - 1), Lip the readout's own
``lipschitz``. For normalized=False, e_k(t) grows with t (more lags in the sum), so it
bounds every position of the window; for normalized=True use ``bound_at(t)``. Free-rate
fits reach coefficients of 1e10-1e13, and there the forward pass, not the kernel, limits
the accuracy; ``Construction.float64_noise`` estimates it (pessimistically: about ten
times the rounding error observed on small windows).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from txtheory import kernels, kinds
from txtheory._checks import check_bool, check_choice, check_int
from txtheory.construct.heads import ALLOCATIONS, _U, head_allocation
from txtheory.construct.one_layer import Construction, blank_model, head_slices, kernel_errors, load_weights
from txtheory.kernels import KernelFit
from txtheory.targets import FixedMemoryTarget

METHODS = ("free", "grid")


class FixedMemoryConstruction(Construction):
    """Theorem 3.1's construction: every kernel target is a delta 1{s = T_k}."""

    @property
    def memories(self) -> tuple[int, ...]:
        """The memory lags T_1 < ... < T_M; memory k is written into block k + 1."""
        return tuple(rho.T for rho in self.kernel_targets)


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
) -> FixedMemoryConstruction:
    """Theorem 3.1's one-layer DP-free Transformer for a fixed-memory target (App. B).

    target: a ``FixedMemoryTarget`` whose readout describes its FFN weights
    (``ReLUReadout``, ``LinearReadout``, ``ProductReadout``). n_heads: H >= M (one head
    at least per non-zero lag). rpe: "lin" or "log". length: the window T the model will
    run on (> max(lags)); with normalized=True the softmax is undone for the window's last
    position (see the module docstring). method: "free" (``kernels.fit_free``, free
    rates in float64) or "grid" (the proof's rate grids, Lemma F.1 / F.4, solved in
    mpmath with ``dps`` digits; their coefficients reach 1e20 and beyond, so the float64
    model does not realise them). allocation: "paper", "equal" or M head counts (see
    ``heads.head_allocation``). window: the last lag of the kernel fit's least-squares
    range; default length - 1, the lags the model sees. fit_options: extra keyword
    arguments for ``kernels.fit_free`` (e.g. restarts, seed) or for
    ``kernels.lemma_f1/f4`` (weight).
    Returns a ``FixedMemoryConstruction``; ``bound`` is the certified sup-norm error.
    """
    memories, length, window, fit_options = _check_arguments(
        target, n_heads, rpe, length, method, normalized, allocation, window, dps, fit_options)
    readout = target.readout.ffn_weights()
    counts, ideal = head_allocation(memories, n_heads, rpe, allocation)
    fits = tuple(_fit_memory(T, H_k, rpe, method, window, dps, fit_options) for T, H_k in zip(memories, counts))
    groups = head_slices(counts)
    model = blank_model(target.d_in, target.d_out, len(memories), n_heads, readout.width, rpe, normalized)
    block_of = {0: 0, **{T: k + 1 for k, T in enumerate(memories)}}  # lag -> its block
    slot_blocks = tuple(block_of[lag] for lag in target.lags)
    scales = load_weights(model, groups, fits, readout, slot_blocks, rpe, normalized,
                          length, [f"memory T={T}" for T in memories])
    deltas = tuple(kernels.Delta(T) for T in memories)
    errors = kernel_errors(model, groups, deltas, rpe, normalized, length - 1)
    lip = target.readout.lipschitz
    coeff_sum = max((float(s.abs().sum()) for s in scales), default=0.0)
    return FixedMemoryConstruction(
        model=model, theorem="Theorem 3.1", kernel_targets=deltas, groups=groups, allocation=counts,
        ideal_allocation=ideal, fits=fits, l1_errors=errors, lipschitz=lip, exact_on=readout.exact_on,
        bound=lip * (max(errors) if errors else 0.0),
        float64_noise=_U * lip * coeff_sum * (2 + math.log2(length)),
        target=target, length=length, rpe=rpe, normalized=normalized, method=method,
        readout=readout, slot_blocks=slot_blocks,
    )


def _check_arguments(target, n_heads, rpe, length, method, normalized, allocation, window, dps, fit_options):
    """Clear errors for every bad argument; returns (memories, length, window, fit_options)."""
    if not isinstance(target, FixedMemoryTarget):
        raise ValueError(f"target must be a targets.FixedMemoryTarget, got {type(target).__name__}")
    if not hasattr(target.readout, "ffn_weights") or not hasattr(target.readout, "lipschitz"):
        raise ValueError(
            "target.readout must describe its FFN weights and Lipschitz constant (a targets.ReLUReadout, "
            f"LinearReadout or ProductReadout), got {type(target.readout).__name__}"
        )
    kinds.check_kind(rpe, "rpe")
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
    H = check_int("n_heads", n_heads, minimum=1)
    if H < len(memories):
        raise ValueError(
            f"n_heads must be >= the number of memories M = {len(memories)} (one head at least per non-zero lag "
            f"{memories}), got {H}"
        )
    window = length - 1 if window is None else check_int("window", window, minimum=max(max_lag, 1))
    check_int("dps", dps, minimum=15)
    if fit_options is None:
        fit_options = {}
    elif not isinstance(fit_options, dict):
        raise ValueError(f"fit_options must be a dict of keyword arguments or None, got {type(fit_options).__name__}")
    return memories, length, window, fit_options


def _fit_memory(T: int, H_k: int, rpe: str, method: str, window: int, dps: int, options: dict) -> KernelFit:
    """The kernel of memory T's head group: a free-rate fit, or the paper's grid."""
    if method == "free":
        return kernels.fit_free(kernels.Delta(T), H_k, rpe, window=window, **options)
    lemma = kernels.lemma_f1 if rpe == "lin" else kernels.lemma_f4
    return lemma(T, H_k, window=window, dps=dps, **options)
