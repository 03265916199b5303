"""Scoring: MAE, MSE (the root of the mean squared error, as the paper's tables) and localization mAP over match
distances ``c = 1..100`` px.

:func:`paper_point_map` is Sec. 4.2's rule read literally: a prediction is a candidate for its **nearest**
ground-truth point only, when that point is within ``c`` px (inclusive); of the candidates of one ground-truth
point the highest-scoring is the true positive (ties: the one ranked first by :func:`crowdlib.metrics.ap.rank_order`,
image index, then x, then y), the others are false positives, even when another ground-truth point that is free lies
within ``c``. ``crowdlib.metrics.point_map_over_radii`` instead lets a prediction take the nearest *still unmatched*
point within ``c`` (greedy in score order), which is never lower; :func:`localization_map` computes either
(``rule="paper"`` or ``"greedy"``). AP is all-point interpolated over the dataset ranking (tied scores one group).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["paper_point_map", "localization_map", "count_errors"]


def paper_point_map(preds: Sequence[Any], gts: Sequence[np.ndarray], radii: Sequence[float] = tuple(range(1, 101)),
                    *, return_per_radius: bool = False) -> float | tuple[float, np.ndarray]:
    """mAP with the paper's nearest-ground-truth rule (module docstring). ``preds``: per image ``{"points",
    "scores"}`` or ``(points, scores)``; ``gts``: per image ``(M, 2)`` points."""
    from scipy.spatial import cKDTree

    from crowdlib.metrics.ap import average_precision, rank_order

    if len(preds) != len(gts):
        raise ValueError(f"paper_point_map: {len(preds)} prediction entries for {len(gts)} ground-truth entries")
    r = np.asarray(list(radii), np.float64)
    if r.size == 0 or np.any(r < 0):
        raise ValueError("paper_point_map: radii must be a non-empty list of values >= 0")
    pts, scs, img, near, dist = [], [], [], [], []
    offset = 0
    for i, (p, g) in enumerate(zip(preds, gts)):
        pp, ss = (p["points"], p["scores"]) if isinstance(p, dict) else p
        pp = np.asarray(pp, np.float64).reshape(-1, 2)
        ss = np.asarray(ss, np.float64).reshape(-1)
        if len(pp) != len(ss):
            raise ValueError(f"paper_point_map: image {i}: {len(ss)} scores for {len(pp)} points")
        gg = np.asarray(g, np.float64).reshape(-1, 2)
        if len(gg) and len(pp):
            d, j = cKDTree(gg).query(pp, k=1)
        else:
            d, j = np.full(len(pp), np.inf), np.zeros(len(pp), np.int64)
        pts.append(pp)
        scs.append(ss)
        img.append(np.full(len(pp), i))
        near.append(j + offset)
        dist.append(d)
        offset += len(gg)
    num_gt = offset
    p_all = np.concatenate(pts) if pts else np.zeros((0, 2))
    s_all, im, gt_of, d_all = (np.concatenate(a) if a else np.zeros(0) for a in (scs, img, near, dist))
    order = rank_order(s_all, im, p_all[:, 0], p_all[:, 1])
    rank = np.empty(len(s_all), np.int64)
    rank[order] = np.arange(len(s_all))
    by = np.lexsort((rank, gt_of))  # grouped by ground-truth point, best rank first
    aps = np.empty(len(r))
    for k, c in enumerate(r):
        cand = by[d_all[by] <= c]
        first = np.r_[True, gt_of[cand][1:] != gt_of[cand][:-1]] if len(cand) else np.zeros(0, bool)
        tp = np.zeros(len(s_all), bool)
        tp[cand[first]] = True
        aps[k] = average_precision(s_all, tp, num_gt)
    mean = float(np.mean(aps))
    return (mean, aps) if return_per_radius else mean


def localization_map(preds: Sequence[Any], gts: Sequence[np.ndarray], *, rule: str = "paper",
                     radii: Sequence[float] = tuple(range(1, 101))) -> float:
    """mAP over ``radii`` with the ``"paper"`` rule or crowdlib's ``"greedy"`` matching (module docstring)."""
    if rule == "paper":
        return float(paper_point_map(preds, gts, radii))
    if rule == "greedy":
        from crowdlib.metrics.points import point_map_over_radii

        return float(point_map_over_radii([p if isinstance(p, dict) else {"points": p[0], "scores": p[1]}
                                           for p in preds], gts, radii))
    raise ValueError(f"localization_map: rule must be 'paper' or 'greedy', got {rule!r}")


def count_errors(pred: Sequence[float], gt: Sequence[float]) -> dict[str, float]:
    """``{"MAE", "MSE"}`` with MSE the root of the mean squared error (the paper's tables)."""
    p, g = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if p.shape != g.shape:
        raise ValueError(f"count_errors: {p.size} predictions for {g.size} ground-truth counts")
    if p.size == 0:
        return {"MAE": float("nan"), "MSE": float("nan")}
    return {"MAE": float(np.mean(np.abs(p - g))), "MSE": float(np.sqrt(np.mean((p - g) ** 2)))}
