"""NWPU-Crowd localization protocol (Precision / Recall / F1 with per-head radii), vectorised.

Protocol (the NWPU-Crowd reference evaluator, as used by IIM and Crowd-SDNet Table VI):

- every ground-truth head ``g`` carries two radii ``sigma_s`` (small) and ``sigma_l`` (large);
- a prediction ``p`` *may* match ``g`` when ``||p - g||_2 <= sigma(g)`` (inclusive, Euclidean, float64);
- predictions and heads are matched one-to-one by a **maximum-cardinality** bipartite matching (distances play
  no role beyond the ``<=`` test): TP = matched pairs, FP = unmatched predictions, FN = unmatched heads;
- TP/FP/FN are summed over all images, then Precision = TP/(TP+FP), Recall = TP/(TP+FN), F1 = 2PR/(P+R)
  (micro average); a 0/0 ratio is reported as 0;
- recall per area level ``l``: matched heads of level ``l`` / heads of level ``l`` (summed over images);
- an image with no heads makes all its predictions FP; an image with no prediction makes all its heads FN;
- counting MAE / MSE (root of the mean squared error) / NAE (images with zero heads skipped) from the same data.

Implementation: all images are put in one coordinate frame (image ``k`` shifted along x by ``k`` times a stride
larger than any image plus the largest radius, so no cross-image pair is within reach); ``cKDTree`` pair queries
(heads grouped by radius octave, each group queried at its largest radius) give all candidate pairs within each
head's larger sigma, exact float64 distances
are recomputed from the unshifted coordinates and filtered by each head's own sigma, and
:func:`reference_matching` finds the SAME maximum matching as the reference evaluator: for each prediction in
file order, a depth-first augmenting-path search over its candidate heads in index order (Kuhn's algorithm, the
reference's ``hungarian``). Any maximum matching has the same TP/FP/FN totals, but which heads are matched (hence
per-level recall) depends on that order. The graph is split into connected components first: a component with
one prediction matches its lowest-index head, one with a single head gives it to its first prediction (what
the search does there), and only the others run the search, iteratively (no recursion limit).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from crowdlib.metrics._pairs import as_points as _as_points
from crowdlib.metrics._pairs import candidate_pairs as _candidate_pairs
from crowdlib.metrics.counting import count_metrics

__all__ = [
    "SigmaScores",
    "LocResult",
    "nwpu_evaluate",
    "nwpu_evaluate_files",
    "match_within_radius",
    "localization_prf",
    "reference_matching",
]

SIGMA_NAMES = ("sigma_s", "sigma_l")


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else 0.0


def _kuhn(order: np.ndarray, start: np.ndarray, adj: np.ndarray, match_gt: np.ndarray) -> None:
    """The reference's search for the predictions ``order`` (ascending): ``dfs(u)`` tries u's heads in index
    order; an unvisited head that is free, or whose prediction can be re-matched recursively, takes u. Written
    with an explicit stack (same visiting order as the recursion); updates ``match_gt`` in place."""
    visited = np.full(len(match_gt), -1, dtype=np.int64)  # round stamp per head: "vis" reset for each prediction
    ptr = start.copy()
    chosen = np.full(len(start) - 1, -1, dtype=np.int64)
    for a in order.tolist():
        ptr[a] = start[a]
        stack = [a]
        while stack:
            u = stack[-1]
            end = start[u + 1]
            pushed = False
            while ptr[u] < end:
                v = int(adj[ptr[u]])
                ptr[u] += 1
                if visited[v] == a:
                    continue
                visited[v] = a
                chosen[u] = v
                w = int(match_gt[v])
                if w < 0:  # augmenting path found: every frame takes the head it was trying
                    for f in stack:
                        match_gt[chosen[f]] = f
                    stack = []
                else:
                    ptr[w] = start[w]
                    stack.append(w)
                pushed = True
                break
            if not pushed:
                stack.pop()  # dfs(u) failed: the caller tries its next head


def reference_matching(gi: np.ndarray, pj: np.ndarray, n_gt: int, n_pred: int) -> np.ndarray:
    """The NWPU reference evaluator's maximum matching of candidate pairs ``(gi[k], pj[k])``; returns, per head,
    the matched prediction or -1 (see the module docstring for the order and the component shortcuts)."""
    match_gt = np.full(n_gt, -1, dtype=np.int64)
    if n_gt == 0 or n_pred == 0 or len(gi) == 0:
        return match_gt
    gi = np.asarray(gi, dtype=np.int64)
    pj = np.asarray(pj, dtype=np.int64)
    order = np.lexsort((gi, pj))  # adjacency of each prediction: heads in index order
    gi, pj = gi[order], pj[order]
    start = np.zeros(n_pred + 1, dtype=np.int64)
    np.cumsum(np.bincount(pj, minlength=n_pred), out=start[1:])
    graph = sp.coo_matrix((np.ones(len(gi), dtype=np.int8), (gi, n_gt + pj)), shape=(n_gt + n_pred,) * 2)
    _, comp = connected_components(graph, directed=False)
    comp_g, comp_p = comp[:n_gt], comp[n_gt:]
    deg_p = np.diff(start)
    n_c = int(comp.max()) + 1
    preds_in = np.bincount(comp_p[deg_p > 0], minlength=n_c)
    heads_in = np.bincount(comp_g, minlength=n_c)
    # one prediction: it takes its lowest-index head (the first it tries, free)
    single_p = np.nonzero((deg_p > 0) & (preds_in[comp_p] == 1))[0]
    match_gt[gi[start[single_p]]] = single_p
    # one head, several predictions: the first prediction takes it, the others find no augmenting path
    rest = np.nonzero((deg_p > 0) & (preds_in[comp_p] > 1))[0]
    single_g = rest[heads_in[comp_p[rest]] == 1]
    if len(single_g):
        _, first = np.unique(comp_p[single_g], return_index=True)  # single_g ascending: first per component
        match_gt[gi[start[single_g[first]]]] = single_g[first]
    hard = rest[heads_in[comp_p[rest]] > 1]
    if len(hard):
        _kuhn(hard, start, gi, match_gt)
    return match_gt


def match_within_radius(
    pred: np.ndarray, gt: np.ndarray, radius: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one maximum-cardinality matching of one image's predictions to heads within a radius.

    Args:
        pred: ``(P, 2)`` predicted points.
        gt: ``(G, 2)`` head points.
        radius: a scalar or a ``(G,)`` per-head radius; a pair may match when distance <= radius (inclusive).

    Returns:
        ``(gt_to_pred (G,), pred_to_gt (P,))``: index of the partner or -1.
    """
    p = _as_points(pred, "match_within_radius(pred)")
    g = _as_points(gt, "match_within_radius(gt)")
    r = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(g),))
    if np.any(r < 0):
        raise ValueError("match_within_radius: radius must be >= 0")
    gi, pj, _, *_ = _candidate_pairs([p], [g], r)
    g2p = reference_matching(gi, pj, len(g), len(p))
    p2g = np.full(len(p), -1, dtype=np.int64)
    hit = g2p >= 0
    p2g[g2p[hit]] = np.nonzero(hit)[0]
    return g2p, p2g


@dataclass
class SigmaScores:
    """Localization scores for one radius choice (``sigma_s`` or ``sigma_l``).

    ``tp_per_level``/``fn_per_level`` count heads by area level; ``per_image_tp`` is per evaluated image.
    """

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    recall_per_level: list[float]
    tp_per_level: list[int]
    fn_per_level: list[int]
    per_image_tp: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "recall_per_level": list(self.recall_per_level),
        }


@dataclass
class LocResult:
    """Result of :func:`nwpu_evaluate`.

    Attributes:
        sigma_s, sigma_l: :class:`SigmaScores` for the small and the large radius (papers quote ``sigma_l``).
        mae, mse, nae: counting errors from the same images; ``mse`` is the ROOT of the mean squared error.
        nae_skipped: images with zero heads that NAE skipped.
        ids: the evaluated image ids, in order.
        seconds: wall time of the evaluation (matching and scoring, not file parsing).
    """

    sigma_s: SigmaScores
    sigma_l: SigmaScores
    mae: float
    mse: float
    nae: float
    nae_skipped: int
    ids: list[str]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """``{"sigma_s": {...}, "sigma_l": {...}, "mae", "mse", "nae", "nae_skipped", "n_images", "seconds"}``."""
        return {
            "sigma_s": self.sigma_s.to_dict(),
            "sigma_l": self.sigma_l.to_dict(),
            "mae": self.mae,
            "mse": self.mse,
            "nae": self.nae,
            "nae_skipped": self.nae_skipped,
            "n_images": len(self.ids),
            "seconds": self.seconds,
        }


def _unpack_gt(value: Any, key: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if hasattr(value, "points"):
        pts, sig, lv = value.points, getattr(value, "sigmas", None), getattr(value, "levels", None)
    else:
        try:
            pts, sig, lv = value
        except (TypeError, ValueError):
            raise ValueError(f"gt[{key!r}]: expected (points, sigmas, levels) or a record with those fields") from None
    p = _as_points(pts, f"gt[{key!r}]")
    if sig is None:
        raise ValueError(f"gt[{key!r}]: sigmas are required by the NWPU protocol")
    s = np.asarray(sig, dtype=np.float64).reshape(-1, 2) if np.size(sig) else np.zeros((0, 2))
    if len(s) != len(p):
        raise ValueError(f"gt[{key!r}]: {len(s)} sigma pairs for {len(p)} points")
    if np.any(s < 0) or not np.all(np.isfinite(s)):
        raise ValueError(f"gt[{key!r}]: sigmas must be finite and >= 0")
    if lv is None:
        levels = np.full(len(p), -1, dtype=np.int64)
    else:
        levels = np.asarray(lv, dtype=np.int64).reshape(-1)
        if len(levels) != len(p):
            raise ValueError(f"gt[{key!r}]: {len(levels)} levels for {len(p)} points")
    return p, s, levels


def nwpu_evaluate(
    gt: Mapping[Any, Any],
    pred: Mapping[Any, Any],
    ids: Sequence[Any] | None = None,
    *,
    num_levels: int = 6,
    allow_missing_pred: bool = False,
) -> LocResult:
    """Score predictions with the NWPU-Crowd localization protocol (see the module docstring).

    Args:
        gt: ``{id: (points (N, 2), sigmas (N, 2) [sigma_s, sigma_l], levels (N,))}``; a record with
            ``points``/``sigmas``/``levels`` attributes (``CrowdRecord``, ``NWPUHeads``) works too. ``levels`` may be
            ``None`` (such heads count in no level).
        pred: ``{id: (P, 2) points}`` (or records with ``points``); float coordinates are fine.
        ids: ids to evaluate, in order (default: every gt id). The NWPU val reference uses
            :func:`crowdlib.data.formats.nwpu_loc.nwpu_val_ids`.
        num_levels: number of area levels (NWPU: 6, levels 0..5); heads with other levels count in no level.
        allow_missing_pred: treat an id absent from ``pred`` as an empty prediction instead of raising.

    Returns:
        :class:`LocResult`.
    """
    t0 = time.perf_counter()
    keys = list(gt) if ids is None else list(ids)
    gts, preds = [], []
    for k in keys:
        if k not in gt:
            raise ValueError(f"nwpu_evaluate: id {k!r} is not in the ground truth")
        gts.append(_unpack_gt(gt[k], k))
        if k in pred:
            preds.append(_as_points(pred[k], f"pred[{k!r}]"))
        elif allow_missing_pred:
            preds.append(np.zeros((0, 2)))
        else:
            raise ValueError(
                f"nwpu_evaluate: id {k!r} has no prediction (pass allow_missing_pred=True to count it empty)"
            )
    n = len(keys)
    sig_all = np.concatenate([g[1] for g in gts]) if n else np.zeros((0, 2))
    lv_all = np.concatenate([g[2] for g in gts]) if n else np.zeros(0, np.int64)
    # candidate pairs once with the larger radius of each head, then filtered per sigma column
    r_max = sig_all.max(axis=1) if len(sig_all) else np.zeros(0)
    gi, pj, dist, g_all, p_all, g_img, p_img = _candidate_pairs(preds, [g[0] for g in gts], r_max)
    lv_ok = (lv_all >= 0) & (lv_all < num_levels)
    lv_clip = np.where(lv_ok, lv_all, 0)
    heads_per_level = np.bincount(lv_clip[lv_ok], minlength=num_levels)
    scores = {}
    for col, name in enumerate(SIGMA_NAMES):
        keep = dist <= sig_all[gi, col]
        g2p = reference_matching(gi[keep], pj[keep], len(g_all), len(p_all))
        matched = g2p >= 0
        per_image_tp = np.bincount(g_img[matched], minlength=n)
        tp = int(matched.sum())
        fp = int(len(p_all) - tp)
        fn = int(len(g_all) - tp)
        tp_lv = np.bincount(lv_clip[matched & lv_ok], minlength=num_levels)
        fn_lv = heads_per_level - tp_lv
        prec, rec = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        scores[name] = SigmaScores(
            tp=tp,
            fp=fp,
            fn=fn,
            precision=prec,
            recall=rec,
            f1=_ratio(2 * prec * rec, prec + rec),
            recall_per_level=[_ratio(a, a + b) for a, b in zip(tp_lv, fn_lv)],
            tp_per_level=[int(v) for v in tp_lv],
            fn_per_level=[int(v) for v in fn_lv],
            per_image_tp=per_image_tp,
        )
    counts = count_metrics(np.bincount(p_img, minlength=n), np.bincount(g_img, minlength=n))
    return LocResult(
        sigma_s=scores["sigma_s"],
        sigma_l=scores["sigma_l"],
        mae=counts["mae"],
        mse=counts["mse"],
        nae=counts["nae"],
        nae_skipped=counts["nae_skipped"],
        ids=[str(k) for k in keys],
        seconds=time.perf_counter() - t0,
    )


def nwpu_evaluate_files(
    gt_path: str, pred_path: str, ids: Sequence[str] | None = None, *, allow_missing_pred: bool = False
) -> LocResult:
    """Read the two NWPU text files and run :func:`nwpu_evaluate` (``seconds`` includes parsing)."""
    from crowdlib.data.formats.nwpu_loc import read_nwpu_gt, read_nwpu_pred

    t0 = time.perf_counter()
    res = nwpu_evaluate(read_nwpu_gt(gt_path), read_nwpu_pred(pred_path), ids, allow_missing_pred=allow_missing_pred)
    res.seconds = time.perf_counter() - t0
    return res


def localization_prf(
    preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], radius: float
) -> dict[str, float]:
    """Micro Precision/Recall/F1 with one fixed match radius for every head (e.g. 4 or 8 px on ShanghaiTech).

    Same matching rule as the NWPU protocol (inclusive distance test, maximum-cardinality one-to-one matching,
    TP/FP/FN summed over images). Returns ``{"precision", "recall", "f1", "tp", "fp", "fn"}``.
    """
    if len(preds) != len(gts):
        raise ValueError(f"localization_prf: {len(preds)} predictions for {len(gts)} ground truths")
    if radius < 0:
        raise ValueError("localization_prf: radius must be >= 0")
    p = [_as_points(x, f"preds[{i}]") for i, x in enumerate(preds)]
    g = [_as_points(x, f"gts[{i}]") for i, x in enumerate(gts)]
    gi, pj, _, g_all, p_all, *_ = _candidate_pairs(p, g, float(radius))
    tp = int((reference_matching(gi, pj, len(g_all), len(p_all)) >= 0).sum())
    fp, fn = len(p_all) - tp, len(g_all) - tp
    prec, rec = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {"precision": prec, "recall": rec, "f1": _ratio(2 * prec * rec, prec + rec), "tp": tp, "fp": fp, "fn": fn}
