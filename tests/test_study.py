"""The study runner: a grid of settings x seeds, cached training, the long table, rows and claim states."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from crowdlib import repro
from crowdlib.repro import Claim
from crowdlib.study import claim_sentences, format_duration, rows_from_long, run_study


def _toy(calls: list, threads_seen: list):
    """A 'training' that records its config and the thread count it ran under; the metric is a function of both."""

    def config(setting: str, seed: int) -> dict:
        return {"lr": {"slow": 0.1, "fast": 0.5}[setting], "seed": seed}

    def train(cfg: dict) -> dict:
        calls.append(dict(cfg))
        threads_seen.append(torch.get_num_threads())
        return {"w": torch.tensor([cfg["lr"] * 10 + cfg["seed"]])}

    def evaluate(setting: str, seed: int, cfg: dict, result: dict) -> tuple[dict, dict]:
        return {"score": float(result["w"][0]), "MAE": 10.0 - float(result["w"][0])}, {"note": setting}

    return config, train, evaluate


def test_run_study_trains_each_run_once_in_one_thread(tmp_path, capsys):
    calls, threads = [], []
    config, train, evaluate = _toy(calls, threads)
    torch.set_num_threads(2)
    study = run_study(["slow", "fast"], [0, 1], config=config, train=train, evaluate=evaluate, cache_name="toy",
                      cache_dir=tmp_path)
    out = capsys.readouterr().out
    assert len(calls) == 4 and set(threads) == {1} and torch.get_num_threads() == 2
    # seed-major order, one progress line per run, and a time-left estimate while runs remain
    assert [(c["lr"], c["seed"]) for c in calls] == [(0.1, 0), (0.5, 0), (0.1, 1), (0.5, 1)]
    assert "4 to train" in out and "1/4 'slow' seed 0: trained" in out and "left" in out
    assert list(study.long.columns) == ["setting", "seed", "metric", "value"]
    assert study.runs[("fast", 1)].metrics == {"score": 6.0, "MAE": 4.0}
    assert study.runs[("fast", 1)].extra == {"note": "fast"} and not study.runs[("fast", 1)].cached
    # a second study with one more seed trains only the new runs
    again = run_study(["slow", "fast"], [0, 1, 2], config=config, train=train, evaluate=evaluate, cache_name="toy",
                      cache_dir=tmp_path, log=False)
    assert len(calls) == 6 and again.runs[("slow", 0)].cached and not again.runs[("slow", 2)].cached


def test_run_study_rows_and_claims(tmp_path):
    config, train, evaluate = _toy([], [])
    study = run_study(["slow", "fast"], [0, 1, 2], config=config, train=train, evaluate=evaluate, cache_name="toy",
                      cache_dir=tmp_path, log=False)
    rows = study.rows("T", paper={"fast": {"score": 7.0}}, metrics=["score", "MAE"])
    assert [(r.setting, r.metric) for r in rows] == [("slow", "score"), ("slow", "MAE"), ("fast", "score"),
                                                     ("fast", "MAE")]
    fast = rows[2]
    assert fast.values == [5.0, 6.0, 7.0] and fast.seeds == [0, 1, 2] and fast.paper == 7.0 and not fast.exact
    assert rows[1].higher_is_better is False and rows[0].higher_is_better is True
    ev = repro.evaluate_claims(rows, [Claim("fast beats slow", "score", "fast", "slow", "T"),
                                      Claim("fast counts better", "MAE", "fast", "slow", "T")])
    # paired differences are exactly 4 at every seed: no noise, both reproduce
    assert [c.state for c in ev] == ["reproduced", "reproduced"] and ev[0].gap == pytest.approx(4.0)
    sentences = claim_sentences(ev)
    assert sentences[0].startswith("[reproduced] fast beats slow")


def test_rows_from_long_marks_exact_rows_and_checks_columns():
    df = pd.DataFrame([{"setting": "GAK", "seed": -1, "metric": "AP", "value": 30.0},
                       {"setting": "net", "seed": 0, "metric": "AP", "value": 40.0},
                       {"setting": "net", "seed": 1, "metric": "AP", "value": 44.0}])
    gak, net = rows_from_long(df, "II")
    assert gak.exact and gak.seeds is None and net.seeds == [0, 1] and not net.exact
    (c,) = repro.evaluate_claims([gak, net], [Claim("net beats GAK", "AP", "net", "GAK")])
    # only the network row is noisy: se = std([40, 44]) / sqrt(2) = 2
    assert c.gap == pytest.approx(12.0) and c.gap_se == pytest.approx(2.0) and c.state == "reproduced"
    with pytest.raises(ValueError, match="lacks column"):
        rows_from_long(df.drop(columns="seed"), "II")


@pytest.mark.parametrize("settings,seeds,match", [([], [0], "no settings"), (["a", "a"], [0], "unique"),
                                                   (["a"], [], "no seeds"), (["a"], [-1], "non-negative"),
                                                   (["a"], [0, 0], "unique")])
def test_run_study_rejects_bad_grids(tmp_path, settings, seeds, match):
    config, train, evaluate = _toy([], [])
    with pytest.raises(ValueError, match=match):
        run_study(settings, seeds, config=config, train=train, evaluate=evaluate, cache_name="toy",
                  cache_dir=tmp_path)


def test_format_duration():
    assert [format_duration(s) for s in (4.4, 65, 3725)] == ["4s", "1m05s", "1h02m"]


def _picklable_train(cfg: dict) -> dict:
    import os

    return {"w": torch.tensor([cfg["lr"] * 10 + cfg["seed"]]), "pid": os.getpid(), "threads": torch.get_num_threads()}


def test_run_study_trains_pending_runs_in_worker_processes(tmp_path, capsys):
    import os

    config, _, evaluate = _toy([], [])
    seen_deps = []

    def depends_on(cfg: dict) -> list:
        seen_deps.append(cfg["seed"])
        return [{"lr": 0.0, "seed": cfg["seed"]}]

    par = run_study(["slow", "fast"], [0, 1], config=config, train=_picklable_train, evaluate=evaluate,
                    cache_name="toy", cache_dir=tmp_path / "par", jobs=2, depends_on=depends_on)
    out = capsys.readouterr().out
    assert "2 processes" in out and "prerequisite" in out
    results = [r.result for r in par.runs.values()]
    assert all(r["pid"] != os.getpid() and r["threads"] == 1 for r in results)
    # the prerequisites (one per seed) were trained into the same cache before the runs
    assert len(list((tmp_path / "par" / "toy").glob("*.pt"))) == 6 and sorted(set(seen_deps)) == [0, 1]
    seq = run_study(["slow", "fast"], [0, 1], config=config, train=_picklable_train, evaluate=evaluate,
                    cache_name="toy", cache_dir=tmp_path / "seq", jobs=1, log=False)
    assert par.long.equals(seq.long)
    with pytest.raises(ValueError, match="jobs"):
        run_study(["slow"], [0], config=config, train=_picklable_train, evaluate=evaluate, cache_name="toy",
                  cache_dir=tmp_path, jobs=0)


def test_default_jobs_reads_the_environment(monkeypatch):
    from crowdlib.study import default_jobs

    monkeypatch.setenv("CROWDLIB_STUDY_JOBS", "3")
    assert default_jobs() == 3
    monkeypatch.setenv("CROWDLIB_STUDY_JOBS", "two")
    with pytest.raises(ValueError, match="CROWDLIB_STUDY_JOBS must be an integer"):
        default_jobs()
    monkeypatch.setenv("CROWDLIB_STUDY_JOBS", "0")
    with pytest.raises(ValueError, match=">= 1"):
        default_jobs()
    monkeypatch.delenv("CROWDLIB_STUDY_JOBS")
    assert default_jobs() >= 1


def test_training_throughput_means_over_seeds_per_set_and_setting():
    from crowdlib.study import training_throughput

    runs = {"a": {("x", 0): {"train_seconds": 10.0, "images_per_s": 4.0}, ("x", 1): {"train_seconds": 20.0,
                                                                               "images_per_s": 2.0}},
            "b": {("y", 0): {"train_seconds": 5.0, "images_per_s": 8.0}}}
    t = training_throughput(runs)
    assert t.loc[("a", "x"), "train seconds"] == 15.0 and t.loc[("a", "x"), "training images/s"] == 3.0
    assert list(t.index) == [("a", "x"), ("b", "y")]
