"""Multi-head attention with relative positional encoding, as in the paper (eq. 3).

Explained in ``book/framework.md`` ("Sequence modelling with Transformers"), section
"DP-free attention is a convolution".

Three kinds of attention score between the query at t and the key at lag s (key t - s):

* ``dp``:   <W_Q^h x_t, W_K^h x_{t-s}> + p_h φ(s)     (dot product plus RPE)
* ``free``: p_h φ(s)                                  (DP-free: W_Q = W_K = 0)
* ``tmx``:  p_h (φ(s) + w_hᵀ x_t)                     (the paper's "t minus x" substitute)

and two ways to turn scores into weights:

* ``normalized=True``:  softmax over the admissible keys (the usual attention);
* ``normalized=False``: exp(score) with no denominator (the paper's normalisation-free
  attention, eq. 12).

The output is ``W_O Σ_h W_V^h Σ_s weight_h(t, s) x_{t-s}`` (the paper sums the heads,
then applies W_O).  A row with no admissible key (log-RPE at t = 0, where φ_log(0) = -∞)
outputs exactly zero in both forms: the normalisation-free sum is empty, and the
normalised form defines 0/0 := 0 there.

TMX, reading of the paper.  The paper writes the TMX score as p(φ(s) - φ(wᵀx_t)), and its
construction chooses w so that the score becomes -β(s - g(x_t)) (lin) or -β log(s/g(x_t))
(log).  We parametrise the subtracted term directly as a linear function of the token,
p(φ(s) + wᵀx_t): for lin this is the paper's form exactly; for log, wᵀx_t plays the role
of log g(x_t).  This keeps the score finite and differentiable for every w.  Note that
with ``normalized=True`` a score term that depends on the query only (tmx, or dp with a
constant key) cancels in the softmax, which is why the paper's adaptive constructions are
normalisation-free.

Overflow guard.  Without a softmax nothing bounds exp(score): with unit-scale random
weights at depth 2, q·k already reaches a few hundred and exp overflows to inf (then
inf·0 = NaN in the gradient).  The normalisation-free form therefore uses
exp(min(score, cap)), cap = ``score_cap(dtype)`` = a quarter of the log of the dtype's
largest number (22.2 in float32, 177.4 in float64).  A quarter, not all of it: a layer's
output is a sum of capped weights times values that an earlier capped layer produced, so
each layer may multiply the scale by up to e^cap, and a quarter leaves room for the
products of two such layers and their sums.  The guard changes nothing below the cap;
the constructions keep every score below it (they choose their rates so), and above it
the gradient of that weight is zero, which training sees as a saturated head rather
than a NaN.

DP-free attention is a convolution: its weights depend on the lag only, so the output is
a causal convolution of the values with the per-head kernel.  ``forward(path="fast")``
computes it in O(T log T) or better; ``path="dense"`` builds the T×T weights and is the
reference that the tests hold the fast path equal to.  Which fast path:

* softmax lin-RPE: a chunked scan (``_forward_scan``).  The weight of lag s is a^s with
  a = e^{-p}, so the numerator Σ_s a^s x_{t-s} and the normaliser Σ_s a^s are linear
  recurrences.  Within a block of ``SCAN_CHUNK`` positions one dense product with every
  head merged, across blocks a decayed carry of D numbers per head: O(T·C·D²) for the
  blocks and O(H·T·D) for the carry, instead of O(H·T²·D);
* softmax log-RPE: a chunked scan too (``txtheory.log_scan``).  A power law has no
  recurrence, but it is a fixed quadrature of exponentials whose rates every head shares
  (``txtheory.powerlaw``): lags within the block and the one before it exactly, older lags
  through J + 1 shared decayed carries, within a proved error budget per dtype
  (``powerlaw.BUDGET``: 1e-7 of max|x| per head in float32, 1e-11 in float64). Where the
  budget does not hold for a layer's rates and window (``log_scan_plan``), the exact FFT;
  on ``path="auto"``, the dense path where the scan does not pay (``log_scan_pays``: short
  windows of wide layers), as ``scan_pays`` decides for the lin scan;
* every other DP-free case (no softmax, or log1p): the FFT, whose cost does not depend
  on the kernel.  ``path="fft"`` asks for it in every DP-free case: the exact reference
  at FFT speed.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import kinds, log_scan, powerlaw
from . import rpe as rpe_mod
from ._checks import check_bool, check_choice, check_int, check_positions, check_rank

SCORES = ("dp", "free", "tmx")
_CHUNK_ELEMENTS = 1 << 24  # entries per head chunk in the normalised FFT and scan paths
SCAN_CHUNK = 32  # positions per block of the lin-RPE scan (measured best of 16, 32, 64 on a CPU)
LOG_SCAN_CHUNK = log_scan.CHUNK  # positions per block of the log-RPE scan
PATHS = ("auto", "dense", "fast", "fft")
DTYPES = (torch.float32, torch.float64)
RATES = ("positive", "free")  # p = softplus(p_raw) > 0 (the paper's p in R_+), or p = p_raw in R


class MultiHeadAttention(nn.Module):
    """One attention layer of the paper: H heads, each with its own RPE rate p_h > 0.

    Shapes: D = d_model, Dk = d_qk (dot product only), Dv = d_value.
    Parameters: ``p_raw`` (H,) with p = softplus(p_raw); ``W_V`` (H, Dv, D); ``W_O`` (D, Dv);
    for ``dp`` also ``W_Q``, ``W_K`` (H, Dk, D); for ``tmx`` also ``w_tmx`` (H, D).
    ``bias`` other than ``"paper"`` replaces p_h φ(s) by a practitioner's encoding
    (``rpe.BIASES``: ALiBi, T5 buckets, KERPLE-log), computed on the dense path.
    ``rates="free"`` drops the paper's p > 0 (p = p_raw): a head with p < 0 weighs the
    oldest keys most. The FFT path needs p >= 0; with a negative rate ``auto`` takes the
    dense path (the softmax there subtracts the largest score, so it cannot overflow).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        rpe: str = "lin",
        score: str = "free",
        normalized: bool = True,
        d_qk: int | None = None,
        d_value: int | None = None,
        p_range: tuple[float, float] = (0.05, 2.0),
        dtype: torch.dtype = torch.float32,
        rates: str = "positive",
        bias: str = "paper",
    ):
        super().__init__()
        self.d_model = check_int("d_model", d_model, minimum=1)
        self.n_heads = check_int("n_heads", n_heads, minimum=1)
        self.rpe = kinds.check_kind(rpe, "rpe", kinds.ENCODINGS)
        self.score = check_choice("score", score, SCORES)
        self.normalized = check_bool("normalized", normalized)
        self.d_qk = check_int("d_qk", d_qk if d_qk is not None else d_model, minimum=1)
        self.d_value = check_int("d_value", d_value if d_value is not None else d_model, minimum=1)
        check_choice("dtype", dtype, DTYPES)
        self.rates = check_choice("rates", rates, RATES)
        self.bias = check_choice("bias", bias, rpe_mod.BIASES)
        if bias != "paper" and score == "tmx":
            raise ValueError(f"score='tmx' scales the paper's rates p_h (bias='paper'); got bias={bias!r}")
        H, D, Dk, Dv = self.n_heads, self.d_model, self.d_qk, self.d_value

        p0 = rpe_mod.geometric_rates(H, *check_p_range(p_range))
        if bias == "paper":
            self.p_raw = nn.Parameter((rpe_mod.inverse_positive(p0) if rates == "positive" else p0).to(dtype))
        else:  # a practitioner's encoding replaces p_h φ(s); ``rpe`` and ``rates`` are then unused
            self.relative_bias = rpe_mod.relative_bias(bias, H, dtype)
        self.W_V = nn.Parameter(torch.randn(H, Dv, D, dtype=dtype) / math.sqrt(D))
        self.W_O = nn.Parameter(torch.randn(D, Dv, dtype=dtype) / math.sqrt(H * Dv))
        if score == "dp":
            # Normalisation-free, a random W_Q already overflows exp(q·k) two layers deep:
            # start it at 0, so the first scores are the RPE's (W_Q still gets gradients).
            scale = 1 / math.sqrt(D) if normalized else 0.0
            self.W_Q = nn.Parameter(torch.randn(H, Dk, D, dtype=dtype) * scale)
            self.W_K = nn.Parameter(torch.randn(H, Dk, D, dtype=dtype) / math.sqrt(D))
        if score == "tmx":
            self.w_tmx = nn.Parameter(torch.zeros(H, D, dtype=dtype))

    @property
    def p(self) -> torch.Tensor:
        """The RPE rates p_h: (H,), > 0 unless ``rates="free"`` (the paper's encodings only)."""
        if self.bias != "paper":
            raise ValueError(f"this layer has bias={self.bias!r}, which has no paper rates p_h")
        return rpe_mod.positive(self.p_raw) if self.rates == "positive" else self.p_raw

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, n_heads={self.n_heads}, "
            + (f"rpe={self.rpe!r}, " if self.bias == "paper" else "") +
            f"score={self.score!r}, normalized={self.normalized}" + (", rates='free'" if self.rates == "free" else "")
            + (f", bias={self.bias!r}" if self.bias != "paper" else "")
        )

    # --- public ---------------------------------------------------------------------

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor | None = None, path: str = "auto"
    ) -> torch.Tensor:
        """Attention output at every position, or only at the query ``positions``.

        x: (B, T, D), finite; positions: optional (P,) integer query positions in [0, T).
        Returns (B, T, D), or (B, P, D) when ``positions`` is given.
        ``path``: ``"fast"`` (a scan or the FFT; DP-free only, all positions), ``"fft"`` (the
        exact FFT; the same conditions), ``"dense"`` (reference), or ``"auto"`` (fast where
        it applies).
        """
        check_input(x, self.d_model, self.W_V.dtype, "d_model")
        check_choice("path", path, PATHS)
        positions = check_positions(positions, x.shape[1], x.device)
        return self.attend(x, positions, path)

    def attend(self, x: torch.Tensor, positions: torch.Tensor | None, path: str,
               input_map: torch.Tensor | None = None) -> torch.Tensor:
        """``forward`` on arguments already checked (``model.Transformer`` checks its input
        once, not once per layer).

        ``input_map`` (D, E): the layer's input is x @ input_mapᵀ, given as x: (B, T, E).
        Every map the layer applies to its input (W_V, and W_Q, W_K or w for the scores
        that read it) is linear, so input_map folds into them and the layer works in the
        E channels of x: the same output, with E rather than D channels mixed over time
        (``model.Transformer`` passes its first layer the tokens [x_t, 1] and the
        embedding [W_E, b_E], E = d + 1).
        """
        W_OV = self._W_OV()  # (H, D, D)
        if input_map is not None:
            W_OV = W_OV @ input_map  # (H, D, E)
        fast_applies = self.score == "free" and positions is None and self.bias == "paper"
        if path in ("fast", "fft") and not fast_applies:
            raise ValueError(
                f"path={path!r} needs score='free', bias='paper' and positions=None (got score={self.score!r}, "
                f"bias={self.bias!r}, positions={'given' if positions is not None else None})"
            )
        if fast_applies and self.rates == "free" and bool((self.p < 0).any()):
            if path in ("fast", "fft"):  # a growing kernel e^{|p| s} would overflow the FFT
                raise ValueError(f"path={path!r} needs every rate p >= 0; this layer has rates='free' and a p < 0")
            fast_applies = False
        if x.shape[0] == 0:  # an empty batch: the FFT libraries reject it, the dense path is exact
            return self._forward_dense(x, positions, W_OV, input_map)
        if path == "fft":
            return self._forward_fft(x, W_OV)
        if path == "fast" or (path == "auto" and fast_applies):
            if self.normalized and self.rpe == "lin":
                if path == "auto" and not scan_pays(x.shape[1], W_OV.shape[1], self.n_heads):
                    return self._forward_dense(x, positions, W_OV, input_map)
                return self._forward_scan(x, W_OV)
            if self.normalized and self.rpe == "log":
                if path == "auto" and not log_scan_pays(x.shape[1], W_OV.shape[1]):
                    return self._forward_dense(x, positions, W_OV, input_map)
                within, grid = self.log_scan_plan(x.shape[1], x.dtype)
                if within:
                    return self._forward_log_scan(x, W_OV, grid)
            return self._forward_fft(x, W_OV)
        return self._forward_dense(x, positions, W_OV, input_map)

    @torch.no_grad()
    def weights(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """The attention weights of every head: (B, H, P, T), weight of key τ for query t.

        x: (B, T, D); positions: optional query positions (P,), default every position.
        This is what the book draws as an attention pattern; ``forward`` mixes the values
        with exactly these weights (``_forward_dense``).
        """
        check_input(x, self.d_model, self.W_V.dtype, "d_model")
        positions = check_positions(positions, x.shape[1], x.device)
        w = self._weights(x, positions)
        return w.expand(x.shape[0], *w.shape) if w.ndim == 3 else w  # free: the same for all

    def kernel(self, length: int) -> torch.Tensor:
        """Weights over lags 0..length-1 of each DP-free head, normalised over that window:
        (H, length).  This is the memory kernel a head realises (see ``book/framework.md``)."""
        length = check_int("length", length, minimum=1)
        if self.score != "free" or self.bias != "paper":
            raise ValueError(f"kernel() describes the paper's DP-free heads only (score='free', bias='paper'), "
                             f"this layer has score={self.score!r}, bias={self.bias!r}")
        k = rpe_mod.kernel(torch.arange(length, device=self.p_raw.device), self.p, self.rpe)
        if self.normalized:  # a log head on a window of one token sees nothing: weights 0
            total = k.sum(-1, keepdim=True)
            k = k / torch.where(total > 0, total, torch.ones_like(total))
        return k

    def log_scan_plan(self, length: int, dtype: torch.dtype) -> tuple[bool, powerlaw.Grid | None]:
        """(whether the log scan meets ``powerlaw.BUDGET[dtype]`` for this layer's rates on a
        window of ``length``, its quadrature grid or None): ``log_scan.plan``. ``forward``
        takes the scan when this says yes, and the exact FFT otherwise."""
        return log_scan.plan(self.p, length, dtype)

    # --- the paths ----------------------------------------------------------------------

    def _weights(self, x: torch.Tensor, positions: torch.Tensor | None,
                 input_map: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H, P, T) weights for dp / tmx, or (H, P, T) for free (batch-independent).
        x: (B, T, E), the layer's input through ``input_map`` (D, E) if given (E = D if not)."""
        B, T, E = x.shape
        H, Dk = self.n_heads, self.d_qk
        keys = torch.arange(T, device=x.device)
        queries = keys if positions is None else positions
        P = queries.numel()
        lags = queries[:, None] - keys[None, :]  # (P, T)
        score, ok = self.position_scores(lags)  # (H, P, T) each
        x_q = x[:, queries]  # (B, P, E)
        fold = (lambda W: W) if input_map is None else (lambda W: W @ input_map)  # (..., D) -> (..., E)
        content = None  # the score's token-dependent part: (B, H, P, T) for dp, (B, H, P, 1) for tmx
        if self.score == "dp":
            q = torch.einsum("bpe,hke->bhpk", x_q, fold(self.W_Q))  # (B, H, P, Dk)
            W_K = fold(self.W_K)  # (H, Dk, E)
            if P * Dk * E + P * T * E < T * Dk * E + P * T * Dk:  # few queries: W_K onto them
                q_in = torch.einsum("bhpk,hke->bhpe", q, W_K)  # (B, H, P, E)
                # (B, H·P, E) @ (B, E, T): one product per sequence, x not copied per head
                content = (q_in.reshape(B, H * P, E) @ x.transpose(1, 2)).view(B, H, P, T)
            else:  # every key projected, as usually written
                k = torch.einsum("bte,hke->bhtk", x, W_K)  # (B, H, T, Dk)
                content = q @ k.transpose(-1, -2)  # (B, H, P, T)
        elif self.score == "tmx":
            u = torch.einsum("bpe,he->bhp", x_q, fold(self.w_tmx))  # (B, H, P)
            content = self.p.view(1, H, 1, 1) * u[..., None]  # (B, H, P, 1)
        return attention_weights(score, ok, self.normalized, content)

    def position_scores(self, lags: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoding's score of every head at these lags, and where it is admissible:
        ``(score, mask)``, (H, ...) each. The paper's p_h φ(s), or a practitioner's bias:
        one interface (``rpe.RelativeBias``)."""
        if self.bias == "paper":
            return rpe_mod.log_weights(lags, self.p, self.rpe)
        return self.relative_bias(lags)

    # Each path takes x: (B, T, E) and W_OV: (H, D, E), W_O W_V^h for every head (E = D,
    # or another width through attend's input_map), and returns (B, T or P, D).

    def _forward_dense(self, x: torch.Tensor, positions: torch.Tensor | None, W_OV: torch.Tensor,
                       input_map: torch.Tensor | None = None) -> torch.Tensor:
        B, T, D = x.shape  # here D is the input's width E
        H = self.n_heads
        P = T if positions is None else positions.numel()
        weights = self._weights(x, positions, input_map)  # (H, P, T) or (B, H, P, T)
        if self.score == "free":
            # The weights do not depend on the batch: one (H·P, T) @ (T, B·D) product, rather
            # than broadcasting (H,T,T) over the batch (25-50 GB at B=100, H=64, T=1000) or
            # expanding x over the heads (which the batched product would copy H times).
            xs = x.permute(1, 0, 2).reshape(T, B * D)  # (T, B·D)
            mixed = (weights.reshape(H * P, T) @ xs).view(H, P, B, D).permute(2, 0, 1, 3)  # (B, H, P, D)
        else:  # (B, H·P, T) @ (B, T, D): x not copied per head
            mixed = (weights.reshape(B, H * P, T) @ x).view(B, H, P, D)  # (B, H, P, D)
        return torch.einsum("bhpd,hed->bpe", mixed, W_OV)  # (B, P, D)

    def _forward_fft(self, x: torch.Tensor, W_OV: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape  # here D is the input's width E
        n = _fft_length(2 * T - 1)  # linear (not circular) convolution up to lag T-1
        k = rpe_mod.kernel(torch.arange(T, device=x.device), self.p, self.rpe)  # (H, T)
        X = torch.fft.rfft(x.transpose(1, 2), n=n)  # (B, D, F)
        K = torch.fft.rfft(k, n=n)  # (H, F)
        if not self.normalized:
            # Everything is linear, so merge the heads in frequency space: one transfer
            # matrix per frequency, M_f = Σ_h K_h(f) W_O W_V^h, and D inverse FFTs in all.
            M = torch.einsum("hf,hed->fed", K, W_OV.to(K.dtype))  # (F, D, E)
            Y = torch.einsum("bdf,fed->bef", X, M)  # (B, D, F)
            y = torch.fft.irfft(Y, n=n)[..., :T].transpose(1, 2)  # (B, T, D)
            # Rows with no admissible key (log at t = 0) are exactly 0, not FFT round-off.
            # (Decided by the support, not by the kernel's values, which underflow to 0 at
            # long lags: a mask read off them once zeroed every late position.)
            first = kinds.FIRST_LAG[self.rpe]
            return torch.cat([torch.zeros_like(y[:, :first]), y[:, first:]], dim=1)
        # Softmax over the admissible keys of a finite window: each head's convolution is
        # divided by its own running normaliser Z_h(t) = Σ_{s<=t} k_h(s), so heads cannot be
        # merged before the inverse FFT.  Z_h(t) = 0 (log-RPE at t = 0) gives output 0.
        Z = torch.cumsum(k, dim=-1)  # (H, T)
        inv_Z = torch.where(Z > 0, 1 / torch.where(Z > 0, Z, torch.ones_like(Z)), torch.zeros_like(Z))
        # Heads in chunks: the complex spectra of all heads at once, (B, H, D, F), would be
        # the largest tensor of the whole pass; a chunk keeps it near _CHUNK_ELEMENTS.
        per_head = B * D * X.shape[-1]
        chunk = max(1, _CHUNK_ELEMENTS // per_head)
        y = None
        for h in range(0, self.n_heads, chunk):
            heads = slice(h, h + chunk)
            conv = torch.fft.irfft(X[:, None] * K[None, heads, None], n=n)[..., :T]  # (B, h, D, T)
            conv = conv * inv_Z[None, heads, None, :]
            part = torch.einsum("bhdt,hed->bte", conv, W_OV[heads])  # (B, T, D)
            y = part if y is None else y + part
        return y

    def _forward_scan(self, x: torch.Tensor, W_OV: torch.Tensor) -> torch.Tensor:
        """Softmax lin-RPE attention at every position as a chunked linear scan.

        y_t = Σ_h W_OV^h N_h(t) / Z_h(t), with N_h(t) = Σ_{s<=t} a_h^{t-s} x_s and
        Z_h(t) = Σ_{s<=t} a_h^{t-s}, a_h = e^{-p_h}. Positions are cut into n blocks of C,
        position t = cC + i. Two parts:

        * within block c, every head at once: one (C·D, C·D) matrix per block,
          M_c = Σ_h [a_h^{i-j} / Z_h(cC+i)]_{i>=j} ⊗ W_OV^h, applied to the block's tokens;
        * from earlier blocks, through a carry per head of only D numbers per block:
          S_{h,c} = Σ_j a_h^{C-1-j} x_{cC+j} (block c decayed to its end),
          R_{h,c} = Σ_{c'<c} a_h^{C(c-1-c')} S_{h,c'}, reaching position i of block c
          as a_h^{i+1} R_{h,c} / Z_h(cC+i), then W_OV^h.

        No tensor holds heads × positions × channels, so memory stays O(B·T·D + B·H·T·D/C
        + T·C·D²). Every power of a is <= 1 (p >= 0): nothing overflows; small powers
        underflow to 0, their value to the precision.
        """
        B, T, E = x.shape
        H, D = self.n_heads, W_OV.shape[1]
        C = min(SCAN_CHUNK, T)
        n = -(-T // C)
        xc = torch.nn.functional.pad(x, (0, 0, 0, n * C - T)).view(B, n, C, E)  # (B, n, C, E)
        log_a = -self.p  # (H,)  log of the per-lag decay
        i = torch.arange(C, device=x.device, dtype=x.dtype)
        c = torch.arange(n, device=x.device, dtype=x.dtype)
        t = (c[:, None] * C + i[None, :]).reshape(-1)  # (n·C,) positions, the padded ones too
        Z = -torch.expm1(log_a[:, None] * (t + 1)) / -torch.expm1(log_a)[:, None]  # (H, nC) = Σ_{s<=t} a^s
        inv_Z = (1 / torch.where(torch.isfinite(Z) & (Z > 0), Z, t + 1)).view(H, n, C)  # p = 0: Z = t + 1
        lag = i[:, None] - i[None, :]  # (C, C)
        within = torch.where(lag >= 0, torch.exp(log_a[:, None, None] * lag.clamp(min=0)), torch.zeros(()))
        # within each block: G[c, i, j, h] = a_h^{i-j} / Z_h(cC+i), then M_c = Σ_h G ⊗ W_OV^h
        G = torch.einsum("hij,hci->cijh", within, inv_Z)  # (n, C, C, H)
        M = torch.einsum("cijh,hed->ciejd", G, W_OV).reshape(n, C * D, C * E)  # (n, CD, CE)
        y = torch.bmm(M, xc.permute(1, 2, 3, 0).reshape(n, C * E, B))  # (n, CD, B)
        y = y.view(n, C, D, B).permute(3, 0, 1, 2)  # (B, n, C, D)
        if n > 1:  # from earlier blocks
            to_end = torch.exp(log_a[:, None] * (C - 1 - i))  # (H, C)
            S = torch.einsum("hj,bcjd->bhcd", to_end, xc)  # (B, H, n, E)
            blocks = c[:, None] - 1 - c[None, :]  # (n, n)
            carry = torch.where(blocks >= 0, torch.exp(log_a[:, None, None] * C * blocks.clamp(min=0)),
                                torch.zeros(()))  # (H, n, n)
            R = torch.einsum("hcm,bhmd->bhcd", carry, S)  # (B, H, n, E)
            U = torch.einsum("hed,bhcd->bhce", W_OV, R)  # (B, H, n, D)
            reach = torch.exp(log_a[:, None] * (i + 1))[:, None, :] * inv_Z  # (H, n, C)
            y = y + torch.einsum("hci,bhce->bcie", reach, U)  # (B, n, C, D)
        return y.reshape(B, n * C, D)[:, :T]

    def _forward_log_scan(self, x: torch.Tensor, W_OV: torch.Tensor,
                          grid: powerlaw.Grid | None) -> torch.Tensor:
        """log-RPE attention at every position as a chunked scan (``log_scan.forward``)."""
        return log_scan.forward(x, W_OV, self.p, self.normalized, grid)

    def _W_OV(self) -> torch.Tensor:
        """W_O W_V^h for every head: (H, D, D).  Folding W_O in first is exact and cheaper."""
        return torch.einsum("ev,hvd->hed", self.W_O, self.W_V)


def scan_pays(length: int, d_model: int, n_heads: int) -> bool:
    """Whether ``path="auto"`` takes the lin scan over the dense path: the scan's block
    products cost about B·T·C·D·E and the dense path's B·H·T·(T + D)·E, so the scan pays
    unless C·D exceeds 2·H·(T + D), as for wide, short, few-headed layers (a language
    model's D = 64, T = 64, H = 2 runs 8 times slower through the scan)."""
    C = min(SCAN_CHUNK, length)
    return C * d_model <= 2 * n_heads * (length + d_model)


def log_scan_pays(length: int, d_model: int) -> bool:
    """Whether ``path="auto"`` takes the log scan over the dense path. A rule read off
    measurements (one CPU thread, forward and backward), not a cost model: the scan's
    fixed work per block (its (C·D, 2C·E) matrices, its J of about 40-47 quadrature
    carries) dwarfs the dense path's B·H·T·(T + D)·E on short windows of wide layers. The
    scan took 25 times as long at D = 32, H = 4, T = 64 and twice as long at D = 16, H = 8,
    T = 256, and was 12 times faster at the paper's D = 16, H = 64, T = 1000; the rule
    2·C·D <= T + D separates those cases. Where it errs, only the speed suffers: both
    paths compute the same function (the scan within its proved budget)."""
    C = min(LOG_SCAN_CHUNK, length)
    return 2 * C * d_model <= length + d_model


def check_p_range(p_range) -> tuple[float, float]:
    """The initial RPE rates' range: two finite numbers (p_min, p_max), 0 < p_min <= p_max."""
    message = f"p_range must be a pair (p_min, p_max) of finite numbers with 0 < p_min <= p_max, got {p_range!r}"
    try:
        lo, hi = (float(v) for v in p_range)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ValueError(message)
    return lo, hi


def check_input(x: torch.Tensor, width: int, dtype: torch.dtype, width_name: str) -> None:
    """Raise ValueError unless x is a finite (B, T, width) tensor, T >= 1, of the parameters' dtype.

    A NaN or ±inf token is rejected rather than computed with: the masked weights
    (0 · NaN = NaN) and the FFT would spread it to every position, earlier ones included.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor of shape (B, T, {width_name}), got {type(x).__module__}."
                         f"{type(x).__name__}; convert it with torch.as_tensor(x, dtype={dtype})")
    check_rank("x", x, 3, f"(B, T, {width_name})")
    if x.shape[-1] != width:
        raise ValueError(f"x must have last dimension {width_name}={width}, got {x.shape[-1]}")
    if x.shape[1] < 1:
        raise ValueError("x must hold at least one position (T >= 1), got T = 0")
    if x.dtype != dtype:
        raise ValueError(
            f"x has dtype {x.dtype} but the parameters are {dtype}; convert one of them (e.g. model.to(x.dtype))"
        )
    bad = ~torch.isfinite(x)
    if bad.any():
        b, t, d = torch.nonzero(bad)[0].tolist()
        raise ValueError(f"x must be finite (a NaN or inf token would reach every position), "
                         f"got x[{b}, {t}, {d}] = {x[b, t, d].item()}")


def attention_weights(score: torch.Tensor, ok: torch.Tensor, normalized: bool,
                      content: torch.Tensor | None = None) -> torch.Tensor:
    """Scores to weights over the last axis; entries where ``ok`` is False get weight 0.

    ``normalized``: a softmax over the admissible entries (a row with none gets all zeros);
    otherwise exp(score) (the paper's normalisation-free form).  ``score`` must be finite
    where ``ok`` is False (see ``rpe.log_weights``), so that no gradient is NaN.
    ``content`` (optional, broadcast over ``score``, e.g. (B, H, P, T) against (H, P, T))
    is added to the score: the masks are applied to the smaller ``score`` first, so the
    batch-sized tensor sees one addition and the softmax.
    """
    if not normalized:  # the overflow guard (module docstring): exp(min(score, cap))
        score = score if content is None else score + content
        capped = score.clamp(max=score_cap(score.dtype))
        return torch.where(ok, torch.exp(capped), torch.zeros_like(score))
    # A row with no admissible key gets finite dummy scores (a uniform softmax) that are
    # then multiplied by 0: this keeps NaN out of the forward pass and of every gradient.
    has_key = ok.any(dim=-1, keepdim=True)
    score = torch.where(ok, score, -math.inf)
    score = torch.where(has_key, score, 0.0)
    if content is not None:
        score = score + content
    weights = torch.softmax(score, dim=-1)
    return weights if bool(has_key.all()) else weights * has_key


def score_cap(dtype: torch.dtype) -> float:
    """The largest score the normalisation-free form exponentiates: log(max float) / 4."""
    return 0.25 * math.log(torch.finfo(dtype).max)


def _fft_length(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n: sizes the FFT does fastest."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best
