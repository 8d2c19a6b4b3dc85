"""Tests of the ``txtheory`` command (txtheory.cli.main): list, run, reproduce, bench,
and the exit code 2 with a clear message for bad arguments."""
import json

import pytest

from txtheory import cli
from txtheory import experiments as ex


@pytest.fixture(autouse=True)
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("TXTHEORY_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


@pytest.fixture
def toy(monkeypatch):
    calls = []

    def runner(config, progress):
        calls.append(config)
        return {"rows": [{"k": config["k"], "err": 0.125}]}

    exp = ex.Experiment(name="toy", title="A toy", chapter="book/framework.md", runner=runner,
                        scales={s: {"k": i} for i, s in enumerate(ex.SCALES)})
    monkeypatch.setitem(ex._REGISTRY, "toy", exp)
    return calls


def test_list_shows_every_experiment(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "delay" in out and "book/framework.md" in out
    for scale in ex.SCALES:
        assert f"    {scale}" in out


def test_run_with_a_tiny_override(capsys, results):
    code = cli.main(["run", "delay", "--scale", "ci", "--quiet", "--set", "delays=[1]",
                     "--set", "rpes=[\"lin\"]", "--set", "steps=3", "--set", "eval_size=4"])
    assert code == 0
    out = capsys.readouterr().out
    assert "computed" in out and str(results) in out
    assert "--set 'delays=[1]'" in out  # how to regenerate it
    (entry_file,) = (results / "delay").iterdir()
    assert json.loads(entry_file.read_text())["config"]["steps"] == 3


def test_run_uses_the_cache_unless_told_not_to(capsys, toy):
    assert cli.main(["run", "toy", "--quiet"]) == 0
    assert cli.main(["run", "toy", "--quiet"]) == 0
    assert len(toy) == 1
    assert "loaded from the cache" in capsys.readouterr().out
    # --no-cache on the very entry that is cached: the runner must run again
    assert cli.main(["run", "toy", "--quiet", "--no-cache"]) == 0
    assert len(toy) == 2 and "computed" in capsys.readouterr().out
    assert cli.main(["run", "toy", "--quiet", "--no-cache", "--scale", "full"]) == 0
    assert toy[-1] == {"k": 1}
    assert "0.125" in capsys.readouterr().out


def test_reproduce_no_cache_reruns_cached_entries(capsys, toy, monkeypatch):
    monkeypatch.setattr(ex, "names", lambda: ["toy"])
    assert cli.main(["reproduce", "--quiet"]) == 0
    assert cli.main(["reproduce", "--quiet"]) == 0
    assert len(toy) == 1
    assert cli.main(["reproduce", "--quiet", "--no-cache"]) == 0
    assert len(toy) == 2


def test_reproduce_runs_every_experiment(monkeypatch, capsys, toy):
    from txtheory import reproduce as rep

    seen, joined = [], []
    monkeypatch.setattr(ex, "run", lambda name, scale, **kw: seen.append((name, scale)) or {
        "name": name, "scale": scale, "created": "now", "version": "0", "result": {},
        "path": "p", "command": "c", "from_cache": True})
    monkeypatch.setattr(rep, "join", lambda name, scale: joined.append(name))
    assert cli.main(["reproduce", "--scale", "paper", "--quiet"]) == 0
    assert sorted(set(seen)) == [(n, "paper") for n in ex.names()]
    assert joined == [n for n in ex.names() if ex.get(n).split is not None]


def test_bad_scale_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "delay", "--scale", "huge"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_unknown_experiment_lists_the_known_ones(capsys):
    assert cli.main(["run", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'nope'" in err and "delay" in err


def test_bad_override_and_missing_command(capsys):
    assert cli.main(["run", "delay", "--set", "typo=1"]) == 2
    assert "allowed:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "delay", "--set", "novalue"])
    assert exit_info.value.code == 2
    assert cli.main([]) == 2


def test_bench_on_tiny_sizes_prints_a_ratio(capsys):
    code = cli.main(["bench", "--T", "16", "--H", "2", "--B", "2", "--D", "2", "--repeats", "1",
                     "--normalized", "--rpe", "lin", "--no-memory", "--no-experiments"])
    assert code == 0
    out = capsys.readouterr().out
    assert "dense / fast =" in out and "normalised" in out and "T=16" in out
    assert out.count("DP-free attention") == 1 and "sdpa / fast" in out and "training cost" not in out


def test_bench_prints_both_forms_both_kinds_and_the_experiments_costs(capsys):
    code = cli.main(["bench", "--T", "16", "--H", "2", "--B", "2", "--D", "2", "--repeats", "1",
                     "--no-memory", "--experiments", "delay", "--scale", "ci"])
    assert code == 0
    out = capsys.readouterr().out
    for form in ("lin-RPE, normalisation-free", "log-RPE, normalisation-free", "lin-RPE, normalised",
                 "log-RPE, normalised"):
        assert form in out
    assert out.count("sdpa / fast") == 2  # the anchor beside each softmax form
    assert "training cost at ci scale" in out and "delay" in out


def test_bench_bad_size_exits_2(capsys):
    assert cli.main(["bench", "--T", "0", "--no-memory"]) == 2
    assert "T must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--normalized", "--nf"])
    assert exit_info.value.code == 2


def test_corpus_trains_a_language_experiment_on_a_users_file(capsys, results, tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text(" ".join(f"word{k % 500} next" for k in range(8000)), encoding="utf-8")
    code = cli.main(["run", "exp3b", "--scale", "ci", "--quiet", "--corpus", str(text),
                     "--set", "steps=2", "--set", "depths=[1]", "--set", "eval_windows=2"])
    assert code == 0
    (entry_file,) = (results / "exp3b").iterdir()
    entry = json.loads(entry_file.read_text())
    assert entry["config"]["corpus"] == str(text.resolve())
    assert entry["result"]["corpus"]["name"] == str(text.resolve())


@pytest.mark.parametrize("content, message", [(None, "does not exist"), (b"", "is empty"),
                                              (b"tiny", "too short"), (b"\xff\xfe" * 30000, "not UTF-8")])
def test_a_bad_corpus_file_exits_2_before_training(capsys, tmp_path, content, message):
    path = tmp_path / "bad.txt"
    if content is not None:
        path.write_bytes(content)
    assert cli.main(["run", "exp1a", "--corpus", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_corpus_is_refused_for_an_experiment_without_one(capsys, tmp_path):
    assert cli.main(["run", "delay", "--corpus", str(tmp_path / "x.txt")]) == 2
    assert "--corpus applies to" in capsys.readouterr().err
