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
    for h, (r1, r2) in enumerate([(0.5, 1.0), (2.0, 3.0)]):
        expected = rpe.kerple_log_bias(LAGS, r1, r2)
        torch.testing.assert_close(score[h][ok[h]], expected[LAGS >= 0], rtol=1e-12, atol=1e-12)


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

def test_ssm_layer_reads_its_input_through_the_input_map():
    torch.manual_seed(2)
    layer = SSMMixer(6, 5, torch.float64)
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    A = torch.randn(6, 3, dtype=torch.float64)
    torch.testing.assert_close(layer.attend(x, None, "auto", input_map=A), layer(x @ A.T), rtol=1e-12, atol=1e-12)
    assert torch.all((layer.lam > 0) & (layer.lam < 1))
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
        assert set(configs) == set(arena.ARCHITECTURES)


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
    assert result.eval["error"] == pytest.approx(1 - result.eval["accuracy"])
    with pytest.raises(ValueError, match="length=16 must be the task's length"):
        train_tokens(model, task, TrainConfig(steps=1, length=16, progress=False))
    wrong = build_model(TransformerConfig(d_in=5, d_out=5), 0)
    with pytest.raises(ValueError, match="vocabulary"):
        train_tokens(wrong, task, TrainConfig(steps=1, length=8, progress=False))
    with pytest.raises(ValueError, match="token task"):
        train_tokens(model, object(), TrainConfig(steps=1, length=8, progress=False))


# --- predictions and their judgement -------------------------------------------------------

def test_predictions_follow_the_declared_structure():
    winners = {t: set(arena.predict(t).winners) for t in arena.TASKS}
    assert winners["pointer"] == {"alibi", "kerple", "tmx", "hybrid"}  # TMX can compute a pointer
    assert winners["mqar"] == winners["copying"] == {"alibi", "kerple", "hybrid"}
    assert winners["heavy_tail"] == {"free_log"}
    assert winners["light_tail"] == {"free_lin", "ssm"}
    assert winners["fixed"] == {"free_lin", "free_log", "ssm"}
    # a structure changed changes the prediction: the function reads it, nothing is typed
    heavy_adaptive = arena.Task("x", "x", "regression", "adaptive", "match", "heavy", "", lambda T: None)
    assert set(arena.predict(heavy_adaptive).winners) == {"kerple"}


def test_judge_confirms_a_win_or_a_tie_within_two_standard_errors():
    p = arena.Prediction("t", ("a",), "")
    assert arena.judge(p, {"a": [0.1, 0.1, 0.1], "b": [0.2, 0.2, 0.2]}).confirmed
    lost = arena.judge(p, {"a": [0.3, 0.3, 0.3], "b": [0.1, 0.11, 0.12]})
    assert not lost.confirmed and lost.best == "b" and lost.gap == pytest.approx(0.19)
    tie = arena.judge(p, {"a": [0.10, 0.30, 0.20], "b": [0.15, 0.16, 0.17]})  # a's spread covers the gap
    assert tie.best == "b" and tie.confirmed and tie.gap < tie.noise
    with pytest.raises(ValueError, match="lacks the predicted"):
        arena.judge(p, {"b": [0.1]})
    assert arena.mean_se([1.0, 3.0]) == (2.0, 1.0)


def test_the_experiment_chooses_rates_on_validation_and_skips_diverged_ones():
    def row(lr, seed, valid, test, diverged=False):
        return dict(task="fixed", arch="ssm", lr=lr, seed=seed, params=1, valid=valid, test=test, diverged=diverged)
    rows = [row(0.1, 0, 0.0, 0.0, True), row(0.1, 1, 0.01, 0.01),  # best valid, but one seed diverged
            row(0.01, 0, 0.2, 0.5), row(0.01, 1, 0.2, 0.6),
            row(0.001, 0, 0.3, 0.1), row(0.001, 1, 0.3, 0.1)]
    picked = suggestions.chosen(rows)[("fixed", "ssm")]
    assert picked["lr"] == 0.01 and picked["test"] == [0.5, 0.6]  # chosen on valid, not on test
    assert math.isclose(picked["valid_mean"], 0.2)
