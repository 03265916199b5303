"""Average precision from ranked detections (shared by point AP and box AP).

Convention: all-point interpolated AP (PASCAL VOC 2010+): the precision envelope
``p_interp(r) = max_{r' >= r} p(r')`` integrated over recall as a step function,
``AP = sum_k (R_k - R_{k-1}) * p_interp(R_k)``.

Tied scores are handled as one group: precision and recall are only evaluated after *all* detections of a
given score have been counted (the curve has one point per distinct score), so the result does not depend on
the order in which tied detections are listed. With continuous scores this equals the usual VOC computation.

With no ground truth at all AP is undefined and NaN is returned; with ground truth but no detection it is 0.
"""
from __future__ import annotations

import numpy as np

__all__ = ["average_precision", "pr_curve", "rank_order"]


def rank_order(scores: np.ndarray, *tie_keys: np.ndarray) -> np.ndarray:
    """Indices sorting ``scores`` descending; equal scores are ordered by ``tie_keys`` (first key first).

    The tie keys (image index, coordinates) make the ranking independent of the order detections are listed in.
    """
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    ss = s[order]
    if tie_keys and np.any(ss[1:] == ss[:-1]):
        order = np.lexsort(tuple(reversed(tie_keys)) + (-s,))
    return order


def pr_curve(scores: np.ndarray, is_tp: np.ndarray, num_gt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision/recall after each distinct score (descending).

    Args:
        scores: ``(D,)`` scores of the kept (non-ignored) detections.
        is_tp: ``(D,)`` bool, whether each detection is a true positive.
        num_gt: number of (non-ignored) ground-truth objects.

    Returns:
        ``(recall, precision, thresholds)``, each ``(K,)`` with ``K`` distinct scores; ``thresholds[k]`` is the
        score at which the point is reached (detections with score >= it are counted).
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    t = np.asarray(is_tp, dtype=bool).reshape(-1)
    if s.shape != t.shape:
        raise ValueError(f"pr_curve: {s.size} scores for {t.size} TP flags")
    if num_gt < 0:
        raise ValueError("pr_curve: num_gt must be >= 0")
    if s.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    order = np.argsort(-s, kind="stable")
    s, t = s[order], t[order]
    ctp = np.cumsum(t)
    last = np.r_[s[1:] != s[:-1], True]  # last detection of each tie group
    tp = ctp[last].astype(np.float64)
    n = (np.nonzero(last)[0] + 1).astype(np.float64)
    recall = tp / num_gt if num_gt > 0 else np.full_like(tp, np.nan)
    return recall, tp / n, s[last]


def average_precision(scores: np.ndarray, is_tp: np.ndarray, num_gt: int) -> float:
    """All-point interpolated AP of ranked detections (see the module docstring for ties and empty cases)."""
    if num_gt == 0:
        return float("nan")
    recall, precision, _ = pr_curve(scores, is_tp, num_gt)
    if recall.size == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(steps * envelope))
