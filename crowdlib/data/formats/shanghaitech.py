"""ShanghaiTech (Zhang et al., CVPR 2016), original layout and ``.mat`` ground truth.

Layout: ``<root>/part_A/train_data/images/IMG_1.jpg`` with ``<root>/part_A/train_data/ground-truth/
GT_IMG_1.mat``; the ``.mat`` holds ``image_info``, a 1x1 cell whose struct has the fields
``location`` (``(N, 2)`` float ``(x, y)``) and ``number`` (``N``).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from crowdlib.data.formats._common import FormatError, build_record, load_mat

__all__ = ["read_shanghaitech", "read_shanghaitech_mat"]


def _unwrap(obj: np.ndarray) -> np.ndarray:
    """Strip 1-element MATLAB cells (object arrays) until a non-object array is reached."""
    for _ in range(8):
        if not (isinstance(obj, np.ndarray) and obj.dtype == object):
            break
        if obj.size != 1:
            raise ValueError(f"a cell array of {obj.size} elements where one was expected")
        obj = obj.reshape(-1)[0]
    return np.asarray(obj)


def _locations(mat: dict, path: Path) -> tuple[np.ndarray, int | None]:
    if "image_info" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise FormatError(f"{path}: missing key 'image_info' (keys: {keys})")
    try:
        struct = _unwrap(mat["image_info"])
        names = struct.dtype.names or ()
        if "location" not in names:
            raise FormatError(f"{path}: 'image_info' struct has no field 'location' (fields: {names})")
        rec = struct.reshape(-1)[0]
        loc = _unwrap(rec["location"])
        number = _unwrap(rec["number"]) if "number" in names else None
    except (ValueError, IndexError, TypeError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{path}: 'image_info' is not ShanghaiTech's nested cell/struct ({exc})") from exc
    n = int(number.reshape(-1)[0]) if number is not None and number.size == 1 else None
    return loc, n


def read_shanghaitech_mat(
    path: str | Path,
    *,
    image_path: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
    drop_outside: bool = False,
):
    """Read one ``GT_IMG_*.mat`` into a ``CrowdRecord``.

    Args:
        path: the ``.mat`` file.
        image_path: the matching image; its header gives the size used to check the points.
        image_size: ``(H, W)`` when known (skips reading the image header).
        drop_outside: drop points outside the image (counted in ``meta["dropped"]``) instead of raising.

    Raises:
        FormatError: missing key/field, wrong shape, NaN, out-of-image points, a ``number`` field that
            disagrees with the points, or a corrupt image.
    """
    p = Path(path)
    loc, number = _locations(load_mat(p), p)
    if loc.size == 0:
        loc = loc.reshape(0, 2)
    if number is not None and loc.ndim == 2 and number != len(loc):
        raise FormatError(f"{p}: 'number' says {number} heads but 'location' holds {len(loc)}")
    image_id = p.stem[3:] if p.stem.startswith("GT_") else p.stem
    return build_record(image_id, loc, p, image_path=image_path, image_size=image_size,
                        drop_outside=drop_outside, meta={"source": "shanghaitech"})


def _num_key(p: Path) -> tuple[int, str]:
    m = re.search(r"(\d+)$", p.stem)
    return (int(m.group(1)) if m else -1, p.stem)


def read_shanghaitech(
    root: str | Path,
    part: str = "A",
    split: str = "train",
    *,
    drop_outside: bool = False,
    progress: bool = False,
) -> list:
    """All records of ``part_<part>/<split>_data`` under ``root``, sorted by image number.

    Args:
        root: the ShanghaiTech folder (holding ``part_A``/``part_B``).
        part: ``"A"`` or ``"B"``.
        split: ``"train"`` or ``"test"``.
        drop_outside: see :func:`read_shanghaitech_mat`.
        progress: show a progress bar.

    Raises:
        FormatError: missing folders, an image without ground truth, or a malformed file.
    """
    from tqdm.auto import tqdm

    if part not in ("A", "B"):
        raise ValueError(f"part: expected 'A' or 'B', got {part!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    base = Path(root) / f"part_{part}" / f"{split}_data"
    img_dir, gt_dir = base / "images", base / "ground-truth"
    if not img_dir.is_dir() or not gt_dir.is_dir():
        raise FormatError(f"{base}: expected the folders 'images' and 'ground-truth'")
    images = sorted((p for p in img_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")), key=_num_key)
    out = []
    for img in tqdm(images, desc=f"ShanghaiTech {part} {split}", disable=not progress):
        gt = gt_dir / f"GT_{img.stem}.mat"
        if not gt.is_file():
            raise FormatError(f"{gt}: ground truth missing for image {img}")
        rec = read_shanghaitech_mat(gt, image_path=img, drop_outside=drop_outside)
        rec.meta.update(part=part, split=split)
        out.append(rec)
    return out
