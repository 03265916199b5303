"""NWPU-Crowd (Wang et al., TPAMI 2020) per-image JSON: ``{"img_id", "human_num", "points": [[x, y], ...],
"boxes": [[x1, y1, x2, y2], ...]}``; layout ``<root>/images/0001.jpg``, ``<root>/jsons/0001.json`` and
the split lists ``<root>/train.txt``, ``val.txt`` (first token of each line is the id).

Records carry the boxes and, derived from them, the NWPU ``sigmas`` and area ``levels``
(:func:`crowdlib.targets.nwpu_sigmas_levels`).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from crowdlib.data.formats._common import FormatError, build_record

__all__ = ["read_nwpu_crowd", "read_nwpu_json"]


def read_nwpu_json(
    path: str | Path,
    *,
    image_path: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
    drop_outside: bool = False,
):
    """Read one NWPU-Crowd JSON into a ``CrowdRecord`` with boxes, sigmas and levels.

    Raises:
        FormatError: invalid JSON, missing ``points``, a ``human_num`` or box count that disagrees
            with the points, NaN, out-of-image points (unless ``drop_outside``), a corrupt image.
    """
    from crowdlib.targets.instance import nwpu_sigmas_levels

    p = Path(path)
    if not p.is_file():
        raise FormatError(f"{p}: annotation file not found")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"{p}: invalid JSON ({exc})") from exc
    if not isinstance(data, dict) or "points" not in data:
        raise FormatError(f"{p}: missing key 'points'")
    pts = data["points"]
    n = len(pts) if isinstance(pts, list) else -1
    if "human_num" in data and int(data["human_num"]) != n:
        raise FormatError(f"{p}: 'human_num' says {data['human_num']} heads but 'points' holds {n}")
    boxes = data.get("boxes")
    if boxes is not None and len(boxes) == 0 and n == 0:
        boxes = np.zeros((0, 4))
    if boxes is not None:
        b = np.asarray(boxes, dtype=np.float64)
        if b.size and (b.ndim != 2 or b.shape[1] != 4):
            raise FormatError(f"{p}: 'boxes' must have shape (N, 4), got {b.shape}")
        boxes = b
    image_id = Path(str(data.get("img_id", p.stem))).stem
    rec = build_record(image_id, pts, p, image_path=image_path, image_size=image_size,
                       drop_outside=drop_outside, boxes=boxes, meta={"source": "nwpu"})
    if rec.boxes is not None:
        if np.any(rec.boxes[:, 2] < rec.boxes[:, 0]) or np.any(rec.boxes[:, 3] < rec.boxes[:, 1]):
            raise FormatError(f"{p}: boxes need x2 >= x1 and y2 >= y1")
        sig, lev = nwpu_sigmas_levels(rec.boxes)
        rec = dataclasses.replace(rec, sigmas=sig, levels=lev)
    return rec


def read_nwpu_crowd(root: str | Path, split: str | None = None, *, drop_outside: bool = False,
                    progress: bool = False) -> list:
    """Records of ``<root>`` for the ids in ``<root>/<split>.txt``, or every JSON when ``split`` is None."""
    from tqdm.auto import tqdm

    r = Path(root)
    if split is None:
        ids = sorted(p.stem for p in (r / "jsons").glob("*.json"))
    else:
        lst = r / f"{split}.txt"
        if not lst.is_file():
            raise FormatError(f"{lst}: split list not found")
        ids = [line.split()[0] for line in lst.read_text().splitlines() if line.strip()]
    out = []
    for i in tqdm(ids, desc=f"NWPU {split or 'all'}", disable=not progress):
        out.append(read_nwpu_json(r / "jsons" / f"{i}.json", image_path=r / "images" / f"{i}.jpg",
                                  drop_outside=drop_outside))
    return out
