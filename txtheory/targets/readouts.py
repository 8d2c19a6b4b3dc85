"""Readouts f: the function a target applies to its memories, z: (..., n_in) -> (..., c).

Part of ``txtheory.targets`` (``book/fixed-memory.md``). Each readout describes itself to
the constructions (``txtheory.construct``): ``ffn_weights()`` gives the weights of a ReLU
FFN that equals f (on all inputs, or on the Boolean cube for a product), and
``lipschitz`` its Lipschitz constant in the sup norm, so that a construction never has to
inspect a readout's fields by type. Weights are kept in float64 (they define the target)
and cast to z's dtype and device on call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from txtheory._checks import check_float_dtype, check_generator, check_int

Tensor = torch.Tensor
Readout = Callable[[Tensor], Tensor]  # z: (..., n_in) -> (..., c)  (or (...,) when c = 1)


@dataclass(frozen=True, eq=False)
class FFNWeights:
    """A ReLU FFN z -> a ReLU(W z + b), as ``model.FFN`` computes it (no output bias).

    W: (m, n_in), b: (m,), a: (c, m), float64. ``exact_on`` says on which inputs it equals
    the readout it came from: "all inputs", or "the Boolean cube {-1, 1}^n".
    """

    W: Tensor
    b: Tensor
    a: Tensor
    exact_on: str

    @property
    def width(self) -> int:
        return self.W.shape[0]

    def __call__(self, z: Tensor) -> Tensor:
        W, b, a = (p.to(dtype=z.dtype, device=z.device) for p in (self.W, self.b, self.a))
        return torch.relu(z @ W.T + b) @ a.T  # (..., n_in) -> (..., m) -> (..., c)


def _as_float_tensor(name: str, value: Any, ndim: tuple[int, ...]) -> Tensor:
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be array-like numbers, got {type(value).__name__}") from None
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimension(s), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite")
    return t.detach().clone()


@dataclass(eq=False, repr=False)
class ReLUReadout:
    """f(z) = sum_k a_k ReLU(<w_k, z> + b_k), i.e. a ReLU FFN with K neurons.

    W: (K, n_in), b: (K,), a: (c, K). These are exactly an FFN's weights: a construction
    copies them (``ffn_weights``) and realises f without error.
    """

    W: Tensor
    b: Tensor
    a: Tensor

    def __post_init__(self):
        self.W = _as_float_tensor("W", self.W, (2,))
        self.b = _as_float_tensor("b", self.b, (1,))
        self.a = _as_float_tensor("a", self.a, (2,))
        k = self.W.shape[0]
        if self.b.shape != (k,):
            raise ValueError(f"b must have shape (K,) = ({k},) to match W: (K, n_in), got {tuple(self.b.shape)}")
        if self.a.shape[1] != k:
            raise ValueError(f"a must have shape (c, K) with K = {k}, got {tuple(self.a.shape)}")

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_neurons(self) -> int:
        return self.W.shape[0]

    @property
    def d_out(self) -> int:
        return self.a.shape[0]

    def __call__(self, z: Tensor) -> Tensor:
        W, b, a = (p.to(dtype=z.dtype, device=z.device) for p in (self.W, self.b, self.a))
        return torch.relu(z @ W.T + b) @ a.T  # (..., n_in) -> (..., K) -> (..., c)

    def ffn_weights(self) -> FFNWeights:
        """Copies of W, b, a (float64): the readout is itself an FFN of width K."""
        return FFNWeights(*(p.to(torch.float64).clone() for p in (self.W, self.b, self.a)), exact_on="all inputs")

    @property
    def lipschitz(self) -> float:
        """An upper bound L with |f(z) - f(z')|_inf <= L ||z - z'||_inf (ReLU is
        1-Lipschitz): max over outputs j of sum_k |a_jk| ||w_k||_1."""
        return float((self.a.abs().to(torch.float64) @ self.W.abs().to(torch.float64).sum(1)).max())

    def __repr__(self) -> str:
        return f"ReLUReadout(n_in={self.n_in}, n_neurons={self.n_neurons}, d_out={self.d_out})"


def random_relu_readout(n_in: int, n_neurons: int = 64, generator: torch.Generator | None = None,
                        dtype: torch.dtype = torch.float64) -> ReLUReadout:
    """The paper's g*(z) = sum_{k=1}^{n_neurons} ReLU(<w_k, z>), w_k ~ N(0, I_{n_in}).

    a_k = 1 and b_k = 0; c = 1. W is drawn in ``dtype`` (float64 by default: the draw
    defines the target, so it should not depend on the dtype later used to train).
    """
    n_in = check_int("n_in", n_in, minimum=1)
    n_neurons = check_int("n_neurons", n_neurons, minimum=1)
    check_generator("generator", generator)
    check_float_dtype("dtype", dtype)
    W = torch.randn((n_neurons, n_in), generator=generator, dtype=dtype)  # (K, n_in)
    return ReLUReadout(W=W, b=torch.zeros(n_neurons, dtype=dtype), a=torch.ones(1, n_neurons, dtype=dtype))


@dataclass(eq=False, repr=False)
class LinearReadout:
    """f(z) = <w, z>. weights: (n_in,) gives c = 1; (c, n_in) gives c outputs."""

    weights: Tensor

    def __post_init__(self):
        w = _as_float_tensor("weights", self.weights, (1, 2))
        self.weights = w[None, :] if w.ndim == 1 else w  # (c, n_in)

    @property
    def n_in(self) -> int:
        return self.weights.shape[1]

    @property
    def d_out(self) -> int:
        return self.weights.shape[0]

    def __call__(self, z: Tensor) -> Tensor:
        return z @ self.weights.to(dtype=z.dtype, device=z.device).T  # (..., n_in) -> (..., c)

    def ffn_weights(self) -> FFNWeights:
        """wᵀz = ReLU(wᵀz) - ReLU(-wᵀz), exactly (in floating point too): width 2c."""
        w = self.weights.to(torch.float64)  # (c, n_in)
        eye = torch.eye(w.shape[0], dtype=torch.float64)
        return FFNWeights(torch.cat([w, -w]), torch.zeros(2 * w.shape[0], dtype=torch.float64),
                          torch.cat([eye, -eye], dim=1), exact_on="all inputs")

    @property
    def lipschitz(self) -> float:
        """max_j ||w_j||_1: the exact Lipschitz constant in the sup norm."""
        return float(self.weights.to(torch.float64).abs().sum(1).max())

    def __repr__(self) -> str:
        w = self.weights
        shown = w.flatten().tolist() if w.numel() <= 6 else f"tensor of shape {tuple(w.shape)}"
        return f"LinearReadout({shown})"


@dataclass(eq=False, repr=False)
class ProductReadout:
    """f(z) = z_1 z_2 ... z_n (the sparse-Boolean parity readout); c = 1."""

    n_in: int

    def __post_init__(self):
        self.n_in = check_int("n_in", self.n_in, minimum=1)

    d_out = 1

    def __call__(self, z: Tensor) -> Tensor:
        return z.prod(dim=-1, keepdim=True)  # (..., n_in) -> (..., 1)

    def ffn_weights(self) -> FFNWeights:
        """An FFN of width n + 2 equal to the product on the Boolean cube {-1, 1}^n.

        There the product depends only on u = z_1 + ... + z_n: it is (-1)^k with k = (n - u)/2
        the number of -1 entries. The FFN is the piecewise-linear interpolation g(u) of
        those n + 1 values at u = -n, -n + 2, ..., n (slopes ±1), constant outside [-n, n]:
        one constant unit plus one ReLU(u - u_j) per knot. A product on all of [-1, 1]^n
        is not piecewise linear, so no finite ReLU FFN equals it there.
        """
        n = self.n_in
        knots = torch.arange(-n, n + 1, 2, dtype=torch.float64)  # u_0..u_n
        values = torch.tensor([(-1.0) ** (n - j) for j in range(n + 1)], dtype=torch.float64)
        slopes = torch.diff(values) / 2  # (n,) one per segment, each ±1
        kinks = torch.diff(slopes, prepend=torch.zeros(1, dtype=torch.float64), append=torch.zeros(1, dtype=torch.float64))
        W = torch.cat([torch.zeros(1, n, dtype=torch.float64), torch.ones(n + 1, n, dtype=torch.float64)])
        b = torch.cat([torch.ones(1, dtype=torch.float64), -knots])
        a = torch.cat([values[:1], kinks])[None, :]  # the constant unit gives ReLU(1) * v_0
        return FFNWeights(W, b, a, exact_on="the Boolean cube {-1, 1}^n")

    @property
    def lipschitz(self) -> float:
        """n: on [-1, 1]^n, |z_1...z_n - z'_1...z'_n| <= n ||z - z'||_inf, and the FFN of
        ``ffn_weights`` (slope 1 in u = sum z) has the same constant."""
        return float(self.n_in)

    def __repr__(self) -> str:
        return f"ProductReadout(n_in={self.n_in})"


def _resolve_readout(readout: Any, n_in: int) -> int:
    """Check ``readout`` takes n_in inputs; return its output dimension c."""
    if not callable(readout):
        raise ValueError(f"readout must be callable (z: (..., n_in) -> (..., c)), got {type(readout).__name__}")
    declared = getattr(readout, "n_in", None)
    if declared is not None and declared != n_in:
        raise ValueError(f"readout takes n_in={declared} inputs but the target feeds it {n_in} "
                         f"(memories x token dimension)")
    d_out = getattr(readout, "d_out", None)
    if d_out is None:  # a plain callable: probe it once on a zero input
        out = readout(torch.zeros(1, n_in, dtype=torch.float64))
        d_out = 1 if out.shape == (1,) else (out.shape[-1] if out.ndim == 2 and out.shape[0] == 1 else None)
        if d_out is None:
            raise ValueError(f"readout must map (N, n_in) to (N, c) or (N,), got shape {tuple(out.shape)}")
    return int(d_out)


def _apply_readout(readout: Readout, z: Tensor, d_out: int) -> Tensor:
    out = readout(z)  # (B, T, n_in) -> (B, T, c), or (B, T) when c = 1
    if out.shape == z.shape[:-1] and d_out == 1:
        out = out.unsqueeze(-1)
    if out.shape != (*z.shape[:-1], d_out):
        raise ValueError(f"readout returned shape {tuple(out.shape)}, expected {(*z.shape[:-1], d_out)}")
    return out

