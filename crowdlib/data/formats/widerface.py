"""WIDER FACE (Yang et al., CVPR 2016) box lists ``wider_face_{train,val}_bbx_gt.txt``.

Blocks of: the image path (relative to ``WIDER_<split>/images``), the face count ``n``, then ``n`` lines
``x y w h blur expression illumination invalid occlusion pose``; an image with ``n = 0`` is followed by
one all-zero line. Records: boxes ``(x, y, x + w, y + h)``, points at the box centres, and the six
attribute columns per head in ``meta`` (int64).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from crowdlib.data.formats._common import FormatError, build_record

__all__ = ["WIDER_ATTRIBUTES", "read_widerface"]

WIDER_ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")


def read_widerface(
    gt_txt: str | Path,
    images_root: str | Path | None = None,
    *,
    drop_invalid: bool = False,
    drop_outside: bool = False,
    check_images: bool = True,
    progress: bool = False,
) -> list:
    """Parse a WIDER FACE ground-truth file into records.

    Args:
        gt_txt: the ``wider_face_*_bbx_gt.txt`` file.
        images_root: folder the listed paths are relative to; ``None`` leaves ``image_path`` unset and
            checks only that coordinates are non-negative.
        drop_invalid: drop faces flagged ``invalid``.
        drop_outside: drop faces whose centre is outside the image instead of raising.
        check_images: read each image header for its size (needs ``images_root``).
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    p = Path(gt_txt)
    if not p.is_file():
        raise FormatError(f"{p}: annotation file not found")
    lines = [ln.strip() for ln in p.read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    out = []
    i = 0
    bar = tqdm(total=len(lines), desc="WIDER FACE", disable=not progress)
    while i < len(lines):
        name = lines[i]
        start = i
        if i + 1 >= len(lines):
            raise FormatError(f"{p}: line {i + 2}: missing face count after {name!r}")
        try:
            n = int(lines[i + 1])
        except ValueError as exc:
            raise FormatError(f"{p}: line {i + 2}: expected the face count of {name!r}, got {lines[i + 1]!r}") from exc
        if n < 0:
            raise FormatError(f"{p}: line {i + 2}: negative face count {n}")
        body = lines[i + 2:i + 2 + n]
        i += 2 + n
        if n == 0 and i < len(lines) and len(lines[i].split()) == 10:
            i += 1  # the all-zero placeholder line
        if len(body) != n:
            raise FormatError(f"{p}: {name!r}: expected {n} face lines, file ends after {len(body)}")
        rows = []
        for k, ln in enumerate(body):
            f = ln.split()
            if len(f) != 10:
                raise FormatError(f"{p}: line {start + 3 + k}: expected 10 fields "
                                  f"(x y w h {' '.join(WIDER_ATTRIBUTES)}), got {len(f)}")
            try:
                rows.append([float(v) for v in f])
            except ValueError as exc:
                raise FormatError(f"{p}: line {start + 3 + k}: non-numeric field ({exc})") from exc
        t = np.asarray(rows, dtype=np.float64).reshape(-1, 10)
        if np.any(t[:, 2:4] < 0):
            raise FormatError(f"{p}: {name!r}: negative box width or height")
        if drop_invalid:
            t = t[t[:, 4 + WIDER_ATTRIBUTES.index("invalid")] == 0]
        boxes = np.concatenate([t[:, :2], t[:, :2] + t[:, 2:4]], axis=1)
        centres = t[:, :2] + t[:, 2:4] / 2
        img = Path(images_root) / name if images_root is not None else None
        rec = build_record(Path(name).stem, centres, f"{p} ({name})", image_path=img,
                           drop_outside=drop_outside, boxes=boxes,
                           per_head={a: t[:, 4 + j].astype(np.int64) for j, a in enumerate(WIDER_ATTRIBUTES)},
                           meta={"source": "widerface", "file": name},
                           check_image=check_images and img is not None)
        out.append(rec)
        bar.update(i - start)
    bar.close()
    return out
