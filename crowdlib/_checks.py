"""Input validation shared by the target builders and the metrics."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_points"]


def as_points(value: Any, name: str = "points") -> np.ndarray:
    """Return ``value`` as a finite float64 ``(N, 2)`` array of ``(x, y)``.

    ``value`` may be an array-like, a torch tensor, or an object with a ``.points`` attribute (a
    :class:`~crowdlib.data.records.CrowdRecord`). An empty input gives shape ``(0, 2)``.

    Raises:
        ValueError: naming ``name`` when the shape is wrong or a coordinate is NaN/inf.
    """
    pts = getattr(value, "points", value)
    if hasattr(pts, "detach"):
        pts = pts.detach().cpu().numpy()
    arr = np.asarray(pts, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name}: expected shape (N, 2) of (x, y), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite coordinates")
    return arr
