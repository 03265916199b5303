"""SSR-HEF training: :func:`crowdlib.engine.train_one_epoch` in chunks of ``eval_every`` steps, model selection on
validation images carved from the training images (count MAE or MSE), and the ``get_or_train`` cache of runs."""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from crowdlib.data.records import CrowdRecord
from crowdlib.device import pick_device
from crowdlib.engine import make_lr_schedule, train_one_epoch
from crowdlib.losses.ssrhef import class_threshold
from crowdlib.models.registry import build_model
from crowdlib.repro import fixed_threads, seed_everything

from .config import make_config
from .data import load_records, train_dataset
from .infer import evaluate_model

__all__ = ["split_records", "train_ssrhef", "load_trained", "get_or_train_ssrhef"]


def _model_cfg(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k != "data"}


class _Repeat:
    """Iterate ``loader`` again and again until ``n`` batches have been yielded (``len`` is ``n``)."""

    def __init__(self, loader: Any, n: int) -> None:
        self.loader, self.n = loader, int(n)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        k = 0
        while k < self.n:
            empty = True
            for batch in self.loader:
                empty = False
                yield batch
                k += 1
                if k >= self.n:
                    return
            if empty:
                return


def split_records(records: Sequence[CrowdRecord], cfg: Mapping[str, Any]) -> tuple[list[CrowdRecord], list[CrowdRecord]]:
    """``(train, validation)`` records: :func:`crowdlib.data.datasets.split_train_val` with the config's
    ``val_fraction`` and ``split_seed`` (validation is carved from the training images, never from test).

    Raises:
        ValueError: when fewer than two records are given (no validation image can be carved out).
    """
    from crowdlib.data.datasets import split_train_val

    if len(records) < 2:
        raise ValueError(f"split_records: need at least 2 training records to carve a validation split, got "
                         f"{len(records)}")
    tr, va = split_train_val(len(records), float(cfg["val_fraction"]), int(cfg["split_seed"]))
    if len(va) == 0:
        raise ValueError("split_records: val_fraction gives no validation image; model selection needs some")
    return [records[i] for i in tr], [records[i] for i in va]


def train_ssrhef(cfg: Mapping[str, Any], progress: bool = True, device: str | torch.device | None = None,
                 records: Sequence[CrowdRecord] | None = None) -> dict[str, Any]:
    """Train one model of a config and return a plain checkpointable dict.

    Runs under :class:`crowdlib.repro.fixed_threads` with ``cfg["threads"]`` intra-op threads. Adam at ``lr``
    (``schedule``: constant as the paper, or warm-up and cosine decay; gradients clipped at ``max_norm`` when > 0),
    ``steps`` steps in chunks of ``eval_every``; after each chunk the counts of
    the validation images are scored and the best state (``select_metric``) is kept, or the last (``select``).
    The class threshold is ``max count / K`` over the training split's images (Table II).

    Returns:
        ``{"model": state_dict, "best_step", "best_val": {mae, mse}, "class_thr", "history": [per validation point:
        step, lr, loss terms (``loss``, ``loss_hef``...), val_mae, val_mse, images_per_s], "images_per_s",
        "train_seconds", "wall_seconds", "steps", "n_train", "n_val", "n_patches"}``.
    """
    cfg = make_config(**dict(cfg))
    with fixed_threads(int(cfg["threads"])):
        return _train(cfg, progress, device, records)


def _train(cfg: dict[str, Any], progress: bool, device: str | torch.device | None,
           records: Sequence[CrowdRecord] | None) -> dict[str, Any]:
    from crowdlib.data.datasets import make_loader

    seed = int(cfg["seed"])
    seed_everything(seed)
    dev = pick_device(device)
    model, criterion = build_model(_model_cfg(cfg))
    model.to(dev)
    if records is None:
        records = load_records(cfg["data"], "train")
    train_recs, val_recs = split_records(records, cfg)
    k = int(cfg["num_classes"])
    thr = class_threshold([r.count for r in train_recs], k) if k > 0 else None
    ds = train_dataset(train_recs, cfg, thr)
    loader = make_loader(ds, int(cfg["batch_size"]), shuffle=True, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
    total, metric = int(cfg["steps"]), str(cfg["select_metric"])
    sched = make_lr_schedule(opt, str(cfg["schedule"]), int(cfg["warmup_steps"]), total)
    history: list[dict[str, Any]] = []
    best: dict[str, float] = {metric: float("inf")}
    best_state: dict[str, torch.Tensor] | None = None
    best_step, done, imgs, secs, chunk = 0, 0, 0.0, 0.0, 0
    t_start = time.perf_counter()
    bar = tqdm(total=total, desc=f"train ssr_hef seed {seed}", leave=False, disable=not progress)
    while done < total:
        n = min(int(cfg["eval_every"]), total - done)
        stats = train_one_epoch(model, criterion, _Repeat(loader, n), opt, dev, chunk, progress=False, max_steps=n,
                                max_norm=float(cfg["max_norm"]), scheduler=sched)
        steps = int(stats["steps"])
        done += steps
        chunk += 1
        imgs += stats["images"]
        secs += stats["seconds"]
        bar.update(steps)
        val = evaluate_model(model, val_recs, dev, threads=int(cfg["threads"]))
        rec = {"step": done, "lr": float(opt.param_groups[0]["lr"]), "val_mae": float(val["mae"]),
               "val_mse": float(val["mse"]), "images_per_s": float(stats["images_per_s"])}
        rec.update({f"loss_{k}" if k != "loss" else "loss": float(v) for k, v in stats.items()
                    if k not in ("steps", "images", "seconds", "images_per_s")})
        history.append(rec)
        if float(val[metric]) < best[metric] or best_state is None or (cfg["select"] == "last" and done >= total):
            best = {"mae": float(val["mae"]), "mse": float(val["mse"])}
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best_step = done
        if steps == 0:
            break
    bar.close()
    assert best_state is not None
    return {
        "model": best_state,
        "best_step": int(best_step),
        "best_val": best,
        "class_thr": thr,
        "history": history,
        "images_per_s": float(imgs / secs) if secs > 0 else float("nan"),
        "train_seconds": float(secs),
        "wall_seconds": float(time.perf_counter() - t_start),
        "steps": int(done),
        "n_train": len(train_recs),
        "n_val": len(val_recs),
        "n_patches": len(ds),
    }


def load_trained(cfg: Mapping[str, Any], result: Mapping[str, Any], device: str | torch.device | None = None) -> torch.nn.Module:
    """Rebuild the model of ``cfg`` and load a :func:`train_ssrhef` result's weights; returns it in eval mode."""
    cfg = make_config(**dict(cfg))
    model, _ = build_model(_model_cfg(cfg))
    model.load_state_dict(result["model"])
    model.to(pick_device(device))
    model.eval()
    return model


def get_or_train_ssrhef(cfg: Mapping[str, Any], *, progress: bool = True, cache_dir: Any = None,
                        device: str | torch.device | None = None,
                        records: Sequence[CrowdRecord] | None = None) -> dict[str, Any]:
    """``crowdlib.repro.get_or_train`` of :func:`train_ssrhef` under the cache name ``"ssrhef"`` (the config is
    completed with :data:`~.config.DEFAULTS` first, so that equal settings share one entry). ``records`` (the
    training records of ``cfg["data"]``, to avoid re-reading them) must match ``cfg["data"]``."""
    from crowdlib.repro import get_or_train

    full = make_config(**dict(cfg))
    return get_or_train(full, lambda c: train_ssrhef(c, progress=progress, device=device, records=records),
                        name="ssrhef", cache_dir=cache_dir)
