"""Argument checks shared by every module: each raises a ValueError that names the
parameter and says what is allowed, so a bad input never surfaces as a NaN or as a
shape error from deep inside torch."""
from __future__ import annotations

import math
import operator
from typing import Any, Iterable


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise ValueError naming ``name`` and the range."""
    try:
        as_int = operator.index(value)  # ints, numpy integers, integer 0-d tensors
    except TypeError:
        as_int = None
    # bool is an int to Python but never a size; a float tensor has __index__ but may not be whole.
    if as_int is None or isinstance(value, bool) or bool(as_int != value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = as_int
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as a finite float > 0, or raise ValueError naming ``name``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return x


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ValueError listing them."""
    choices = tuple(choices)
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def check_rank(name: str, tensor: Any, rank: int, layout: str) -> None:
    """Raise ValueError unless ``tensor`` has ``rank`` dimensions (``layout`` names them)."""
    ndim = getattr(tensor, "ndim", None)
    if ndim != rank:
        shape = tuple(getattr(tensor, "shape", ()))
        raise ValueError(f"{name} must have shape {layout} ({rank} dimensions), got shape {shape}")


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (not merely equal to one), else raise ValueError."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_generator(name: str, value: Any) -> Any:
    """Return ``value`` if it is a torch.Generator or None, else raise ValueError."""
    import torch  # here, so that torch-free modules can use the other checks

    if value is not None and not isinstance(value, torch.Generator):
        raise ValueError(f"{name} must be a torch.Generator or None, got {type(value).__name__}")
    return value


def check_float_dtype(name: str, value: Any) -> Any:
    """Return ``value`` if it is a floating-point torch.dtype, else raise ValueError."""
    import torch

    if not (isinstance(value, torch.dtype) and value.is_floating_point):
        raise ValueError(f"{name} must be a floating-point torch.dtype, got {value!r}")
    return value


def check_positions(positions, length: int, device=None):
    """None, or the query positions as a (P,) long tensor of integers in [0, length), P >= 1."""
    import torch  # here, so that torch-free modules can use the other checks

    if positions is None:
        return None
    try:
        positions = torch.as_tensor(positions, device=device)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"positions must be a 1-D sequence of integers, got {type(positions).__name__}") from None
    if positions.ndim != 1:
        raise ValueError(f"positions must be 1-D (P,), got shape {tuple(positions.shape)}")
    if positions.numel() == 0:
        raise ValueError("positions must hold at least one position, got none")
    if positions.is_floating_point() or positions.is_complex() or positions.dtype == torch.bool:
        raise ValueError(f"positions must be integers, got dtype {positions.dtype}")
    positions = positions.to(torch.long)
    if positions.min() < 0 or positions.max() >= length:
        raise ValueError(f"positions must be integers in [0, {length}), got {positions.tolist()}")
    return positions
