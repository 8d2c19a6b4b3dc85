"""Task III (book/essential-memory.md): Theorem 5.1's construction, the baselines, and the
experiment helpers."""
import math

import numpy as np
import pytest
import torch

from txtheory import construct, kernels, rates, targets
from txtheory.model import TransformerConfig
from txtheory.train import build_model

S = np.arange(400.0)
SHIFTED_POWER = kernels.Tabulated(tuple((1 + S) ** -1.5))  # O(s^-1.5), not a sum of powers
DAMPED = kernels.Tabulated(tuple(np.exp(-0.5 * S) / (1 + S)))  # O(e^-0.5s), not a sum of exponentials


@pytest.mark.parametrize("rpe, rho", [("lin", DAMPED), ("log", SHIFTED_POWER), ("lin", kernels.PowerDecay(1.5)),
                                      ("log", kernels.ExpDecay(0.5))])
@pytest.mark.parametrize("normalized", [False, True])
def test_certificate_is_attained_on_the_worst_input(rpe, rho, normalized):
    c = construct.essential_memory_transformer([rho], 4, rpe, length=400, normalized=normalized)
    x = c.worst_input(0)  # (1, T, 1)
    err = (c.model(x)[0, -1] - c.target(x)[0, -1]).abs().item()
    assert err <= c.bound + c.float64_noise  # the forward pass's own rounding is not in the bound
    assert err >= 0.999 * c.bound  # the bound is the error on that input, not a loose estimate


def test_random_inputs_stay_under_the_bound_at_every_position_without_softmax():
    c = construct.essential_memory_transformer([DAMPED, SHIFTED_POWER], 6, "lin", length=400, normalized=False,
                                               readout=targets.LinearReadout([1.0, -2.0]))
    x = torch.randint(0, 2, (8, 400, 1), generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    err = (c.model(x) - c.target(x)).abs()[:, 1:].max().item()
    assert c.allocation == (3, 3)
    assert err <= c.bound + c.float64_noise


def test_log_rpe_gets_the_lag_zero_term_from_the_residual_path():
    c = construct.essential_memory_transformer([SHIFTED_POWER], 1, "log", length=400)
    assert construct.one_layer.skip_weight(c.model, 0) == 1.0  # rho(0) = (1 + 0)^-1.5
    assert c.kernel(0)[0] == 1.0


def test_matched_kinds_meet_a_rate_fitted_on_the_first_point():
    # C(n) fitted at H = 1 with n = 3; the bound C M^4 / H^3 must then hold at H = 2..8.
    heads = [1, 2, 4, 8]
    for rpe, rho in (("lin", DAMPED), ("log", SHIFTED_POWER)):
        errs = [construct.essential_memory_transformer([rho], H, rpe, length=400).bound for H in heads]
        C = errs[0]
        assert all(e <= C / H**3 for e, H in zip(errs[1:], heads[1:])), (rpe, errs)


def test_a_log_kernel_on_a_light_tail_does_not_meet_that_rate():
    # the check can fail: log heads on e^{-s/2} decay slower than H^-3
    heads = [1, 2, 4, 8]
    errs = [construct.essential_memory_transformer([kernels.ExpDecay(0.5)], H, "log", length=400).bound
            for H in heads]
    assert not all(e <= errs[0] / H**3 for e, H in zip(errs[1:], heads[1:]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(kernel_shapes=[]), "at least one kernel"),
    (dict(kernel_shapes=[kernels.Delta(3)]), "Theorem 3.1"),
    (dict(kernel_shapes=["rho"]), "ExpDecay, PowerDecay or Tabulated"),
    (dict(n_heads=0), "n_heads"),
    (dict(kernel_shapes=[DAMPED, DAMPED], n_heads=1), "n_heads must be >= the number of kernels"),
    (dict(rpe="alibi"), "rpe"),
    (dict(length=1), "length"),
    (dict(readout=targets.LinearReadout([1.0, 1.0, 1.0]), kernel_shapes=[DAMPED, DAMPED]), "M d inputs"),
    (dict(readout="sum"), "readout"),
    (dict(allocation="best"), "allocation"),
    (dict(fit_options=3), "fit_options"),
])
def test_bad_arguments_are_named(kwargs, match):
    args = dict(kernel_shapes=[DAMPED], n_heads=2, rpe="lin", length=50)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        construct.essential_memory_transformer(**args)


def test_rate_caps_put_experiment_4a_outside_case_b():
    assert rates.thm51_max_rate(0.5, "lin") == 49
    with pytest.raises(ValueError, match="200/99"):
        rates.thm51_max_rate(0.5, "log")
    assert rates.thm51_max_rate(3, "log") == 1


# ---------------------------------------------------------------- baselines

from txtheory import baselines, train  # noqa: E402
from txtheory.experiments import essential as ess  # noqa: E402


def test_diagonal_ssm_fft_equals_its_recurrence():
    torch.manual_seed(0)
    m = baselines.DiagonalSSM(baselines.BaselineConfig(d_in=2, n_hidden=5, d_out=3, dtype=torch.float64))
    x = torch.randn(4, 37, 2, dtype=torch.float64)
    h = torch.zeros(4, 5, dtype=torch.float64)
    ys = []
    for t in range(37):  # h_{t+1} = Λ h_t + U x_t, y_t = C h_{t+1} + D x_t
        h = m.lam * h + x[:, t] @ m.U.T
        ys.append(h @ m.C.T + x[:, t] @ m.D.T)
    torch.testing.assert_close(m(x), torch.stack(ys, 1), rtol=0, atol=1e-12)
    torch.testing.assert_close(m(x, positions=torch.tensor([36])), m(x)[:, 36:], rtol=0, atol=0)


def test_lru_decays_start_where_the_sigmoid_ones_do():
    sig, lru = (baselines.DiagonalSSM(baselines.BaselineConfig(n_hidden=6, dtype=torch.float64, decay_param=p))
                for p in baselines.DECAY_PARAMS)
    torch.testing.assert_close(lru.lam, sig.lam, rtol=1e-12, atol=0)  # the same initial decays
    with torch.no_grad():  # lambda = exp(-exp(a)) for the LRU form
        lru.a.fill_(math.log(0.01))
    torch.testing.assert_close(lru.lam, torch.full((6,), math.exp(-0.01), dtype=torch.float64))
    with pytest.raises(ValueError, match="decay_param"):
        baselines.BaselineConfig(decay_param="tanh")


def test_baselines_train_with_the_shared_loop_and_reject_bad_input():
    target = ess.memory_target(ess.kernel_table(kernels.PowerDecay(1.5), "zero", 16))
    for cls in (baselines.DiagonalSSM, baselines.GRUBaseline):
        model = cls(baselines.BaselineConfig(n_hidden=4))
        fit = train.train(model, target, train.TrainConfig(steps=30, length=16, progress=False, loss_at="last",
                                                           eval_size=64))
        assert np.isfinite(fit.eval["mse"]) and fit.losses[-1] < fit.losses[0]
        with pytest.raises(ValueError, match="d_in"):
            model(torch.zeros(2, 16, 3))
    with pytest.raises(ValueError, match="n_hidden"):
        baselines.BaselineConfig(n_hidden=0)
    with pytest.raises(ValueError, match="decay_range"):
        baselines.BaselineConfig(decay_range=(0.5, 2.0))
    with pytest.raises(ValueError, match="model must be"):
        train.train(torch.nn.Linear(1, 1), target)


# ---------------------------------------------------------------- experiments 4a, 4b

def test_kernel_tables_follow_each_reading_of_the_lag_zero_term():
    rho = kernels.ExpDecay(5.0)
    zero, shift, keep = (ess.kernel_table(rho, c, 10) for c in ("zero", "shift", "keep"))
    assert zero.shape == (10,) and shift.shape == (11,) and keep.shape == (10,)
    assert zero[0] == shift[0] == 0 and keep[0] == 1 and np.allclose(zero[1:], keep[1:])
    with pytest.raises(ValueError, match="undefined at lag 0"):
        ess.kernel_table(kernels.PowerDecay(0.5), "keep", 10)
    with pytest.raises(ValueError, match="convention"):
        ess.kernel_table(rho, "half", 10)
    with pytest.raises(ValueError, match="init"):
        ess.initial_rates("random", "lin", 10)


def test_best_fit_is_exact_where_one_head_realises_the_kernel_and_counts_unreachable_lag_zero():
    table = ess.kernel_table(kernels.ExpDecay(5.0), "keep", 50)
    assert ess.best_fit(table, "lin", 1, residual=False) < 1e-20  # e^{-5s}: one lin head
    assert ess.best_fit(table, "log", 4, residual=False) >= 1.0  # a log head never sees lag 0
    assert ess.best_fit(table, "log", 4, residual=True) < 4.6e-5  # the residual carries it
    power = ess.kernel_table(kernels.PowerDecay(0.5), "zero", 50)
    assert ess.best_fit(power, "log", 1, residual=True) < 1e-20  # s^{-1/2}: one log head
    assert ess.best_fit(power, "lin", 1, residual=True) > 1e-2
    # with ±1 tokens the MSE of a model equals the squared l2 error of its kernel
    fit = kernels.fit_free(kernels.Tabulated(tuple(power)), 2, "lin", window=49, start=0)
    assert math.isclose(ess.best_fit(power, "lin", 2, residual=False), fit.l2_residual**2, rel_tol=1e-9)


def test_best_values_split_a_trained_error_into_rates_and_values():
    table = ess.kernel_table(kernels.ExpDecay(5.0), "keep", 200)
    # the right rate leaves nothing; a wrong one leaves what its best values cannot fix
    assert ess.best_values(table, "lin", [5.0], residual=True) < 1e-25
    slow = ess.best_values(table, "lin", [0.5], residual=True)
    assert slow > 1e-6
    # no values beat the free fit with as many heads, and the unreachable lag 0 is counted
    assert slow >= ess.best_fit(table, "lin", 1, residual=True)
    assert ess.best_values(table, "log", [3.0], residual=False) >= 1.0
    # the same number as a direct least-squares fit on lags 1..199
    lags = np.arange(1, 200)
    design = np.exp(-0.5 * lags)[:, None]
    coef, *_ = np.linalg.lstsq(design, table[1:], rcond=None)
    assert math.isclose(slow, float(np.sum((design @ coef - table[1:]) ** 2)), rel_tol=1e-9)
    with pytest.raises(ValueError, match="rates"):
        ess.best_values(table, "lin", [-1.0], residual=True)


def test_the_design_matrix_holds_each_heads_kernel_as_a_column():
    s = np.arange(1, 6)
    A = kernels.design_matrix("log", s, np.array([0.5, 2.0]))
    assert A.shape == (5, 2) and np.allclose(A[:, 1], s ** -2.0)
    assert np.allclose(kernels.design_matrix("lin", s, np.array([1.0]))[:, 0], np.exp(-s))


@pytest.mark.parametrize("rpe", ["lin", "log"])
def test_the_learned_kernel_is_the_whole_function_of_a_dp_free_model(rpe):
    model = build_model(TransformerConfig(d_in=1, d_model=2, n_heads=3, ffn_width=1, rpe=rpe, score="free",
                                          readout="linear", dtype=torch.float64, p_range=(0.3, 3.0)), seed=2)
    T = 40
    kappa = ess.learned_kernel(model, T)
    x = torch.randint(0, 2, (5, T, 1), generator=torch.Generator().manual_seed(0)).double() * 2 - 1
    y = model(x, positions=[T - 1])[:, -1, 0]
    y0 = model(torch.zeros(1, T, 1, dtype=torch.float64), positions=[T - 1])[0, -1, 0]
    by_kernel = y0 + (x[:, :, 0].flip(1) * torch.from_numpy(kappa)).sum(1)
    # float64 sums of 40 terms of size <= 1: far below 1e-12
    assert torch.allclose(y, by_kernel, atol=1e-12, rtol=0)
    assert np.abs(kappa).max() > 1e-3  # not a model that ignores its input


def test_the_learned_kernel_refuses_what_is_not_affine_in_its_tokens():
    for score in ("dp", "tmx"):  # weights that depend on the tokens
        other = build_model(TransformerConfig(d_in=1, d_model=2, n_heads=1, ffn_width=1, score=score,
                                              readout="linear"))
        with pytest.raises(ValueError, match="affine in its tokens"):
            ess.learned_kernel(other, 8)
    normed = build_model(TransformerConfig(d_in=1, d_model=2, n_heads=1, ffn_width=1, score="free",
                                           readout="linear", layer_norm=True))
    with pytest.raises(ValueError, match="LayerNorm"):
        ess.learned_kernel(normed, 8)
    ffn = build_model(TransformerConfig(d_in=1, d_model=2, n_heads=1, ffn_width=4, score="free"))
    with pytest.raises(ValueError, match="linear readout"):
        ess.learned_kernel(ffn, 8)
    ok = build_model(TransformerConfig(d_in=1, d_model=2, n_heads=1, ffn_width=1, score="free", readout="linear"))
    with pytest.raises(ValueError, match="window"):
        ess.learned_kernel(ok, 0)


def test_the_learned_kernel_of_a_float32_model_is_read_in_float64():
    model = build_model(TransformerConfig(d_in=1, d_model=2, n_heads=2, ffn_width=1, rpe="lin", score="free",
                                          readout="linear", p_range=(0.5, 2.0)), seed=4)
    kappa = ess.learned_kernel(model, 30)
    assert kappa.dtype == np.float64 and next(model.parameters()).dtype == torch.float32  # the model untouched
    # lag 29 of e^{-p s} kernels with p >= 0.5 is far below float32's resolution of y(0) ~ 1, yet resolved
    assert 0 < abs(kappa[-1]) < 1e-6
