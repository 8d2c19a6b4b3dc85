"""The paper's own targets: its examples of Task II and its synthetic experiments (App. H.2).

Part of ``txtheory.targets`` (``book/fixed-memory.md`` for experiments 1b, 2a, 2b, 3a).
The paper gives absolute positions (x_48, x_56, x_99 in x_1..x_1000); we turn them into
lags from a read position, chosen by ``read_at`` (see ``exp1b_target``).
"""
from __future__ import annotations

from typing import Any

import torch

from txtheory._checks import check_choice, check_int
from txtheory.kernels.shapes import ExpDecay, PowerDecay
from txtheory.targets.families import AdaptiveMemoryTarget, EssentialMemoryTarget, FixedMemoryTarget
from txtheory.targets.adaptive import adaptive_boolean
from txtheory.targets.readouts import LinearReadout, random_relu_readout

Tensor = torch.Tensor

# The paper's memory positions in experiments 1b, 2a, 2b (1-indexed, in x_1..x_1000).
PAPER_POSITIONS_3 = (48, 56, 99)
PAPER_POSITIONS_1 = (99,)


def adaptive_boolean_example() -> AdaptiveMemoryTarget:
    """Paper Sec. 4, example (I): y_t = x_t x_{t-g(x_t)} x_{t-g(x_{t-g(x_t)})}, K = M = 2.

    X in {+-1}, g(1) = 1, g(-1) = 2. t_1 = g(x_t); t_2 = g(x_{t-t_1}) (measured from t).
    For the zero tokens before position 0 we set g(0) = 2; first_valid = 2. The same
    target with other lags is ``targets.adaptive_boolean``.
    """
    target = adaptive_boolean((1, 2))
    target.label = "adaptive sparse Boolean (paper Sec. 4, example I)"
    return target


def prop42_witness() -> AdaptiveMemoryTarget:
    """Prop 4.2's witness: X in {-1, 0, 1}, y_t = x_{t-g(x_t)}, g(-1)=0, g(0)=1, g(1)=2.

    g(v) = v + 1 on the ternary set; readout picks the extracted token, f(x_t, x_{t-t_1})
    = x_{t-t_1}. first_valid = 2. Non-ternary inputs give non-integer lags and raise.
    """
    return AdaptiveMemoryTarget(
        memory_functions=[lambda u: u[..., 0] + 1], n_nested=0,
        readout=LinearReadout([0.0, 1.0]), max_lags=(2,),
        label="Prop 4.2 witness")



def _paper_lags(positions: tuple[int, ...], length: Any, read_at: Any) -> tuple[tuple[int, ...], int, int]:
    """Lags from a read position to the paper's 1-indexed absolute ``positions``.

    Returns (lags, read position 0-indexed, checked length). 1-indexed position p is
    0-indexed p-1; reading at 0-indexed r gives lag r - (p-1).
    """
    length = check_int("length", length, minimum=max(positions))
    read_at = check_choice("read_at", read_at, ("end", "last_memory"))
    r = length - 1 if read_at == "end" else max(positions) - 1  # 0-indexed read position
    return tuple(r - (p - 1) for p in positions), r, length


def exp1b_target(length: int = 1000, *, generator: torch.Generator | None = None,
                 read_at: str = "end") -> FixedMemoryTarget:
    """Experiment 1b (also 3a): f*(x) = g*(x_48, x_56, x_99), g*(z) = sum_{k<=64} ReLU(<w_k, z>).

    w_k ~ N(0, I_3) drawn (float64) from ``generator``. The paper's positions are
    absolute (1-indexed, x_1..x_length) with a scalar output; we read it as a sequence
    target with fixed lags from a read position r (0-indexed):

    - ``read_at="end"``: r = length-1, lags (length-48, length-56, length-99)
      = (952, 944, 901) for length 1000; first_valid = length-48.
    - ``read_at="last_memory"``: r = 98 (x_99 is the current token), lags (51, 43, 0).

    ``length`` must be >= 99 so that x_99 exists. y_t = g*(x_{t-lag_1}, ...) at every t;
    ``read_position`` = r is where the paper's f*(x) sits in a window of ``length``.
    """
    lags, r, _ = _paper_lags(PAPER_POSITIONS_3, length, read_at)
    return FixedMemoryTarget(lags, random_relu_readout(3, 64, generator), read_position=r,
                             label=f"exp1b g*(x_48, x_56, x_99), read at {r} ({read_at})")


def exp2a_target(length: int = 1000, *, generator: torch.Generator | None = None,
                 read_at: str = "end") -> FixedMemoryTarget:
    """Experiment 2a: f*(x) = g*(x_99) = sum_{k<=64} ReLU(w_k x_99), w_k ~ N(0, 1).

    Same read convention as ``exp1b_target``: lag length-99 ("end") or 0 ("last_memory").
    """
    lags, r, _ = _paper_lags(PAPER_POSITIONS_1, length, read_at)
    return FixedMemoryTarget(lags, random_relu_readout(1, 64, generator), read_position=r,
                             label=f"exp2a g*(x_99), read at {r} ({read_at})")


def exp2b_target(length: int = 1000, *, generator: torch.Generator | None = None,
                 read_at: str = "end") -> FixedMemoryTarget:
    """Experiment 2b: f*(x) = x_48 + x_56 + x_99 (LinearReadout of ones).

    Same read convention as ``exp1b_target``. ``generator`` is unused (no randomness);
    it is accepted so every experiment constructor has the same signature.
    """
    lags, r, _ = _paper_lags(PAPER_POSITIONS_3, length, read_at)
    return FixedMemoryTarget(lags, LinearReadout([1.0, 1.0, 1.0]), read_position=r,
                             label=f"exp2b x_48 + x_56 + x_99, read at {r} ({read_at})")


def exp4a_target(length: int = 1000, *, generator: torch.Generator | None = None,
                 read_at: str = "end") -> EssentialMemoryTarget:
    """Experiment 4a: y_t = sum_{s=0}^{length-1} x_{t-s} rho(s), rho(s) = s^(-1/2).

    The paper's f*(x) = sum_{s=1}^{1000} x_s rho(1000-s) includes rho(0) = 0^(-1/2),
    which is undefined; we set rho(0) = 0 (``kernels.PowerDecay.tabulate``), which is also what a
    log-RPE head realises. Read at the end: first_valid = read_position = length-1.
    Only ``read_at="end"`` is defined; ``generator`` is unused. length >= 2.
    """
    length = check_int("length", length, minimum=2)
    check_choice("read_at", read_at, ("end",))
    return EssentialMemoryTarget([PowerDecay(0.5).tabulate(length)], LinearReadout([1.0]),
                                 read_position=length - 1, label="exp4a rho(s) = s^(-0.5), rho(0) = 0")


def exp4b_target(length: int = 1000, *, generator: torch.Generator | None = None,
                 read_at: str = "end") -> EssentialMemoryTarget:
    """Experiment 4b: y_t = sum_{s=0}^{length-1} x_{t-s} exp(-5 s) (light tail).

    Support = length, so first_valid = read_position = length-1 (exp(-5 s) < 1e-16
    beyond s = 8, so earlier positions agree to rounding, but we keep the paper's sum).
    Only ``read_at="end"`` is defined; ``generator`` is unused. length >= 1.
    """
    length = check_int("length", length, minimum=1)
    check_choice("read_at", read_at, ("end",))
    return EssentialMemoryTarget([ExpDecay(5.0).tabulate(length)], LinearReadout([1.0]),
                                 read_position=length - 1, label="exp4b rho(s) = exp(-5 s)")

