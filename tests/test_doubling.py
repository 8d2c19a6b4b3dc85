"""Pointer doubling (txtheory.construct.doubling): depth, certificate, premises, bad input."""
import math

import pytest
import torch

from txtheory import construct


def pm1(n, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (n, T, 1), generator=g) * 2 - 1).double()


@pytest.fixture(scope="module")
def three_hops():
    return construct.pointer_doubling(3, 8, length=16)


def test_depth_is_ceil_log2_of_steps_plus_one():
    for K in range(1, 40):
        assert construct.doubling_depth(K) == math.ceil(math.log2(K + 1))
    assert construct.pointer_doubling(4, 4, length=24).n_layers == 3


def test_the_certificate_holds_in_exact_arithmetic(three_hops):
    c = three_hops
    assert c.n_layers == 2 and c.layer_lags == ((1, 2), (2, 3, 4))
    assert c.bound < 1e-3
    rows = c.certify(pm1(3, 16, seed=2), positions=[c.first_valid, 15])
    for r in rows:
        assert r["error"] <= r["bound"]
    assert c.sup_error() < 1e-3


def test_every_slot_stays_in_the_unit_box(three_hops):
    # the certificate's premise: what a layer reads lies in [-1, 1] at every position,
    # including those whose chase leaves the window
    streams = three_hops.model.residual_streams(pm1(64, 16, seed=3))
    for h in streams:
        assert float(h.abs().max()) <= 1 + 1e-12


def test_a_planted_weight_error_fails_the_certificate():
    c = construct.pointer_doubling(3, 8, length=16)
    x = pm1(3, 16, seed=4)
    with torch.no_grad():
        c.model.ffn[0].out.weight[0, 0] += 0.5  # the rounding FFN also writes x_t
    assert any(r["error"] > r["bound"] for r in c.certify(x, positions=[10, 15]))
    c = construct.pointer_doubling(3, 8, length=16)
    with torch.no_grad():
        c.model.attn[1].W_V[0, 0, 2] += 1e-3  # a head writes x_t
    with pytest.raises(ValueError, match="writes a slot"):
        construct.doubling.layer_error(c.model, 1, [0, 1], (2, 3, 4), (1, 2), 16)


def test_too_few_heads_void_the_bound():
    c = construct.pointer_doubling(3, 1, length=16)
    assert c.layer_errors[0] >= 0.5 and c.bound == math.inf


def test_bad_input():
    for kwargs, name in [(dict(steps=0, n_heads=4, length=16), "steps"),
                         (dict(steps=2, n_heads=0, length=16), "n_heads"),
                         (dict(steps=3, n_heads=4, length=5), "length"),
                         (dict(steps=2, n_heads=4, length=16, lags=(0, 2)), "lags"),
                         (dict(steps=7, n_heads=4, length=12), "length")]:
        with pytest.raises(ValueError, match=name):
            construct.pointer_doubling(**kwargs)
    c = construct.pointer_doubling(1, 4, length=8)
    with pytest.raises(ValueError, match="±1"):
        c.certify(torch.zeros(1, 8, 1))
    with pytest.raises(ValueError, match="t must"):
        c.certify(pm1(1, 8), positions=[0])


def test_linear_probes_find_each_hop_where_the_construction_puts_it(three_hops):
    # the probe of experiment pointer_heads, held to models whose layers we know:
    # doubling has hop 1 after layer 1 and hops 1-3 after layer 2
    from txtheory.experiments.adaptive import hop_decoding
    after = hop_decoding(three_hops.model, 3, (1, 2), 16, n=128)
    assert after[0]["chase_r2"][0] > 0.999 and max(after[0]["chase_r2"][1:]) < 0.05
    assert min(after[1]["chase_r2"]) > 0.999
