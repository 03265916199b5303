"""Box detection AP (Crowd-SDNet Tables II-IV) and difficulty subsets.

Matching (PASCAL VOC style, per IoU threshold ``t``): detections of the whole dataset are ranked by score
(descending; ties broken by image index then box coordinates, so input order never matters). Each detection looks
at the ground-truth box of its image with the highest IoU (ties: lower index). If that IoU is ``>= t``:

- the ground truth is *ignored* (``gt_ignore``): the detection is dropped from the ranking (neither TP nor FP);
- else, the highest-ranked detection whose best box it is becomes a TP; later ones are duplicates (FP);

otherwise the detection is a FP. This is exactly the VOC rule (a detection whose best box is already taken is a
FP even if another box overlaps it enough), and it is computed without a sequential loop because each
detection's best box does not depend on the matching. AP: all-point interpolation, tied scores as one group
(:mod:`crowdlib.metrics.ap`); the number of positives is the number of non-ignored ground-truth boxes.

Difficulty subsets (:func:`size_subsets`): WiderFace-like cumulative subsets by true box size; ground truths
outside a subset are *ignored* (not removed), so a detection that finds a small face while evaluating "easy" is
not punished as a FP. :func:`widerface_subsets` does the same from WiderFace's own difficulty labels.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from crowdlib.metrics._pairs import candidate_pairs
from crowdlib.metrics.ap import average_precision, rank_order

__all__ = ["box_iou", "box_ap", "box_ap_subsets", "size_subsets", "widerface_subsets", "DEFAULT_SIZE_BINS"]

#: Cumulative WiderFace-like subsets by box height in pixels: ``name -> (min, max)`` (min inclusive, max exclusive).
#: "hard" holds every box, "medium" boxes of at least 16 px, "easy" boxes of at least 32 px. These are
#: conventions of this project for synthetic scenes (WiderFace's own sets come from detection difficulty).
DEFAULT_SIZE_BINS: dict[str, tuple[float, float]] = {
    "easy": (32.0, float("inf")),
    "medium": (16.0, float("inf")),
    "hard": (0.0, float("inf")),
}


def _as_boxes(value: Any, what: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{what}: boxes must have shape (N, 4) as (x1, y1, x2, y2), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: boxes contain NaN or inf")
    if np.any(arr[:, 2] < arr[:, 0]) or np.any(arr[:, 3] < arr[:, 1]):
        raise ValueError(f"{what}: boxes need x2 >= x1 and y2 >= y1")
    return arr


def box_side(boxes: np.ndarray, min_area: float = 1.0) -> np.ndarray:
    """Side of the square with each ``(x1, y1, x2, y2)`` box's area, ``sqrt(max(area, min_area))`` (float64)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.sqrt(np.clip((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), min_area, None))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, M)`` of ``(x1, y1, x2, y2)`` boxes (continuous coordinates, no +1; 0 for empty unions)."""
    a = _as_boxes(a, "box_iou(a)")
    b = _as_boxes(b, "box_iou(b)")
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _best_gt_all(preds: list[np.ndarray], gts: list[np.ndarray], min_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Per prediction (concatenated over images): global index of its highest-IoU gt box in the same image
    (lowest index on ties) and that IoU, when that IoU is ``>= min_iou``; otherwise ``(-1, 0.0)``.

    Pruning: ``IoU >= t`` forces the intersection width to be ``>= t * max(w_a, w_b)`` and so the centre offset
    to be ``<= (1 - t) * max(w_a, w_b)`` along x (same along y), i.e. a centre distance of at most
    ``c * max(side_a, side_b)`` with ``c = sqrt(2) (1 - t)``. That holds when the distance is within ``c`` times
    the ground truth's side or within ``c`` times the prediction's side, so the candidate pairs are the union of
    two KD-tree queries (:func:`crowdlib.metrics._pairs.candidate_pairs`), one with a radius per ground truth and
    one with a radius per prediction; no dense IoU matrix is built.
    """
    n_pred = sum(len(p) for p in preds)
    best = np.full(n_pred, -1, dtype=np.int64)
    val = np.zeros(n_pred)
    if n_pred == 0 or sum(len(g) for g in gts) == 0:
        return best, val
    p_all, g_all = np.concatenate(preds), np.concatenate(gts)

    def centre(b: np.ndarray) -> np.ndarray:
        return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)

    def side(b: np.ndarray) -> np.ndarray:
        return np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])

    c = np.sqrt(2.0) * (1.0 - min_iou)
    p_c, g_c = [centre(p) for p in preds], [centre(g) for g in gts]
    r_g = c * side(g_all) + 1e-6
    gi1, pj1, *_ = candidate_pairs(p_c, g_c, r_g)
    pj2, gi2, d2, *_ = candidate_pairs(g_c, p_c, c * side(p_all) + 1e-6)  # roles swapped: radius per prediction
    extra = d2 > r_g[gi2]  # pairs not already found by the first query
    gi, pj = np.concatenate([gi1, gi2[extra]]), np.concatenate([pj1, pj2[extra]])
    if len(gi) == 0:
        return best, val
    pb, gb = p_all[pj], g_all[gi]
    w = np.clip(np.minimum(pb[:, 2], gb[:, 2]) - np.maximum(pb[:, 0], gb[:, 0]), 0, None)
    h = np.clip(np.minimum(pb[:, 3], gb[:, 3]) - np.maximum(pb[:, 1], gb[:, 1]), 0, None)
    inter = w * h
    union = (pb[:, 2] - pb[:, 0]) * (pb[:, 3] - pb[:, 1]) + (gb[:, 2] - gb[:, 0]) * (gb[:, 3] - gb[:, 1]) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    pos = iou >= min_iou
    gi, pj, iou = gi[pos], pj[pos], iou[pos]
    if len(gi) == 0:
        return best, val
    order = np.lexsort((gi, -iou, pj))
    pj, gi, iou = pj[order], gi[order], iou[order]
    first = np.r_[True, pj[1:] != pj[:-1]]
    best[pj[first]] = gi[first]
    val[pj[first]] = iou[first]
    return best, val


def box_ap(
    pred_boxes: Sequence[Any],
    pred_scores: Sequence[Any],
    gt_boxes: Sequence[Any],
    iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7),
    gt_ignore: Sequence[Any] | None = None,
) -> dict[float, float]:
    """VOC-style box AP at each IoU threshold (see the module docstring for matching, ignoring and ties).

    Args:
        pred_boxes: per image ``(N_i, 4)`` boxes ``(x1, y1, x2, y2)``.
        pred_scores: per image ``(N_i,)`` scores.
        gt_boxes: per image ``(M_i, 4)`` boxes.
        iou_thresholds: a detection needs IoU ``>=`` the threshold with its best box.
        gt_ignore: optional per image ``(M_i,)`` bool masks of ignored ground truths.

    Returns:
        ``{threshold: AP}`` (NaN when no non-ignored ground truth exists).
    """
    n = len(gt_boxes)
    if len(pred_boxes) != n or len(pred_scores) != n:
        raise ValueError(f"box_ap: {len(pred_boxes)} box lists and {len(pred_scores)} score lists for {n} images")
    if gt_ignore is not None and len(gt_ignore) != n:
        raise ValueError(f"box_ap: {len(gt_ignore)} ignore masks for {n} images")
    thresholds = [float(t) for t in iou_thresholds]
    if any(t <= 0 or t > 1 for t in thresholds):
        raise ValueError(f"box_ap: IoU thresholds must lie in (0, 1], got {thresholds}")
    preds, scores_l, gts, ign_l = [], [], [], []
    for i in range(n):
        pb = _as_boxes(pred_boxes[i], f"pred_boxes[{i}]")
        sc = pred_scores[i]
        sc = np.asarray(sc.detach().cpu().numpy() if hasattr(sc, "detach") else sc, dtype=np.float64).reshape(-1)
        if len(sc) != len(pb):
            raise ValueError(f"box_ap: image {i}: {len(sc)} scores for {len(pb)} boxes")
        gb = _as_boxes(gt_boxes[i], f"gt_boxes[{i}]")
        ign = np.zeros(len(gb), dtype=bool)
        if gt_ignore is not None and gt_ignore[i] is not None:
            ign = np.asarray(gt_ignore[i], dtype=bool).reshape(-1)
            if len(ign) != len(gb):
                raise ValueError(f"box_ap: image {i}: {len(ign)} ignore flags for {len(gb)} boxes")
        preds.append(pb)
        scores_l.append(sc)
        gts.append(gb)
        ign_l.append(ign)
    best, iou = _best_gt_all(preds, gts, min(thresholds) if thresholds else 1.0)
    gt_ign = np.concatenate(ign_l) if n else np.zeros(0, bool)
    num_gt = int((~gt_ign).sum())
    ign = np.where(best >= 0, gt_ign[np.maximum(best, 0)] if len(gt_ign) else False, False)
    scores = np.concatenate(scores_l) if n else np.zeros(0)
    img = np.repeat(np.arange(n), [len(p) for p in preds]) if n else np.zeros(0, np.int64)
    bx = np.concatenate(preds) if n else np.zeros((0, 4))
    order = rank_order(scores, img, bx[:, 0], bx[:, 1], bx[:, 2], bx[:, 3])
    scores, iou, best, ign = scores[order], iou[order], best[order], ign[order]
    out: dict[float, float] = {}
    for t in thresholds:
        hit = iou >= t
        dropped = hit & ign
        cand = np.nonzero(hit & ~ign)[0]
        _, first = np.unique(best[cand], return_index=True)  # highest-ranked detection per box
        tp = np.zeros(len(scores), dtype=bool)
        tp[cand[first]] = True
        keep = ~dropped
        out[t] = average_precision(scores[keep], tp[keep], num_gt)
    return out


def size_subsets(
    gt_boxes: Sequence[Any],
    bins: Mapping[str, tuple[float, float]] | None = None,
    *,
    by: Literal["height", "sqrt_area", "max_side"] = "height",
) -> dict[str, list[np.ndarray]]:
    """In-subset masks by true box size.

    Args:
        gt_boxes: per image ``(M_i, 4)`` boxes.
        bins: ``name -> (min, max)`` size range (min inclusive, max exclusive); default
            :data:`DEFAULT_SIZE_BINS` (cumulative WiderFace-like easy >= 32 px, medium >= 16 px, hard = all).
        by: the size of a box: its height (WiderFace-like), ``sqrt(w * h)``, or ``max(w, h)``.

    Returns:
        ``{name: [mask per image]}``; pass ``gt_ignore=[~m for m in masks]`` to :func:`box_ap` (or use
        :func:`box_ap_subsets`), so boxes outside the subset are ignored rather than removed.
    """
    bins = DEFAULT_SIZE_BINS if bins is None else bins
    out: dict[str, list[np.ndarray]] = {name: [] for name in bins}
    for i, b in enumerate(gt_boxes):
        bx = _as_boxes(b, f"gt_boxes[{i}]")
        w, h = bx[:, 2] - bx[:, 0], bx[:, 3] - bx[:, 1]
        if by == "height":
            size = h
        elif by == "sqrt_area":
            size = np.sqrt(w * h)
        elif by == "max_side":
            size = np.maximum(w, h)
        else:
            raise ValueError(f"size_subsets: by must be 'height', 'sqrt_area' or 'max_side', got {by!r}")
        for name, (lo, hi) in bins.items():
            out[name].append((size >= lo) & (size < hi))
    return out


def widerface_subsets(difficulty: Sequence[Any]) -> dict[str, list[np.ndarray]]:
    """WiderFace's cumulative subsets from per-box difficulty labels ``0`` easy, ``1`` medium, ``2`` hard.

    "easy" holds label-0 boxes, "medium" labels 0-1, "hard" all boxes (as in the WiderFace evaluation).
    """
    out: dict[str, list[np.ndarray]] = {"easy": [], "medium": [], "hard": []}
    for i, d in enumerate(difficulty):
        lab = np.asarray(d, dtype=np.int64).reshape(-1)
        if np.any((lab < 0) | (lab > 2)):
            raise ValueError(f"widerface_subsets: image {i}: labels must be 0 (easy), 1 (medium) or 2 (hard)")
        out["easy"].append(lab == 0)
        out["medium"].append(lab <= 1)
        out["hard"].append(np.ones(len(lab), dtype=bool))
    return out


def box_ap_subsets(
    pred_boxes: Sequence[Any],
    pred_scores: Sequence[Any],
    gt_boxes: Sequence[Any],
    subsets: Mapping[str, Sequence[np.ndarray]],
    iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7),
) -> dict[str, dict[float, float]]:
    """:func:`box_ap` on each subset (ground truths outside the subset ignored): ``{subset: {threshold: AP}}``."""
    return {
        name: box_ap(pred_boxes, pred_scores, gt_boxes, iou_thresholds, gt_ignore=[~np.asarray(m, bool) for m in masks])
        for name, masks in subsets.items()
    }
