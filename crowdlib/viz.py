"""Drawing helpers for notebooks and widgets (pure functions; never call ``plt.show()``).

Images are ``(H, W, 3)`` uint8 or float arrays in ``[0, 1]``, or ``(3, H, W)`` tensors (ImageNet-normalised
tensors are detected by their range and de-normalised). Points are ``(N, 2)`` ``(x, y)`` and boxes
``(N, 4)`` ``(x1, y1, x2, y2)`` in the pixel-edge convention (pixel ``(r, c)`` covers ``[c, c+1)``), so
``imshow`` is called with ``extent=(0, W, H, 0)``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

_MEAN = np.array([0.485, 0.456, 0.406])
_STD = np.array([0.229, 0.224, 0.225])


def as_rgb(image: Any) -> np.ndarray:
    """Convert an image (array or tensor, HWC or CHW, uint8 / [0, 1] / ImageNet-normalised) to HWC float [0, 1]."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().float().numpy()
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3:
        raise ValueError(f"image: expected a 2-D or 3-D array, got shape {arr.shape}")
    if arr.shape[0] in (1, 3) and arr.shape[2] not in (1, 3):
        arr = np.moveaxis(arr, 0, 2)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32)
    if arr.min() < -0.01 or arr.max() > 1.01:
        if arr.max() > 5.0:  # 0-255 floats
            arr = arr / 255.0
        else:  # ImageNet-normalised
            arr = arr * _STD + _MEAN
    return np.clip(arr, 0.0, 1.0)


def show_image(ax: Axes, image: Any, title: str | None = None) -> Axes:
    """Show ``image`` on ``ax`` with pixel-edge coordinates and no axis ticks."""
    rgb = as_rgb(image)
    h, w = rgb.shape[:2]
    ax.imshow(rgb, extent=(0, w, h, 0), interpolation="nearest")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)
    return ax


def draw_points(ax: Axes, points: Any, color: str = "red", size: float = 6.0, marker: str = "o", **kw: Any):
    """Scatter ``(N, 2)`` points on ``ax``; returns the PathCollection."""
    p = np.asarray(points.detach().cpu() if hasattr(points, "detach") else points, dtype=np.float32).reshape(-1, 2)
    kw.setdefault("linewidths", 0.6)
    kw.setdefault("edgecolors", "white")
    return ax.scatter(p[:, 0], p[:, 1], s=size, c=color, marker=marker, **kw)


def draw_boxes(ax: Axes, boxes: Any, values: Any = None, cmap: str = "viridis", label_values: bool = False,
               color: str = "lime", linewidth: float = 0.8, vmin: float | None = None, vmax: float | None = None,
               fmt: str = "{:.2f}", fontsize: float = 6.0, **kw: Any) -> PatchCollection:
    """Draw ``(N, 4)`` boxes; coloured by ``values`` (e.g. crowdedness or confidence) through ``cmap``.

    Returns the PatchCollection (one rectangle per box). With ``label_values`` each box gets a text label
    ``fmt.format(value)`` at its top-left corner.
    """
    b = np.asarray(boxes.detach().cpu() if hasattr(boxes, "detach") else boxes, dtype=np.float32).reshape(-1, 4)
    rects = [Rectangle((x1, y1), x2 - x1, y2 - y1) for x1, y1, x2, y2 in b]
    if values is not None:
        vals = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=np.float64)
        vals = vals.reshape(-1)
        if len(vals) != len(b):
            raise ValueError(f"values: {len(vals)} values for {len(b)} boxes")
        lo = float(np.nanmin(vals)) if vmin is None and len(vals) else (vmin if vmin is not None else 0.0)
        hi = float(np.nanmax(vals)) if vmax is None and len(vals) else (vmax if vmax is not None else 1.0)
        norm = matplotlib.colors.Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-9)
        colors = matplotlib.colormaps[cmap](norm(vals))
    else:
        vals = None
        colors = color
    pc = PatchCollection(rects, facecolor="none", edgecolor=colors, linewidth=linewidth, **kw)
    ax.add_collection(pc)
    if label_values and vals is not None:
        for (x1, y1, _, _), v in zip(b, vals):
            ax.text(x1, y1, fmt.format(v), fontsize=fontsize, color="white", va="bottom", ha="left",
                    bbox=dict(boxstyle="square,pad=0.05", fc="black", alpha=0.5, lw=0))
    return pc


def overlay_map(ax: Axes, image: Any, heat: Any, alpha: float = 0.5, cmap: str = "jet",
                colorbar: bool = False) -> Axes:
    """Show ``image`` with a ``(h, w)`` map (density, heat map, threshold map) stretched over it."""
    show_image(ax, image)
    rgb = as_rgb(image)
    h, w = rgb.shape[:2]
    hm = np.asarray(heat.detach().cpu().float() if hasattr(heat, "detach") else heat, dtype=np.float32)
    hm = np.squeeze(hm)
    if hm.ndim != 2:
        raise ValueError(f"heat: expected a 2-D map, got shape {hm.shape}")
    im = ax.imshow(hm, extent=(0, w, h, 0), alpha=alpha, cmap=cmap, interpolation="bilinear")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    return ax


def overlay_mask(ax: Axes, image: Any, mask: Any, color: tuple[float, float, float] = (1.0, 0.0, 0.0),
                 alpha: float = 0.4) -> Axes:
    """Show ``image`` with a boolean / [0, 1] ``(h, w)`` mask tinted in ``color``."""
    show_image(ax, image)
    rgb = as_rgb(image)
    h, w = rgb.shape[:2]
    m = np.asarray(mask.detach().cpu().float() if hasattr(mask, "detach") else mask, dtype=np.float32)
    m = np.squeeze(m)
    if m.ndim != 2:
        raise ValueError(f"mask: expected a 2-D mask, got shape {m.shape}")
    rgba = np.zeros(m.shape + (4,), np.float32)
    rgba[..., :3] = color
    rgba[..., 3] = np.clip(m, 0, 1) * alpha
    ax.imshow(rgba, extent=(0, w, h, 0), interpolation="nearest")
    return ax


def image_grid(records: Sequence[Any], ncols: int = 4, points: bool = True, boxes: bool = True,
               titles: Sequence[str] | None = None, cell_size: float = 2.6, point_size: float = 4.0) -> Figure:
    """A figure of records (``CrowdRecord`` or ``(image, points, boxes)`` tuples) with their annotations."""
    n = len(records)
    if n == 0:
        raise ValueError("records: nothing to draw")
    ncols = max(1, min(int(ncols), n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell_size * ncols, cell_size * nrows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= n:
            ax.axis("off")
            continue
        r = records[k]
        if isinstance(r, tuple):
            img, pts, bxs = (list(r) + [None, None])[:3]
            title = None
        else:
            img, pts, bxs = r.load_image(), r.points, r.boxes
            title = f"{r.image_id}  n={r.count}"
        if titles is not None:
            title = titles[k]
        show_image(ax, img, title)
        if boxes and bxs is not None and len(bxs):
            draw_boxes(ax, bxs, linewidth=0.5)
        if points and pts is not None and len(pts):
            draw_points(ax, pts, size=point_size, linewidths=0.3)
    fig.tight_layout()
    return fig


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render a figure to an ``(H, W, 3)`` uint8 RGB array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
