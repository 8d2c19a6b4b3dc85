"""Tests of txtheory.attention: every score kind and normalisation against a naive
reference written with explicit Python loops from the paper's formula (eq. 3 / eq. 12),
the FFT path against the dense path (values and gradients), restricted query positions,
the log-RPE row with no admissible key, and the ValueErrors for bad input."""
import math

import pytest
import torch

from txtheory import attention as attention_mod
from txtheory import rpe
from txtheory.attention import MultiHeadAttention, attention_weights

B, T, D, H = 2, 7, 3, 2
F64 = torch.float64


# ---------------------------------------------------------------- helpers


def make_attention(rpe_kind="lin", score="free", normalized=True, seed=0, d_model=D, n_heads=H, **kw):
    """An attention layer in float64 with random parameters: random rates p in [0.2, 1.5],
    random non-zero W_Q, W_K and w_tmx (the latter is zero at initialisation)."""
    torch.manual_seed(seed)
    m = MultiHeadAttention(d_model, n_heads, rpe=rpe_kind, score=score, normalized=normalized, dtype=F64, **kw)
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        p = 0.2 + 1.3 * torch.rand(n_heads, generator=g, dtype=F64)
        m.p_raw.copy_(rpe.inverse_positive(p))
        m.W_V.copy_(torch.randn(m.W_V.shape, generator=g, dtype=F64))
        m.W_O.copy_(torch.randn(m.W_O.shape, generator=g, dtype=F64))
        if score == "dp":
            m.W_Q.copy_(0.7 * torch.randn(m.W_Q.shape, generator=g, dtype=F64))
            m.W_K.copy_(0.7 * torch.randn(m.W_K.shape, generator=g, dtype=F64))
        if score == "tmx":
            m.w_tmx.copy_(torch.randn(m.w_tmx.shape, generator=g, dtype=F64))
    return m


def make_x(b=B, t=T, d=D, seed=0, dtype=F64):
    return torch.randn(b, t, d, generator=torch.Generator().manual_seed(seed + 7), dtype=dtype)


def matvec(M, v):
    return [sum(M[i][j] * v[j] for j in range(len(v))) for i in range(len(M))]


def dot(u, v):
    return sum(a * b for a, b in zip(u, v))


def phi(s, kind):
    if kind == "lin":
        return -float(s) if s >= 0 else None
    if kind == "log1p":
        return -math.log(1 + s) if s >= 0 else None
    return -math.log(s) if s >= 1 else None


def naive_attention(m, x):
    """out_t = W_O Σ_h W_V^h Σ_{admissible s} weight_h(t, s) x_{t-s}, with plain Python
    lists and loops over b, t, h, s.  Scores: dp <W_Q x_t, W_K x_{t-s}> + p φ(s);
    free p φ(s); tmx p (φ(s) + w·x_t).  Weights: softmax over the admissible keys, or
    exp(score) (normalisation-free).  A row with no admissible key outputs 0."""
    X = x.tolist()
    p = m.p.tolist()
    W_V, W_O = m.W_V.tolist(), m.W_O.tolist()
    W_Q = m.W_Q.tolist() if m.score == "dp" else None
    W_K = m.W_K.tolist() if m.score == "dp" else None
    w = m.w_tmx.tolist() if m.score == "tmx" else None
    Dv = len(W_V[0])
    out = []
    for b in range(len(X)):
        rows = []
        for t in range(len(X[b])):
            acc = [0.0] * Dv
            for h in range(len(p)):
                keys, scores = [], []
                for s in range(t + 1):
                    f = phi(s, m.rpe)
                    if f is None:
                        continue
                    if m.score == "free":
                        sc = p[h] * f
                    elif m.score == "dp":
                        sc = dot(matvec(W_Q[h], X[b][t]), matvec(W_K[h], X[b][t - s])) + p[h] * f
                    else:
                        sc = p[h] * (f + dot(w[h], X[b][t]))
                    keys.append(t - s)
                    scores.append(sc)
                e = [math.exp(sc) for sc in scores]
                weights = [v / sum(e) for v in e] if m.normalized else e
                mixed = [0.0] * len(X[b][t])
                for wt, k in zip(weights, keys):
                    mixed = [a + wt * xv for a, xv in zip(mixed, X[b][k])]
                acc = [a + v for a, v in zip(acc, matvec(W_V[h], mixed))]
            rows.append(matvec(W_O, acc))
        out.append(rows)
    return torch.tensor(out, dtype=F64)


def grads(m, x, out_fn):
    """Gradients of a fixed random projection of out_fn(m, x) w.r.t. every parameter and x."""
    m.zero_grad()
    x = x.detach().clone().requires_grad_(True)
    out = out_fn(m, x)
    c = torch.randn(out.shape, generator=torch.Generator().manual_seed(123), dtype=out.dtype)
    (out * c).sum().backward()
    g = {name: prm.grad.detach().clone() for name, prm in m.named_parameters()}
    g["x"] = x.grad.detach().clone()
    return out.detach(), g


ALL = [(s, r, n) for s in ("dp", "free", "tmx") for r in ("lin", "log") for n in (True, False)]


# ---------------------------------------------------------------- dense path == naive reference


@pytest.mark.parametrize("score,rpe_kind,normalized", ALL)
def test_dense_equals_naive_reference(score, rpe_kind, normalized):
    m = make_attention(rpe_kind, score, normalized, seed=3)
    x = make_x(seed=3)
    got = m(x, path="dense")
    assert got.shape == (B, T, D) and got.dtype == F64
    torch.testing.assert_close(got, naive_attention(m, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("score,rpe_kind,normalized", ALL)
def test_auto_path_equals_naive_reference(score, rpe_kind, normalized):
    m = make_attention(rpe_kind, score, normalized, seed=4)
    x = make_x(seed=4)
    torch.testing.assert_close(m(x), naive_attention(m, x), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("score", ["dp", "free", "tmx"])
def test_dense_with_other_qk_and_value_sizes(score):
    m = make_attention("lin", score, True, seed=5, d_qk=2, d_value=4)
    assert m.W_V.shape == (H, 4, D) and m.W_O.shape == (D, 4)
    x = make_x(seed=5)
    torch.testing.assert_close(m(x, path="dense"), naive_attention(m, x), rtol=1e-12, atol=1e-12)


def test_free_lin_hand_computed_single_head():
    """H=1, D=1, W_V = W_O = 1, p = log 2: softmax weights over lags 0..t are ∝ 2^{-s}."""
    m = MultiHeadAttention(1, 1, rpe="lin", score="free", normalized=True, dtype=F64)
    with torch.no_grad():
        m.p_raw.copy_(rpe.inverse_positive(torch.tensor([math.log(2.0)], dtype=F64)))
        m.W_V.fill_(1.0)
        m.W_O.fill_(1.0)
    x = torch.tensor([1.0, 2.0, 4.0], dtype=F64).reshape(1, 3, 1)
    # t=0: 1.  t=1: (2 + 1/2)/(3/2) = 5/3.  t=2: (4 + 1 + 1/4)/(7/4) = 3.
    torch.testing.assert_close(m(x, path="dense").flatten(), torch.tensor([1.0, 5 / 3, 3.0], dtype=F64))
    m.normalized = False  # Σ_s 2^{-s} x_{t-s}: 1, 2.5, 5.25
    torch.testing.assert_close(m(x, path="dense").flatten(), torch.tensor([1.0, 2.5, 5.25], dtype=F64))


# ---------------------------------------------------------------- fast (FFT) == dense


@pytest.mark.parametrize("length", [1, 2, 17, 64, 100])  # inside one scan block, several, a partial last one
@pytest.mark.parametrize("rpe_kind", ["lin", "log"])
@pytest.mark.parametrize("normalized", [True, False])
def test_fast_equals_dense_values_and_gradients(length, rpe_kind, normalized):
    m = make_attention(rpe_kind, "free", normalized, seed=length, n_heads=3)
    with torch.no_grad():  # keep the normalisation-free sums of order one
        m.W_V.mul_(0.5)
    x = make_x(t=length, seed=length)
    out_fast, g_fast = grads(m, x, lambda m, x: m(x, path="fast"))
    out_dense, g_dense = grads(m, x, lambda m, x: m(x, path="dense"))
    assert out_fast.shape == out_dense.shape == (B, length, D)
    torch.testing.assert_close(out_fast, out_dense, rtol=0, atol=1e-10)
    assert set(g_fast) == {"p_raw", "W_V", "W_O", "x"}
    for name in g_fast:
        assert torch.isfinite(g_fast[name]).all(), name
        torch.testing.assert_close(g_fast[name], g_dense[name], rtol=0, atol=1e-10, msg=name)


@pytest.mark.parametrize("p_range", [(1e-6, 1e-3), (5.0, 80.0)])  # decays that barely move, and that underflow
def test_the_lin_scan_equals_dense_for_extreme_rates_and_head_chunks(p_range, monkeypatch):
    monkeypatch.setattr(attention_mod, "_CHUNK_ELEMENTS", 1)  # one head at a time
    m = MultiHeadAttention(D, 5, rpe="lin", score="free", normalized=True, p_range=p_range, dtype=torch.float64)
    x = make_x(t=70, seed=4)
    out_fast, g_fast = grads(m, x, lambda m, x: m(x, path="fast"))
    out_dense, g_dense = grads(m, x, lambda m, x: m(x, path="dense"))
    torch.testing.assert_close(out_fast, out_dense, rtol=0, atol=1e-10)
    for name in g_fast:
        torch.testing.assert_close(g_fast[name], g_dense[name], rtol=0, atol=1e-10, msg=name)


def test_the_lin_scan_is_what_the_fast_path_runs_for_softmax_lin(monkeypatch):
    m = make_attention("lin", "free", True, seed=2)
    calls = []
    monkeypatch.setattr(MultiHeadAttention, "_forward_fft", lambda self, x, W_OV: calls.append("fft"))
    m(make_x(t=40, seed=2), path="fast")  # the scan, so the FFT is never called
    assert calls == []


def test_auto_takes_the_log_scan_only_where_it_pays(monkeypatch):
    from txtheory.attention import log_scan_pays

    assert log_scan_pays(1000, 16) and not log_scan_pays(64, 32)  # the paper's size; the arena's
    layer = MultiHeadAttention(d_model=32, n_heads=4, rpe="log", score="free", normalized=True, dtype=torch.float64)
    calls = []
    original = MultiHeadAttention._forward_log_scan
    monkeypatch.setattr(MultiHeadAttention, "_forward_log_scan",
                        lambda self, *a: calls.append(1) or original(self, *a))
    x = torch.randn(2, 64, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    auto = layer(x)
    assert calls == []  # dense at this size ...
    torch.testing.assert_close(auto, layer(x, path="fast"), rtol=0, atol=1e-10)  # ... the scan within its budget
    assert calls == [1]


def test_auto_takes_the_scan_only_where_it_pays(monkeypatch):
    from txtheory.attention import scan_pays

    assert scan_pays(1000, 2, 1) and not scan_pays(64, 64, 2)  # the paper's kernels; a language model
    wide = MultiHeadAttention(d_model=64, n_heads=2, rpe="lin", score="free", normalized=True,
                              dtype=torch.float64)
    calls = []
    original = MultiHeadAttention._forward_scan
    monkeypatch.setattr(MultiHeadAttention, "_forward_scan",
                        lambda self, *a: calls.append(1) or original(self, *a))
    x = torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    auto = wide(x)
    assert calls == []  # dense, where the scan would cost more ...
    # ... and the same function: the scan agrees to float64 rounding
    torch.testing.assert_close(auto, wide(x, path="fast"), rtol=0, atol=1e-12)
    assert calls == [1]


def test_auto_uses_a_path_equal_to_dense_for_free():
    m = make_attention("log", "free", True, seed=9)
    x = make_x(t=20, seed=9)
    torch.testing.assert_close(m(x), m(x, path="dense"), rtol=0, atol=1e-12)


# ---------------------------------------------------------------- restricted query positions


@pytest.mark.parametrize("score,rpe_kind,normalized", ALL)
def test_positions_are_rows_of_full_output(score, rpe_kind, normalized):
    m = make_attention(rpe_kind, score, normalized, seed=11)
    x = make_x(seed=11)
    positions = torch.tensor([0, 3, 6, 4])
    out_pos, g_pos = grads(m, x, lambda m, x: m(x, positions))
    out_full, g_full = grads(m, x, lambda m, x: m(x)[:, positions])
    assert out_pos.shape == (B, 4, D)
    # A few queries take W_K onto the queries rather than onto every key (the same sums in
    # another order): normalisation-free values and gradients reach 1e4 here, so the bound
    # is relative.
    torch.testing.assert_close(out_pos, out_full, rtol=1e-13, atol=1e-12)
    for name in g_full:
        torch.testing.assert_close(g_pos[name], g_full[name], rtol=1e-13, atol=1e-12, msg=name)


def test_positions_accepts_list_and_single_position():
    m = make_attention("lin", "dp", True, seed=12)
    x = make_x(seed=12)
    full = m(x)
    torch.testing.assert_close(m(x, [5]), full[:, [5]], rtol=0, atol=1e-12)
    torch.testing.assert_close(m(x, [1, 2]), full[:, [1, 2]], rtol=0, atol=1e-12)


# ---------------------------------------------------------------- log-RPE at t = 0: no admissible key


@pytest.mark.parametrize("score", ["dp", "free", "tmx"])
@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("path", ["auto", "dense"])
def test_log_rpe_first_row_is_zero_and_gradients_finite(score, normalized, path):
    m = make_attention("log", score, normalized, seed=13)
    x = make_x(seed=13).requires_grad_(True)
    out = m(x, path=path)
    assert torch.isfinite(out).all()
    assert torch.equal(out[:, 0], torch.zeros(B, D, dtype=F64))
    assert (out[:, 1:].abs() > 0).any()
    out.sum().backward()
    for name, prm in m.named_parameters():
        assert torch.isfinite(prm.grad).all(), name
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("normalized", [True, False])
def test_log_rpe_single_token_and_position_zero(normalized):
    for score in ("dp", "free", "tmx"):
        m = make_attention("log", score, normalized, seed=14)
        x1 = make_x(t=1, seed=14).requires_grad_(True)
        out = m(x1)
        assert torch.equal(out, torch.zeros(B, 1, D, dtype=F64)), score
        out.sum().backward()
        assert torch.isfinite(x1.grad).all() and torch.isfinite(m.p_raw.grad).all(), score
        x = make_x(seed=14)
        assert torch.equal(m(x, [0]), torch.zeros(B, 1, D, dtype=F64)), score


@pytest.mark.parametrize("normalized", [True, False])
def test_fast_log_rpe_first_row_is_zero_up_to_roundoff(normalized):
    m = make_attention("log", "free", normalized, seed=15)
    x = make_x(t=10, seed=15).requires_grad_(True)
    out = m(x, path="fast")
    assert out[:, 0].abs().max() < 1e-13
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(m.p_raw.grad).all()


def test_fast_normalized_log_rpe_first_row_is_exactly_zero():
    m = make_attention("log", "free", True, seed=15)
    assert torch.equal(m(make_x(t=10, seed=15), path="fast")[:, 0], torch.zeros(B, D, dtype=F64))


def test_fast_unnormalized_log_rpe_first_row_is_exactly_zero():
    m = make_attention("log", "free", False, seed=15)
    assert torch.equal(m(make_x(t=10, seed=15), path="fast")[:, 0], torch.zeros(B, D, dtype=F64))


@pytest.mark.parametrize("normalized", [True, False])
def test_attention_weights_row_without_admissible_key(normalized):
    score = torch.tensor([[0.3, -1.0, 2.0], [5.0, 1.0, -2.0]], dtype=F64, requires_grad=True)
    ok = torch.tensor([[True, False, True], [False, False, False]])
    w = attention_weights(score, ok, normalized)
    assert w[1].tolist() == [0.0, 0.0, 0.0]
    assert w[0, 1].item() == 0.0
    e0, e2 = math.exp(0.3), math.exp(2.0)
    want = [e0 / (e0 + e2), e2 / (e0 + e2)] if normalized else [e0, e2]
    assert [w[0, 0].item(), w[0, 2].item()] == pytest.approx(want, rel=1e-14)
    w.sum().backward()
    assert torch.isfinite(score.grad).all()
    assert score.grad[1].tolist() == [0.0, 0.0, 0.0]


def test_attention_weights_large_scores_do_not_overflow_when_normalized():
    score = torch.tensor([[1000.0, 999.0]], dtype=F64)
    w = attention_weights(score, torch.ones(1, 2, dtype=torch.bool), True)
    e = math.exp(-1.0)
    assert w[0].tolist() == pytest.approx([1 / (1 + e), e / (1 + e)], rel=1e-14)


# ---------------------------------------------------------------- tmx normalised == free normalised


@pytest.mark.parametrize("rpe_kind", ["lin", "log"])
def test_normalized_tmx_equals_normalized_free(rpe_kind):
    tmx = make_attention(rpe_kind, "tmx", True, seed=16)
    free = make_attention(rpe_kind, "free", True, seed=99)
    with torch.no_grad():
        free.p_raw.copy_(tmx.p_raw)
        free.W_V.copy_(tmx.W_V)
        free.W_O.copy_(tmx.W_O)
    assert tmx.w_tmx.abs().min() > 0
    x = make_x(seed=16)
    torch.testing.assert_close(tmx(x), free(x), rtol=1e-12, atol=1e-12)
    # ... but not when normalisation-free: there the query term scales each head by e^{p w·x_t}.
    tmx.normalized = free.normalized = False
    assert not torch.allclose(tmx(x), free(x))


# ---------------------------------------------------------------- kernel(length)


@pytest.mark.parametrize("rpe_kind", ["lin", "log"])
def test_kernel_normalized_rows_sum_to_one(rpe_kind):
    m = make_attention(rpe_kind, "free", True, seed=17, n_heads=3)
    k = m.kernel(12)
    assert k.shape == (3, 12)
    torch.testing.assert_close(k.sum(-1), torch.ones(3, dtype=F64), rtol=0, atol=1e-14)


@pytest.mark.parametrize("normalized", [True, False])
def test_kernel_lin_is_exponential(normalized):
    m = make_attention("lin", "free", normalized, seed=18, n_heads=3)
    k = m.kernel(10).tolist()
    for h, ph in enumerate(m.p.tolist()):
        want = [math.exp(-ph * s) for s in range(10)]
        if normalized:
            want = [v / sum(want) for v in want]
        assert k[h] == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("normalized", [True, False])
def test_kernel_log_is_power_law(normalized):
    m = make_attention("log", "free", normalized, seed=19, n_heads=3)
    k = m.kernel(10).tolist()
    for h, ph in enumerate(m.p.tolist()):
        want = [0.0] + [s ** (-ph) for s in range(1, 10)]
        if normalized:
            want = [v / sum(want) for v in want]
        assert k[h][0] == 0.0
        assert k[h] == pytest.approx(want, rel=1e-13)


def test_kernel_gradient_finite():
    m = make_attention("log", "free", True, seed=20)
    m.kernel(8).sum().backward()
    assert torch.isfinite(m.p_raw.grad).all()


def test_kernel_log_length_one_is_not_nan():
    m = make_attention("log", "free", True, seed=21)
    assert torch.isfinite(m.kernel(1)).all()


def test_kernel_bad_length():
    m = make_attention("lin", "free", True)
    with pytest.raises(ValueError, match="length"):
        m.kernel(0)


# ---------------------------------------------------------------- parameters and shapes


def test_parameter_shapes():
    m = MultiHeadAttention(4, 3, score="dp", d_qk=2, d_value=5, dtype=F64)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert shapes == {"p_raw": (3,), "W_V": (3, 5, 4), "W_O": (4, 5), "W_Q": (3, 2, 4), "W_K": (3, 2, 4)}
    assert {n for n, _ in MultiHeadAttention(4, 3, score="free").named_parameters()} == {"p_raw", "W_V", "W_O"}
    shapes = {n: tuple(p.shape) for n, p in MultiHeadAttention(4, 3, score="tmx").named_parameters()}
    assert shapes["w_tmx"] == (3, 4)


def test_initial_rates_are_geometric_over_p_range():
    m = MultiHeadAttention(2, 3, p_range=(0.1, 10.0), dtype=F64)
    assert m.p.tolist() == pytest.approx([0.1, 1.0, 10.0], rel=1e-12)
    assert (m.p > 0).all()


def test_float32_works():
    m = MultiHeadAttention(D, H, rpe="log", score="dp")
    x = make_x(dtype=torch.float32)
    out = m(x)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    free = MultiHeadAttention(D, H, rpe="lin", score="free")
    torch.testing.assert_close(free(x, path="fast"), free(x, path="dense"), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"n_heads": 0}, "n_heads"),
        ({"d_model": 0}, "d_model"),
        ({"rpe": "cos"}, "rpe"),
        ({"score": "softmax"}, "score"),
        ({"normalized": "yes"}, "normalized"),
        ({"d_qk": 0, "score": "dp"}, "d_qk"),
        ({"d_value": 0}, "d_value"),
        ({"p_range": (0.0, 1.0)}, "p_min"),
        ({"p_range": (2.0, 1.0)}, "p_min"),
        ({"p_range": (1.0,)}, "p_range"),  # once a TypeError from inside geometric_rates
        ({"p_range": (math.nan, 1.0)}, "p_range"),
        ({"p_range": "ab"}, "p_range"),
        ({"dtype": torch.int64}, "dtype"),  # once a RuntimeError from torch
        ({"dtype": torch.float16}, "dtype"),
    ],
)
def test_bad_constructor_arguments(kwargs, name):
    args = {"d_model": D, "n_heads": H, **kwargs}
    with pytest.raises(ValueError, match=name):
        MultiHeadAttention(**args)


def test_bad_x_rank():
    m = make_attention()
    with pytest.raises(ValueError, match="x"):
        m(torch.zeros(T, D, dtype=F64))


def test_bad_x_last_dim():
    m = make_attention()
    with pytest.raises(ValueError, match="d_model"):
        m(torch.zeros(B, T, D + 1, dtype=F64))


def test_bad_x_dtype():
    m = make_attention()
    with pytest.raises(ValueError, match="dtype"):
        m(torch.zeros(B, T, D, dtype=torch.float32))


@pytest.mark.parametrize("score", ["dp", "tmx"])
def test_fast_path_needs_free_score(score):
    m = make_attention("lin", score)
    with pytest.raises(ValueError, match="path"):
        m(make_x(), path="fast")


def test_fast_path_with_positions_rejected():
    m = make_attention("lin", "free")
    with pytest.raises(ValueError, match="path"):
        m(make_x(), positions=[1], path="fast")


def test_unknown_path():
    m = make_attention()
    with pytest.raises(ValueError, match="path"):
        m(make_x(), path="bogus")


@pytest.mark.parametrize("positions", [[T], [-1], [0, T + 3], []])
def test_positions_out_of_range(positions):
    m = make_attention()
    with pytest.raises(ValueError, match="positions"):
        m(make_x(), positions=torch.tensor(positions, dtype=torch.long))


def test_non_integer_positions_rejected():
    m = make_attention()
    with pytest.raises(ValueError, match="positions"):
        m(make_x(), positions=torch.tensor([1.5]))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("score,path", [("free", "fast"), ("free", "dense"), ("dp", "dense"), ("tmx", "dense")])
def test_non_finite_token_rejected_on_every_score_and_path(bad, score, path):
    # unchecked, one bad token at position 3 turned every row into NaN, rows 0-2 included
    m = make_attention("lin", score)
    x = make_x()
    x[1, 3, 0] = bad
    with pytest.raises(ValueError, match=r"x must be finite.*x\[1, 3, 0\]"):
        m(x, path=path)


def test_numpy_x_rejected_by_type():
    import numpy as np

    with pytest.raises(ValueError, match="torch.Tensor.*numpy.ndarray"):
        make_attention()(np.zeros((B, T, D)))


def test_empty_positions_and_2d_positions_rejected():
    m = make_attention()
    with pytest.raises(ValueError, match="at least one position"):
        m(make_x(), positions=[])  # once reported as "positions must be integers, got torch.float32"
    with pytest.raises(ValueError, match="1-D"):
        m(make_x(), positions=[[1, 2], [3, 4]])  # once silently flattened


@pytest.mark.parametrize("rpe_kind", ["lin", "log"])
@pytest.mark.parametrize("normalized", [True, False])
def test_empty_batch_gives_one_empty_answer_on_both_paths(rpe_kind, normalized):
    # the FFT path once crashed with an MKL error where the dense path returned (0, T, D)
    m = make_attention(rpe_kind, "free", normalized)
    x = torch.zeros(0, T, D, dtype=F64, requires_grad=True)
    fast, dense, auto = m(x, path="fast"), m(x, path="dense"), m(x)
    assert fast.shape == dense.shape == auto.shape == (0, T, D)
    assert m(x, positions=[2, 4]).shape == (0, 2, D)
    fast.sum().backward()  # and the empty graph still backpropagates
    assert x.grad.shape == (0, T, D)


def test_empty_sequence_is_handled_consistently():
    m = make_attention("lin", "free")
    x = torch.zeros(B, 0, D, dtype=F64)
    results = []
    for path in ("fast", "dense"):
        try:
            results.append(tuple(m(x, path=path).shape))
        except ValueError:
            results.append("ValueError")
    assert results[0] == results[1] and results[0] in ("ValueError", (B, 0, D))


def test_non_integer_tensor_size_rejected():
    with pytest.raises(ValueError, match="d_model"):
        MultiHeadAttention(torch.tensor(2.5), H)


@pytest.mark.parametrize("rpe_kind", ["lin", "log"])
def test_normalized_fast_path_in_head_chunks_equals_dense(rpe_kind, monkeypatch):
    # Force one head per chunk (and a ragged last chunk with 5 heads in chunks of 2).
    from txtheory import attention

    for budget_heads in (1, 2):
        m = make_attention(rpe_kind, "free", True, seed=21, n_heads=5)
        x = make_x(t=33, seed=21).requires_grad_(True)
        n_freq = attention._fft_length(2 * 33 - 1) // 2 + 1
        monkeypatch.setattr(attention, "_CHUNK_ELEMENTS", budget_heads * x.shape[0] * D * n_freq)
        fast = m(x, path="fast")
        fast_grads = torch.autograd.grad(fast.square().sum(), [x, *m.parameters()])
        dense = m(x, path="dense")
        dense_grads = torch.autograd.grad(dense.square().sum(), [x, *m.parameters()])
        assert torch.allclose(fast, dense, atol=1e-10, rtol=0)
        for a, b in zip(fast_grads, dense_grads):
            assert torch.allclose(a, b, atol=1e-9, rtol=0)


# ---------------------------------------------------------------- readings beyond the paper


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("score", ["free", "dp", "tmx"])
def test_log1p_encoding_against_the_naive_reference(normalized, score):
    # phi(s) = -log(1 + s): a log encoding that sees lag 0
    m = make_attention("log1p", score, normalized, seed=3)
    x = make_x(seed=3)
    with torch.no_grad():
        torch.testing.assert_close(m(x, path="dense"), naive_attention(m, x), rtol=0, atol=1e-12)
        if score == "free":
            torch.testing.assert_close(m(x, path="fast"), naive_attention(m, x), rtol=0, atol=1e-10)
        # unlike log, it reads the current token: row 0 is not zero
        assert m(x)[:, 0].abs().sum() > 0


def test_free_rates_allow_negative_p_and_fall_back_to_dense():
    m = make_attention("lin", "free", True, seed=4, rates="free")
    with torch.no_grad():
        m.p_raw.copy_(torch.tensor([-0.8, 0.5], dtype=F64))  # head 0 weighs the oldest keys most
    assert torch.equal(m.p, m.p_raw)
    x = make_x(t=40, seed=4)
    with torch.no_grad():
        torch.testing.assert_close(m(x), naive_attention(m, x), rtol=0, atol=1e-12)  # auto -> dense
        assert m.kernel(40)[0, -1] > m.kernel(40)[0, 0]  # the oldest lag gets the most weight
    with pytest.raises(ValueError, match="p >= 0"):
        m(x, path="fast")
    with pytest.raises(ValueError, match="rates"):
        MultiHeadAttention(D, H, rates="negative")
    # with positive values the free parametrisation is the same layer as the paper's
    a, b = make_attention(seed=5), make_attention(seed=5, rates="free")
    with torch.no_grad():
        b.p_raw.copy_(a.p)
        torch.testing.assert_close(a(make_x()), b(make_x()), rtol=0, atol=1e-12)


def test_fast_normalisation_free_path_keeps_late_positions_when_the_kernel_underflows():
    # A fast-decaying lin head's weight e^{-p s} underflows to 0 at long lags; the fast
    # path once read its "no admissible key" mask off those values and zeroed every
    # position t at which the kernel's lag-t value had underflowed.
    layer = MultiHeadAttention(2, 1, rpe="lin", score="free", normalized=False, dtype=torch.float64,
                               p_range=(1.12, 1.12))
    x = torch.randn(2, 1000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(layer(x, path="fast"), layer(x, path="dense"), rtol=0, atol=1e-10)
