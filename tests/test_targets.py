"""Tests of txtheory.targets: samplers, the three target families, the paper's
experiment targets, and the ValueErrors for bad input."""
import math

import numpy as np
import pytest
import torch

from txtheory.kernels import ExpDecay, PowerDecay
from txtheory.targets import (
    AdaptiveMemoryTarget,
    EssentialMemoryTarget,
    FixedMemoryTarget,
    LinearReadout,
    ProductReadout,
    ReLUReadout,
    adaptive_boolean_example,
    exp1b_target,
    exp2a_target,
    exp2b_target,
    exp4a_target,
    exp4b_target,
    prop42_witness,
    random_relu_readout,
    sample_pm1,
    sample_ternary,
    sample_uniform,
)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def seq(values, dtype=torch.float64):
    """A single sequence (1, T, 1) from a list."""
    return torch.tensor(values, dtype=dtype).reshape(1, -1, 1)


# ---------------------------------------------------------------- samplers


@pytest.mark.parametrize(
    "sampler, allowed",
    [(sample_pm1, {-1.0, 1.0}), (sample_ternary, {-1.0, 0.0, 1.0})],
)
def test_discrete_samplers_values_shape_and_seed(sampler, allowed):
    x = sampler(4, 50, 3, generator=gen(0))
    assert x.shape == (4, 50, 3) and x.dtype == torch.float32
    assert set(x.unique().tolist()) == allowed  # every value occurs, nothing else
    assert torch.equal(x, sampler(4, 50, 3, generator=gen(0)))
    assert not torch.equal(x, sampler(4, 50, 3, generator=gen(1)))
    assert sampler(2, 5, generator=gen(0), dtype=torch.float64).dtype == torch.float64


def test_uniform_sampler_range_shape_and_seed():
    x = sample_uniform(8, 100, 2, generator=gen(0), low=-0.5, high=2.0, dtype=torch.float64)
    assert x.shape == (8, 100, 2) and x.dtype == torch.float64
    assert x.min() >= -0.5 and x.max() < 2.0
    assert x.min() < 0.0 < 1.5 < x.max()  # spreads over the interval
    assert torch.equal(x, sample_uniform(8, 100, 2, generator=gen(0), low=-0.5, high=2.0, dtype=torch.float64))
    assert not torch.equal(x, sample_uniform(8, 100, 2, generator=gen(1), low=-0.5, high=2.0, dtype=torch.float64))


# ---------------------------------------------------------------- readouts


def test_relu_readout_formula_and_random_draw():
    r = ReLUReadout(W=[[1.0, -2.0], [0.5, 0.5]], b=[0.0, -1.0], a=[[2.0, 3.0]])
    z = torch.tensor([[1.0, 1.0], [4.0, 2.0]], dtype=torch.float64)
    # row 0: 2*relu(1-2) + 3*relu(0.5+0.5-1) = 0; row 1: 2*relu(0) + 3*relu(3-1) = 6
    assert torch.equal(r(z), torch.tensor([[0.0], [6.0]], dtype=torch.float64))
    g = random_relu_readout(3, 64, gen(5))
    assert g.W.shape == (64, 3) and torch.equal(g.b, torch.zeros(64, dtype=torch.float64))
    assert torch.equal(g.a, torch.ones(1, 64, dtype=torch.float64))
    assert torch.equal(g.W, random_relu_readout(3, 64, gen(5)).W)
    w = g.ffn_weights()
    assert torch.equal(w.W, g.W) and w.W is not g.W and w.exact_on == "all inputs"


# ---------------------------------------------------------------- Task I


def test_fixed_memory_by_hand():
    tgt = FixedMemoryTarget((0, 2), LinearReadout([1.0, 10.0]))
    assert tgt.first_valid == 2 and tgt.d_in == 1 and tgt.d_out == 1
    y = tgt(seq([1, 2, 3, 4, 5, 6]))
    # y_t = x_t + 10 x_{t-2}; x_{-2} = x_{-1} = 0 (padding) at t = 0, 1
    assert y.shape == (1, 6, 1)
    assert y.flatten().tolist() == [1, 2, 3 + 10, 4 + 20, 5 + 30, 6 + 40]


def test_fixed_memory_multidim_tokens_and_plain_callable():
    # d_in = 2, plain callable readout returning (B, T): sum of the 4 inputs
    tgt = FixedMemoryTarget([1, 0], lambda z: z.sum(-1), d_in=2)
    assert tgt.d_out == 1
    x = torch.arange(8, dtype=torch.float64).reshape(1, 4, 2)  # tokens (0,1),(2,3),(4,5),(6,7)
    # y_t = x_{t-1}[0] + x_{t-1}[1] + x_t[0] + x_t[1]
    assert tgt(x).flatten().tolist() == [1, 1 + 5, 5 + 9, 9 + 13]


def test_targets_keep_dtype_and_float32_is_rounded_float64():
    tgt = exp1b_target(200, generator=gen(0))
    x64 = sample_pm1(3, 200, generator=gen(1), dtype=torch.float64)
    y64, y32 = tgt(x64), tgt(x64.float())
    assert y64.dtype == torch.float64 and y32.dtype == torch.float32
    assert torch.equal(y32, y64.float())


# ---------------------------------------------------------------- Task II


def test_adaptive_boolean_example_by_hand():
    tgt = adaptive_boolean_example()
    assert tgt.first_valid == 2 and tgt.n_nested == 2
    x = seq([1, -1, -1, 1, 1, -1, 1, -1])
    # g(1) = 1, g(-1) = 2, g(0) = 2 on padding; t_1 = g(x_t), t_2 = g(x_{t-t_1})
    # t=0: t1=1 -> x_{-1}=0, t2=g(0)=2 -> x_{-2}=0          y = 1*0*0     = 0
    # t=1: t1=2 -> x_{-1}=0, t2=2 -> x_{-1}=0               y = -1*0*0    = 0
    # t=2: t1=2 -> x_0=1,    t2=g(1)=1 -> x_1=-1            y = -1*1*-1   = 1
    # t=3: t1=1 -> x_2=-1,   t2=g(-1)=2 -> x_1=-1           y = 1*-1*-1   = 1
    # t=4: t1=1 -> x_3=1,    t2=1 -> x_3=1                  y = 1*1*1     = 1
    # t=5: t1=2 -> x_3=1,    t2=1 -> x_4=1                  y = -1*1*1    = -1
    # t=6: t1=1 -> x_5=-1,   t2=2 -> x_4=1                  y = 1*-1*1    = -1
    # t=7: t1=2 -> x_5=-1,   t2=2 -> x_5=-1                 y = -1*-1*-1  = -1
    assert tgt(x).flatten().tolist() == [0, 0, 1, 1, 1, -1, -1, -1]
    lags = tgt.memory_lags(x)[0]
    assert lags[:, 0].tolist() == [1, 2, 2, 1, 1, 2, 1, 2]
    assert lags[:, 1].tolist() == [2, 2, 1, 2, 1, 1, 2, 2]


def test_prop42_witness_by_hand():
    tgt = prop42_witness()
    assert tgt.first_valid == 2
    x = seq([0, 1, -1, 1, 0, -1, 1, 0])
    # y_t = x_{t-g(x_t)}, g(-1)=0, g(0)=1, g(1)=2
    # t=0: g(0)=1 -> x_{-1}=0 ; t=1: g(1)=2 -> x_{-1}=0 ; t=2: g(-1)=0 -> x_2=-1
    # t=3: g(1)=2 -> x_1=1    ; t=4: g(0)=1 -> x_3=1    ; t=5: g(-1)=0 -> x_5=-1
    # t=6: g(1)=2 -> x_4=0    ; t=7: g(0)=1 -> x_6=1
    assert tgt(x).flatten().tolist() == [0, 0, -1, 1, 1, -1, 0, 1]


def test_adaptive_k0_and_nesting_visibility():
    # M = 2, K = 1: g_2 must see (x_t, x_{t-t_1}) only, i.e. 2 columns.
    seen = []

    def g2(u):
        seen.append(u.shape[-1])
        return torch.ones(u.shape[:-1])

    tgt = AdaptiveMemoryTarget([lambda u: torch.full(u.shape[:-1], 3.0), g2], 1,
                               ProductReadout(3), max_lags=(3, 1))
    x = sample_pm1(2, 10, generator=gen(0), dtype=torch.float64)
    seen.clear()
    y = tgt(x)
    assert seen == [2]
    # fixed lags 3 and 1 -> y_t = x_t x_{t-3} x_{t-1}, checked at valid positions
    assert torch.equal(y[:, 3:, 0], x[:, 3:, 0] * x[:, :-3, 0] * x[:, 2:-1, 0])


def test_adaptive_large_batch_matches_per_position_loop():
    tgt = adaptive_boolean_example()
    x = sample_pm1(5, 30, generator=gen(3), dtype=torch.float64)
    y = tgt(x)
    g = {1.0: 1, -1.0: 2}
    for b in range(5):
        for t in range(2, 30):
            xs = x[b, :, 0].tolist()
            t1 = g[xs[t]]
            t2 = g[xs[t - t1]]
            assert y[b, t, 0].item() == xs[t] * xs[t - t1] * xs[t - t2]


# ---------------------------------------------------------------- Task III


def test_kernel_values_by_hand():
    e = ExpDecay(0.5).tabulate(3)
    assert e.dtype == np.float64
    np.testing.assert_allclose(e, [1.0, math.exp(-0.5), math.exp(-1.0)], rtol=0, atol=1e-15)
    p = PowerDecay(2.0).tabulate(3)
    assert p[0] == 0.0  # rho(0) = 0 by our convention: set, not computed
    np.testing.assert_allclose(p[1:], [1.0, 0.25], rtol=4 * np.finfo(np.float64).eps, atol=0)
    assert PowerDecay(0.5).tabulate(5)[4] == pytest.approx(0.5, abs=1e-15)


def test_essential_fft_equals_direct_double_loop():
    k1 = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    k2 = torch.randn(6, generator=gen(2), dtype=torch.float64)
    d, T, B = 2, 13, 3
    M = 2
    tgt = EssentialMemoryTarget([k1, k2], LinearReadout(torch.eye(M * d)), d_in=d)
    assert tgt.first_valid == 5 and tgt.d_out == M * d
    x = torch.randn(B, T, d, generator=gen(4), dtype=torch.float64)
    y = tgt(x)
    ref = torch.zeros(B, T, M * d, dtype=torch.float64)
    for k, rho in enumerate([k1, k2]):
        for t in range(T):
            for s in range(len(rho)):
                if t - s >= 0:
                    ref[:, t, k * d:(k + 1) * d] += x[:, t - s, :] * rho[s]
    assert torch.allclose(y, ref, rtol=0, atol=1e-12)
    assert torch.allclose(tgt.convolve_direct(x), ref, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- paper experiments


def relu_sum(readout, z):
    """g*(z) = sum_k ReLU(<w_k, z>) computed directly from the weights; z: (B, 3)."""
    return torch.relu(z @ readout.W.T).sum(-1)


def test_exp1b_lags_and_value_at_read_position():
    # 1-indexed position p is 0-indexed p-1. Reading at 0-indexed r gives lag r-(p-1).
    # end: r = 999 -> lags 999-47, 999-55, 999-98 = 952, 944, 901.
    tgt = exp1b_target(1000, generator=gen(0))
    assert tgt.lags == (952, 944, 901) and tgt.first_valid == 952 and tgt.read_position == 999
    x = sample_pm1(4, 1000, generator=gen(1), dtype=torch.float64)
    y = tgt(x)
    direct = relu_sum(tgt.readout, x[:, [47, 55, 98], 0])  # (x_48, x_56, x_99)
    assert torch.allclose(y[:, 999, 0], direct, rtol=0, atol=1e-12)
    # the whole sequence map at valid positions t: x_{t-952}, x_{t-944}, x_{t-901}
    t = torch.arange(952, 1000)
    z = torch.stack([x[:, t - 952, 0], x[:, t - 944, 0], x[:, t - 901, 0]], dim=-1)  # (B, 48, 3)
    assert torch.allclose(y[:, 952:, 0], torch.relu(z @ tgt.readout.W.T).sum(-1), rtol=0, atol=1e-12)
    # last_memory: r = 98 -> lags 98-47, 98-55, 98-98 = 51, 43, 0
    tgt2 = exp1b_target(1000, generator=gen(0), read_at="last_memory")
    assert tgt2.lags == (51, 43, 0) and tgt2.first_valid == 51 and tgt2.read_position == 98
    assert torch.equal(tgt2.readout.W, tgt.readout.W)  # same seed, same g*
    assert torch.allclose(tgt2(x)[:, 98, 0], direct, rtol=0, atol=1e-12)
    assert not torch.equal(exp1b_target(generator=gen(1)).readout.W, tgt.readout.W)


def test_exp2a_lags_and_value():
    tgt = exp2a_target(generator=gen(0))
    assert tgt.lags == (901,) and tgt.first_valid == 901 and tgt.readout.W.shape == (64, 1)
    x = sample_pm1(4, 1000, generator=gen(1), dtype=torch.float64)
    direct = torch.relu(x[:, 98, :] @ tgt.readout.W.T).sum(-1)  # g*(x_99), x_99 = x[:, 98]
    assert torch.allclose(tgt(x)[:, 999, 0], direct, rtol=0, atol=1e-12)
    tgt2 = exp2a_target(generator=gen(0), read_at="last_memory")
    assert tgt2.lags == (0,) and tgt2.first_valid == 0
    assert torch.allclose(tgt2(x)[:, 98, 0], direct, rtol=0, atol=1e-12)


def test_exp2b_value_at_read_position():
    x = sample_pm1(4, 1000, generator=gen(1), dtype=torch.float64)
    # x_48 + x_56 + x_99 (1-indexed) = x[:, 47] + x[:, 55] + x[:, 98] (0-indexed)
    direct = x[:, 47, 0] + x[:, 55, 0] + x[:, 98, 0]
    end = exp2b_target()
    assert end.lags == (952, 944, 901)
    assert torch.equal(end(x)[:, 999, 0], direct)
    last = exp2b_target(read_at="last_memory")
    assert last.lags == (51, 43, 0)
    assert torch.equal(last(x)[:, 98, 0], direct)


def test_exp4_targets_at_the_end():
    x = sample_uniform(3, 1000, generator=gen(2), dtype=torch.float64)
    a = exp4a_target()
    assert a.first_valid == 999 and a.read_position == 999
    s = torch.arange(1, 1000, dtype=torch.float64)
    direct_a = (x[:, 999 - s.long(), 0] * s ** -0.5).sum(-1)  # rho(0) = 0: s starts at 1
    assert torch.allclose(a(x)[:, 999, 0], direct_a, rtol=0, atol=1e-10)
    b = exp4b_target()
    assert b.first_valid == 999
    s0 = torch.arange(0, 1000, dtype=torch.float64)
    direct_b = (x[:, 999 - s0.long(), 0] * torch.exp(-5 * s0)).sum(-1)
    assert torch.allclose(b(x)[:, 999, 0], direct_b, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- bad inputs


def test_negative_lag_raises():
    with pytest.raises(ValueError, match=r"lags\[1\]"):
        FixedMemoryTarget((0, -1), LinearReadout([1.0, 1.0]))


def test_duplicate_lags_raise():
    with pytest.raises(ValueError, match="lags must be distinct"):
        FixedMemoryTarget((2, 2), LinearReadout([1.0, 1.0]))


def test_empty_lags_raise():
    with pytest.raises(ValueError, match="lags"):
        FixedMemoryTarget((), LinearReadout([1.0]))


def test_lag_not_below_window_raises_when_called():
    tgt = FixedMemoryTarget((0, 5), LinearReadout([1.0, 1.0]))
    tgt(torch.zeros(1, 6, 1))  # T = 6 > 5 is fine
    with pytest.raises(ValueError, match="lag 5 .* must be < window length"):
        tgt(torch.zeros(1, 5, 1))


def test_nonpositive_beta_raises():
    with pytest.raises(ValueError, match="beta"):
        ExpDecay(0.0)
    with pytest.raises(ValueError, match="beta"):
        PowerDecay(-0.5)


def test_bad_support_raises():
    with pytest.raises(ValueError, match="support"):
        ExpDecay(1.0).tabulate(0)


def _each_family():
    return [FixedMemoryTarget((0, 2), LinearReadout([1.0, 1.0])), adaptive_boolean_example(),
            prop42_witness(), EssentialMemoryTarget([ExpDecay(1.0).tabulate(3)], LinearReadout([1.0]))]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_token_raises_in_every_family(bad):
    for tgt in _each_family():
        x = torch.ones(2, 6, 1)
        x[1, 3, 0] = bad
        with pytest.raises(ValueError, match=r"x must be finite.*x\[1, 3, 0\]"):
            tgt(x)


def test_empty_batch_gives_an_empty_answer_in_every_family():
    for tgt in _each_family():
        for dtype in (torch.float32, torch.float64):
            y = tgt(torch.zeros(0, 6, 1, dtype=dtype))
            assert y.shape == (0, 6, tgt.d_out) and y.dtype == dtype


def test_wrong_rank_raises():
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, d\)"):
        FixedMemoryTarget((0,), LinearReadout([1.0]))(torch.zeros(4, 10))


def test_wrong_token_dimension_raises():
    with pytest.raises(ValueError, match="d_in"):
        FixedMemoryTarget((0,), LinearReadout([1.0]))(torch.zeros(4, 10, 2))


def test_unknown_read_at_raises():
    with pytest.raises(ValueError, match="read_at"):
        exp1b_target(read_at="middle")
    with pytest.raises(ValueError, match="read_at"):
        exp4a_target(read_at="last_memory")


def test_low_not_below_high_raises():
    with pytest.raises(ValueError, match="low"):
        sample_uniform(2, 3, low=1.0, high=1.0)


def test_length_too_short_raises():
    with pytest.raises(ValueError, match="length"):
        exp1b_target(98)
    with pytest.raises(ValueError, match="length"):
        exp4a_target(1)


def test_memory_function_out_of_range_raises():
    tgt = AdaptiveMemoryTarget([lambda u: torch.full(u.shape[:-1], 3)], 0,
                               LinearReadout([0.0, 1.0]), max_lags=(2,))
    with pytest.raises(ValueError, match=r"memory_functions\[0\] returned lag 3"):
        tgt(torch.zeros(1, 5, 1))


def test_memory_function_non_integer_raises():
    # Prop 4.2's g(v) = v + 1 is only integer on the ternary set
    with pytest.raises(ValueError, match=r"memory_functions\[0\] must return integer lags"):
        prop42_witness()(torch.full((1, 5, 1), 0.5))


def test_readout_input_size_mismatch_raises():
    with pytest.raises(ValueError, match="readout"):
        FixedMemoryTarget((0, 1), LinearReadout([1.0, 1.0, 1.0]))


def test_n_nested_out_of_range_raises():
    with pytest.raises(ValueError, match="n_nested"):
        AdaptiveMemoryTarget([lambda u: u[..., 0]], 2, LinearReadout([1.0, 1.0]), max_lags=(1,))


# ---------------------------------------------------------------- targets at a few positions


@pytest.mark.parametrize("positions", [[9], [0, 3, 9], list(range(10)), [5, 2]])
def test_positions_are_the_rows_of_the_whole_target_in_every_family(positions):
    long_kernel = EssentialMemoryTarget([PowerDecay(0.5).tabulate(8), ExpDecay(1.0).tabulate(3)],
                                        LinearReadout([1.0, -2.0]))
    x = sample_pm1(3, 10, 1, generator=gen(4), dtype=torch.float64)
    for tgt in _each_family() + [long_kernel, exp1b_target(100, generator=gen(1), read_at="last_memory")]:
        xx = x if tgt.first_valid < 10 else sample_pm1(3, 100, 1, generator=gen(4), dtype=torch.float64)
        torch.testing.assert_close(tgt(xx, positions=positions), tgt(xx)[:, positions], rtol=0, atol=1e-14)


def test_essential_target_at_few_positions_is_a_dot_product_each():
    # one read position of a long kernel takes convolve_at (no FFT); many take the FFT
    tgt = exp4a_target(200)
    x = sample_pm1(2, 200, 1, generator=gen(6), dtype=torch.float64)
    last = torch.tensor([199])
    torch.testing.assert_close(tgt.convolve_at(x, last), tgt.convolve_direct(x)[:, last], rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(tgt(x, positions=last), tgt(x)[:, last], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("positions, match", [([10], r"\[0, 10\)"), ([[1]], "1-D"), ([], "at least one"),
                                              ([1.5], "integers")])
def test_bad_positions_name_the_parameter(positions, match):
    with pytest.raises(ValueError, match=match):
        FixedMemoryTarget((0, 2), LinearReadout([1.0, 1.0]))(torch.zeros(2, 10, 1), positions=positions)
