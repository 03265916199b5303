"""IIM independent instance maps and NWPU localization sigmas/levels.

Instance map from boxes (IIM, with the authors' code facts in ``shared/REFERENCE.md``):
    1. each head gets a rectangle centred on its point with half sizes ``(w / 2, h / 2)`` of its box,
       each clamped to ``[min_half, max_half]`` (3 and 25 px);
    2. overlap removal: against each head's ``neighbours`` (4) nearest heads, when two rectangles are
       closer than ``gap = min(gap_ratio * larger_half, gap_cap)`` (half the larger half size, capped
       at 60 px; the gap is the larger of the x and y gaps between the rectangles' edges), the
       rectangle with the larger half size is shrunk by ``shrink`` (0.9); at most ``max_iter`` (40)
       rounds. The rounds are synchronous: every rectangle that is the larger one of some violating
       pair shrinks once per round (the authors walk the heads one after the other);
    3. rasterisation: the head's pixel is ``(floor(y), floor(x))`` clipped into the image and its
       rectangle covers ``floor(half)`` pixels on each side of it (a ``(2a+1) x (2b+1)`` block);
    4. pixel-level guarantee (ours, to make the map decodable whatever the boxes): rectangles that
       still overlap or touch (share an edge or a corner pixel) are shrunk one pixel per side, the
       larger first, down to the single centre pixel; of two heads whose centre pixels coincide or
       touch, the later one (higher index) is dropped. The result has exactly one 4- (and 8-)
       connected component per kept head, containing that head's pixel.

From points only (IIM's issue-tracker fallback): ``instance_map_from_points`` makes square boxes
from given sizes (a fixed maximum size or predicted sizes) and applies the same rules.

NWPU sigmas and levels: ``sigma_s = int(min(w, h) / 2)``, ``sigma_l = int(sqrt(w^2 + h^2) / 2)``,
level from the box area ``w * h`` in the bins ``[.., 10), [10, 100), [100, 1e3), [1e3, 1e4),
[1e4, 1e5), >= 1e5`` -> 0..5 (areas below 1 fall in level 0).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from crowdlib.targets._common import as_points, as_shape
from crowdlib.targets.pseudo_sizes import boxes_from_sizes

__all__ = ["instance_map_from_boxes", "instance_map_from_points", "nwpu_sigmas_levels", "separate_boxes"]


def _as_boxes(boxes: np.ndarray, n: int) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0 and n == 0:
        return b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes: expected shape (N, 4) of (x1, y1, x2, y2), got {b.shape}")
    if len(b) != n:
        raise ValueError(f"boxes: {len(b)} boxes for {n} points")
    if not np.all(np.isfinite(b)):
        raise ValueError("boxes: contains NaN or infinite coordinates")
    if np.any(b[:, 2] < b[:, 0]) or np.any(b[:, 3] < b[:, 1]):
        raise ValueError("boxes: need x2 >= x1 and y2 >= y1")
    return b


def _neighbour_pairs(pts: np.ndarray, k: int) -> np.ndarray:
    """Unique ``(i, j)``, ``i < j``, pairs of each head with its ``k`` nearest heads."""
    n = len(pts)
    if n < 2 or k < 1:
        return np.zeros((0, 2), dtype=np.int64)
    kk = min(k, n - 1)
    _, idx = cKDTree(pts).query(pts, k=kk + 1)
    idx = idx.reshape(n, kk + 1)
    i = np.repeat(np.arange(n), kk + 1)
    j = idx.ravel()
    keep = i != j
    pairs = np.sort(np.stack([i[keep], j[keep]], axis=1), axis=1)
    return np.unique(pairs, axis=0)


def separate_boxes(
    points: np.ndarray,
    half_w: np.ndarray,
    half_h: np.ndarray,
    *,
    neighbours: int = 4,
    shrink: float = 0.9,
    gap_ratio: float = 0.5,
    gap_cap: float = 60.0,
    max_iter: int = 40,
) -> tuple[np.ndarray, np.ndarray]:
    """IIM overlap removal (step 2 of the module docstring); returns shrunk ``(half_w, half_h)``."""
    pts = as_points(points)
    hw = np.asarray(half_w, dtype=np.float64).copy()
    hh = np.asarray(half_h, dtype=np.float64).copy()
    pairs = _neighbour_pairs(pts, neighbours)
    if len(pairs) == 0:
        return hw, hh
    i, j = pairs[:, 0], pairs[:, 1]
    adx = np.abs(pts[i, 0] - pts[j, 0])
    ady = np.abs(pts[i, 1] - pts[j, 1])
    for _ in range(max_iter):
        gap = np.maximum(adx - (hw[i] + hw[j]), ady - (hh[i] + hh[j]))
        hi, hj = np.maximum(hw[i], hh[i]), np.maximum(hw[j], hh[j])
        larger = np.where(hi >= hj, i, j)
        need = np.minimum(gap_ratio * np.maximum(hi, hj), gap_cap)
        bad = gap < need
        if not bad.any():
            break
        idx = np.unique(larger[bad])
        hw[idx] *= shrink
        hh[idx] *= shrink
    return hw, hh


def _pixel_rects(pts: np.ndarray, hw: np.ndarray, hh: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    px = np.clip(np.floor(pts[:, 0]).astype(np.int64), 0, w - 1)
    py = np.clip(np.floor(pts[:, 1]).astype(np.int64), 0, h - 1)
    return np.stack([px, py, np.floor(hw).astype(np.int64), np.floor(hh).astype(np.int64)], axis=1)


def _bounds(rect: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    h, w = shape
    px, py, a, b = rect.T
    return (np.maximum(px - a, 0), np.minimum(px + a, w - 1), np.maximum(py - b, 0), np.minimum(py + b, h - 1))


def _enforce_pixel_separation(rect: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Step 4: shrink touching rectangles, drop heads whose centre pixels touch. Returns kept mask."""
    n = len(rect)
    kept = np.ones(n, dtype=bool)
    if n < 2:
        return kept
    reach = float(np.max(rect[:, 2:])) * 2 + 2
    pairs = cKDTree(rect[:, :2].astype(np.float64)).query_pairs(r=np.sqrt(2.0) * reach, output_type="ndarray")
    while len(pairs):
        x0, x1, y0, y1 = _bounds(rect, shape)
        i, j = pairs[:, 0], pairs[:, 1]
        touch = ((x0[i] <= x1[j] + 1) & (x0[j] <= x1[i] + 1) & (y0[i] <= y1[j] + 1) & (y0[j] <= y1[i] + 1))
        pairs = pairs[touch]
        if not len(pairs):
            break
        i, j = pairs[:, 0], pairs[:, 1]
        ei, ej = rect[i, 2:].max(axis=1), rect[j, 2:].max(axis=1)
        both_point = (ei == 0) & (ej == 0)
        for a, b in pairs[both_point]:  # rare: coincident or adjacent heads; drop the later one
            if kept[a] and kept[b]:
                kept[b] = False
        shrinkable = ~both_point
        larger = np.where(ei >= ej, i, j)[shrinkable]
        idx = np.unique(larger)
        rect[idx, 2:] = np.maximum(rect[idx, 2:] - 1, 0)
        pairs = pairs[kept[pairs[:, 0]] & kept[pairs[:, 1]]]
    return kept


def instance_map_from_boxes(
    points: np.ndarray,
    boxes: np.ndarray,
    shape: tuple[int, int],
    *,
    min_half: float = 3.0,
    max_half: float = 25.0,
    neighbours: int = 4,
    shrink: float = 0.9,
    gap_ratio: float = 0.5,
    gap_cap: float = 60.0,
    max_iter: int = 40,
    return_kept: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """IIM independent instance map (module docstring for the rules).

    Args:
        points: ``(N, 2)`` ``(x, y)`` heads (the component centres).
        boxes: ``(N, 4)`` ``(x1, y1, x2, y2)`` head boxes (only their width and height are used).
        shape: ``(H, W)`` of the map.
        min_half, max_half: clamp of the half sizes (IIM: 3 and 25 px).
        neighbours: nearest heads checked per head (4).
        shrink: factor applied to the larger rectangle (0.9).
        gap_ratio, gap_cap: required gap ``min(gap_ratio * larger_half, gap_cap)`` (0.5, 60 px).
        max_iter: rounds of the shrinking loop (40).
        return_kept: also return the ``(N,)`` bool mask of heads that have a component.

    Returns:
        ``(H, W)`` uint8 binary map (and the kept mask with ``return_kept``).
    """
    pts = as_points(points)
    hw_shape = as_shape(shape)
    n = len(pts)
    b = _as_boxes(boxes, n)
    if not 0 < min_half <= max_half:
        raise ValueError(f"min_half/max_half: need 0 < min_half <= max_half, got {min_half}, {max_half}")
    out = np.zeros(hw_shape, dtype=np.uint8)
    if n == 0:
        return (out, np.zeros(0, dtype=bool)) if return_kept else out
    half_w = np.clip((b[:, 2] - b[:, 0]) / 2.0, min_half, max_half)
    half_h = np.clip((b[:, 3] - b[:, 1]) / 2.0, min_half, max_half)
    half_w, half_h = separate_boxes(pts, half_w, half_h, neighbours=neighbours, shrink=shrink,
                                    gap_ratio=gap_ratio, gap_cap=gap_cap, max_iter=max_iter)
    rect = _pixel_rects(pts, half_w, half_h, hw_shape)
    kept = _enforce_pixel_separation(rect, hw_shape)
    x0, x1, y0, y1 = _bounds(rect, hw_shape)
    for k in np.flatnonzero(kept):  # a loop over heads, each one slice
        out[y0[k]:y1[k] + 1, x0[k]:x1[k] + 1] = 1
    return (out, kept) if return_kept else out


def instance_map_from_points(
    points: np.ndarray,
    sizes: np.ndarray | float,
    shape: tuple[int, int],
    **kwargs,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Instance map from points and square sizes (scalar for IIM's fixed-size fallback, or ``(N,)``).

    ``kwargs`` are those of :func:`instance_map_from_boxes`.
    """
    pts = as_points(points)
    boxes = boxes_from_sizes(pts, sizes) if len(pts) else np.zeros((0, 4))
    return instance_map_from_boxes(pts, boxes, shape, **kwargs)


def nwpu_sigmas_levels(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NWPU ``(sigma_s, sigma_l)`` and area level per box (module docstring for the rules).

    Returns:
        ``(N, 2)`` float32 sigmas (integer-valued) and ``(N,)`` int64 levels 0..5.
    """
    b = np.asarray(boxes, dtype=np.float64)
    b = _as_boxes(b, len(b) if b.ndim == 2 else -1) if b.size else b.reshape(0, 4)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    sigma_s = np.floor(np.minimum(w, h) / 2.0)
    sigma_l = np.floor(np.sqrt(w * w + h * h) / 2.0)
    levels = np.digitize(w * h, [10.0, 100.0, 1e3, 1e4, 1e5]).astype(np.int64)
    return np.stack([sigma_s, sigma_l], axis=1).astype(np.float32), levels
