"""Tests of txtheory.experiments: the registry, the results cache (keys, atomic writes,
corrupt entries), the results folder and the scale read from the environment."""
import json
import warnings
from pathlib import Path

import pytest

import txtheory
from txtheory import experiments as ex


@pytest.fixture(autouse=True)
def results(tmp_path, monkeypatch):
    """Every test writes into its own temporary results folder, never into the repo."""
    monkeypatch.setenv("TXTHEORY_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("TXTHEORY_SCALE", raising=False)
    return tmp_path / "results"


@pytest.fixture
def counting(monkeypatch):
    """A registered toy experiment whose runner counts its calls."""
    calls = []

    def runner(config, progress):
        calls.append(dict(config))
        return {"value": config["a"] * 10, "progress": progress}

    exp = ex.Experiment(name="toy", title="toy", chapter="book/framework.md", runner=runner,
                        scales={s: {"a": i, "b": [1, 2]} for i, s in enumerate(ex.SCALES)})
    monkeypatch.setitem(ex._REGISTRY, "toy", exp)
    return calls


def entry_files(results):
    return sorted(p for p in (results / "toy").iterdir())


def test_run_caches_and_the_second_call_loads(counting, results):
    first = ex.run("toy", "ci")
    assert first["result"] == {"value": 0, "progress": False} and not first["from_cache"]
    second = ex.run("toy", "ci")
    assert len(counting) == 1 and second["from_cache"]
    assert second["result"] == first["result"]
    path = Path(first["path"])
    assert path.parent == results / "toy" and path.name.startswith("ci-") and path.suffix == ".json"
    stored = json.loads(path.read_text())
    assert set(stored) == {"name", "scale", "config", "version", "created", "command", "environment", "result"}
    assert set(stored["environment"]) == {"torch", "cpu_capability", "threads", "device"}
    assert stored["environment"]["device"] == "cpu"  # TXTHEORY_DEVICE unset: the CPU
    assert stored["version"] == txtheory.__version__
    assert stored["command"] == "txtheory run toy --scale ci"
    assert ex.load("toy", "ci")["result"] == first["result"]
    ex.run("toy", "ci", use_cache=False)
    assert len(counting) == 2


def test_key_depends_on_config_scale_and_version(counting, monkeypatch):
    base = ex.run("toy", "ci")["path"]
    other = ex.run("toy", "ci", a=5)
    assert other["path"] != base and other["result"]["value"] == 50
    assert other["command"] == "txtheory run toy --scale ci --set a=5"
    assert ex.run("toy", "full")["path"] != base
    assert len(counting) == 3
    assert ex.load("toy", "ci", a=5)["result"]["value"] == 50
    assert ex.load("toy", "paper") is None
    # A new package version is a new key: the old entry is stale and simply not used.
    monkeypatch.setattr(ex, "__version__", "999")
    assert ex.load("toy", "ci") is None
    assert ex.run("toy", "ci")["path"] != base and len(counting) == 4


def test_key_is_the_documented_hash():
    import hashlib

    config = {"x": 1}
    blob = json.dumps({"name": "n", "scale": "ci", "config": config, "version": txtheory.__version__},
                      sort_keys=True)
    assert ex.cache_key("n", "ci", config) == hashlib.sha256(blob.encode()).hexdigest()


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[1, 2]", b'{"name": "toy"}'])
def test_a_corrupt_entry_is_recomputed_with_a_warning(counting, content):
    path = Path(ex.run("toy", "ci")["path"])
    path.write_bytes(content)
    with pytest.warns(UserWarning, match="recomputing"):
        assert ex.load("toy", "ci") is None
    with pytest.warns(UserWarning, match="recomputing"):
        again = ex.run("toy", "ci")
    assert len(counting) == 2 and not again["from_cache"]
    json.loads(path.read_text())  # repaired
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ex.run("toy", "ci")["from_cache"]


def test_an_entry_for_another_config_is_not_trusted(counting):
    path = Path(ex.run("toy", "ci")["path"])
    stored = json.loads(path.read_text())
    stored["config"]["a"] = 7  # e.g. an edited file
    path.write_text(json.dumps(stored))
    with pytest.warns(UserWarning, match="config"):
        ex.run("toy", "ci")
    assert len(counting) == 2


def test_a_failed_write_keeps_the_old_entry_and_leaves_no_temp_file(counting, results, monkeypatch):
    path = Path(ex.run("toy", "ci")["path"])
    old = path.read_text()

    def fail(message):
        def broken(*args):
            raise OSError(message)
        return broken

    for function, message in [("replace", "disk full"), ("fsync", "I/O error")]:
        with monkeypatch.context() as m:
            m.setattr(ex.os, function, fail(message))
            with pytest.warns(UserWarning, match=message):
                entry = ex.run("toy", "ci", use_cache=False)
        assert entry["result"]["value"] == 0  # the result still comes back
        assert path.read_text() == old
        assert entry_files(results) == [path]  # no temporary file left behind


def test_an_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "entry.json"

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(ex.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ex._atomic_write(target, "{}")
    assert list(target.parent.iterdir()) == []


def test_a_runner_returning_non_json_raises(monkeypatch):
    exp = ex.Experiment(name="bad", title="bad", chapter="book/framework.md",
                        scales={s: {} for s in ex.SCALES}, runner=lambda c, p: {"x": object()})
    monkeypatch.setitem(ex._REGISTRY, "bad", exp)
    with pytest.raises(ValueError, match="JSON"):
        ex.run("bad", "ci")


def test_registry_and_bad_names(counting):
    assert "delay" in ex.names() and "toy" in ex.names()
    assert ex.get("delay").chapter == "book/framework.md"
    with pytest.raises(ValueError, match="known experiments: .*delay"):
        ex.get("nope")
    with pytest.raises(ValueError, match="known experiments"):
        ex.run("nope")
    with pytest.raises(ValueError, match="scale"):
        ex.run("toy", "huge")
    with pytest.raises(ValueError, match="allowed: a, b"):
        ex.run("toy", "ci", typo=1)
    with pytest.raises(ValueError, match="scales must define"):
        ex.Experiment(name="x", title="x", chapter="c", scales={"ci": {}}, runner=lambda c, p: {})
    with pytest.raises(ValueError, match="Experiment"):
        ex.register({"name": "x"})


def test_every_experiment_has_plain_scales():
    for name in ex.names():
        exp = ex.get(name)
        for scale in ex.SCALES:
            json.dumps(exp.scales[scale])
    paper = ex.get("delay").scales["paper"]
    assert (paper["length"], paper["batch_size"], paper["steps"]) == (1000, 100, 10000)


def test_current_scale_reads_the_environment(monkeypatch):
    assert ex.current_scale() == "ci"
    monkeypatch.setenv("TXTHEORY_SCALE", "full")
    assert ex.current_scale() == "full"
    monkeypatch.setenv("TXTHEORY_SCALE", "huge")
    with pytest.raises(ValueError, match="TXTHEORY_SCALE"):
        ex.current_scale()


def test_results_dir(monkeypatch, tmp_path):
    assert ex.results_dir() == tmp_path / "results"
    monkeypatch.delenv("TXTHEORY_RESULTS")
    repo = Path(txtheory.__file__).resolve().parents[1]
    expected = repo / "results" if (repo / "pyproject.toml").is_file() else Path.home() / ".cache" / "txtheory"
    assert ex.results_dir() == expected


def test_delay_runner_on_a_tiny_config(results):
    entry = ex.run("delay", "ci", delays=[1, 3], rpes=["log"], steps=5, eval_size=8, length=12)
    rows = entry["result"]["rows"]
    assert [(r["rpe"], r["delay"]) for r in rows] == [("log", 1), ("log", 3)]
    for r in rows:
        assert r["max_abs"] >= r["mse"] ** 0.5 - 1e-12
        assert len(r["p"]) == 4 and all(p > 0 for p in r["p"])
        assert r["losses"]["step"][-1] == 4
    assert entry["command"] == ("txtheory run delay --scale ci --set 'delays=[1,3]' --set eval_size=8 "
                                "--set length=12 --set 'rpes=[\"log\"]' --set steps=5")
    assert Path(entry["path"]).is_relative_to(results)


REPEAT = """
import json, sys
from txtheory import experiments as ex
entry = ex.run("delay", "ci", use_cache=False, delays=[2], steps=25, eval_size=40, threads=1)
strip = lambda d: {k: v for k, v in d.items() if k != "seconds"}  # wall-clock time never repeats
print(json.dumps({"rows": [strip(r) for r in entry["result"]["rows"]], "environment": entry["environment"]}))
"""


def test_a_run_repeats_bit_for_bit_in_fresh_processes(results):
    # The README's promise: same machine, torch build and thread count -> the same numbers,
    # exactly (json.dumps writes every float with all its digits).
    import os
    import subprocess
    import sys

    env = {**os.environ, "TXTHEORY_RESULTS": str(results)}
    outs = [subprocess.run([sys.executable, "-c", REPEAT], env=env, capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert outs[0] == outs[1]
    first = json.loads(outs[0])
    assert first["environment"]["threads"] == 1 and len(first["rows"]) == 2  # lin and log
    assert all(0 < r["mse"] < 10 for r in first["rows"])


def test_threads_of_the_config_apply_to_the_whole_run(counting, monkeypatch):
    import torch

    seen = []
    exp = ex.get("toy")
    monkeypatch.setattr(exp, "runner", lambda config, progress: seen.append(torch.get_num_threads()) or {})
    monkeypatch.setitem(exp.scales, "ci", {"a": 0, "b": [1, 2], "threads": 1})
    before = torch.get_num_threads()
    entry = ex.run("toy", "ci")
    assert seen == [1] and entry["environment"]["threads"] == 1 and torch.get_num_threads() == before


def test_describe_puts_the_settings_in_words():
    assert ex.describe({"length": 128, "steps": 1500, "batch_size": 64, "lr": 0.01, "d_model": 8,
                        "rpe": "lin", "seed": 0}) == \
        "a window of 128, 1500 AdamW steps of batch 64, lr 0.01, d_model 8, lin-RPE, seed 0"
    assert ex.describe({"seed": 3}) == "seed 3"
    assert ex.describe(ex.config_for("delay", "ci")).startswith("a window of 48")
    with pytest.raises(ValueError, match="config"):
        ex.describe("delay")


def test_training_options_are_known_to_every_experiment_and_leave_the_defaults_alone():
    base = ex.config_for("exp4a", "full")
    window = ex.config_for("exp4a", "full", forward="window")
    assert "forward" not in base and window == {**base, "forward": "window"}
    assert ex.cache_key("exp4a", "full", window) != ex.cache_key("exp4a", "full", base)
    with pytest.raises(ValueError, match="unknown config key"):
        ex.config_for("exp4a", "full", fowrard="window")


def test_cache_only_refuses_to_train_a_missing_full_entry(results, monkeypatch):
    monkeypatch.setenv("TXTHEORY_CACHE_ONLY", "1")
    with pytest.raises(RuntimeError, match="TXTHEORY_CACHE_ONLY=1 and 'delay' at scale 'full' is not cached"):
        ex.run("delay", "full", delays=[3])
    assert ex.run("delay", "ci", steps=2)["result"]  # ci entries are always computed


def test_a_stale_entry_is_ignored_with_a_warning_and_recomputed(counting, monkeypatch):
    # an input the config does not fix (a corpus) changed since the entry was written
    machine = {"corpus": "A"}
    exp = ex.get("toy")
    monkeypatch.setattr(exp, "stale", lambda config, entry: None if entry["result"]["value"] == 0
                        and machine["corpus"] == "A" else f"trained on A, this machine has {machine['corpus']}")
    ex.run("toy", "ci")
    assert ex.load("toy", "ci") is not None and len(counting) == 1
    machine["corpus"] = "B"
    with pytest.warns(UserWarning, match="this machine has B"):
        assert ex.load("toy", "ci") is None
    with pytest.warns(UserWarning, match="this machine has B"):
        assert ex.run("toy", "ci")["from_cache"] is False
    assert len(counting) == 2
    with pytest.raises(ValueError, match="stale"):
        ex.Experiment(name="bad", title="t", chapter="book/framework.md", runner=lambda c, p: {},
                      scales={s: {} for s in ex.SCALES}, stale="yes")


def test_the_language_experiments_check_their_corpus():
    from txtheory.experiments.language import corpus_changed
    config = ex.config_for("exp1a", "ci")
    here = corpus_changed(config, {"result": {"corpus": {"sha256": "not-a-hash"}}})
    assert "not-a-hash" in here and "this machine's corpus" in here
    from txtheory.corpus import load_corpus
    same = {"result": {"corpus": {"sha256": load_corpus("stdlib").sha256[:12]}}}
    assert corpus_changed(config, same) is None
    assert ex.get("exp1a").stale is corpus_changed and ex.get("exp3b").stale is corpus_changed
