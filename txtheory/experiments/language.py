"""The language-model experiments of ``book/language.md``, registered on import.

* ``exp1a``: depth against heads at matched parameter counts. A depth ladder (L = 1, 2, ...
  layers of ``base_heads`` heads) and, beside each deeper model, three one-layer models
  with as many parameters: more heads summed through the shared narrow W_O (the paper's
  eq. 2, arm "heads"); more heads with value width D, so they are not confined to one
  d_head-dimensional subspace (arm "heads_dv"); and a wider FFN (arm "ffn"). The paper's
  two numbers are the validation-loss gains from adding layers and from adding heads
  (0.802 > 0.136).
* ``exp3b``: the depth ladder with and without the dot product (DP against DP-free,
  RPE-only attention), and a DP-free arm given the dot product's parameters back as more
  heads (arm "free_matched"). The paper: a lower loss with DP in all three configurations.

Both train character-level models (``txtheory.language``) on a corpus (``txtheory.corpus``):
``corpus="stdlib"`` by default, or the path of a user's UTF-8 file (``--corpus`` on the
command line), with several seeds per configuration. Every model is scored on every
character of the validation text (``language.lm_loss_all``), besides the learning curves'
fixed windows.
"""
from __future__ import annotations

import functools
import sys

import numpy as np

from txtheory.corpus import load_corpus
from txtheory.experiments import Experiment, register, thin
from txtheory.language import LMTrainConfig, generate, lm_config, train_lm
from txtheory.model import count_params
from txtheory.train import build_model

PAPER = {  # the paper's text (its tables 2 and 7 are images we could not read)
    "exp1a": {"depth_gain": 0.802, "heads_gain": 0.136},
    "exp3b": [(5.796, 5.830), (5.374, 5.486), (4.994, 5.274)],  # (with DP, without), per configuration
}
SAMPLE_PROMPT = "Return the "
SAMPLE_TEMPERATURE = 0.8  # of the sample from the best model


def architecture(config: dict, vocab_size: int, n_layers: int, n_heads: int, score: str = "dp", *,
                 d_value: int | None = None, ffn_width: int | None = None):
    """The TransformerConfig of one grid point: ``config``'s widths unless ``d_value`` or
    ``ffn_width`` is given."""
    return lm_config(vocab_size, d_model=config["d_model"], n_layers=n_layers, n_heads=n_heads,
                     d_head=config["d_head"], d_value=d_value,
                     ffn_width=config["ffn_width"] if ffn_width is None else ffn_width, score=score,
                     layer_norm=config["layer_norm"])


def budget(config: dict, vocab_size: int, n_layers: int, score: str = "dp") -> int:
    """The parameter count of the ``n_layers``-layer model of the depth ladder."""
    return count_params(architecture(config, vocab_size, n_layers, config["base_heads"], score))


def _closest(target: int, build, candidates) -> int:
    return min(candidates, key=lambda k: (abs(count_params(build(k)) - target), k))


def matched_heads(config: dict, vocab_size: int, n_layers: int, score: str = "dp") -> int:
    """The head count of a one-layer model whose parameters come closest to those of an
    ``n_layers``-layer model with ``base_heads`` heads (both with ``score``)."""
    return _closest(budget(config, vocab_size, n_layers, score),
                    lambda h: architecture(config, vocab_size, 1, h, score), range(1, 1025))


def matched_heads_wide_values(config: dict, vocab_size: int, n_layers: int) -> int:
    """Likewise, for one-layer models whose heads have value width d_value = D."""
    return _closest(budget(config, vocab_size, n_layers),
                    lambda h: architecture(config, vocab_size, 1, h, d_value=config["d_model"]), range(1, 1025))


def matched_ffn_width(config: dict, vocab_size: int, n_layers: int) -> int:
    """The FFN width of a one-layer, ``base_heads``-head model with as many parameters as the
    ``n_layers``-layer model."""
    return _closest(budget(config, vocab_size, n_layers),
                    lambda m: architecture(config, vocab_size, 1, config["base_heads"], ffn_width=m),
                    range(1, 64 * config["ffn_width"] + 1))


def matched_free_heads(config: dict, vocab_size: int, n_layers: int) -> int:
    """The head count per layer of an ``n_layers``-layer DP-free model with as many parameters
    as the DP model of the ladder: the dot product's W_Q and W_K given back as heads."""
    return _closest(budget(config, vocab_size, n_layers),
                    lambda h: architecture(config, vocab_size, n_layers, h, "free"), range(1, 1025))


def arms_1a(config: dict, vocab_size: int) -> list[dict]:
    """Every model of experiment 1a: the depth ladder, then the three one-layer arms matched
    to each deeper rung (``matched_to`` names the rung)."""
    H0, D = config["base_heads"], config["d_model"]
    points = [dict(arm="depth", n_layers=L, n_heads=H0, matched_to=L) for L in config["depths"]]
    for L in config["depths"][1:]:
        points += [dict(arm="heads", n_layers=1, n_heads=matched_heads(config, vocab_size, L), matched_to=L),
                   dict(arm="heads_dv", n_layers=1, n_heads=matched_heads_wide_values(config, vocab_size, L),
                        d_value=D, matched_to=L),
                   dict(arm="ffn", n_layers=1, n_heads=H0, ffn_width=matched_ffn_width(config, vocab_size, L),
                        matched_to=L)]
    return points


def arms_3b(config: dict, vocab_size: int) -> list[dict]:
    """Every model of experiment 3b: at each depth, DP and DP-free with ``base_heads`` heads,
    and DP-free with the dot product's parameters given back as heads."""
    H0 = config["base_heads"]
    points = []
    for L in config["depths"]:
        points += [dict(arm="dp", n_layers=L, n_heads=H0, score="dp"),
                   dict(arm="free", n_layers=L, n_heads=H0, score="free"),
                   dict(arm="free_matched", n_layers=L, n_heads=matched_free_heads(config, vocab_size, L),
                        score="free")]
    return points


def _train(config: dict, corpus, point: dict, seed: int, progress: bool) -> tuple:
    score = point.get("score", "dp")
    arch = architecture(config, corpus.vocab_size, point["n_layers"], point["n_heads"], score,
                        d_value=point.get("d_value"), ffn_width=point.get("ffn_width"))
    model = build_model(arch, seed=seed)
    result = train_lm(model, corpus, LMTrainConfig(
        steps=config["steps"], batch_size=config["batch_size"], length=config["length"], lr=config["lr"],
        clip=config["clip"], seed=seed, eval_every=config["eval_every"], eval_windows=config["eval_windows"],
        eval_all=config["eval_all"], progress=progress, threads=config.get("threads")))
    row = {**point, "score": score, "d_value": arch.d_value, "ffn_width": arch.ffn_width, "seed": seed,
           "params": model.n_params(), "train_loss": result.train_loss, "valid_loss": result.valid_loss,
           "valid_all": result.valid_loss_all, "curve": result.curve, "losses": thin(result.losses, 50),
           "seconds": result.seconds}
    return model, row


def _sample(model, corpus, config: dict) -> str:
    return generate(model, corpus, SAMPLE_PROMPT, config["sample_chars"], temperature=SAMPLE_TEMPERATURE, seed=0,
                    context=config["length"])


def run_exp1a(config: dict, progress: bool = False) -> dict:
    """The depth ladder and the matched head ladder, each with ``seeds`` seeds."""
    corpus = load_corpus(config["corpus"])
    rows, best = [], None
    for point in arms_1a(config, corpus.vocab_size):
        for seed in range(config["seeds"]):
            model, row = _train(config, corpus, point, seed, progress)
            rows.append(row)
            if best is None or row["valid_all"] < best[1]["valid_all"]:
                best = (model, row)
    model, row = best
    return {"rows": rows, "corpus": corpus.report(), "paper": PAPER["exp1a"],
            "sample": {"text": _sample(model, corpus, config), "arm": row["arm"], "n_layers": row["n_layers"],
                       "n_heads": row["n_heads"], "seed": row["seed"], "valid_all": row["valid_all"]}}


def run_exp3b(config: dict, progress: bool = False) -> dict:
    """The depth ladder with the dot product, without it, and without it at matched
    parameters, each with ``seeds`` seeds."""
    corpus = load_corpus(config["corpus"])
    rows = [_train(config, corpus, point, seed, progress)[1]
            for point in arms_3b(config, corpus.vocab_size) for seed in range(config["seeds"])]
    return {"rows": rows, "corpus": corpus.report(), "paper": PAPER["exp3b"]}


def seed_summary(rows: list[dict], key: str = "valid_all", **match) -> tuple[float, float, int]:
    """(mean, standard deviation over seeds, number of seeds) of ``key`` over the rows whose
    fields equal ``match``."""
    values = np.array([r[key] for r in rows if all(r[k] == v for k, v in match.items())], dtype=float)
    if values.size == 0:
        raise ValueError(f"no rows match {match}")
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0, int(values.size)


def loss_drop(a: tuple, b: tuple) -> tuple[float, float]:
    """The drop in mean loss from ``a`` to ``b``, two ``seed_summary`` results, and its
    standard error over seeds: (a_mean - b_mean, sqrt(a_sd²/a_n + b_sd²/b_n))."""
    return a[0] - b[0], float(np.sqrt(a[1] ** 2 / a[2] + b[1] ** 2 / b[2]))


def corpus_changed(config: dict, entry: dict) -> str | None:
    """Why a cached result does not hold for this machine's corpus, or None: the entry
    records the sha256 of the corpus it was trained on (``Corpus.report``), and the
    default corpus, Python's own docstrings, differs between Python versions."""
    recorded = entry.get("result", {}).get("corpus", {}).get("sha256")
    try:
        here = _corpus_sha(config["corpus"])
    except (OSError, ValueError) as err:  # a user's corpus that is gone or unreadable
        return f"this machine cannot build corpus {config['corpus']!r} to check it ({err})"
    if recorded != here:
        return (f"it was trained on corpus {recorded}, and this machine's corpus {config['corpus']!r} is {here} "
                f"(Python {sys.version.split()[0]})")
    return None


@functools.lru_cache(maxsize=8)
def _corpus_sha(corpus: str) -> str:
    return load_corpus(corpus).sha256[:12]


def _scales() -> dict:
    common = dict(corpus="stdlib", eval_all=True, base_heads=2, d_head=32, layer_norm=False, clip=1.0, lr=3e-3, threads=None)
    return {
        # seconds: two tiny depths, one seed
        "ci": dict(common, depths=[1, 2], seeds=1, d_model=32, ffn_width=64, steps=40, batch_size=16,
                   length=32, eval_every=20, eval_windows=16, sample_chars=80, threads=1),
        # under a minute per model on two cores: three depths, three seeds
        "full": dict(common, depths=[1, 2, 3], seeds=3, d_model=64, ffn_width=128, steps=2000, batch_size=32,
                     length=64, eval_every=100, eval_windows=64, sample_chars=300),
        # longer training of the same models (the paper's ~1B tokens are out of a CPU's reach)
        "paper": dict(common, depths=[1, 2, 3], seeds=3, d_model=64, ffn_width=128, steps=5000, batch_size=64,
                      length=128, eval_every=250, eval_windows=128, sample_chars=300),
    }


register(Experiment(
    name="exp1a", title="Experiment 1a: depth against heads at matched parameter counts (character-level LM)",
    chapter="book/language.md",
    description="Validation loss (nats per character) of a depth ladder and of one-layer models with "
                "as many parameters, several seeds each.",
    scales=_scales(), runner=run_exp1a, stale=corpus_changed,
))
register(Experiment(
    name="exp3b", title="Experiment 3b: with and without the dot product (character-level LM)",
    chapter="book/language.md",
    description="Validation loss (nats per character) of the depth ladder with DP and DP-free, several seeds each.",
    scales=_scales(), runner=run_exp3b, split="depths", stale=corpus_changed,
))

__all__ = ["PAPER", "SAMPLE_TEMPERATURE", "architecture", "arms_1a", "arms_3b", "budget", "loss_drop",
           "matched_ffn_width", "matched_free_heads", "matched_heads", "matched_heads_wide_values", "seed_summary"]
