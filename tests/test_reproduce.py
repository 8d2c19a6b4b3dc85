"""txtheory.reproduce: tasks per grid point, resume from the cache, failures isolated,
worker processes and a Dask cluster giving the serial result bit for bit."""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from txtheory import experiments as ex
from txtheory import reproduce as rep


@pytest.fixture(autouse=True)
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("TXTHEORY_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """A split experiment of three points; the point k = 2 fails while 'fail' exists."""
    calls, fail = [], tmp_path / "fail"

    def runner(config, progress):
        calls.append(config["ks"])
        if 2 in config["ks"] and fail.exists():
            raise RuntimeError("point 2 is broken")
        return {"rows": [{"k": k, "square": k * k} for k in config["ks"]], "note": "same for every point",
                "cubes": {str(k): k ** 3 for k in config["ks"]}}  # a dict per point: joined as their union

    scales = {s: {"ks": [1, 2, 3], "threads": 1} for s in ex.SCALES}
    monkeypatch.setitem(ex._REGISTRY, "toy", ex.Experiment(
        name="toy", title="A toy", chapter="book/framework.md", runner=runner, scales=scales, split="ks"))
    return calls, fail


def test_a_split_experiment_is_one_task_per_value_and_the_rest_one_each():
    assert [t.overrides for t in rep.tasks("ci", ["delay"])] == [{"rpes": ["lin"]}, {"rpes": ["log"]}]
    assert rep.tasks("ci", ["exp4a"]) == [rep.Task("exp4a", "ci")]
    every = {t.name for t in rep.tasks("full")}
    assert every == set(ex.names())
    with pytest.raises(ValueError, match="unknown experiment"):
        rep.tasks("ci", ["nope"])
    with pytest.raises(ValueError, match="scale"):
        rep.tasks("huge")


def test_the_joined_rows_are_the_unsplit_runners(toy):
    calls, _ = toy
    summary = rep.reproduce("ci", ["toy"], progress=False)
    assert summary["experiments"]["toy"] == {"points": 3, "done": 3, "seconds": pytest.approx(
        summary["experiments"]["toy"]["seconds"]), "status": "ok", "paper": None}
    assert calls == [[1], [2], [3]]
    joined = ex.load("toy", "ci")
    direct = ex.get("toy").runner(ex.config_for("toy", "ci"), False)
    assert joined["result"] == direct
    assert joined["command"] == "txtheory reproduce --scale ci --only toy"


def test_a_failed_point_is_reported_and_the_next_run_resumes_with_it_alone(toy):
    calls, fail = toy
    fail.touch()
    summary = rep.reproduce("ci", ["toy"], progress=False)
    failed = [t for t in summary["tasks"] if t["status"] == "failed"]
    assert len(failed) == 1 and "point 2 is broken" in failed[0]["error"]
    assert failed[0]["config"]["ks"] == [2]
    assert summary["experiments"]["toy"]["status"] == "incomplete"
    assert ex.load("toy", "ci") is None  # nothing joined while a point is missing
    assert "FAILED toy (ci, ks=[2])" in rep.format_summary(summary)
    fail.unlink()
    calls.clear()
    summary = rep.reproduce("ci", ["toy"], progress=False)
    assert calls == [[2]]  # the two finished points came from the cache
    assert [t["status"] for t in summary["tasks"]] == ["cached", "done", "cached"]
    assert ex.load("toy", "ci")["result"]["rows"][1] == {"k": 2, "square": 4}


TOY_MODULE = '''
import time
from pathlib import Path
from txtheory import experiments as ex

def runner(config, progress):
    k = config["ks"][0]
    Path(config["log"]).open("a").write(f"{k}\\n")
    time.sleep(config["sleep"])
    return {"rows": [{"k": k}]}

ex.register(ex.Experiment(name="slow", title="slow", chapter="book/framework.md", runner=runner, split="ks",
                          scales={s: {"ks": [1, 2, 3, 4], "sleep": 1.5, "log": LOG, "threads": 1}
                                  for s in ex.SCALES}))
'''


def test_a_run_killed_midway_resumes_where_it_stopped(tmp_path, results):
    log = tmp_path / "log.txt"
    (tmp_path / "slowtoy.py").write_text(TOY_MODULE.replace("LOG", repr(str(log))))
    code = ("import slowtoy; from txtheory.reproduce import reproduce; "
            "reproduce('ci', ['slow'], progress=False)")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "TXTHEORY_RESULTS": str(results)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((results / "slow").glob("ci-*.json")) if (results / "slow").exists()
                                         else []) < 2:
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    done_before = len(list((results / "slow").glob("ci-*.json")))
    assert 2 <= done_before < 4, "the kill should land between the second and the last point"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    started = [int(k) for k in log.read_text().split()]
    # every point ran to completion once; only the one cut off by the kill started twice
    assert sorted(set(started)) == [1, 2, 3, 4] and len(started) <= 5
    entry = json.loads(next(p for p in (results / "slow").glob("ci-*.json")
                            if json.loads(p.read_text())["config"]["ks"] == [1, 2, 3, 4]).read_text())
    assert [r["k"] for r in entry["result"]["rows"]] == [1, 2, 3, 4]


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in ("seconds", "created")}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def test_worker_processes_and_a_dask_cluster_give_the_serial_result_bit_for_bit(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    serial = tmp_path / "serial"
    monkeypatch.setenv("TXTHEORY_RESULTS", str(serial))
    assert rep.reproduce("ci", ["delay"], progress=False)["experiments"]["delay"]["status"] == "ok"
    reference = _without_timing(ex.load("delay", "ci")["result"])

    monkeypatch.setenv("TXTHEORY_RESULTS", str(tmp_path / "processes"))
    assert rep.reproduce("ci", ["delay"], jobs=2, progress=False)["experiments"]["delay"]["status"] == "ok"
    assert _without_timing(ex.load("delay", "ci")["result"]) == reference

    monkeypatch.setenv("TXTHEORY_RESULTS", str(tmp_path / "dask"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        summary = rep.reproduce("ci", ["delay"], scheduler=cluster.scheduler_address, progress=False)
    assert summary["experiments"]["delay"]["status"] == "ok"
    assert _without_timing(ex.load("delay", "ci")["result"]) == reference


def test_an_experiment_cached_whole_is_not_rerun_point_by_point(toy):
    calls, _ = toy
    ex.run("toy", "ci")  # the whole grid in one run, as `txtheory run toy` does
    calls.clear()
    summary = rep.reproduce("ci", ["toy"], progress=False)
    assert calls == [] and {t["status"] for t in summary["tasks"]} == {"cached"}


def test_the_summary_quotes_the_paper_where_the_result_does(monkeypatch):
    monkeypatch.setitem(ex._REGISTRY, "quoted", ex.Experiment(
        name="quoted", title="q", chapter="book/framework.md", scales={s: {"threads": 1} for s in ex.SCALES},
        runner=lambda config, progress: {"rows": [], "paper": "0.19 with 64 heads"}))
    summary = rep.reproduce("ci", ["quoted"], progress=False)
    assert "the paper: 0.19 with 64 heads" in rep.format_summary(summary)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="jobs"):
        rep.reproduce("ci", ["delay"], jobs=0)
    with pytest.raises(ValueError, match="declares no split"):
        rep.join("exp4a", "ci")
    with pytest.raises(ValueError, match="split='nope' must name"):
        ex.Experiment(name="x", title="x", chapter="book/framework.md", runner=lambda c, p: {},
                      scales={s: {} for s in ex.SCALES}, split="nope")


def test_the_command_line_reports_and_exits_1_on_a_failed_point(toy, capsys):
    from txtheory import cli

    _, fail = toy
    fail.touch()
    assert cli.main(["reproduce", "--only", "toy", "--quiet"]) == 1
    assert "incomplete" in capsys.readouterr().out
    fail.unlink()
    assert cli.main(["reproduce", "--only", "toy", "--quiet"]) == 0


def test_the_device_reaches_the_worker_and_a_missing_one_fails_first(toy, monkeypatch):
    import torch

    from txtheory.train import DEVICE_VARIABLE

    seen = []
    monkeypatch.setattr(ex.get("toy"), "runner", lambda config, progress: (
        seen.append(os.environ.get(DEVICE_VARIABLE)), {"rows": []})[1])
    monkeypatch.delenv(DEVICE_VARIABLE, raising=False)
    rep.run_task(rep.Task("toy", "ci", {"ks": [1]}), device="cpu")
    assert seen == ["cpu"] and DEVICE_VARIABLE not in os.environ  # set for the task, then restored
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            rep.reproduce("ci", ["toy"], device="cuda", progress=False)
        assert len(seen) == 1  # nothing ran


SPLIT = [name for name in ex.names() if ex.get(name).split is not None]


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.mark.parametrize("name", SPLIT)
def test_every_split_experiment_joins_to_what_its_runner_gives_whole(name, monkeypatch):
    # each point alone, then joined, must be the runner's own result: the split key has
    # to be the runner's outermost loop and no point may depend on another (a few steps)
    exp = ex.get(name)
    short = dict(exp.scales["ci"], steps=2, eval_size=8, threads=1)
    if "eval_windows" in short:
        short["eval_windows"] = 2
    if len(short[exp.split]) == 1:  # a single point at ci: two of the full scale's instead
        short[exp.split] = exp.scales["full"][exp.split][:2]
    monkeypatch.setitem(exp.scales, "ci", short)
    summary = rep.reproduce("ci", [name], progress=False)
    assert summary["experiments"][name]["status"] == "ok"
    assert summary["experiments"][name]["points"] == len(short[exp.split]) > 1
    whole = exp.runner(ex.config_for(name, "ci"), False)
    assert _without_timings(ex.load(name, "ci")["result"]) == _without_timings(json.loads(json.dumps(whole)))
