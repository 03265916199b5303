"""Reproducibility: seeding, provenance, config hashing, atomic checkpoints, a trained-model cache, and the
results/claims record every reproducing notebook writes.

- ``seed_everything(seed)`` seeds Python, NumPy and torch (and returns a seeded ``torch.Generator`` for
  DataLoaders; pass ``seed_worker`` as ``worker_init_fn``). ``deterministic=True`` also asks torch for
  deterministic algorithms.
- ``save_checkpoint`` writes to a temporary file in the same folder, fsyncs it and renames it over the target,
  so a crash mid-write leaves the previous checkpoint intact. ``load_checkpoint`` uses
  ``torch.load(weights_only=True)``: checkpoints hold plain containers of tensors, numbers and strings, and a
  truncated or foreign file raises :class:`CheckpointError` instead of being silently retrained over.
- ``get_or_train(cfg, train_fn, name=...)`` caches ``train_fn(cfg)``'s returned dict under
  ``$CROWDLIB_CACHE/<name>/<config_hash>-<code_version>.pt`` (the code version hashes the method's training
  source files, so changed training code retrains) and logs every use for the provenance records.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import random
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crowdlib import paths
from crowdlib.cpu_isa import check_cpu_isa_pin, cpu_kernel_info

__all__ = [
    "seed_everything", "seed_worker", "fixed_threads", "TRAIN_THREADS", "apply_overrides", "config_hash", "provenance", "lock_status",
    "git_info",
    "CheckpointError", "save_checkpoint", "load_checkpoint", "get_or_train",
    "cache_path", "code_version", "cache_uses", "CODE_SOURCES", "Row", "Claim", "STATES", "gap_and_se",
    "claim_state", "evaluate_claims", "build_results",
    "rows_from_doc", "check_results",
]


# --------------------------------------------------------------------------- seeding
def seed_everything(seed: int, deterministic: bool = False) -> torch.Generator:
    """Seed ``random``, NumPy and torch (CPU and CUDA); return a ``torch.Generator`` seeded with ``seed``.

    With ``deterministic=True`` torch is asked for deterministic algorithms (``warn_only`` so that ops without a
    deterministic implementation warn rather than fail) and cuDNN benchmarking is switched off.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    g = torch.Generator()
    g.manual_seed(seed)
    return g


#: Intra-op thread count of every training and evaluation run of a study, whatever the machine: float sums are
#: ordered by the thread partition, so a fixed count makes runs bit-identical across machines with the same versions.
TRAIN_THREADS = 1


class fixed_threads(contextlib.ContextDecorator):
    """Run a block (or a decorated function) with ``torch.set_num_threads(threads)`` and deterministic algorithms.

    The previous thread count and deterministic-algorithms setting are restored on exit, so the caller's ambient
    settings (``CROWDLIB_TORCH_THREADS``, ``OMP_NUM_THREADS``) never reach a training run. Nested uses are fine.
    Speed comes from running independent runs in parallel processes (``make reproduce JOBS=N``), not threads.
    """

    def __init__(self, threads: int = TRAIN_THREADS) -> None:
        if not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ValueError(f"fixed_threads: threads must be a positive integer, got {threads!r}")
        self.threads = int(threads)
        self._saved: list[tuple[int, bool, bool]] = []

    def __enter__(self) -> "fixed_threads":
        self._saved.append((torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                            torch.is_deterministic_algorithms_warn_only_enabled()))
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        check_cpu_isa_pin()
        return self

    def __exit__(self, *exc: object) -> None:
        threads, det, warn = self._saved.pop()
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det, warn_only=warn)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for DataLoaders: derive NumPy and ``random`` seeds from torch's per-worker seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


# --------------------------------------------------------------------------- hashing / provenance
def _canonical(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return repr(f) if not math.isfinite(f) else f
    if isinstance(obj, np.ndarray):
        return _canonical(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    raise TypeError(f"config_hash: cannot hash value of type {type(obj).__name__}: {obj!r}")


def apply_overrides(defaults: Mapping[str, Any], overrides: Mapping[str, Any],
                    name: str = "make_config") -> dict[str, Any]:
    """A deep copy of a method's flat ``defaults`` with ``overrides`` applied, as every ``make_config`` starts.

    A ``data`` override that is a mapping of the same ``kind`` as the default ``data`` is merged into it key by
    key; one of another kind replaces it. Every other key is replaced by a deep copy of its override.

    Raises:
        ValueError: naming ``name``, on a key that ``defaults`` does not have.
    """
    import copy

    bad = sorted(set(overrides) - set(defaults))
    if bad:
        raise ValueError(f"{name}: unknown config key(s) {bad}; valid keys: {sorted(defaults)}")
    cfg = copy.deepcopy(dict(defaults))
    for k, v in overrides.items():
        if k == "data" and isinstance(v, Mapping) and isinstance(cfg.get("data"), Mapping):
            d = dict(cfg["data"]) if v.get("kind", cfg["data"].get("kind")) == cfg["data"].get("kind") else {}
            d.update(copy.deepcopy(dict(v)))
            cfg["data"] = d
        else:
            cfg[k] = copy.deepcopy(v)
    return cfg


def config_hash(cfg: Mapping[str, Any], length: int = 12) -> str:
    """A stable hex digest of a configuration (key order does not matter; tuples hash like lists)."""
    blob = json.dumps(_canonical(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def git_info(root: Path | None = None) -> dict[str, Any]:
    """``{"git_sha": ..., "git_dirty": ...}`` of the project checkout (``None`` values outside a git checkout).

    ``git_dirty`` is True when tracked files outside ``reports/`` differ from the commit; ``git_diff_sha256`` is
    then the SHA-256 of that diff (``None`` on a clean tree)."""
    root = root or paths.project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        # reports/ is what a reproduction writes: rewriting it does not make the code that wrote it dirty
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                     ":(exclude)reports"], cwd=root, capture_output=True, text=True, timeout=10,
                                    check=True).stdout.strip())
        diff_hash = None
        if dirty:  # what the uncommitted changes were, as a hash of their diff (reports/ excluded)
            diff = subprocess.run(["git", "diff", "HEAD", "--", ".", ":(exclude)reports"], cwd=root,
                                  capture_output=True, timeout=30, check=True).stdout
            diff_hash = hashlib.sha256(diff).hexdigest()
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": None, "git_dirty": None, "git_diff_sha256": None}
    return {"git_sha": sha, "git_dirty": dirty, "git_diff_sha256": diff_hash}


def _version(mod: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:  # noqa: BLE001 - any failure means "not installed"
        return None


#: Packages whose versions every provenance record lists (the pinned ones that decide numerics and plots).
PROVENANCE_PACKAGES = ("crowdlib", "torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "pillow",
                       "ipywidgets", "papermill", "nbval")


def lock_status(lock: str | Path | None = None) -> dict[str, Any]:
    """Compare the installed versions with the pins of ``requirements-lock.txt`` (the versions that made reports/).

    Returns ``{"lock_file", "lock_sha256", "matches_lock", "differs"}``; ``differs`` maps each pinned package whose
    installed version is another to ``[pinned, installed]`` (``installed`` None when absent). Local build tags
    (``+cpu``, ``+cu130``) are ignored.
    """
    path = Path(lock) if lock is not None else paths.project_root() / "requirements-lock.txt"
    if not path.is_file():
        return {"lock_file": None, "lock_sha256": None, "matches_lock": None, "differs": {}}
    text = path.read_text()
    differs = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" not in line:
            continue
        name, pinned = (x.strip() for x in line.split("==", 1))
        installed = _version(name)
        if installed is None or installed.split("+")[0] != pinned.split("+")[0]:
            differs[name] = [pinned, installed]
    return {"lock_file": path.name, "lock_sha256": hashlib.sha256(text.encode()).hexdigest()[:16],
            "matches_lock": not differs, "differs": differs}


def provenance() -> dict[str, Any]:
    """Git SHA and dirty flag, package versions (and whether they match the lock file), torch/CUDA/cuDNN versions,
    the thread count studies train with, device, CPU count, host, time."""
    from crowdlib.device import describe_devices

    info: dict[str, Any] = dict(git_info())
    info.update(
        python=platform.python_version(),
        platform=platform.platform(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        study_threads=TRAIN_THREADS,
        torch=torch.__version__,
        cpu=cpu_kernel_info(),
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        device="cuda" if torch.cuda.is_available() else "cpu",
        devices=describe_devices(),
        packages={p: _version(p) for p in PROVENANCE_PACKAGES},
        lock=lock_status(),
        time_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    return info


# --------------------------------------------------------------------------- checkpoints
class CheckpointError(RuntimeError):
    """A checkpoint file is truncated, corrupt or not a crowdlib checkpoint."""


_MAGIC = "crowdlib-checkpoint-v1"


def save_checkpoint(path: str | Path, obj: Mapping[str, Any]) -> Path:
    """Atomically write ``obj`` (plain containers of tensors, numbers, strings) to ``path``.

    The data go to a temporary file in the same folder, which is flushed, fsynced and renamed over ``path``;
    a crash at any point leaves either the old file or the new one, never a partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"__crowdlib__": _MAGIC, "payload": dict(obj)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated/corrupt, holds disallowed objects, or is not a crowdlib checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise CheckpointError(
            f"checkpoint {path} could not be loaded (truncated, corrupt, or holding non-tensor objects): {exc}. "
            "Delete it to retrain."
        ) from exc
    if not isinstance(data, dict) or data.get("__crowdlib__") != _MAGIC or "payload" not in data:
        raise CheckpointError(f"checkpoint {path} is not a crowdlib checkpoint (missing header {_MAGIC!r})")
    return data["payload"]


#: The source files (globs relative to the ``crowdlib`` package) whose content decides what a cached run of each
#: method contains; their hash is part of the cache key (:func:`code_version`). Other cache names use the whole
#: package.
CODE_SOURCES: dict[str, tuple[str, ...]] = {
    "sdnet": ("methods/sdnet/*.py", "models/csp.py", "models/backbones.py", "losses/csp.py", "losses/base.py",
              "targets/csp.py", "targets/pseudo_sizes.py", "data/*.py", "engine.py", "decode.py", "repro.py"),
    "iim": ("methods/iim/*.py", "models/iim.py", "models/baselines.py", "models/backbones.py", "losses/*.py",
            "targets/*.py", "data/*.py", "engine.py", "decode.py", "repro.py"),
    "ssrhef": ("methods/ssrhef/*.py", "models/ssrhef.py", "losses/ssrhef.py", "losses/base.py", "targets/*.py",
               "data/*.py", "engine.py", "repro.py"),
    "l2r": ("methods/l2r/*.py", "models/l2r.py", "models/backbones.py", "losses/l2r.py", "losses/base.py",
            "targets/ranking.py", "targets/density.py", "targets/_common.py", "data/*.py", "engine.py", "repro.py"),
    "bkt": ("methods/bkt/*.py", "methods/sdnet/*.py", "models/bkt.py", "models/csp.py", "models/backbones.py",
            "losses/bkt.py", "losses/csp.py", "losses/base.py", "targets/*.py", "data/*.py", "engine.py",
            "decode.py", "repro.py"),
}
_CODE_VERSIONS: dict[str, str] = {}


def code_version(name: str) -> str:
    """A 10-hex-digit hash of the training code of cache ``name`` (:data:`CODE_SOURCES`): file names and bytes.

    Part of every cache key, so that changed training code retrains instead of silently reusing a model made by
    other code (computed once per process)."""
    if name not in _CODE_VERSIONS:
        pkg = Path(__file__).resolve().parent
        files = sorted({f for g in CODE_SOURCES.get(name, ("**/*.py",)) for f in pkg.glob(g) if f.is_file()})
        h = hashlib.sha256()
        for f in files:
            h.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
        _CODE_VERSIONS[name] = h.hexdigest()[:10]
    return _CODE_VERSIONS[name]


#: Every cached model this process used (:func:`get_or_train`), for the notebooks' provenance records.
_CACHE_USES: list[dict[str, Any]] = []


def cache_uses() -> list[dict[str, Any]]:
    """The cached models this process used so far: cache name, key, whether it was trained now or loaded, and
    the git SHA, torch version and time of the training that made it (one entry per distinct key)."""
    return [dict(u) for u in _CACHE_USES]


def cache_path(cfg: Mapping[str, Any], name: str, cache_dir: str | Path | None = None) -> Path:
    """Where :func:`get_or_train` keeps the result of ``cfg`` under ``name`` (the file may not exist yet):
    ``<cache>/<name>/<config_hash(cfg)>-<code_version(name)>.pt``."""
    base = Path(cache_dir) if cache_dir is not None else paths.cache_dir()
    return base / name / f"{config_hash(cfg)}-{code_version(name)}.pt"


def get_or_train(cfg: Mapping[str, Any], train_fn: Callable[[dict], Mapping[str, Any]], *, name: str,
                 cache_dir: str | Path | None = None, retrain: bool = False) -> dict[str, Any]:
    """Return the cached result of ``train_fn(cfg)`` for this config, training and caching it if absent.

    The cache file is ``<cache_dir>/<name>/<config_hash(cfg)>.pt`` (``cache_dir`` defaults to
    ``$CROWDLIB_CACHE`` or ``.cache/`` in the project) with the config and the git SHA of the code that trained
    it stored beside the result. A corrupt cache file raises :class:`CheckpointError` (never a silent retrain);
    pass ``retrain=True`` to overwrite it.

    The key is the configuration and :func:`code_version` of ``name``: editing the method's training code
    retrains, editing other code does not. Each use is logged for :func:`cache_uses`.
    """
    path = cache_path(cfg, name, cache_dir)
    if path.exists() and not retrain:
        data = load_checkpoint(path)
        _log_use(name, path, "loaded", data)
        return dict(data["result"])
    result = dict(train_fn(dict(cfg)))
    record = {"config": json.loads(json.dumps(_canonical(cfg))), "result": result,
              "git_sha": git_info()["git_sha"] or "", "torch": str(torch.__version__),
              "trained_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    save_checkpoint(path, record)
    _log_use(name, path, "trained", record)
    return result


def _log_use(name: str, path: Path, how: str, data: Mapping[str, Any]) -> None:
    key = path.stem
    if any(u["name"] == name and u["key"] == key for u in _CACHE_USES):
        return
    _CACHE_USES.append({"name": name, "key": key, "how": how, "trained_git_sha": data.get("git_sha") or None,
                        "trained_torch": data.get("torch"), "trained_utc": data.get("trained_utc")})


# --------------------------------------------------------------------------- results and claims
def _clean_float(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class Row:
    """One measured table cell: a metric for a setting, one value per seed, beside the paper's number.

    ``seeds`` names the training seed of each value (used to pair two rows' values seed by seed); ``exact=True``
    marks a row whose values depend on no training seed (a deterministic computation, e.g. pseudo boxes without a
    network): its spread is zero by construction, not unknown.
    """

    table: str
    setting: str
    metric: str
    values: Sequence[float]
    paper: float | None = None
    higher_is_better: bool = True
    seeds: Sequence[int] | None = None
    exact: bool = False
    mean: float = field(init=False)
    std: float = field(init=False)

    def __post_init__(self) -> None:
        vals = [float(v) for v in self.values]
        if not vals:
            raise ValueError(f"Row {self.table}/{self.setting}/{self.metric}: no values")
        self.values = vals
        if self.seeds is not None:
            self.seeds = [int(s) for s in self.seeds]
            if len(self.seeds) != len(vals):
                raise ValueError(f"Row {self.table}/{self.setting}/{self.metric}: {len(self.seeds)} seeds for "
                                 f"{len(vals)} values")
        arr = np.asarray(vals, dtype=float)
        self.mean = float(np.mean(arr))
        self.std = float(np.std(arr, ddof=1)) if len(arr) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["values"] = [_clean_float(v) for v in self.values]
        d["mean"], d["std"], d["paper"] = _clean_float(self.mean), _clean_float(self.std), _clean_float(self.paper)
        return d


_RELATIONS = (">", ">=")
#: The three states of a claim (see :func:`claim_state`).
STATES: tuple[str, ...] = ("reproduced", "inconclusive", "contradicted")


@dataclass
class Claim:
    """A statement of the paper that our rows can check: ``better`` beats ``worse`` on ``metric``.

    "Beats" means a higher mean when the metric's rows say ``higher_is_better`` and a lower mean otherwise;
    ``relation`` is ``">"`` (strict) or ``">="`` (an exact tie also reproduces it). :func:`evaluate_claims` fills in
    ``state`` (one of :data:`STATES`), ``gap`` (the paper's direction positive) and ``gap_se`` (its standard error
    across seeds; ``None`` when the seed noise is unknown), see :func:`claim_state`.
    """

    text: str
    metric: str
    better: str
    worse: str
    table: str | None = None
    relation: str = ">"
    state: str | None = None
    gap: float | None = None
    gap_se: float | None = None
    better_mean: float | None = None
    worse_mean: float | None = None
    better_std: float | None = None
    worse_std: float | None = None
    higher_is_better: bool | None = None

    @property
    def reproduced(self) -> bool | None:
        """True only for a robust reproduction (state ``"reproduced"``); ``None`` before evaluation."""
        return None if self.state is None else self.state == "reproduced"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("gap", "gap_se", "better_mean", "worse_mean", "better_std", "worse_std"):
            d[k] = _clean_float(d[k])
        d["reproduced"] = self.reproduced
        return d


def gap_and_se(better: Row, worse: Row) -> tuple[float, float | None]:
    """The gap ``better - worse`` in the paper's direction and its standard error across seeds.

    Exact rows add no noise. When both rows are noisy and hold the same seeds (two or more), the standard error is
    that of the mean per-seed difference (the settings share each seed's data order and initialisation); otherwise
    the Welch standard error ``sqrt(s_b^2 / n_b + s_w^2 / n_w)`` over the noisy rows. A noisy row with fewer than two
    values leaves the noise unknown (``None``).
    """
    sign = 1.0 if better.higher_is_better else -1.0
    gap = sign * (better.mean - worse.mean)
    noisy = [r for r in (better, worse) if not r.exact]
    if any(len(r.values) < 2 for r in noisy):
        return gap, None
    if len(noisy) == 2 and better.seeds is not None and better.seeds == worse.seeds:
        d = sign * (np.asarray(better.values) - np.asarray(worse.values))
        return gap, float(np.std(d, ddof=1) / math.sqrt(len(d)))
    return gap, float(math.sqrt(sum(r.std ** 2 / len(r.values) for r in noisy)))


def claim_state(gap: float, se: float | None, relation: str = ">") -> str:
    """``"reproduced"`` when the gap (paper's direction positive) exceeds its standard error, ``"contradicted"`` when
    it is below minus its standard error, ``"inconclusive"`` in between or when the noise is unknown (``se`` None).

    With no noise at all (``se == 0``, e.g. two exact rows) the sign decides; an exact tie reproduces ``">="`` and is
    inconclusive for ``">"``.
    """
    if relation not in _RELATIONS:
        raise ValueError(f"relation must be one of {list(_RELATIONS)}, got {relation!r}")
    if not math.isfinite(gap) or se is None or not math.isfinite(se):
        return "inconclusive"
    if gap > se:
        return "reproduced"
    if gap < -se:
        return "contradicted"
    if se == 0.0 and gap == 0.0 and relation == ">=":
        return "reproduced"
    return "inconclusive"


def _find_row(rows: Sequence[Row], claim: Claim, setting: str) -> Row:
    hits = [r for r in rows if r.metric == claim.metric and r.setting == setting
            and (claim.table is None or r.table == claim.table)]
    if len(hits) != 1:
        raise ValueError(f"claim {claim.text!r}: expected one row for setting={setting!r} metric={claim.metric!r}"
                         f" table={claim.table!r}, found {len(hits)}")
    return hits[0]


def evaluate_claims(rows: Sequence[Row], claims: Sequence[Claim]) -> list[Claim]:
    """Fill in each claim's state, gap, standard error and both rows' means and stds.

    Raises:
        ValueError: when a claim's rows are missing or ambiguous, or the two rows disagree on the direction of the
            metric (one higher-is-better, the other not).
    """
    out = []
    for c in claims:
        if c.relation not in _RELATIONS:
            raise ValueError(f"claim {c.text!r}: relation must be one of {list(_RELATIONS)}")
        b, w = _find_row(rows, c, c.better), _find_row(rows, c, c.worse)
        if b.higher_is_better != w.higher_is_better:
            raise ValueError(f"claim {c.text!r}: rows {b.setting!r} and {w.setting!r} disagree on whether higher "
                             f"{c.metric} is better")
        gap, se = gap_and_se(b, w)
        out.append(Claim(c.text, c.metric, c.better, c.worse, c.table, c.relation, claim_state(gap, se, c.relation),
                         gap, se, b.mean, w.mean, b.std, w.std, b.higher_is_better))
    return out


def build_results(rows: Sequence[Row], claims: Sequence[Claim], *, profile: str, seeds: Sequence[int] | None,
                  wall_time_s: float, notebook: str) -> dict[str, Any]:
    """The ``results.json`` document of one notebook (claims evaluated from the rows)."""
    evaluated = evaluate_claims(rows, claims)
    return {
        "notebook": notebook,
        "rows": [r.to_dict() for r in rows],
        "claims": [c.to_dict() for c in evaluated],
        "profile": profile,
        "seeds": list(seeds) if seeds is not None else None,
        "wall_time_s": float(wall_time_s),
        "git_sha": git_info()["git_sha"],
    }


def rows_from_doc(doc: Mapping[str, Any]) -> list[Row]:
    """The :class:`Row` s of a ``results.json`` document (values that were not finite come back as NaN)."""
    rows = []
    for r in doc.get("rows", []):
        vals = [float("nan") if v is None else float(v) for v in r["values"]] or [float("nan")]
        rows.append(Row(r["table"], r["setting"], r["metric"], vals, r.get("paper"), r["higher_is_better"],
                        r.get("seeds"), bool(r.get("exact", False))))
    return rows


def _differs(stored: Any, derived: float | None, tol: float = 1e-9) -> bool:
    if stored is None or derived is None or not math.isfinite(derived):
        return (stored is None) != (derived is None or not math.isfinite(derived))
    return abs(float(stored) - float(derived)) > tol * max(1.0, abs(float(derived)))


def check_results(doc: Mapping[str, Any]) -> list[str]:
    """Re-derive every stored number of a results document from the per-seed values; list the disagreements.

    Checked: each row's mean and std, and each claim's state, ``reproduced`` flag, gap, standard error, and both
    means and stds. An empty list means the document is self-consistent.
    """
    problems = []
    rows = rows_from_doc(doc)
    for r, stored in zip(rows, doc.get("rows", [])):
        for k in ("mean", "std"):
            if _differs(stored.get(k), getattr(r, k)):
                problems.append(f"row {r.table}/{r.setting}/{r.metric}: stored {k}={stored.get(k)} but values give "
                                f"{getattr(r, k)}")
    for c in doc.get("claims", []):
        claim = Claim(c["text"], c["metric"], c["better"], c["worse"], c.get("table"), c.get("relation", ">"))
        try:
            (ev,) = evaluate_claims(rows, [claim])
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if ev.state != c.get("state"):
            problems.append(f"claim {c['text']!r}: stored state={c.get('state')!r} but rows give {ev.state!r}")
        if ev.reproduced != c.get("reproduced"):
            problems.append(f"claim {c['text']!r}: stored reproduced={c.get('reproduced')} but rows give "
                            f"{ev.reproduced}")
        for k in ("gap", "gap_se", "better_mean", "worse_mean", "better_std", "worse_std"):
            if _differs(c.get(k), getattr(ev, k)):
                problems.append(f"claim {c['text']!r}: stored {k}={c.get(k)} but rows give {getattr(ev, k)}")
    return problems
