"""Proposition 4.2: the witness y_t = x_{t - g(x_t)}, g(x) = x + 1 on {-1, 0, 1}.

Part of ``txtheory.construct``; explained in ``book/adaptive-memory.md``, section
"Proposition 4.2: why the dot product": (A) ``witness_attention``, one DP layer that
fetches the token; (B) the affine floor, with the exact worst-case error of any model
affine in its tokens (``affine_filter``, ``affine_sup_error``) and the best one by
linear programming (``best_affine_error``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from txtheory._checks import check_int
from txtheory.construct.adaptive import kernel_points
from txtheory.construct.lookups import ONE_SLOT, X_SLOT, grid_points
from txtheory.kernels import fit_points
from txtheory.model import Transformer, TransformerConfig
from txtheory.rpe import inverse_positive




def witness_attention(n_heads: int, length: int, restarts: int = 4) -> Transformer:
    """Prop 4.2 (A): one normalisation-free lin-RPE DP attention layer for the witness.

    D = 3, x^(0)_t = (x_t, 1, 0). W_Q^h = √β_h (1, 1, 0) and W_K^h = √β_h (0, 1, 0) give the
    score -β_h (s - (x_t + 1)): no FFN is needed, g is affine. The heads write the fetched
    token into slot 2; a linear readout reads it (``readout="linear"``: attention alone).
    """
    H = check_int("n_heads", n_heads, minimum=1)
    length = check_int("length", length, minimum=3)
    config = TransformerConfig(d_in=1, d_model=3, n_layers=1, n_heads=H, d_out=1, rpe="lin", score="dp",
                               normalized=False, d_qk=1, d_value=3, dtype=torch.float64, readout="linear")
    model = Transformer(config)
    beta, alpha = fit_points(*kernel_points("lin", (0, 1, 2), length), H, restarts=restarts, max_rate=100.0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embed.weight[X_SLOT, 0] = 1.0
        model.embed.bias[ONE_SLOT] = 1.0
        attn = model.attn[0]
        b = torch.as_tensor(beta)
        attn.p_raw.copy_(inverse_positive(b))
        attn.W_V[:, 2, X_SLOT] = torch.as_tensor(alpha)
        attn.W_O.copy_(torch.eye(3, dtype=torch.float64))
        attn.W_Q[:, 0, X_SLOT] = b.sqrt()
        attn.W_Q[:, 0, ONE_SLOT] = b.sqrt()
        attn.W_K[:, 0, ONE_SLOT] = b.sqrt()
        model.ffn[0].weight[0, 2] = 1.0
    return model


WITNESS_TRIPLES = grid_points(np.array([-1.0, 0.0, 1.0]), 3)  # rows (x_t, x_{t-1}, x_{t-2})


def witness_value(z: np.ndarray) -> np.ndarray:
    """y = x_{t - g(x_t)} for rows z = (x_t, x_{t-1}, x_{t-2})."""
    return np.choose((z[:, 0] + 1).astype(int), [z[:, 0], z[:, 1], z[:, 2]])


def affine_sup_error(constant: float, filter: Sequence[float]) -> float:
    """Exact sup over all ternary inputs of |c + Σ_s r_s x_{t-s} - y_t| for the witness.

    The lags 0, 1, 2 enter through the 27 triples; every older lag is free, so the
    worst case adds Σ_{s>=3} |r_s|.
    """
    r = np.asarray(filter, dtype=np.float64).ravel()
    if r.size < 3:
        r = np.concatenate([r, np.zeros(3 - r.size)])
    core = constant + WITNESS_TRIPLES @ r[:3] - witness_value(WITNESS_TRIPLES)
    return float(np.abs(core).max() + np.abs(r[3:]).sum())


@torch.no_grad()
def affine_filter(model: Transformer, t: int, length: int) -> tuple[float, np.ndarray]:
    """(c, r) with model(x)_t = c + Σ_s r_s x_{t-s}, for a model affine in its tokens.

    Read off impulses at position t of a window of ``length``; raises if the model is
    not affine there (a random input must agree with c + r·x to 1e-9 relative).
    """
    t = check_int("t", t, minimum=0, maximum=length - 1)
    dtype = model.config.dtype
    zero = torch.zeros(1, length, 1, dtype=dtype)
    c = float(model(zero, positions=[t])[0, 0, 0])
    eye = torch.zeros(t + 1, length, 1, dtype=dtype)
    for s in range(t + 1):
        eye[s, t - s, 0] = 1.0
    r = (model(eye, positions=[t])[:, 0, 0] - c).double().numpy()  # (t+1,) r_s, s = lag
    x = torch.randint(-1, 2, (1, length, 1), generator=torch.Generator().manual_seed(0)).to(dtype)
    direct = float(model(x, positions=[t])[0, 0, 0])
    affine = c + float(np.dot(r, x[0, : t + 1, 0].double().numpy()[::-1]))
    tol = 1e-7 if dtype == torch.float64 else 1e-3
    if abs(direct - affine) > tol * (1 + abs(direct) + float(np.abs(r).sum())):
        raise ValueError(f"the model is not affine in its tokens at t = {t} (|{direct} - {affine}| too large); "
                         "affine_filter reads DP-free models with a linear readout")
    return c, r


def best_affine_error(triples: np.ndarray | None = None, values: np.ndarray | None = None) -> float:
    """min over c, r of max |c + z·r - y| over the rows z = (x_t, x_{t-1}, x_{t-2}) of
    ``triples`` with targets ``values``: a linear program (scipy's HiGHS). By default the
    witness on all 27 ternary triples (``affine_sup_error``'s minimum); the Task II
    chapter also passes the one-hop pointer chase on the 8 triples of ±1 tokens."""
    from scipy.optimize import linprog

    if (triples is None) != (values is None):
        raise ValueError("give both triples and values, or neither")
    if triples is None:
        Z, y = WITNESS_TRIPLES, witness_value(WITNESS_TRIPLES)
    else:
        Z = np.asarray(triples, dtype=np.float64)
        y = np.asarray(values, dtype=np.float64).ravel()
        if Z.ndim != 2 or Z.shape[1] != 3 or Z.shape[0] != y.shape[0] or not Z.shape[0]:
            raise ValueError(f"triples must be (n, 3) rows with n values, got {Z.shape} and {y.shape}")
        if not (np.isfinite(Z).all() and np.isfinite(y).all()):
            raise ValueError("triples and values must be finite")
    n = Z.shape[0]
    # variables (c, r_0, r_1, r_2, e): minimise e subject to |c + Z r - y| <= e
    A = np.hstack([np.ones((n, 1)), Z])
    A_ub = np.block([[A, -np.ones((n, 1))], [-A, -np.ones((n, 1))]])
    b_ub = np.concatenate([y, -y])
    res = linprog(np.r_[np.zeros(4), 1.0], A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * 4 + [(0, None)],
                  method="highs")
    if not res.success:
        raise RuntimeError(f"the linear program failed: {res.message}")
    return float(res.fun)
