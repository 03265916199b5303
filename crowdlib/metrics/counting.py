"""Counting metrics computed from per-image counts.

Conventions (as the papers and their code use them):

- ``mae``: mean absolute count error over images.
- ``rmse``: root of the mean squared count error. Papers call it "MSE"; :func:`count_metrics` returns it under both
  ``"mse"`` and ``"rmse"`` and tables label it "MSE (RMSE)".
- ``nae``: mean of ``|pred - gt| / gt`` over images whose ground-truth count is non-zero; the skipped images are
  counted and returned. NaN when every image is skipped.
- ``game``: Grid Average Mean absolute Error at level ``L`` for one image: the image is cut into ``4**L``
  non-overlapping cells (``2**L`` rows x ``2**L`` columns) and the absolute count errors of the cells are summed.
  Cell edges along an axis of ``S`` pixels are ``floor(k * S / 2**L)`` for ``k = 0..2**L``, so cells differ by at
  most one pixel and the larger ones are spread evenly (no remainder strip). A point ``(x, y)`` belongs to the cell
  containing pixel ``(floor(x), floor(y))`` (clipped into the image). ``game(..., 0)`` is the absolute count error.
  The dataset GAME is the mean of the per-image values (:func:`mean_game`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

__all__ = ["mae", "rmse", "nae", "count_metrics", "constant_count_metrics", "count_correlation", "game", "mean_game",
           "grid_edges"]


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _counts(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _to_numpy(pred).reshape(-1)
    g = _to_numpy(gt).reshape(-1)
    if p.shape != g.shape:
        raise ValueError(f"counting metrics: {p.size} predicted counts for {g.size} ground-truth counts")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(g))):
        raise ValueError("counting metrics: counts contain NaN or inf")
    return p, g


def mae(pred: Any, gt: Any) -> float:
    """Mean absolute error of per-image counts (NaN for zero images)."""
    p, g = _counts(pred, gt)
    return float(np.mean(np.abs(p - g))) if p.size else float("nan")


def rmse(pred: Any, gt: Any) -> float:
    """Root of the mean squared error of per-image counts (the papers' "MSE")."""
    p, g = _counts(pred, gt)
    return float(np.sqrt(np.mean((p - g) ** 2))) if p.size else float("nan")


def nae(pred: Any, gt: Any, *, return_skipped: bool = False) -> float | tuple[float, int]:
    """Normalised absolute error ``mean(|pred - gt| / gt)`` over images with ``gt != 0``.

    Args:
        return_skipped: also return how many images (``gt == 0``) were skipped.
    """
    p, g = _counts(pred, gt)
    ok = g != 0
    skipped = int((~ok).sum())
    value = float(np.mean(np.abs(p[ok] - g[ok]) / np.abs(g[ok]))) if ok.any() else float("nan")
    return (value, skipped) if return_skipped else value


def count_metrics(pred: Any, gt: Any) -> dict[str, float]:
    """All counting metrics at once.

    Args:
        pred, gt: per-image counts (sequences, arrays or tensors of the same length).

    Returns:
        ``{"mae", "mse", "rmse", "nae", "nae_skipped", "n_images"}``; ``"mse"`` equals ``"rmse"`` (root of the mean
        squared error, the papers' "MSE").
    """
    p, g = _counts(pred, gt)
    value, skipped = nae(p, g, return_skipped=True)
    r = rmse(p, g)
    return {"mae": mae(p, g), "mse": r, "rmse": r, "nae": value, "nae_skipped": skipped, "n_images": int(p.size)}


def constant_count_metrics(train_counts: Any, gt: Any) -> dict[str, float]:
    """The trivial baseline: :func:`count_metrics` of predicting every image's count as the mean count of the
    training images (``train_counts``; the test counts ``gt`` are only scored, never used to fit the constant).
    ``"constant"`` holds the predicted count.

    Raises:
        ValueError: with no training counts.
    """
    t = _to_numpy(train_counts).astype(np.float64).reshape(-1)
    if t.size == 0:
        raise ValueError("constant_count_metrics: no training counts to average")
    g = _to_numpy(gt).astype(np.float64).reshape(-1)
    out = count_metrics(np.full(g.shape, float(t.mean())), g)
    out["constant"] = float(t.mean())
    return out


def count_correlation(pred: Any, gt: Any) -> float:
    """Pearson correlation of predicted and true per-image counts: whether a model ranks images by their crowd at
    all, whatever its bias (a model no better than a constant has r near 0). ``nan`` when either side is
    constant or there are fewer than two images."""
    p, g = _counts(pred, gt)
    if p.size < 2 or np.ptp(p) == 0 or np.ptp(g) == 0:
        return float("nan")
    return float(np.corrcoef(p, g)[0, 1])


def grid_edges(size: int, cells: int) -> np.ndarray:
    """Edges ``floor(k * size / cells)``, ``k = 0..cells``, of ``cells`` near-equal intervals of ``[0, size)``."""
    return (np.arange(cells + 1, dtype=np.int64) * int(size)) // int(cells)


def _cell_sums_density(d: np.ndarray, n: int) -> np.ndarray:
    h, w = d.shape
    ey, ex = grid_edges(h, n), grid_edges(w, n)
    s = np.zeros((h + 1, w + 1))
    s[1:, 1:] = d.cumsum(0).cumsum(1)
    return s[ey[1:, None], ex[None, 1:]] - s[ey[:-1, None], ex[None, 1:]] - s[ey[1:, None], ex[None, :-1]] + s[
        ey[:-1, None], ex[None, :-1]
    ]


def _cell_counts_points(pts: np.ndarray, h: int, w: int, n: int) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    col = np.clip(np.floor(pts[:, 0]), 0, w - 1).astype(np.int64)
    row = np.clip(np.floor(pts[:, 1]), 0, h - 1).astype(np.int64)
    cx = np.searchsorted(grid_edges(w, n), col, side="right") - 1
    cy = np.searchsorted(grid_edges(h, n), row, side="right") - 1
    return np.bincount(cy * n + cx, minlength=n * n).reshape(n, n).astype(np.float64)


def game(
    pred: Any,
    gt_points: Any,
    level: int,
    *,
    image_size: tuple[int, int] | None = None,
    pred_kind: Literal["auto", "density", "points"] = "auto",
) -> float:
    """GAME(L) of one image (see the module docstring for the region rule).

    Args:
        pred: a density map ``(H', W')`` (array or tensor; a leading ``(1,)``/``(1, 1)`` is squeezed) or predicted
            points ``(N, 2)`` ``(x, y)``.
        gt_points: ``(M, 2)`` head points ``(x, y)`` in image pixels.
        level: ``L >= 0``; the image is split into ``4**L`` cells.
        image_size: ``(H, W)`` of the image the points live in. Required for point predictions. With a density
            map it defaults to the map's shape; if it differs, the grid is laid on the density map and points are
            scaled by ``(W'/W, H'/H)``.
        pred_kind: ``"auto"`` treats ``pred`` as points when ``image_size`` is given and ``pred`` has shape
            ``(N, 2)``, else as a density map; pass ``"density"`` for a density map that is 2 pixels wide.
    """
    if level < 0:
        raise ValueError(f"game: level must be >= 0, got {level}")
    n = 2**level
    arr = _to_numpy(pred)
    gt = np.asarray(_to_numpy(gt_points), dtype=np.float64)
    gt = gt.reshape(0, 2) if gt.size == 0 else gt
    if gt.ndim != 2 or gt.shape[1] != 2:
        raise ValueError(f"game: gt_points must have shape (M, 2), got {gt.shape}")
    kind = pred_kind
    if kind == "auto":
        looks_like_points = arr.size == 0 or (arr.ndim == 2 and arr.shape[1] == 2)
        kind = "points" if image_size is not None and looks_like_points else "density"
    if kind == "points":
        if image_size is None:
            raise ValueError("game: image_size is required when pred holds points")
        h, w = int(image_size[0]), int(image_size[1])
        pc = _cell_counts_points(arr, h, w, n)
        gc = _cell_counts_points(gt, h, w, n)
    elif kind == "density":
        while arr.ndim > 2 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 2:
            raise ValueError(f"game: density map must be 2-D (H, W), got shape {arr.shape}")
        h, w = arr.shape
        if image_size is not None and tuple(image_size) != (h, w):
            gt = gt * np.array([w / image_size[1], h / image_size[0]])
        pc = _cell_sums_density(arr, n)
        gc = _cell_counts_points(gt, h, w, n)
    else:
        raise ValueError(f"game: pred_kind must be 'auto', 'density' or 'points', got {pred_kind!r}")
    return float(np.abs(pc - gc).sum())


def mean_game(
    preds: Sequence[Any],
    gts: Sequence[Any],
    level: int,
    *,
    image_sizes: Sequence[tuple[int, int]] | None = None,
    pred_kind: Literal["auto", "density", "points"] = "auto",
) -> float:
    """Dataset GAME(L): mean over images of :func:`game`."""
    if len(preds) != len(gts):
        raise ValueError(f"mean_game: {len(preds)} predictions for {len(gts)} ground truths")
    sizes = [None] * len(preds) if image_sizes is None else list(image_sizes)
    vals = [game(p, g, level, image_size=s, pred_kind=pred_kind) for p, g, s in zip(preds, gts, sizes)]
    return float(np.mean(vals)) if vals else float("nan")
