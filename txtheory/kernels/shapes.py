"""The kernels a head group is asked to fit: the delta 1{s=T} of Task I, the decaying
kernels e^{-beta s} and s^{-beta} of Task III, and any tabulated kernel.

Part of ``txtheory.kernels`` (``book/kernels.md``). The same objects define the targets of
Task III: ``table(support)`` gives rho(0..support-1) for ``targets.EssentialMemoryTarget``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from txtheory import kinds
from txtheory._checks import check_int, check_positive


def _mpf(x: Any) -> mpmath.mpf:
    """Exact decimal reading of a float (0.01 means 1/100, not its binary neighbour)."""
    if isinstance(x, float):
        return mpmath.mpf(repr(x))
    return mpmath.mpf(x)


class KernelShape:
    """What every target kernel offers: rho(s) for s >= ``start`` (``values``, ``value_mp``),
    the l1 mass of its tail beyond a cutoff (``tail``), and ``tabulate``."""

    start = 0  # rho is defined for s >= start

    def tabulate(self, support: int) -> np.ndarray:
        """rho(0), ..., rho(support - 1) as float64, with 0 below ``start`` (a lag where
        rho is undefined: s^-beta at s = 0). This is the kernel a Task III target convolves
        with (``targets.EssentialMemoryTarget``)."""
        support = check_int("support", support, minimum=1)
        s = np.arange(support)
        out = np.zeros(support)
        on = s >= self.start
        out[on] = self.values(s[on])
        return out


@dataclass(frozen=True)
class Delta(KernelShape):
    """The memory kernel rho(s) = 1{s = T} that extracts the token at lag T."""

    T: int

    def __post_init__(self):
        object.__setattr__(self, "T", check_int("T", self.T, minimum=0))

    start = 0

    def values(self, s: np.ndarray) -> np.ndarray:
        return (np.asarray(s) == self.T).astype(np.float64)

    def value_mp(self, s: int) -> mpmath.mpf:
        return mpmath.mpf(1) if s == self.T else mpmath.mpf(0)

    def tail(self, S: int) -> float:
        """sum_{s>S} |rho(s)|, exactly."""
        return 1.0 if self.T > S else 0.0

    def default_S(self) -> int:
        return self.T


@dataclass(frozen=True)
class ExpDecay(KernelShape):
    """rho(s) = exp(-beta s) on s >= 0: a light-tailed kernel (Theorem 5.1 A)."""

    beta: float

    def __post_init__(self):
        object.__setattr__(self, "beta", check_positive("beta", self.beta))

    start = 0

    def values(self, s: np.ndarray) -> np.ndarray:
        return np.exp(-self.beta * np.asarray(s, dtype=np.float64))

    def value_mp(self, s: int) -> mpmath.mpf:
        return mpmath.exp(-_mpf(self.beta) * s)

    def tail(self, S: int) -> float:
        b = self.beta
        return math.exp(-b * (S + 1)) / -math.expm1(-b)

    def default_S(self) -> int:
        # the target's own tail is then below 1e-15
        return max(1, math.ceil((35.0 - math.log(-math.expm1(-self.beta))) / self.beta))


@dataclass(frozen=True)
class PowerDecay(KernelShape):
    """rho(s) = s^(-beta) on s >= 1: a heavy-tailed kernel (Theorem 5.1 B).

    It is undefined at s = 0, so a lin-kind fit to it must say `start=1`. For beta <= 1
    it is not in l1: only errors on a finite window are finite.
    """

    beta: float

    def __post_init__(self):
        object.__setattr__(self, "beta", check_positive("beta", self.beta))

    start = 1

    def values(self, s: np.ndarray) -> np.ndarray:
        return np.asarray(s, dtype=np.float64) ** (-self.beta)

    def value_mp(self, s: int) -> mpmath.mpf:
        return mpmath.mpf(s) ** (-_mpf(self.beta))

    def tail(self, S: int) -> float:
        if self.beta <= 1:
            return math.inf
        return float(mpmath.zeta(_mpf(self.beta), S + 1))  # Hurwitz zeta: exact

    def default_S(self) -> int:
        return 1000


@dataclass(frozen=True)
class Tabulated(KernelShape):
    """rho(s) = values[s - start] on start <= s < start + len(values), zero elsewhere."""

    table: tuple
    start: int = 0

    def __post_init__(self):
        object.__setattr__(self, "start", check_int("start", self.start, minimum=0))
        table = tuple(float(v) for v in np.asarray(self.table, dtype=np.float64).ravel())
        if not table or not all(math.isfinite(v) for v in table):
            raise ValueError("table must be a non-empty sequence of finite numbers")
        object.__setattr__(self, "table", table)

    @property
    def end(self) -> int:
        return self.start + len(self.table) - 1

    def values(self, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s)
        inside = (s >= self.start) & (s <= self.end)
        out = np.zeros(s.shape)
        out[inside] = np.asarray(self.table)[s[inside] - self.start]
        return out

    def value_mp(self, s: int) -> mpmath.mpf:
        return _mpf(self.table[s - self.start]) if self.start <= s <= self.end else mpmath.mpf(0)

    def tail(self, S: int) -> float:
        return float(sum(abs(v) for v in self.table[max(0, S + 1 - self.start):]))

    def default_S(self) -> int:
        return self.end


Target = KernelShape  # a Delta, ExpDecay, PowerDecay or Tabulated kernel


def _check_target(target: Any) -> Target:
    if not isinstance(target, KernelShape):
        raise ValueError(
            f"target must be a Delta, ExpDecay, PowerDecay or Tabulated kernel, got {target!r}"
        )
    return target


def _lag_start(kind: str, target: Target, start: int | None) -> int:
    """First lag of the error sum: the kind's own domain, unless the caller narrows it."""
    s0 = kinds.FIRST_LAG[kind] if start is None else check_int("start", start, minimum=kinds.FIRST_LAG[kind])
    if isinstance(target, PowerDecay) and s0 < 1:
        raise ValueError("start must be >= 1 for a PowerDecay target (s^-beta is undefined at 0)")
    if isinstance(target, Delta) and target.T < s0:
        raise ValueError(
            f"T={target.T} lies outside the lags s >= {s0} that a {kind!r} kernel covers"
        )
    return s0

