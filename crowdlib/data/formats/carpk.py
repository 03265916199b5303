"""CARPK and PUCPR+ (Hsieh et al., ICCV 2017) box annotations: ``<id>.txt`` with lines
``x1 y1 x2 y2 cls``; layout ``<root>/Images/<id>.png|jpg``, ``<root>/Annotations/<id>.txt`` and
``<root>/ImageSets/{train,test}.txt``. Records: boxes, points at the box centres, ``meta["cls"]``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crowdlib.data.formats._common import FormatError, build_record
from crowdlib.data.formats.jhu import read_numeric_table

__all__ = ["read_carpk", "read_carpk_txt", "read_pucpr"]


def read_carpk_txt(
    path: str | Path,
    *,
    image_path: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
    drop_outside: bool = False,
):
    """Read one CARPK/PUCPR+ box file into a ``CrowdRecord``."""
    p = Path(path)
    t = read_numeric_table(p, 5, "x1 y1 x2 y2 cls")
    boxes = t[:, :4]
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise FormatError(f"{p}: boxes need x2 >= x1 and y2 >= y1")
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    return build_record(p.stem, centres, p, image_path=image_path, image_size=image_size,
                        drop_outside=drop_outside, boxes=boxes,
                        per_head={"cls": t[:, 4].astype(np.int64)}, meta={"source": "carpk"})


def read_carpk(root: str | Path, split: str = "train", *, drop_outside: bool = False,
               progress: bool = False) -> list:
    """Records listed in ``<root>/ImageSets/<split>.txt`` (works for CARPK and PUCPR+)."""
    from tqdm.auto import tqdm

    r = Path(root)
    lst = r / "ImageSets" / f"{split}.txt"
    if not lst.is_file():
        raise FormatError(f"{lst}: split list not found")
    out = []
    for i in tqdm([ln.split()[0] for ln in lst.read_text().splitlines() if ln.strip()],
                  desc=f"CARPK {split}", disable=not progress):
        img = next((r / "Images" / f"{i}{ext}" for ext in (".png", ".jpg", ".jpeg")
                    if (r / "Images" / f"{i}{ext}").is_file()), r / "Images" / f"{i}.png")
        out.append(read_carpk_txt(r / "Annotations" / f"{i}.txt", image_path=img, drop_outside=drop_outside))
    return out


read_pucpr = read_carpk
