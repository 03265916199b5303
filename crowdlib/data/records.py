"""The one record type every annotation source returns.

A :class:`CrowdRecord` is what a reader (``crowdlib.data.formats``) or the synthetic world
(``crowdlib.data.synthetic``) yields for one image: where the pixels are (a path, or an in-memory
array for synthetic scenes), the head points, and whatever else the source provides (boxes,
NWPU sigmas and area levels, per-head metadata).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class ImageReadError(ValueError):
    """An image file that cannot be read or decoded; the message names the file (``path`` holds it)."""

    def __init__(self, path: Any, reason: str) -> None:
        super().__init__(f"{path}: cannot read image ({reason})")
        self.path = path


@dataclass
class CrowdRecord:
    """One annotated image.

    Attributes:
        image_id: a stable identifier (file stem, NWPU id, or ``"<preset>-<seed>-<index>"``).
        points: ``(N, 2)`` float32 head points as ``(x, y)`` in pixels.
        image_path: path of the image on disk, or ``None`` when ``image`` holds the pixels.
        image: ``(H, W, 3)`` uint8 RGB array for in-memory (synthetic) images, else ``None``.
        boxes: optional ``(N, 4)`` float32 boxes ``(x1, y1, x2, y2)``, one per point.
        sigmas: optional ``(N, 2)`` float32 NWPU ``(sigma_s, sigma_l)`` per head.
        levels: optional ``(N,)`` int64 NWPU area level 0..5 per head.
        image_size: ``(H, W)`` when known without decoding the image.
        meta: free-form per-image and per-head metadata (``"sizes"``, ``"occlusion"``, ``"domain"``...).
    """

    image_id: str
    points: np.ndarray
    image_path: Path | None = None
    image: np.ndarray | None = None
    boxes: np.ndarray | None = None
    sigmas: np.ndarray | None = None
    levels: np.ndarray | None = None
    image_size: tuple[int, int] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=np.float32)
        if pts.size == 0:
            pts = pts.reshape(0, 2)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"{self.image_id}: points must have shape (N, 2), got {pts.shape}")
        self.points = pts
        n = len(pts)
        if self.boxes is not None:
            b = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
            if len(b) != n:
                raise ValueError(f"{self.image_id}: {len(b)} boxes for {n} points")
            self.boxes = b
        if self.sigmas is not None:
            s = np.asarray(self.sigmas, dtype=np.float32).reshape(-1, 2)
            if len(s) != n:
                raise ValueError(f"{self.image_id}: {len(s)} sigma pairs for {n} points")
            self.sigmas = s
        if self.levels is not None:
            lv = np.asarray(self.levels, dtype=np.int64).reshape(-1)
            if len(lv) != n:
                raise ValueError(f"{self.image_id}: {len(lv)} levels for {n} points")
            self.levels = lv
        if self.image is not None and self.image_size is None:
            self.image_size = (int(self.image.shape[0]), int(self.image.shape[1]))

    @property
    def count(self) -> int:
        """Number of annotated heads."""
        return int(len(self.points))

    def load_image(self) -> np.ndarray:
        """Return the image as an ``(H, W, 3)`` uint8 RGB array (decoding it from disk if needed)."""
        if self.image is not None:
            return self.image
        if self.image_path is None:
            raise ValueError(f"{self.image_id}: record has neither an image array nor an image path")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.image_path) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            raise ImageReadError(self.image_path, str(exc)) from exc
        return arr
