"""UCF-QNRF (Idrees et al., ECCV 2018): ``img_0001.jpg`` with ``img_0001_ann.mat`` (key ``annPoints``,
``(N, 2)`` ``(x, y)``) side by side in ``Train/`` and ``Test/``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crowdlib.data.formats._common import FormatError, build_record, load_mat

__all__ = ["read_ucf_qnrf", "read_ucf_qnrf_mat"]


def read_ucf_qnrf_mat(
    path: str | Path,
    *,
    image_path: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
    drop_outside: bool = False,
):
    """Read one ``*_ann.mat`` into a ``CrowdRecord`` (errors as :func:`read_shanghaitech_mat`)."""
    p = Path(path)
    mat = load_mat(p)
    if "annPoints" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise FormatError(f"{p}: missing key 'annPoints' (keys: {keys})")
    pts = np.asarray(mat["annPoints"])
    image_id = p.stem[:-4] if p.stem.endswith("_ann") else p.stem
    return build_record(image_id, pts, p, image_path=image_path, image_size=image_size,
                        drop_outside=drop_outside, meta={"source": "ucf_qnrf"})


def read_ucf_qnrf(root: str | Path, split: str = "Train", *, drop_outside: bool = False,
                  progress: bool = False) -> list:
    """All records of ``<root>/<split>`` (``"Train"`` or ``"Test"``), sorted by file name."""
    from tqdm.auto import tqdm

    if split not in ("Train", "Test"):
        raise ValueError(f"split: expected 'Train' or 'Test', got {split!r}")
    d = Path(root) / split
    if not d.is_dir():
        raise FormatError(f"{d}: folder not found")
    out = []
    for ann in tqdm(sorted(d.glob("*_ann.mat")), desc=f"UCF-QNRF {split}", disable=not progress):
        img = ann.with_name(ann.stem[:-4] + ".jpg")
        out.append(read_ucf_qnrf_mat(ann, image_path=img, drop_outside=drop_outside))
    return out
