"""Shared helpers of the format readers: the error type, point validation, image headers, .mat loading.

Coordinate convention of every reader: points are ``(x, y)`` in pixels of the image, continuous, with
pixel ``(row r, col c)`` covering ``[c, c + 1) x [r, r + 1)``; a point is inside the image when
``0 <= x <= W`` and ``0 <= y <= H`` (the far border is included, as annotation tools write it).
Readers that take points from pixel masks (cells) return pixel centres ``(c + 0.5, r + 0.5)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FormatError", "build_record", "check_points", "image_size_of", "load_mat", "load_rgb", "resolve_image"]


class FormatError(ValueError):
    """A malformed annotation or image file; the message names the file and the problem."""


def image_size_of(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` read from the image header (no full decode).

    Raises:
        FormatError: when the file is missing or is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise FormatError(f"{p}: image file not found")
    try:
        with Image.open(p) as im:
            w, h = im.size
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise FormatError(f"{p}: corrupt or unreadable image ({exc})") from exc
    return int(h), int(w)


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode an image to ``(H, W, 3)`` uint8 RGB, raising :class:`FormatError` when corrupt."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise FormatError(f"{p}: image file not found")
    try:
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise FormatError(f"{p}: corrupt or unreadable image ({exc})") from exc


def load_mat(path: str | Path) -> dict[str, Any]:
    """``scipy.io.loadmat`` raising :class:`FormatError` for missing or unreadable files."""
    import scipy.io

    p = Path(path)
    if not p.is_file():
        raise FormatError(f"{p}: annotation file not found")
    try:
        return scipy.io.loadmat(str(p))
    except Exception as exc:  # scipy raises several unrelated types for corrupt files
        raise FormatError(f"{p}: cannot read .mat file ({exc})") from exc


def check_points(
    points: Any,
    source: str | Path,
    image_size: tuple[int, int] | None,
    *,
    drop_outside: bool = False,
    what: str = "points",
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(N, 2)`` ``(x, y)`` points; return them as float32 and the kept mask.

    Args:
        points: array-like of points.
        source: the annotation file, named in errors.
        image_size: ``(H, W)``, or ``None`` to check only for negative coordinates.
        drop_outside: drop points outside the image instead of raising.
        what: name of the field, used in messages.

    Raises:
        FormatError: wrong shape, NaN/inf, or (unless ``drop_outside``) points outside the image.
    """
    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{source}: {what} are not numeric ({exc})") from exc
    if pts.size == 0:
        pts = pts.reshape(0, 2)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise FormatError(f"{source}: {what} must have shape (N, 2), got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise FormatError(f"{source}: {what} contain NaN or infinite values")
    inside = (pts[:, 0] >= 0) & (pts[:, 1] >= 0)
    if image_size is not None:
        h, w = image_size
        inside &= (pts[:, 0] <= w) & (pts[:, 1] <= h)
    if not inside.all() and not drop_outside:
        bad = pts[~inside][0]
        where = "negative" if (bad < 0).any() else f"outside the {image_size[1]}x{image_size[0]} image"
        raise FormatError(
            f"{source}: {int((~inside).sum())} {what} {where} (first: x={bad[0]:.2f}, y={bad[1]:.2f}); "
            "pass drop_outside=True to drop them"
        )
    return pts.astype(np.float32), inside


def resolve_image(image_path: str | Path | None, image_size: tuple[int, int] | None,
                  check_image: bool = True) -> tuple[Path | None, tuple[int, int] | None]:
    """Path and ``(H, W)``: the size from ``image_size`` or, if missing, the image header."""
    p = Path(image_path) if image_path is not None else None
    if image_size is None and p is not None and check_image:
        image_size = image_size_of(p)
    return p, image_size


def build_record(
    image_id: str,
    points: Any,
    source: str | Path,
    *,
    image_path: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
    drop_outside: bool = False,
    boxes: np.ndarray | None = None,
    per_head: dict[str, np.ndarray] | None = None,
    meta: dict[str, Any] | None = None,
    check_image: bool = True,
):
    """Validate points (see :func:`check_points`) and make a ``CrowdRecord``.

    Boxes and the ``per_head`` arrays (stored in ``meta``) are filtered with the points.
    ``meta["dropped"]`` is the number of points dropped as outside the image, ``meta["annotation"]``
    the annotation file.
    """
    from crowdlib.data.records import CrowdRecord

    path, size = resolve_image(image_path, image_size, check_image)
    pts, keep = check_points(points, source, size, drop_outside=drop_outside)
    m: dict[str, Any] = dict(meta or {})
    m["annotation"] = str(source)
    m["dropped"] = int((~keep).sum())
    if boxes is not None:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
        if len(b) != len(keep):
            raise FormatError(f"{source}: {len(b)} boxes for {len(keep)} points")
        if not np.all(np.isfinite(b)):
            raise FormatError(f"{source}: boxes contain NaN or infinite values")
        boxes = b[keep].astype(np.float32)
    for key, arr in (per_head or {}).items():
        m[key] = np.asarray(arr)[keep]
    return CrowdRecord(image_id=image_id, points=pts[keep], image_path=path, boxes=boxes,
                       image_size=size, meta=m)
