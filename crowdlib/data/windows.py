"""Windows of calibrated synthetic scenes: a ``height x width`` cut of a scene rendered at its preset's own size,
shared by the methods whose CPU profiles train on windows rather than on shrunken scenes (SSR-HEF, bi-knowledge
transfer, and Crowd-SDNet's ``data["window"]``)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crowdlib.data.records import CrowdRecord

__all__ = ["window_record", "window_records"]


def window_record(rec: CrowdRecord, height: int, width: int, rng: np.random.Generator,
                  candidates: int = 4) -> CrowdRecord:
    """An ``height x width`` window of a synthetic scene: ``candidates`` window positions drawn uniformly and the
    one holding the most heads kept (ties: the first), so that a window of a large scene shows its crowd rather
    than sky or facade, as the photographs of ShanghaiTech do. Points, boxes and every per-head ``meta`` array
    are cut to the heads whose point lies inside; ``meta["window"]`` records ``(x0, y0, width, height)``.

    Why windows: the synthetic presets are calibrated at the datasets' own image sizes (640 x 960 for
    ShanghaiTech A, 768 x 1024 for B), and a head's size is a fraction of the image height. Rendering a preset
    smaller shrinks its heads and packs its crowd into fewer output cells (a stride-8 cell of a 0.3x scene holds
    ~11x the people of one of the real images), which moves the HEF factor and the 15 x 15 segmentation template
    out of the paper's regime; a window keeps head sizes in pixels and people per cell as calibrated, at a
    fraction of the pixels.

    Raises:
        ValueError: when the record has no in-memory image, the window is larger than the scene, or
            ``candidates < 1``.
    """
    if rec.image is None:
        raise ValueError(f"window_record: {rec.image_id} has no in-memory image (synthetic scenes only)")
    H, W = int(rec.image.shape[0]), int(rec.image.shape[1])
    h, w, c = int(height), int(width), int(candidates)
    if not (0 < h <= H and 0 < w <= W):
        raise ValueError(f"window_record: a {h} x {w} window does not fit the {H} x {W} scene {rec.image_id}")
    if c < 1:
        raise ValueError(f"window_record: candidates must be >= 1, got {candidates}")
    pts = np.asarray(rec.points, np.float64).reshape(-1, 2)
    ys, xs = rng.integers(0, H - h + 1, size=c), rng.integers(0, W - w + 1, size=c)
    inside = [(pts[:, 0] >= x) & (pts[:, 0] < x + w) & (pts[:, 1] >= y) & (pts[:, 1] < y + h) for y, x in zip(ys, xs)]
    k = int(np.argmax([m.sum() for m in inside]))
    y0, x0, keep = int(ys[k]), int(xs[k]), inside[k]
    off = np.array([x0, y0], np.float32)
    n = len(pts)
    meta = {}
    for key, v in rec.meta.items():
        if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == n and key != "distractors":
            v = v[keep]
            if key == "centers":
                v = v - off.astype(v.dtype)
        meta[key] = v
    meta.pop("distractors", None)
    meta["window"] = (x0, y0, w, h)
    boxes = None
    if rec.boxes is not None:
        boxes = np.asarray(rec.boxes, np.float32)[keep] - np.tile(off, 2)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    return CrowdRecord(image_id=f"{rec.image_id}-w{x0}_{y0}", points=(pts[keep] - off).astype(np.float32),
                       image=np.ascontiguousarray(rec.image[y0:y0 + h, x0:x0 + w]), boxes=boxes, image_size=(h, w),
                       meta=meta)


def window_records(records: Sequence[CrowdRecord], window: Sequence[int], seed: int,
                   candidates: int = 4) -> list[CrowdRecord]:
    """:func:`window_record` of each record, ``window = (height, width)``, positions drawn from one generator
    seeded with ``seed`` (the scenes' own seed, so a training set and its test set draw differently)."""
    if len(window) != 2:
        raise ValueError(f"window_records: window must be (height, width), got {window!r}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    return [window_record(r, int(window[0]), int(window[1]), rng, candidates) for r in records]
