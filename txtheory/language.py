"""Character-level language models from the book's own Transformer: training on a corpus,
validation loss in nats per character, and sampling.

Explained in ``book/language.md`` ("Language models"), section "The models".

    c = load_corpus()
    model = build_model(lm_config(c.vocab_size, n_layers=2, n_heads=4), seed=0)
    result = train_lm(model, c, LMTrainConfig(steps=500))
    result.valid_loss                          # nats per character on held-out text
    generate(model, c, "The ", 200)            # a sample

The model is ``model.Transformer`` with d_in = d_out = the vocabulary: token ids go in
(one-hot tokens, so the embedding is a lookup) and the readout gives next-character
logits at every position. Training is AdamW on the cross-entropy of every position of
random windows of the training text, with the gradient norm clipped (``clip``).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch
from tqdm import tqdm

from ._checks import check_choice, check_int, check_positive
from .corpus import Corpus
from .model import Transformer, TransformerConfig
from .train import DEVICES, SCHEDULES, adamw, default_device, lr_at, pick_device, probed_steps, record_probe, torch_threads

EVAL_SEED = 10**6  # the evaluation windows never coincide with a training seed's batches


def lm_config(vocab_size: int, *, d_model: int = 64, n_layers: int = 2, n_heads: int = 4, d_head: int = 16,
              ffn_width: int = 256, score: str = "dp", rpe: str = "lin", layer_norm: bool = False,
              d_value: int | None = None, **extra) -> TransformerConfig:
    """A character-level model of the paper's class: vocabulary in and out, softmax attention,
    per-head query and key width ``d_head`` and value width ``d_value`` (``d_head`` unless
    given), so every head adds parameters. The heads are summed before the shared W_O (the
    paper's eq. 2), so with ``d_value < d_model`` they all write into one d_value-dimensional
    subspace; ``d_value=d_model`` lifts that limit."""
    vocab_size = check_int("vocab_size", vocab_size, minimum=2)
    d_head = check_int("d_head", d_head, minimum=1)
    d_value = d_head if d_value is None else check_int("d_value", d_value, minimum=1)
    return TransformerConfig(d_in=vocab_size, d_out=vocab_size, d_model=d_model, n_layers=n_layers,
                             n_heads=n_heads, ffn_width=ffn_width, score=score, rpe=rpe, normalized=True,
                             d_qk=d_head, d_value=d_value, layer_norm=layer_norm, **extra)


@dataclass
class LMTrainConfig:
    """How a language model is trained and evaluated."""

    steps: int = 500  # AdamW steps
    batch_size: int = 32  # windows per step
    length: int = 128  # characters per window (the model predicts each next one)
    lr: float = 3e-3  # peak learning rate
    weight_decay: float = 0.01
    schedule: str = "cosine"  # "constant" | "cosine" (to lr/100)
    clip: float | None = 1.0  # gradient-norm clipping (None: none)
    seed: int = 0  # fixes the training windows
    eval_every: int = 100  # steps between two points of the learning curves
    eval_windows: int = 64  # windows of each part the losses are averaged over
    eval_all: bool = False  # also the loss on every validation character (lm_loss_all), at the end
    progress: bool = True
    threads: int | None = None
    device: str = field(default_factory=default_device)  # "cpu" | "cuda" | "auto"

    def __post_init__(self):
        self.steps = check_int("steps", self.steps, minimum=1)
        self.batch_size = check_int("batch_size", self.batch_size, minimum=1)
        self.length = check_int("length", self.length, minimum=2)
        check_choice("device", self.device, DEVICES)
        self.lr = check_positive("lr", self.lr)
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        check_choice("schedule", self.schedule, SCHEDULES)
        if self.clip is not None:
            self.clip = check_positive("clip", self.clip)
        self.seed = check_int("seed", self.seed, minimum=0)
        self.eval_every = check_int("eval_every", self.eval_every, minimum=1)
        self.eval_windows = check_int("eval_windows", self.eval_windows, minimum=1)
        if not isinstance(self.eval_all, bool):
            raise ValueError(f"eval_all must be True or False, got {self.eval_all!r}")
        if self.threads is not None:
            self.threads = check_int("threads", self.threads, minimum=1)


@dataclass
class LMResult:
    """Per-step training losses, the learning curves, the final losses (nats per character)."""

    losses: list[float]  # training loss of each step's batch
    curve: dict  # {"step": [...], "train": [...], "valid": [...]} on fixed evaluation windows
    train_loss: float  # final, on fixed windows of the training text
    valid_loss: float  # final, on fixed windows of the validation text
    seconds: float
    config: dict = field(default_factory=dict)
    valid_loss_all: float | None = None  # on every validation character (config.eval_all), else None

    def to_dict(self) -> dict:
        return asdict(self)


def windows(ids: torch.Tensor, length: int, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random windows of ``ids``: inputs (n, length) and next characters (n, length)."""
    if ids.numel() < length + 1:
        raise ValueError(f"the text has {ids.numel()} characters; a window needs length + 1 = {length + 1}")
    start = torch.randint(0, ids.numel() - length, (n,), generator=generator)
    index = start[:, None] + torch.arange(length + 1)  # (n, length + 1)
    chunk = ids[index]
    return chunk[:, :-1], chunk[:, 1:]


def _check_model(model, corpus: Corpus) -> None:
    if not isinstance(model, Transformer):
        raise ValueError(f"model must be a txtheory.model.Transformer, got {type(model).__name__}")
    if not isinstance(corpus, Corpus):
        raise ValueError(f"corpus must be a txtheory.corpus.Corpus (load_corpus()), got {type(corpus).__name__}")
    c = model.config
    if c.d_in != corpus.vocab_size or c.d_out != corpus.vocab_size:
        raise ValueError(f"the model's d_in and d_out ({c.d_in}, {c.d_out}) must both equal the corpus's "
                         f"vocabulary size {corpus.vocab_size}; build it with lm_config(corpus.vocab_size)")


def _cross_entropy(model: Transformer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    device = model.embed.weight.device
    x, y = x.to(device), y.to(device)
    logits = model(x)  # (B, T, V)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))


@torch.no_grad()
def lm_loss(model: Transformer, ids: torch.Tensor, length: int, n_windows: int, seed: int = EVAL_SEED,
            batch_size: int = 32) -> float:
    """Mean cross-entropy (nats per character) over ``n_windows`` fixed random windows of
    ``ids``, every position counted."""
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, n_windows, batch_size):
        b = min(batch_size, n_windows - start)
        x, y = windows(ids, length, b, generator)
        total += _cross_entropy(model, x, y).item() * y.numel()
        count += y.numel()
    model.train(was_training)
    return total / count


@torch.no_grad()
def lm_loss_all(model: Transformer, ids: torch.Tensor, length: int, batch_size: int = 64) -> float:
    """Mean cross-entropy (nats per character) over every character of ``ids`` but the first,
    each predicted once: ``ids`` is cut into consecutive windows of ``length`` characters
    (the last one shorter), so a character's context is what precedes it in its window.
    Unlike ``lm_loss``, no part of the text is left out or counted twice."""
    length = check_int("length", length, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if ids.numel() < 2:
        raise ValueError(f"ids must hold at least 2 characters, got {ids.numel()}")
    was_training = model.training
    model.eval()
    n_full = (ids.numel() - 1) // length
    x_all = ids[:n_full * length].reshape(n_full, length)
    y_all = ids[1:n_full * length + 1].reshape(n_full, length)
    total = 0.0
    for start in range(0, n_full, batch_size):
        x, y = x_all[start:start + batch_size], y_all[start:start + batch_size]
        total += _cross_entropy(model, x, y).item() * y.numel()
    tail = ids.numel() - 1 - n_full * length
    if tail:
        x, y = ids[n_full * length:-1][None], ids[n_full * length + 1:][None]
        total += _cross_entropy(model, x, y).item() * y.numel()
    model.train(was_training)
    return total / (ids.numel() - 1)


def train_lm(model: Transformer, corpus: Corpus, config: LMTrainConfig | None = None) -> LMResult:
    """Train ``model`` on the corpus's training text and measure both of its parts."""
    config = config if config is not None else LMTrainConfig()
    if not isinstance(config, LMTrainConfig):
        raise ValueError(f"config must be an LMTrainConfig, got {type(config).__name__}")
    _check_model(model, corpus)
    train_ids, valid_ids = corpus.train_ids, corpus.valid_ids
    for part, ids in (("train", train_ids), ("valid", valid_ids)):
        if ids.numel() < config.length + 1:
            raise ValueError(f"the corpus's {part} part has {ids.numel()} characters, fewer than "
                             f"length + 1 = {config.length + 1}; use a shorter length")
    model.to(pick_device(config.device))
    optimizer = adamw(model, config.lr, config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)  # on the CPU: the same windows anywhere
    losses, curve = [], {"step": [], "train": [], "valid": []}

    def measure(step):
        curve["step"].append(step)
        for part, ids in (("train", train_ids), ("valid", valid_ids)):
            curve[part].append(lm_loss(model, ids, config.length, config.eval_windows))

    steps = probed_steps(config.steps)  # config.steps, or a few inside train.probe
    step_seconds = []
    start = time.perf_counter()
    with torch_threads(config.threads):
        model.train()
        bar = tqdm(range(steps), disable=not config.progress, desc="train", leave=False)
        for step in bar:
            step_start = time.perf_counter()
            if step % config.eval_every == 0 and steps == config.steps:
                measure(step)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, config)
            x, y = windows(train_ids, config.length, config.batch_size, generator)
            loss = _cross_entropy(model, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"the training loss became {value} at step {step}; lower the "
                                         f"learning rate (lr={config.lr}) or turn on layer_norm")
            losses.append(value)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{value:.3f}")
            step_seconds.append(time.perf_counter() - step_start)
        bar.close()
        if record_probe(model, config.steps, step_seconds):
            nan = float("nan")
            return LMResult(losses=losses, curve=curve, train_loss=nan, valid_loss=nan, seconds=nan,
                            config=asdict(config))
        measure(config.steps)
        seconds = time.perf_counter() - start  # training and its curves, not the final full pass
        valid_all = lm_loss_all(model, valid_ids, config.length) if config.eval_all else None
    return LMResult(losses=losses, curve=curve, train_loss=curve["train"][-1], valid_loss=curve["valid"][-1],
                    seconds=seconds, config=asdict(config), valid_loss_all=valid_all)


@torch.no_grad()
def generate(model: Transformer, corpus: Corpus, prompt: str, n_chars: int, *, temperature: float = 0.8,
             seed: int = 0, context: int = 128) -> str:
    """``prompt`` continued by ``n_chars`` sampled characters (the last ``context`` as input)."""
    _check_model(model, corpus)
    n_chars = check_int("n_chars", n_chars, minimum=0)
    temperature = check_positive("temperature", temperature)
    context = check_int("context", context, minimum=1)
    if not prompt:
        raise ValueError("prompt must hold at least one character")
    ids = corpus.encode(prompt).tolist()
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    for _ in range(n_chars):
        x = torch.tensor([ids[-context:]], device=model.embed.weight.device)  # (1, T)
        logits = model(x, positions=[x.shape[1] - 1])[0, -1].double()  # (V,)
        probs = torch.softmax(logits / temperature, dim=-1)
        ids.append(int(torch.multinomial(probs, 1, generator=generator)))
    model.train(was_training)
    return corpus.decode(ids)
