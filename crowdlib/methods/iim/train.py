"""IIM training: :func:`crowdlib.engine.train_one_epoch` in chunks, model selection on validation carved from the
training images, warm starts from another cached run, and the ``get_or_train`` cache of IIM runs."""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from crowdlib.data.records import CrowdRecord
from crowdlib.device import pick_device
from crowdlib.engine import train_one_epoch
from crowdlib.models.registry import build_model
from crowdlib.repro import fixed_threads, seed_everything

from .config import make_config
from .data import load_records, targets_for
from .infer import choose_decode_params, evaluate_model, predict_maps

__all__ = ["train_iim", "load_trained", "get_or_train_iim", "lr_lambdas", "split_records"]


# ----------------------------------------------------------------------------------------------- training
def _model_cfg(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k not in ("data",)}


class _Repeat:
    """Iterate ``loader`` again and again until ``n`` batches have been yielded (``len`` is ``n``)."""

    def __init__(self, loader: Any, n: int) -> None:
        self.loader = loader
        self.n = int(n)

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
    """``(train, validation)`` records of a config: ``val_fraction`` of the training records, carved with
    ``split_seed`` (the split :func:`train_iim` trains and selects on)."""
    from crowdlib.data.datasets import split_train_val

    tr, va = split_train_val(len(records), float(cfg["val_fraction"]), int(cfg["split_seed"]))
    return [records[i] for i in tr], [records[i] for i in va]


def lr_lambdas(cfg: Mapping[str, Any], group_names: Sequence[str]) -> list:
    """The poly decay factor of each optimizer group (names from ``model.param_groups``), as ``LambdaLR`` takes.

    The predictor (and any unnamed group) follows one schedule of ``sched_total`` steps entered at ``sched_offset``
    (a warm-started run continues where its initialising run stopped). The threshold encoder follows it too with
    ``encoder_schedule="shared"``; with ``"own"`` (the authors' separate optimizer) its decay runs over this run's
    ``steps`` from its first step, so its rate stays ``lr_encoder / lr`` of the predictor's peak rate.
    """
    kind = str(cfg["encoder_schedule"])
    if kind not in ("own", "shared"):
        raise ValueError(f"encoder_schedule must be 'own' or 'shared', got {kind!r}")
    total, power, offset = int(cfg["steps"]), float(cfg["poly_power"]), int(cfg["sched_offset"])
    horizon = int(cfg["sched_total"]) if cfg["sched_total"] is not None else offset + total

    def shared(s: int) -> float:
        return max(0.0, 1.0 - (s + offset) / max(horizon, 1)) ** power

    def own(s: int) -> float:
        return max(0.0, 1.0 - s / max(total, 1)) ** power

    return [own if (n == "encoder" and kind == "own") else shared for n in group_names]


def _group_lrs(opt: torch.optim.Optimizer) -> dict[str, float]:
    """``lr`` (first group: the predictor) and ``lr_<name>`` of every other named group."""
    out = {"lr": float(opt.param_groups[0]["lr"])}
    for g in opt.param_groups[1:]:
        out[f"lr_{g.get('name', 'group')}"] = float(g["lr"])
    return out


def _instance_maps(records: Sequence[CrowdRecord], cfg: Mapping[str, Any]) -> list:
    """Whole-image instance maps of ``records`` (from true boxes, else from points with ``point_size``)."""
    from .data import IIMTargets

    tg = IIMTargets("instance", cfg["inst_min_half"], cfg["inst_max_half"], cfg["point_size"])
    out = []
    for r in records:
        h, w = r.load_image().shape[:2]
        out.append(tg({"image": torch.zeros(1, h, w), "points": r.points, "boxes": r.boxes})["instance"][0].numpy())
    return out


def _threshold_record(maps: Sequence[Mapping[str, Any]], inst: Sequence[Any], encoder: str) -> dict[str, Any]:
    """The learned thresholds on the validation images: mean on head pixels (``thr_fg``) and on background
    (``thr_bg``), and for IBM the per-image thresholds (``thr_images``)."""
    import numpy as np

    from .infer import threshold_stats

    st = threshold_stats(maps, inst)
    rec: dict[str, Any] = {"thr_fg": st["thr_fg"], "thr_bg": st["thr_bg"]}
    if encoder == "ibm":
        rec["thr_images"] = [float(np.asarray(m["threshold"]).mean()) for m in maps]
    return rec


def train_iim(cfg: Mapping[str, Any], progress: bool = True, device: str | torch.device | None = None,
              records: Sequence[CrowdRecord] | None = None) -> dict[str, Any]:
    """Train one model of a config and return a plain checkpointable dict.

    Runs under :class:`crowdlib.repro.fixed_threads` with ``cfg["threads"]`` intra-op threads (deterministic at a
    given count; the count is part of the config and so of its cache key).

    The loop is :func:`crowdlib.engine.train_one_epoch` in chunks of ``eval_every`` steps; after each chunk the
    model is scored on the validation split (F1 at sigma_l; for the baselines with their decode parameters
    re-chosen on validation) and the best state is kept.

    Returns:
        ``{"model": best state_dict, "best_step", "best_val": {f1, pre, rec, mae, mse}, "decode": {...}
        (baselines), "history": [per chunk: step, loss terms, val f1, lr], "images_per_s", "train_seconds",
        "steps"}``.
    """
    cfg = make_config(**{k: v for k, v in cfg.items()})
    with fixed_threads(int(cfg["threads"])):
        return _train_iim(cfg, progress, device, records)


def _train_iim(cfg: dict[str, Any], progress: bool, device: str | torch.device | None,
               records: Sequence[CrowdRecord] | None) -> dict[str, Any]:
    from crowdlib.data.datasets import CrowdDataset, make_loader
    from crowdlib.data.transforms import TrainTransform

    seed = int(cfg["seed"])
    seed_everything(seed)
    dev = pick_device(device)
    model, criterion = build_model(_model_cfg(cfg))
    if cfg["init"] is not None:
        init = get_or_train_iim(cfg["init"], progress=progress, device=device, records=records)
        missing, unexpected = model.load_state_dict(init["model"], strict=False)
        bad = [k for k in missing if not k.startswith("encoder.")] + list(unexpected)
        if bad:
            raise ValueError(f"train_iim: init weights do not fit this model (mismatched keys {bad[:5]}...)")
    model.to(dev)
    if records is None:
        records = load_records(cfg["data"], "train")
    train_recs, val_recs = split_records(records, cfg)
    tf = TrainTransform(int(cfg["crop"]), scale_range=tuple(cfg["scale_range"]), flip=True,
                        color_jitter=float(cfg["color_jitter"]), grayscale_p=0.0)
    ds = CrowdDataset(train_recs, target_builder=targets_for(cfg), transform=tf)
    loader = make_loader(ds, int(cfg["batch_size"]), shuffle=True, seed=seed)
    if hasattr(model, "param_groups"):
        groups = model.param_groups(float(cfg["lr"]), float(cfg["lr_encoder"]), float(cfg["weight_decay"]))
    else:
        groups = [{"params": list(model.parameters()), "lr": float(cfg["lr"]), "weight_decay": float(cfg["weight_decay"])}]
    opt = torch.optim.Adam(groups)
    total = int(cfg["steps"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambdas(cfg, [g.get("name", "predictor") for g in groups]))
    name = cfg["model"]
    fb = float(cfg["point_size"])  # sigma_l for points-only validation images (model selection only)
    history: list[dict[str, Any]] = []
    best = {"f1": -1.0}
    best_state: dict[str, torch.Tensor] | None = None
    best_step, best_decode = 0, {}
    done, imgs, secs, chunk = 0, 0.0, 0.0, 0
    select_after = int(cfg["select_after"])
    if select_after >= total:
        raise ValueError(f"train_iim: select_after ({select_after}) must be below steps ({total})")
    learns_threshold = name == "iim" and cfg["encoder"] != "none"
    val_inst = _instance_maps(val_recs, cfg) if learns_threshold else None
    if learns_threshold:  # where the learned thresholds start (step 0, before any update of the encoder)
        maps = predict_maps(model, val_recs, dev, window=int(cfg["eval_window"]), scale=float(cfg["eval_scale"]),
                            threads=int(cfg["threads"]))
        history.append({"step": 0, **_group_lrs(opt), **_threshold_record(maps, val_inst, cfg["encoder"])})
    t_start = time.perf_counter()
    bar = tqdm(total=total, desc=f"train {name}/{cfg.get('encoder', '')} seed {seed}", leave=False, disable=not progress)
    while done < total:
        n = min(int(cfg["eval_every"]), total - done)
        stats = train_one_epoch(model, criterion, _Repeat(loader, n), opt, dev, chunk, scheduler=sched, progress=False,
                                max_steps=n)
        steps = int(stats["steps"])
        done += steps
        chunk += 1
        imgs += stats["images"]
        secs += stats["seconds"]
        bar.update(steps)
        losses = {f"loss_{k}": float(v) for k, v in stats.items() if k not in ("steps", "images", "seconds", "images_per_s")}
        if done <= select_after and done < total:  # no checkpoint may be chosen yet: skip the validation pass
            history.append({"step": done, **_group_lrs(opt), "images_per_s": float(stats["images_per_s"]), **losses})
            if steps == 0:
                break
            continue
        maps = predict_maps(model, val_recs, dev, window=int(cfg["eval_window"]), scale=float(cfg["eval_scale"]),
                            density=name == "iim_density", threads=int(cfg["threads"]))
        params, _ = choose_decode_params(name, val_recs, maps, float(cfg["density_scale"]), fallback_size=fb)
        val = evaluate_model(model, cfg, val_recs, maps=maps, decode=params, fallback_size=fb)
        rec = {"step": done, "val_f1": val["f1"], "val_pre": val["pre"], "val_rec": val["rec"], "val_mae": val["mae"],
               **_group_lrs(opt), "images_per_s": float(stats["images_per_s"])}
        rec.update(losses)
        if learns_threshold:
            rec.update(_threshold_record(maps, val_inst, cfg["encoder"]))
        history.append(rec)
        if val["f1"] > best["f1"] or (cfg["select"] == "last" and done >= total):  # past select_after here
            best = {k: float(val[k]) for k in ("f1", "pre", "rec", "mae", "mse")}
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best_step, best_decode = done, dict(params)
        if steps == 0:
            break
    bar.close()
    assert best_state is not None
    return {
        "model": best_state,
        "best_step": int(best_step),
        "best_val": best,
        "decode": best_decode,
        "history": history,
        "images_per_s": float(imgs / secs) if secs > 0 else float("nan"),
        "train_seconds": float(secs),
        "wall_seconds": float(time.perf_counter() - t_start),
        "steps": int(done),
        "n_train": len(train_recs),
        "n_val": len(val_recs),
    }


def load_trained(cfg: Mapping[str, Any], result: Mapping[str, Any], device: str | torch.device | None = None) -> torch.nn.Module:
    """Rebuild the model of ``cfg`` and load a :func:`train_iim` result's weights; returns it in eval mode."""
    cfg = make_config(**dict(cfg))
    model, _ = build_model(_model_cfg(cfg))
    model.load_state_dict(result["model"])
    model.to(pick_device(device))
    model.eval()
    return model


def get_or_train_iim(cfg: Mapping[str, Any], *, progress: bool = True, cache_dir: Any = None,
                     device: str | torch.device | None = None,
                     records: Sequence[CrowdRecord] | None = None) -> dict[str, Any]:
    """``crowdlib.repro.get_or_train`` of :func:`train_iim` under the cache name ``"iim"`` (config completed with
    :data:`DEFAULTS` first, so that equal settings share one cache entry across notebooks). ``records`` (the
    training records of ``cfg["data"]``, to avoid re-reading them) must match ``cfg["data"]``."""
    from crowdlib.repro import get_or_train

    full = make_config(**dict(cfg))
    return get_or_train(full, lambda c: train_iim(c, progress=progress, device=device, records=records),
                        name="iim", cache_dir=cache_dir)
