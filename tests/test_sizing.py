"""txtheory.sizing: the paper's rate, the book's models and the book's floors, side by side."""
import math

import numpy as np
import pytest

from txtheory import kernels, sizing


def test_fixed_lags_floor_below_construction_below_paper():
    s = sizing.size_fixed((8, 20), 1e-3)
    assert s.floor["heads"] <= s.book["heads"] <= s.paper["heads"]
    # the floor is the kernel chapter's: a lin group of T heads errs by 1 at lag T, T + 1 heads do not
    assert s.floor["heads"] == 21
    assert kernels.l1_floor(20, 20, "lin").bound >= 1
    assert kernels.head_threshold(20, "lin").any_accuracy == 21
    assert s.book["heads"] == 9 + 21  # T + 1 per memory
    # the paper's column puts in the proved floor of C(1): (C (e^0.08 + e^0.2))^2 / eps heads
    C1, _ = kernels.paper_constant_floor(1)
    assert s.paper["heads"] == math.ceil(C1 * (math.exp(0.08) + math.exp(0.2)) ** 2 / 1e-3)


def test_the_kernel_guide_uses_free_fits_and_says_where_the_theorem_is_silent():
    rho = kernels.PowerDecay(0.5)
    s = sizing.size_kernel(rho, 1e-3, window=1000)
    assert s.paper["heads"] == "outside the theorem"  # beta < 200/99 for log, and no exponential tail
    lin = sizing.fewest_heads(rho, "lin", 1000, 1e-3)
    fit = kernels.fit_free(rho, lin, "lin", window=1000, start=1)
    total = float(np.sum(rho.values(np.arange(1, 1001))))
    assert kernels.l1_error(fit, rho, S=1000, start=1).window / total <= 1e-3  # the fit meets eps ...
    fewer = kernels.fit_free(rho, lin - 1, "lin", window=1000, start=1)
    assert kernels.l1_error(fewer, rho, S=1000, start=1).window / total > 1e-3  # ... and one head less does not
    assert s.book["heads"] == 1  # one log head is exact for a pure power law
    light = sizing.size_kernel(kernels.ExpDecay(0.5), 1e-3, window=200)
    assert isinstance(light.paper["heads"], int) and "lin" in light.paper["note"]


def test_the_paper_column_puts_in_the_proved_floor_of_c_for_every_rate():
    C2, _ = kernels.paper_constant_floor(2)
    s = sizing.size_fixed((8, 20), 1e-3, n=2)
    assert s.paper["heads"] == math.ceil(math.sqrt(C2 * (math.exp(0.08) + math.exp(0.2)) ** 3 / 1e-3))
    far = sizing.size_fixed((9_000,), 1e-3)  # e^{90 (n + 1)}: past a float's range, reported as a power of 10
    assert far.paper["heads"].startswith("about 10^")


def test_a_chase_no_head_count_reaches_says_so():
    s = sizing.size_chase(7, 1e-12, max_heads=8)
    assert s.book["layers"] == "not reached" and s.book["heads"] == "> 8"


def test_the_chase_guide_is_certified_and_proves_no_floor():
    s = sizing.size_chase(3, 1e-3)
    assert s.book["layers"] == 2 < s.paper["layers"] == 4
    assert s.floor["layers"] is None and s.floor["heads"] is None
    assert ("the book's floor", "none proved", "none proved") == s.rows()[2][:3]


@pytest.mark.parametrize("call, match", [
    (lambda: sizing.size_fixed((8,), 0), "eps must be"),
    (lambda: sizing.size_fixed((8,), 1.5), "eps must be"),
    (lambda: sizing.size_fixed((8,), float("nan")), "eps must be"),
    (lambda: sizing.size_fixed((), 1e-3), "lags must be"),
    (lambda: sizing.size_fixed((8, 8), 1e-3), "distinct"),
    (lambda: sizing.size_fixed((0,), 1e-3), "lags"),
    (lambda: sizing.size_fixed((80_000,), 1e-3), "lags must be at most"),
    (lambda: sizing.size_fixed((8,), 1e-3, n=200), "n must be at most"),
    (lambda: sizing.size_chase(3, 1e-3, max_heads="x"), "max_heads"),
    (lambda: sizing.size_chase(3, 1e-3, max_heads=0), "max_heads"),
    (lambda: sizing.size_chase(0, 1e-3), "hops"),
    (lambda: sizing.size_chase(40, 1e-3), "hops must be at most"),
    (lambda: sizing.size_kernel("s^-1/2", 1e-3, window=100), "shape must be"),
    (lambda: sizing.size_kernel(kernels.PowerDecay(1.5), 1e-3, window=1), "window"),
])
def test_bad_specifications_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
