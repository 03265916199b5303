"""The self-supervised cycles on the target (Sec. 3.4) and the scoring of any cycle's models.

:func:`run_transfer` is the ``train`` function of a full run config (cache ``"bkt"``, stage ``"transfer"``): it
fetches R_0, D_0 and Phi from the source stages, then for ``t = 0 .. T-1``: infers and fuses on every target training
image (:func:`~.infer.pseudo_labels`), selects two patches per image for R and two for D
(:func:`~.fusion.select_patches`), and fine-tunes R's last ``r_layers`` layers (Adam ``r_lr``, loss R's own: MSE + its
DMS-SSIM weight) on the fused density crops (R sees the whole image or the patch alone: ``r_context``), and D (Adam
``d_lr``, loss ``d_loss``: CSP's by default, Crowd-SDNet's crowdedness-aware one as the alternative; the whole image
or the patch alone: ``d_context``) on CSP targets built from the fused detections in its patches (boxes of their
sizes, crowdedness ``|R_j|`` from LUDA on the image's fused points). The target images enter through
:func:`~.data.unlabeled` only: no target label reaches training or any choice. It stores, per cycle ``t = 1..T``, R's
fine-tuned parameters and D's state, so that Table 3's rows come from one run and Tables 1-2 read cycle ``T``. With
``d_threshold="refit"`` D's counting threshold is re-chosen on the labelled *source* validation split for D_0 and
after every cycle (:func:`refit_det_threshold`) and stored with the cycle; each cycle's pseudo labels use the current
one.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from crowdlib.data.records import CrowdRecord
from crowdlib.device import flush_denormal
from crowdlib.repro import fixed_threads, seed_everything

from .config import make_config
from .data import domain_records, pool_density, split_source, unlabeled
from .evaluate import count_errors, localization_map
from .fusion import select_patches
from .infer import image_tensor, pseudo_labels, run_detector
from .train import source_models

__all__ = ["finetune_regressor", "finetune_detector", "transfer_cycles", "run_transfer", "get_or_run_transfer",
           "cycle_models", "score_models", "refit_det_threshold", "cycle_detector_criterion", "detector_batch",
           "REFIT_GRID"]

#: Score thresholds of :func:`refit_det_threshold`: 0.005-0.045 in steps of 0.005, then Crowd-SDNet's 0.05-0.95 grid
#: (whose floor D_0's source threshold sat on in the default profile).
REFIT_GRID = np.round(np.concatenate([np.arange(0.005, 0.0451, 0.005), np.arange(0.05, 0.951, 0.01)]), 4)


def _freeze_bn(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def _r_param_names(model: torch.nn.Module, n: int) -> list[str]:
    ids = {id(p) for p in model.last_layers(n)}
    return [k for k, p in model.named_parameters() if id(p) in ids]


def _regressor_batch(model: torch.nn.Module, crops: Sequence[tuple], idx: np.ndarray) -> torch.Tensor:
    """R's density cells over each selected patch: R runs on each crop's image (one batched forward when the images
    share a shape) and the output cells under the patch ``(y, x, P)`` are cut out, ``(B, 1, P/8, P/8)``."""
    imgs = [crops[i][0] for i in idx]
    if all(im.shape == imgs[0].shape for im in imgs):
        outs = list(model(torch.stack(imgs))["density"])
    else:
        outs = [model(im[None])["density"][0] for im in imgs]
    cells = []
    for o, i in zip(outs, idx):
        y, x, p = (int(v) // 8 for v in crops[i][2])
        cells.append(o[:, y:y + p, x:x + p])
    return torch.stack(cells)


def finetune_regressor(model: torch.nn.Module, criterion: torch.nn.Module, crops: Sequence[tuple], *, lr: float,
                       layers: int, steps: int, batch: int, rng: np.random.Generator, keep_bn: bool = True) -> float:
    """Adam on R's last ``layers`` layers with R's source loss ``criterion``; returns the mean loss (0 without crops
    or steps). ``crops`` holds ``(image (3, H, W), fused density of the patch (P, P), (y, x, P))``: the loss compares
    R's output cells under the patch at ``(y, x)`` of the image with the sum-pooled density (``r_context="patch"``
    passes the patch itself as the image and ``(0, 0, P)``; ``"image"`` the whole image). Only the fine-tuned
    layers carry gradients (the rest of R is frozen for the call and restored after)."""
    if not crops or steps < 1:
        return 0.0
    params = model.last_layers(layers)
    keep = {id(p) for p in params}
    frozen = [p for p in model.parameters() if id(p) not in keep and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    opt = torch.optim.Adam(params, lr=float(lr))
    total = 0.0
    try:
        for _ in range(int(steps)):
            model.train()
            if keep_bn:
                _freeze_bn(model)
            idx = rng.permutation(len(crops))[: int(batch)]
            t = pool_density(torch.as_tensor(np.stack([crops[i][1] for i in idx]))[:, None], 8)
            loss = criterion({"density": _regressor_batch(model, crops, idx)}, {"density": t})["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.eval()
    return total / int(steps)


def _at(crop: Mapping[str, Any]) -> tuple[int, int, int]:
    """``(y, x, P)`` of a D crop: where its patch lies in its image (the whole image when the crop has no ``"at"``)."""
    if "at" in crop:
        return tuple(int(v) for v in crop["at"])  # type: ignore[return-value]
    h, w = crop["image"].shape[-2:]
    if h != w:
        raise ValueError(f"detector_batch: a crop without 'at' must be a square patch, got {h} x {w}")
    return 0, 0, int(h)


def detector_batch(crops: Sequence[dict[str, Any]], stride: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Images ``(B, 3, H, W)`` and CSP target maps of each crop's ``P x P`` patch
    (:func:`crowdlib.targets.csp.csp_targets`, window 5, no offset; the crowdedness written into the size window) of
    D crops ``{"image", "points", "sizes", "crowdedness"}`` (points in patch pixels) with ``"at": (y, x, P)`` where
    the patch lies in the image (``d_context="image"``; without it the image is the patch)."""
    from crowdlib.targets.csp import csp_targets

    x = torch.stack([c["image"] for c in crops])
    maps: dict[str, list[np.ndarray]] = {}
    for c in crops:
        p = _at(c)[2]
        t = csp_targets(c["points"], np.maximum(c["sizes"], 1e-3), (p, p), stride=int(stride),
                        crowdedness=c["crowdedness"], window=5, offset=False)
        for k, v in (("center", t["center"]), ("center_pos", t["center_pos"]), ("log_size", t["log_size"]),
                     ("size_mask", (t["size_weight"] > 0).astype(np.float32)), ("crowdedness", t["size_weight"])):
            maps.setdefault(k, []).append(v[None])
    return x, {k: torch.as_tensor(np.stack(v)) for k, v in maps.items()}


def _detector_patch_outputs(model: torch.nn.Module, crops: Sequence[dict[str, Any]], x: torch.Tensor,
                            stride: int) -> dict[str, torch.Tensor]:
    """D's output maps over each crop's patch: D runs on the crops' images ``x`` and every map is cut to the
    patch's cells."""
    out = model(x)
    cut: dict[str, list[torch.Tensor]] = {}
    for j, c in enumerate(crops):
        y, x0, p = (v // stride for v in _at(c))
        for k, v in out.items():
            cut.setdefault(k, []).append(v[j, :, y:y + p, x0:x0 + p])
    return {k: torch.stack(v) for k, v in cut.items()}


def finetune_detector(model: torch.nn.Module, criterion: torch.nn.Module, crops: Sequence[dict[str, Any]], *,
                      lr: float, steps: int, batch: int, rng: np.random.Generator, keep_bn: bool = True) -> float:
    """Adam on all of D over ``{"image" (3, H, W), "points", "sizes", "crowdedness"[, "at"]}`` crops: the CSP loss
    on D's output cells over each crop's patch against the targets of :func:`detector_batch` (the image is the
    patch itself without ``"at"``, or the whole image with ``"at": (y, x, P)``); returns the mean loss."""
    if not crops or steps < 1:
        return 0.0
    opt = torch.optim.Adam(model.parameters(), lr=float(lr))
    stride = int(model.stride)
    total = 0.0
    for _ in range(int(steps)):
        model.train()
        if keep_bn:
            _freeze_bn(model)
        batch_crops = [crops[i] for i in rng.permutation(len(crops))[: int(batch)]]
        x, targets = detector_batch(batch_crops, stride)
        loss = criterion(_detector_patch_outputs(model, batch_crops, x, stride), targets)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach())
    model.eval()
    return total / int(steps)


def cycle_detector_criterion(cfg: Mapping[str, Any]) -> torch.nn.Module:
    """D's loss in the cycles (config ``d_loss``): Crowd-SDNet's criterion of D's source config with
    ``crowd_aware`` off for ``"csp"`` (the paper's D, Sec. 3.1: cross-entropy on the centres and smooth-L1 on the
    sizes, one weight per head) and on for ``"sdnet"`` (size loss weighted by the crowdedness ``|R_j|``)."""
    from crowdlib.methods.sdnet import build_detector

    from .config import detector_config

    cfg = make_config(**{k: v for k, v in cfg.items() if k != "stage"})
    dcfg = detector_config(cfg)
    loss = {**dcfg["model"].get("loss", {}), "crowd_aware": cfg["d_loss"] == "sdnet"}
    return build_detector({**dcfg, "model": {**dcfg["model"], "pretrained": False, "loss": loss}})[1]


def refit_det_threshold(detector: torch.nn.Module, records: Sequence[CrowdRecord], *, nms_iou: float = 0.5,
                        grid: Sequence[float] | None = None) -> float:
    """D's counting threshold minimising the count MAE on labelled ``records`` (pass the SOURCE validation split,
    never target or test images) over ``grid`` (default :data:`REFIT_GRID`; ties: the lowest)."""
    from crowdlib.decode import choose_count_threshold

    if not records:
        raise ValueError("refit_det_threshold: no validation records")
    g = REFIT_GRID if grid is None else np.asarray(grid, np.float64)
    scores = [run_detector(detector, image_tensor(r), threshold=float(np.min(g)), nms_iou=nms_iou)[0]["scores"]
              for r in records]
    best, _ = choose_count_threshold(scores, np.array([r.count for r in records], np.float64), g)
    return float(best)


def _cut(arr: np.ndarray, y: int, x: int, p: int) -> np.ndarray:
    return arr[..., y:y + p, x:x + p]


def _in_patch(points: np.ndarray, y: int, x: int, p: int) -> np.ndarray:
    return (points[:, 0] >= x) & (points[:, 0] < x + p) & (points[:, 1] >= y) & (points[:, 1] < y + p)


def _cycle_patches(records: Sequence[CrowdRecord], models: Mapping[str, Any], cfg: Mapping[str, Any],
                   rng: np.random.Generator) -> tuple[list, list, dict[str, float]]:
    """Steps 1-2 of a cycle and the selection: R's and D's training patches from every (unlabeled) image."""
    from crowdlib.methods.sdnet import initial_sizes

    p = int(cfg["patch"])
    r_crops, d_crops, counts = [], [], []
    phi = models["phi"] if cfg["fusion"] else None
    for rec in records:
        lab = pseudo_labels(rec, models["regressor"], models["detector"], phi, cfg,
                            det_threshold=models["det_threshold"], det_nms_iou=models["det_nms_iou"],
                            phi_threshold=models.get("phi_threshold"))
        fused = lab["fused"]
        counts.append(len(fused["points"]))
        sel = select_patches(lab["density"], fused, patch=p, k=int(cfg["patches_per_image"]), mode=cfg["selection"],
                             r_range=cfg["r_range"], r_range_mode=cfg["r_range_mode"], d_score=cfg["d_score"],
                             weight=lab["weight"], rng=rng)
        img = image_tensor(rec)[0]
        h = img.shape[-2]
        crowd = (initial_sizes(fused["points"], h, "luda")[1] if len(fused["points"])
                 else np.zeros(0, np.float32))
        for y, x in sel["r"]:
            dens = _cut(lab["density"], y, x, p).copy()
            r_crops.append((img, dens, (int(y), int(x), p)) if cfg["r_context"] == "image"
                           else (_cut(img, y, x, p).contiguous(), dens, (0, 0, p)))
        for y, x in sel["d"]:
            m = _in_patch(fused["points"], y, x, p)
            crop = {"image": img, "at": (int(y), int(x), p)} if cfg["d_context"] == "image" else {
                "image": _cut(img, y, x, p).contiguous()}
            d_crops.append({**crop, "points": fused["points"][m] - np.array([x, y], np.float32),
                            "sizes": fused["sizes"][m], "crowdedness": np.maximum(crowd[m], 1.0)})
    return r_crops, d_crops, {"pseudo_count_mean": float(np.mean(counts)) if counts else 0.0}


def transfer_cycles(cfg: Mapping[str, Any], models: dict[str, Any], records: Sequence[CrowdRecord],
                    progress: bool = False, source_val: Sequence[CrowdRecord] | None = None) -> list[dict[str, Any]]:
    """Run ``cfg["cycles"]`` cycles in place on ``models`` (``{"regressor", "detector", "phi", "det_threshold",
    "det_nms_iou"}``) over ``records`` (stripped of labels here); returns one entry per cycle with R's fine-tuned
    parameters (``"r_state"``), D's state (``"d_state"``), D's counting threshold (``"det_threshold"``), losses
    and pseudo-label statistics. With ``cfg["d_threshold"] == "refit"`` the threshold is re-chosen on the labelled
    source validation records ``source_val`` after each cycle (``models["det_threshold"]`` is updated in place)."""
    from crowdlib.losses.bkt import DensityLoss

    cfg = make_config(**{k: v for k, v in cfg.items() if k != "stage"})
    refit = cfg["d_threshold"] == "refit"
    if refit and not source_val:
        raise ValueError("transfer_cycles: d_threshold='refit' needs the source validation records (source_val)")
    target = unlabeled(records)
    d_crit = cycle_detector_criterion(cfg)
    r_crit = DensityLoss(float(cfg["regressor"]["w_mse"]), float(cfg["regressor"]["w_ssim"]))
    names = _r_param_names(models["regressor"], int(cfg["r_layers"]))
    rng = np.random.default_rng([int(cfg["seed"]), 17])
    out = []
    for t in range(int(cfg["cycles"])):
        t0 = time.perf_counter()
        r_crops, d_crops, stats = _cycle_patches(target, models, cfg, rng)
        r_loss = finetune_regressor(models["regressor"], r_crit, r_crops, lr=float(cfg["r_lr"]), layers=int(cfg["r_layers"]),
                                    steps=int(cfg["r_steps"]), batch=int(cfg["cycle_batch"]), rng=rng,
                                    keep_bn=bool(cfg["keep_bn"]))
        d_loss = finetune_detector(models["detector"], d_crit, d_crops, lr=float(cfg["d_lr"]),
                                   steps=int(cfg["d_steps"]), batch=int(cfg["cycle_batch"]), rng=rng,
                                   keep_bn=bool(cfg["keep_bn"]))
        if refit:
            models["det_threshold"] = refit_det_threshold(models["detector"], source_val,
                                                          nms_iou=float(models["det_nms_iou"]))
        sd = models["regressor"].state_dict()
        out.append({"cycle": t + 1, "r_state": {k: sd[k].detach().clone() for k in names},
                    "det_threshold": float(models["det_threshold"]),
                    "d_state": {k: v.detach().clone() for k, v in models["detector"].state_dict().items()},
                    "r_loss": r_loss, "d_loss": d_loss, "n_r_patches": len(r_crops), "n_d_patches": len(d_crops),
                    "seconds": time.perf_counter() - t0, **stats})
        if progress:
            print(f"[bkt] cycle {t + 1}/{cfg['cycles']}: R loss {r_loss:.4g}, D loss {d_loss:.4g}, D threshold "
                  f"{models['det_threshold']:g}", flush=True)
    return out


def run_transfer(cfg: Mapping[str, Any], cache_dir: Any = None, progress: bool = False) -> dict[str, Any]:
    """The whole method for one config (module docstring): source stages (cached), then the cycles on the target
    domain's training images. Returns ``{"cycles": [...], "det_threshold", "source": {stage: summary}}``, where
    ``"det_threshold"`` is D_0's counting threshold (each cycle's own is in its entry)."""
    cfg = make_config(**{k: v for k, v in cfg.items() if k != "stage"})
    with fixed_threads(int(cfg["threads"])), flush_denormal():
        seed_everything(int(cfg["seed"]))
        models = source_models(cfg, cache_dir)
        source_val = None
        if cfg["d_threshold"] == "refit":
            source_val = split_source(domain_records(cfg["source"], "train"), cfg)[1]
            models["det_threshold"] = refit_det_threshold(models["detector"], source_val,
                                                          nms_iou=float(models["det_nms_iou"]))
        d0_threshold = float(models["det_threshold"])  # D_0's; transfer_cycles overwrites models' copy per cycle
        records = domain_records(cfg["target"], "train")
        cycles = transfer_cycles(cfg, models, records, progress, source_val=source_val)
    summ = {s: {k: v for k, v in r.items() if k in ("best_step", "best_val_mae", "best_val_map", "val_threshold",
                                                     "count_threshold", "history")} for s, r in models["results"].items()}
    return {"cycles": cycles, "det_threshold": d0_threshold, "source": summ}


def get_or_run_transfer(cfg: Mapping[str, Any], cache_dir: Any = None, progress: bool = False) -> dict[str, Any]:
    """:func:`run_transfer` through ``crowdlib.repro.get_or_train`` (cache ``"bkt"``, stage ``"transfer"``)."""
    from crowdlib.repro import get_or_train

    full = {"stage": "transfer", **make_config(**dict(cfg))}
    return get_or_train(full, lambda c: run_transfer(c, cache_dir, progress), name="bkt", cache_dir=cache_dir)


def cycle_models(cfg: Mapping[str, Any], result: Mapping[str, Any], t: int, cache_dir: Any = None) -> dict[str, Any]:
    """R_t, D_t (t = 0: the source models) and Phi of a :func:`run_transfer` result, with D_t's counting threshold
    (the refit one of cycle ``t`` under ``d_threshold="refit"``)."""
    models = source_models(cfg, cache_dir)
    if t < 0 or t > len(result["cycles"]):
        raise ValueError(f"cycle_models: t must lie in 0..{len(result['cycles'])}, got {t}")
    if t > 0:
        c = result["cycles"][t - 1]
        models["regressor"].load_state_dict(c["r_state"], strict=False)
        models["detector"].load_state_dict(c["d_state"])
    if make_config(**{k: v for k, v in cfg.items() if k != "stage"})["d_threshold"] == "refit":
        models["det_threshold"] = float(result["det_threshold"] if t == 0 else result["cycles"][t - 1]["det_threshold"])
    return models


def score_models(models: Mapping[str, Any], cfg: Mapping[str, Any], records: Sequence[CrowdRecord],
                 map_rule: str = "paper") -> dict[str, float]:
    """Metrics on labelled (test) records: R and D alone (``"R MAE"``, ``"D mAP"``...), the fused results
    (``"MAE"``, ``"MSE"`` of ``M^R``; ``"Det MAE"``, ``"Det MSE"``, ``"mAP"`` of ``M^D``) and Phi(R) alone
    (``"Phi mAP"``, Table 4)."""
    cfg = make_config(**{k: v for k, v in cfg.items() if k != "stage"})
    with flush_denormal():
        labs = [pseudo_labels(r, models["regressor"], models["detector"], models["phi"], {**cfg, "fusion": True},
                              det_threshold=models["det_threshold"], det_nms_iou=models["det_nms_iou"],
                              phi_threshold=models.get("phi_threshold")) for r in records]
    gt = [r.count for r in records]
    pts = [r.points for r in records]
    out: dict[str, float] = {}
    for name, vals in (("R", [float(np.clip(lab["cells"], 0, None).sum()) for lab in labs]),
                       ("D", [len(lab["detections"]["points"]) for lab in labs])):
        e = count_errors(vals, gt)
        out[f"{name} MAE"], out[f"{name} MSE"] = e["MAE"], e["MSE"]
    out["D mAP"] = localization_map([lab["detections"] for lab in labs], pts, rule=map_rule)
    out["Phi mAP"] = localization_map([lab["phi"] for lab in labs], pts, rule=map_rule)
    if cfg["fusion"]:
        dens = [float(lab["density"].sum()) for lab in labs]
        fused = [lab["fused"] for lab in labs]
    else:
        dens = [float(lab["regression"].sum()) for lab in labs]
        fused = [lab["detections"] for lab in labs]
    e = count_errors(dens, gt)
    out["MAE"], out["MSE"] = e["MAE"], e["MSE"]
    e = count_errors([len(f["points"]) for f in fused], gt)
    out["Det MAE"], out["Det MSE"] = e["MAE"], e["MSE"]
    out["mAP"] = localization_map(fused, pts, rule=map_rule)
    return out
