"""Tests of txtheory.bench: on tiny sizes the FFT and dense paths agree, every path is
timed, and the memory figure comes from a fresh process."""
import pytest

from txtheory.bench import bench_attention, format_bench

TINY = dict(T=24, H=3, B=2, D=4, repeats=1, memory=False)


@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("rpe", ["lin", "log"])
def test_fast_equals_dense(rpe, normalized):
    r32 = bench_attention(**TINY, rpe=rpe, normalized=normalized, dtype="float32")
    r64 = bench_attention(**TINY, rpe=rpe, normalized=normalized, dtype="float64")
    assert r32["max_abs_diff"] < 1e-5
    assert r64["max_abs_diff"] < 1e-10
    for r in (r32, r64):
        # the exact FFT is timed beside a scan, which replaced it in the softmax forms
        assert set(r["ms"]) == ({"fast", "dense", "dense_last"} | ({"fft"} if normalized else set())
                                | ({"log_scan"} if rpe == "log" and not normalized else set()))
        assert r["fast_path"] == ("FFT" if not normalized else "scan" if rpe == "lin" else "log scan")
        assert all(v > 0 for v in r["ms"].values())
        assert r["ratio"] == pytest.approx(r["ms"]["dense"] / r["ms"]["fast"])
        assert r["memory_mb"] is None


def test_memory_is_measured_in_fresh_processes():
    T, H = 512, 16
    r = bench_attention(T=T, H=H, B=4, D=4, repeats=1, memory=True)
    mem = r["memory_mb"]
    assert set(mem) == {"fast", "dense", "dense_last", "log_scan"}  # the default: log, no softmax
    assert all(v >= 0 for v in mem.values())
    # The dense path holds at least its (H, T, T) float32 weights; the FFT path never does.
    weights_mb = H * T * T * 4 / 2**20
    assert mem["dense"] >= weights_mb
    assert mem["fast"] < weights_mb / 2 and mem["dense_last"] < weights_mb / 2
    assert "fresh process" in r["memory_method"]
    text = format_bench(r)
    assert "dense / fast" in text and "MiB" in text and "fresh process" in text


def test_the_log_scan_is_timed_against_the_fft_with_its_bound():
    r = bench_attention(T=200, H=4, B=2, D=4, repeats=1, memory=False, rpe="log", normalized=True,
                        dtype="float64")
    assert r["fast_path"] == "log scan" and r["nodes"] > 1
    assert 0 < r["error_bound"] < 1e-8 and r["max_abs_diff"] <= r["error_bound"] + 1e-12
    text = format_bench(r)
    assert "quadrature scan" in text and "fft / fast" in text and "proved error bound" in text


def test_format_bench_without_memory():
    text = format_bench(bench_attention(**TINY))
    assert "T=24 H=3 B=2 D=4" in text and "normalisation-free" in text
    assert text.count("\n") == 6  # header, column names, four paths (log: the scan too), summary


@pytest.mark.parametrize("kw, name", [
    (dict(T=0), "T"), (dict(H=0), "H"), (dict(dtype="float16"), "dtype"), (dict(rpe="alibi"), "rpe"),
    (dict(repeats=0), "repeats"), (dict(normalized="yes"), "normalized"), (dict(device="tpu"), "device"),
])
def test_bad_arguments_name_the_parameter(kw, name):
    with pytest.raises(ValueError, match=name):
        bench_attention(**{**TINY, **kw})


# ---------------------------------------------------------------- the SDPA anchor


@pytest.mark.parametrize("rpe", ["lin", "log"])
def test_sdpa_anchor_is_the_same_layer(rpe):
    import torch

    from txtheory.bench import _setup, sdpa_attention

    attn, x = _setup(T=30, H=3, B=2, D=4, dtype="float64", normalized=True, rpe=rpe, seed=1)
    torch.testing.assert_close(sdpa_attention(attn, x), attn(x, path="dense"), rtol=1e-12, atol=1e-12)
    nf, _ = _setup(T=30, H=3, B=2, D=4, dtype="float64", normalized=False, rpe=rpe, seed=1)
    with pytest.raises(ValueError, match="normalized"):
        sdpa_attention(nf, x)


def test_softmax_bench_reports_the_anchor_scaled_to_the_batch(monkeypatch):
    import txtheory.bench as bench

    monkeypatch.setattr(bench, "SDPA_BYTES", 2 * 3 * 24 * 24 * 4)  # room for two sequences
    r = bench_attention(**{**TINY, "B": 5}, rpe="lin", normalized=True, dtype="float64")
    s = r["sdpa"]
    assert s["batch"] == 2 and s["scale"] == 2.5
    assert s["ms"] == pytest.approx(s["ms_measured"] * 2.5) and s["max_abs_diff"] < 1e-12
    assert "scaled: measured at B=2" in format_bench(r)
    assert bench_attention(**TINY, normalized=False)["sdpa"] is None


# ---------------------------------------------------------------- experiments' step costs


def test_bench_experiments_probes_every_model_of_a_runner():
    from txtheory import experiments
    from txtheory.bench import bench_experiments, format_experiments

    r = bench_experiments(["delay"], scale="ci", steps=1, progress=False)
    d = r["experiments"]["delay"]
    cfg = experiments.config_for("delay", "ci")
    assert d["error"] is None
    assert d["models"] == len(cfg["delays"]) * len(cfg["rpes"])  # one model per grid point
    assert d["steps"] == d["models"] * cfg["steps"]
    assert d["train_seconds"] == pytest.approx(d["ms_per_step"] * d["steps"] / 1e3)
    assert d["ms_per_step_max"] >= d["ms_per_step"] > 0
    text = format_experiments(r)
    assert "delay" in text and "total" in text
    with pytest.raises(ValueError, match="scale"):
        bench_experiments(["delay"], scale="huge")


def test_bench_step_times_every_stage_both_ways():
    import torch

    from txtheory import targets
    from txtheory.bench import STAGES, bench_step
    from txtheory.model import TransformerConfig

    target = targets.exp1b_target(120, generator=torch.Generator().manual_seed(0), read_at="end")
    r = bench_step(TransformerConfig(d_model=8, n_heads=2, ffn_width=4), target, length=120, batch_size=4,
                   steps=2)
    for way in ("fast", "plain"):
        assert set(r[way]) == set(STAGES) and all(v > 0 for v in r[way].values())
    assert r["ratio"] == pytest.approx(sum(r["plain"].values()) / sum(r["fast"].values()))
    with pytest.raises(ValueError, match="steps"):
        bench_step(TransformerConfig(), target, length=120, batch_size=4, steps=0)
