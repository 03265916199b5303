"""Density-map ground truth: fixed and geometry-adaptive Gaussian kernels.

Conventions:
    * ``points`` are ``(N, 2)`` ``(x, y)`` pixels; a head lands in pixel ``(floor(y), floor(x))``,
      clipped into the image, so heads on (or slightly beyond) the border are never lost.
    * A head's kernel is scipy's: the 1-D Gaussian ``exp(-t^2 / (2 sigma^2))`` on the integer
      offsets ``|t| <= int(truncate * sigma + 0.5)``, normalised to sum 1 over that full support,
      applied along rows and columns (``sigma <= 1e-15`` gives a delta, as in scipy).
      ``sigma=4, truncate=1.75`` is the common "15x15 kernel, sigma 4" fixed map.
    * ``renormalize=True`` rescales each head's kernel, after cropping it to the image, to sum 1,
      so the map sums to ``N`` exactly (up to float rounding). ``renormalize=False`` keeps the
      published scripts' behaviour, where mass falling outside the image is lost.
    * Geometry-adaptive sigma (Zhang et al., MCNN): ``beta`` times the mean distance to the ``k``
      nearest other heads. With ``N <= k`` the available ``N - 1`` neighbours are used; a lone head
      gets ``lone_sigma`` (default ``mean(H, W) / 4``, the published scripts' fallback).
      Coincident heads get sigma 0, i.e. a delta, exactly as the published scripts do.

``method="classic"`` is the published scripts' algorithm (one full-image ``gaussian_filter`` per
head); ``method="fast"`` splats the same per-head truncated separable kernels with a few
``numpy.bincount`` calls (heads batched by kernel radius) and gives the same map.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

from crowdlib.targets._common import as_points, as_shape, pixel_indices

__all__ = ["adaptive_sigmas", "density_map", "kernel_radius"]

_TINY_SIGMA = 1e-15  # scipy skips filtering along an axis whose sigma is at or below this
_CHUNK_ELEMENTS = 1 << 21  # kernel elements per batched bincount (about 16 MB of float64)


def kernel_radius(sigma: np.ndarray | float, truncate: float) -> np.ndarray:
    """Integer kernel radius per sigma, scipy's rule ``int(truncate * sigma + 0.5)`` (0 for a delta)."""
    s = np.asarray(sigma, dtype=np.float64)
    r = (truncate * s + 0.5).astype(np.int64)
    return np.where(s <= _TINY_SIGMA, 0, r)


def adaptive_sigmas(
    points: np.ndarray,
    shape: tuple[int, int],
    *,
    k: int = 3,
    beta: float = 0.3,
    lone_sigma: float | None = None,
) -> np.ndarray:
    """Geometry-adaptive sigma per head: ``beta`` x mean distance to the ``k`` nearest other heads.

    Args:
        points: ``(N, 2)`` ``(x, y)`` head points.
        shape: ``(H, W)`` of the image (used only for the lone-head fallback).
        k: number of nearest neighbours (3 in MCNN/CSRNet).
        beta: scale factor (0.3 in MCNN/CSRNet).
        lone_sigma: sigma for an image with a single head; default ``mean(H, W) / 4``.

    Returns:
        ``(N,)`` float64 sigmas.
    """
    pts = as_points(points)
    h, w = as_shape(shape)
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k}")
    n = len(pts)
    if n == 0:
        return np.zeros(0)
    if n == 1:
        return np.array([float(lone_sigma) if lone_sigma is not None else (h + w) / 2.0 / 4.0])
    kk = min(k, n - 1)
    dist, _ = cKDTree(pts).query(pts, k=kk + 1)
    return beta * dist.reshape(n, kk + 1)[:, 1:].mean(axis=1)


def _kernels_1d(
    centres: np.ndarray, sigmas: np.ndarray, radii: np.ndarray, length: int, renormalize: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Batched 1-D kernels along one axis: (indices (n, L) clipped into the axis, weights (n, L)).

    Weights outside a head's own radius or outside the axis are zero.
    """
    rmax = int(radii.max())
    off = np.arange(-rmax, rmax + 1)
    safe = np.where(sigmas > _TINY_SIGMA, sigmas, 1.0)
    g = np.exp(-0.5 * (off[None, :] / safe[:, None]) ** 2)
    g = np.where(np.abs(off)[None, :] <= radii[:, None], g, 0.0)
    g = np.where((sigmas > _TINY_SIGMA)[:, None], g, (off == 0)[None, :].astype(np.float64))
    g /= g.sum(axis=1, keepdims=True)
    idx = centres[:, None] + off[None, :]
    inside = (idx >= 0) & (idx < length)
    g = np.where(inside, g, 0.0)
    if renormalize:
        g /= g.sum(axis=1, keepdims=True)
    return np.clip(idx, 0, length - 1), g


def _fast(cols: np.ndarray, rows: np.ndarray, sigmas: np.ndarray, shape: tuple[int, int],
          truncate: float, renormalize: bool) -> np.ndarray:
    h, w = shape
    out = np.zeros(h * w, dtype=np.float64)
    radii = kernel_radius(sigmas, truncate)
    order = np.argsort(radii, kind="stable")
    start = 0
    n = len(order)
    while start < n:
        rmax = int(radii[order[start]])
        size = (2 * rmax + 1) ** 2
        if size > _CHUNK_ELEMENTS:
            # Very wide kernels (sparse images): one cropped outer product per head.
            block = out.reshape(h, w)
            for i in order[start:]:
                _, gy = _kernels_1d(rows[i:i + 1], sigmas[i:i + 1], radii[i:i + 1], h, renormalize)
                _, gx = _kernels_1d(cols[i:i + 1], sigmas[i:i + 1], radii[i:i + 1], w, renormalize)
                ri = int(radii[i])
                y0, y1 = max(0, int(rows[i]) - ri), min(h, int(rows[i]) + ri + 1)
                x0, x1 = max(0, int(cols[i]) - ri), min(w, int(cols[i]) + ri + 1)
                wy = gy[0, y0 - (int(rows[i]) - ri): y1 - (int(rows[i]) - ri)]
                wx = gx[0, x0 - (int(cols[i]) - ri): x1 - (int(cols[i]) - ri)]
                block[y0:y1, x0:x1] += wy[:, None] * wx[None, :]
            break
        # Grow the chunk while the padded kernel budget allows (radii are sorted, so the last
        # member sets the padded size).
        stop = start + 1
        while stop < n:
            r = int(radii[order[stop]])
            if (stop + 1 - start) * (2 * r + 1) ** 2 > _CHUNK_ELEMENTS:
                break
            stop += 1
        sel = order[start:stop]
        iy, gy = _kernels_1d(rows[sel], sigmas[sel], radii[sel], h, renormalize)
        ix, gx = _kernels_1d(cols[sel], sigmas[sel], radii[sel], w, renormalize)
        flat = iy[:, :, None] * w + ix[:, None, :]
        wts = gy[:, :, None] * gx[:, None, :]
        out += np.bincount(flat.ravel(), wts.ravel(), minlength=h * w)
        start = stop
    return out.reshape(h, w)


def _classic(cols: np.ndarray, rows: np.ndarray, sigmas: np.ndarray, shape: tuple[int, int],
             truncate: float, renormalize: bool) -> np.ndarray:
    out = np.zeros(shape, dtype=np.float64)
    for c, r, s in zip(cols, rows, sigmas):
        pt = np.zeros(shape, dtype=np.float64)
        pt[r, c] = 1.0
        g = gaussian_filter(pt, float(s), mode="constant", truncate=truncate)
        if renormalize:
            g /= g.sum()
        out += g
    return out


def density_map(
    points: np.ndarray,
    shape: tuple[int, int],
    sigma: float | np.ndarray | Literal["adaptive"] = 4.0,
    *,
    k: int = 3,
    beta: float = 0.3,
    lone_sigma: float | None = None,
    truncate: float = 4.0,
    renormalize: bool = True,
    method: Literal["fast", "classic"] = "fast",
    dtype: type = np.float32,
) -> np.ndarray:
    """Density map with one Gaussian per head (see the module docstring for the conventions).

    Args:
        points: ``(N, 2)`` ``(x, y)`` head points.
        shape: ``(H, W)`` of the map.
        sigma: a fixed sigma, an ``(N,)`` array of per-head sigmas, or ``"adaptive"``.
        k: neighbours for the adaptive sigma.
        beta: scale of the adaptive sigma.
        lone_sigma: adaptive sigma of a lone head (default ``mean(H, W) / 4``).
        truncate: kernel half-width in sigmas (scipy's rule).
        renormalize: rescale each cropped kernel to sum 1 (count-preserving at borders).
        method: ``"fast"`` (batched splatting) or ``"classic"`` (one full-image filter per head).
        dtype: output dtype; both methods compute in float64 and cast at the end.

    Returns:
        ``(H, W)`` density map (float32 by default).
    """
    pts = as_points(points)
    hw = as_shape(shape)
    n = len(pts)
    if isinstance(sigma, str):
        if sigma != "adaptive":
            raise ValueError(f"sigma: expected a number, an (N,) array or 'adaptive', got {sigma!r}")
        sig = adaptive_sigmas(pts, hw, k=k, beta=beta, lone_sigma=lone_sigma)
    else:
        sig = np.asarray(sigma, dtype=np.float64)
        sig = np.full(n, float(sig)) if sig.ndim == 0 else sig.reshape(-1)
        if len(sig) != n:
            raise ValueError(f"sigma: {len(sig)} sigmas for {n} points")
    if not np.all(np.isfinite(sig)) or np.any(sig < 0):
        raise ValueError("sigma: sigmas must be finite and >= 0")
    if truncate <= 0:
        raise ValueError(f"truncate: must be > 0, got {truncate}")
    if n == 0:
        return np.zeros(hw, dtype=dtype)
    cols, rows = pixel_indices(pts, hw)
    if method == "fast":
        out = _fast(cols, rows, sig, hw, truncate, renormalize)
    elif method == "classic":
        out = _classic(cols, rows, sig, hw, truncate, renormalize)
    else:
        raise ValueError(f"method: expected 'fast' or 'classic', got {method!r}")
    return out.astype(dtype)
