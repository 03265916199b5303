"""Point-level detection metrics: point AP (Crowd-SDNet Table V), mAP over radii (bi-knowledge transfer), MLE.

Inputs are per-image lists. A prediction entry is ``(points (N, 2), scores (N,))``, a dict with ``"points"`` and
``"scores"`` (the output of :func:`crowdlib.decode.heatmap_peaks`), or a bare ``(N, 2)`` points array (every
score is then 1, so AP degenerates to precision x recall at one operating point). Ground truth is ``(M, 2)`` points.

Greedy matching (:func:`greedy_point_matching`, used by AP): all predictions of the dataset are ranked by score
(descending; ties broken by image index, then x, then y, so the ranking never depends on input order); in rank
order each prediction takes the **nearest still-unmatched** ground-truth point of its image within ``radius``
(distance ``<= radius``, inclusive; equal distances go to the lower ground-truth index). A prediction that finds
none is a false positive; duplicates of an already-taken head are therefore false positives unless another head is
free within reach. This is "for each head, the highest-scoring prediction within c pixels is the true positive"
of the bi-knowledge transfer paper, with the nearest free head chosen when a prediction reaches several.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

from crowdlib.metrics._pairs import as_points, candidate_pairs
from crowdlib.metrics.ap import average_precision, pr_curve, rank_order

__all__ = ["greedy_point_matching", "point_ap", "point_map_over_radii", "mle", "mle_details"]


def _unpack_pred(value: Any, i: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(value, dict):
        if "points" not in value:
            raise ValueError(f"preds[{i}]: dict without 'points'")
        pts, scores = value["points"], value.get("scores")
    elif isinstance(value, (tuple, list)) and len(value) == 2 and np.ndim(value[0]) == 2 and np.ndim(value[1]) == 1:
        pts, scores = value
    else:
        pts, scores = value, None
    p = as_points(pts, f"preds[{i}]")
    if scores is None:
        s = np.ones(len(p))
    else:
        if hasattr(scores, "detach"):
            scores = scores.detach().cpu().numpy()
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(s) != len(p):
            raise ValueError(f"preds[{i}]: {len(s)} scores for {len(p)} points")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"preds[{i}]: scores contain NaN or inf")
    return p, s


def _prepare(preds: Sequence[Any], gts: Sequence[Any]) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} prediction entries for {len(gts)} ground-truth entries")
    pts, scores = [], []
    for i, v in enumerate(preds):
        p, s = _unpack_pred(v, i)
        pts.append(p)
        scores.append(s)
    g = [as_points(x, f"gts[{i}]") for i, x in enumerate(gts)]
    return pts, (np.concatenate(scores) if scores else np.zeros(0)), g


def _ranks(p_all: np.ndarray, p_img: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Rank of each prediction: score descending, ties by image index, then x, then y."""
    order = rank_order(scores, p_img, p_all[:, 0], p_all[:, 1])
    rank = np.empty(len(scores), dtype=np.int64)
    rank[order] = np.arange(len(scores))
    return rank


def _greedy_sequential(pair_p: np.ndarray, pair_g: np.ndarray, taken: np.ndarray, pred_gt: np.ndarray) -> None:
    """The plain greedy loop over pairs sorted by (pred rank, distance, gt index); updates in place.

    Walks each prediction's candidate run only until it finds a free head.
    """
    if len(pair_p) == 0:
        return
    starts = np.r_[0, np.nonzero(pair_p[1:] != pair_p[:-1])[0] + 1]
    ends = np.r_[starts[1:], len(pair_p)]
    free = bytearray((~taken).astype(np.uint8).tobytes())
    heads = memoryview(np.ascontiguousarray(pair_g, dtype=np.int64))
    for p, lo, hi in zip(pair_p[starts].tolist(), starts.tolist(), ends.tolist()):
        for k in range(lo, hi):
            g = heads[k]
            if free[g]:
                free[g] = 0
                pred_gt[p] = g
                break


def _greedy_from_sorted_pairs(
    pair_p: np.ndarray, pair_g: np.ndarray, rank_p: np.ndarray, n_pred: int, n_gt: int
) -> np.ndarray:
    """Greedy assignment over pairs sorted by (pred rank, distance, gt index); returns pred -> gt or -1.

    Vectorised rounds settle most predictions first: an unsettled prediction takes its nearest free head ``g``
    whenever no higher-ranked unsettled prediction has ``g`` among its candidates (then no earlier prediction can
    take ``g`` and every nearer head is already taken, so sequential greedy would make the same choice). When a
    round settles fewer than 20% of the remaining predictions, the rest is finished by the sequential loop. The
    result is identical to the sequential greedy matching.
    """
    pred_gt = np.full(n_pred, -1, dtype=np.int64)
    done = np.zeros(n_pred, dtype=bool)
    taken = np.zeros(n_gt, dtype=bool)
    p, g = pair_p, pair_g
    big = np.iinfo(np.int64).max
    while len(p):
        alive = ~taken[g] & ~done[p]
        p, g = p[alive], g[alive]
        if len(p) < 4096:
            break
        first = np.r_[True, p[1:] != p[:-1]]
        bp, bg = p[first], g[first]
        min_rank = np.full(n_gt, big, dtype=np.int64)
        np.minimum.at(min_rank, g, rank_p[p])
        acc = min_rank[bg] == rank_p[bp]
        pred_gt[bp[acc]] = bg[acc]
        done[bp[acc]] = True
        taken[bg[acc]] = True
        if acc.sum() < 0.2 * len(bp):
            alive = ~taken[g] & ~done[p]
            p, g = p[alive], g[alive]
            break
    _greedy_sequential(p, g, taken, pred_gt)
    return pred_gt


def greedy_point_matching(
    preds: Sequence[Any], gts: Sequence[Any], radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Dataset-wide greedy score-ordered matching (module docstring).

    Returns:
        ``(scores (P,), pred_to_gt (P,), distance (P,), image_index (P,), num_gt)`` over the concatenated
        predictions: ``pred_to_gt`` is a global ground-truth index (into the concatenated ``gts``) or -1, and
        ``distance`` the matched distance (NaN when unmatched).
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    pts, scores, g = _prepare(preds, gts)
    return _greedy(pts, scores, g, float(radius))


def _greedy(pts: list[np.ndarray], scores: np.ndarray, g: list[np.ndarray], radius: float):
    gi, pj, dist, g_all, p_all, _, p_img = candidate_pairs(pts, g, radius)
    rank = _ranks(p_all, p_img, scores)
    order = np.lexsort((gi, dist, rank[pj]))
    pred_gt = _greedy_from_sorted_pairs(pj[order], gi[order], rank, len(p_all), len(g_all))
    d = np.full(len(p_all), np.nan)
    hit = pred_gt >= 0
    if hit.any():
        diff = p_all[hit] - g_all[pred_gt[hit]]
        d[hit] = np.sqrt((diff**2).sum(1))
    return scores, pred_gt, d, p_img, len(g_all)


def point_ap(
    preds: Sequence[Any], gts: Sequence[Any], radius: float = 20.0, *, return_curve: bool = False
) -> float | tuple[float, dict[str, np.ndarray]]:
    """Point AP: a prediction is a true positive when greedy matching (module docstring) gives it a head within
    ``radius`` pixels (Crowd-SDNet: 20 px); all-point interpolated AP over the dataset ranking
    (:mod:`crowdlib.metrics.ap`: tied scores form one group; NaN without any head).

    Args:
        preds: per image ``(points, scores)`` / ``{"points", "scores"}`` / bare points.
        gts: per image ``(M, 2)`` head points.
        radius: match radius in pixels (inclusive).
        return_curve: also return ``{"recall", "precision", "thresholds"}``.
    """
    scores, pred_gt, _, _, num_gt = greedy_point_matching(preds, gts, radius)
    ap = average_precision(scores, pred_gt >= 0, num_gt)
    if not return_curve:
        return ap
    r, p, t = pr_curve(scores, pred_gt >= 0, num_gt)
    return ap, {"recall": r, "precision": p, "thresholds": t}


def point_map_over_radii(
    preds: Sequence[Any],
    gts: Sequence[Any],
    radii: Sequence[float] = tuple(range(1, 101)),
    *,
    return_per_radius: bool = False,
) -> float | tuple[float, np.ndarray]:
    """Localization mAP: :func:`point_ap` at each radius ``c`` (default 1..100 px, as in the bi-knowledge transfer
    paper and UCF-QNRF), averaged. Candidate pairs are computed once at the largest radius.

    Returns:
        the mean AP, or ``(mean, aps (len(radii),))`` with ``return_per_radius``.
    """
    radii_arr = np.asarray(list(radii), dtype=np.float64)
    if radii_arr.size == 0 or np.any(radii_arr < 0):
        raise ValueError("point_map_over_radii: radii must be a non-empty list of values >= 0")
    pts, scores, g = _prepare(preds, gts)
    gi, pj, dist, g_all, p_all, _, p_img = candidate_pairs(pts, g, float(radii_arr.max()))
    rank = _ranks(p_all, p_img, scores)
    order = np.lexsort((gi, dist, rank[pj]))
    gi, pj, dist = gi[order], pj[order], dist[order]
    aps = np.empty(len(radii_arr))
    for k, c in enumerate(radii_arr):
        keep = dist <= c
        pred_gt = _greedy_from_sorted_pairs(pj[keep], gi[keep], rank, len(p_all), len(g_all))
        aps[k] = average_precision(scores, pred_gt >= 0, len(g_all))
    mean = float(np.mean(aps))
    return (mean, aps) if return_per_radius else mean


def _hungarian(gi: np.ndarray, pj: np.ndarray, dist: np.ndarray, n_gt: int, n_pred: int, radius: float) -> np.ndarray:
    """Max-cardinality, then min-total-distance matching on the within-radius graph; returns pred -> gt or -1.

    Solved independently on each connected component of the graph (``linear_sum_assignment`` with a prohibitive
    cost for pairs out of reach), so large images stay cheap.
    """
    pred_gt = np.full(n_pred, -1, dtype=np.int64)
    if len(gi) == 0:
        return pred_gt
    n = n_gt + n_pred
    graph = sp.coo_matrix((np.ones(len(gi)), (gi, n_gt + pj)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    comp = label[gi]
    g_per = np.bincount(label[:n_gt], minlength=label.max() + 1)
    p_per = np.bincount(label[n_gt:], minlength=label.max() + 1)
    # a component with a single head or a single prediction admits one pair: its shortest edge is optimal
    single = (g_per[comp] == 1) | (p_per[comp] == 1)
    idx = np.nonzero(single)[0]
    if idx.size:
        idx = idx[np.lexsort((gi[idx], pj[idx], dist[idx], comp[idx]))]
        first = np.r_[True, comp[idx][1:] != comp[idx][:-1]]
        pred_gt[pj[idx[first]]] = gi[idx[first]]
    rest = np.nonzero(~single)[0]
    if rest.size:
        rest = rest[np.argsort(comp[rest], kind="stable")]
        rc, rg, rp = comp[rest], gi[rest], pj[rest]
        # local row/column index of each pair inside its component, computed once for all components
        _, g_dense = np.unique(rc * (n_gt + 1) + rg, return_inverse=True)
        _, p_dense = np.unique(rc * (n_pred + 1) + rp, return_inverse=True)
        starts = np.r_[0, np.nonzero(np.diff(rc))[0] + 1]
        ends = np.r_[starts[1:], len(rest)]
        g_base, p_base = np.minimum.reduceat(g_dense, starts), np.minimum.reduceat(p_dense, starts)
        lg_all, lp_all = g_dense - np.repeat(g_base, ends - starts), p_dense - np.repeat(p_base, ends - starts)
        d_all = dist[rest]
        for a, b in zip(starts.tolist(), ends.tolist()):
            lg, lp = lg_all[a:b], lp_all[a:b]
            n_r, n_c = int(lg.max()) + 1, int(lp.max()) + 1
            big = radius * (min(n_r, n_c) + 1) + 1.0
            cost = np.full((n_r, n_c), big)
            cost[lg, lp] = d_all[a:b]
            r, c = linear_sum_assignment(cost)
            ok = cost[r, c] < big
            # local -> global: the pairs of this component list every local index at least once
            g_of = np.empty(n_r, dtype=np.int64)
            g_of[lg] = rg[a:b]
            p_of = np.empty(n_c, dtype=np.int64)
            p_of[lp] = rp[a:b]
            pred_gt[p_of[c[ok]]] = g_of[r[ok]]
    return pred_gt


def mle_details(
    preds: Sequence[Any],
    gts: Sequence[Any],
    *,
    radius: float = 20.0,
    unmatched_penalty: float | None = 16.0,
    penalize: Literal["gt", "both"] = "gt",
    matching: Literal["hungarian", "greedy"] = "hungarian",
) -> dict[str, float]:
    """Mean localization error with its parts; see :func:`mle`.

    Returns:
        ``{"mle", "mean_matched_distance", "matched", "unmatched_gt", "unmatched_pred"}``.
    """
    if radius < 0:
        raise ValueError(f"mle: radius must be >= 0, got {radius}")
    if penalize not in ("gt", "both"):
        raise ValueError(f"mle: penalize must be 'gt' or 'both', got {penalize!r}")
    pts, scores, g = _prepare(preds, gts)
    if matching == "greedy":
        _, pred_gt, d, _, num_gt = _greedy(pts, scores, g, float(radius))
        n_pred = len(pred_gt)
    elif matching == "hungarian":
        gi, pj, dist, g_all, p_all, *_ = candidate_pairs(pts, g, float(radius))
        num_gt, n_pred = len(g_all), len(p_all)
        pred_gt = _hungarian(gi, pj, dist, num_gt, n_pred, float(radius))
        d = np.full(n_pred, np.nan)
        hit = pred_gt >= 0
        diff = p_all[hit] - g_all[pred_gt[hit]]
        d[hit] = np.sqrt((diff**2).sum(1))
    else:
        raise ValueError(f"mle: matching must be 'hungarian' or 'greedy', got {matching!r}")
    matched_d = d[pred_gt >= 0]
    m = len(matched_d)
    un_gt, un_pred = num_gt - m, n_pred - m
    mean_matched = float(matched_d.mean()) if m else float("nan")
    if unmatched_penalty is None:
        value = mean_matched
    else:
        n_pen = un_gt + (un_pred if penalize == "both" else 0)
        total = m + n_pen
        value = float((matched_d.sum() + unmatched_penalty * n_pen) / total) if total else float("nan")
    return {
        "mle": value,
        "mean_matched_distance": mean_matched,
        "matched": m,
        "unmatched_gt": int(un_gt),
        "unmatched_pred": int(un_pred),
    }


def mle(
    preds: Sequence[Any],
    gts: Sequence[Any],
    *,
    radius: float = 20.0,
    unmatched_penalty: float | None = 16.0,
    penalize: Literal["gt", "both"] = "gt",
    matching: Literal["hungarian", "greedy"] = "hungarian",
) -> float:
    """Mean localization error (pixels) over one-to-one matched prediction/head pairs.

    Matching: ``"hungarian"`` (default) first maximises the number of pairs within ``radius`` and then minimises
    their total distance (``linear_sum_assignment`` per connected component of the within-radius graph; scores are
    ignored); ``"greedy"`` reuses the score-ordered matching of :func:`point_ap`.

    Unmatched points: with ``unmatched_penalty=None`` the MLE is the mean distance of matched pairs only (NaN if
    none). With a number (default 16 px, the convention of later localization papers) every unmatched head
    (``penalize="gt"``), or every unmatched head and prediction (``penalize="both"``), adds that many pixels and
    counts in the denominator: ``(sum of matched distances + penalty * n_unmatched) / (n_matched + n_unmatched)``.
    """
    return mle_details(
        preds, gts, radius=radius, unmatched_penalty=unmatched_penalty, penalize=penalize, matching=matching
    )["mle"]
