"""Tests of txtheory.rates: the SymPy rates reduce to the paper's forms, the derived head
allocation is the paper's, and the fit/slope helpers check bounds honestly."""
import math

import numpy as np
import pytest
import sympy as sp

from txtheory import rates as R
from txtheory.rates import C, H, T, eps, n


def same(a, b) -> bool:
    return sp.simplify(sp.powsimp(a - b, force=True)) == 0


@pytest.mark.parametrize("kind", ["lin", "log"])
def test_thm31_reduces_to_the_paper(kind):
    T1, T2, T3 = sp.symbols("T_1:4", positive=True)
    w = (lambda t: sp.exp(t / 100)) if kind == "lin" else (lambda t: t ** sp.Rational(101, 100))
    expected = C / H**n * (w(T1) + w(T2) + w(T3)) ** (n + 1)
    assert same(R.thm31_attention_error(kind, 3), expected)
    # exact rationals, never floats
    assert not R.thm31_attention_error(kind, 3).atoms(sp.Float)


def test_thm31_numbers():
    got = R.thm31_attention_error_at("lin", [100, 200], H_=10, n_=2, C_=3.0)
    assert got == pytest.approx(3.0 / 100 * (math.e + math.e**2) ** 3)
    got = R.thm31_attention_error_at("log", [10], H_=4, n_=1)
    assert got == pytest.approx(10 ** 2.02 / 4)


@pytest.mark.parametrize("kind", ["lin", "log"])
def test_derived_allocation_is_the_papers_and_gives_thm31(kind):
    derived = R.derive_allocation(kind, 3)
    paper = R.optimal_allocation(kind, 3)
    assert all(same(a, b) for a, b in zip(derived["allocation"], paper))
    assert same(sp.Add(*derived["allocation"]), H)  # the heads add up to H
    assert same(derived["error"], R.thm31_attention_error(kind, 3))
    # and it is a minimum: moving one head between memories raises the error
    Ts = R.memory_lengths(3)
    vals = {Ts[0]: 50, Ts[1]: 120, Ts[2]: 300, H: 64, n: 2, C: 1}
    alloc = [float(a.subs(vals)) for a in derived["allocation"]]
    err = lambda hs: sum(float(R.per_memory_error(kind, vals[t], h).subs({n: 2, C: 1})) for t, h in zip(Ts, hs))
    best = err(alloc)
    assert err([alloc[0] + 1, alloc[1] - 1, alloc[2]]) > best
    assert err([alloc[0], alloc[1] + 1, alloc[2] - 1]) > best


@pytest.mark.parametrize("kind", ["lin", "log"])
def test_heads_for_error_inverts_the_error(kind):
    h = R.heads_for_error(kind, 2)
    T1, T2 = sp.symbols("T_1:3", positive=True)
    w = (lambda t: sp.exp(t / 100)) if kind == "lin" else (lambda t: t ** sp.Rational(101, 100))
    assert same(h, (C * (w(T1) + w(T2)) ** (n + 1) / eps) ** (1 / n))
    assert same(R.thm31_attention_error(kind, 2).subs(H, h), eps)


def test_heads_growth_and_ratio():
    assert same(R.heads_growth("lin"), sp.exp((n + 1) * T / (100 * n)))
    assert same(R.heads_growth("log"), T ** (sp.Rational(101, 100) * (n + 1) / n))
    # the ratio equals the quotient of the two solved head counts (C and eps cancel)
    T1 = sp.Symbol("T_1", positive=True)
    quotient = (R.heads_for_error("lin") / R.heads_for_error("log")).subs(T1, T)
    assert same(quotient / R.heads_ratio_lin_log(), 1)
    ratio = R.heads_ratio_fn()
    Ts = np.array([10.0, 100.0, 1000.0, 5000.0])
    vals = ratio(Ts, 2)
    assert vals == pytest.approx(np.exp(0.015 * Ts) / Ts**1.515)
    assert vals[0] < 1 < vals[-1]  # log wins at long memories, by a growing factor
    heads = R.heads_for_error_fn("log")(np.array([10.0, 100.0]), 1e-2, 2, 1.0)
    assert heads == pytest.approx((np.array([10.0, 100.0]) ** 3.03 / 1e-2) ** 0.5)


def test_thm51():
    assert same(R.thm51_attention_error(), C * R.M ** (n + 1) / H**n)
    assert R.thm51_max_rate(2.0, "lin") == 198
    assert R.thm51_max_rate(5, "log") == 3  # floor(4.95) - 1
    assert R.thm51_max_rate(2.03, "log") == 1
    assert R.thm51_max_rate(0.02, "lin") == 1
    for bad in (2.0, 2.02, 1.5):
        with pytest.raises(ValueError, match="beta"):
            R.thm51_max_rate(bad, "log")
    with pytest.raises(ValueError, match="beta"):
        R.thm51_max_rate(0.01, "lin")


def test_ffn_and_total():
    assert same(R.ffn_error(), R.B / sp.sqrt(R.m))
    assert same(R.thm31_total_error("lin", 1) - R.ffn_error(), R.Lip * R.thm31_attention_error("lin", 1))


def test_fit_constant_on_some_points_and_check_the_rest():
    Hs = np.array([2, 4, 8, 16, 32])
    errors = 5.0 / Hs**2 * (1 + 0.1 * np.sin(Hs))  # a rate-2 law with wiggles
    rate = lambda h: 1.0 / h**2
    C_fit = R.fit_constant(errors, Hs, rate, fit_on=[0, 1])
    assert C_fit == pytest.approx(max(errors[:2] * Hs[:2] ** 2))
    held = R.bound_holds(errors, Hs, rate, C_fit)
    assert held[:2].all()  # by construction
    # a faster claimed rate fails on the held-out points: the check can fail
    fast = lambda h: 1.0 / h**3
    C_fast = R.fit_constant(errors, Hs, fast, fit_on=np.array([True, True, False, False, False]))
    assert not R.bound_holds(errors, Hs, fast, C_fast)[2:].all()


def test_loglog_slope():
    xs = np.array([1.0, 2.0, 5.0, 10.0, 100.0])
    assert R.loglog_slope(xs, 7.0 * xs**-1.5) == pytest.approx(-1.5, abs=1e-12)
    assert R.loglog_slope(xs, xs**3) == pytest.approx(3.0, abs=1e-12)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: R.thm31_attention_error("relu", 2), "kind"),
        (lambda: R.thm31_attention_error("lin", 0), "M"),
        (lambda: R.heads_for_error("lin", 0), "M"),
        (lambda: R.thm31_attention_error_at("lin", [5], H_=0, n_=1), "H"),
        (lambda: R.thm31_attention_error_at("lin", [5], H_=4, n_=0), "n"),
        (lambda: R.thm31_attention_error_at("lin", [-5], H_=4, n_=1), "T"),
        (lambda: R.thm51_max_rate(-1.0, "lin"), "beta"),
        (lambda: R.thm51_max_rate(3.0, "exp"), "kind"),
        (lambda: R.fit_constant([1.0, 2.0], [1, 2], lambda h: 1.0 / h, fit_on=[0, 1]), "fit_on"),
        (lambda: R.fit_constant([1.0, 2.0], [1, 2], lambda h: 1.0 / h, fit_on=[]), "fit_on"),
        (lambda: R.fit_constant([1.0, 2.0], [1], lambda h: 1.0 / h, fit_on=[0]), "xs"),
        (lambda: R.fit_constant([1.0, 2.0], [1, 2], lambda h: -1.0, fit_on=[0]), "rate_fn"),
        (lambda: R.loglog_slope([1.0, 2.0], [1.0, -2.0]), "ys"),
        (lambda: R.loglog_slope([2.0, 2.0], [1.0, 2.0]), "xs"),
        (lambda: R.as_numpy(R.heads_ratio_lin_log(), T), "args"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
