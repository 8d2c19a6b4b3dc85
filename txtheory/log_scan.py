"""Softmax log-RPE attention as a chunked scan, its older lags through the power law's
quadrature (``txtheory.powerlaw``): the fast path ``attention.MultiHeadAttention`` takes
for that form where the proved error budget holds.

Explained in ``book/framework.md``, section "Log-RPE as a quadrature of exponentials".
"""
from __future__ import annotations

import torch

from . import powerlaw

CHUNK = 16  # positions per block (measured best of 8, 16, 24, 32, 48 on a CPU, paper size)


def plan(p: torch.Tensor, length: int, dtype: torch.dtype) -> tuple[bool, powerlaw.Grid | None]:
    """(whether the scan meets ``powerlaw.BUDGET[dtype]`` for heads of rates ``p`` (H,) on a
    window of ``length``, its quadrature grid). The grid is None when the window spans at
    most two blocks: then no lag goes through the quadrature and the scan is exact."""
    C = min(CHUNK, length)
    if -(-length // C) <= 2:
        return True, None
    try:
        grid = powerlaw.grid(C, length, dtype)
    except ValueError:  # no grid of at most 1024 nodes meets the budget
        return False, None
    bound = powerlaw.head_error_bound(p.detach().double().cpu().numpy(), grid)
    return bool(bound.max() <= powerlaw.BUDGET[dtype]), grid


def forward(x: torch.Tensor, W_OV: torch.Tensor, p: torch.Tensor, normalized: bool,
            grid: powerlaw.Grid | None) -> torch.Tensor:
    """log-RPE attention at every position as a chunked scan (softmax, or with Z = 1
    normalisation-free), with the old lags through a power law's quadrature.

    Positions are cut into n blocks of C = ``grid.C``, t = cC + i. For the query at t:

    * keys in blocks c - 1 and c (lags 1..C + i) exactly: one (C·D, 2C·E) matrix per
      block, M_c = Σ_h [s^{-p_h} / Z_h(t)] ⊗ W_OV^h, as in the lin scan;
    * keys in blocks <= c - 2 (lags > C) through s^{-p} ≈ Σ_j c_j(p) a_j^s
      (``powerlaw``; a_j = e^{-u_j}, the constant node a_0 = 1): the rates are the
      same for every head, so one carry of J + 1 sums of E channels per block serves
      them all, R_{j,c} = Σ_{c' <= c-2} a_j^{C(c-1-c')} S_{j,c'} with S_{j,c'} block c'
      decayed to its end, and it reaches position i as a_j^{i+1} R_{j,c}, weighed per
      head by c_j(p_h) / Z_h(t) and mapped by W_OV^h.

    Z_h(t) = Σ_{s=1}^{t} s^{-p_h} is exact (a float64 cumulative sum). ``grid`` is None
    when n <= 2 (no key is two blocks back): then the path is exact. The error budget
    of the values is proved in ``powerlaw``; ``MultiHeadAttention`` takes this path only
    where it holds. Gradients have no proved budget: the tests hold them to the dense path's.
    Cost per sequence: O(T (2C + J) D E) for the blocks, and O(J n² E) for the carry
    between blocks, an (n, n) matrix per rate; the carry is the smaller while
    T < (2C + J) D C² / J, about 7·10^3 at C = 16, J = 47, D = 16.
    """
    B, T, E = x.shape
    H, D = p.shape[0], W_OV.shape[1]
    C = grid.C if grid is not None else min(CHUNK, T)
    n = -(-T // C)
    if grid is None and n > 2:
        raise ValueError(f"a window of {T} spans {n} blocks of {C}: the log scan needs its quadrature "
                         "grid (plan) for the keys two blocks back")
    dt = x.dtype
    p64 = p.double()  # (H,): the kernel, Z and the weights in float64, then cast
    lags = torch.arange(1, 2 * C, dtype=torch.float64, device=x.device)  # 1..2C-1
    if normalized:
        s = torch.arange(1, n * C, dtype=torch.float64, device=x.device)  # 1..nC-1
        Z = torch.cumsum(torch.exp(-p64[:, None] * torch.log(s)), dim=-1)  # (H, nC-1): Z(t), t = 1..
        Z = torch.cat([torch.zeros(H, 1, dtype=torch.float64, device=x.device), Z], dim=-1)  # (H, nC): Z(0) = 0
        inv_Z = torch.where(Z > 0, 1 / torch.where(Z > 0, Z, torch.ones_like(Z)), torch.zeros_like(Z))
    else:
        inv_Z = torch.ones(H, n * C, dtype=torch.float64, device=x.device)
    inv_Z = inv_Z.to(dt).view(H, n, C)
    # near keys: block c - 1 and c, key j in 0..2C-1 at lag C + i - j
    i = torch.arange(C, device=x.device)
    lag = C + i[:, None] - torch.arange(2 * C, device=x.device)[None, :]  # (C, 2C)
    k_near = torch.exp(-p64[:, None] * torch.log(lags))  # (H, 2C-1): s^{-p}, s = 1..2C-1
    near = torch.where(lag >= 1, k_near[:, (lag - 1).clamp(min=0)], torch.zeros((), dtype=torch.float64))
    G = torch.einsum("hij,hci->cijh", near.to(dt), inv_Z)  # (n, C, 2C, H)
    xp = torch.nn.functional.pad(x, (0, 0, C, n * C - T))  # (B, (n+1)C, E): a zero block first
    keys = xp.unfold(1, 2 * C, C)  # (B, n, E, 2C): blocks c-1 and c
    keys = keys.permute(1, 3, 2, 0).reshape(n, 2 * C * E, B)  # (n, 2C·E, B)
    if grid is not None and n > 2:  # older keys, through the shared rates
        u = torch.cat([torch.zeros(1, dtype=torch.float64), torch.as_tensor(grid.rates)]).to(x.device)
        log_a = -u  # (J1,)
        j = torch.arange(C, dtype=torch.float64, device=x.device)
        to_end = torch.exp(log_a[:, None] * (C - 1 - j)).to(dt)  # (J1, C)
        xc = xp[:, C:].view(B, n, C, E)
        S = torch.einsum("jl,bcle->bjce", to_end, xc)  # (B, J1, n, E)
        c = torch.arange(n, dtype=torch.float64, device=x.device)
        back = c[:, None] - 1 - c[None, :]  # (n, n): c - 1 - c'
        carry = torch.where(back >= 1, torch.exp(log_a[:, None, None] * C * back.clamp(min=0)),
                            torch.zeros((), dtype=torch.float64)).to(dt)  # (J1, n, n)
        R = torch.einsum("jcm,bjme->bjce", carry, S)  # (B, J1, n, E)
        weights = powerlaw.weights(p64, grid).to(dt)  # (J1, H)
        reach = torch.exp(log_a[:, None] * (j + 1)).to(dt)  # (J1, C): a_j^{i+1}
        far = torch.einsum("jh,ji,hci->cijh", weights, reach, inv_Z)  # (n, C, J1, H)
        G = torch.cat([G, far], dim=2)  # (n, C, 2C + J1, H): the far sums as more keys
        keys = torch.cat([keys, R.permute(2, 1, 3, 0).reshape(n, -1, B)], dim=1)
    # one (C·D, K·E) matrix per block, K = 2C (+ J1): M_c = Σ_h G_c[..., h] ⊗ W_OV^h
    M = torch.einsum("cijh,hed->ciejd", G, W_OV).reshape(n, C * D, -1)
    y = torch.bmm(M, keys)  # (n, C·D, B)
    return y.view(n, C, D, B).permute(3, 0, 1, 2).reshape(B, n * C, D)[:, :T]
