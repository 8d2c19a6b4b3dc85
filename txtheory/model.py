"""The paper's Transformer (eq. 2): embedding, L residual blocks of attention then FFN,
no LayerNorm, and a final FFN readout without residual.

Explained in ``book/framework.md`` ("Sequence modelling with Transformers"), section
"The hypothesis class".

    x^{(0)}_t     = W_E x_t + b_E
    X^{(l-1/2)}   = X^{(l-1)} + Attn^{(l)}(X^{(l-1)})             l = 1..L
    X^{(l)}       = X^{(l-1/2)} + FFN^{(l)}(X^{(l-1/2)})           l = 1..L-1
    y             = FFN^{(L)}(X^{(L-1/2)})                         (readout, no residual)

    FFN(x) = Σ_{k=1}^{m} a_k ReLU(b_kᵀ x + c_k)                   (no output bias)

Two options the paper's proofs use (``book/adaptive-memory.md``, "Task II"):

* ``precision``: the FFNs "with precision" of Theorems 4.1 and 4.4. After every FFN but
  the readout, the residual coordinates ``precision_dims`` are rounded: to the nearest
  integer (``"lin"``), or, holding a logarithm, to the log of the nearest integer >= 1
  (``"log"``). A rounded coordinate that is already exact stays as it is.
* ``readout="linear"``: the last FFN is replaced by a linear map (W y + b), for the
  propositions about attention alone (Prop 4.2 (B)) and the FFN-free experiments 4a, 4b.

And one the paper's experiments leave open (``book/essential-memory.md``, "Task III"):
``residual=False`` drops the skip path around attention, X^{(l-1/2)} = Attn(X^{(l-1)}),
so the current token reaches the readout only through attention (a log head never sees it).

For language models (``book/language.md``, "Language models"): ``forward`` also takes
token ids (B, T) of dtype int64 in 0..d_in-1, read as one-hot tokens, so W_E x_t + b_E is
column x_t of W_E plus b_E (a lookup, the same function); and ``layer_norm=True`` adds a
LayerNorm before each attention and each FFN, the readout included (pre-LN, GPT-2's
placement), a deviation from eq. 2 that is off by default.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ._checks import check_bool, check_choice, check_int, check_positions, check_rank
from .attention import DTYPES, PATHS, RATES, SCORES, MultiHeadAttention, check_input, check_p_range
from .baselines import SSMMixer
from .kinds import ENCODINGS
from .rpe import BIASES, bias_param_count

READOUTS = ("ffn", "linear")
MIXERS = ("attention", "ssm")  # what a layer mixes the sequence with
PRECISIONS = (None, "lin", "log")


@dataclass
class TransformerConfig:
    """Everything that defines a model of the paper's class TF_{(L, H, m)}."""

    d_in: int = 1  # d: token dimension
    d_model: int = 8  # D: embedding dimension
    n_layers: int = 1  # L
    n_heads: int = 1  # H (per layer)
    ffn_width: int = 16  # m (per FFN)
    d_out: int = 1  # c: output dimension
    rpe: str | tuple[str, ...] = "lin"  # "lin" | "log", one for all layers or one per layer
    score: str | tuple[str, ...] = "free"  # "dp" | "free" | "tmx", likewise
    normalized: bool = True  # softmax (True) or the paper's normalisation-free form
    d_qk: int | None = None  # query/key dimension for "dp" (default d_model)
    d_value: int | None = None  # value dimension (default d_model)
    p_range: tuple[float, float] = (0.05, 2.0)  # initial RPE rates, geometric over heads
    dtype: torch.dtype = field(default=torch.float32)
    rates: str = "positive"  # p = softplus(p_raw) > 0 as in the paper, or "free": p = p_raw in R
    readout: str = "ffn"  # "ffn": the paper's ReLU readout; "linear": W y + b (attention alone)
    precision: str | None = None  # None | "lin" | "log": round precision_dims after each FFN
    precision_dims: tuple[int, ...] = ()  # residual coordinates that precision rounds
    residual: bool = True  # False: attention's output replaces its input (no skip path around Attn)
    layer_norm: bool = False  # True: pre-LN before each attention and FFN (not in the paper's eq. 2)
    # > 0: a learned absolute position embedding P_t (one D-vector per position t <
    # abs_positions) added to W_E x_t + b_E; windows may then be at most this long. Not in
    # the paper's class: the experiment that tests whether absolute positions let the dot
    # product steer a head (book/fixed-memory.md) needs it.
    abs_positions: int = 0
    # For the side-by-side comparison of architectures (book/suggestions.md), per layer like
    # rpe and score: the encoding ("paper": p_h φ(s); "alibi", "t5", "kerple_log": see
    # rpe.BIASES), and the layer's sequence mixer ("attention", or "ssm": a diagonal SSM
    # with ssm_states states and the LRU decay, baselines.SSMMixer, in attention's place).
    bias: str | tuple[str, ...] = "paper"
    mixer: str | tuple[str, ...] = "attention"
    ssm_states: int = 16

    def __post_init__(self):
        for name in ("d_in", "d_model", "n_layers", "n_heads", "ffn_width", "d_out"):
            setattr(self, name, check_int(name, getattr(self, name), minimum=1))
        self.rpe = self._per_layer("rpe", self.rpe, ENCODINGS)
        self.score = self._per_layer("score", self.score, SCORES)
        self.bias = self._per_layer("bias", self.bias, BIASES)
        self.mixer = self._per_layer("mixer", self.mixer, MIXERS)
        self.ssm_states = check_int("ssm_states", self.ssm_states, minimum=1)
        for l, (bias, score) in enumerate(zip(self.bias, self.score)):
            if bias != "paper" and score == "tmx":
                raise ValueError(f"layer {l}: score='tmx' needs bias='paper' (it scales the paper's rates), "
                                 f"got bias={bias!r}")
        check_bool("normalized", self.normalized)
        check_bool("residual", self.residual)
        check_bool("layer_norm", self.layer_norm)
        self.abs_positions = check_int("abs_positions", self.abs_positions, minimum=0)
        self.p_range = check_p_range(self.p_range)
        check_choice("dtype", self.dtype, DTYPES)
        check_choice("rates", self.rates, RATES)
        check_choice("readout", self.readout, READOUTS)
        check_choice("precision", self.precision, PRECISIONS)
        dims = tuple(self.precision_dims) if isinstance(self.precision_dims, (list, tuple)) else None
        if dims is None:
            raise ValueError(f"precision_dims must be a tuple of coordinates, got {self.precision_dims!r}")
        self.precision_dims = tuple(
            check_int(f"precision_dims[{i}]", v, minimum=0, maximum=self.d_model - 1) for i, v in enumerate(dims))
        if bool(self.precision) != bool(self.precision_dims):
            raise ValueError("precision and precision_dims go together: give both or neither "
                             f"(got precision={self.precision!r}, precision_dims={self.precision_dims})")

    def _per_layer(self, name, value, allowed) -> tuple[str, ...]:
        if isinstance(value, str):
            values = (value,) * self.n_layers
        elif isinstance(value, (list, tuple)):
            values = tuple(value)
        else:
            raise ValueError(f"{name} must be one of {allowed} or a list of them (one per layer), got {value!r}")
        if len(values) != self.n_layers:
            raise ValueError(f"{name} must be one value or one per layer ({self.n_layers}), got {len(values)}")
        for v in values:
            check_choice(name, v, allowed)
        return values


class FFN(nn.Module):
    """Point-wise two-layer ReLU network Σ_k a_k ReLU(b_kᵀ x + c_k): (..., d_in) -> (..., d_out)."""

    def __init__(self, d_in: int, width: int, d_out: int, dtype=torch.float32):
        super().__init__()
        self.hidden = nn.Linear(d_in, width, dtype=dtype)  # rows b_k, bias c_k
        self.out = nn.Linear(width, d_out, bias=False, dtype=dtype)  # columns a_k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


class Transformer(nn.Module):
    """The paper's L-layer Transformer. ``forward(x: (B, T, d)) -> (B, T, c)``."""

    # The first layer reads the tokens [x_t, 1] where that is cheaper (see ``forward``);
    # False on an instance makes it read the embedding, the reference the tests and
    # ``txtheory.bench.bench_step`` compare with. The function is the same either way.
    tokens_first: bool = True

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = c = config
        self.embed = nn.Linear(c.d_in, c.d_model, dtype=c.dtype)  # W_E, b_E
        self.attn = nn.ModuleList(  # each layer's sequence mixer: attention, or an SSM in its place
            MultiHeadAttention(
                c.d_model, c.n_heads, rpe=c.rpe[l], score=c.score[l], normalized=c.normalized,
                d_qk=c.d_qk, d_value=c.d_value, p_range=c.p_range, dtype=c.dtype, rates=c.rates,
                bias=c.bias[l],
            ) if c.mixer[l] == "attention" else SSMMixer(c.d_model, c.ssm_states, c.dtype)
            for l in range(c.n_layers)
        )
        # FFN^{(1..L-1)} keep the width D; FFN^{(L)} is the readout to c outputs.
        self.ffn = nn.ModuleList(
            FFN(c.d_model, c.ffn_width, c.d_model if l < c.n_layers - 1 else c.d_out, c.dtype)
            for l in range(c.n_layers)
        )
        if c.readout == "linear":
            self.ffn[-1] = nn.Linear(c.d_model, c.d_out, dtype=c.dtype)
        if c.abs_positions:  # P: (abs_positions, D), GPT-2's scale
            self.pos = nn.Parameter(0.02 * torch.randn(c.abs_positions, c.d_model, dtype=c.dtype))
        norm = (lambda: nn.LayerNorm(c.d_model, dtype=c.dtype)) if c.layer_norm else nn.Identity
        self.norm_attn = nn.ModuleList(norm() for _ in range(c.n_layers))  # before Attn^{(l)}
        self.norm_ffn = nn.ModuleList(norm() for _ in range(c.n_layers))  # before FFN^{(l)}

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None, path: str = "auto") -> torch.Tensor:
        """x: (B, T, d) -> y: (B, T, c), or (B, P, c) at the given query ``positions``.

        Only the last layer can be restricted to ``positions`` (every earlier layer feeds all
        positions forward), so asking for the positions a loss reads saves most of the
        work of a one-layer model.

        The first layer reads the tokens, not their embedding: every map attention applies
        to its input (W_V, W_Q, W_K, w) is linear and the embedding is affine, so the layer
        works on the d + 1 channels [x_t, 1] with [W_E, b_E] folded into those maps
        (``attend``'s ``input_map``). The same function, with D / (d + 1) times fewer
        channels mixed over time (8 at d = 1, D = 16), and at a few read positions the
        (B, T, D) embedding is never formed.
        """
        check_choice("path", path, PATHS)
        tokens = self._tokens_first(x)  # checks x
        h = None if tokens else self.embed_tokens(x)  # (B, T, D)
        positions = check_positions(positions, x.shape[1], x.device)
        last = self.config.n_layers - 1
        for l, (attn, ffn) in enumerate(zip(self.attn, self.ffn)):
            at = positions if l == last else None  # the query positions of this layer
            if h is None:  # the first layer, through the tokens [x_t, 1]
                ones = torch.ones_like(x[..., :1])
                affine = torch.cat([self.embed.weight, self.embed.bias[:, None]], dim=1)  # (D, d+1)
                mixed = attn.attend(torch.cat([x, ones], dim=-1), at, path, input_map=affine)
                skip = self.embed(x if at is None else x[:, at])  # (B, T or P, D)
            else:
                mixed = attn.attend(self.norm_attn[l](h), at, path)
                skip = h if at is None else h[:, at]
            h = (skip if self.config.residual else 0.0) + mixed  # (B, T or P, D)
            if l == last:
                return ffn(self.norm_ffn[l](h))  # readout: no residual
            h = self.round(h + ffn(self.norm_ffn[l](h)))

    def _tokens_first(self, x) -> bool:
        """Check x; True when the first layer should read the tokens [x_t, 1] rather than
        their embedding (no LayerNorm in between, real tokens, d + 1 < D)."""
        c = self.config
        if isinstance(x, torch.Tensor) and x.dtype == torch.int64:
            return False  # token ids: embed_tokens checks them; one-hot has d >= D here
        check_input(x, c.d_in, c.dtype, "d_in")
        if c.abs_positions and x.shape[-2] > c.abs_positions:
            raise ValueError(f"x has {x.shape[-2]} positions, but the model embeds at most abs_positions = "
                             f"{c.abs_positions}")
        return self.tokens_first and not c.layer_norm and not c.abs_positions and c.d_in + 1 < c.d_model

    def embed_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """x^{(0)} = W_E x + b_E: x (B, T, d) -> (B, T, D); or token ids (B, T) int64, read
        as one-hot vectors, so the embedding is column x_t of W_E plus b_E."""
        c = self.config
        if isinstance(x, torch.Tensor) and x.dtype == torch.int64:
            check_rank("x", x, 2, "(B, T) of token ids")
            if x.shape[1] < 1:
                raise ValueError("x must hold at least one position (T >= 1), got T = 0")
            if x.numel() and (x.min() < 0 or x.max() >= c.d_in):
                raise ValueError(f"token ids must lie in 0..{c.d_in - 1} (d_in = {c.d_in}), "
                                 f"got {x.min().item()}..{x.max().item()}")
            return self._add_positions(nn.functional.embedding(x, self.embed.weight.T) + self.embed.bias)
        check_input(x, c.d_in, c.dtype, "d_in")
        return self._add_positions(self.embed(x))

    def _add_positions(self, h: torch.Tensor) -> torch.Tensor:
        """h + P_t at each position t, with ``abs_positions``; h itself without."""
        if not self.config.abs_positions:
            return h
        if h.shape[1] > self.config.abs_positions:
            raise ValueError(f"x has {h.shape[1]} positions, but the model embeds at most abs_positions = "
                             f"{self.config.abs_positions}")
        return h + self.pos[:h.shape[1]]

    @torch.no_grad()
    def residual_streams(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The residual stream entering each attention layer: L tensors (B, T, D).

        What ``book/adaptive-memory.md`` reads to draw each layer's attention pattern
        (``attn[l].weights(streams[l])``) and to show what each FFN wrote.
        """
        h = self.embed_tokens(x)  # (B, T, D)
        streams = []
        for l, (attn, ffn) in enumerate(zip(self.attn, self.ffn)):
            streams.append(h)
            if l < self.config.n_layers - 1:
                h = self._skip(h) + attn.attend(self.norm_attn[l](h), None, "auto")
                h = self.round(h + ffn(self.norm_ffn[l](h)))
        return streams

    def _skip(self, h: torch.Tensor):
        """What the residual path adds around attention: h itself, or nothing."""
        return h if self.config.residual else 0.0

    def round(self, h: torch.Tensor) -> torch.Tensor:
        """The FFN "with precision": round ``precision_dims`` of h (B, T, D), if any."""
        c = self.config
        if c.precision is None:
            return h
        dims = list(c.precision_dims)
        v = h[..., dims]
        if c.precision == "lin":
            v = torch.round(v)
        else:  # the log of the nearest integer >= 1; clamped so that exp cannot overflow
            v = torch.log(torch.round(torch.exp(v.clamp(max=60.0))).clamp(min=1.0))
        h = h.clone()
        h[..., dims] = v
        return h

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def count_params(config: TransformerConfig) -> int:
    """The parameter count of Remark 2.1, written out from the paper's formulas.

    Embedding W_E, b_E: D·d + D.  Per attention layer: W_V^h (Dv·D), p^h (1), W_O (D·Dv),
    and W_Q^h, W_K^h (2·Dk·D) with a dot product, or w^h (D) for TMX.  Per FFN of width m
    and output size o: b_k, c_k, a_k, i.e. m·(D + 1 + o).  It does not depend on T.
    A practitioner's encoding replaces the H rates p^h by its own (``rpe.bias_param_count``);
    an SSM layer in attention's place has ``baselines.SSMMixer.count`` numbers.
    """
    c = config
    D, H, m = c.d_model, c.n_heads, c.ffn_width
    Dk = c.d_qk or D
    Dv = c.d_value or D
    total = D * c.d_in + D
    for l in range(c.n_layers):
        if c.mixer[l] == "ssm":
            total += SSMMixer.count(D, c.ssm_states)
        else:
            per_head = Dv * D + {"dp": 2 * Dk * D, "free": 0, "tmx": D}[c.score[l]]
            total += H * per_head + bias_param_count(c.bias[l], H) + D * Dv
        if l == c.n_layers - 1 and c.readout == "linear":
            total += c.d_out * (D + 1)  # W, b
        else:
            out = D if l < c.n_layers - 1 else c.d_out
            total += m * (D + 1 + out)
    if c.layer_norm:  # a gain and a bias per LayerNorm, two per layer
        total += c.n_layers * 2 * 2 * D
    total += c.abs_positions * D  # the absolute position embedding, if any
    return total
