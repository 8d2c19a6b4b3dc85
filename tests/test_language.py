"""txtheory.language and the language experiments: token input, pre-LN, training, sampling."""
import math

import pytest
import torch

from txtheory import experiments
from txtheory.corpus import load_corpus
from txtheory.experiments import language as lang_exp
from txtheory.language import LMTrainConfig, generate, lm_config, lm_loss, lm_loss_all, train_lm, windows
from txtheory.model import count_params
from txtheory.train import build_model


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def tiny(corpus, **kw):
    return build_model(lm_config(corpus.vocab_size, d_model=16, n_layers=2, n_heads=2, d_head=8, ffn_width=32, **kw),
                       seed=0)


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("score", ["dp", "free"])
def test_token_ids_give_the_one_hot_model(corpus, score, layer_norm):
    model = tiny(corpus, score=score, layer_norm=layer_norm, dtype=torch.float64)
    ids = torch.randint(0, corpus.vocab_size, (3, 20), generator=torch.Generator().manual_seed(1))
    one_hot = torch.nn.functional.one_hot(ids, corpus.vocab_size).double()
    assert torch.allclose(model(ids), model(one_hot), atol=1e-12, rtol=0)
    assert model.n_params() == count_params(model.config)


def test_bad_token_ids_are_named(corpus):
    model = tiny(corpus)
    with pytest.raises(ValueError, match="token ids must lie in 0.."):
        model(torch.tensor([[0, corpus.vocab_size]]))
    with pytest.raises(ValueError, match="token ids"):
        model(torch.tensor([[[1]]]))


def test_training_lowers_the_loss_and_both_parts_are_measured(corpus):
    model = tiny(corpus)
    before = lm_loss(model, corpus.encode(corpus.valid[:20000]), 32, 8)
    assert abs(before - math.log(corpus.vocab_size)) < 1.0  # an untrained model is near uniform
    result = train_lm(model, corpus, LMTrainConfig(steps=40, batch_size=8, length=32, eval_every=20,
                                                     eval_windows=8, progress=False))
    assert result.curve["step"] == [0, 20, 40]
    assert result.valid_loss < before - 0.5 and result.train_loss < before - 0.5
    assert len(result.losses) == 40 and result.to_dict()["config"]["steps"] == 40


def test_training_repeats_bit_for_bit(corpus):
    config = LMTrainConfig(steps=5, batch_size=4, length=16, eval_every=5, eval_windows=4, progress=False, threads=1)
    a = train_lm(tiny(corpus), corpus, config)
    b = train_lm(tiny(corpus), corpus, config)
    assert a.losses == b.losses and a.valid_loss == b.valid_loss


def test_windows_are_next_character_pairs():
    ids = torch.arange(100)
    x, y = windows(ids, 10, 4, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 10) and torch.equal(y, x + 1)
    with pytest.raises(ValueError, match="window needs"):
        windows(ids[:5], 10, 1, torch.Generator())


def test_generate_continues_the_prompt_and_checks_its_arguments(corpus):
    model = tiny(corpus)
    text = generate(model, corpus, "The ", 30, seed=3)
    assert text.startswith("The ") and len(text) == 34
    assert generate(model, corpus, "The ", 30, seed=3) == text
    with pytest.raises(ValueError, match="prompt"):
        generate(model, corpus, "", 5)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, corpus, "a", 5, temperature=0)


def test_generate_reads_the_last_context_characters(corpus):
    """A prompt longer than the context: each step must read the *last* ``context`` ids.
    Held to a loop written here with the same seeded generator, step by step."""
    model = tiny(corpus)
    prompt, context, n_chars, temperature = corpus.valid[:60], 8, 12, 0.02  # sharp: a window change shows
    assert len(corpus.encode(prompt)) > context
    ids = corpus.encode(prompt).tolist()
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for _ in range(n_chars):
            window = ids[len(ids) - context:]
            logits = model(torch.tensor([window]), positions=[context - 1])[0, -1].double()
            ids.append(int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)))
    expected = corpus.decode(ids)
    got = generate(model, corpus, prompt, n_chars, temperature=temperature, seed=5, context=context)
    assert got == expected


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=0), "steps"), (dict(lr=-1.0), "lr"), (dict(clip=0.0), "clip"), (dict(length=1), "length"),
    (dict(schedule="linear"), "schedule"), (dict(weight_decay=-1), "weight_decay"),
])
def test_bad_training_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LMTrainConfig(**kwargs)


def test_a_model_of_another_vocabulary_is_refused(corpus):
    model = build_model(lm_config(10, d_model=8, n_layers=1, n_heads=1, d_head=4, ffn_width=8), seed=0)
    with pytest.raises(ValueError, match="vocabulary size"):
        train_lm(model, corpus, LMTrainConfig(steps=1, progress=False))


def test_matched_heads_balance_the_parameter_counts(corpus):
    config = experiments.config_for("exp1a", "full")
    for L in config["depths"][1:]:
        H = lang_exp.matched_heads(config, corpus.vocab_size, L)
        deep = count_params(lang_exp.architecture(config, corpus.vocab_size, L, config["base_heads"]))
        wide = count_params(lang_exp.architecture(config, corpus.vocab_size, 1, H))
        assert H > config["base_heads"] and abs(wide - deep) / deep < 0.03


@pytest.mark.parametrize("name, arms", [("exp1a", lang_exp.arms_1a), ("exp3b", lang_exp.arms_3b)])
def test_every_arm_is_matched_to_its_rung_within_3_percent(corpus, name, arms):
    config = experiments.config_for(name, "full")
    points = arms(config, corpus.vocab_size)
    assert {p["arm"] for p in points} == ({"depth", "heads", "heads_dv", "ffn"} if name == "exp1a"
                                          else {"dp", "free", "free_matched"})
    for p in points:
        if p["arm"] == "free":  # the paper's comparison: same L and H, so smaller
            continue
        rung = p.get("matched_to", p["n_layers"])
        target = lang_exp.budget(config, corpus.vocab_size, rung)
        arch = lang_exp.architecture(config, corpus.vocab_size, p["n_layers"], p["n_heads"], p.get("score", "dp"),
                                     d_value=p.get("d_value"), ffn_width=p.get("ffn_width"))
        assert abs(count_params(arch) - target) / target < 0.03, p
    dv = [p for p in points if p["arm"] == "heads_dv"]
    assert all(p["d_value"] == config["d_model"] > config["d_head"] for p in dv)


def test_the_loss_on_every_character_counts_each_once(corpus):
    model = tiny(corpus, dtype=torch.float64)
    ids = corpus.valid_ids[:203]  # 202 targets: windows of 50, 50, 50, 50 and a tail of 2
    by_hand = 0.0
    for start in range(0, 202, 50):
        x, y = ids[start:min(start + 50, 202)], ids[start + 1:min(start + 51, 203)]
        by_hand += torch.nn.functional.cross_entropy(model(x[None])[0], y, reduction="sum").item()
    # the training loss takes its cross-entropy in float32: agreement to float32 rounding
    assert lm_loss_all(model, ids, 50, batch_size=3) == pytest.approx(by_hand / 202, rel=1e-6)
    # one window over everything is the model's plain causal loss
    whole = torch.nn.functional.cross_entropy(model(ids[None, :-1])[0], ids[1:]).item()
    assert lm_loss_all(model, ids, 500) == pytest.approx(whole, rel=1e-6)
    with pytest.raises(ValueError, match="length"):
        lm_loss_all(model, ids, 0)
    with pytest.raises(ValueError, match="at least 2"):
        lm_loss_all(model, ids[:1], 8)
    with pytest.raises(ValueError, match="eval_all"):
        LMTrainConfig(eval_all=1)


def test_the_experiments_run_at_ci_scale_on_a_users_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("TXTHEORY_RESULTS", str(tmp_path / "results"))
    text = tmp_path / "mine.txt"
    text.write_text(" ".join(f"token{k % 997} and more" for k in range(6000)), encoding="utf-8")
    entry = experiments.run("exp3b", "ci", corpus=str(text))
    rows = entry["result"]["rows"]
    assert {r["score"] for r in rows} == {"dp", "free"} and entry["result"]["corpus"]["name"] == str(text)
    mean, spread, n = lang_exp.seed_summary(rows, n_layers=1, score="dp")
    assert n == 1 and spread == 0.0 and math.isfinite(mean)
    with pytest.raises(ValueError, match="no rows"):
        lang_exp.seed_summary(rows, n_layers=9)


def test_loss_drop_and_its_standard_error():
    drop, se = lang_exp.loss_drop((2.0, 0.3, 9), (1.5, 0.4, 4))
    assert drop == pytest.approx(0.5) and se == pytest.approx(math.sqrt(0.09 / 9 + 0.16 / 4))


def test_the_encoded_parts_are_computed_once(corpus):
    assert corpus.train_ids is corpus.train_ids
    assert torch.equal(corpus.valid_ids, corpus.encode(corpus.valid))
