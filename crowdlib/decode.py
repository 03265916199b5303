"""Turning network outputs into points, boxes and counts.

Coordinate convention (the one of ``crowdlib.data.formats`` and ``crowdlib.targets``): points are continuous
``(x, y)`` pixels and pixel ``(row r, column c)`` covers ``[c, c + 1) x [r, r + 1)``, so its centre is
``(c + 0.5, r + 0.5)``. A cell ``c`` of a map with output stride ``s`` covers ``[c s, (c + 1) s)``; a peak there
decodes to the cell centre ``x = (c + 0.5) s``, or, with an offset map (``crowdlib.targets.csp``: channel 0 is
``dx = x / s - floor(x / s)`` in ``[0, 1)``, channel 1 is ``dy``), to ``x = (c + dx) s``. Log-size maps hold
``log(size in input pixels)`` (``crowdlib.targets.csp`` ``"log_size"``).

- :func:`heatmap_peaks`: centre heat-map peaks by max pooling (CSP / Crowd-SDNet decoding), sizes from a log-size
  map, square boxes; :func:`nms` wraps ``torchvision.ops.nms``.
- :func:`components`: connected components of a binary map (IIM decoding).
- :func:`density_peaks`: local maxima of a density map.
- :func:`choose_count_threshold`: the MAE-optimal score threshold for counting, to be chosen on a validation split.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

__all__ = ["heatmap_peaks", "nms", "components", "density_peaks", "choose_count_threshold", "count_above"]


def _to_tensor(x: Any, name: str) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return t.detach().float()


def _as_batch(t: torch.Tensor, name: str, channels: int | None = 1) -> torch.Tensor:
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or (channels is not None and t.shape[1] != channels):
        want = f"(H, W) or (B, {channels}, H, W)" if channels else "(B, C, H, W)"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(t.shape)}")
    return t


def heatmap_peaks(
    heat: Any,
    *,
    threshold: float = 0.2,
    kernel: int = 3,
    size_map: Any = None,
    offset: Any = None,
    stride: int = 1,
    max_peaks: int | None = None,
    size_scale: float | None = None,
) -> list[dict[str, np.ndarray | None]]:
    """Peaks of a centre heat map: pixels equal to the max of their ``kernel x kernel`` neighbourhood with
    score ``> threshold`` (strict, as the Crowd-SDNet code keeps scores above 0.2). Plateaus keep every pixel.

    Args:
        heat: ``(H, W)``, ``(1, H, W)`` or ``(B, 1, H, W)`` scores in [0, 1] (tensor or array).
        threshold: minimum score (exclusive).
        kernel: odd max-pool window.
        size_map: optional log-size map with the same layout as ``heat``: ``size = exp(size_map) * size_scale``.
        offset: optional ``(B, 2, H, W)`` (or ``(2, H, W)``) sub-cell offsets in ``[0, 1)``, channel 0 = dx,
            1 = dy (module docstring); without it a peak decodes to its cell centre.
        stride: output stride of the maps relative to the image.
        max_peaks: keep only the highest-scoring peaks per image.
        size_scale: multiplier of ``exp(size_map)``: 1 (default) when the map holds log sizes in input pixels
            (``crowdlib.targets.csp``), ``stride`` for the original CSP code's map units.

    Returns:
        per image ``{"points": (K, 2) float32 (x, y), "scores": (K,) float32 (descending),
        "boxes": (K, 4) float32 square boxes (x1, y1, x2, y2) centred on the points or None without size_map,
        "sizes": (K,) float32 or None}``.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"heatmap_peaks: kernel must be a positive odd integer, got {kernel}")
    if stride < 1:
        raise ValueError(f"heatmap_peaks: stride must be >= 1, got {stride}")
    h = _as_batch(_to_tensor(heat, "heat"), "heat")
    b = h.shape[0]
    sizes = None
    if size_map is not None:
        sizes = _as_batch(_to_tensor(size_map, "size_map"), "size_map")
        if sizes.shape != h.shape:
            raise ValueError(f"heatmap_peaks: size_map shape {tuple(sizes.shape)} differs from heat {tuple(h.shape)}")
    off = None
    if offset is not None:
        off = _as_batch(_to_tensor(offset, "offset"), "offset", channels=2)
        if off.shape[0] != b or off.shape[2:] != h.shape[2:]:
            raise ValueError(f"heatmap_peaks: offset shape {tuple(off.shape)} does not fit heat {tuple(h.shape)}")
    scale = 1.0 if size_scale is None else float(size_scale)
    hmax = F.max_pool2d(h, kernel, stride=1, padding=kernel // 2)
    keep = (h == hmax) & (h > threshold)
    out: list[dict[str, np.ndarray | None]] = []
    for i in range(b):
        ys, xs = torch.nonzero(keep[i, 0], as_tuple=True)
        sc = h[i, 0, ys, xs]
        order = torch.argsort(sc, descending=True, stable=True)
        if max_peaks is not None:
            order = order[:max_peaks]
        ys, xs, sc = ys[order], xs[order], sc[order]
        if off is not None:
            fx = xs.float() + off[i, 0, ys, xs]
            fy = ys.float() + off[i, 1, ys, xs]
        else:
            fx, fy = xs.float() + 0.5, ys.float() + 0.5
        pts = torch.stack([fx * stride, fy * stride], dim=1).cpu().numpy().astype(np.float32)
        rec: dict[str, np.ndarray | None] = {
            "points": pts,
            "scores": sc.cpu().numpy().astype(np.float32),
            "boxes": None,
            "sizes": None,
        }
        if sizes is not None:
            sz = (torch.exp(sizes[i, 0, ys, xs]) * scale).cpu().numpy().astype(np.float32)
            half = sz[:, None] / 2
            rec["sizes"] = sz
            rec["boxes"] = np.concatenate([pts - half, pts + half], axis=1).astype(np.float32)
        out.append(rec)
    return out


def nms(boxes: Any, scores: Any, iou: float = 0.5) -> np.ndarray:
    """Indices (int64, by decreasing score) of the boxes kept by non-maximum suppression at IoU ``iou``
    (``torchvision.ops.nms``; a box is removed when its IoU with a kept higher-scoring box is ``> iou``)."""
    from torchvision.ops import nms as tv_nms

    bx = _to_tensor(boxes, "boxes").reshape(-1, 4)
    sc = _to_tensor(scores, "scores").reshape(-1)
    if len(bx) != len(sc):
        raise ValueError(f"nms: {len(bx)} boxes for {len(sc)} scores")
    if len(bx) == 0:
        return np.zeros(0, dtype=np.int64)
    return tv_nms(bx, sc, float(iou)).cpu().numpy().astype(np.int64)


def components(
    binary: Any, *, min_area: int = 3, connectivity: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connected components of a binary map (IIM decoding: 4-connected, components under 3 pixels dropped).

    Args:
        binary: ``(H, W)`` map; non-zero pixels are foreground (tensor or array).
        min_area: components with fewer pixels are dropped.
        connectivity: 4 or 8.

    Returns:
        ``(centroids (K, 2) float32 (x, y) = mean of the component's pixel centres, boxes (K, 4) float32
        (x1, y1, x2, y2) = the component's pixel extent (``x2 = last column + 1``), areas (K,) int64)``, in label
        order (row-major first pixel).
    """
    arr = binary.detach().cpu().numpy() if isinstance(binary, torch.Tensor) else np.asarray(binary)
    arr = np.squeeze(arr) if arr.ndim > 2 else arr
    if arr.ndim != 2:
        raise ValueError(f"components: binary map must be 2-D (H, W), got shape {arr.shape}")
    if connectivity not in (4, 8):
        raise ValueError(f"components: connectivity must be 4 or 8, got {connectivity}")
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    labels, n = ndimage.label(arr != 0, structure=structure)
    if n == 0:
        return np.zeros((0, 2), np.float32), np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    flat = labels.ravel()
    fg = np.nonzero(flat)[0]
    lab = flat[fg]
    rows, cols = np.divmod(fg, arr.shape[1])
    areas = np.bincount(lab, minlength=n + 1)[1:]
    cx = np.bincount(lab, weights=cols, minlength=n + 1)[1:] / areas + 0.5
    cy = np.bincount(lab, weights=rows, minlength=n + 1)[1:] / areas + 0.5
    slices = ndimage.find_objects(labels)
    bbox = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices], dtype=np.float32)
    keep = areas >= min_area
    cent = np.stack([cx, cy], axis=1).astype(np.float32)
    return cent[keep], bbox[keep], areas[keep].astype(np.int64)


def density_peaks(
    density: Any, *, threshold: float, min_distance: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of a density map: pixels equal to the maximum of their ``(2 d + 1)^2`` window
    (``d = min_distance``) with value ``> threshold``. Plateaus keep every pixel.

    Returns:
        ``(points (K, 2) float32 pixel centres (c + 0.5, r + 0.5), values (K,) float32)`` by decreasing value.
    """
    arr = density.detach().cpu().numpy() if isinstance(density, torch.Tensor) else np.asarray(density)
    arr = np.squeeze(arr).astype(np.float64) if arr.ndim > 2 else arr.astype(np.float64)
    if arr.ndim != 2:
        raise ValueError(f"density_peaks: density must be 2-D (H, W), got shape {arr.shape}")
    if min_distance < 1:
        raise ValueError(f"density_peaks: min_distance must be >= 1, got {min_distance}")
    mx = ndimage.maximum_filter(arr, size=2 * min_distance + 1, mode="constant", cval=-np.inf)
    ys, xs = np.nonzero((arr == mx) & (arr > threshold))
    vals = arr[ys, xs]
    order = np.argsort(-vals, kind="stable")
    pts = (np.stack([xs[order], ys[order]], axis=1) + 0.5).astype(np.float32)
    return pts, vals[order].astype(np.float32)


def count_above(scores_per_image: Sequence[Any], thresholds: Any) -> np.ndarray:
    """``(n_images, n_thresholds)`` numbers of scores strictly above each threshold."""
    th = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    out = np.empty((len(scores_per_image), len(th)), dtype=np.int64)
    for i, s in enumerate(scores_per_image):
        s = np.sort(np.asarray(s.detach().cpu().numpy() if isinstance(s, torch.Tensor) else s, np.float64).ravel())
        out[i] = len(s) - np.searchsorted(s, th, side="right")
    return out


def choose_count_threshold(
    scores_per_image: Sequence[Any],
    gt_counts: Any,
    thresholds: Any = np.linspace(0.05, 0.95, 19),
) -> tuple[float, Any]:
    """Sweep score thresholds and return the one with the lowest count MAE (count = scores ``> t``).

    Call it on a VALIDATION split carved from the training data, never on the test split, then apply the chosen
    threshold to the test images (the Crowd-SDNet code chose about 0.4 this way). Ties go to the lowest threshold.

    Args:
        scores_per_image: per image, the scores of all candidate detections (e.g. ``heatmap_peaks`` with a low
            threshold).
        gt_counts: per image ground-truth counts.
        thresholds: candidate thresholds.

    Returns:
        ``(best_threshold, table)``: ``table`` is a pandas DataFrame with columns threshold, mae, mse (root of the
        mean squared error), mean_count.
    """
    import pandas as pd

    gt = np.asarray(gt_counts, dtype=np.float64).reshape(-1)
    if len(gt) != len(scores_per_image):
        raise ValueError(f"choose_count_threshold: {len(scores_per_image)} score lists for {len(gt)} counts")
    if len(gt) == 0:
        raise ValueError("choose_count_threshold: no images")
    th = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if th.size == 0:
        raise ValueError("choose_count_threshold: thresholds is empty")
    counts = count_above(scores_per_image, th)
    err = counts - gt[:, None]
    mae = np.abs(err).mean(axis=0)
    mse = np.sqrt((err**2).mean(axis=0))
    table = pd.DataFrame({"threshold": th, "mae": mae, "mse": mse, "mean_count": counts.mean(axis=0)})
    tied = np.flatnonzero(mae == mae.min())
    best = int(tied[np.argmin(th[tied])])
    return float(th[best]), table
