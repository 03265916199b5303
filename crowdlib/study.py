"""The study runner every paper's notebooks use: a grid of named settings x seeds -> cached training runs -> a long
table of per-seed metrics -> :class:`~crowdlib.repro.Row` s -> the paper's :class:`~crowdlib.repro.Claim` s.

A paper supplies three plain functions and the runner does the rest::

    study = run_study(["neither", "both"], seeds=[0, 1, 2],
                      config=lambda setting, seed: {...},           # the full, hashable run config
                      train=my_train_fn, cache_name="sdnet",         # train(cfg) -> checkpointable dict
                      evaluate=lambda setting, seed, cfg, result: {"MAE": ..., "AP@0.5": ...})
    rows = rows_from_long(study.long, "III", paper=PAPER_TABLE3, metrics=["AP@0.5", "MAE"])
    claims_df = reporter.results(rows, claims)                       # the claims' states are computed there

- Every run is trained at most once: ``repro.get_or_train(cfg, train, name=cache_name)`` keys the cache by the
  config, so notebooks asking for the same run share it.
- Training *and* evaluation run under :class:`crowdlib.repro.fixed_threads` (one intra-op thread by default,
  deterministic algorithms), whatever the machine's ambient thread settings: another machine with the pinned
  versions reaches bit-identical weights and rows. Speed comes from running notebooks in parallel processes
  (``make reproduce JOBS=N``), not from threads.
- Parallel processes: with ``jobs > 1`` (default: ``$CROWDLIB_STUDY_JOBS``, else the number of CPU cores) the runs
  missing from the cache are trained first in that many worker processes, each with its fixed thread count, so the
  results are bit-identical to a sequential study; runs that others start from (``depends_on``, e.g. IIM's shared
  warm start) are trained before them. ``train`` must then be picklable (a module-level function or a
  ``functools.partial`` of one); otherwise the study trains sequentially and says so.
- Progress: one line per run (which setting and seed, cached or trained, and the estimated time left for the runs
  still to train), printed as it goes.
- The long table has columns ``setting, seed, metric, value``; a ``seed`` of ``-1`` marks a value that depends on no
  training seed (an exact row, e.g. pseudo boxes computed without a network).
"""
from __future__ import annotations

import math
import os
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crowdlib import repro

__all__ = ["StudyRun", "Study", "run_study", "default_jobs", "training_throughput", "rows_from_long", "claim_sentences",
           "LOWER_IS_BETTER",
           "lower_is_better", "format_duration"]

#: Metric-name prefixes whose rows are "lower is better" unless a paper says otherwise.
LOWER_IS_BETTER: tuple[str, ...] = ("MAE", "RMSE", "MSE", "NAE", "MLE", "size error")


def lower_is_better(metric: str) -> bool:
    """Whether a metric is an error (``MAE``, ``RMSE``, ``MSE``, ``NAE``, ``MLE``, ``size error`` and variants)."""
    return str(metric).startswith(LOWER_IS_BETTER)


def format_duration(seconds: float) -> str:
    """``"45s"``, ``"3m05s"`` or ``"1h02m"``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


@dataclass
class StudyRun:
    """One (setting, seed) of a study: its config, training result, metrics and whatever its evaluation kept."""

    setting: str
    seed: int
    config: dict[str, Any]
    result: dict[str, Any]
    metrics: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)
    cached: bool = False
    train_seconds: float = 0.0


@dataclass
class Study:
    """The outcome of :func:`run_study`: the long table and every run, keyed by ``(setting, seed)``."""

    long: Any
    runs: dict[tuple[str, int], StudyRun]

    def rows(self, table: str, paper: Mapping[str, Mapping[str, float]] | None = None,
             metrics: Sequence[str] | None = None) -> list[repro.Row]:
        """:func:`rows_from_long` of this study's long table."""
        return rows_from_long(self.long, table, paper, metrics)


def _check_grid(settings: Sequence[str], seeds: Sequence[int]) -> tuple[list[str], list[int]]:
    names = [str(s) for s in settings]
    if not names:
        raise ValueError("run_study: no settings given")
    if len(set(names)) != len(names):
        raise ValueError(f"run_study: setting names must be unique, got {names}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("run_study: no seeds given")
    for s in seeds:
        if not isinstance(s, int) or isinstance(s, bool) or s < 0:
            raise ValueError(f"run_study: seeds must be non-negative integers, got {s!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"run_study: seeds must be unique, got {seeds}")
    return names, seeds


def _progress_file_line(line: str) -> None:
    """Append a progress line to ``$CROWDLIB_PROGRESS_FILE`` when set: ``make reproduce`` streams that file while
    a notebook runs, so long studies show their progress outside the notebook too."""
    path = os.environ.get("CROWDLIB_PROGRESS_FILE")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line.rstrip("\n") + "\n")
    except OSError:  # progress is a courtesy: never fail a study over it
        pass


def default_jobs() -> int:
    """Worker processes of a study: ``$CROWDLIB_STUDY_JOBS`` when set, else the CPU cores this process may use."""
    from crowdlib.device import positive_int_env

    n = positive_int_env("CROWDLIB_STUDY_JOBS")
    if n is not None:
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _train_job(cfg: dict[str, Any], train: Callable, cache_name: str, cache_dir: Any, threads: int) -> float:
    """Worker: train one run into the cache under fixed threads; return its wall seconds."""
    t0 = time.perf_counter()
    with repro.fixed_threads(threads):
        repro.get_or_train(cfg, train, name=cache_name, cache_dir=cache_dir)
    return time.perf_counter() - t0


def _train_parallel(todo: list[tuple[str, dict[str, Any]]], train: Callable, cache_name: str, cache_dir: Any,
                    threads: int, jobs: int, say: Callable[[str], None]) -> dict[str, float]:
    """Train ``[(label, cfg)]`` in ``jobs`` spawned processes; return ``{config hash: seconds}``."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_train_job, cfg, train, cache_name, cache_dir, threads): (label, cfg)
                   for label, cfg in todo}
        for k, fut in enumerate(as_completed(futures), 1):
            label, cfg = futures[fut]
            secs[repro.config_hash(cfg)] = fut.result()
            left = len(todo) - k
            eta = (time.perf_counter() - t0) / k * left
            say(f"trained {label} in {format_duration(secs[repro.config_hash(cfg)])} ({k}/{len(todo)})"
                + (f"; about {format_duration(eta)} left" if left else ""))
    return secs


def run_study(settings: Sequence[str], seeds: Sequence[int], *,
              config: Callable[[str, int], Mapping[str, Any]],
              train: Callable[[dict[str, Any]], Mapping[str, Any]],
              evaluate: Callable[[str, int, dict[str, Any], dict[str, Any]], Any] | None,
              cache_name: str, cache_dir: Any = None, threads: int = repro.TRAIN_THREADS,
              jobs: int | None = None, depends_on: Callable[[dict[str, Any]], Sequence[Mapping[str, Any]]] | None = None,
              log: bool = True, title: str | None = None) -> Study:
    """Train (or fetch from the cache) every setting x seed and evaluate each run.

    Args:
        settings: setting names, in table order.
        seeds: training seeds (non-negative, unique).
        config: ``config(setting, seed)`` -> the full run config (hashable by :func:`crowdlib.repro.config_hash`).
        train: ``train(cfg)`` -> a checkpointable dict; called only on a cache miss.
        evaluate: ``evaluate(setting, seed, cfg, result)`` -> ``{metric: value}`` or ``({metric: value}, extra)``,
            ``extra`` a dict kept on the :class:`StudyRun` (predictions, maps, ...); ``None``: train only.
        cache_name: the cache folder of this kind of run (``"sdnet"``, ``"iim"``).
        threads: intra-op threads for training and evaluation (fixed, so that results do not depend on the machine).
        jobs: worker processes for the runs to train (default :func:`default_jobs`); 1 trains in this process.
        depends_on: ``depends_on(cfg)`` -> configs (same ``train`` and cache) that the run starts from; with
            ``jobs > 1`` they are trained first.
        log: print progress lines.

    Runs go seed by seed (all settings of the first seed, then the next), so a partial study already holds complete
    tables for its first seeds.
    """
    import pandas as pd

    names, seeds = _check_grid(settings, seeds)
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise ValueError(f"run_study: jobs must be >= 1, got {jobs}")
    jobs_list = [(s, sd) for sd in seeds for s in names]
    cfgs = {job: dict(config(*job)) for job in jobs_list}
    hashes = {job: repro.config_hash(c) for job, c in cfgs.items()}
    missing = lambda c: not repro.cache_path(c, cache_name, cache_dir).exists()  # noqa: E731
    pending = {h for job, h in hashes.items() if missing(cfgs[job])}
    label = title or cache_name
    t_study = time.perf_counter()

    def say(msg: str) -> None:
        if log:
            line = f"[study {label}] {msg}"
            print(line, flush=True)
            _progress_file_line(line)

    note = ""
    if jobs > 1 and len(pending) > 1:
        try:
            pickle.dumps(train)
        except Exception as exc:  # noqa: BLE001 - any pickling failure means "train in this process"
            note = f"; the train function cannot go to worker processes ({type(exc).__name__}), so one process"
            jobs = 1
    procs = min(jobs, max(len(pending), 1))
    say(f"{len(names)} settings x {len(seeds)} seeds = {len(jobs_list)} runs, {len(pending)} to train "
        f"({threads} thread{'s' if threads > 1 else ''} each, {procs} process{'es' if procs > 1 else ''}{note})")
    trained: dict[str, float] = {}
    if jobs > 1 and len(pending) > 1:
        deps: dict[str, dict[str, Any]] = {}
        for job in jobs_list:
            if hashes[job] in pending and depends_on is not None:
                for d in depends_on(cfgs[job]) or ():
                    d = dict(d)
                    if missing(d):
                        deps.setdefault(repro.config_hash(d), d)
        if deps:
            trained.update(_train_parallel([(f"prerequisite {h}", d) for h, d in deps.items()], train, cache_name,
                                           cache_dir, threads, jobs, say))
        todo, seen = [], set()
        for job in jobs_list:
            if hashes[job] in pending and hashes[job] not in seen:
                seen.add(hashes[job])
                todo.append((f"{job[0]!r} seed {job[1]}", cfgs[job]))
        trained.update(_train_parallel(todo, train, cache_name, cache_dir, threads, jobs, say))
    recs: list[dict[str, Any]] = []
    runs: dict[tuple[str, int], StudyRun] = {}
    trained_secs: list[float] = []
    for k, (setting, seed) in enumerate(jobs_list, 1):
        cfg, h = cfgs[(setting, seed)], hashes[(setting, seed)]
        was_pending = h in pending
        t0 = time.perf_counter()
        with repro.fixed_threads(threads):
            result = repro.get_or_train(cfg, train, name=cache_name, cache_dir=cache_dir)
            t_train = trained.get(h, time.perf_counter() - t0)
            t_eval = time.perf_counter()
            out = evaluate(setting, seed, cfg, result) if evaluate is not None else {}
            t_eval = time.perf_counter() - t_eval
        metrics, extra = (out if isinstance(out, tuple) else (out, {}))
        metrics = {str(m): float(v) for m, v in dict(metrics).items()}
        for m, v in metrics.items():
            recs.append({"setting": setting, "seed": int(seed), "metric": m, "value": v})
        runs[(setting, int(seed))] = StudyRun(setting, int(seed), cfg, dict(result), metrics, dict(extra or {}),
                                              cached=not was_pending, train_seconds=t_train if was_pending else 0.0)
        if was_pending and h not in trained:
            trained_secs.append(t_train)
        pending.discard(h)
        if log:
            what = f"trained in {format_duration(t_train)}" if was_pending else "cached"
            left = ""
            if pending:
                eta = (sum(trained_secs) / len(trained_secs) * len(pending)) if trained_secs else float("nan")
                left = (f"; {len(pending)} to train, about {format_duration(eta)} left" if math.isfinite(eta)
                        else f"; {len(pending)} to train")
            ev = f", evaluated in {format_duration(t_eval)}" if evaluate is not None else ""
            say(f"{k}/{len(jobs_list)} {setting!r} seed {seed}: {what}{ev}{left}")
    say(f"done in {format_duration(time.perf_counter() - t_study)}")
    return Study(pd.DataFrame(recs, columns=["setting", "seed", "metric", "value"]), runs)


def rows_from_long(df: Any, table: str, paper: Mapping[str, Mapping[str, float]] | None = None,
                   metrics: Sequence[str] | None = None,
                   higher_is_better: Callable[[str], bool] | Mapping[str, bool] | None = None) -> list[repro.Row]:
    """One :class:`crowdlib.repro.Row` per (setting, metric) of a long table, values in seed order.

    Settings come in order of first appearance; metrics in the order of ``metrics`` (default: order of first
    appearance). A row whose seeds are all ``-1`` is exact (its values depend on no training seed).
    ``higher_is_better``: a function or mapping of metric -> bool (default: errors such as MAE are lower-is-better).
    """
    missing = {"setting", "seed", "metric", "value"} - set(df.columns)
    if missing:
        raise ValueError(f"rows_from_long: the long table lacks column(s) {sorted(missing)}")
    paper = paper or {}

    def hib(m: str) -> bool:
        if callable(higher_is_better):
            return bool(higher_is_better(m))
        if isinstance(higher_is_better, Mapping) and m in higher_is_better:
            return bool(higher_is_better[m])
        return not lower_is_better(m)

    order = list(metrics) if metrics is not None else list(dict.fromkeys(df["metric"]))
    rows = []
    for setting in dict.fromkeys(df["setting"]):
        sub = df[df["setting"] == setting]
        for m in order:
            grp = sub[sub["metric"] == m]
            if grp.empty:
                continue
            seeds = [int(s) for s in grp["seed"]]
            exact = all(s < 0 for s in seeds)
            rows.append(repro.Row(table, setting, m, [float(v) for v in grp["value"]],
                                  paper=paper.get(setting, {}).get(m), higher_is_better=hib(m),
                                  seeds=None if exact else seeds, exact=exact))
    return rows


def claim_sentences(claims: Any, digits: int = 3) -> list[str]:
    """One plain sentence per evaluated claim, its state first: ``Reporter.results``' DataFrame (its ``reading``
    column) or a list of evaluated :class:`~crowdlib.repro.Claim` s."""
    from crowdlib.report import claim_reading

    if hasattr(claims, "to_dict"):
        return [f"[{c['state']}] {c['claim']}: {c['reading']}" for c in claims.to_dict("records")]
    return [f"[{c.state}] {c.text}: {claim_reading(c, digits)}" for c in claims]


def training_throughput(runs_by_set: Mapping[str, Mapping[tuple[str, int], Mapping[str, Any]]]) -> Any:
    """Training seconds and images/s per (dataset, setting), mean over seeds, from ``{dataset: {(setting, seed):
    training result}}`` (results that carry ``train_seconds`` and ``images_per_s``, as every method's do)."""
    import pandas as pd

    recs = [{"set": name, "setting": setting, "train seconds": float(res["train_seconds"]),
             "training images/s": float(res["images_per_s"])}
            for name, runs in runs_by_set.items() for (setting, _seed), res in runs.items()]
    return pd.DataFrame(recs, columns=["set", "setting", "train seconds", "training images/s"]).groupby(
        ["set", "setting"], sort=False).mean()
