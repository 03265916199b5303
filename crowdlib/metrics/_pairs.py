"""Shared geometry helpers: point validation and within-radius candidate pairs across many images."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

from crowdlib._checks import as_points

__all__ = ["as_points", "candidate_pairs"]


def candidate_pairs(
    pred_pts: Sequence[np.ndarray], gt_pts: Sequence[np.ndarray], radius: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All (gt, pred) pairs of the same image with ``distance <= radius`` of the gt (inclusive).

    ``radius`` is a scalar or one value per gt point (over the concatenation of ``gt_pts``). Returns global gt
    index, global pred index, exact float64 distance of each pair, plus the concatenated gt and pred point arrays
    and their image indices.
    """
    n = len(gt_pts)
    g_counts = np.fromiter((len(g) for g in gt_pts), dtype=np.int64, count=n)
    p_counts = np.fromiter((len(p) for p in pred_pts), dtype=np.int64, count=n)
    g_all = np.concatenate([np.asarray(g, np.float64).reshape(-1, 2) for g in gt_pts]) if n else np.zeros((0, 2))
    p_all = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in pred_pts]) if n else np.zeros((0, 2))
    g_img = np.repeat(np.arange(n), g_counts)
    p_img = np.repeat(np.arange(n), p_counts)
    empty = np.zeros(0, dtype=np.int64)
    if len(g_all) == 0 or len(p_all) == 0:
        return empty, empty, np.zeros(0), g_all, p_all, g_img, p_img
    r = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(g_all),))
    both = np.concatenate([g_all, p_all])
    lo = both.min(axis=0)
    span = float(np.max(both.max(axis=0) - lo))
    stride = span + 2.0 * float(r.max()) + 16.0  # images side by side along x, out of each other's reach
    g_shift = g_all - lo
    p_shift = p_all - lo
    g_shift[:, 0] += g_img * stride
    p_shift[:, 0] += p_img * stride
    reach = r * (1.0 + 1e-9) + 1e-6  # slack for the shifted frame; the exact test is redone below
    p_tree = cKDTree(p_shift, balanced_tree=False, compact_nodes=False)  # faster builds, same answers
    # heads are grouped by radius into octaves (bin b holds radii in (2**(b-1), 2**b]); each group is one pair
    # query at its upper radius, so a few huge radii (NWPU sigma_l reaches ~1000 px) never inflate the bulk query
    # and a common radius is a single query.
    octave = np.ceil(np.log2(np.maximum(reach, 1e-12))).astype(np.int64)
    gi_parts, pj_parts = [], []
    for b in np.unique(octave):
        idx = np.nonzero(octave == b)[0]
        top = float(reach[idx].max())
        g_tree = cKDTree(g_shift[idx], balanced_tree=False, compact_nodes=False)
        pairs = g_tree.sparse_distance_matrix(p_tree, top, output_type="ndarray")
        gi_parts.append(idx[pairs["i"]])
        pj_parts.append(pairs["j"].astype(np.int64))
    gi = np.concatenate(gi_parts).astype(np.int64)
    pj = np.concatenate(pj_parts)
    # no cross-image pair can be found: neighbouring images are stride - span > 2 * max radius apart
    diff = g_all[gi] - p_all[pj]
    dist = np.sqrt(diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1])
    keep = dist <= r[gi]
    return gi[keep], pj[keep], dist[keep], g_all, p_all, g_img, p_img
