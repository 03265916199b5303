"""CSP-style training targets for point-supervised detectors (Crowd-SDNet Sec. III-A).

Conventions (all maps are ``(ceil(H / stride), ceil(W / stride))`` unless ``out_shape`` is given):
    * A head at ``(x, y)`` owns the centre pixel ``(floor(y / stride), floor(x / stride))``, clipped
      into the grid.
    * ``"center"``: a Gaussian per head, peak 1 at its centre pixel, element-wise maximum where
      Gaussians overlap (Crowd-SDNet, following CSP). The sigma rule is CSP's (OpenCV's
      ``getGaussianKernel`` default): with ``k = max(size / stride, 1)`` the box side in output
      pixels, ``sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8`` (about ``0.15 k``), and the Gaussian is
      cut to the box, i.e. to offsets ``|d| <= max(floor(k / 2), 1)`` (at least a 3x3 footprint).
    * ``"center_pos"``: 1 at the centre pixels, 0 elsewhere.
    * ``"log_size"``: ``log(size)`` (size in input pixels) in the ``window x window`` square around
      each centre pixel, 0 elsewhere; ``"size_weight"``: the head's crowdedness factor there
      (1 when ``crowdedness`` is None), 0 elsewhere. Where windows overlap, a pixel belongs to the
      head whose (continuous, stride-scaled) position is nearest to the pixel centre.
    * ``"offset"``: ``(2, H', W')`` with ``(x / s - floor(x / s), y / s - floor(y / s))`` at the centre
      pixels (channel 0 is x), ``"offset_mask"``: 1 there. When two heads share a centre pixel the
      one nearest to the pixel centre wins, as for the size maps.
All maps are float32.
"""
from __future__ import annotations

import numpy as np

from crowdlib.targets._common import as_points, as_shape, as_sizes

__all__ = ["csp_sigma", "csp_targets"]


def csp_sigma(side: np.ndarray | float) -> np.ndarray:
    """CSP's Gaussian sigma for a box side ``side`` in output pixels (at least 1)."""
    k = np.maximum(np.asarray(side, dtype=np.float64), 1.0)
    return 0.3 * ((k - 1.0) / 2.0 - 1.0) + 0.8


def _nearest_owner(cols: np.ndarray, rows: np.ndarray, pos: np.ndarray, grid: tuple[int, int],
                   window: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices covered by the heads' windows and, per pixel, the owning head."""
    gh, gw = grid
    half = window // 2
    off = np.arange(-half, window - half)
    py = rows[:, None, None] + off[None, :, None]
    px = cols[:, None, None] + off[None, None, :]
    py, px = np.broadcast_arrays(py, px)
    head = np.broadcast_to(np.arange(len(cols))[:, None, None], py.shape)
    ok = (py >= 0) & (py < gh) & (px >= 0) & (px < gw)
    py, px, head = py[ok], px[ok], head[ok]
    dist = (px + 0.5 - pos[head, 0]) ** 2 + (py + 0.5 - pos[head, 1]) ** 2
    flat = py * gw + px
    order = np.lexsort((head, dist, flat))
    flat, head = flat[order], head[order]
    first = np.ones(len(flat), dtype=bool)
    first[1:] = flat[1:] != flat[:-1]
    return flat[first], head[first]


def csp_targets(
    points: np.ndarray,
    sizes: np.ndarray | float,
    shape: tuple[int, int],
    *,
    stride: int = 1,
    crowdedness: np.ndarray | None = None,
    window: int = 5,
    offset: bool = True,
    out_shape: tuple[int, int] | None = None,
    size_scale: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Centre heatmap, size and offset targets for one image (module docstring for the rules).

    Args:
        points: ``(N, 2)`` ``(x, y)`` head centres in input pixels.
        sizes: ``(N,)`` (or scalar) square box sides in input pixels, e.g. LUDA ``sizes``.
        shape: input ``(H, W)``.
        stride: output stride (1 for Crowd-SDNet's full-resolution decoder, 4 for the original CSP).
        crowdedness: ``(N,)`` crowdedness-aware factors ``alpha_j`` (e.g. ``PseudoSizes.weights``);
            ``None`` gives weight 1.
        window: side of the square written around each centre in the size maps (5 in CSP).
        offset: also return ``"offset"`` and ``"offset_mask"``.
        out_shape: override the output grid ``(H', W')``.
        size_scale: ``(N,)`` per-head multipliers of the size loss (e.g. 0.1 for the head of a one-head image),
            written like ``size_weight`` into ``"size_scale"``; omitted: no ``"size_scale"`` map.

    Returns:
        dict with ``"center"``, ``"center_pos"``, ``"log_size"``, ``"size_weight"`` and, with
        ``offset``, ``"offset"`` (2, H', W') and ``"offset_mask"``.
    """
    pts = as_points(points)
    h, w = as_shape(shape)
    n = len(pts)
    s = as_sizes(sizes, n)
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride: must be a positive integer, got {stride}")
    if window < 1:
        raise ValueError(f"window: must be >= 1, got {window}")
    grid = as_shape(out_shape, "out_shape") if out_shape is not None else (-(-h // stride), -(-w // stride))
    gh, gw = grid
    if crowdedness is None:
        alpha = np.ones(n)
    else:
        alpha = np.asarray(crowdedness, dtype=np.float64).reshape(-1)
        if len(alpha) != n or not np.all(np.isfinite(alpha)) or np.any(alpha < 0):
            raise ValueError(f"crowdedness: expected {n} finite non-negative factors, got {alpha.shape}")
    if size_scale is not None:
        scale = np.asarray(size_scale, dtype=np.float64).reshape(-1)
        if len(scale) != n or not np.all(np.isfinite(scale)) or np.any(scale < 0):
            raise ValueError(f"size_scale: expected {n} finite non-negative factors, got {scale.shape}")
        scale_map = np.zeros(grid, dtype=np.float32)
    center = np.zeros(grid, dtype=np.float32)
    center_pos = np.zeros(grid, dtype=np.float32)
    log_size = np.zeros(grid, dtype=np.float32)
    size_weight = np.zeros(grid, dtype=np.float32)
    out: dict[str, np.ndarray] = {}
    pos = pts / stride
    cols = np.clip(np.floor(pos[:, 0]).astype(np.int64), 0, gw - 1)
    rows = np.clip(np.floor(pos[:, 1]).astype(np.int64), 0, gh - 1)
    if n:
        side = s / stride
        sig = csp_sigma(side)
        ext = np.maximum(np.floor(np.maximum(side, 1.0) / 2.0).astype(np.int64), 1)
        for c, r, sg, e in zip(cols, rows, sig, ext):  # a loop over heads, each a small slice
            y0, y1 = max(0, r - e), min(gh, r + e + 1)
            x0, x1 = max(0, c - e), min(gw, c + e + 1)
            gy = np.exp(-((np.arange(y0, y1) - r) ** 2) / (2.0 * sg * sg))
            gx = np.exp(-((np.arange(x0, x1) - c) ** 2) / (2.0 * sg * sg))
            np.maximum(center[y0:y1, x0:x1], (gy[:, None] * gx[None, :]).astype(np.float32),
                       out=center[y0:y1, x0:x1])
        center[rows, cols] = 1.0
        center_pos[rows, cols] = 1.0
        flat, head = _nearest_owner(cols, rows, pos, grid, window)
        log_size.ravel()[flat] = np.log(s[head])
        size_weight.ravel()[flat] = alpha[head]
        if size_scale is not None:
            scale_map.ravel()[flat] = scale[head]
    out.update(center=center, center_pos=center_pos, log_size=log_size, size_weight=size_weight)
    if size_scale is not None:
        out["size_scale"] = scale_map
    if offset:
        off = np.zeros((2, gh, gw), dtype=np.float32)
        mask = np.zeros(grid, dtype=np.float32)
        if n:
            flat, head = _nearest_owner(cols, rows, pos, grid, 1)
            frac = np.clip(pos[head] - np.stack([cols[head], rows[head]], axis=1), 0.0, 1.0)
            off[0].ravel()[flat] = frac[:, 0]
            off[1].ravel()[flat] = frac[:, 1]
            mask.ravel()[flat] = 1.0
        out.update(offset=off, offset_mask=mask)
    return out
