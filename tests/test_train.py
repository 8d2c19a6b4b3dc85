"""Tests of txtheory.train: the loss falls, runs repeat bit for bit, errors are
measured at valid positions only, and bad input raises a ValueError naming the field."""
import math

import pytest
import torch

from txtheory import targets
from txtheory.model import TransformerConfig
from txtheory.train import (
    SAMPLERS,
    TrainConfig,
    TrainResult,
    build_model,
    evaluate,
    pick_device,
    seed_everything,
    train,
)


def delay_target(lag):
    return targets.FixedMemoryTarget(lags=(lag,), readout=targets.LinearReadout([1.0]))


def small_model(seed=0, rpe="lin", **kw):
    cfg = dict(d_model=4, n_heads=4, ffn_width=16, rpe=rpe, score="free", normalized=True)
    cfg.update(kw)
    return build_model(TransformerConfig(**cfg), seed)


def quick(**kw):
    cfg = dict(steps=40, batch_size=16, length=16, lr=3e-2, progress=False, eval_size=64, threads=1)
    cfg.update(kw)
    return TrainConfig(**cfg)


def test_loss_decreases_on_an_easy_target():
    result = train(small_model(), delay_target(1), quick(steps=80))
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert len(result.losses) == result.steps == 80
    assert last < 0.5 * first
    assert result.eval["mse"] < 0.5


def test_cpu_runs_repeat_bit_for_bit_and_depend_on_the_seed():
    runs = []
    for data_seed, init_seed in [(0, 0), (0, 0), (1, 0), (0, 1)]:
        model = small_model(seed=init_seed)
        result = train(model, delay_target(2), quick(seed=data_seed, steps=15))
        runs.append((result.losses, [p.detach().clone() for p in model.parameters()], result.eval))
    (l0, p0, e0), (l1, p1, e1), (l2, p2, _), (l3, p3, _) = runs
    assert l0 == l1 and e0 == e1
    assert all(torch.equal(a, b) for a, b in zip(p0, p1))
    assert l2 != l0  # other training data
    assert not all(torch.equal(a, b) for a, b in zip(p0, p2))
    assert l3 != l0  # other initialisation
    assert not all(torch.equal(a, b) for a, b in zip(p0, p3))


def test_build_model_is_seeded():
    a, b, c = small_model(0), small_model(0), small_model(1)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))


def test_seed_everything_fixes_torch():
    seed_everything(3)
    a = torch.rand(4)
    seed_everything(3)
    assert torch.equal(a, torch.rand(4))


def test_evaluate_sup_norm_dominates_rms_and_reads_valid_positions_only():
    model = small_model()
    target = delay_target(3)
    errs = evaluate(model, target, length=12, n=20, seed=0, batch_size=7)
    assert set(errs) == {"mse", "max_abs", "mean_error", "y_var", "rel_mse"}
    assert errs["max_abs"] >= math.sqrt(errs["mse"]) - 1e-12
    assert errs["mse"] > 0
    # The same numbers by hand, at positions first_valid..T-1 of the held-out batch.
    g = torch.Generator().manual_seed(0 + 10**6)
    xs = torch.cat([targets.sample_pm1(b, 12, generator=g) for b in (7, 7, 6)])
    with torch.no_grad():
        err = (model(xs) - target(xs))[:, target.first_valid:]
    assert errs["max_abs"] == pytest.approx(err.abs().max().item(), rel=1e-5)
    assert errs["mse"] == pytest.approx(err.double().square().mean().item(), rel=1e-5)
    assert errs["mean_error"] == pytest.approx(err.double().mean().item(), rel=1e-5, abs=1e-9)
    y = target(xs)[:, target.first_valid:].double()
    assert errs["y_var"] == pytest.approx(y.var(unbiased=False).item(), rel=1e-9)
    assert errs["rel_mse"] == pytest.approx(errs["mse"] / errs["y_var"], rel=1e-12)


def test_evaluate_of_a_perfect_model_is_zero():
    # y_t = x_t: attention silenced (W_O = 0), FFN readout computes ReLU(x) - ReLU(-x) = x.
    model = small_model(d_model=1, n_heads=1, ffn_width=2)
    with torch.no_grad():
        model.embed.weight.fill_(1.0)
        model.embed.bias.zero_()
        model.attn[0].W_O.zero_()
        model.ffn[0].hidden.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model.ffn[0].hidden.bias.zero_()
        model.ffn[0].out.weight.copy_(torch.tensor([[1.0, -1.0]]))
    target = targets.FixedMemoryTarget(lags=(0,), readout=targets.LinearReadout([1.0]))
    errs = evaluate(model, target, 10, 8, seed=5)
    assert errs["mse"] == 0.0 and errs["max_abs"] == 0.0 and errs["rel_mse"] == 0.0 and errs["y_var"] > 0
    assert errs["mean_error"] == 0.0


def test_result_to_dict_is_json_able():
    import json

    result = train(small_model(), delay_target(1), quick(steps=3))
    assert isinstance(result, TrainResult)
    d = json.loads(json.dumps(result.to_dict()))
    assert len(d["losses"]) == 3 and set(d["eval"]) == {"mse", "max_abs", "mean_error", "y_var", "rel_mse"}
    assert d["config"]["steps"] == 3


def test_float64_and_other_samplers_train():
    model = small_model(dtype=torch.float64)
    for sampler in ("ternary", "uniform"):
        result = train(model, delay_target(1), quick(steps=3, sampler=sampler))
        assert all(math.isfinite(v) for v in result.losses)


def test_long_window_takes_the_fft_path_and_agrees():
    # A window long enough that the FFT path over all positions is cheaper.
    from txtheory.train import _predict, _query_positions

    model = small_model(normalized=False, n_heads=8)
    assert _query_positions(model, 1, 600, "cpu") is None
    assert _query_positions(model, 590, 600, "cpu") is not None
    x = targets.sample_pm1(2, 600, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = _predict(model, x, 5, None)
        b = _predict(model, x, 5, torch.arange(5, 600))
    assert a.shape == b.shape == (2, 595, 1)
    assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("field, value", [
    ("steps", 0), ("steps", 1.5), ("batch_size", 0), ("length", -1), ("lr", 0.0), ("lr", float("nan")),
    ("lr", "fast"), ("weight_decay", -0.1), ("schedule", "linear"), ("seed", -1), ("sampler", "gauss"),
    ("device", "tpu"), ("eval_size", 0), ("progress", "yes"), ("log_every", 0), ("threads", 0),
])
def test_bad_train_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_mismatched_target_and_model_raise():
    model = small_model()  # d_in = d_out = 1
    two_in = targets.FixedMemoryTarget(lags=(1,), readout=targets.LinearReadout([1.0, 1.0]), d_in=2)
    with pytest.raises(ValueError, match="d_in"):
        train(model, two_in, quick())
    two_out = targets.FixedMemoryTarget(lags=(1,), readout=targets.LinearReadout([[1.0], [2.0]]))
    with pytest.raises(ValueError, match="d_out"):
        train(model, two_out, quick())
    with pytest.raises(ValueError, match="first_valid"):
        train(model, delay_target(16), quick(length=16))
    with pytest.raises(ValueError, match="first_valid"):
        evaluate(model, delay_target(20), 16, 4, 0)
    with pytest.raises(ValueError, match="config"):
        train(model, delay_target(1), {"steps": 3})
    with pytest.raises(ValueError, match="model"):
        train(torch.nn.Linear(1, 1), delay_target(1), quick())


def test_devices():
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device"):
        pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            pick_device("cuda")
        with pytest.raises(ValueError, match="cuda"):
            train(small_model(), delay_target(1), quick(device="cuda"))


def test_threads_setting_is_restored():
    before = torch.get_num_threads()
    train(small_model(), delay_target(1), quick(steps=2, threads=1))
    assert torch.get_num_threads() == before


# ---------------------------------------------------------------- plumbing: settings reach their effect


@pytest.mark.parametrize("length", [12, 600])  # the restricted dense path, and the FFT path over all T
def test_first_loss_is_the_untrained_mse_over_exactly_the_valid_positions(length):
    # Position first_valid - 1 holds a target read partly from the zero padding; a loss that
    # also read it (an off-by-one) would differ here by far more than rounding.
    target = delay_target(3)
    config = quick(steps=1, length=length, batch_size=5)
    model = small_model(seed=4, dtype=torch.float64)
    untrained = small_model(seed=4, dtype=torch.float64)
    result = train(model, target, config)
    x = SAMPLERS[config.sampler](5, length, 1, generator=torch.Generator().manual_seed(config.seed),
                                 dtype=torch.float64)  # the first training batch
    with torch.no_grad():
        err = untrained(x)[:, target.first_valid:] - target(x)[:, target.first_valid:]
        off_by_one = untrained(x)[:, target.first_valid - 1:] - target(x)[:, target.first_valid - 1:]
    assert result.losses[0] == pytest.approx(err.square().mean().item(), rel=1e-12)
    assert abs(off_by_one.square().mean().item() - err.square().mean().item()) > 1e-6 * err.square().mean().item()


def test_weight_decay_touches_the_weight_matrices_only():
    # AdamW's first step does not depend on the gradient's scale, so a parameter that is not
    # decayed comes out identical with weight_decay 0 and 0.5; a decayed one does not.
    after = {}
    for wd in (0.0, 0.5):
        model = small_model(seed=2, n_layers=2)
        train(model, delay_target(1), quick(steps=1, weight_decay=wd, lr=0.1))
        after[wd] = dict(model.named_parameters())
    for name, p in after[0.0].items():
        same = torch.equal(p, after[0.5][name])
        if name.endswith("p_raw") or name.endswith("bias"):
            assert same, f"{name} was decayed"
        else:
            assert p.ndim >= 2 and not same, f"{name} was not decayed"
    assert any(n.endswith("p_raw") for n in after[0.0]) and any(n.endswith("bias") for n in after[0.0])


def test_loss_at_last_reads_one_position_per_sequence():
    target = delay_target(3)
    config = quick(steps=1, length=12, batch_size=5, loss_at="last")
    model, untrained = small_model(seed=6, dtype=torch.float64), small_model(seed=6, dtype=torch.float64)
    result = train(model, target, config)
    x = SAMPLERS[config.sampler](5, 12, 1, generator=torch.Generator().manual_seed(config.seed), dtype=torch.float64)
    with torch.no_grad():
        err = untrained(x)[:, -1] - target(x)[:, -1]
    assert result.losses[0] == pytest.approx(err.square().mean().item(), rel=1e-12)
    errs = evaluate(untrained, target, 12, 30, seed=0, loss_at="last")
    g = torch.Generator().manual_seed(10**6)
    xs = targets.sample_pm1(30, 12, generator=g, dtype=torch.float64)
    with torch.no_grad():
        assert errs["mse"] == pytest.approx((untrained(xs)[:, -1] - target(xs)[:, -1]).square().mean().item(), rel=1e-9)
    with pytest.raises(ValueError, match="loss_at"):
        TrainConfig(loss_at="first")


@pytest.mark.parametrize("rpe", ["lin", "log"])
def test_forward_window_trains_the_same_model_through_the_fast_paths(rpe, monkeypatch):
    """forward="window" computes every position (the softmax scans) and reads the loss off
    them; in float64 it trains the same model as the restricted dense rows, to rounding
    (the log scan to its proved budget, 1e-11 of max|x| per head)."""
    from txtheory.attention import MultiHeadAttention

    target = delay_target(3)
    runs = {}
    for forward in ("auto", "window"):
        calls = []
        for name in ("_forward_scan", "_forward_log_scan"):
            original = getattr(MultiHeadAttention, name)
            monkeypatch.setattr(MultiHeadAttention, name,
                                lambda self, *a, _f=original: calls.append(1) or _f(self, *a))
        # a window long enough for auto to take the scans (attention.log_scan_pays at D = 4)
        config = quick(steps=20, length=300, loss_at="last", forward=forward)
        result = train(small_model(seed=3, rpe=rpe, dtype=torch.float64), target, config)
        runs[forward] = (result, len(calls))
        monkeypatch.undo()
    (auto, auto_calls), (window, window_calls) = runs["auto"], runs["window"]
    assert auto_calls == 0 and window_calls > 0  # one read position: auto takes the dense row
    assert window.losses == pytest.approx(auto.losses, rel=1e-8)
    assert window.eval["mse"] == pytest.approx(auto.eval["mse"], rel=1e-8)
    with pytest.raises(ValueError, match="forward"):
        TrainConfig(forward="scan")


# ---------------------------------------------------------------- probing a step's cost


def test_probe_runs_a_few_steps_records_them_and_skips_evaluation():
    from txtheory.train import probe

    with probe(steps=2) as records:
        result = train(small_model(), delay_target(1), quick(steps=500))
        train(small_model(n_heads=2), delay_target(1), quick(steps=30))
    assert len(result.losses) == 3  # two timed steps after a warm-up step
    assert all(math.isnan(v) for v in result.eval.values()) and math.isnan(result.seconds)
    assert [r["steps"] for r in records] == [500, 30]  # what each model was asked to run
    assert all(r["seconds_per_step"] > 0 for r in records)
    assert records[0]["params"] > records[1]["params"]
    # outside the probe, training is whole again
    assert len(train(small_model(), delay_target(1), quick(steps=5)).losses) == 5


def test_probe_does_not_nest_and_checks_steps():
    from txtheory.train import probe

    with pytest.raises(ValueError, match="steps"):
        with probe(steps=0):
            pass
    with probe(steps=1):
        with pytest.raises(RuntimeError, match="nest"):
            with probe(steps=1):
                pass


def test_default_device_comes_from_the_environment(monkeypatch):
    from txtheory.train import DEVICE_VARIABLE, default_device

    monkeypatch.delenv(DEVICE_VARIABLE, raising=False)
    assert default_device() == "cpu" and quick().device == "cpu"
    monkeypatch.setenv(DEVICE_VARIABLE, "auto")
    assert quick().device == "auto"
    monkeypatch.setenv(DEVICE_VARIABLE, "tpu")
    with pytest.raises(ValueError, match=DEVICE_VARIABLE):
        quick()
