"""Small input checks shared by the ground-truth builders."""
from __future__ import annotations

import numpy as np

from crowdlib._checks import as_points  # noqa: F401 - re-exported for the builders


def as_shape(shape: tuple[int, int], name: str = "shape") -> tuple[int, int]:
    """Return ``(H, W)`` as two positive ints (extra trailing dims such as channels are ignored)."""
    try:
        h, w = int(shape[0]), int(shape[1])
    except (TypeError, IndexError, ValueError) as exc:
        raise ValueError(f"{name}: expected (H, W), got {shape!r}") from exc
    if h <= 0 or w <= 0:
        raise ValueError(f"{name}: height and width must be positive, got {(h, w)}")
    return h, w


def as_sizes(sizes: np.ndarray | float, n: int, name: str = "sizes") -> np.ndarray:
    """Broadcast a scalar or ``(N,)`` array of sizes to a finite, positive ``(N,)`` float64 array."""
    s = np.asarray(sizes, dtype=np.float64)
    if s.ndim == 0:
        s = np.full(n, float(s))
    s = s.reshape(-1)
    if len(s) != n:
        raise ValueError(f"{name}: {len(s)} sizes for {n} points")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"{name}: sizes must be finite and > 0")
    return s


def pixel_indices(pts: np.ndarray, shape: tuple[int, int], stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pixel ``(col, row)`` of each point at ``stride``: ``floor(p / stride)`` clipped into the grid.

    The grid is ``(ceil(H / stride), ceil(W / stride))``; points on or beyond the border land in
    the nearest border pixel so that no head is lost.
    """
    h, w = shape
    gh, gw = -(-h // stride), -(-w // stride)
    cols = np.clip(np.floor(pts[:, 0] / stride).astype(np.int64), 0, gw - 1)
    rows = np.clip(np.floor(pts[:, 1] / stride).astype(np.int64), 0, gh - 1)
    return cols, rows
