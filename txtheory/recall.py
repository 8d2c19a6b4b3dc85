"""Two token-recall tasks from the sequence-model literature, generated on the CPU from
their published definitions: multi-query associative recall and selective copying.

Explained in ``book/suggestions.md`` ("The paper's suggestions, side by side"), where
they are the tasks nobody here designed.

* ``MQAR`` (Arora et al. 2023, "Zoology", the ``multiquery_ar`` generator): a sequence
  opens with ``n_pairs`` key-value pairs k_1 v_1 ... k_N v_N (keys distinct, from
  1..V/2-1; values distinct, from V/2..V-1); then each key is asked once more, at the
  even offsets 2g of the rest of the window, the gaps g drawn without replacement with
  probability proportional to (g + 1)^(a - 1), a = ``power_a``, so most queries come
  soon after the context. Every other position holds a random token of the whole
  vocabulary. The answer is due at the query key, as in Zoology (whose labels, shifted
  by one against its inputs, sit there too). Three deviations: Zoology asserts V > T
  (we keep V <= 64 at T = 64) and an even T (any T >= 4 n_pairs works here), and it
  trains on a fixed set of sequences where we draw fresh ones at every step.
* ``SelectiveCopying`` (Gu and Dao 2023, "Mamba", sec. 3.1; the ``torch_copying_data``
  generator of the S4 code with ``variable=True``): ``n_tokens`` data tokens from
  1..V-2 at random, sorted positions among the first T - n_tokens (the other
  T - 2 n_tokens of them blank, 0), then ``n_tokens`` markers (V - 1); at the j-th
  marker the answer is the j-th data token. Fresh sequences at every step.

Both return ``(x, y)``: token ids (B, T) and answers (B, T), with ``IGNORE`` (-1) where
nothing is asked; ``query_positions`` says where the answers are due.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._checks import check_int

IGNORE = -1  # the answer at a position where nothing is asked


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


@dataclass(frozen=True)
class MQAR:
    """Multi-query associative recall (Zoology's ``multiquery_ar``), see the module docstring."""

    vocab_size: int = 64
    length: int = 64
    n_pairs: int = 8
    power_a: float = 0.01

    def __post_init__(self):
        V = check_int("vocab_size", self.vocab_size, minimum=4)
        T = check_int("length", self.length, minimum=4)
        N = check_int("n_pairs", self.n_pairs, minimum=1)
        if N > V // 2 - 1:
            raise ValueError(f"vocab_size = {V} holds {V // 2 - 1} distinct keys (1..{V // 2 - 1}), "
                             f"too few for n_pairs = {N}; use vocab_size >= {2 * N + 2}")
        if 4 * N > T:
            raise ValueError(f"length = {T} is too short for {N} pairs and their {N} queries "
                             f"(Zoology's rule: 4 n_pairs <= length); use length >= {4 * N}")
        a = float(self.power_a)
        if not 0 < a <= 1:
            raise ValueError(f"power_a must lie in (0, 1], got {self.power_a!r}")

    @property
    def n_classes(self) -> int:
        return self.vocab_size

    @property
    def label(self) -> str:
        return f"MQAR, {self.n_pairs} pairs, V = {self.vocab_size}, T = {self.length}"

    def sample(self, batch: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch`` sequences: ids (B, T) and answers (B, T), IGNORE where nothing is asked."""
        B = check_int("batch", batch, minimum=1)
        _check_generator(generator)
        V, T, N = self.vocab_size, self.length, self.n_pairs
        half = V // 2
        keys = torch.rand(B, half - 1, generator=generator).argsort(-1)[:, :N] + 1  # (B, N) in 1..half-1
        values = torch.rand(B, V - half, generator=generator).argsort(-1)[:, :N] + half  # (B, N)
        x = torch.randint(V, (B, T), generator=generator)  # noise everywhere, then the task
        x[:, 0:2 * N:2], x[:, 1:2 * N:2] = keys, values
        space = (T - 2 * N) // 2  # query slots at offsets 0, 2, 4, ... after the context
        g = torch.arange(1, space + 1, dtype=torch.float64)
        p = (self.power_a * g ** (self.power_a - 1)).expand(B, space)
        gaps = torch.multinomial(p, N, replacement=False, generator=generator)  # (B, N)
        where = 2 * N + 2 * gaps  # (B, N) query positions
        y = torch.full((B, T), IGNORE, dtype=torch.long)
        x.scatter_(1, where, keys)
        y.scatter_(1, where, values)
        return x, y


@dataclass(frozen=True)
class SelectiveCopying:
    """Selective copying (Gu and Dao 2023), see the module docstring."""

    vocab_size: int = 16
    length: int = 64
    n_tokens: int = 8

    def __post_init__(self):
        V = check_int("vocab_size", self.vocab_size, minimum=3)  # blank, marker, >= 1 data token
        T = check_int("length", self.length, minimum=2)
        M = check_int("n_tokens", self.n_tokens, minimum=1)
        if 2 * M > T:
            raise ValueError(f"length = {T} is too short for {M} data tokens and their {M} markers; "
                             f"use length >= {2 * M}")

    @property
    def n_classes(self) -> int:
        return self.vocab_size

    @property
    def label(self) -> str:
        return f"selective copying, {self.n_tokens} tokens, V = {self.vocab_size}, T = {self.length}"

    def sample(self, batch: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch`` sequences: ids (B, T) and answers (B, T), IGNORE where nothing is asked."""
        B = check_int("batch", batch, minimum=1)
        _check_generator(generator)
        V, T, M = self.vocab_size, self.length, self.n_tokens
        tokens = torch.randint(1, V - 1, (B, M), generator=generator)  # (B, M) in 1..V-2
        slots = torch.rand(B, T - M, generator=generator).argsort(-1)[:, :M].sort(-1).values  # (B, M)
        x = torch.zeros(B, T, dtype=torch.long)
        x.scatter_(1, slots, tokens)
        x[:, T - M:] = V - 1  # the markers
        y = torch.full((B, T), IGNORE, dtype=torch.long)
        y[:, T - M:] = tokens
        return x, y


TASKS = (MQAR, SelectiveCopying)


def query_positions(y: torch.Tensor) -> torch.Tensor:
    """Where answers are due: a boolean mask (B, T) of y != IGNORE."""
    return y != IGNORE
