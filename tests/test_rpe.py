"""Tests of txtheory.rpe: the paper's φ_lin / φ_log and the per-head bias p_h φ(t - τ),
the softplus parametrisation of p > 0, and the practitioners' encodings (ALiBi, T5
buckets, KERPLE-log), each against numbers written by hand or an independent
plain-Python reimplementation of the published formula."""
import math

import pytest
import torch

from txtheory import rpe

NEG_INF = -math.inf


def lags(values):
    return torch.tensor(values, dtype=torch.long)


# ---------------------------------------------------------------- φ and its support


def test_phi_lin_hand_values():
    got = rpe.phi(lags([-3, -1, 0, 1, 2, 7]), "lin").tolist()
    assert got == [NEG_INF, NEG_INF, 0.0, -1.0, -2.0, -7.0]


def test_phi_log_hand_values():
    got = rpe.phi(lags([-2, -1, 0, 1, 2, 10]), "log").tolist()
    assert got[:3] == [NEG_INF, NEG_INF, NEG_INF]  # s < 1: outside the support
    assert got[3] == 0.0  # -log 1
    assert got[4] == pytest.approx(-0.6931471805599453, rel=1e-6)  # -log 2
    assert got[5] == pytest.approx(-2.302585092994046, rel=1e-6)  # -log 10


def test_phi_float64_lags_keep_dtype():
    got = rpe.phi(torch.tensor([0.0, 3.0], dtype=torch.float64), "log")
    assert got.dtype == torch.float64
    assert got[0].item() == NEG_INF and got[1].item() == -math.log(3.0)


def test_support():
    assert rpe.support(lags([-1, 0, 1, 2]), "lin").tolist() == [False, True, True, True]
    assert rpe.support(lags([-1, 0, 1, 2]), "log").tolist() == [False, False, True, True]


@pytest.mark.parametrize("fn", [rpe.support, rpe.phi])
def test_unknown_rpe_rejected(fn):
    with pytest.raises(ValueError, match="rpe"):
        fn(lags([0, 1]), "cos")


# ---------------------------------------------------------------- bias matrix


def reference_phi(s, kind):
    """φ_type(s) straight from the paper (eq. 4 context), as a Python float."""
    if kind == "lin":
        return -float(s) if s >= 0 else NEG_INF
    return -math.log(s) if s >= 1 else NEG_INF


@pytest.mark.parametrize("kind", ["lin", "log"])
@pytest.mark.parametrize("length", [1, 2, 6])
def test_bias_matrix_equals_double_loop(kind, length):
    p_list = [0.3, 1.0, 2.5]
    p = torch.tensor(p_list, dtype=torch.float64)
    got = rpe.bias_matrix(length, p, kind)
    assert got.shape == (3, length, length) and got.dtype == torch.float64
    for h, ph in enumerate(p_list):
        for t in range(length):
            for tau in range(length):
                want = NEG_INF if tau > t else ph * reference_phi(t - tau, kind)
                value = got[h, t, tau].item()
                if want == NEG_INF:
                    assert value == NEG_INF, (h, t, tau)
                else:
                    assert value == pytest.approx(want, rel=1e-14, abs=1e-15), (h, t, tau)


def test_bias_matrix_upper_triangle_is_minus_inf():
    got = rpe.bias_matrix(5, torch.tensor([0.7]), "lin")[0]
    for t in range(5):
        for tau in range(t + 1, 5):
            assert got[t, tau].item() == NEG_INF


@pytest.mark.parametrize("length", [0, -1])
def test_bias_matrix_bad_length(length):
    with pytest.raises(ValueError, match="length"):
        rpe.bias_matrix(length, torch.tensor([1.0]), "lin")


# ---------------------------------------------------------------- log_weights: finite scores and gradients


@pytest.mark.parametrize("kind", ["lin", "log"])
def test_log_weights_finite_everywhere_and_correct_on_support(kind):
    lag_values = list(range(-4, 9))
    p_list = [0.5, 1.7]
    p = torch.tensor(p_list, dtype=torch.float64)
    score, mask = rpe.log_weights(lags(lag_values), p, kind)
    assert score.shape == mask.shape == (2, len(lag_values))
    assert torch.isfinite(score).all()
    for h, ph in enumerate(p_list):
        for i, s in enumerate(lag_values):
            admissible = s >= (0 if kind == "lin" else 1)
            assert bool(mask[h, i]) == admissible
            if admissible:
                assert score[h, i].item() == pytest.approx(ph * reference_phi(s, kind), rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("kind", ["lin", "log"])
def test_log_weights_gradient_is_finite_and_correct(kind):
    lag_values = list(range(-3, 7))
    p = torch.tensor([0.4, 1.3], dtype=torch.float64, requires_grad=True)
    score, mask = rpe.log_weights(lags(lag_values), p, kind)
    score[mask].sum().backward()
    assert torch.isfinite(p.grad).all()
    # d/dp_h Σ_{s in support} p_h φ(s) = Σ_{s in support} φ(s), the same for every head.
    want = sum(reference_phi(s, kind) for s in lag_values if s >= (0 if kind == "lin" else 1))
    assert p.grad.tolist() == pytest.approx([want, want], rel=1e-13)


@pytest.mark.parametrize("kind", ["lin", "log"])
def test_bias_matrix_and_kernel_gradients_finite(kind):
    p = torch.tensor([0.4, 1.3], dtype=torch.float64, requires_grad=True)
    bias = rpe.bias_matrix(5, p, kind)
    bias[torch.isfinite(bias)].sum().backward()
    assert torch.isfinite(p.grad).all()
    p.grad = None
    rpe.kernel(lags(list(range(-2, 6))), p, kind).sum().backward()
    assert torch.isfinite(p.grad).all()


def test_kernel_values():
    p = torch.tensor([0.5], dtype=torch.float64)
    k_lin = rpe.kernel(lags([-1, 0, 1, 3]), p, "lin")[0].tolist()
    assert k_lin == pytest.approx([0.0, 1.0, math.exp(-0.5), math.exp(-1.5)], rel=1e-14)
    k_log = rpe.kernel(lags([-1, 0, 1, 4]), p, "log")[0].tolist()
    assert k_log == pytest.approx([0.0, 0.0, 1.0, 0.5], rel=1e-14)  # 4^{-1/2} = 1/2


# ---------------------------------------------------------------- softplus parametrisation of p > 0


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_positive_inverts_inverse_positive(dtype, rtol):
    values = [1e-4, 1e-1, 1.0, 10.0, 50.0]
    p = torch.tensor(values, dtype=dtype)
    raw = rpe.inverse_positive(p)
    assert raw.dtype == dtype and torch.isfinite(raw).all()
    back = rpe.positive(raw).tolist()
    for got, want in zip(back, values):
        assert got == pytest.approx(want, rel=rtol)


def test_inverse_positive_hand_values():
    # softplus^{-1}(p) = log(e^p - 1): log(e - 1) at p = 1, and ~log p for small p.
    assert rpe.inverse_positive(torch.tensor(1.0, dtype=torch.float64)).item() == pytest.approx(
        math.log(math.e - 1), rel=1e-14
    )
    assert rpe.inverse_positive(torch.tensor(1e-4, dtype=torch.float64)).item() == pytest.approx(
        math.log(math.expm1(1e-4)), rel=1e-12
    )
    assert rpe.inverse_positive(1.0).item() == pytest.approx(math.log(math.e - 1), rel=1e-6)


def test_positive_is_softplus():
    raw = torch.tensor([-3.0, 0.0, 2.0], dtype=torch.float64)
    want = [math.log1p(math.exp(v)) for v in (-3.0, 0.0, 2.0)]
    assert rpe.positive(raw).tolist() == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("bad", [0.0, -1.0, [1.0, 0.0], [0.5, -2.0], float("nan")])
def test_inverse_positive_rejects_non_positive(bad):
    with pytest.raises(ValueError, match="p"):
        rpe.inverse_positive(torch.tensor(bad, dtype=torch.float64))


# ---------------------------------------------------------------- geometric rates


def test_geometric_rates_endpoints_and_ratio():
    r = rpe.geometric_rates(5, 0.01, 100.0)
    assert r.dtype == torch.float64 and r.shape == (5,)
    assert r.tolist() == pytest.approx([0.01, 0.1, 1.0, 10.0, 100.0], rel=1e-12)
    assert all(a < b for a, b in zip(r.tolist(), r.tolist()[1:]))


def test_geometric_rates_one_head_and_equal_endpoints():
    assert rpe.geometric_rates(1, 0.25, 4.0).tolist() == pytest.approx([1.0], rel=1e-14)
    assert rpe.geometric_rates(3, 0.5, 0.5).tolist() == pytest.approx([0.5, 0.5, 0.5], rel=1e-14)


@pytest.mark.parametrize(
    "args,name",
    [
        ((0, 0.1, 1.0), "n_heads"),
        ((2.5, 0.1, 1.0), "n_heads"),
        ((2, 0.0, 1.0), "p_min"),
        ((2, -1.0, 1.0), "p_min"),
        ((2, 0.1, float("nan")), "p_max"),
        ((2, 0.1, float("inf")), "p_max"),
        ((2, 2.0, 1.0), "p_min"),
    ],
)
def test_geometric_rates_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        rpe.geometric_rates(*args)


# ---------------------------------------------------------------- ALiBi


@pytest.mark.parametrize(
    "n,exponents",
    [
        (1, [8]),
        (2, [4, 8]),
        (4, [2, 4, 6, 8]),
        (8, [1, 2, 3, 4, 5, 6, 7, 8]),
        (6, [2, 4, 6, 8, 1, 3]),
        # 8 heads: 2^-1..2^-8, then every other slope of 16 heads (2^-0.5, 2^-1.5, ...).
        (12, [1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5, 2.5, 3.5]),
        (3, [4, 8, 2]),
        (5, [2, 4, 6, 8, 1]),
    ],
)
def test_alibi_slopes_published_formula(n, exponents):
    got = rpe.alibi_slopes(n)
    assert len(got) == n
    assert got == pytest.approx([2.0 ** -e for e in exponents], rel=1e-14)


@pytest.mark.parametrize("n", [0, -4])
def test_alibi_slopes_bad_n(n):
    with pytest.raises(ValueError, match="n_heads"):
        rpe.alibi_slopes(n)


def test_alibi_bias():
    got = rpe.alibi_bias(lags([-2, 0, 1, 5]), 0.25).tolist()
    assert got == [NEG_INF, 0.0, -0.25, -1.25]


@pytest.mark.parametrize("slope", [math.nan, math.inf, 0.0, -0.5, "steep"])
def test_alibi_bias_bad_slope(slope):
    with pytest.raises(ValueError, match="slope"):  # slope=nan once returned NaN biases
        rpe.alibi_bias(lags([0, 1]), slope)


@pytest.mark.parametrize("fn", [lambda s: rpe.t5_bucket(s), lambda s: rpe.alibi_bias(s, 0.5),
                                lambda s: rpe.kerple_log_bias(s, 1.0, 1.0)])
def test_non_integer_lags_rejected_not_truncated(fn):
    with pytest.raises(ValueError, match="lags must be integers"):
        fn([1.5, 20.7])  # t5_bucket once returned the buckets of 1 and 20
    with pytest.raises(ValueError, match="lags must be integers"):
        fn(torch.tensor([2.0, math.nan]))
    assert torch.equal(torch.as_tensor(fn([1, 20])), torch.as_tensor(fn(torch.tensor([1.0, 20.0]))))


# ---------------------------------------------------------------- T5 buckets


def t5_reference(lag, num_buckets=32, max_distance=128):
    """HF / mesh-tensorflow _relative_position_bucket, bidirectional=False,
    relative_position = -lag, written from the published formula."""
    n = lag  # = -min(relative_position, 0) for relative_position = -lag <= 0
    max_exact = num_buckets // 2
    if n < max_exact:
        return n
    large = max_exact + int(math.log(n / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact))
    return min(large, num_buckets - 1)


def test_t5_bucket_matches_reference_for_lags_0_to_300():
    got = rpe.t5_bucket(torch.arange(301)).tolist()
    assert got == [t5_reference(s) for s in range(301)]


def test_t5_bucket_other_sizes_match_reference():
    got = rpe.t5_bucket(torch.arange(200), num_buckets=8, max_distance=50).tolist()
    assert got == [t5_reference(s, 8, 50) for s in range(200)]


def test_t5_bucket_hand_values():
    # 20: 16 + int(log(20/16)/log 8 * 16) = 16 + int(1.7168) = 17
    # 64: 16 + int(log 4/log 8 * 16) = 16 + int(10.67) = 26
    got = rpe.t5_bucket(lags([0, 1, 15, 16, 20, 64, 127, 128, 1000])).tolist()
    assert got == [0, 1, 15, 16, 17, 26, 31, 31, 31]
    assert rpe.t5_bucket(lags([0])).dtype == torch.long


def test_t5_bucket_is_monotone_and_in_range():
    got = rpe.t5_bucket(torch.arange(2000)).tolist()
    assert all(a <= b for a, b in zip(got, got[1:]))
    assert min(got) == 0 and max(got) == 31


def test_t5_bucket_negative_lag_rejected():
    with pytest.raises(ValueError, match="lag"):
        rpe.t5_bucket(lags([0, 3, -1]))


@pytest.mark.parametrize(
    "kwargs,name", [({"num_buckets": 1}, "num_buckets"), ({"max_distance": 16}, "max_distance")]
)
def test_t5_bucket_bad_sizes(kwargs, name):
    with pytest.raises(ValueError, match=name):
        rpe.t5_bucket(lags([0, 1]), **kwargs)


# ---------------------------------------------------------------- KERPLE-log


def test_kerple_log_hand_values():
    got = rpe.kerple_log_bias(lags([-3, -1, 0, 2, 6]), r1=2.0, r2=0.5).tolist()
    assert got[:2] == [NEG_INF, NEG_INF]
    assert got[2] == 0.0
    assert got[3] == pytest.approx(-2.0 * math.log(2.0), rel=1e-14)  # -2 log(1 + 1)
    assert got[4] == pytest.approx(-2.0 * math.log(4.0), rel=1e-14)  # -2 log(1 + 3)


@pytest.mark.parametrize("r1,r2", [(1.0, 1.0), (0.7, 3.0), (2.0, 0.05)])
def test_kerple_log_asymptotics(r1, r2):
    # For large s: -r1 log(1 + r2 s) + r1 log s = -r1 log r2 - r1 log(1 + 1/(r2 s)).
    s = [1e6, 1e9, 1e12]
    bias = rpe.kerple_log_bias(torch.tensor(s, dtype=torch.long), r1, r2).tolist()
    gaps = [abs(b + r1 * math.log(si) + r1 * math.log(r2)) for b, si in zip(bias, s)]
    for gap, si in zip(gaps, s):
        assert gap <= 1.01 * r1 / (r2 * si) + 1e-9
    assert gaps[-1] < gaps[0]


@pytest.mark.parametrize("r1,r2,name", [(0.0, 1.0, "r1"), (-1.0, 1.0, "r1"), (1.0, 0.0, "r2"), (1.0, -2.0, "r2")])
def test_kerple_log_bad_parameters(r1, r2, name):
    with pytest.raises(ValueError, match=name):
        rpe.kerple_log_bias(lags([0, 1]), r1, r2)
