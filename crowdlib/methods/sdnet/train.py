"""Crowd-SDNet training: target builder on the live store, the refinement hook, run configs and the training loop.

- :class:`SDNetTargets` is the dataset target builder: it reads the CURRENT sizes from the store, maps them into the
  augmented crop with the sample's ``keep`` / ``scale`` record, and calls :func:`crowdlib.targets.csp.csp_targets`;
  refinement after one epoch therefore changes the next epoch's targets.
- :class:`Refiner` is the ``after_step`` hook of :func:`crowdlib.engine.train_one_epoch`: it reads the detached
  outputs at each crop's ground-truth centres, maps predicted sizes back to the original image (divide by the
  sample's ``scale``; flips and crop offsets do not change sizes), and updates the store.
- :func:`train_sdnet` trains one configuration (resumable, returns a checkpointable plain dict for
  :func:`crowdlib.repro.get_or_train`).

Choices where the paper is silent or a CPU budget forces a departure (all are config keys):

- Optimiser: Adam as in the paper, but with a per-iteration cosine schedule and a short linear warm-up
  (``train.schedule``, ``train.warmup_steps``) and gradient clipping (``train.max_norm``); the paper trains for
  200k iterations at a constant rate from ImageNet weights, the synthetic runs train a small network from scratch
  for a few hundred steps.
- Decoder width: the paper's 256 channels everywhere; ``model.width`` / ``model.up_width`` let a CPU run keep the
  full-resolution blocks narrow.
- Size loss normalisation: number of supervised pixels (paper Eq. 6, ``size_norm="objects"``) or the sum of alpha
  (``"alpha"``); size error absolute (paper) or relative (authors' code).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from crowdlib.repro import fixed_threads

from .infer import choose_threshold, predict_sdnet
from .store import PseudoBoxStore, RefineRuleName

__all__ = ["TARGET_KEYS", "SDNetTargets", "sdnet_prepare_batch", "Refiner", "default_config", "merge_config", "ABLATION_SETTINGS", "load_records", "build_detector", "recalibrate_bn", "train_sdnet", "load_detector"]


# =====================================================================================================================
# targets and refinement hooks
# =====================================================================================================================
TARGET_KEYS = ("center", "center_pos", "log_size", "size_mask", "crowdedness", "size_scale", "center_offset",
               "offset_mask")


class SDNetTargets:
    """Dataset target builder reading the CURRENT pseudo sizes from a :class:`PseudoBoxStore`.

    For a transformed sample (``index`` = position in the store, ``keep`` = kept source heads, ``scale`` = resize
    factor) the crop's sizes are ``store.sizes[index][keep] * scale``; maps come from
    :func:`crowdlib.targets.csp.csp_targets` with the crowdedness ``|R_j|`` written into the size window
    (``"crowdedness"``, turned into ``alpha`` by the loss) and ``"size_mask"`` = 1 where a size is supervised.
    ``"size_scale"`` carries the store's per-head size-loss multiplier (0.1 for a one-head image's head, authors'
    code). All maps get a leading channel axis.
    """

    def __init__(self, store: PseudoBoxStore, stride: int, window: int = 5, offset: bool = False) -> None:
        self.store = store
        self.stride = int(stride)
        self.window = int(window)
        self.offset = bool(offset)

    def __call__(self, sample: Mapping[str, Any]) -> dict[str, np.ndarray]:
        from crowdlib.targets.csp import csp_targets

        idx = int(sample["index"])
        keep = np.asarray(sample["keep"], dtype=np.int64).reshape(-1)
        pts = np.asarray(sample["points"], dtype=np.float32).reshape(-1, 2)
        if len(keep) != len(pts):
            raise ValueError(f"SDNetTargets: sample {sample.get('image_id')}: {len(keep)} keep indices for "
                             f"{len(pts)} points")
        scale = float(sample.get("scale", 1.0))
        sizes = np.maximum(self.store.sizes[idx][keep] * scale, 1e-3)
        crowd = np.maximum(self.store.crowdedness[idx][keep], 1.0)
        h, w = (int(v) for v in sample["image"].shape[-2:])
        t = csp_targets(pts, sizes, (h, w), stride=self.stride, crowdedness=crowd, window=self.window,
                        offset=self.offset, size_scale=self.store.size_scale(idx)[keep])
        out = {
            "center": t["center"][None], "center_pos": t["center_pos"][None], "log_size": t["log_size"][None],
            "size_mask": (t["size_weight"] > 0).astype(np.float32)[None], "crowdedness": t["size_weight"][None],
            "size_scale": t["size_scale"][None],
        }
        if self.offset:
            out["center_offset"] = t["offset"]  # not "offset": the dataset keeps the crop origin there
            out["offset_mask"] = t["offset_mask"][None]
        return out


def sdnet_prepare_batch(batch: Mapping[str, Any], device: torch.device) -> tuple[torch.Tensor, dict]:
    """``prepare_batch`` for :func:`crowdlib.engine.train_one_epoch`: images and the stacked target maps."""
    inputs = batch["image"].to(device, non_blocking=True)
    targets = {k: batch[k].to(device, non_blocking=True) for k in TARGET_KEYS if k in batch}
    return inputs, targets


class Refiner:
    """``after_step`` hook: refine the pseudo boxes of the batch's heads from the detached outputs.

    For each head kept in the crop the posterior is ``sigmoid(center_logits)`` at its centre cell
    (``floor(p / stride)``; with ``search_radius > 0`` the maximum within that many cells, the size being read
    where the maximum lies) and the predicted size ``exp(log_size) / scale`` in original pixels.
    ``active`` is switched off during warm-up; ``epoch`` is set by the training loop.
    """

    def __init__(self, store: PseudoBoxStore, stride: int, *, rule: RefineRuleName = "paper",
                 min_score: float = 0.5, search_radius: int = 0) -> None:
        self.store = store
        self.stride = int(stride)
        self.rule = rule
        self.min_score = float(min_score)
        self.search_radius = int(search_radius)
        self.epoch = 0
        self.active = True
        self.updated = 0
        self.seen = 0

    @torch.no_grad()
    def __call__(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, Any], step: int) -> None:
        if not self.active:
            return
        logits = outputs["center_logits"].float()
        log_size = outputs["log_size"].float()
        _, _, h, w = logits.shape
        r = self.search_radius
        if r > 0:
            pooled, arg = torch.nn.functional.max_pool2d(logits, 2 * r + 1, stride=1, padding=r, return_indices=True)
        for b in range(logits.shape[0]):
            pts = batch["points"][b]
            if len(pts) == 0:
                continue
            pts = torch.as_tensor(pts, dtype=torch.float32, device=logits.device)
            cols = torch.div(pts[:, 0], self.stride, rounding_mode="floor").long().clamp(0, w - 1)
            rows = torch.div(pts[:, 1], self.stride, rounding_mode="floor").long().clamp(0, h - 1)
            flat = rows * w + cols
            if r > 0:
                q_logit = pooled[b, 0].reshape(-1)[flat]
                src = arg[b, 0].reshape(-1)[flat]
            else:
                q_logit = logits[b, 0].reshape(-1)[flat]
                src = flat
            q = torch.sigmoid(q_logit)
            size = torch.exp(log_size[b, 0].reshape(-1)[src]) / float(batch["scale"][b])
            keep = np.asarray(batch["keep"][b], dtype=np.int64)
            self.seen += len(keep)
            self.updated += self.store.refine(int(batch["index"][b]), keep, size.cpu().numpy(), q.cpu().numpy(),
                                              rule=self.rule, min_score=self.min_score, epoch=self.epoch, step=step)


# =====================================================================================================================
# configuration, data, training
# =====================================================================================================================
def default_config() -> dict[str, Any]:
    """The full default configuration of one Crowd-SDNet run (synthetic mixture, tiny backbone, both modules).

    Paper values where they apply: lambda 0.1, eta 1, alpha cap 50, prior 0.6, A = 1/16 (full-resolution
    decoder), Adam; sizes scaled down for a CPU (crops 128 instead of 704, lr 1e-3 for a net trained from scratch).
    """
    return {
        "data": {"source": "synthetic", "presets": [["crowd_a", 60], ["crowd_b", 60]], "seed": 0,
                 "height": 128, "width": 128},
        "val_fraction": 0.15,
        "split_seed": 0,
        "model": {"model": "csp_sdnet", "backbone": "tiny", "decoder": "fullres", "width": 16, "pretrained": False,
                  "loss": {"center_weight": 0.1, "crowd_aware": True, "eta": 1.0, "alpha_cap": 50.0,
                           "size_error": "absolute", "size_norm": "objects"}},
        "pseudo": {"init": "luda", "params": {"K": 2, "beta": 0.8, "r": 8, "min_size": 2.0, "lone_weight": 0.1}},
        "refine": {"enabled": True, "rule": "paper", "prior": 0.6, "warmup_epochs": 0, "min_score": 0.5,
                   "search_radius": 0},
        "train": {"epochs": 8, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.0, "crop": 128,
                  "scale_range": [0.8, 1.25], "flip": True, "color_jitter": 0.1, "grayscale_p": 0.0,
                  "max_steps": None, "window": 5, "max_norm": 10.0, "schedule": "cosine", "warmup_steps": 20,
                  "bn_recalibrate_batches": 0, "val_every": 0, "keep_best": False},
        "eval": {"min_score": 0.05, "nms_iou": 0.5, "nms_candidates": None, "scales": [1.0], "batch_size": 16},
        "seed": 0,
        "threads": 1,
    }


def merge_config(base: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Recursive dict update (``overrides`` wins; nested dicts merged, everything else replaced)."""
    out = {k: (merge_config(v, {}) if isinstance(v, Mapping) else v) for k, v in base.items()}
    for k, v in (overrides or {}).items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge_config(out[k], v)
        else:
            out[k] = merge_config(v, {}) if isinstance(v, Mapping) else v
    return out


#: The four settings of Table III as config overrides (loss module x refinement module).
ABLATION_SETTINGS: dict[str, dict[str, Any]] = {
    "neither": {"model": {"loss": {"crowd_aware": False}}, "refine": {"enabled": False}},
    "loss only": {"model": {"loss": {"crowd_aware": True}}, "refine": {"enabled": False}},
    "refinement only": {"model": {"loss": {"crowd_aware": False}}, "refine": {"enabled": True}},
    "both": {"model": {"loss": {"crowd_aware": True}}, "refine": {"enabled": True}},
}


def load_records(data: Mapping[str, Any]) -> list:
    """Training/evaluation records from a data config.

    ``{"source": "synthetic", "presets": [[name, n], ...], "seed", "height", "width"}`` renders a mixture with
    :class:`crowdlib.data.synthetic.SyntheticCrowds`, optionally cut to ``"window": [h, w]`` windows of the rendered
    scenes (:func:`crowdlib.data.windows.window_records`, seeded with ``seed``; ``"window_candidates"``, default 4);
    ``{"source": "shanghaitech", "root", "part", "split",
    "limit"}`` reads ShanghaiTech with :func:`crowdlib.data.formats.read_shanghaitech` (``limit`` keeps the first
    images, for smoke runs); ``{"source": "widerface", "root", "split", "limit"}`` reads WIDER FACE
    (``<root>/wider_face_split/wider_face_<split>_bbx_gt.txt`` and ``<root>/WIDER_<split>/images``; faces flagged
    invalid and images without faces are dropped).
    """
    src = data.get("source")
    if src == "synthetic":
        from crowdlib import paths
        from crowdlib.data.synthetic import SyntheticCrowds

        recs: list = []
        for name, n in data["presets"]:  # rendered once per machine: every training process reads the .npz cache
            recs.extend(SyntheticCrowds(name, int(n), seed=int(data.get("seed", 0)), height=data.get("height"),
                                        width=data.get("width"), cache_dir=paths.cache_dir() / "synthetic"))
        if data.get("window"):
            from crowdlib.data.windows import window_records

            recs = window_records(recs, data["window"], int(data.get("seed", 0)), int(data.get("window_candidates", 4)))
        return recs
    if src == "widerface":
        from pathlib import Path

        from crowdlib.data.formats import read_widerface

        root, split = Path(data["root"]), data.get("split", "train")
        recs = read_widerface(root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt",
                              root / f"WIDER_{split}" / "images", drop_invalid=True, drop_outside=True)
        recs = [r for r in recs if r.count > 0]
        limit = data.get("limit")
        return recs[: int(limit)] if limit else recs
    if src == "shanghaitech":
        from crowdlib.data.formats import read_shanghaitech

        recs = list(read_shanghaitech(data["root"], data.get("part", "B"), data.get("split", "train")))
        limit = data.get("limit")
        return recs[: int(limit)] if limit else recs
    raise ValueError(f"data.source must be 'synthetic', 'widerface' or 'shanghaitech', got {src!r}")


def _checkpoint_path(cfg: Mapping[str, Any], checkpoint_dir: str | None) -> Any:
    from pathlib import Path

    from crowdlib import paths
    from crowdlib.repro import config_hash

    base = Path(checkpoint_dir) if checkpoint_dir else paths.cache_dir() / "sdnet_partial"
    return base / f"{config_hash(cfg)}.pt"


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, loader: Any, device: torch.device, n_batches: int = 20) -> int:
    """Re-estimate BatchNorm running statistics with the final weights ("precise BN").

    The running means/variances kept during training lag behind weights that change quickly (short CPU runs);
    here they are reset and recomputed as a plain average over ``n_batches`` training batches in train mode, without
    gradient steps. Returns the number of batches used (0: the model has no BatchNorm or ``n_batches`` is 0).
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or n_batches <= 0:
        return 0
    saved = [(m, m.momentum) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    was_training = model.training
    model.train()
    used = 0
    try:
        for batch in loader:
            model(batch["image"].to(device))
            used += 1
            if used >= n_batches:
                break
    finally:
        for m, mom in saved:
            m.momentum = mom
        model.train(was_training)
    return used


def build_detector(cfg: Mapping[str, Any]) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(model, criterion)`` of a run config (``cfg["model"]`` goes to the model registry)."""
    from crowdlib.models.registry import build_model

    return build_model(dict(cfg["model"]))


def train_sdnet(cfg: Mapping[str, Any], progress: bool = True, checkpoint_dir: str | None = None) -> dict[str, Any]:
    """Train one Crowd-SDNet configuration; return a checkpointable plain dict.

    Runs under :class:`crowdlib.repro.fixed_threads` with ``cfg["threads"]`` intra-op threads (default 1; a run
    that has the machine to itself, like notebook 13's, may take 2: the thread count is part of the config, so of
    the cache key, and a run is deterministic at a given count).

    Every epoch ends with an atomic checkpoint (model, optimizer, store, history) under
    ``<cache>/sdnet_partial/<config_hash>.pt``; a call with the same config resumes from it and deletes it at the
    end. Each epoch draws its order and augmentations from ``(seed, epoch)``, so a resumed run equals an
    uninterrupted one. The counting threshold is chosen on the validation images carved from the training
    records (``val_fraction``), never on test images.

    Returns:
        ``{"model": state_dict, "store": PseudoBoxStore.state_dict(), "history": [per-epoch dict],
        "count_threshold": float, "val": {...}, "train_ids", "val_ids", "train_seconds", "images_per_s"}``.
    """
    threads = int(merge_config(default_config(), cfg).get("threads", 1))
    with fixed_threads(threads):
        return _train_sdnet(cfg, progress, checkpoint_dir)


def _train_sdnet(cfg: Mapping[str, Any], progress: bool, checkpoint_dir: str | None) -> dict[str, Any]:
    import time

    from crowdlib import distributed
    from crowdlib.data.datasets import CrowdDataset, make_loader, split_train_val
    from crowdlib.data.transforms import TrainTransform
    from crowdlib.device import pick_device
    from crowdlib.engine import make_lr_schedule, train_one_epoch
    from crowdlib.repro import load_checkpoint, save_checkpoint, seed_everything

    cfg = merge_config(default_config(), cfg)
    seed = int(cfg["seed"])
    seed_everything(seed)
    device = pick_device(cfg.get("device"))
    info = distributed.init_from_env(device)  # torchrun: one process per device, gloo or NCCL
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    records = load_records(cfg["data"])
    train_idx, val_idx = split_train_val(len(records), float(cfg["val_fraction"]), int(cfg["split_seed"]))
    train_recs = [records[i] for i in train_idx]
    val_recs = [records[i] for i in val_idx]
    pcfg, rcfg, tcfg = cfg["pseudo"], cfg["refine"], cfg["train"]
    store = PseudoBoxStore.from_records(train_recs, pcfg["init"], pcfg.get("params"), prior=float(rcfg["prior"]))
    model, criterion = build_detector(cfg)
    model.to(device)
    net = distributed.wrap(model, device, info)  # DistributedDataParallel under torchrun, else the model itself
    if info.enabled:
        seed_everything(seed + info.rank)  # per-rank generators; rank 0's weights are broadcast by DDP
    stride = int(model.stride)
    offset = getattr(model, "offset_head", None) is not None
    transform = TrainTransform(tcfg["crop"], tuple(tcfg["scale_range"]), tcfg["flip"], tcfg["color_jitter"],
                               tcfg["grayscale_p"])
    dataset = CrowdDataset(train_recs, SDNetTargets(store, stride, int(tcfg["window"]), offset), transform)
    opt = torch.optim.Adam(model.parameters(), lr=float(tcfg["lr"]), weight_decay=float(tcfg["weight_decay"]))
    bs = int(tcfg["batch_size"])
    steps_per_epoch = len(dataset) // bs if len(dataset) > bs else 1
    if tcfg.get("max_steps"):
        steps_per_epoch = min(steps_per_epoch, int(tcfg["max_steps"]))
    scheduler = make_lr_schedule(opt, tcfg.get("schedule", "constant"), int(tcfg.get("warmup_steps", 0)),
                                steps_per_epoch * int(tcfg["epochs"]))
    refiner = Refiner(store, stride, rule=rcfg["rule"], min_score=float(rcfg["min_score"]),
                      search_radius=int(rcfg["search_radius"]))
    history: list[dict[str, float]] = []
    start = 0
    best: dict[str, Any] | None = None  # with train.keep_best: the weights of the best validation point so far
    ckpt = _checkpoint_path(cfg, checkpoint_dir)
    if ckpt.exists():
        state = load_checkpoint(ckpt)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if scheduler is not None and "scheduler" in state:
            scheduler.load_state_dict(state["scheduler"])
        restored = PseudoBoxStore.from_state_dict(state["store"])
        store.__dict__.update(restored.__dict__)  # the dataset's target builder and the refiner keep this object
        history = list(state["history"])
        start = int(state["epoch"]) + 1
        best = state.get("best")
    for epoch in range(start, int(tcfg["epochs"])):
        refiner.epoch = epoch
        refiner.active = bool(rcfg["enabled"]) and epoch >= int(rcfg["warmup_epochs"])
        refiner.updated = refiner.seen = 0
        loader = make_loader(dataset, int(tcfg["batch_size"]), shuffle=True, seed=seed * 100003 + epoch,
                             drop_last=len(dataset) > int(tcfg["batch_size"]), rank=info.rank,
                             world_size=info.world_size)
        mark = store.n_history_rows()
        stats = train_one_epoch(net, criterion, loader, opt, device, epoch, prepare_batch=sdnet_prepare_batch,
                                after_step=refiner, scheduler=scheduler, max_norm=float(tcfg["max_norm"]),
                                progress=progress and distributed.is_main(info), max_steps=tcfg.get("max_steps"))
        stats = {k: float(v) for k, v in stats.items()}
        if info.enabled:
            _sync_ranks(model, store, refiner, mark)
        stats.update(epoch=float(epoch), refine_active=float(refiner.active), n_updated=float(refiner.updated),
                     updated_per_seen=refiner.updated / max(refiner.seen, 1))
        stats.update(store.bin_stats(epoch))
        every = int(tcfg.get("val_every", 0) or 0)
        if every > 0 and val_recs and ((epoch + 1) % every == 0 or epoch + 1 == int(tcfg["epochs"])):
            stats.update(_validation_point(model, val_recs, cfg["eval"], device))
            if tcfg.get("keep_best") and (best is None or stats["val_mae"] < best["val_mae"]):
                best = {"val_mae": stats["val_mae"], "epoch": epoch,
                        "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        stats["step"] = float((epoch + 1) * steps_per_epoch)
        history.append(stats)
        state = {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "store": store.state_dict(), "history": history}
        if best is not None:
            state["best"] = best
        if scheduler is not None:
            state["scheduler"] = scheduler.state_dict()
        if distributed.is_main(info):
            save_checkpoint(ckpt, state)
    if best is not None:  # train.keep_best: the epoch with the lowest validation MAE, not the last one
        model.load_state_dict(best["model"])
    n_bn = int(tcfg.get("bn_recalibrate_batches", 0))
    if n_bn > 0:
        recalibrate_bn(model, make_loader(dataset, int(tcfg["batch_size"]), shuffle=True, seed=seed * 100003 + 99991),
                       device, n_bn)
    ecfg = cfg["eval"]
    t0 = time.perf_counter()
    candidates = [float(v) for v in (ecfg.get("nms_candidates") or [ecfg["nms_iou"]])]
    raw = predict_sdnet(model, val_recs, device=device, scales=ecfg["scales"], min_score=ecfg["min_score"],
                        nms_iou=1.0 if len(candidates) > 1 else candidates[0], batch_size=int(ecfg["batch_size"]))
    val_gt = np.array([float(r.count) for r in val_recs])
    pick = None
    for nms_iou in candidates:  # the counting threshold (and, with several candidates, the NMS IoU) on validation
        mae, t, c = _count_fit(_apply_nms(raw, nms_iou) if len(candidates) > 1 else raw, val_gt)
        if pick is None or mae < pick[0]:
            pick = (mae, nms_iou, t, c)
    _, chosen_nms, thr, val_counts = pick

    result = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "store": store.state_dict(),
        "history": history,
        "count_threshold": float(thr),
        "nms_iou": float(chosen_nms),
        "best_epoch": None if best is None else int(best["epoch"]),
        "val": {"mae": float(np.mean(np.abs(val_counts - val_gt))) if len(val_gt) else float("nan"),
                "n_images": len(val_recs),
                "seconds": time.perf_counter() - t0},
        "train_ids": [r.image_id for r in train_recs],
        "val_ids": [r.image_id for r in val_recs],
        "train_seconds": float(sum(h["seconds"] for h in history)),
        "images_per_s": float(np.mean([h["images_per_s"] for h in history])) if history else float("nan"),
        "device": str(device),
    }
    distributed.barrier()
    if distributed.is_main(info) and ckpt.exists():
        ckpt.unlink()
    return result


def _sync_ranks(model: torch.nn.Module, store: PseudoBoxStore, refiner: Refiner, mark: int) -> None:
    """End of a distributed epoch: rank 0's BatchNorm statistics everywhere, every rank's box updates everywhere.

    Within an epoch each image is seen by one rank only (the sampler's shards are disjoint), so replaying the
    other ranks' update rows gives every rank the store a single process would hold after the same updates.
    """
    from crowdlib import distributed

    distributed.broadcast_buffers(model)
    mine = store.updates_since(mark)
    gathered = distributed.all_gather_objects((mine, refiner.updated, refiner.seen))
    rank = distributed.current().rank
    store.apply_updates(np.concatenate([g[0] for r, g in enumerate(gathered) if r != rank]
                                       or [np.zeros((0, len(store._HIST_COLS)))]))
    refiner.updated = int(sum(g[1] for g in gathered))
    refiner.seen = int(sum(g[2] for g in gathered))


def _apply_nms(preds: list, iou: float) -> list:
    """Non-maximum suppression at ``iou`` applied to decoded detections (as :func:`predict_sdnet` returns them)."""
    from crowdlib.decode import nms

    out = []
    for p in preds:
        keep = nms(p["boxes"], p["scores"], iou) if len(p["scores"]) else np.zeros(0, dtype=np.int64)
        out.append({k: v[keep] for k, v in p.items()})
    return out


def _validation_point(model: torch.nn.Module, val_recs: list, ecfg: Mapping[str, Any],
                      device: torch.device) -> dict[str, float]:
    """One point of the validation learning curve: count MAE on the validation images at the threshold that is
    best for them (``val_mae``; the curve's y axis) and the threshold itself (``val_threshold``)."""
    import time

    t0 = time.perf_counter()
    preds = predict_sdnet(model, val_recs, device=device, scales=ecfg["scales"], min_score=ecfg["min_score"],
                          nms_iou=ecfg["nms_iou"], batch_size=int(ecfg["batch_size"]))
    model.train()
    mae, thr, _ = _count_fit(preds, np.array([float(r.count) for r in val_recs]))
    return {"val_mae": mae, "val_threshold": thr, "val_seconds": time.perf_counter() - t0}


def _count_fit(preds: list, gt: np.ndarray) -> tuple[float, float, np.ndarray]:
    """The counting threshold best for these (validation) images: ``(MAE at it, threshold, counts)``."""
    thr = float(choose_threshold([p["scores"] for p in preds], gt.tolist()))
    counts = np.array([float((p["scores"] > thr).sum()) for p in preds])
    return (float(np.mean(np.abs(counts - gt))) if len(gt) else float("nan")), thr, counts


def load_detector(result: Mapping[str, Any], cfg: Mapping[str, Any],
                  device: torch.device | str | None = None) -> torch.nn.Module:
    """Rebuild the trained detector of a :func:`train_sdnet` result (eval mode, on ``device``)."""
    from crowdlib.device import pick_device

    cfg = merge_config(default_config(), cfg)
    model, _ = build_detector(cfg)
    model.load_state_dict(result["model"])
    return model.to(pick_device(device) if not isinstance(device, torch.device) else device).eval()
