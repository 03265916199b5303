"""JHU-Crowd++ (Sindagi et al., TPAMI 2020): one ``<id>.txt`` per image with lines ``x y w h o b``
(head point, approximate head box width/height, occlusion level 1-3, blur flag 0/1); layout
``<root>/<split>/images/<id>.jpg`` and ``<root>/<split>/gt/<id>.txt``.

Records: points ``(x, y)``, boxes ``(x - w/2, y - h/2, x + w/2, y + h/2)``, ``meta["occlusion"]`` and
``meta["blur"]`` per head (int64).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crowdlib.data.formats._common import FormatError, build_record

__all__ = ["read_jhu", "read_jhu_txt", "read_numeric_table"]


def read_numeric_table(path: Path, ncols: int, what: str) -> np.ndarray:
    """Whitespace-separated numeric lines with exactly ``ncols`` fields; blank lines skipped."""
    if not path.is_file():
        raise FormatError(f"{path}: annotation file not found")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.replace(",", " ").split()
        if not fields:
            continue
        if len(fields) != ncols:
            raise FormatError(f"{path}: line {lineno}: expected {ncols} fields ({what}), got {len(fields)}")
        try:
            rows.append([float(f) for f in fields])
        except ValueError as exc:
            raise FormatError(f"{path}: line {lineno}: non-numeric field ({exc})") from exc
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, ncols)
    if not np.all(np.isfinite(arr)):
        raise FormatError(f"{path}: NaN or infinite values")
    return arr


def read_jhu_txt(
    path: str | Path,
    *,
    image_path: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
    drop_outside: bool = False,
):
    """Read one JHU-Crowd ``.txt`` into a ``CrowdRecord``."""
    p = Path(path)
    t = read_numeric_table(p, 6, "x y w h o b")
    if np.any(t[:, 2:4] < 0):
        raise FormatError(f"{p}: negative box width or height")
    xy, wh = t[:, :2], t[:, 2:4]
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    return build_record(p.stem, xy, p, image_path=image_path, image_size=image_size,
                        drop_outside=drop_outside, boxes=boxes,
                        per_head={"occlusion": t[:, 4].astype(np.int64), "blur": t[:, 5].astype(np.int64)},
                        meta={"source": "jhu"})


def read_jhu(root: str | Path, split: str = "train", *, drop_outside: bool = False,
             progress: bool = False) -> list:
    """All records of ``<root>/<split>`` (``train``, ``val`` or ``test``), sorted by id."""
    from tqdm.auto import tqdm

    d = Path(root) / split
    if not (d / "gt").is_dir():
        raise FormatError(f"{d}: expected the folders 'images' and 'gt'")
    out = []
    for gt in tqdm(sorted((d / "gt").glob("*.txt")), desc=f"JHU {split}", disable=not progress):
        out.append(read_jhu_txt(gt, image_path=d / "images" / f"{gt.stem}.jpg", drop_outside=drop_outside))
    return out
