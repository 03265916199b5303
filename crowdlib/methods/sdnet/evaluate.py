"""Crowd-SDNet evaluation: box AP on size subsets, counting errors, pseudo-box quality, and point-only scoring."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch


from .infer import predict_sdnet
from .store import PseudoBoxStore
from .train import default_config, load_detector, merge_config

__all__ = ["SYNTH_SIZE_FRACTIONS", "PRESET_SIZE_FRACTIONS", "synthetic_size_bins", "count_errors", "evaluate_detections", "size_errors",
           "predict_trained",
           "evaluate_sdnet", "pseudo_boxes", "pseudo_box_quality", "evaluate_points", "mean_train_count"]


# =====================================================================================================================
# evaluation
# =====================================================================================================================
#: Cumulative difficulty subsets by true box height as a FRACTION of the image height for the synthetic scenes
#: (the analogue of WiderFace's easy/medium/hard): easy >= H/10, medium >= H/20, hard = all.
SYNTH_SIZE_FRACTIONS: dict[str, float] = {"easy": 0.1, "medium": 0.05, "hard": 0.0}
#: The same subsets for the calibrated stand-ins, whose heads are far smaller than WiderFace's faces: easy and
#: medium start near the 80th and 40th percentiles of the preset's head size (rendered training heads).
PRESET_SIZE_FRACTIONS: dict[str, dict[str, float]] = {
    "sha_like": {"easy": 0.04, "medium": 0.02, "hard": 0.0},
    "shb_like": {"easy": 0.035, "medium": 0.018, "hard": 0.0},
}


def synthetic_size_bins(image_size: int, preset: str | None = None) -> dict[str, tuple[float, float]]:
    """:data:`SYNTH_SIZE_FRACTIONS` (or the preset's :data:`PRESET_SIZE_FRACTIONS`) in pixels for synthetic images
    of height ``image_size``."""
    fr = PRESET_SIZE_FRACTIONS.get(str(preset), SYNTH_SIZE_FRACTIONS)
    return {k: (f * float(image_size), math.inf) for k, f in fr.items()}


def _image_height(rec: Any) -> int:
    return int(rec.image_size[0]) if rec.image_size is not None else int(rec.load_image().shape[0])


def _default_bins(records: Sequence[Any]) -> dict[str, tuple[float, float]]:
    """Synthetic scenes: :func:`synthetic_size_bins` of their height; real images: the metrics' default bins."""
    from crowdlib.metrics.boxes import DEFAULT_SIZE_BINS

    if records and "preset" in records[0].meta:
        return synthetic_size_bins(_image_height(records[0]), records[0].meta["preset"])
    return dict(DEFAULT_SIZE_BINS)


def count_errors(pred_counts: Sequence[float], gt_counts: Sequence[float]) -> dict[str, float]:
    """MAE, RMSE (the papers' "MSE") and NAE (images with 0 heads skipped) of counts."""
    from crowdlib.metrics.counting import mae, nae, rmse

    return {"MAE": float(mae(pred_counts, gt_counts)), "RMSE": float(rmse(pred_counts, gt_counts)),
            "NAE": float(nae(pred_counts, gt_counts))}


def evaluate_detections(preds: Sequence[Mapping[str, np.ndarray]], records: Sequence[Any], count_threshold: float,
                        *, bins: Mapping[str, tuple[float, float]] | None = None,
                        iou_thresholds: Sequence[float] = (0.3, 0.5)) -> dict[str, float]:
    """Box AP per difficulty subset and IoU threshold (records need true boxes) plus counting errors.

    Keys: ``"AP@<t> <subset>"`` (in [0, 1]), ``"MAE"``, ``"RMSE"``, ``"NAE"``. The count of an image is the
    number of detections with score > ``count_threshold`` (chosen on validation images).
    """
    from crowdlib.metrics.boxes import box_ap_subsets, size_subsets

    if len(preds) != len(records):
        raise ValueError(f"evaluate_detections: {len(preds)} predictions for {len(records)} records")
    out: dict[str, float] = {}
    if all(r.boxes is not None for r in records):
        gts = [r.boxes for r in records]
        subsets = size_subsets(gts, _default_bins(records) if bins is None else bins)
        aps = box_ap_subsets([p["boxes"] for p in preds], [p["scores"] for p in preds], gts, subsets,
                             iou_thresholds)
        for name, by_t in aps.items():
            for t, v in by_t.items():
                out[f"AP@{t:g} {name}"] = float(v)
    counts = [float((p["scores"] > count_threshold).sum()) for p in preds]
    out.update(count_errors(counts, [r.count for r in records]))
    if all(r.boxes is not None for r in records):
        out.update(size_errors(preds, records, count_threshold))
    return out


def size_errors(preds: Sequence[Mapping[str, np.ndarray]], records: Sequence[Any],
                count_threshold: float) -> dict[str, float]:
    """How far predicted box sizes are from the true ones, the quantity that separates AP@0.5 from AP@0.3.

    Each counted detection (score > ``count_threshold``) whose centre lies within half a side of its nearest true
    head's centre is paired with that head; ``"size bias"`` is the median of ``log(predicted side / true side)``
    (0: unbiased, +0.1: 10% too large) and ``"size error"`` the median of its absolute value, over all pairs.
    """
    from scipy.spatial import cKDTree

    from crowdlib.metrics.boxes import box_side

    ratios = []
    for p, r in zip(preds, records):
        keep = np.asarray(p["scores"]) > count_threshold
        pb = np.asarray(p["boxes"]).reshape(-1, 4)[keep]
        if not len(pb) or not r.count:
            continue
        gb = np.asarray(r.boxes, np.float64).reshape(-1, 4)
        pc = 0.5 * (pb[:, :2] + pb[:, 2:])
        gc = 0.5 * (gb[:, :2] + gb[:, 2:])
        d, j = cKDTree(gc).query(pc, k=1)
        gs = box_side(gb, 1e-6)[j]
        ok = d <= 0.5 * gs
        ratios.append(np.log(box_side(pb, 1e-6)[ok] / gs[ok]))
    lr = np.concatenate(ratios) if ratios else np.zeros(0)
    if not len(lr):
        return {"size bias": float("nan"), "size error": float("nan")}
    return {"size bias": float(np.median(lr)), "size error": float(np.median(np.abs(lr)))}


def predict_trained(result: Mapping[str, Any], cfg: Mapping[str, Any], records: Sequence[Any], *,
                    device: torch.device | str | None = None, progress: bool = False) -> list[dict[str, np.ndarray]]:
    """Rebuild a trained run's detector and detect on ``records`` with the run's ``eval`` settings (and the NMS IoU
    the run chose on validation, when it chose one)."""
    cfg = merge_config(default_config(), cfg)
    model = load_detector(result, cfg, device)
    e = cfg["eval"]
    return predict_sdnet(model, records, device=next(model.parameters()).device, scales=e["scales"],
                         min_score=e["min_score"], nms_iou=float(result.get("nms_iou", e["nms_iou"])),
                         batch_size=int(e["batch_size"]),
                         progress=progress)


def evaluate_sdnet(result: Mapping[str, Any], cfg: Mapping[str, Any], records: Sequence[Any], *,
                   device: torch.device | str | None = None, progress: bool = False,
                   bins: Mapping[str, tuple[float, float]] | None = None,
                   iou_thresholds: Sequence[float] = (0.3, 0.5)) -> dict[str, float]:
    """Detect on ``records`` with a trained result and score it (:func:`evaluate_detections`)."""
    preds = predict_trained(result, cfg, records, device=device, progress=progress)
    return evaluate_detections(preds, records, float(result["count_threshold"]), bins=bins,
                               iou_thresholds=iou_thresholds)


def pseudo_boxes(records: Sequence[Any], method: str, params: Mapping[str, Any] | None = None) -> list[np.ndarray]:
    """Square pseudo boxes centred on the annotated points (``"gak"`` or ``"luda"`` sizes) for each record."""
    store = PseudoBoxStore.from_records(records, method, params)
    return [store.boxes(i) for i in range(len(store))]


def pseudo_box_quality(boxes: Sequence[np.ndarray], records: Sequence[Any],
                       iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7),
                       bins: Mapping[str, tuple[float, float]] | None = None) -> dict[str, float]:
    """How good pseudo boxes are against the true boxes (Table II; Table III "size init" with subsets).

    ``AP(t)``: :func:`crowdlib.metrics.boxes.box_ap` with one constant score for every box (pseudo boxes have no
    ranking; with ties AP equals precision x recall of the single operating point). ``share>=t``: fraction of
    heads whose pseudo box has IoU >= t with the same head's true box. With ``bins``, AP per subset as
    ``"AP@<t> <subset>"`` instead.
    """
    from crowdlib.metrics.boxes import box_ap, box_ap_subsets, box_iou, size_subsets

    gts = [r.boxes for r in records]
    if any(g is None for g in gts):
        raise ValueError("pseudo_box_quality: every record needs true boxes")
    scores = [np.ones(len(b)) for b in boxes]
    out: dict[str, float] = {}
    if bins is not None:
        aps = box_ap_subsets(list(boxes), scores, gts, size_subsets(gts, bins), iou_thresholds)
        for name, by_t in aps.items():
            for t, v in by_t.items():
                out[f"AP@{t:g} {name}"] = float(v)
        return out
    for t, v in box_ap(list(boxes), scores, gts, iou_thresholds).items():
        out[f"AP({t:g})"] = float(v)
    own = np.concatenate([np.diag(box_iou(b, g)) if len(b) else np.zeros(0) for b, g in zip(boxes, gts)])
    for t in iou_thresholds:
        out[f"share>={t:g}"] = float((own >= t).mean()) if len(own) else float("nan")
    return out

def evaluate_points(result: Mapping[str, Any], cfg: Mapping[str, Any], records: Sequence[Any], *,
                    device: torch.device | str | None = None, progress: bool = False,
                    radius: float = 20.0) -> tuple[dict[str, float], list[dict[str, np.ndarray]]]:
    """Counting (MAE, RMSE, NAE) and localization (point AP at ``radius`` px in %, MLE in px) on point-only data.

    AP ranks every decoded peak; MLE and the counts use the peaks above (>) the validation-chosen count threshold.
    Returns ``(metrics, predictions)``.
    """
    from crowdlib.metrics.points import mle, point_ap

    preds = predict_trained(result, cfg, records, device=device, progress=progress)
    thr = float(result["count_threshold"])
    gts = [r.points for r in records]
    kept = [{"points": p["points"][p["scores"] > thr], "scores": p["scores"][p["scores"] > thr]} for p in preds]
    out = count_errors([len(k["points"]) for k in kept], [r.count for r in records])
    out["AP@20px (%)"] = 100.0 * float(point_ap([{"points": p["points"], "scores": p["scores"]} for p in preds], gts,
                                                radius))
    out["MLE"] = float(mle(kept, gts, radius=radius))
    return out, preds


def mean_train_count(result: Mapping[str, Any]) -> float:
    """Mean head count of a run's training images (the trivial counting baseline)."""
    st = result["store"]
    return float(np.mean([len(p) for p in st["points"]])) if st["points"] else 0.0
