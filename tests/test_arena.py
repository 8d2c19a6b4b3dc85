"""Tests of the side-by-side comparison (book/suggestions.md): the practitioners' encodings
through attention's one bias interface, the SSM layer in attention's place, the token
tasks of txtheory.recall, token training, and txtheory.arena's matching, predictions and
judgement, and the experiment's learning-rate choice."""
import math

import pytest
import torch

from txtheory import arena, recall, rpe
from txtheory.attention import MultiHeadAttention
from txtheory.baselines import SSMMixer
from txtheory.experiments import suggestions
from txtheory.model import Transformer, TransformerConfig, count_params
from txtheory.train import TrainConfig, build_model, evaluate_tokens, train_tokens

LAGS = torch.arange(-3, 40)


# --- the encodings ------------------------------------------------------------------------

def test_alibi_bias_is_minus_slope_times_lag_and_masks_the_future():
    bias = rpe.relative_bias("alibi", 4, torch.float64)
    score, ok = bias(LAGS)
    slopes = torch.tensor(rpe.alibi_slopes(4), dtype=torch.float64)
    assert torch.equal(ok[0], LAGS >= 0)
    expected = torch.where(LAGS >= 0, -slopes[:, None] * LAGS.clamp(min=0), torch.zeros(()))
    torch.testing.assert_close(score, expected, rtol=0, atol=0)
    assert not list(bias.parameters())  # ALiBi's slopes are fixed


def test_kerple_bias_matches_the_published_formula():
    bias = rpe.relative_bias("kerple_log", 2, torch.float64)
    with torch.no_grad():
        bias.r1_raw.copy_(rpe.inverse_positive(torch.tensor([0.5, 2.0], dtype=torch.float64)))
        bias.r2_raw.copy_(rpe.inverse_positive(torch.tensor([1.0, 3.0], dtype=torch.float64)))
    score, ok = bias(LAGS)
    s = LAGS[LAGS >= 0].double()
    for h, (r1, r2) in enumerate([(0.5, 1.0), (2.0, 3.0)]):  # Chi et al.: -r1 log(1 + r2 |m - n|)
        torch.testing.assert_close(score[h][ok[h]], -r1 * torch.log1p(r2 * s), rtol=1e-12, atol=1e-12)
        assert torch.all(score[h][~ok[h]] == 0)  # future keys: masked, score kept finite


def test_t5_bias_reads_its_table_by_bucket_and_gets_gradients():
    bias = rpe.relative_bias("t5", 3)
    with torch.no_grad():
        bias.table.copy_(torch.arange(3 * 32, dtype=torch.float32).view(3, 32))
    score, ok = bias(LAGS)
    buckets = rpe.t5_bucket(LAGS.clamp(min=0))
    assert torch.equal(score[1][ok[1]], (32 + buckets.float())[LAGS >= 0])
    score.sum().backward()
    assert torch.isfinite(bias.table.grad).all() and bias.table.grad.abs().sum() > 0


def test_relative_bias_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="bias"):
        rpe.relative_bias("rope", 2)
    with pytest.raises(ValueError, match="bias"):
        rpe.relative_bias("paper", 2)  # the paper's encoding is the layer's own rates


def copy_values(src: MultiHeadAttention, dst: MultiHeadAttention) -> None:
    with torch.no_grad():
        dst.W_V.copy_(src.W_V)
        dst.W_O.copy_(src.W_O)


def test_alibi_attention_without_content_is_the_papers_lin_rpe_with_its_slopes():
    """One interface: ALiBi with a zero query is DP-free lin-RPE with p_h = m_h."""
    torch.manual_seed(0)
    alibi = MultiHeadAttention(8, 4, score="dp", bias="alibi", dtype=torch.float64)
    with torch.no_grad():
        alibi.W_Q.zero_()
    lin = MultiHeadAttention(8, 4, score="free", rpe="lin", dtype=torch.float64)
    copy_values(alibi, lin)
    with torch.no_grad():
        lin.p_raw.copy_(rpe.inverse_positive(torch.tensor(rpe.alibi_slopes(4), dtype=torch.float64)))
    x = torch.randn(3, 30, 8, dtype=torch.float64)
    torch.testing.assert_close(alibi(x), lin(x, path="dense"), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(alibi(x), lin(x, path="fast"), rtol=1e-9, atol=1e-10)


def test_kerple_attention_with_r2_one_is_the_log1p_encoding():
    torch.manual_seed(1)
    kerple = MultiHeadAttention(8, 2, score="free", bias="kerple_log", dtype=torch.float64)
    log1p = MultiHeadAttention(8, 2, score="free", rpe="log1p", dtype=torch.float64)
    copy_values(kerple, log1p)
    with torch.no_grad():  # KERPLE starts at r1 = r2 = 1: p = 1
        log1p.p_raw.copy_(rpe.inverse_positive(torch.ones(2, dtype=torch.float64)))
    x = torch.randn(2, 25, 8, dtype=torch.float64)
    torch.testing.assert_close(kerple(x), log1p(x, path="dense"), rtol=1e-10, atol=1e-12)


def test_a_practitioners_bias_refuses_tmx_the_fast_path_and_paper_rates():
    with pytest.raises(ValueError, match="tmx"):
        MultiHeadAttention(4, 2, score="tmx", bias="alibi")
    with pytest.raises(ValueError, match="tmx"):
        TransformerConfig(score="tmx", bias="t5")
    layer = MultiHeadAttention(4, 2, score="free", bias="alibi")
    with pytest.raises(ValueError, match="bias='paper'"):
        layer(torch.randn(1, 5, 4), path="fast")
    with pytest.raises(ValueError, match="no paper rates"):
        layer.p
    with pytest.raises(ValueError, match="bias"):
        MultiHeadAttention(4, 2, bias="sinusoidal")


# --- the SSM layer in attention's place ----------------------------------------------------

def test_ssm_layer_is_the_causal_convolution_of_its_recurrence():
    """h_{t+1} = Λ h_t + U x_t, y_t = C h_{t+1} + D x_t, stepped by hand, against the FFT."""
    torch.manual_seed(2)
    layer = SSMMixer(6, 5, torch.float64)
    with torch.no_grad():
        layer.D.normal_()
    x = torch.randn(2, 12, 6, dtype=torch.float64)
    h = torch.zeros(2, 5, dtype=torch.float64)
    steps = []
    for t in range(12):
        h = layer.lam * h + x[:, t] @ layer.U.T
        steps.append(h @ layer.C.T + x[:, t] @ layer.D.T)
    torch.testing.assert_close(layer.attend(x, None, "auto"), torch.stack(steps, 1), rtol=1e-10, atol=1e-10)
    assert SSMMixer.count(6, 5) == sum(p.numel() for p in layer.parameters())


@pytest.mark.parametrize("arch", list(arena.ARCHITECTURES))
@pytest.mark.parametrize("task", list(arena.TASKS))
def test_every_architecture_counts_its_parameters_and_runs(arch, task):
    config = arena.base_config(arena.TASKS[task], arena.ARCHITECTURES[arch], length=64, d_model=8, n_layers=2,
                               n_heads=2, ffn_width=4)
    model = build_model(config, 0)
    assert count_params(config) == model.n_params()
    if arena.TASKS[task].kind == "tokens":
        x = torch.randint(config.d_in, (2, 64))
        one_hot = torch.nn.functional.one_hot(x, config.d_in).float()
        torch.testing.assert_close(model(x), model(one_hot), rtol=1e-5, atol=1e-5)  # ids = one-hot tokens
    else:
        x = torch.sign(torch.randn(2, 64, 1))
        reference = Transformer(config)
        reference.load_state_dict(model.state_dict())
        reference.tokens_first = False
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


def test_matched_configs_agree_within_one_percent():
    for task in arena.TASKS:
        configs = arena.matched_configs(task, length=64, d_model=32, n_layers=2, n_heads=4, ffn_width=64)
        counts = [count_params(c) for c in configs.values()]
        assert max(counts) / min(counts) - 1 < 0.01, (task, counts)
        small = arena.matched_configs(task, length=64, d_model=16, n_layers=2, n_heads=2, ffn_width=16)
        counts = [count_params(c) for c in small.values()]
        assert max(counts) / min(counts) - 1 < 0.02, (task, counts)  # the ci sizes: coarser widths
    with pytest.raises(ValueError, match="hybrid needs n_layers >= 2"):
        arena.matched_configs("mqar", length=64, d_model=8, n_layers=1, n_heads=2, ffn_width=4)


# --- the token tasks ------------------------------------------------------------------------

def test_mqar_answers_each_query_with_its_pairs_value():
    task = recall.MQAR(vocab_size=32, length=64, n_pairs=6)
    x, y = task.sample(50, torch.Generator().manual_seed(0))
    N = task.n_pairs
    for b in range(50):
        keys, values = x[b, 0:2 * N:2], x[b, 1:2 * N:2]
        assert len(set(keys.tolist())) == N and len(set(values.tolist())) == N
        assert keys.min() >= 1 and keys.max() < 16 and values.min() >= 16
        asked = torch.nonzero(y[b] >= 0).flatten()
        assert len(asked) == N and torch.all(asked >= 2 * N) and torch.all((asked - 2 * N) % 2 == 0)
        pairs = dict(zip(keys.tolist(), values.tolist()))
        assert sorted(x[b, asked].tolist()) == sorted(keys.tolist())
        for t in asked.tolist():
            assert y[b, t] == pairs[x[b, t].item()]


def test_mqar_queries_come_early_under_the_power_law():
    task = recall.MQAR(vocab_size=64, length=256, n_pairs=4)
    _, y = task.sample(400, torch.Generator().manual_seed(1))
    offsets = (torch.nonzero(y >= 0)[:, 1] - 2 * task.n_pairs).float()
    assert offsets.median() < (256 - 8) / 4  # a uniform draw would put the median near the middle


def test_selective_copying_answers_are_the_data_tokens_in_order():
    task = recall.SelectiveCopying(vocab_size=10, length=40, n_tokens=5)
    x, y = task.sample(30, torch.Generator().manual_seed(2))
    for b in range(30):
        data = x[b, :35][x[b, :35] != 0]
        assert len(data) == 5 and data.min() >= 1 and data.max() <= 8
        assert torch.equal(x[b, 35:], torch.full((5,), 9))
        assert torch.equal(y[b, 35:], data) and torch.all(y[b, :35] == recall.IGNORE)


@pytest.mark.parametrize("make, match", [
    (lambda: recall.MQAR(vocab_size=16, length=64, n_pairs=8), "vocab_size = 16 holds 7 distinct keys"),
    (lambda: recall.MQAR(vocab_size=64, length=30, n_pairs=8), "length = 30 is too short"),
    (lambda: recall.MQAR(power_a=0), "power_a"),
    (lambda: recall.SelectiveCopying(length=12, n_tokens=8), "length = 12 is too short"),
    (lambda: recall.SelectiveCopying(vocab_size=2), "vocab_size must be >= 3"),
    (lambda: recall.MQAR(n_pairs=0), "n_pairs must be >= 1"),
])
def test_bad_task_settings_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_samples_and_unknown_names_raise():
    with pytest.raises(ValueError, match="batch"):
        recall.MQAR().sample(0)
    with pytest.raises(ValueError, match="generator"):
        recall.SelectiveCopying().sample(2, generator=0)
    with pytest.raises(ValueError, match="architecture"):
        arena.check_architecture("mamba")
    with pytest.raises(ValueError, match="task"):
        arena.check_task("induction")


def test_token_training_learns_and_checks_its_inputs():
    """A one-layer DP model learns selective copying of one token above chance (1/4)."""
    task = recall.SelectiveCopying(vocab_size=6, length=8, n_tokens=1)
    config = TransformerConfig(d_in=6, d_model=16, n_layers=1, n_heads=2, ffn_width=16, d_out=6, score="dp",
                               bias="alibi")
    model = build_model(config, 0)
    chance = evaluate_tokens(model, task, 400, 0)["accuracy"]
    result = train_tokens(model, task, TrainConfig(steps=150, batch_size=32, length=8, lr=1e-2, progress=False,
                                                   eval_size=400))
    assert result.eval["accuracy"] > 0.9 > chance + 0.3
    with pytest.raises(ValueError, match="length=16 must be the task's length"):
        train_tokens(model, task, TrainConfig(steps=1, length=16, progress=False))
    wrong = build_model(TransformerConfig(d_in=5, d_out=5), 0)
    with pytest.raises(ValueError, match="vocabulary"):
        train_tokens(wrong, task, TrainConfig(steps=1, length=8, progress=False))
    with pytest.raises(ValueError, match="token task"):
        train_tokens(model, object(), TrainConfig(steps=1, length=8, progress=False))


# --- predictions and their judgement -------------------------------------------------------

def test_predictions_follow_the_declared_structure():
    content = {t: set(arena.predict(t).winners) for t in arena.TASKS}
    assert content["pointer"] == content["pointer_short"] == {"alibi", "kerple", "tmx", "hybrid"}  # TMX: a pointer
    assert content["mqar"] == content["copying"] == {"alibi", "kerple", "hybrid"}
    assert content["fixed"] == content["heavy_tail"] == {"free_lin", "free_log", "ssm"}
    heavy, light = arena.predict("heavy_tail", "decay"), arena.predict("light_tail", "decay")
    assert heavy.winners == ("free_log",) and light.winners == ("free_lin", "ssm")
    assert heavy.field == light.field == ("free_lin", "free_log", "ssm")  # content held fixed
    assert arena.rules_for("mqar") == ("content",) and arena.rules_for("heavy_tail") == ("content", "decay")
    with pytest.raises(ValueError, match="declares no tail"):
        arena.predict("mqar", "decay")
    # a structure changed changes the prediction: the function reads it, nothing is typed
    heavy_recall = arena.Task("x", "x", "tokens", "adaptive", "match", "heavy", "", lambda T: None)
    assert arena.predict(heavy_recall, "decay").winners == ("kerple",)


def test_judge_needs_the_prediction_ahead_beyond_two_standard_errors():
    p = arena.Prediction("t", "content", ("a",), ("a", "b", "c"), "")
    ahead = arena.judge(p, {"a": [0.1, 0.1, 0.1], "b": [0.2, 0.2, 0.2], "c": [0.3, 0.3, 0.3]})
    assert ahead.status == "confirmed" and ahead.margin == pytest.approx(0.1) and ahead.best_other == "b"
    behind = arena.judge(p, {"a": [0.3, 0.3, 0.3], "b": [0.1, 0.11, 0.12], "c": [0.4] * 3})
    assert behind.status == "missed" and behind.best == "b"
    close = arena.judge(p, {"a": [0.10, 0.30, 0.20], "b": [0.15, 0.16, 0.17], "c": [0.3] * 3})
    assert close.status == "no separation" and abs(close.margin) < close.noise  # a's spread covers it
    # every architecture learns and ties: not a confirmation
    assert arena.judge(p, {"a": [1e-4] * 3, "b": [1e-4] * 3, "c": [1e-4] * 3}).status == "no separation"
    # nothing learned: the order of failures tests nothing, whichever way it falls
    for a_err in ([0.9, 0.9], [0.6, 0.6]):
        assert arena.judge(p, {"a": a_err, "b": [0.7, 0.7], "c": [0.8, 0.8]}).status == "uninformative"
    with pytest.raises(ValueError, match="lacks"):
        arena.judge(p, {"a": [0.1], "b": [0.1]})
    with pytest.raises(ValueError, match="leave some out"):
        arena.judge(arena.Prediction("t", "content", ("a", "b"), ("a", "b"), ""), {"a": [0.1], "b": [0.2]})
    assert arena.mean_se([1.0, 3.0]) == (2.0, 1.0)


def row(lr, seed, valid, test, diverged=False, arch="ssm", task="fixed"):
    return dict(task=task, arch=arch, lr=lr, seed=seed, params=1, valid=valid, test=test, diverged=diverged)


def test_the_experiment_chooses_rates_on_validation_and_counts_divergence():
    rows = [row(0.1, 0, math.nan, math.nan, True), row(0.1, 1, 0.01, 0.01),  # one seed diverged: mean 0.505
            row(0.01, 0, 0.2, 0.5), row(0.01, 1, 0.2, 0.6),
            row(0.001, 0, 0.3, 0.1), row(0.001, 1, 0.3, 0.1)]
    picked = suggestions.chosen(rows)[("fixed", "ssm")]
    assert picked["lr"] == 0.01 and picked["test"] == [0.5, 0.6]  # chosen on valid, not on test
    assert math.isclose(picked["valid_mean"], 0.2) and picked["diverged"] == 0
    everywhere = [row(lr, s, math.nan, math.nan, True, arch="alibi") for lr in (0.1, 0.01) for s in (0, 1)]
    kept = suggestions.chosen(everywhere)[("fixed", "alibi")]  # diverged at every rate: kept, at error 1
    assert kept["test"] == [suggestions.DIVERGED_ERROR] * 2 and kept["diverged"] == 2 and kept["lr"] == 0.01


def test_outcomes_judge_every_rule_of_every_task_and_keep_diverged_models():
    rows = []
    for arch in arena.ARCHITECTURES:
        for seed in (0, 1):
            good = arch == "free_log"
            rows.append(row(0.01, seed, 0.01 if good else 0.2, 0.01 + 0.001 * seed if good else 0.2,
                            arch=arch, task="heavy_tail", diverged=arch == "alibi"))
    judged = suggestions.outcomes(rows)
    assert set(judged) == {("heavy_tail", "content"), ("heavy_tail", "decay")}
    assert all(o.status == "confirmed" for o in judged.values())


def test_bench_times_every_architecture_at_matched_parameters():
    from txtheory.bench import bench_architectures, format_architectures

    result = bench_architectures("copying", length=16, d_model=8, n_heads=2, ffn_width=8, batch_size=4,
                                 steps=1, repeats=1)
    assert set(result["ms"]) == set(arena.ARCHITECTURES) and min(result["ratio"].values()) == 1.0
    assert all(v >= 1.0 for v in result["ratio"].values())
    assert "ratio" in format_architectures(result)
    with pytest.raises(ValueError, match="task"):
        bench_architectures("induction")
    with pytest.raises(ValueError, match="repeats"):
        bench_architectures("mqar", repeats=0)
