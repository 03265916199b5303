"""Pseudo object sizes from points: nearest-neighbour (PSDDN) sizes and Crowd-SDNet's LUDA.

LUDA (Crowd-SDNet, Eq. 3-4, with the authors' code facts in ``shared/REFERENCE.md``):

1. initial size ``d_j = beta * mean_{k<=K} d_{j,k}``, the mean distance to the ``K`` nearest heads;
2. local region ``R_j``: the circle of radius ``(y_max - y_min) / r`` around head ``j`` (over the
   image's heads, ``j`` itself included); pseudo size ``s_j = mean_{l in R_j} d_l`` and crowdedness
   ``|R_j|``. With ``neighbor_limit`` the region keeps only the nearest ``limit`` heads inside the
   circle (the authors' ShanghaiTech scripts use ``N // 2``: pass ``"half"``);
3. ``s_j`` is clipped to ``[min_size, max_size]``;
4. crowdedness-aware weight ``alpha_j = int(|R_j| ** eta)``, capped at ``max_weight`` (Eq. 7).

Special cases (authors' code): no heads gives empty arrays; one head gets size
``max(H / 5, 12)`` and weight 0.1; two heads get size ``max(H / 6, 12)`` and weight 1. In these
cases the crowdedness is the number of heads in the image. The special sizes are not clipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np
from scipy.spatial import cKDTree

from crowdlib.targets._common import as_points, as_sizes

__all__ = ["LUDA_PRESETS", "PseudoSizes", "boxes_from_sizes", "gak_sizes", "knn_mean_distance", "luda_sizes"]

#: Table I of Crowd-SDNet plus the REFERENCE.md facts. ``r`` is only published for SHA, SHB and
#: WiderFace; NWPU keeps the SHB radius 8 as an assumption (stated here, not in the paper).
LUDA_PRESETS: MappingProxyType = MappingProxyType({
    "SHA": MappingProxyType(dict(K=2, beta=1.0, r=10, min_size=2.0, max_size=None,
                                 neighbor_limit="half", max_weight=50)),
    "SHB": MappingProxyType(dict(K=2, beta=0.5, r=8, min_size=2.0, max_size=50.0,
                                 neighbor_limit="half", max_weight=50)),
    "WiderFace": MappingProxyType(dict(K=2, beta=0.5, r=6, min_size=8.0, max_size=None,
                                       neighbor_limit=None, max_weight=None)),
    "NWPU": MappingProxyType(dict(K=2, beta=0.8, r=8, min_size=2.0, max_size=None,
                                  neighbor_limit=None, max_weight=200)),
})


@dataclass
class PseudoSizes:
    """LUDA output, one entry per head.

    Attributes:
        sizes: ``(N,)`` float32 pseudo box side ``s_j`` in pixels.
        crowdedness: ``(N,)`` int64 ``|R_j|``, heads inside the local circle (itself included).
        weights: ``(N,)`` float32 crowdedness-aware factor ``alpha_j``.
    """

    sizes: np.ndarray
    crowdedness: np.ndarray
    weights: np.ndarray


def knn_mean_distance(points: np.ndarray, k: int) -> np.ndarray:
    """Mean distance of each head to its ``k`` nearest other heads (``min(k, N-1)`` if fewer).

    Returns ``(N,)`` float64; needs ``N >= 2``.
    """
    pts = as_points(points)
    n = len(pts)
    if n < 2:
        raise ValueError(f"points: need at least 2 points for neighbour distances, got {n}")
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k}")
    kk = min(k, n - 1)
    dist, _ = cKDTree(pts).query(pts, k=kk + 1)
    return dist.reshape(n, kk + 1)[:, 1:].mean(axis=1)


def gak_sizes(
    points: np.ndarray,
    *,
    k: int = 1,
    beta: float = 1.0,
    lone_size: float = 16.0,
    min_size: float | None = None,
    max_size: float | None = None,
) -> np.ndarray:
    """Nearest-neighbour pseudo sizes (PSDDN / geometry-adaptive kernel): ``beta`` x mean k-NN distance.

    Args:
        points: ``(N, 2)`` ``(x, y)`` heads.
        k: neighbours averaged (PSDDN uses the nearest one).
        beta: scale factor.
        lone_size: size given to the head of a one-head image.
        min_size, max_size: optional clipping bounds.

    Returns:
        ``(N,)`` float32 sizes.
    """
    pts = as_points(points)
    n = len(pts)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    s = np.array([float(lone_size)]) if n == 1 else beta * knn_mean_distance(pts, k)
    s = np.clip(s, min_size, max_size) if (min_size is not None or max_size is not None) else s
    return s.astype(np.float32)


def _region_means(pts: np.ndarray, d: np.ndarray, radius: float,
                  limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``d`` and count over each head's circle (itself included), vectorised.

    With ``limit`` only the ``limit`` nearest heads inside the circle count; the k-limited query is
    run only for the heads whose circle holds more than ``limit`` heads.
    """
    n = len(pts)
    tree = cKDTree(pts)
    pairs = tree.query_pairs(r=radius, output_type="ndarray")  # i < j, distance <= radius
    ends = np.concatenate([pairs[:, 0], pairs[:, 1]])
    others = np.concatenate([pairs[:, 1], pairs[:, 0]])
    count = 1 + np.bincount(ends, minlength=n)
    total = d + np.bincount(ends, weights=d[others], minlength=n)
    if limit is not None:
        lim = max(1, int(limit))
        over = np.flatnonzero(count > lim)
        if len(over):
            _, idx = tree.query(pts[over], k=lim)
            total[over] = d[idx.reshape(len(over), lim)].sum(axis=1)
            count[over] = lim
    return total / count, count


def luda_sizes(
    points: np.ndarray,
    image_height: int,
    *,
    K: int = 2,
    beta: float = 0.5,
    r: float = 8.0,
    min_size: float = 2.0,
    max_size: float | None = None,
    neighbor_limit: int | Literal["half"] | None = None,
    eta: float = 1.0,
    max_weight: float | None = None,
) -> PseudoSizes:
    """Crowd-SDNet's LUDA pseudo sizes, crowdedness and weights (module docstring for the rules).

    Args:
        points: ``(N, 2)`` ``(x, y)`` heads.
        image_height: ``H`` in pixels (for the one- and two-head sizes).
        K: nearest neighbours of Eq. 3 (2 for people, 1 for cars).
        beta: scale of Eq. 3 (SHA 1.0, SHB 0.5, WiderFace 0.5, NWPU 0.8).
        r: radius divisor; the circle radius is ``(y_max - y_min) / r`` (SHA 10, SHB 8, WiderFace 6).
        min_size: lower clip of ``s_j`` (2 on ShanghaiTech, 8 on WiderFace).
        max_size: upper clip of ``s_j`` (50 on SHB) or ``None``.
        neighbor_limit: keep at most this many nearest heads in a region; ``"half"`` means ``N // 2``.
        eta: exponent of Eq. 7.
        max_weight: cap of ``alpha_j`` (50 on ShanghaiTech, 200 on NWPU) or ``None``.

    Returns:
        :class:`PseudoSizes`.
    """
    pts = as_points(points)
    n = len(pts)
    if image_height <= 0:
        raise ValueError(f"image_height: must be positive, got {image_height}")
    if r <= 0:
        raise ValueError(f"r: must be positive, got {r}")
    if n == 0:
        return PseudoSizes(np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))
    if n <= 2:
        size = max(image_height / (5.0 if n == 1 else 6.0), 12.0)
        return PseudoSizes(np.full(n, size, np.float32), np.full(n, n, np.int64),
                           np.full(n, 0.1 if n == 1 else 1.0, np.float32))
    d = beta * knn_mean_distance(pts, K)
    radius = float(pts[:, 1].max() - pts[:, 1].min()) / r
    if neighbor_limit == "half":
        limit: int | None = n // 2
    elif neighbor_limit is None:
        limit = None
    elif isinstance(neighbor_limit, (int, np.integer)) and neighbor_limit >= 1:
        limit = int(neighbor_limit)
    else:
        raise ValueError(f"neighbor_limit: expected a positive int, 'half' or None, got {neighbor_limit!r}")
    s, count = _region_means(pts, d, radius, limit)
    s = np.clip(s, min_size, max_size)
    alpha = np.floor(count.astype(np.float64) ** eta)
    if max_weight is not None:
        alpha = np.minimum(alpha, max_weight)
    return PseudoSizes(s.astype(np.float32), count.astype(np.int64), alpha.astype(np.float32))


def boxes_from_sizes(points: np.ndarray, sizes: np.ndarray | float) -> np.ndarray:
    """Square ``(N, 4)`` float32 boxes ``(x1, y1, x2, y2)`` of side ``sizes`` centred on the points."""
    pts = as_points(points)
    s = as_sizes(sizes, len(pts))
    half = s[:, None] / 2.0
    return np.concatenate([pts - half, pts + half], axis=1).astype(np.float32)
