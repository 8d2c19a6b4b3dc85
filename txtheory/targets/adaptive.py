"""Task II targets beyond the paper's two examples: adaptive memories with chosen lags.

Part of ``txtheory.targets``; explained in ``book/adaptive-memory.md`` ("Task II:
adaptive, long but sparse memory"). Tokens are ±1 throughout. Each memory function
maps the sign of one token to one of two lags, (lag if +1, lag if -1); a zero token
(padding before position 0) takes the second. So every lag a target can realise is known
in advance, which is what the constructions and the trained experiments need.

* ``adaptive_boolean(lags)``: the paper's example (I) with g(1), g(-1) = lags,
  y_t = x_t · x_{t-t_1} · x_{t-t_2}, t_1 = g(x_t), t_2 = g(x_{t-t_1}) (K = M = 2).
* ``pointer_chase(steps, lags)``: the paper's example (II), a ``steps``-step chain:
  t_1 = g(x_t), t_{k+1} = t_k + g(x_{t-t_k}), y_t = x_{t-t_K}. Each hop needs the token
  the previous hop found (K = M = steps).
* ``independent_memories(pairs)``: M memories that all depend on x_t alone (K = 0),
  memory i with lags pairs[i], y_t = (x_{t-t_1} + ... + x_{t-t_M}) / M.
"""
from __future__ import annotations

from typing import Sequence

import torch

from txtheory._checks import check_int
from txtheory.targets.families import AdaptiveMemoryTarget
from txtheory.targets.readouts import LinearReadout, ProductReadout

Tensor = torch.Tensor


def check_lag_pair(name: str, pair) -> tuple[int, int]:
    """Two lags (lag if the token is +1, lag if it is -1), each an integer >= 1."""
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise ValueError(f"{name} must be a pair (lag if +1, lag if -1) of integers >= 1, got {pair!r}")
    return tuple(check_int(f"{name}[{i}]", v, minimum=1) for i, v in enumerate(pair))


def sign_lag(v: Tensor, pair: tuple[int, int]) -> Tensor:
    """pair[0] where v > 0, else pair[1] (so a zero padding token takes pair[1])."""
    return torch.where(v > 0, pair[0], pair[1])


def adaptive_boolean(lags: Sequence[int] = (1, 2)) -> AdaptiveMemoryTarget:
    """The paper's adaptive sparse Boolean function with g(1), g(-1) = ``lags``; K = M = 2."""
    pair = check_lag_pair("lags", lags)
    top = max(pair)
    return AdaptiveMemoryTarget(
        memory_functions=[lambda u: sign_lag(u[..., 0], pair),   # t_1 = g(x_t)
                          lambda u: sign_lag(u[..., 1], pair)],  # t_2 = g(x_{t-t_1})
        n_nested=2, readout=ProductReadout(3), max_lags=(top, top),
        label=f"adaptive sparse Boolean, g(1) = {pair[0]}, g(-1) = {pair[1]}")


def pointer_chase(steps: int, lags: Sequence[int] = (1, 2)) -> AdaptiveMemoryTarget:
    """A ``steps``-hop pointer chase: t_1 = g(x_t), t_{k+1} = t_k + g(x_{t-t_k}), y = x_{t-t_K}."""
    K = check_int("steps", steps, minimum=1)
    pair = check_lag_pair("lags", lags)

    def hop(k: int):
        if k == 0:
            return lambda u: sign_lag(u[..., 0], pair)
        # u = (x_t, x_{t-t_1}, ..., x_{t-t_k}): recompute t_k from the tokens, then hop once more
        def g(u: Tensor) -> Tensor:
            lag = sign_lag(u[..., 0], pair)
            for j in range(1, k + 1):
                lag = lag + sign_lag(u[..., j], pair)
            return lag
        return g

    return AdaptiveMemoryTarget(
        memory_functions=[hop(k) for k in range(K)], n_nested=K,
        readout=LinearReadout([0.0] * K + [1.0]),
        max_lags=tuple((k + 1) * max(pair) for k in range(K)),
        label=f"{K}-step pointer chase, g(1) = {pair[0]}, g(-1) = {pair[1]}")


def independent_memories(pairs: Sequence[Sequence[int]]) -> AdaptiveMemoryTarget:
    """M memories of x_t alone, memory i with lags pairs[i]; y_t = mean of the M tokens."""
    if not isinstance(pairs, (list, tuple)) or not pairs:
        raise ValueError(f"pairs must be a non-empty list of lag pairs, got {pairs!r}")
    checked = [check_lag_pair(f"pairs[{i}]", p) for i, p in enumerate(pairs)]
    M = len(checked)
    return AdaptiveMemoryTarget(
        memory_functions=[(lambda pair: lambda u: sign_lag(u[..., 0], pair))(p) for p in checked],
        n_nested=0, readout=LinearReadout([0.0] + [1.0 / M] * M),
        max_lags=tuple(max(p) for p in checked),
        label=f"{M} independent adaptive memories")
