"""Input samplers and the paper's three target families.

A target is a causal sequence-to-sequence map: it takes a batch ``x: (B, T, d)``
(position 0 the oldest token) and returns ``y: (B, T, c)``, where ``y_t`` depends on
``x_t, x_{t-1}, ...`` only. Tokens before position 0 do not exist; a target reads them
as zeros (zero padding). Every target exposes ``first_valid``, the first position whose
whole memory lies inside the window (t >= largest lag); errors are measured only at
t >= first_valid, and calling a target on a window with T <= first_valid raises. A
non-finite token raises; an empty batch gives an empty answer.

The book explains these objects in ``book/framework.md`` (the shared semantics: time,
padding, first_valid) and ``book/fixed-memory.md`` (Task I, ``FixedMemoryTarget``, paper
Sec. 3, and the paper's experiments 1b, 2a, 2b). Task II (paper Sec. 4,
``AdaptiveMemoryTarget``) is ``book/adaptive-memory.md``; Task III (Sec. 5,
``EssentialMemoryTarget``) gets its chapter later.

The package has one module per concept:

- ``samplers``: random tokens, {-1, 1}, {-1, 0, 1} or uniform;
- ``readouts``: the functions f a target applies to its memories, each describing its
  own exact FFN weights and Lipschitz constant for the constructions;
- ``families``: the three target families;
- ``adaptive``: Task II targets with chosen lags (``book/adaptive-memory.md``): the
  Boolean example, a K-step pointer chase, independent memories;
- ``paper``: the paper's examples and experiments as targets.

Choices made here (each also stated where it applies):

- Targets are ground truth, so they compute in float64 and return the input's dtype:
  a float32 target differs from the exact value only by its final rounding.
- Readouts and memory functions are callables on the *concatenated* tokens
  ``z: (..., n_in)``; the order is the order of the memories (``x_t`` first where the
  paper writes it first).
- The paper's experiments give absolute positions (x_48, x_56, x_99 in x_1..x_1000). We
  turn them into lags from a read position, chosen by ``read_at`` (see ``exp1b_target``).
- Task III's kernels are the objects of ``txtheory.kernels`` (``ExpDecay``,
  ``PowerDecay``), tabulated on the window: one definition of a decaying kernel.
"""
from txtheory.targets.samplers import sample_pm1, sample_ternary, sample_uniform
from txtheory.targets.readouts import (
    FFNWeights, LinearReadout, ProductReadout, Readout, ReLUReadout, random_relu_readout,
)
from txtheory.targets.families import AdaptiveMemoryTarget, EssentialMemoryTarget, FixedMemoryTarget
from txtheory.targets.adaptive import adaptive_boolean, independent_memories, pointer_chase
from txtheory.targets.paper import (
    PAPER_POSITIONS_1, PAPER_POSITIONS_3, adaptive_boolean_example, exp1b_target, exp2a_target,
    exp2b_target, exp4a_target, exp4b_target, prop42_witness,
)

__all__ = [
    "sample_pm1", "sample_ternary", "sample_uniform",
    "FFNWeights", "Readout", "ReLUReadout", "LinearReadout", "ProductReadout", "random_relu_readout",
    "FixedMemoryTarget", "AdaptiveMemoryTarget", "EssentialMemoryTarget",
    "adaptive_boolean_example", "prop42_witness",
    "adaptive_boolean", "independent_memories", "pointer_chase",
    "exp1b_target", "exp2a_target", "exp2b_target", "exp4a_target", "exp4b_target",
    "PAPER_POSITIONS_1", "PAPER_POSITIONS_3",
]
