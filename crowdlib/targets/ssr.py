"""SSR-HEF multi-scale segmentation labels (SSR-HEF Sec. III-B, automatic labelling).

``S^0`` pastes a ``template x template`` block of ones (15 in the paper) centred on each head's pixel
``(floor(y), floor(x))`` (clipped into the image; the block is cut at the borders). ``S^{1/s}`` is
``S^0`` resized to ``(ceil(H / s), ceil(W / s))`` and binarised with ``> 0``. The resize is done as an
area (box) average over ``s x s`` blocks, so binarising it equals taking the block maximum: a low
resolution pixel is 1 when any of its full-resolution pixels is (the paper does not name the
interpolation; bilinear resizing binarised with ``> 0`` differs only along block edges).
"""
from __future__ import annotations

import numpy as np

from crowdlib.targets._common import as_points, as_shape, pixel_indices

__all__ = ["block_max", "ssr_labels"]


def block_max(mask: np.ndarray, s: int) -> np.ndarray:
    """Maximum over ``s x s`` blocks, output ``(ceil(H / s), ceil(W / s))`` (zero padding)."""
    h, w = mask.shape
    gh, gw = -(-h // s), -(-w // s)
    pad = np.zeros((gh * s, gw * s), dtype=mask.dtype)
    pad[:h, :w] = mask
    return pad.reshape(gh, s, gw, s).max(axis=(1, 3))


def ssr_labels(
    points: np.ndarray,
    shape: tuple[int, int],
    *,
    template: int = 15,
    scales: tuple[int, ...] = (2, 4, 8),
) -> dict[int, np.ndarray]:
    """Binary segmentation labels at full resolution and each downsampling factor.

    Args:
        points: ``(N, 2)`` ``(x, y)`` heads.
        shape: ``(H, W)``.
        template: side of the ones template (15 in SSR-HEF; odd sides are centred exactly, even
            sides extend one pixel further up/left).
        scales: downsampling factors (2, 4, 8 for ``S^{1/2}, S^{1/4}, S^{1/8}``).

    Returns:
        ``{1: S^0, s: S^{1/s} for s in scales}``, each a uint8 0/1 map.
    """
    pts = as_points(points)
    h, w = as_shape(shape)
    if template < 1:
        raise ValueError(f"template: must be >= 1, got {template}")
    if any(int(s) != s or s < 1 for s in scales):
        raise ValueError(f"scales: must be positive integers, got {scales}")
    full = np.zeros((h, w), dtype=np.int32)
    if len(pts):
        cols, rows = pixel_indices(pts, (h, w))
        lo = template // 2
        hi = template - lo  # exclusive
        # 2-D difference array: +1/-1 at rectangle corners, then cumulative sums (no per-head slices).
        diff = np.zeros((h + 1, w + 1), dtype=np.int32)
        y0, y1 = np.clip(rows - lo, 0, h), np.clip(rows + hi, 0, h)
        x0, x1 = np.clip(cols - lo, 0, w), np.clip(cols + hi, 0, w)
        np.add.at(diff, (y0, x0), 1)
        np.add.at(diff, (y0, x1), -1)
        np.add.at(diff, (y1, x0), -1)
        np.add.at(diff, (y1, x1), 1)
        full = diff.cumsum(axis=0).cumsum(axis=1)[:h, :w]
    s0 = (full > 0).astype(np.uint8)
    out = {1: s0}
    for s in scales:
        out[int(s)] = block_max(s0, int(s))
    return out
