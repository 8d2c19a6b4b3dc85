"""Input samplers and the paper's three target families.

A target is a causal sequence-to-sequence map: it takes a batch ``x: (B, T, d)``
(position 0 the oldest token) and returns ``y: (B, T, c)``, where ``y_t`` depends on
``x_t, x_{t-1}, ...`` only. Tokens before position 0 do not exist; a target reads them
as zeros (zero padding). Every target exposes ``first_valid``, the first position whose
whole memory lies inside the window (t >= largest lag); errors are measured only at
t >= first_valid, and calling a target on a window with T <= first_valid raises.

The book explains these objects chapter by chapter:

- ``book/framework.md``         the shared semantics (time, padding, first_valid);
- ``book/fixed-memory.md``      Task I, ``FixedMemoryTarget`` (paper Sec. 3);
- ``book/adaptive-memory.md``   Task II, ``AdaptiveMemoryTarget`` (paper Sec. 4, eq. 8);
- ``book/essential-memory.md``  Task III, ``EssentialMemoryTarget`` (paper Sec. 5).

Choices made here (each also stated where it applies):

- Targets are ground truth, so they compute in float64 and return the input's dtype:
  a float32 target differs from the exact value only by its final rounding.
- Readouts and memory functions are callables on the *concatenated* tokens
  ``z: (..., n_in)``; the order is the order of the memories (``x_t`` first where the
  paper writes it first).
- The paper's experiments give absolute positions (x_48, x_56, x_99 in x_1..x_1000). We
  turn them into lags from a read position, chosen by ``read_at`` (see ``exp1b_target``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from ._checks import check_choice, check_int, check_positive, check_rank

Tensor = torch.Tensor
Readout = Callable[[Tensor], Tensor]  # z: (..., n_in) -> (..., c)  (or (...,) when c = 1)

__all__ = [
    "sample_pm1", "sample_ternary", "sample_uniform",
    "ReLUReadout", "LinearReadout", "ProductReadout", "random_relu_readout",
    "FixedMemoryTarget", "AdaptiveMemoryTarget", "EssentialMemoryTarget",
    "adaptive_boolean_example", "prop42_witness",
    "exponential_kernel", "power_law_kernel",
    "exp1b_target", "exp2a_target", "exp2b_target", "exp4a_target", "exp4b_target",
]

# The paper's memory positions in experiments 1b, 2a, 2b (1-indexed, in x_1..x_1000).
PAPER_POSITIONS_3 = (48, 56, 99)
PAPER_POSITIONS_1 = (99,)


# ----------------------------------------------------------------------------------
# Input samplers: (batch, length, dim) -> x: (B, T, d)


def _check_sampler_args(batch, length, dim, generator, dtype) -> tuple[int, int, int]:
    b = check_int("batch", batch, minimum=1)
    t = check_int("length", length, minimum=1)
    d = check_int("dim", dim, minimum=1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
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


# ----------------------------------------------------------------------------------
# Readouts f: z (..., n_in) -> (..., c). Weights are kept in float64 (they define the
# target) and cast to z's dtype and device on call.


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

    W: (K, n_in), b: (K,), a: (c, K). These are exactly an FFN's weights: a later
    construction copies them (``as_ffn_weights``) and realises f without error.
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

    def as_ffn_weights(self) -> dict[str, Tensor]:
        """Copies of {W: (K, n_in), b: (K,), a: (c, K)}."""
        return {"W": self.W.clone(), "b": self.b.clone(), "a": self.a.clone()}

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
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
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


# ----------------------------------------------------------------------------------
# Shared target machinery


class _Target:
    """Input checks and dtype policy shared by the three families."""

    first_valid: int
    d_in: int
    d_out: int
    label: str

    def __call__(self, x: Tensor) -> Tensor:
        """x: (B, T, d_in) -> y: (B, T, d_out), in x's dtype."""
        x64 = self._check_input(x)
        y = self._forward(x64)  # (B, T, c) float64
        return y.to(x.dtype)

    def _forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_input(self, x: Any) -> Tensor:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a torch.Tensor of shape (B, T, d), got {type(x).__name__}")
        check_rank("x", x, 3, "(B, T, d)")
        if not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor (float32 or float64), got {x.dtype}")
        if x.shape[-1] != self.d_in:
            raise ValueError(f"x has token dimension d={x.shape[-1]} but the target's d_in is {self.d_in}")
        T = x.shape[1]
        if T <= self.first_valid:
            raise ValueError(f"largest lag {self.first_valid} of {type(self).__name__} must be < window length "
                             f"T={T} (x.shape[1]); no position of this window has its whole memory inside it")
        return x.to(torch.float64)

    def describe(self) -> str:
        core = self._describe()
        return f"{self.label}: {core}" if self.label else core

    def _describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


def _shift(xp: Tensor, pad: int, lag: int, T: int) -> Tensor:
    """x_{t-lag} for t = 0..T-1 from the zero-padded xp: (B, pad+T, d)."""
    return xp[:, pad - lag: pad - lag + T]  # (B, T, d)


# ----------------------------------------------------------------------------------
# Task I: fixed, long but sparse memory (paper eq. 5)


@dataclass(eq=False, repr=False)
class FixedMemoryTarget(_Target):
    """y_t = f(x_{t-lags[0]}, ..., x_{t-lags[M-1]}); lag 0 is the current token.

    The paper's f(x_t, x_{t-T_1}, ..., x_{t-T_M}) is lags=(0, T_1, ..., T_M). The
    readout receives the tokens concatenated in the order of ``lags``:
    z: (B, T, M * d_in). first_valid = max(lags).
    ``read_position`` (optional) is where a paper experiment reads its scalar f*(x).
    """

    lags: Sequence[int]
    readout: Readout
    d_in: int = 1
    label: str = ""
    read_position: int | None = None
    first_valid: int = field(init=False)
    d_out: int = field(init=False)

    def __post_init__(self):
        lags = tuple(self.lags) if isinstance(self.lags, (list, tuple, range)) else None
        if not lags:
            raise ValueError(f"lags must be a non-empty sequence of distinct integers >= 0, got {self.lags!r}")
        lags = tuple(check_int(f"lags[{i}]", lag, minimum=0) for i, lag in enumerate(lags))
        if len(set(lags)) != len(lags):
            raise ValueError(f"lags must be distinct, got {lags}")
        self.lags = lags
        self.d_in = check_int("d_in", self.d_in, minimum=1)
        self.first_valid = max(lags)
        self.d_out = _resolve_readout(self.readout, len(lags) * self.d_in)

    def _forward(self, x: Tensor) -> Tensor:
        B, T, d = x.shape
        P = self.first_valid
        xp = F.pad(x, (0, 0, P, 0))  # (B, P+T, d): P zero tokens before position 0
        z = torch.cat([_shift(xp, P, lag, T) for lag in self.lags], dim=-1)  # (B, T, M*d)
        return _apply_readout(self.readout, z, self.d_out)  # (B, T, c)

    def _describe(self) -> str:
        toks = ", ".join("x_t" if lag == 0 else f"x_(t-{lag})" for lag in self.lags)
        return f"y_t = f({toks}) with f = {self.readout!r}; first_valid = {self.first_valid}"


# ----------------------------------------------------------------------------------
# Task II: K-adaptive, long but sparse memory (paper eq. 7-8)


@dataclass(eq=False, repr=False)
class AdaptiveMemoryTarget(_Target):
    """y_t = f(x_t, x_{t-t_1}, ..., x_{t-t_M}) with nested, token-dependent lags (eq. 8).

    memory_functions[i] is g_{i+1}. It receives the concatenation
    u = (x_t, x_{t-t_1}, ..., x_{t-t_j}): (B, T, (1+j) d_in) with j = min(i, K),
    K = n_nested, and returns integer lags (B, T) or (B, T, 1) in [0, max_lags[i]].
    So g_1 sees x_t; g_{i+1} sees x_t and the first min(i, K) extracted tokens; with
    K = 0 every g sees x_t only. Every lag is measured from t.

    Lags may be 0 (the paper asks >= 1, but Prop 4.2's witness uses g = 0). Before
    position 0 the extracted tokens are zeros, so the memory functions must also return
    valid lags on zero tokens; an out-of-range or non-integer lag anywhere raises.
    first_valid = max(max_lags). The readout sees z = (x_t, x_{t-t_1}, ..., x_{t-t_M}):
    (B, T, (M+1) d_in).
    """

    memory_functions: Sequence[Callable[[Tensor], Tensor]]
    n_nested: int
    readout: Readout
    max_lags: Sequence[int]
    d_in: int = 1
    label: str = ""
    first_valid: int = field(init=False)
    d_out: int = field(init=False)

    def __post_init__(self):
        gs = tuple(self.memory_functions) if isinstance(self.memory_functions, (list, tuple)) else None
        if not gs:
            raise ValueError("memory_functions must be a non-empty list of callables g_1..g_M")
        for i, g in enumerate(gs):
            if not callable(g):
                raise ValueError(f"memory_functions[{i}] must be callable, got {type(g).__name__}")
        M = len(gs)
        if not isinstance(self.max_lags, (list, tuple)) or len(self.max_lags) != M:
            raise ValueError(f"max_lags must be a list of {M} integers (one per memory function), "
                             f"got {self.max_lags!r}")
        self.max_lags = tuple(check_int(f"max_lags[{i}]", v, minimum=0) for i, v in enumerate(self.max_lags))
        self.memory_functions = gs
        self.n_nested = check_int("n_nested", self.n_nested, minimum=0, maximum=M)
        self.d_in = check_int("d_in", self.d_in, minimum=1)
        self.first_valid = max(self.max_lags)
        self.d_out = _resolve_readout(self.readout, (M + 1) * self.d_in)

    def _lags_and_tokens(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        B, T, d = x.shape
        P = self.first_valid
        xp = F.pad(x, (0, 0, P, 0))  # (B, P+T, d)
        pos = torch.arange(T, device=x.device) + P  # (T,) position of x_t inside xp
        tokens = [x]  # x_t, then x_{t-t_1}, x_{t-t_2}, ...  each (B, T, d)
        lags = []
        for i, g in enumerate(self.memory_functions):
            u = torch.cat(tokens[: 1 + min(i, self.n_nested)], dim=-1)  # (B, T, (1+j) d)
            lag = self._check_lags(g(u), i, (B, T))  # (B, T) long
            idx = (pos - lag).unsqueeze(-1).expand(B, T, d)  # (B, T, d) index into xp
            tokens.append(torch.gather(xp, 1, idx))  # x_{t - t_i}: (B, T, d)
            lags.append(lag)
        return torch.stack(lags, dim=-1), tokens

    def _check_lags(self, v: Any, i: int, bt: tuple[int, int]) -> Tensor:
        name = f"memory_functions[{i}]"
        if not isinstance(v, torch.Tensor):
            raise ValueError(f"{name} must return a tensor of lags of shape (B, T), got {type(v).__name__}")
        if v.shape == (*bt, 1):
            v = v.squeeze(-1)
        if v.shape != bt:
            raise ValueError(f"{name} must return lags of shape (B, T) = {bt}, got {tuple(v.shape)}")
        if v.is_floating_point():
            if not torch.isfinite(v).all() or (v != torch.round(v)).any():
                bad = v[~torch.isfinite(v) | (v != torch.round(v))][0].item()
                raise ValueError(f"{name} must return integer lags, got {bad}")
        v = v.long()
        hi = self.max_lags[i]
        if (v < 0).any() or (v > hi).any():
            bad = v[(v < 0) | (v > hi)][0].item()
            raise ValueError(f"{name} returned lag {bad}, outside the allowed [0, max_lags[{i}]] = [0, {hi}]")
        return v

    def memory_lags(self, x: Tensor) -> Tensor:
        """The realised lags (t_1, ..., t_M) at every position: (B, T, M) long."""
        return self._lags_and_tokens(self._check_input(x))[0]

    def _forward(self, x: Tensor) -> Tensor:
        _, tokens = self._lags_and_tokens(x)
        z = torch.cat(tokens, dim=-1)  # (B, T, (M+1) d)
        return _apply_readout(self.readout, z, self.d_out)

    def _describe(self) -> str:
        M = len(self.memory_functions)
        return (f"y_t = f(x_t, x_(t-t_1), ..., x_(t-t_{M})), {M} adaptive memories with nesting "
                f"K = {self.n_nested}, max lags {self.max_lags}, f = {self.readout!r}; "
                f"first_valid = {self.first_valid}")


def _g_boolean(v: Tensor) -> Tensor:
    """g(1) = 1, g(-1) = 2; a zero (padding) token also gets 2."""
    return torch.where(v > 0, 1, 2)


def adaptive_boolean_example() -> AdaptiveMemoryTarget:
    """Paper Sec. 4, example (I): y_t = x_t x_{t-g(x_t)} x_{t-g(x_{t-g(x_t)})}, K = M = 2.

    X in {+-1}, g(1) = 1, g(-1) = 2. t_1 = g(x_t); t_2 = g(x_{t-t_1}) (measured from t).
    For the zero tokens before position 0 we set g(0) = 2; first_valid = 2.
    """
    return AdaptiveMemoryTarget(
        memory_functions=[lambda u: _g_boolean(u[..., 0]),   # t_1 = g(x_t)
                          lambda u: _g_boolean(u[..., 1])],  # t_2 = g(x_{t-t_1})
        n_nested=2, readout=ProductReadout(3), max_lags=(2, 2),
        label="adaptive sparse Boolean (paper Sec. 4, example I)")


def prop42_witness() -> AdaptiveMemoryTarget:
    """Prop 4.2's witness: X in {-1, 0, 1}, y_t = x_{t-g(x_t)}, g(-1)=0, g(0)=1, g(1)=2.

    g(v) = v + 1 on the ternary set; readout picks the extracted token, f(x_t, x_{t-t_1})
    = x_{t-t_1}. first_valid = 2. Non-ternary inputs give non-integer lags and raise.
    """
    return AdaptiveMemoryTarget(
        memory_functions=[lambda u: u[..., 0] + 1], n_nested=0,
        readout=LinearReadout([0.0, 1.0]), max_lags=(2,),
        label="Prop 4.2 witness")


# ----------------------------------------------------------------------------------
# Task III: essentially sparse memory (paper eq. 13): y_t = f((X*rho_1)(t), ...)


def exponential_kernel(beta: float, support: int) -> Tensor:
    """rho(s) = exp(-beta s) for s = 0..support-1: (support,) float64."""
    beta = check_positive("beta", beta)
    support = check_int("support", support, minimum=1)
    s = torch.arange(support, dtype=torch.float64)
    return torch.exp(-beta * s)


def power_law_kernel(beta: float, support: int) -> Tensor:
    """rho(s) = s^(-beta) for s = 1..support-1 and rho(0) = 0: (support,) float64.

    rho(0) = 0 because s^(-beta) is undefined at 0, and because a log-RPE head cannot
    attend to lag 0 (phi_log(0) = -inf): this is the kernel such a head can realise.
    """
    beta = check_positive("beta", beta)
    support = check_int("support", support, minimum=1)
    s = torch.arange(support, dtype=torch.float64)
    rho = s.clamp(min=1.0) ** (-beta)
    rho[0] = 0.0
    return rho


def _fft_size(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@dataclass(eq=False, repr=False)
class EssentialMemoryTarget(_Target):
    """y_t = f((X*rho_1)(t), ..., (X*rho_M)(t)), (X*rho)(t) = sum_{s=0}^{S-1} x_{t-s} rho(s).

    Each kernel is a 1-D array of length S (its support); each channel of x is convolved
    with it. The readout sees z: (B, T, M d_in), kernel-major (all d channels of X*rho_1,
    then X*rho_2, ...). first_valid = max_k S_k - 1. The causal convolution is computed
    by FFT in float64 (O(T log T)); ``convolve_direct`` is the O(T S) reference.
    """

    kernels: Sequence[Any]
    readout: Readout
    d_in: int = 1
    label: str = ""
    read_position: int | None = None
    first_valid: int = field(init=False)
    d_out: int = field(init=False)

    def __post_init__(self):
        ks = list(self.kernels) if isinstance(self.kernels, (list, tuple)) else None
        if not ks:
            raise ValueError("kernels must be a non-empty list of 1-D arrays (rho(0), rho(1), ...)")
        self.kernels = tuple(_as_float_tensor(f"kernels[{i}]", k, (1,)).to(torch.float64) for i, k in enumerate(ks))
        for i, k in enumerate(self.kernels):
            if k.numel() < 1:
                raise ValueError(f"kernels[{i}] must have support >= 1, got an empty kernel")
        self.d_in = check_int("d_in", self.d_in, minimum=1)
        self.first_valid = max(k.numel() for k in self.kernels) - 1
        self.d_out = _resolve_readout(self.readout, len(self.kernels) * self.d_in)

    def _kernel_matrix(self, device) -> Tensor:
        S = self.first_valid + 1
        return torch.stack([F.pad(k, (0, S - k.numel())) for k in self.kernels]).to(device)  # (M, S)

    def convolve(self, x: Tensor) -> Tensor:
        """(X*rho_k)(t) for every k, by FFT: x (B, T, d) -> (B, T, M*d) float64."""
        B, T, d = x.shape
        rho = self._kernel_matrix(x.device)  # (M, S), S <= T
        M, S = rho.shape
        n = _fft_size(T + S - 1)  # no circular wrap-around into positions 0..T-1
        X = torch.fft.rfft(x.to(torch.float64).transpose(1, 2), n=n)  # (B, d, n//2+1)
        R = torch.fft.rfft(rho, n=n)  # (M, n//2+1)
        y = torch.fft.irfft(X[:, None] * R[None, :, None], n=n)[..., :T]  # (B, M, d, T)
        return y.permute(0, 3, 1, 2).reshape(B, T, M * d)  # (B, T, M*d)

    def convolve_direct(self, x: Tensor) -> Tensor:
        """Reference: the same sums, one shifted copy per lag (O(T S)): (B, T, M*d)."""
        B, T, d = x.shape
        x = x.to(torch.float64)
        P = self.first_valid
        xp = F.pad(x, (0, 0, P, 0))
        outs = []
        for k in self.kernels:
            acc = torch.zeros_like(x)
            for s in range(min(k.numel(), T)):
                acc = acc + k[s].to(x.device) * _shift(xp, P, s, T)
            outs.append(acc)
        return torch.cat(outs, dim=-1)

    def _forward(self, x: Tensor) -> Tensor:
        return _apply_readout(self.readout, self.convolve(x), self.d_out)

    def _describe(self) -> str:
        sizes = ", ".join(str(k.numel()) for k in self.kernels)
        return (f"y_t = f((X*rho_1)(t), ...) with {len(self.kernels)} kernel(s) of support {sizes}, "
                f"f = {self.readout!r}; first_valid = {self.first_valid}")


# ----------------------------------------------------------------------------------
# The paper's synthetic experiments (App. H.2) as sequence targets.


def _paper_lags(positions: tuple[int, ...], length: Any, read_at: Any) -> tuple[tuple[int, ...], int, int]:
    """Lags from a read position to the paper's 1-indexed absolute ``positions``.

    Returns (lags, read position 0-indexed, checked length). 1-indexed position p is
    0-indexed p-1; reading at 0-indexed r gives lag r - (p-1).
    """
    length = check_int("length", length, minimum=max(positions))
    read_at = check_choice("read_at", read_at, ("end", "last_memory"))
    r = length - 1 if read_at == "end" else max(positions) - 1  # 0-indexed read position
    return tuple(r - (p - 1) for p in positions), r, length


def exp1b_target(length: int = 1000, *, generator: torch.Generator | None = None,
                 read_at: str = "end") -> FixedMemoryTarget:
    """Experiment 1b (also 3a): f*(x) = g*(x_48, x_56, x_99), g*(z) = sum_{k<=64} ReLU(<w_k, z>).

    w_k ~ N(0, I_3) drawn (float64) from ``generator``. The paper's positions are
    absolute (1-indexed, x_1..x_length) with a scalar output; we read it as a sequence
    target with fixed lags from a read position r (0-indexed):

    - ``read_at="end"``: r = length-1, lags (length-48, length-56, length-99)
      = (952, 944, 901) for length 1000; first_valid = length-48.
    - ``read_at="last_memory"``: r = 98 (x_99 is the current token), lags (51, 43, 0).

    ``length`` must be >= 99 so that x_99 exists. y_t = g*(x_{t-lag_1}, ...) at every t;
    ``read_position`` = r is where the paper's f*(x) sits in a window of ``length``.
    """
    lags, r, _ = _paper_lags(PAPER_POSITIONS_3, length, read_at)
    return FixedMemoryTarget(lags, random_relu_readout(3, 64, generator), read_position=r,
                             label=f"exp1b g*(x_48, x_56, x_99), read at {r} ({read_at})")


def exp2a_target(length: int = 1000, *, generator: torch.Generator | None = None,
                 read_at: str = "end") -> FixedMemoryTarget:
    """Experiment 2a: f*(x) = g*(x_99) = sum_{k<=64} ReLU(w_k x_99), w_k ~ N(0, 1).

    Same read convention as ``exp1b_target``: lag length-99 ("end") or 0 ("last_memory").
    """
    lags, r, _ = _paper_lags(PAPER_POSITIONS_1, length, read_at)
    return FixedMemoryTarget(lags, random_relu_readout(1, 64, generator), read_position=r,
                             label=f"exp2a g*(x_99), read at {r} ({read_at})")


def exp2b_target(length: int = 1000, *, generator: torch.Generator | None = None,
                 read_at: str = "end") -> FixedMemoryTarget:
    """Experiment 2b: f*(x) = x_48 + x_56 + x_99 (LinearReadout of ones).

    Same read convention as ``exp1b_target``. ``generator`` is unused (no randomness);
    it is accepted so every experiment constructor has the same signature.
    """
    lags, r, _ = _paper_lags(PAPER_POSITIONS_3, length, read_at)
    return FixedMemoryTarget(lags, LinearReadout([1.0, 1.0, 1.0]), read_position=r,
                             label=f"exp2b x_48 + x_56 + x_99, read at {r} ({read_at})")


def exp4a_target(length: int = 1000, *, generator: torch.Generator | None = None,
                 read_at: str = "end") -> EssentialMemoryTarget:
    """Experiment 4a: y_t = sum_{s=0}^{length-1} x_{t-s} rho(s), rho(s) = s^(-1/2).

    The paper's f*(x) = sum_{s=1}^{1000} x_s rho(1000-s) includes rho(0) = 0^(-1/2),
    which is undefined; we set rho(0) = 0 (``power_law_kernel``), which is also what a
    log-RPE head realises. Read at the end: first_valid = read_position = length-1.
    Only ``read_at="end"`` is defined; ``generator`` is unused. length >= 2.
    """
    length = check_int("length", length, minimum=2)
    check_choice("read_at", read_at, ("end",))
    return EssentialMemoryTarget([power_law_kernel(0.5, length)], LinearReadout([1.0]),
                                 read_position=length - 1, label="exp4a rho(s) = s^(-0.5), rho(0) = 0")


def exp4b_target(length: int = 1000, *, generator: torch.Generator | None = None,
                 read_at: str = "end") -> EssentialMemoryTarget:
    """Experiment 4b: y_t = sum_{s=0}^{length-1} x_{t-s} exp(-5 s) (light tail).

    Support = length, so first_valid = read_position = length-1 (exp(-5 s) < 1e-16
    beyond s = 8, so earlier positions agree to rounding, but we keep the paper's sum).
    Only ``read_at="end"`` is defined; ``generator`` is unused. length >= 1.
    """
    length = check_int("length", length, minimum=1)
    check_choice("read_at", read_at, ("end",))
    return EssentialMemoryTarget([exponential_kernel(5.0, length)], LinearReadout([1.0]),
                                 read_position=length - 1, label="exp4b rho(s) = exp(-5 s)")
