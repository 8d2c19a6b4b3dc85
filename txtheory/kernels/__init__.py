"""Memory kernels realised by groups of attention heads, and their exact l1 errors.

Explained in `book/kernels.md`, "Approximating memory kernels with attention heads".

A DP-free attention head with RPE rate p puts weight ∝ e^{-p s} on lag s >= 0 (lin-RPE)
or ∝ s^{-p} on lag s >= 1 (log-RPE). After the value matrix rescales each head, a group
of heads realises the kernel

    kind "lin":  phi(s) = sum_h alpha_h * exp(-beta_h * s),   s = 0, 1, 2, ...
    kind "log":  phi(s) = sum_h alpha_h * s**(-beta_h),       s = 1, 2, 3, ...

The kinds, their first lags and the encoding itself come from `txtheory.kinds`. The
package has one module per question:

- `shapes`: what a group is asked to fit, `Delta` (the memory kernel 1{s=T} of Theorem
  3.1), `ExpDecay`, `PowerDecay` and `Tabulated` (Theorem 5.1, and the Task III targets);
- `kernel`: `KernelFit`, the kernel a group realises, and `L1Error`;
- `l1`: `l1_error`, the l1 error on N (lin) or N+ (log), summed exactly up to a cutoff S,
  with the tail s > S computed exactly or bounded analytically; never silently truncated;
- `grids`: `grid_fit` and `lemma_f1/f3/f4/f6`, the best kernel on the paper's own rate
  grids (Lemmas F.1-F.6), solved in high precision with mpmath;
- `free`: `fit_free`, a least-squares fit with free rates, i.e. what training could find,
  `fit_points`, the same on arbitrary points (Task II's shifted and rescaled kernels),
  `fit_rates` for given rates, and `design_matrix`, the heads' kernels as columns;
- `recurrence`: H decaying exponentials satisfy a linear recurrence of order H, so an
  exact delta at lag T needs H >= T + 1 heads (`exact_delta_possible`), and with H <= T
  no coefficients beat the zero kernel in l1 (`l1_floor`) or a linear readout's floor in
  l2 (`l2_floor`, `linear_readout_floor`); T + 1 heads suffice in exact arithmetic
  (`sharp_delta`);
- `confusion`: for readouts that are not linear, inputs whose head outputs nearly agree
  while the memory differs (`confusable_pair`), and the Lipschitz bound they imply.
"""
from txtheory.kinds import KINDS
from txtheory.kernels.shapes import Delta, ExpDecay, KernelShape, PowerDecay, Tabulated, Target
from txtheory.kernels.kernel import KernelFit, L1Error
from txtheory.kernels.l1 import l1_error
from txtheory.kernels.grids import (
    grid_fit, grid_l1_lower_bound, lemma_bound, lemma_f1, lemma_f3, lemma_f4, lemma_f6,
)
from txtheory.kernels.free import design_matrix, fit_free, fit_points, fit_rates, geometric_rates, min_l1_error
from txtheory.kernels.confusion import ConfusablePair, confusable_pair
from txtheory.kernels.recurrence import (
    HeadThreshold, L1Floor, L2Floor, characteristic_coefficients, exact_delta_possible, head_threshold,
    l1_floor, l2_floor,
    linear_readout_floor, paper_constant_floor, sharp_delta, universal_l2_floor,
)

__all__ = [
    "KINDS", "Delta", "ExpDecay", "KernelShape", "PowerDecay", "Tabulated", "Target",
    "KernelFit", "L1Error", "l1_error",
    "grid_fit", "grid_l1_lower_bound", "lemma_bound", "lemma_f1", "lemma_f3", "lemma_f4", "lemma_f6",
    "design_matrix", "fit_free", "fit_points", "fit_rates", "geometric_rates", "min_l1_error",
    "HeadThreshold", "L1Floor", "L2Floor", "characteristic_coefficients", "head_threshold", "exact_delta_possible", "l1_floor",
    "l2_floor", "linear_readout_floor", "paper_constant_floor", "sharp_delta",
    "universal_l2_floor", "ConfusablePair", "confusable_pair",
]
