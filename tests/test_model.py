"""Tests of txtheory.model: the parameter count of Remark 2.1, the architecture of eq. 2
(embedding, residual attention and FFN blocks, readout without residual) against a
manual computation with an independent naive attention, restricted query positions,
config validation and dtypes."""
import math

import pytest
import torch

from txtheory import rpe
from txtheory.model import FFN, Transformer, TransformerConfig, count_params

F64 = torch.float64


# ---------------------------------------------------------------- independent references


def remark21_count(d, D, L, H, m, c, scores, d_qk=None, d_value=None):
    """Parameters listed in the paper's Remark 2.1, tallied one named tensor at a time."""
    Dk = d_qk if d_qk is not None else D
    Dv = d_value if d_value is not None else D
    n = 0
    n += D * d  # W_E
    n += D  # b_E
    for l in range(L):
        score = scores if isinstance(scores, str) else scores[l]
        for _h in range(H):
            n += Dv * D  # W_V^{(l,h)}
            n += 1  # p^{(l,h)}
            if score == "dp":
                n += Dk * D  # W_Q^{(l,h)}
                n += Dk * D  # W_K^{(l,h)}
            elif score == "tmx":
                n += D  # w^{(l,h)}
        n += D * Dv  # W_O^{(l)}
        out = c if l == L - 1 else D
        for _k in range(m):
            n += D  # b_k
            n += 1  # c_k
            n += out  # a_k
    return n


def naive_attention(attn, X):
    """Paper eq. 3 / eq. 12 for one sequence X (list of T lists of D floats), plain loops."""
    p = attn.p.tolist()
    W_V, W_O = attn.W_V.tolist(), attn.W_O.tolist()
    W_Q = attn.W_Q.tolist() if attn.score == "dp" else None
    W_K = attn.W_K.tolist() if attn.score == "dp" else None
    w = attn.w_tmx.tolist() if attn.score == "tmx" else None

    def mv(M, v):
        return [sum(a * b for a, b in zip(row, v)) for row in M]

    def dot(u, v):
        return sum(a * b for a, b in zip(u, v))

    out = []
    for t in range(len(X)):
        acc = [0.0] * len(W_O[0])
        for h in range(len(p)):
            pairs = []
            for s in range(t + 1):
                if attn.rpe == "lin":
                    f = -float(s)
                elif s >= 1:
                    f = -math.log(s)
                else:
                    continue
                if attn.score == "free":
                    sc = p[h] * f
                elif attn.score == "dp":
                    sc = dot(mv(W_Q[h], X[t]), mv(W_K[h], X[t - s])) + p[h] * f
                else:
                    sc = p[h] * (f + dot(w[h], X[t]))
                pairs.append((math.exp(sc), X[t - s]))
            Z = sum(e for e, _ in pairs)
            mixed = [0.0] * len(X[t])
            for e, xk in pairs:
                wt = e / Z if attn.normalized else e
                mixed = [a + wt * b for a, b in zip(mixed, xk)]
            acc = [a + b for a, b in zip(acc, mv(W_V[h], mixed))]
        out.append(mv(W_O, acc))
    return out


def naive_ffn(ffn, X):
    """Σ_k a_k ReLU(b_kᵀ x + c_k) at every position (no output bias)."""
    Bm, c, A = ffn.hidden.weight.tolist(), ffn.hidden.bias.tolist(), ffn.out.weight.tolist()
    out = []
    for x in X:
        hidden = [max(0.0, sum(b * xi for b, xi in zip(row, x)) + ck) for row, ck in zip(Bm, c)]
        out.append([sum(a * z for a, z in zip(row, hidden)) for row in A])
    return out


def naive_embed(model, X):
    W, b = model.embed.weight.tolist(), model.embed.bias.tolist()
    return [[sum(wi * xi for wi, xi in zip(row, x)) + bi for row, bi in zip(W, b)] for x in X]


def add(U, V):
    return [[a + b for a, b in zip(u, v)] for u, v in zip(U, V)]


def naive_model(model, x):
    """Eq. 2 by hand: embed, then for l < L: h += Attn(h); h += FFN(h); last: FFN(h + Attn(h))."""
    out = []
    for X in x.tolist():
        h = naive_embed(model, X)
        L = len(model.attn)
        for l in range(L):
            h = add(h, naive_attention(model.attn[l], h))
            if l < L - 1:
                h = add(h, naive_ffn(model.ffn[l], h))
        out.append(naive_ffn(model.ffn[L - 1], h))
    return torch.tensor(out, dtype=F64)


def randomise(model, seed=0):
    """Random rates and random non-zero W_Q, W_K, w_tmx (w_tmx starts at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for attn in model.attn:
            H = attn.n_heads
            attn.p_raw.copy_(rpe.inverse_positive(0.2 + 1.3 * torch.rand(H, generator=g, dtype=F64)).to(attn.p_raw.dtype))
            for name in ("W_Q", "W_K", "w_tmx"):
                if hasattr(attn, name):
                    prm = getattr(attn, name)
                    prm.copy_(0.5 * torch.randn(prm.shape, generator=g, dtype=F64).to(prm.dtype))
    return model


def make_model(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = TransformerConfig(dtype=F64, **kw)
    return randomise(Transformer(cfg), seed)


def make_x(b, t, d, seed=0, dtype=F64):
    return torch.randn(b, t, d, generator=torch.Generator().manual_seed(seed + 17), dtype=dtype)


# ---------------------------------------------------------------- parameter count (Remark 2.1)


def test_parameter_count_default_config_by_hand():
    # d=1, D=8, L=1, H=1, m=16, c=1, free: W_E,b_E 8+8; W_V 64, p 1, W_O 64; FFN 16*8+16+16.
    cfg = TransformerConfig()
    assert count_params(cfg) == Transformer(cfg).n_params() == 16 + 129 + 160 == 305


def test_parameter_count_dp_by_hand():
    # d=2, D=4, L=1, H=3, m=5, c=2, dp, Dk=2, Dv=3:
    # embed 4*2+4=12; per head W_V 12 + p 1 + W_Q,W_K 2*8 = 29, x3 = 87; W_O 12; FFN 5*(4+1+2)=35.
    cfg = TransformerConfig(d_in=2, d_model=4, n_heads=3, ffn_width=5, d_out=2, score="dp", d_qk=2, d_value=3)
    assert count_params(cfg) == Transformer(cfg).n_params() == 12 + 87 + 12 + 35 == 146


CONFIGS = [
    dict(d_in=1, d_model=8, n_layers=1, n_heads=1, ffn_width=16, d_out=1, score="free"),
    dict(d_in=3, d_model=5, n_layers=1, n_heads=4, ffn_width=7, d_out=2, score="dp"),
    dict(d_in=2, d_model=6, n_layers=2, n_heads=3, ffn_width=4, d_out=3, score="tmx"),
    dict(d_in=2, d_model=6, n_layers=3, n_heads=2, ffn_width=9, d_out=4, score="dp", d_qk=3, d_value=2),
    dict(d_in=4, d_model=3, n_layers=3, n_heads=5, ffn_width=2, d_out=2, score=("dp", "free", "tmx"), rpe=("lin", "log", "lin")),
    dict(d_in=1, d_model=4, n_layers=2, n_heads=2, ffn_width=3, d_out=1, score=("tmx", "dp"), d_value=7),
]


@pytest.mark.parametrize("kw", CONFIGS)
def test_parameter_count_matches_remark_2_1(kw):
    cfg = TransformerConfig(**kw)
    want = remark21_count(
        kw["d_in"], kw["d_model"], kw["n_layers"], kw["n_heads"], kw["ffn_width"], kw["d_out"],
        kw["score"], kw.get("d_qk"), kw.get("d_value"),
    )
    model = Transformer(cfg)
    assert model.n_params() == want
    assert count_params(cfg) == want


def test_parameter_count_does_not_depend_on_length():
    model = make_model(d_in=2, d_model=4, n_layers=2, n_heads=2, score="dp")
    before = model.n_params()
    shapes = [tuple(p.shape) for p in model.parameters()]
    for length in (1, 5, 40):
        assert model(make_x(1, length, 2)).shape == (1, length, 1)
    assert model.n_params() == before
    assert [tuple(p.shape) for p in model.parameters()] == shapes


# ---------------------------------------------------------------- architecture (eq. 2)


def test_zero_attention_and_ffn_reduces_to_readout_of_embedding():
    model = make_model(d_in=2, d_model=4, n_layers=3, n_heads=2, ffn_width=6, d_out=3, score=("dp", "tmx", "free"))
    with torch.no_grad():
        for attn in model.attn:
            attn.W_O.zero_()
        for ffn in model.ffn[:-1]:
            ffn.out.weight.zero_()
    x = make_x(2, 6, 2, seed=1)
    embedded = x @ model.embed.weight.T + model.embed.bias
    readout = model.ffn[-1]
    want = torch.relu(embedded @ readout.hidden.weight.T + readout.hidden.bias) @ readout.out.weight.T
    torch.testing.assert_close(model(x), want, rtol=1e-13, atol=1e-13)
    # and that is the naive reference too
    torch.testing.assert_close(model(x), naive_model(model, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kw",
    [
        dict(score="free", rpe="lin", normalized=True, d_out=4),  # d_out == D: a residual would be visible
        dict(score="free", rpe="log", normalized=False, d_out=2),
        dict(score="dp", rpe="log", normalized=True, d_out=4),
        dict(score="tmx", rpe="lin", normalized=False, d_out=1),
        dict(score="dp", rpe="lin", normalized=False, d_out=3, d_qk=2, d_value=3),
    ],
)
def test_one_layer_equals_manual_computation(kw):
    model = make_model(seed=2, d_in=3, d_model=4, n_layers=1, n_heads=2, ffn_width=5, **kw)
    x = make_x(2, 6, 3, seed=2)
    torch.testing.assert_close(model(x), naive_model(model, x), rtol=1e-11, atol=1e-11)
    # and, spelled out with torch ops: embed -> + attn -> readout (no residual)
    h = model.embed(x)
    h = h + model.attn[0](h, path="dense")
    want = model.ffn[0].out(torch.relu(model.ffn[0].hidden(h)))
    torch.testing.assert_close(model(x), want, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize(
    "kw",
    [
        dict(score=("free", "free"), rpe=("lin", "log"), normalized=True),
        dict(score=("dp", "tmx"), rpe=("log", "lin"), normalized=False),
        dict(score=("tmx", "dp"), rpe="log", normalized=True),
    ],
)
def test_two_layer_equals_manual_composition(kw):
    model = make_model(seed=3, d_in=2, d_model=3, n_layers=2, n_heads=2, ffn_width=4, d_out=3, **kw)
    with torch.no_grad():  # keep the normalisation-free activations of order one
        for attn in model.attn:
            attn.W_O.mul_(0.5)
    x = make_x(2, 5, 2, seed=3)
    torch.testing.assert_close(model(x), naive_model(model, x), rtol=1e-11, atol=1e-11)


def test_ffn_has_no_output_bias_and_is_relu():
    ffn = FFN(3, 4, 2, dtype=F64)
    assert ffn.out.bias is None
    assert tuple(ffn.hidden.weight.shape) == (4, 3) and tuple(ffn.out.weight.shape) == (2, 4)
    x = make_x(1, 3, 3)
    torch.testing.assert_close(ffn(x), torch.tensor([naive_ffn(ffn, x[0].tolist())], dtype=F64), rtol=1e-13, atol=1e-13)


def test_per_layer_rpe_and_score_reach_the_layers():
    model = Transformer(TransformerConfig(n_layers=3, rpe=("lin", "log", "log"), score=("dp", "free", "tmx")))
    assert [a.rpe for a in model.attn] == ["lin", "log", "log"]
    assert [a.score for a in model.attn] == ["dp", "free", "tmx"]
    assert model.config.rpe == ("lin", "log", "log")
    model = Transformer(TransformerConfig(n_layers=2, rpe="log", score="tmx", normalized=False))
    assert [a.rpe for a in model.attn] == ["log", "log"] and not any(a.normalized for a in model.attn)


# ---------------------------------------------------------------- positions


@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("score", ["free", "dp"])
def test_positions_equal_rows_of_full_output(n_layers, score):
    model = make_model(seed=4, d_in=2, d_model=4, n_layers=n_layers, n_heads=2, ffn_width=5, d_out=2, score=score, rpe="log")
    x = make_x(2, 9, 2, seed=4).requires_grad_(True)
    positions = torch.tensor([8, 0, 3])
    out = model(x, positions)
    full = model(x)
    assert out.shape == (2, 3, 2)
    torch.testing.assert_close(out, full[:, positions], rtol=0, atol=1e-12)
    (gx_pos,) = torch.autograd.grad(out.sum(), x)
    (gx_full,) = torch.autograd.grad(full[:, positions].sum(), x)
    torch.testing.assert_close(gx_pos, gx_full, rtol=0, atol=1e-12)


def test_positions_as_list():
    model = make_model(seed=5, d_in=1, n_layers=2)
    x = make_x(1, 6, 1, seed=5)
    torch.testing.assert_close(model(x, [2, 5]), model(x)[:, [2, 5]], rtol=0, atol=1e-12)


@pytest.mark.parametrize("positions", [[-1], [-4, 0], []])
def test_negative_or_empty_positions_rejected(positions):
    model = make_model(seed=6, d_in=1)
    with pytest.raises(ValueError, match="positions"):
        model(make_x(1, 4, 1), torch.tensor(positions, dtype=torch.long))


def test_positions_beyond_length_raise_value_error():
    model = make_model(seed=6, d_in=1)
    with pytest.raises(ValueError, match="positions"):
        model(make_x(1, 4, 1), torch.tensor([4]))


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"n_layers": 0}, "n_layers"),
        ({"n_layers": 1.5}, "n_layers"),
        ({"n_heads": 0}, "n_heads"),
        ({"ffn_width": 0}, "ffn_width"),
        ({"d_in": 0}, "d_in"),
        ({"d_model": -2}, "d_model"),
        ({"d_out": 0}, "d_out"),
        ({"n_layers": 2, "rpe": ("lin",)}, "rpe"),
        ({"n_layers": 2, "rpe": ("lin", "log", "lin")}, "rpe"),
        ({"n_layers": 2, "rpe": ("lin", "cos")}, "rpe"),
        ({"rpe": "alibi"}, "rpe"),
        ({"n_layers": 2, "score": ("dp",)}, "score"),
        ({"score": "softmax"}, "score"),
        ({"normalized": "yes"}, "normalized"),
        ({"dtype": torch.float16}, "dtype"),
        ({"dtype": "float64"}, "dtype"),
    ],
)
def test_config_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TransformerConfig(**kwargs)


@pytest.mark.parametrize("kwargs,name", [({"d_qk": 0, "score": "dp"}, "d_qk"), ({"d_value": 0}, "d_value"), ({"p_range": (0.0, 1.0)}, "p_min")])
def test_bad_attention_sizes_rejected_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Transformer(TransformerConfig(**kwargs))


@pytest.mark.parametrize("kwargs,name", [({"rpe": None}, "rpe"), ({"score": 3}, "score")])
def test_config_non_string_rpe_or_score(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TransformerConfig(**kwargs)


def test_bad_x_rank_and_width():
    model = make_model(d_in=2)
    with pytest.raises(ValueError, match="x"):
        model(torch.zeros(5, 2, dtype=F64))
    with pytest.raises(ValueError, match="d_in"):
        model(torch.zeros(1, 5, 3, dtype=F64))


def test_bad_x_dtype():
    model = make_model(d_in=2)
    with pytest.raises(ValueError, match="dtype"):
        model(torch.zeros(1, 5, 2, dtype=torch.float32))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("score", ["free", "dp", "tmx"])
def test_non_finite_token_rejected(bad, score):
    model = make_model(d_in=1, n_layers=2, score=score)
    x = make_x(2, 6, 1)
    x[0, 3, 0] = bad
    with pytest.raises(ValueError, match=r"x must be finite.*x\[0, 3, 0\]"):
        model(x)


def test_numpy_x_rejected_by_type():
    import numpy as np

    with pytest.raises(ValueError, match="torch.Tensor.*numpy.ndarray"):
        make_model(d_in=1)(np.zeros((1, 5, 1)))


def test_empty_batch_and_2d_positions():
    model = make_model(d_in=1, n_layers=2)
    assert model(torch.zeros(0, 5, 1, dtype=F64)).shape == (0, 5, 1)
    assert model(torch.zeros(0, 5, 1, dtype=F64), positions=[4]).shape == (0, 1, 1)
    with pytest.raises(ValueError, match="1-D"):
        model(make_x(1, 5, 1), positions=[[4]])
    with pytest.raises(ValueError, match="path"):
        model(make_x(1, 5, 1), path="sideways")


@pytest.mark.parametrize("p_range", [(1.0,), (1.0, math.inf), (-1.0, 2.0), None])
def test_config_p_range_checked_up_front(p_range):
    with pytest.raises(ValueError, match="p_range"):
        TransformerConfig(p_range=p_range)


# ---------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("score", ["free", "dp", "tmx"])
def test_dtypes_work(dtype, score):
    torch.manual_seed(7)
    model = Transformer(TransformerConfig(d_in=2, d_model=4, n_layers=2, n_heads=2, score=score, rpe="log", dtype=dtype))
    assert all(p.dtype == dtype for p in model.parameters())
    x = make_x(2, 8, 2, dtype=dtype).requires_grad_(True)
    out = model(x)
    assert out.dtype == dtype and out.shape == (2, 8, 1) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_float32_close_to_float64_with_same_weights():
    model64 = make_model(seed=8, d_in=2, d_model=4, n_layers=2, n_heads=2, score=("dp", "free"), rpe="log")
    model32 = Transformer(TransformerConfig(d_in=2, d_model=4, n_layers=2, n_heads=2, score=("dp", "free"), rpe="log", dtype=torch.float32))
    model32.load_state_dict({k: v.float() for k, v in model64.state_dict().items()})
    x = make_x(2, 10, 2, seed=8)
    torch.testing.assert_close(model32(x.float()).double(), model64(x), rtol=1e-4, atol=1e-5)


def test_without_the_residual_a_log_layer_cannot_see_the_current_token():
    from txtheory.model import Transformer, TransformerConfig
    torch.manual_seed(0)
    for residual, expect_same in ((False, True), (True, False)):
        m = Transformer(TransformerConfig(rpe="log", readout="linear", residual=residual, dtype=torch.float64))
        x = torch.randn(1, 5, 1, dtype=torch.float64)
        y = x.clone()
        y[0, -1] += 1.0  # change only the current token at the last position
        same = torch.allclose(m(x)[0, -1], m(y)[0, -1])
        assert same == expect_same
    with pytest.raises(ValueError, match="residual"):
        TransformerConfig(residual="no")


# ---------------------------------------------------------------- the first layer on [x_t, 1]


def unfactored(model, x, positions=None, path="auto"):
    """Eq. 2 with torch ops, the first layer reading the embedding W_E x + b_E itself."""
    h, last = model.embed(x), len(model.attn) - 1
    for l, (attn, ffn) in enumerate(zip(model.attn, model.ffn)):
        at = positions if l == last else None
        h = (h if at is None else h[:, at]) + attn(h, at, path=path)
        if l == last:
            out = ffn(h)
            break
        h = h + ffn(h)
    model.tokens_first = False  # the switch gives the same reference
    try:
        torch.testing.assert_close(model(x, positions, path), out, rtol=0, atol=0)
    finally:
        del model.tokens_first
    return out


@pytest.mark.parametrize("score", ["free", "dp", "tmx"])
@pytest.mark.parametrize("rpe_kind,normalized", [("lin", True), ("log", True), ("lin", False), ("log", False)])
@pytest.mark.parametrize("n_layers", [1, 2])
def test_first_layer_on_the_tokens_equals_the_embedded_model(score, rpe_kind, normalized, n_layers):
    # d + 1 < D, so forward takes the tokens [x_t, 1] with the embedding folded in
    model = make_model(seed=5, d_in=1, d_model=6, n_layers=n_layers, n_heads=3, ffn_width=5, d_out=2,
                       score=score, rpe=rpe_kind, normalized=normalized)
    assert model._tokens_first(make_x(1, 2, 1))
    with torch.no_grad():  # normalisation-free activations of order one, scores below the cap
        for attn in model.attn:
            attn.W_O.mul_(0.3)
            if hasattr(attn, "W_Q") and not normalized:
                attn.W_Q.mul_(0.1)
    T = 40 if normalized else 12  # a normalisation-free layer sums T weights of up to 1
    x = make_x(2, T, 1, seed=5)
    if n_layers == 1:  # the independent loops, on a short window
        torch.testing.assert_close(model(x[:, :7]), naive_model(model, x[:, :7]), rtol=1e-11, atol=1e-11)
    for positions in (None, torch.tensor([0, T // 2, T - 1]), torch.tensor([T - 1])):
        paths = ["auto", "dense"] + (["fast"] if score == "free" and positions is None else [])
        for path in paths:
            model.zero_grad()
            got = model(x, positions, path)
            got.square().sum().backward()
            g_got = {n: p.grad.clone() for n, p in model.named_parameters()}
            model.zero_grad()
            want = unfactored(model, x, positions, path)
            want.square().sum().backward()
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
            for n, p in model.named_parameters():
                torch.testing.assert_close(g_got[n], p.grad, rtol=1e-11, atol=1e-11, msg=n)


def test_first_layer_reads_the_embedding_when_it_is_not_narrower():
    # d + 1 = D: nothing to gain; LayerNorm between embedding and attention: not affine
    assert not make_model(d_in=3, d_model=4)._tokens_first(make_x(1, 2, 3))
    assert not make_model(d_in=1, d_model=8, layer_norm=True)._tokens_first(make_x(1, 2, 1))


def test_absolute_positions():
    torch.manual_seed(0)
    config = TransformerConfig(d_model=8, n_heads=2, score="dp", abs_positions=10)
    model = Transformer(config)
    assert model.n_params() == count_params(config) == count_params(
        TransformerConfig(d_model=8, n_heads=2, score="dp")) + 10 * 8
    x = torch.randn(3, 10, 1)
    full = model(x)
    torch.testing.assert_close(model(x, positions=torch.tensor([4, 9])), full[:, [4, 9]])
    # the embedding depends on the position: the same token at two positions differs
    h = model.embed_tokens(torch.ones(1, 10, 1))
    assert not torch.allclose(h[0, 0], h[0, 1])
    with pytest.raises(ValueError, match="abs_positions = 10"):
        model(torch.randn(1, 11, 1))
    with pytest.raises(ValueError, match="abs_positions"):
        TransformerConfig(abs_positions=-1)
