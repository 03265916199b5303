"""The transformers' fixed parts, the fusion of Eq. 8 and Sec. 3.4, and the patch selection (pure NumPy/torch).

- :func:`psi` (Det-to-Reg, Eq. 1): one Gaussian per detection, ``sigma_j = sigma_factor * size_j`` (its predicted
  size), each kernel cropped to the image and renormalised, so that the map sums to the number of detections.
- :func:`phi_points`: Phi's output binarised at ``threshold`` and merged within ``merge x merge`` areas (greedy:
  the highest pixel is kept and every pixel whose offset to it is smaller than ``merge / 2`` in both axes, i.e. in
  the ``merge x merge`` area centred on it, is dropped; our reading of "merge redundant non-zero pixels within the
  local area").
- :func:`confidence_map` / :func:`fuse_density` (Eq. 8): ``W`` is each detection's confidence over the ``k x k``
  square of its centre, ``k = 2 r + 1`` with ``r`` its Psi kernel radius ("same k for the Gaussian kernel"), the
  maximum where squares overlap (the paper does not say; a maximum keeps ``W`` in [0, 1]); ``M_R = (1 - W) R + W
  Psi(D)``.
- :func:`fuse_detections`: the union of D's detections and Phi's points, non-maximum suppression on square boxes of
  D's predicted size (D's scale map read at every point) at IoU ``nms_iou``; the survivors' sizes are D's scale
  map in the lower half of the image and ``nn_factor`` x the distance to the nearest other survivor in the upper
  half (Sec. 3.4); a lone survivor in the upper half keeps D's size.
- :func:`select_patches`: Sec. 3.4's two patches per image from the non-overlapping ``patch x patch`` grid (origin
  at the top-left corner; a remainder strip is not a candidate): for R, random patches among those whose density lies
  in ``r_range`` (``mode="rank"``: its percentile ``rank / (n - 1)`` among the image's patches, our reading of "the
  density ranges 50%-70%"; ``"max"``: its density over the densest patch's); when fewer qualify, the patches nearest
  to the range fill up. For D the patches of highest mean confidence (ties: grid order). ``"random"``: Table 2's RS.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["psi", "kernel_radii", "confidence_map", "fuse_density", "phi_points", "fuse_detections", "patch_grid",
           "select_patches"]


def kernel_radii(sizes: np.ndarray, sigma_factor: float, truncate: float) -> np.ndarray:
    """Psi's kernel radius per detection (scipy's rule ``int(truncate * sigma + 0.5)``)."""
    from crowdlib.targets.density import kernel_radius

    from .data import kernel_sigmas

    return kernel_radius(kernel_sigmas(sizes, sigma_factor), float(truncate)).astype(np.int64)


def psi(points: np.ndarray, sizes: np.ndarray, shape: tuple[int, int], *, sigma_factor: float = 0.25,
        truncate: float = 2.0) -> np.ndarray:
    """Eq. 1 (module docstring); ``points`` ``(N, 2)`` ``(x, y)``, ``sizes`` ``(N,)`` box sides in pixels."""
    from .data import gt_density

    p = np.asarray(points, np.float32).reshape(-1, 2)
    s = np.asarray(sizes, np.float32).reshape(-1)
    if len(p) != len(s):
        raise ValueError(f"psi: {len(s)} sizes for {len(p)} points")
    return gt_density(p, s, shape, sigma_factor, truncate)


def confidence_map(points: np.ndarray, scores: np.ndarray, radii: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``W`` of Eq. 8: ``scores[j]`` over the ``(2 r_j + 1)`` square of detection ``j``, maximum where they overlap."""
    h, w = int(shape[0]), int(shape[1])
    out = np.zeros(h * w, np.float32)
    p = np.asarray(points, np.float64).reshape(-1, 2)
    sc = np.asarray(scores, np.float32).reshape(-1)
    r = np.asarray(radii, np.int64).reshape(-1)
    if not (len(p) == len(sc) == len(r)):
        raise ValueError(f"confidence_map: {len(p)} points, {len(sc)} scores, {len(r)} radii")
    if np.any((sc < 0) | (sc > 1)):
        raise ValueError("confidence_map: scores must lie in [0, 1]")
    cols = np.clip(np.floor(p[:, 0]).astype(np.int64), 0, w - 1)
    rows = np.clip(np.floor(p[:, 1]).astype(np.int64), 0, h - 1)
    for rad in np.unique(r):
        sel = r == rad
        off = np.arange(-rad, rad + 1)
        yy = rows[sel, None, None] + off[None, :, None]
        xx = cols[sel, None, None] + off[None, None, :]
        yy, xx = np.broadcast_arrays(yy, xx)
        val = np.broadcast_to(sc[sel, None, None], yy.shape)
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        np.maximum.at(out, yy[ok] * w + xx[ok], val[ok])
    return out.reshape(h, w)


def fuse_density(regression: np.ndarray, transformed: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Eq. 8: ``(1 - W) R + W Psi(D)`` (three maps of one shape, ``W`` in [0, 1])."""
    r, t, wt = (np.asarray(a, np.float32) for a in (regression, transformed, weight))
    if not (r.shape == t.shape == wt.shape):
        raise ValueError(f"fuse_density: shapes {r.shape}, {t.shape}, {wt.shape} differ")
    if wt.size and (wt.min() < 0 or wt.max() > 1):
        raise ValueError("fuse_density: W must lie in [0, 1]")
    return (1.0 - wt) * r + wt * t


def _greedy_merge(points: np.ndarray, scores: np.ndarray, half: float) -> np.ndarray:
    """Indices kept by greedy suppression of points within ``half`` in both axes of a higher-scoring kept point."""
    order = np.lexsort((points[:, 0], points[:, 1], -scores))
    kept: list[int] = []
    alive = np.ones(len(points), bool)
    for i in order:
        if not alive[i]:
            continue
        kept.append(int(i))
        close = (np.abs(points[:, 0] - points[i, 0]) < half) & (np.abs(points[:, 1] - points[i, 1]) < half)
        alive &= ~close
    return np.asarray(kept, np.int64)


def phi_points(value: np.ndarray, *, threshold: float = 0.2, merge: int = 10) -> dict[str, np.ndarray]:
    """Phi's dot map ``value`` ``(H, W)`` (probabilities) -> ``{"points" (K, 2) pixel centres, "scores" (K,)}``,
    sorted by score (module docstring)."""
    v = np.asarray(value, np.float32)
    if v.ndim != 2:
        raise ValueError(f"phi_points: expected an (H, W) map, got shape {v.shape}")
    if merge < 1:
        raise ValueError(f"phi_points: merge must be >= 1, got {merge}")
    rows, cols = np.nonzero(v > float(threshold))
    pts = np.stack([cols + 0.5, rows + 0.5], 1).astype(np.float32) if len(rows) else np.zeros((0, 2), np.float32)
    sc = v[rows, cols].astype(np.float32)
    if len(pts):
        keep = _greedy_merge(pts, sc, merge / 2.0)
        pts, sc = pts[keep], sc[keep]
    return {"points": pts, "scores": sc}


def _read(map_: np.ndarray, points: np.ndarray) -> np.ndarray:
    h, w = map_.shape
    c = np.clip(np.floor(points[:, 0]).astype(np.int64), 0, w - 1)
    r = np.clip(np.floor(points[:, 1]).astype(np.int64), 0, h - 1)
    return map_[r, c]


def fuse_detections(det: Mapping[str, np.ndarray], phi: Mapping[str, np.ndarray] | None, size_map: np.ndarray, *,
                    nms_iou: float = 0.3, nn_factor: float = 1.0) -> dict[str, np.ndarray]:
    """``M^D_t`` (module docstring). ``det``: D's ``{"points", "scores"}``; ``phi``: Phi's (None: D's detections
    alone, "w/o Fusion", sizes by the same half rule); ``size_map`` ``(H, W)``: D's predicted size in pixels.
    Returns ``{"points", "scores", "sizes", "from_phi"}`` sorted by score."""
    from scipy.spatial import cKDTree

    from crowdlib.decode import nms

    sm = np.asarray(size_map, np.float32)
    pts = [np.asarray(det["points"], np.float32).reshape(-1, 2)]
    scs = [np.asarray(det["scores"], np.float32).reshape(-1)]
    src = [np.zeros(len(pts[0]), bool)]
    if phi is not None:
        pts.append(np.asarray(phi["points"], np.float32).reshape(-1, 2))
        scs.append(np.asarray(phi["scores"], np.float32).reshape(-1))
        src.append(np.ones(len(pts[1]), bool))
    p, s, f = np.concatenate(pts), np.concatenate(scs), np.concatenate(src)
    if len(p) == 0:
        return {"points": p, "scores": s, "sizes": np.zeros(0, np.float32), "from_phi": f}
    d_size = np.maximum(_read(sm, p), 1.0)
    if phi is not None:
        half = d_size[:, None] / 2.0
        keep = nms(np.concatenate([p - half, p + half], 1), s, float(nms_iou))
        p, s, f, d_size = p[keep], s[keep], f[keep], d_size[keep]
    sizes = d_size.copy()
    upper = p[:, 1] < sm.shape[0] / 2.0
    if len(p) > 1 and upper.any():
        dist, _ = cKDTree(p.astype(np.float64)).query(p[upper].astype(np.float64), k=2)
        sizes[upper] = np.maximum(float(nn_factor) * dist[:, 1], 1.0)
    order = np.argsort(-s, kind="stable")
    return {"points": p[order], "scores": s[order], "sizes": sizes[order].astype(np.float32), "from_phi": f[order]}


def patch_grid(shape: tuple[int, int], patch: int) -> np.ndarray:
    """``(n, 2)`` top-left corners ``(y0, x0)`` of the non-overlapping ``patch`` grid (row-major).

    Raises:
        ValueError: the image is smaller than one patch.
    """
    h, w = int(shape[0]), int(shape[1])
    if h < patch or w < patch:
        raise ValueError(f"patch_grid: a {patch} x {patch} patch does not fit a {h} x {w} image")
    ys, xs = np.arange(0, h - patch + 1, patch), np.arange(0, w - patch + 1, patch)
    return np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)


def _patch_sums(map_: np.ndarray, corners: np.ndarray, patch: int) -> np.ndarray:
    return np.array([float(map_[y:y + patch, x:x + patch].sum()) for y, x in corners])


def _pick_in_range(vals: np.ndarray, lo: float, hi: float, k: int, rng: np.random.Generator) -> np.ndarray:
    inside = np.nonzero((vals >= lo) & (vals <= hi))[0]
    chosen = rng.permutation(inside)[:k] if len(inside) else np.zeros(0, np.int64)
    if len(chosen) < k:
        rest = np.setdiff1d(np.arange(len(vals)), chosen)
        gap = np.maximum(lo - vals[rest], vals[rest] - hi)
        chosen = np.r_[chosen, rest[np.lexsort((rest, gap))][: k - len(chosen)]]
    return chosen.astype(np.int64)


def select_patches(density: np.ndarray, detections: Mapping[str, np.ndarray], *, patch: int = 224, k: int = 2,
                   mode: str = "paper", r_range: Sequence[float] = (0.5, 0.7), r_range_mode: str = "rank",
                   d_score: str = "detections", weight: np.ndarray | None = None,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Corners ``(k', 2)`` ``(y0, x0)`` of R's and D's patches (``{"r": ..., "d": ...}``, ``k' = min(k, n)``; module
    docstring). ``density`` is ``M^R_t`` ``(H, W)``; ``detections`` ``M^D_t``'s ``{"points", "scores"}``;
    ``weight`` the map ``W`` (needed with ``d_score="map"``)."""
    if mode not in ("paper", "random"):
        raise ValueError(f"select_patches: mode must be 'paper' or 'random', got {mode!r}")
    corners = patch_grid(density.shape, int(patch))
    n, k = len(corners), min(int(k), len(corners))
    if mode == "random":
        return {"r": corners[rng.permutation(n)[:k]], "d": corners[rng.permutation(n)[:k]]}
    dens = _patch_sums(np.asarray(density, np.float64), corners, patch)
    lo, hi = float(r_range[0]), float(r_range[1])
    if r_range_mode == "rank":
        rank = np.empty(n)
        rank[np.lexsort((np.arange(n), dens))] = np.arange(n)
        vals = rank / max(n - 1, 1)
    elif r_range_mode == "max":
        vals = dens / dens.max() if dens.max() > 0 else np.zeros(n)
    else:
        raise ValueError(f"select_patches: r_range_mode must be 'rank' or 'max', got {r_range_mode!r}")
    r_idx = _pick_in_range(vals, lo, hi, k, rng)
    if d_score == "map":
        if weight is None:
            raise ValueError("select_patches: d_score='map' needs the confidence map W")
        conf = _patch_sums(np.asarray(weight, np.float64), corners, patch) / float(patch * patch)
    elif d_score == "detections":
        p = np.asarray(detections["points"], np.float64).reshape(-1, 2)
        s = np.asarray(detections["scores"], np.float64).reshape(-1)
        conf = np.zeros(n)
        for i, (y, x) in enumerate(corners):
            inside = (p[:, 0] >= x) & (p[:, 0] < x + patch) & (p[:, 1] >= y) & (p[:, 1] < y + patch)
            conf[i] = s[inside].mean() if inside.any() else 0.0
    else:
        raise ValueError(f"select_patches: d_score must be 'detections' or 'map', got {d_score!r}")
    d_idx = np.lexsort((np.arange(n), -conf))[:k]
    return {"r": corners[r_idx], "d": corners[d_idx]}
