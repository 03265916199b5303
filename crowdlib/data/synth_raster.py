"""Vectorised rasterisation helpers for the synthetic crowd world.

Coordinate convention (shared with :mod:`crowdlib.data.synthetic` and :mod:`crowdlib.data.transforms`):
pixel ``(row r, col c)`` covers the square ``[c, c+1) x [r, r+1)``; its centre is ``(c + 0.5, r + 0.5)``.
A point ``(x, y)`` is therefore a continuous position, and a resize by a factor ``f`` maps it to ``(f x, f y)``.

Shapes are drawn with a z-buffer instead of per-shape loops: every shape contributes the pixels of its
bounding box (generated for all shapes at once with ``np.repeat``), each pixel gets the shape's depth, and
``np.maximum.at`` keeps the front-most shape per pixel. Later (higher depth) shapes occlude earlier ones,
which gives painter's order without Python loops over shapes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class ShapePixels:
    """Pixels covered by the bounding boxes of a batch of shapes.

    Attributes:
        sid: ``(P,)`` int64 index of the shape each pixel belongs to.
        row: ``(P,)`` int64 pixel rows.
        col: ``(P,)`` int64 pixel columns.
        u: ``(P,)`` float32 horizontal offset of the pixel centre from the shape centre, in units of the
            shape's horizontal half extent.
        v: ``(P,)`` float32 vertical offset, in units of the vertical half extent.
    """

    sid: np.ndarray
    row: np.ndarray
    col: np.ndarray
    u: np.ndarray
    v: np.ndarray

    def select(self, mask: np.ndarray) -> ShapePixels:
        """The pixels where ``mask`` is true."""
        return ShapePixels(self.sid[mask], self.row[mask], self.col[mask], self.u[mask], self.v[mask])


def shape_pixels(cx: np.ndarray, cy: np.ndarray, hx: np.ndarray, hy: np.ndarray, height: int,
                 width: int) -> ShapePixels:
    """Enumerate the pixels of each shape's bounding box ``[cx - hx, cx + hx] x [cy - hy, cy + hy]``.

    The boxes are clipped to the image; shapes entirely outside it contribute no pixels.
    """
    cx = np.asarray(cx, np.float64)
    cy = np.asarray(cy, np.float64)
    hx = np.maximum(np.asarray(hx, np.float64), 1e-3)
    hy = np.maximum(np.asarray(hy, np.float64), 1e-3)
    x0 = np.clip(np.floor(cx - hx), 0, width).astype(np.int64)
    x1 = np.clip(np.ceil(cx + hx), 0, width).astype(np.int64)
    y0 = np.clip(np.floor(cy - hy), 0, height).astype(np.int64)
    y1 = np.clip(np.ceil(cy + hy), 0, height).astype(np.int64)
    w = np.maximum(x1 - x0, 0)
    h = np.maximum(y1 - y0, 0)
    n = w * h
    total = int(n.sum())
    sid = np.repeat(np.arange(len(cx), dtype=np.int64), n)
    start = np.cumsum(n) - n
    local = np.arange(total, dtype=np.int64) - start[sid]
    ws = w[sid]
    row = y0[sid] + local // np.maximum(ws, 1)
    col = x0[sid] + local % np.maximum(ws, 1)
    u = ((col + 0.5 - cx[sid]) / hx[sid]).astype(np.float32)
    v = ((row + 0.5 - cy[sid]) / hy[sid]).astype(np.float32)
    return ShapePixels(sid, row, col, u, v)


def composite(image: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
              ) -> list[np.ndarray]:
    """Draw pixel layers onto ``image`` (float32 ``(H, W, 3)``, modified in place) with a z-buffer.

    Args:
        image: the canvas.
        layers: a list of ``(flat_index, depth, colour, keep)`` tuples: ``flat_index`` ``(P,)`` row-major pixel
            index, ``depth`` ``(P,)`` int64 (unique per shape; larger is nearer), ``colour`` ``(P, 3)`` float,
            ``keep`` ``(P,)`` bool (the pixel belongs to the shape, not just to its bounding box) or ``None``
            (all pixels belong to it).

    Returns:
        For each layer, a ``(P_kept,)`` bool array telling which of its kept pixels are visible in the result.
    """
    h, w = image.shape[:2]
    zbuf = np.full(h * w, -1, dtype=np.int64)
    kept = []
    for idx, depth, colour, keep in layers:
        if keep is None:
            idx_k, depth_k, col_k = idx, depth, colour
        else:
            idx_k, depth_k, col_k = idx[keep], depth[keep], colour[keep]
        np.maximum.at(zbuf, idx_k, depth_k)
        kept.append((idx_k, depth_k, col_k))
    flat = image.reshape(-1, 3)
    visible = []
    for idx_k, depth_k, col_k in kept:
        win = zbuf[idx_k] == depth_k
        flat[idx_k[win]] = col_k[win]
        visible.append(win)
    return visible


def smooth_field(rng: np.random.Generator, height: int, width: int, cells: int = 8) -> np.ndarray:
    """A smooth random field in about ``[-1, 1]`` of shape ``(H, W)``: bilinear upsampling of coarse noise."""
    gh = max(2, int(round(cells * height / max(height, width))) + 1)
    gw = max(2, int(round(cells * width / max(height, width))) + 1)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    out = ndimage.zoom(coarse, (height / gh, width / gw), order=1, mode="nearest", grid_mode=True)
    out = out[:height, :width]
    if out.shape != (height, width):
        out = np.pad(out, ((0, height - out.shape[0]), (0, width - out.shape[1])), mode="edge")
    return np.clip(out / 1.5, -1.0, 1.0)
