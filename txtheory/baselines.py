"""What a practitioner would use instead of attention for a decaying memory: a diagonal
linear state-space model and a gated RNN, trained by the same loop as the Transformer.

Explained in ``book/essential-memory.md`` ("Task III: essentially sparse memory"),
section "The curse of memory".

* ``DiagonalSSM``: h_{t+1} = Λ h_t + U x_t, y_t = C h_{t+1} + D x_t, with Λ diagonal and
  real, 0 < λ_j < 1 (an S4D / LRU-style layer without the complex part). Its impulse
  response is y_t = sum_{s>=0} K(s) x_{t-s} with K(0) = D + C U and
  K(s) = sum_j C_j λ_j^s U_j: a sum of N decaying exponentials, the same kernels as N
  lin-RPE heads (``kernels``). The convolution is computed by FFT, O(T log T).
* ``GRUBaseline``: ``torch.nn.GRU`` followed by a linear readout, a nonlinear RNN.

Both take x: (B, T, d) and return (B, T, c), and carry a ``config`` with d_in, d_out and
dtype, which is all ``train.train`` asks of a model.

* ``SSMMixer``: the diagonal SSM with the LRU decay as a sequence-mixing layer of width D,
  which ``model.Transformer`` stacks in place of attention (``mixer="ssm"``) between its
  FFNs, as S4D and LRU blocks are stacked (``book/suggestions.md``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ._checks import check_choice, check_int, check_positions
from .attention import DTYPES, check_input

DECAY_PARAMS = ("sigmoid", "lru")  # DiagonalSSM's parametrisations of λ


@dataclass
class BaselineConfig:
    """A baseline's size: d_in inputs, n_hidden units (N), d_out outputs."""

    d_in: int = 1
    n_hidden: int = 8
    d_out: int = 1
    dtype: torch.dtype = field(default=torch.float32)
    decay_range: tuple[float, float] = (1e-3, 1.0)  # DiagonalSSM: initial 1 - λ_j, geometric
    # DiagonalSSM: λ_j = sigmoid(a_j), or "lru": λ_j = exp(-exp(a_j)), the real decay of the
    # LRU (Orvieto et al. 2023), without its complex phase and normalisation. Near λ_j = 1
    # both derivatives shrink like 1 - λ_j; the two differ away from it
    decay_param: str = "sigmoid"

    def __post_init__(self):
        for name in ("d_in", "n_hidden", "d_out"):
            setattr(self, name, check_int(name, getattr(self, name), minimum=1))
        check_choice("dtype", self.dtype, DTYPES)
        lo, hi = (float(v) for v in self.decay_range)
        if not (0 < lo <= hi < 1 or 0 < lo <= hi == 1):
            raise ValueError(f"decay_range must be (lo, hi) with 0 < lo <= hi <= 1, got {self.decay_range!r}")
        self.decay_range = (lo, hi)
        check_choice("decay_param", self.decay_param, DECAY_PARAMS)


class DiagonalSSM(nn.Module):
    """h_{t+1} = Λ h_t + U x_t, y_t = C h_{t+1} + D x_t, Λ = diag(λ), λ_j in (0, 1): sigmoid(a_j),
    or exp(-exp(a_j)) with ``decay_param="lru"``."""

    def __init__(self, config: BaselineConfig):
        super().__init__()
        self.config = c = config
        N = c.n_hidden
        # 1 - λ_j geometric over decay_range: memories from about 1/hi to 1/lo steps
        gap = torch.logspace(math.log10(c.decay_range[0]), math.log10(c.decay_range[1]) - 1e-9, N, dtype=c.dtype)
        lam = (1 - gap).clamp(1e-6, 1 - 1e-9)
        if c.decay_param == "sigmoid":
            self.a = nn.Parameter(torch.log(lam / (1 - lam)))  # (N,) λ = sigmoid(a)
        else:
            self.a = nn.Parameter(torch.log(-torch.log(lam)))  # (N,) λ = exp(-exp(a))
        self.U = nn.Parameter(torch.randn(N, c.d_in, dtype=c.dtype) / math.sqrt(c.d_in))
        self.C = nn.Parameter(torch.randn(c.d_out, N, dtype=c.dtype) / math.sqrt(N))
        self.D = nn.Parameter(torch.zeros(c.d_out, c.d_in, dtype=c.dtype))

    @property
    def lam(self) -> torch.Tensor:
        """The state decays λ_j: (N,), in (0, 1)."""
        if self.config.decay_param == "sigmoid":
            return torch.sigmoid(self.a)
        return torch.exp(-torch.exp(self.a))

    def kernel(self, length: int) -> torch.Tensor:
        """K(s) for s = 0..length-1: (length, d_out, d_in)."""
        length = check_int("length", length, minimum=1)
        s = torch.arange(length, dtype=self.a.dtype, device=self.a.device)
        powers = torch.exp(s[:, None] * torch.log(self.lam)[None, :])  # (T, N) λ_j^s
        K = torch.einsum("on,tn,ni->toi", self.C, powers, self.U)  # (T, c, d)
        return K + torch.cat([self.D[None], torch.zeros_like(K[1:])])  # D at lag 0 only

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, d) -> (B, T, c), or (B, P, c) at ``positions``."""
        check_input(x, self.config.d_in, self.config.dtype, "d_in")
        positions = check_positions(positions, x.shape[1], x.device)
        B, T, _ = x.shape
        n = 1 << (2 * T - 1).bit_length()  # linear, not circular, convolution
        X = torch.fft.rfft(x.transpose(1, 2), n=n)  # (B, d, F)
        Kf = torch.fft.rfft(self.kernel(T).permute(1, 2, 0), n=n)  # (c, d, F)
        y = torch.fft.irfft(torch.einsum("bdf,odf->bof", X, Kf), n=n)[..., :T].transpose(1, 2)  # (B, T, c)
        return y if positions is None else y[:, positions]


class SSMMixer(DiagonalSSM):
    """A diagonal SSM from D channels to D channels with N states, λ_j = exp(-exp(ν_j)): a
    layer ``model.Transformer`` uses in place of attention. Parameters: ν (N), U (N, D),
    C (D, N) and the skip D (D, D); ``count`` gives their number.

    Simpler than the published layers it borrows from: N real states shared by all D
    channels (S4D gives each channel its own N), a full D x D skip (S4D's is diagonal),
    and the LRU's decay without its complex phase and its normalisation."""

    def __init__(self, d_model: int, n_states: int, dtype: torch.dtype = torch.float32):
        super().__init__(BaselineConfig(d_in=d_model, n_hidden=n_states, d_out=d_model, dtype=dtype,
                                        decay_range=(1e-2, 1.0), decay_param="lru"))

    @staticmethod
    def count(d_model: int, n_states: int) -> int:
        return n_states + 2 * n_states * d_model + d_model * d_model

    def attend(self, x: torch.Tensor, positions: torch.Tensor | None, path: str,
               input_map: torch.Tensor | None = None) -> torch.Tensor:
        """``MultiHeadAttention.attend``'s signature: x (B, T, E) through ``input_map`` (D, E)."""
        if input_map is not None:
            x = x @ input_map.T  # (B, T, D)
        return self.forward(x, positions)


class GRUBaseline(nn.Module):
    """``torch.nn.GRU`` with n_hidden units, then a linear readout of its state."""

    def __init__(self, config: BaselineConfig):
        super().__init__()
        self.config = c = config
        self.rnn = nn.GRU(c.d_in, c.n_hidden, batch_first=True, dtype=c.dtype)
        self.readout = nn.Linear(c.n_hidden, c.d_out, dtype=c.dtype)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, d) -> (B, T, c), or (B, P, c) at ``positions``."""
        check_input(x, self.config.d_in, self.config.dtype, "d_in")
        positions = check_positions(positions, x.shape[1], x.device)
        h, _ = self.rnn(x)  # (B, T, N)
        y = self.readout(h)  # (B, T, c)
        return y if positions is None else y[:, positions]


def n_params(model: nn.Module) -> int:
    """The number of trainable numbers in a model."""
    return sum(p.numel() for p in model.parameters())
