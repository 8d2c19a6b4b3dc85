"""The two relative positional encodings of the paper, lin and log: their names, the first
lag each can attend to, and the encoding φ itself. The one definition that ``rpe``,
``attention``, ``kernels``, ``rates`` and ``construct`` all use; it needs no torch.

Explained in ``book/framework.md`` ("Sequence modelling with Transformers"), section
"The hypothesis class" (the paper's eq. 4):

* ``lin``: φ(s) = -s      for s >= 0, so a head weighs lag s by e^{-p s};
* ``log``: φ(s) = -log s  for s >= 1, so a head weighs lag s by s^{-p}.

An attention layer also accepts one encoding the paper does not study, for the readings
the book tests (``book/fixed-memory.md``):

* ``log1p``: φ(s) = -log(1 + s) for s >= 0, a log encoding that sees the current token
  (KERPLE's logarithmic bias with r_2 = 1), weighing lag s by (1 + s)^{-p}.

The theorems, kernel fits and constructions cover ``KINDS`` only; ``ENCODINGS`` is what
``attention`` and ``model`` accept.

Below the first admissible lag φ is -∞: that is the causal mask, and for log it also
means a log head never sees the current token (lag 0). :func:`phi` evaluates φ on the
support only, in the arithmetic of its argument (numpy, torch or mpmath), so every module
computes the same numbers with the same library it used before; masking is the caller's
job (``rpe.log_weights``).
"""
from __future__ import annotations

from typing import Any

import mpmath
import numpy as np

from ._checks import check_choice

KINDS = ("lin", "log")  # the paper's two
ENCODINGS = KINDS + ("log1p",)  # what an attention layer accepts
FIRST_LAG = {"lin": 0, "log": 1, "log1p": 0}  # the smallest lag s a head of this kind attends to


def check_kind(kind: Any, name: str = "kind", allowed: tuple[str, ...] = KINDS) -> str:
    """Return ``kind`` if it is one of ``allowed`` (the paper's "lin" and "log" unless
    told otherwise), else raise ValueError naming ``name``."""
    return check_choice(name, kind, allowed)


def phi(s: Any, kind: str) -> Any:
    """The paper's φ_kind(s) on its support: -s (lin), -log s (log) or -log(1 + s) (log1p).

    ``s`` is a number or an array of lags >= ``FIRST_LAG[kind]`` (a float numpy array,
    a torch tensor, or an mpmath number); the logarithm is the one of ``s``'s own library
    (``torch.log`` for a tensor, ``mpmath.log`` for an mpf, ``numpy.log`` otherwise).
    Lags off the support are not checked here, for speed: log(0) is -inf, not an error.
    """
    check_kind(kind, allowed=ENCODINGS)
    if kind == "lin":
        return -s
    shift = kind == "log1p"
    if isinstance(s, (mpmath.mpf, mpmath.mpc)):
        return -(mpmath.log1p(s) if shift else mpmath.log(s))
    if hasattr(s, "log") and callable(s.log):  # a torch tensor, without importing torch
        return -(s.log1p() if shift else s.log())
    return -(np.log1p(s) if shift else np.log(s))
