"""txtheory.powerlaw and the log-RPE scan it drives: the quadrature meets its proved bound,
the scan is held to the dense layer within the budget (values and gradients), and
``forward`` takes the scan exactly where the budget holds."""
import math

import mpmath
import numpy as np
import pytest
import torch

from txtheory import powerlaw as PL
from txtheory.attention import LOG_SCAN_CHUNK, MultiHeadAttention
from txtheory.bench import log_scan_bound

F64 = torch.float64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [1e-3, 0.05, 0.5, 1.0, 2.0, 5.0, 12.0])
def test_the_rule_meets_its_relative_bound_on_lags_C_to_T(dtype, p):
    g = PL.grid(32, 1000, dtype)
    assert p <= g.C * math.exp(g.v_max)  # the bound's condition
    s = np.arange(g.C, g.T + 1, dtype=np.float64)
    with mpmath.workdps(30):  # the exact power law, so float64's own rounding does not count
        exact = np.array([float(mpmath.mpf(int(v)) ** -mpmath.mpf(p)) for v in s])
    error = np.abs(PL.rule(p, s, g) / exact - 1).max()
    bound = float(PL.relative_error_bound(np.array([p]), g)[0])
    # the bound plus float64's rounding of a sum of J + 1 positive terms
    assert error <= bound + (g.J + 2) * 2.0**-52
    if p <= 2:  # heavy tails, where the far lags carry weight: the bound says something
        assert bound < 1e-5


def test_the_bound_is_tight_where_it_matters():
    """The lower-tail term L dominates for small p; the rule's actual error is within a
    factor of 2 of it, so the bound is not a loose safety margin."""
    g = PL.grid(32, 1000, torch.float32)
    p, s = 0.05, np.arange(32, 1001, dtype=np.float64)
    error = np.abs(PL.rule(p, s, g) / s**-p - 1).max()
    assert 0.5 * PL.relative_error_bound(np.array([p]), g)[0] <= error


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T", [65, 100, 1000, 10_000])
def test_the_grid_meets_the_budget_for_every_rate(dtype, T):
    g = PL.grid(LOG_SCAN_CHUNK, T, dtype)
    p = np.geomspace(1e-5, 500.0, 400)
    assert PL.head_error_bound(p, g).max() <= PL.BUDGET[dtype]
    # one node fewer would not do: the grid is the smallest
    fewer = PL.Grid(g.h, g.v0 + g.h, g.J - 1, g.C, g.T)
    assert PL.head_error_bound(PL._P_CHECK, fewer).max() > PL.BUDGET[dtype] / 2


def test_weights_are_finite_at_small_rates_and_give_the_constant_at_zero():
    g = PL.grid(32, 1000)
    p = torch.tensor([0.0, 1e-12, 1e-6], dtype=F64, requires_grad=True)
    w = PL.weights(p, g)
    assert torch.isfinite(w).all()
    assert w[0, 0] == 1.0 and torch.all(w[1:, 0] == 0)  # s^0 = 1: the constant node alone
    w.sum().backward()
    assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize("p0", [0.0, 1e-7, 1e-3, 0.3])
def test_the_weights_derivative_in_p_is_right_down_to_zero(p0):
    """d/dp of every weight against a central difference in float64 (at p0 = 0 one-sided:
    the rule is defined for p >= 0), through the series branch of x / (1 - e^{-x})."""
    g = PL.grid(32, 1000, F64)
    p = torch.tensor([p0], dtype=F64, requires_grad=True)
    PL.weights(p, g).sum().backward()
    step = 1e-6
    lo = max(p0 - step, 0.0)
    with torch.no_grad():
        numeric = (PL.weights(torch.tensor([p0 + step], dtype=F64), g).sum()
                   - PL.weights(torch.tensor([lo], dtype=F64), g).sum()) / (p0 + step - lo)
    assert float(p.grad) == pytest.approx(float(numeric), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("p", [20.0, 30.0, 60.0])
def test_beyond_the_peak_the_fallback_bound_holds(p):
    """For p > C e^{v_max} the rule misses the peak of f_s; each far lag then errs by at
    most (1 + D) s^{-p} + c_0, which is what head_error_bound uses there."""
    g = PL.grid(32, 1000, torch.float32)
    assert p > g.C * math.exp(g.v_max)
    s = np.arange(g.C, g.T + 1, dtype=np.float64)
    with mpmath.workdps(30):
        exact = np.array([float(mpmath.mpf(int(v)) ** -mpmath.mpf(p)) for v in s])
    error = np.abs(PL.rule(p, s, g) - exact)
    allowed = (1 + PL.discretisation_bound(np.array([p]), g.h)[0]) * exact + PL.constant_weight(np.array([p]), g)[0]
    assert np.all(error <= allowed * (1 + 1e-12) + 1e-300)


def test_grid_refuses_bad_arguments():
    with pytest.raises(ValueError, match="T"):
        PL.grid(32, 10)
    with pytest.raises(ValueError, match="dtype"):
        PL.grid(32, 100, torch.float16)


# ------------------------------------------------------------------------------------
# the scan against the dense layer


def layer(H=5, D=4, normalized=True, p_range=(0.02, 6.0), dtype=F64, seed=0):
    torch.manual_seed(seed)
    return MultiHeadAttention(D, H, "log", "free", normalized=normalized, dtype=dtype, p_range=p_range)


def proved_bound(m, x):
    """The proved bound on max |scan - dense| for layer m and input x (bench.log_scan_bound)."""
    within, grid = m.log_scan_plan(x.shape[1], x.dtype)
    assert within
    return log_scan_bound(m, x.detach(), grid)


@pytest.mark.parametrize("T", [1, 7, 32, 64, 65, 96, 150, 257])  # one block .. several, partial last
def test_scan_equals_dense_in_float64_within_the_budget(T):
    m = layer()
    x = torch.randn(3, T, 4, dtype=F64, generator=torch.Generator().manual_seed(T), requires_grad=True)
    weights = torch.randn(3, T, 4, dtype=F64, generator=torch.Generator().manual_seed(1))
    results = {}
    for path in ("fast", "dense"):
        m.zero_grad()
        x.grad = None
        y = m(x, path=path)
        (y * weights).sum().backward()
        results[path] = (y.detach(), x.grad.clone(), m.p_raw.grad.clone(), m.W_V.grad.clone(), m.W_O.grad.clone())
    rounding = 1e-12 * (1 + results["dense"][0].abs().max())
    budget = proved_bound(m, x)
    assert (results["fast"][0] - results["dense"][0]).abs().max() <= budget + rounding
    for fast, dense in zip(results["fast"][1:], results["dense"][1:]):  # gradients: same order
        assert torch.allclose(fast, dense, rtol=1e-9, atol=1e-9 * float(dense.abs().max()))
    assert torch.all(results["fast"][0][:, 0] == 0)  # log sees no key at t = 0: exactly zero


@pytest.mark.parametrize("p", [1e-3, 40.0])
def test_scan_at_the_ends_of_the_rates(p):
    m = layer(H=2)
    with torch.no_grad():
        m.p_raw.copy_(torch.log(torch.expm1(torch.tensor([p, p], dtype=F64))))  # softplus^{-1}
    x = torch.randn(2, 200, 4, dtype=F64, generator=torch.Generator().manual_seed(0))
    fast, dense = m(x, path="fast"), m(x, path="dense")
    assert (fast - dense).abs().max() <= proved_bound(m, x) + 1e-12


@pytest.mark.parametrize("H, seed", [(16, 2), (8, 0), (8, 2)])
def test_float32_scan_is_as_exact_as_the_float32_dense_layer(H, seed):
    """Against float64: the scan's float32 error is of the dense path's order, within a
    factor of 4 (0.5 to 2.8 seen across heads, seeds and rates); the quadrature's own part
    (budget 1e-7 of max|x| per head) is below float32 rounding."""
    m = layer(H=H, D=8, seed=seed)
    x = torch.randn(4, 400, 8, dtype=F64, generator=torch.Generator().manual_seed(seed))
    exact = m(x, path="dense")
    m32 = layer(H=H, D=8, dtype=torch.float32)
    m32.load_state_dict({k: v.float() for k, v in m.state_dict().items()})
    x32 = x.float()
    scan_error = (m32(x32, path="fast").double() - exact).abs().max()
    dense_error = (m32(x32, path="dense").double() - exact).abs().max()
    assert scan_error <= 4 * dense_error


def test_normalisation_free_scan_matches_dense():
    m = layer(normalized=False, p_range=(0.5, 4.0))
    x = torch.randn(2, 150, 4, dtype=F64, generator=torch.Generator().manual_seed(3))
    _, grid = m.log_scan_plan(150, F64)
    fast = m._forward_log_scan(x, m._W_OV(), grid)
    dense = m(x, path="dense")
    assert torch.allclose(fast, dense, rtol=0, atol=1e-9 * float(dense.detach().abs().max()))


def test_forward_takes_the_scan_exactly_where_the_budget_holds(monkeypatch):
    m = layer()
    x = torch.randn(2, 200, 4, dtype=F64, generator=torch.Generator().manual_seed(4))
    calls = []
    scan, fft = m._forward_log_scan, m._forward_fft
    monkeypatch.setattr(m, "_forward_log_scan", lambda *a: calls.append("scan") or scan(*a))
    monkeypatch.setattr(m, "_forward_fft", lambda *a: calls.append("fft") or fft(*a))
    m(x)
    m(x, path="fast")
    assert calls == ["scan", "scan"]
    calls.clear()
    monkeypatch.setitem(PL.BUDGET, F64, 1e-30)  # a budget no grid meets: the exact FFT
    assert m.log_scan_plan(200, F64)[0] is False
    m(x)
    assert calls == ["fft"]
    calls.clear()
    m(x[:, :2 * LOG_SCAN_CHUNK - 4], path="fast")  # two blocks or fewer: exact, whatever the budget
    assert calls == ["scan"]  # (auto takes the dense path there: attention.log_scan_pays)


def test_no_grid_means_the_fft_and_a_missing_grid_is_refused(monkeypatch):
    m = layer()
    monkeypatch.setattr(PL, "grid", lambda *a: (_ for _ in ()).throw(ValueError("no grid")))
    assert m.log_scan_plan(200, F64) == (False, None)
    x = torch.randn(1, 200, 4, dtype=F64)
    with pytest.raises(ValueError, match="quadrature"):
        m._forward_log_scan(x, m._W_OV(), None)
