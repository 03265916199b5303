"""Nested crops for L2R's learning-to-rank pairs (Liu et al., "Leveraging unlabeled data for crowd
counting by learning to rank", CVPR 2018).

Rule (L2R Sec. 3.2 as we implement it): pick an anchor point uniformly inside the central
``anchor_region`` fraction of the image; the first crop is the largest square centred on the anchor
that fits in the image; each following crop is the previous one scaled by ``scale`` (0.75) around
the same anchor. Each crop lies inside the previous one, so it contains at most as many heads:
for crops ``i < j``, ``count(i) >= count(j)``, which is the ranking constraint.
"""
from __future__ import annotations

import numpy as np

from crowdlib.targets._common import as_points, as_shape

__all__ = ["crop_counts", "nested_crops", "ranking_pairs", "nest_pairs"]


def nested_crops(
    image_shape: tuple[int, int],
    n: int = 5,
    scale: float = 0.75,
    seed: int | np.random.Generator = 0,
    *,
    anchor_region: float = 0.5,
) -> np.ndarray:
    """``(n, 4)`` float64 square crops ``(x1, y1, x2, y2)``, each inside the previous one.

    Args:
        image_shape: ``(H, W)``.
        n: number of crops (L2R uses 5).
        scale: side ratio between consecutive crops (L2R: 0.75).
        seed: seed or generator for the anchor.
        anchor_region: the anchor is drawn in the centred box covering this fraction of each side.
    """
    h, w = as_shape(image_shape, "image_shape")
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    if not 0 < scale < 1:
        raise ValueError(f"scale: must be in (0, 1), got {scale}")
    if not 0 <= anchor_region <= 1:
        raise ValueError(f"anchor_region: must be in [0, 1], got {anchor_region}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ax = w / 2 + (rng.random() - 0.5) * anchor_region * w
    ay = h / 2 + (rng.random() - 0.5) * anchor_region * h
    half = min(ax, w - ax, ay, h - ay)
    halves = half * scale ** np.arange(n)
    return np.stack([ax - halves, ay - halves, ax + halves, ay + halves], axis=1)


def crop_counts(points: np.ndarray, crops: np.ndarray) -> np.ndarray:
    """Number of heads inside each crop (``x1 <= x < x2`` and ``y1 <= y < y2``), ``(n,)`` int64."""
    pts = as_points(points)
    c = np.asarray(crops, dtype=np.float64).reshape(-1, 4)
    inside = ((pts[None, :, 0] >= c[:, None, 0]) & (pts[None, :, 0] < c[:, None, 2])
              & (pts[None, :, 1] >= c[:, None, 1]) & (pts[None, :, 1] < c[:, None, 3]))
    return inside.sum(axis=1).astype(np.int64)


def ranking_pairs(n: int) -> np.ndarray:
    """All ``(i, j)`` with ``i < j`` for ``n`` nested crops: crop ``i`` has at least crop ``j``'s count.

    Returns ``(n * (n - 1) / 2, 2)`` int64, the first column the larger crop.
    """
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    i, j = np.triu_indices(n, k=1)
    return np.stack([i, j], axis=1).astype(np.int64)


def nest_pairs(n_nests: int, nest_size: int) -> np.ndarray:
    """Every ordered ``(outer, inner)`` pair of ``n_nests`` nests stacked in one batch, as indices into that batch.

    Nest ``b`` occupies batch rows ``b * nest_size .. (b + 1) * nest_size - 1``, its largest crop first (the order
    of :func:`nested_crops`); within a nest every pair ``i < j`` of :func:`ranking_pairs` is kept, so one forward
    pass of the whole batch gives all pairs (L2R's efficient multi-pair form). Returns ``(n_nests * P, 2)`` int64,
    ``P = nest_size * (nest_size - 1) / 2``, the first column the outer (larger) crop.
    """
    if int(n_nests) < 0:
        raise ValueError(f"n_nests: must be >= 0, got {n_nests}")
    if int(nest_size) < 2:
        raise ValueError(f"nest_size: a nest needs at least 2 crops to hold a pair, got {nest_size}")
    base = ranking_pairs(int(nest_size))
    if int(n_nests) == 0:
        return base[:0]
    offsets = (np.arange(int(n_nests), dtype=np.int64) * int(nest_size))[:, None, None]
    return (base[None] + offsets).reshape(-1, 2)
