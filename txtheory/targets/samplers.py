"""Input samplers: (batch, length, dim) -> x: (B, T, d), from a seeded torch.Generator.

Part of ``txtheory.targets`` (``book/framework.md``, "A first experiment").
"""
from __future__ import annotations

import math

import torch

from txtheory._checks import check_float_dtype, check_generator, check_int

Tensor = torch.Tensor


def _check_sampler_args(batch, length, dim, generator, dtype) -> tuple[int, int, int]:
    b = check_int("batch", batch, minimum=1)
    t = check_int("length", length, minimum=1)
    d = check_int("dim", dim, minimum=1)
    check_generator("generator", generator)
    check_float_dtype("dtype", dtype)
    return b, t, d


def sample_pm1(batch: int, length: int, dim: int = 1, *,
               generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Tokens uniform on {-1, +1}: (B, T, d). Same generator state -> same tensor."""
    b, t, d = _check_sampler_args(batch, length, dim, generator, dtype)
    bits = torch.randint(0, 2, (b, t, d), generator=generator)  # (B, T, d) in {0, 1}
    return (2 * bits - 1).to(dtype)


def sample_ternary(batch: int, length: int, dim: int = 1, *,
                   generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Tokens uniform on {-1, 0, +1}: (B, T, d) (the input set of Prop 4.2's witness)."""
    b, t, d = _check_sampler_args(batch, length, dim, generator, dtype)
    return (torch.randint(0, 3, (b, t, d), generator=generator) - 1).to(dtype)


def sample_uniform(batch: int, length: int, dim: int = 1, *,
                   generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                   low: float = -1.0, high: float = 1.0) -> Tensor:
    """Tokens uniform on [low, high): (B, T, d)."""
    b, t, d = _check_sampler_args(batch, length, dim, generator, dtype)
    lo, hi = float(low), float(high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"low and high must be finite, got low={low!r}, high={high!r}")
    if not lo < hi:
        raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")
    u = torch.rand((b, t, d), generator=generator, dtype=dtype)  # (B, T, d) in [0, 1)
    return lo + (hi - lo) * u

