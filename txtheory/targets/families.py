"""The paper's three target families, as causal sequence-to-sequence maps.

Part of ``txtheory.targets``: ``FixedMemoryTarget`` (Task I, ``book/fixed-memory.md``),
``AdaptiveMemoryTarget`` (Task II) and ``EssentialMemoryTarget`` (Task III). Each takes
x: (B, T, d), checks it, computes in float64, and returns y: (B, T, c) in x's dtype.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from txtheory._checks import check_int, check_positions, check_rank
from txtheory.targets.readouts import Readout, _apply_readout, _as_float_tensor, _resolve_readout

Tensor = torch.Tensor


class _Target:
    """Input checks and dtype policy shared by the three families."""

    first_valid: int
    d_in: int
    d_out: int
    label: str

    def __call__(self, x: Tensor, positions: Any = None) -> Tensor:
        """x: (B, T, d_in) -> y: (B, T, d_out), in x's dtype; or (B, P, d_out) at the given
        ``positions`` (P,) only, which is what a loss that reads a few positions needs (the
        same values as ``target(x)[:, positions]``, computed at those positions only)."""
        x64 = self._check_input(x)
        positions = check_positions(positions, x.shape[1], x.device)
        if x64.shape[0] == 0:  # an empty batch has an empty answer (the FFT would reject it)
            return x.new_zeros(0, x.shape[1] if positions is None else positions.numel(), self.d_out)
        y = self._forward(x64, positions)  # (B, T or P, c) float64
        return y.to(x.dtype)

    def _forward(self, x: Tensor, positions: Tensor | None) -> Tensor:  # pragma: no cover - abstract
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
        bad = ~torch.isfinite(x)
        if bad.any():
            b, t, d = torch.nonzero(bad)[0].tolist()
            raise ValueError(f"x must be finite, got x[{b}, {t}, {d}] = {x[b, t, d].item()}")
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


def _read(xp: Tensor, pad: int, lag: int, T: int, positions: Tensor | None) -> Tensor:
    """x_{t-lag} at every t (B, T, d), or at ``positions`` only (B, P, d)."""
    return _shift(xp, pad, lag, T) if positions is None else xp[:, positions + (pad - lag)]


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

    def _forward(self, x: Tensor, positions: Tensor | None) -> Tensor:
        B, T, d = x.shape
        pad = self.first_valid
        xp = F.pad(x, (0, 0, pad, 0))  # (B, pad+T, d): zero tokens before position 0
        z = torch.cat([_read(xp, pad, lag, T, positions) for lag in self.lags], dim=-1)  # (B, T or P, M*d)
        return _apply_readout(self.readout, z, self.d_out)  # (B, T or P, c)

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

    def _forward(self, x: Tensor, positions: Tensor | None) -> Tensor:
        _, tokens = self._lags_and_tokens(x)  # the memory functions see every position
        z = torch.cat(tokens, dim=-1)  # (B, T, (M+1) d)
        if positions is not None:
            z = z[:, positions]  # (B, P, (M+1) d)
        return _apply_readout(self.readout, z, self.d_out)

    def _describe(self) -> str:
        M = len(self.memory_functions)
        return (f"y_t = f(x_t, x_(t-t_1), ..., x_(t-t_{M})), {M} adaptive memories with nesting "
                f"K = {self.n_nested}, max lags {self.max_lags}, f = {self.readout!r}; "
                f"first_valid = {self.first_valid}")




def _fft_size(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@dataclass(eq=False, repr=False)
class EssentialMemoryTarget(_Target):
    """y_t = f((X*rho_1)(t), ..., (X*rho_M)(t)), (X*rho)(t) = sum_{s=0}^{S-1} x_{t-s} rho(s).

    Each kernel is a 1-D array of length S (its support), for example
    ``kernels.PowerDecay(0.5).tabulate(S)``; each channel of x is convolved with it.
    The readout sees z: (B, T, M d_in), kernel-major (all d channels of X*rho_1, then
    X*rho_2, ...). first_valid = max_k S_k - 1. The causal convolution is computed
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

    def convolve_at(self, x: Tensor, positions: Tensor) -> Tensor:
        """(X*rho_k)(t) at the given positions (P,) only, one dot product over the support
        each: x (B, T, d) -> (B, P, M*d) float64, O(P S) rather than the FFT's O(T log T)."""
        B, T, d = x.shape
        rho = self._kernel_matrix(x.device)  # (M, S)
        M, S = rho.shape
        xp = F.pad(x.to(torch.float64), (0, 0, S - 1, 0))  # (B, S-1+T, d)
        idx = positions[:, None] + (S - 1) - torch.arange(S, device=x.device)  # (P, S): t - s
        z = torch.einsum("bpsd,ms->bpmd", xp[:, idx], rho)  # (B, P, M, d)
        return z.reshape(B, positions.numel(), M * d)

    def _forward(self, x: Tensor, positions: Tensor | None) -> Tensor:
        # a few read positions (the paper's one scalar per sequence): a dot product each
        few = positions is not None and positions.numel() * (self.first_valid + 1) <= 8 * x.shape[1]
        if few:
            return _apply_readout(self.readout, self.convolve_at(x, positions), self.d_out)
        z = self.convolve(x)  # (B, T, M*d)
        return _apply_readout(self.readout, z if positions is None else z[:, positions], self.d_out)

    def _describe(self) -> str:
        sizes = ", ".join(str(k.numel()) for k in self.kernels)
        return (f"y_t = f((X*rho_1)(t), ...) with {len(self.kernels)} kernel(s) of support {sizes}, "
                f"f = {self.readout!r}; first_valid = {self.first_valid}")

