"""The proofs' weights: `model.Transformer` instances that realise the paper's constructions.

Explained in ``book/fixed-memory.md`` ("Task I: fixed, long but sparse memory"), which
builds Theorem 3.1's model, runs it, and sets its measured sup-norm error against the bound
the construction itself certifies, and in ``book/kernels.md`` ("Why kernels"), which builds
single head groups.

One module per theorem, plus what they share:

- ``heads``: head groups (``head_group``, ``impulse_response``), the split of heads over
  memories (``head_allocation``), and the kernel a group realises at a position, with a
  rigorous rounding allowance;
- ``one_layer``: ``Construction``, a one-layer DP-free model whose head groups write
  kernels into blocks, its certificate Lip · max_k e_k, and the builders Theorems 3.1
  and 5.1 share;
- ``fixed``: Theorem 3.1, ``fixed_memory_transformer``;
- ``lookups``: FFNs exact on a finite grid of tokens, and random-feature ones;
- ``adaptive``: Theorems 4.1, 4.4 and Propositions 4.3, 4.5, ``adaptive_transformer``;
- ``doubling``: ours, the K-hop pointer chase in ⌈log₂(K + 1)⌉ layers, ``pointer_doubling``;
- ``exact``: a model's forward pass in mpmath from its float64 weights (``exact_output``),
  the other side of every certificate check;
- ``witness``: Proposition 4.2, its DP construction and the affine floor
  (``book/adaptive-memory.md`` for all three).

- ``essential``: Theorem 5.1, ``essential_memory_transformer`` (``book/essential-memory.md``).
"""
from txtheory.construct.heads import (
    ALLOCATIONS, group_kernel_f64, group_kernel_mp, head_allocation, head_group, impulse_response,
    rates_to_raw, value_scales,
)
from txtheory.construct.exact import exact_output
from txtheory.construct.one_layer import Construction, kernel_errors, widen
from txtheory.construct.fixed import METHODS, FixedMemoryConstruction, fixed_memory_transformer
from txtheory.construct.essential import EssentialMemoryConstruction, essential_memory_transformer
from txtheory.construct.lookups import lookup_ffn, random_feature_ffn
from txtheory.construct.adaptive import AdaptiveConstruction, MemoryPlan, adaptive_transformer
from txtheory.construct.doubling import DoublingConstruction, doubling_depth, pointer_doubling
from txtheory.construct.witness import affine_filter, affine_sup_error, best_affine_error, witness_attention

__all__ = [
    "ALLOCATIONS", "METHODS", "Construction", "FixedMemoryConstruction", "fixed_memory_transformer",
    "group_kernel_f64", "group_kernel_mp", "head_allocation", "head_group", "impulse_response",
    "exact_output", "kernel_errors", "rates_to_raw", "value_scales", "widen",
    "AdaptiveConstruction", "MemoryPlan", "adaptive_transformer", "affine_filter", "affine_sup_error",
    "best_affine_error", "DoublingConstruction", "doubling_depth", "pointer_doubling", "EssentialMemoryConstruction", "essential_memory_transformer", "lookup_ffn", "random_feature_ffn", "witness_attention",
]
