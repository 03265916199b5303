"""L2R training: the paradigm schedules (which loss is active at which step), the mini-batches of labelled crops
and unlabeled nests, :func:`crowdlib.engine.train_one_epoch` in chunks of ``eval_every`` steps, model selection on
validation images carved from the labelled training images, and the ``get_or_train`` cache (name ``"l2r"``)."""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from crowdlib.device import pick_device
from crowdlib.engine import train_one_epoch
from crowdlib.models.registry import build_model
from crowdlib.repro import fixed_threads, seed_everything

from .config import make_config
from .data import LabelledImage, load_labelled, load_pool, load_records, sample_count_crops, sample_nests
from .infer import evaluate_model

__all__ = ["phase", "schedule", "total_steps", "checkpoints", "split_labelled", "L2RBatches", "train_l2r", "load_trained",
           "get_or_train_l2r"]

COUNT, RANK = "count", "rank"


def total_steps(cfg: Mapping[str, Any]) -> int:
    """Optimizer steps of a run: ``steps`` (count, multitask), ``rank_steps`` (rank), ``rank_steps + steps``
    (rank_finetune), or the whole ranking/counting blocks of ``alternate`` that make ``steps`` counting steps."""
    p, s, r, a = cfg["paradigm"], int(cfg["steps"]), int(cfg["rank_steps"]), int(cfg["alternate_every"])
    if p in ("count", "multitask"):
        return s
    if p == "rank":
        return r
    if p == "rank_finetune":
        return r + s
    if p == "alternate":
        full, rest = divmod(s, a)
        return 2 * a * full + (a + rest if rest else 0)
    raise ValueError(f"total_steps: unknown paradigm {p!r}")


def phase(cfg: Mapping[str, Any], step: int) -> frozenset[str]:
    """The losses active at 0-based ``step``: ``{"count"}``, ``{"rank"}`` or both (multitask).

    ``alternate``: blocks of ``alternate_every`` steps, ranking first, then counting, and so on.

    Raises:
        ValueError: ``step`` outside ``0 .. total_steps(cfg) - 1``.
    """
    n = total_steps(cfg)
    if not 0 <= int(step) < n:
        raise ValueError(f"phase: step {step} outside 0..{n - 1} of paradigm {cfg['paradigm']!r}")
    p = cfg["paradigm"]
    if p == "count":
        return frozenset({COUNT})
    if p == "rank":
        return frozenset({RANK})
    if p == "multitask":
        return frozenset({COUNT, RANK})
    if p == "rank_finetune":
        return frozenset({RANK}) if step < int(cfg["rank_steps"]) else frozenset({COUNT})
    return frozenset({RANK}) if (int(step) // int(cfg["alternate_every"])) % 2 == 0 else frozenset({COUNT})


def schedule(cfg: Mapping[str, Any]) -> list[frozenset[str]]:
    """:func:`phase` of every step of a run."""
    return [phase(cfg, k) for k in range(total_steps(cfg))]


def checkpoints(cfg: Mapping[str, Any]) -> tuple[list[int], set[int]]:
    """``(chunk ends, evaluation steps)`` of a run. Validation is scored after every ``eval_every`` *counting*
    steps (and at the end): the same number of checkpoints, after the same numbers of counting updates, in every
    paradigm that counts, so that none gets more chances in the model selection (alternating's ranking blocks would
    otherwise add checkpoints that follow ranking steps only). Training runs in chunks that end at those steps and
    at every ``eval_every`` steps (the logged history). Ranking-only runs are scored once, at the end."""
    total, every = total_steps(cfg), int(cfg["eval_every"])
    marks, n = set(), 0
    for k, p in enumerate(schedule(cfg)):
        if COUNT in p:
            n += 1
            if n % every == 0:
                marks.add(k + 1)
    if n:
        marks.add(total)
    return sorted(set(range(every, total, every)) | marks | {total}), marks


def split_labelled(records: Sequence[Any], cfg: Mapping[str, Any]) -> tuple[list, list]:
    """``(train, validation)`` records: validation (``val_fraction``, ``split_seed``) is carved from all labelled
    training images first, then ``labelled_fraction`` of the rest is kept: the first ``round(f * n)`` (at least
    one) of a ``fraction_seed`` permutation, so that a smaller fraction's images are a subset of a larger one's and
    every fraction is selected on the same validation images.

    Raises:
        ValueError: with fewer than two records or no validation image.
    """
    from crowdlib.data.datasets import split_train_val

    if len(records) < 2:
        raise ValueError(f"split_labelled: need at least 2 labelled records, got {len(records)}")
    tr, va = split_train_val(len(records), float(cfg["val_fraction"]), int(cfg["split_seed"]))
    if len(va) == 0:
        raise ValueError("split_labelled: val_fraction gives no validation image; model selection needs some")
    keep = max(1, int(round(float(cfg["labelled_fraction"]) * len(tr))))
    order = np.random.default_rng(int(cfg["fraction_seed"])).permutation(len(tr))[:keep]
    return [records[int(tr[i])] for i in sorted(order)], [records[int(i)] for i in va]


class L2RBatches:
    """``n`` mini-batches of a run's schedule from ``start``: ``{"image", "density", "n_count", "n_nests",
    "nest_size"}`` with the labelled crops (counting steps) first, then the nests (ranking steps). Labelled images
    and pool images are visited in fresh random orders (epochs). The labelled draws (order, crops, flips) come from
    ``rng``, the pool's (order, nests, flips) from ``rank_rng`` (None: ``rng`` too). :func:`train_l2r` passes two
    generators, so that runs of one seed that differ only in their ranking steps (counting only against
    multi-task, say) see the same labelled crops in the same order: their per-seed gap then measures the ranking
    term, not a different draw of labelled crops (common random numbers)."""

    def __init__(self, cfg: Mapping[str, Any], labelled: Sequence[LabelledImage], pool: Sequence[Any],
                 rng: np.random.Generator, start: int, n: int, rank_rng: np.random.Generator | None = None) -> None:
        self.cfg, self.labelled, self.pool, self.rng = cfg, labelled, pool, rng
        self.rank_rng = rng if rank_rng is None else rank_rng
        self.start, self.n = int(start), int(n)
        self._orders: dict[str, list[int]] = {"labelled": [], "pool": []}

    def __len__(self) -> int:
        return self.n

    def _draw(self, which: str, size: int, k: int) -> list[int]:
        out, order = [], self._orders[which]
        gen = self.rng if which == "labelled" else self.rank_rng
        while len(out) < k:
            if not order:
                order.extend(gen.permutation(size).tolist())
            out.append(order.pop(0))
        return out

    def __iter__(self):
        cfg, size = self.cfg, int(self.cfg["nest_k"]) + 1
        for step in range(self.start, self.start + self.n):
            active = phase(cfg, step)
            xs, batch = [], {"n_count": 0, "n_nests": 0, "nest_size": size}
            g = int(cfg["input_size"]) // 16
            batch["density"] = torch.zeros(0, 1, g, g)
            if COUNT in active:
                idx = self._draw("labelled", len(self.labelled), int(cfg["batch_size"]))
                x, y = sample_count_crops(self.labelled, idx, cfg, self.rng)
                xs.append(x)
                batch.update(density=y, n_count=len(idx))
            if RANK in active:
                idx = self._draw("pool", len(self.pool), int(cfg["nests_per_batch"]))
                x, _ = sample_nests(self.pool, idx, cfg, self.rank_rng)
                xs.append(x)
                batch["n_nests"] = len(idx)
            batch["image"] = torch.cat(xs)
            yield batch

    # shared state across chunks: the visiting orders persist (see train_l2r)
    def advance(self, n: int) -> "L2RBatches":
        """The next ``n`` steps with the same generator and visiting orders."""
        self.start += self.n
        self.n = int(n)
        return self


def _model_cfg(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k not in ("data", "pool")}


def train_l2r(cfg: Mapping[str, Any], progress: bool = True, device: str | torch.device | None = None) -> dict[str, Any]:
    """Train one model of a config and return a plain checkpointable dict.

    Runs under :class:`crowdlib.repro.fixed_threads` with ``cfg["threads"]`` intra-op threads: SGD (momentum,
    weight decay) or Adam at a constant ``lr`` for :func:`total_steps` steps of the paradigm's :func:`schedule`, in
    the chunks of :func:`checkpoints`; after every ``eval_every`` counting steps (and at the end) the counts of the
    validation images are scored and the best state (``select_metric``) is kept (``select="best"``; ranking-only
    runs keep the last).

    Returns:
        ``{"model": state_dict, "best_step", "best_val": {mae, mse}, "history": [per chunk: step, phase, loss
        terms, val_mae, val_mse, images_per_s], "images_per_s", "train_seconds", "wall_seconds", "steps",
        "n_train", "n_val", "n_pool", "train_ids"}``.
    """
    cfg = make_config(**dict(cfg))
    with fixed_threads(int(cfg["threads"])):
        return _train(cfg, progress, device)


def _train(cfg: dict[str, Any], progress: bool, device: str | torch.device | None) -> dict[str, Any]:
    seed = int(cfg["seed"])
    seed_everything(seed)
    rng = np.random.default_rng(seed)  # labelled draws: the same stream in every paradigm of a seed
    rank_rng = np.random.default_rng([seed, 1])  # the pool's nests: a stream of their own
    dev = pick_device(device)
    t_start = time.perf_counter()
    train_recs, val_recs = split_labelled(load_records(cfg["data"], "train"), cfg)
    side = int(cfg["load_side"])
    labelled, val = load_labelled(train_recs, side), load_labelled(val_recs, side)
    ranks = cfg["paradigm"] != "count"
    pool = load_pool(cfg["pool"], side) if ranks else []
    if ranks and not pool:
        raise ValueError("train_l2r: the unlabeled pool is empty")
    model, criterion = build_model(_model_cfg(cfg))
    model.to(dev)
    if cfg["optimizer"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=float(cfg["lr"]), momentum=float(cfg["momentum"]),
                              weight_decay=float(cfg["weight_decay"]))
    else:
        opt = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
    total, metric = total_steps(cfg), str(cfg["select_metric"])
    ends, evals = checkpoints(cfg)
    count_only_last = cfg["paradigm"] == "rank" or cfg["select"] == "last"
    history: list[dict[str, Any]] = []
    best: dict[str, float] = {"mae": float("inf"), "mse": float("inf")}
    best_state, best_step, done, imgs, secs = None, 0, 0, 0.0, 0.0
    batches = L2RBatches(cfg, labelled, pool, rng, 0, 0, rank_rng=rank_rng)
    bar = tqdm(total=total, desc=f"train l2r {cfg['paradigm']} seed {seed}", leave=False, disable=not progress)
    for end in ends:
        n = end - done
        stats = train_one_epoch(model, criterion, batches.advance(n), opt, dev, len(history), progress=False,
                                max_steps=n, max_norm=float(cfg["max_norm"]))
        done += int(stats["steps"])
        imgs += stats["images"]
        secs += stats["seconds"]
        bar.update(int(stats["steps"]))
        rec = {"step": done, "phase": "+".join(sorted(phase(cfg, done - 1))),
               "images_per_s": float(stats["images_per_s"])}
        rec.update({f"loss_{k}" if k != "loss" else "loss": float(v) for k, v in stats.items()
                    if k not in ("steps", "images", "seconds", "images_per_s")})
        if done in evals:
            ev = evaluate_model(model, val, dev, test_side=int(cfg["test_side"]), threads=int(cfg["threads"]))
            rec.update(val_mae=float(ev["mae"]), val_mse=float(ev["mse"]))
            better = float(ev[metric]) < best[metric] and not count_only_last
            if better or best_state is None or (count_only_last and done >= total):
                best = {"mae": float(ev["mae"]), "mse": float(ev["mse"])}
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                best_step = done
        history.append(rec)
    bar.close()
    if best_state is None:  # ranking only: the last state (the map is uncalibrated; no count selection)
        best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        best_step = done
        ev = evaluate_model(model, val, dev, test_side=int(cfg["test_side"]), threads=int(cfg["threads"]))
        best = {"mae": float(ev["mae"]), "mse": float(ev["mse"])}
    return {
        "model": best_state, "best_step": int(best_step), "best_val": best, "history": history,
        "images_per_s": float(imgs / secs) if secs > 0 else float("nan"), "train_seconds": float(secs),
        "wall_seconds": float(time.perf_counter() - t_start), "steps": int(done), "n_train": len(labelled),
        "n_val": len(val), "n_pool": len(pool), "train_ids": [r.image_id for r in train_recs],
    }


def load_trained(cfg: Mapping[str, Any], result: Mapping[str, Any], device: str | torch.device | None = None) -> torch.nn.Module:
    """Rebuild the model of ``cfg`` (without reading ImageNet weights) and load a :func:`train_l2r` result's
    weights; returns it in eval mode."""
    cfg = make_config(**dict(cfg))
    model, _ = build_model({**_model_cfg(cfg), "pretrained": False})
    model.load_state_dict(result["model"])
    model.to(pick_device(device))
    model.eval()
    return model


def get_or_train_l2r(cfg: Mapping[str, Any], *, progress: bool = True, cache_dir: Any = None,
                     device: str | torch.device | None = None) -> dict[str, Any]:
    """``crowdlib.repro.get_or_train`` of :func:`train_l2r` under the cache name ``"l2r"`` (the config is completed
    with :data:`~.config.DEFAULTS` first, so that equal settings share one entry)."""
    from crowdlib.repro import get_or_train

    full = make_config(**dict(cfg))
    return get_or_train(full, lambda c: train_l2r(c, progress=progress, device=device), name="l2r",
                        cache_dir=cache_dir)
