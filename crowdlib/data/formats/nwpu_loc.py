"""The NWPU-Crowd localization text format (ground truth and predictions).

One image per line, fields separated by whitespace:

- ground truth: ``id num x1 y1 sigma_s1 sigma_l1 level1 x2 y2 ...`` (5 numbers per head);
- predictions: ``id num x1 y1 x2 y2 ...`` (2 numbers per point).

``id`` is kept as the string written in the file (``"3110"``, ``"0401"``), so leading zeros survive.
Coordinates are pixels ``(x, y)``; predictions may hold floats (the reference evaluator only accepts
integers, which :func:`write_nwpu_pred` writes by default). ``sigma_s``/``sigma_l`` are the per-head
match radii of the NWPU protocol and ``level`` the head's area level 0..5.

Malformed lines raise :class:`NWPULocFormatError` (a ``ValueError``) naming the file and the line.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

from crowdlib.data.formats._common import FormatError

__all__ = [
    "NWPULocFormatError",
    "NWPUHeads",
    "NWPU_NUM_LEVELS",
    "nwpu_val_ids",
    "read_nwpu_gt",
    "read_nwpu_pred",
    "write_nwpu_gt",
    "write_nwpu_pred",
    "nwpu_gt_to_records",
]

NWPU_NUM_LEVELS = 6


class NWPULocFormatError(FormatError):
    """A malformed NWPU localization file (a ``FormatError``, hence a ``ValueError``); names the file and line."""


class NWPUHeads(NamedTuple):
    """Ground truth of one image: ``points (N, 2)`` float32 ``(x, y)``, ``sigmas (N, 2)`` float32
    ``(sigma_s, sigma_l)`` and ``levels (N,)`` int64 area levels."""

    points: np.ndarray
    sigmas: np.ndarray
    levels: np.ndarray


def nwpu_val_ids() -> list[str]:
    """Image ids the NWPU-Crowd reference evaluator scores on the validation set.

    It iterates over ``3110..3609`` but with ``3169`` replaced by ``3098`` (see REFERENCE.md), in that order.
    """
    return ["3098" if i == 3169 else str(i) for i in range(3110, 3610)]


def _parse_lines(path: Path, per_item: int) -> dict[str, tuple[int, np.ndarray]]:
    """``{id: (line number, (num, per_item) float64 values)}``; raises on malformed lines."""
    out: dict[str, tuple[int, np.ndarray]] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            tokens = line.split()
            if not tokens:
                continue
            where = f"{path}:{lineno}"
            if len(tokens) < 2:
                raise NWPULocFormatError(f"{where}: expected 'id num ...', got {line.strip()[:60]!r}")
            image_id, num_s = tokens[0], tokens[1]
            try:
                num = int(num_s)
            except ValueError:
                raise NWPULocFormatError(f"{where}: count {num_s!r} of image {image_id} is not an integer") from None
            if num < 0:
                raise NWPULocFormatError(f"{where}: negative count {num} for image {image_id}")
            if len(tokens) - 2 != per_item * num:
                raise NWPULocFormatError(
                    f"{where}: image {image_id} declares {num} entries ({per_item * num} numbers) "
                    f"but the line holds {len(tokens) - 2} numbers"
                )
            if image_id in out:
                raise NWPULocFormatError(f"{where}: duplicate image id {image_id}")
            try:
                values = np.array(tokens[2:], dtype=np.float64)
            except ValueError as exc:
                raise NWPULocFormatError(f"{where}: non-numeric value in image {image_id} ({exc})") from None
            if not np.all(np.isfinite(values)):
                raise NWPULocFormatError(f"{where}: non-finite value in image {image_id}")
            out[image_id] = (lineno, values.reshape(num, per_item))
    return out


def read_nwpu_gt(path: str | Path) -> dict[str, NWPUHeads]:
    """Read a ground-truth file ``id num x y sigma_s sigma_l level ...`` into ``{id: NWPUHeads}`` (file order).

    Raises:
        NWPULocFormatError: wrong number of values, non-numeric values, negative sigmas, non-integer levels
            or duplicate ids (message: ``file:line: problem``).
    """
    path = Path(path)
    raw = _parse_lines(path, 5)
    out: dict[str, NWPUHeads] = {}
    for image_id, (lineno, arr) in raw.items():
        lv = arr[:, 4]
        if np.any(lv != np.round(lv)) or np.any(lv < 0):
            raise NWPULocFormatError(f"{path}:{lineno}: image {image_id}: levels must be non-negative integers")
        if np.any(arr[:, 2:4] < 0):
            raise NWPULocFormatError(f"{path}:{lineno}: image {image_id}: negative sigma")
        out[image_id] = NWPUHeads(
            arr[:, 0:2].astype(np.float32), arr[:, 2:4].astype(np.float32), lv.astype(np.int64)
        )
    return out


def read_nwpu_pred(path: str | Path) -> dict[str, np.ndarray]:
    """Read a prediction file ``id num x y ...`` into ``{id: (N, 2) float32 points}`` (floats accepted)."""
    return {k: v.astype(np.float32) for k, (_, v) in _parse_lines(Path(path), 2).items()}


def _fmt(values: np.ndarray, integer: bool) -> str:
    if integer:
        return " ".join(str(int(v)) for v in np.rint(values).astype(np.int64).ravel())
    return " ".join(f"{v:.2f}" for v in values.ravel())


def write_nwpu_pred(path: str | Path, preds: Mapping[str, np.ndarray], *, integer: bool = True) -> None:
    """Write ``{id: (N, 2) points}`` as a prediction file.

    Args:
        path: output file.
        preds: points per image id, written in mapping order.
        integer: round coordinates to integers (the reference evaluator accepts nothing else); ``False`` writes
            two decimals.
    """
    with open(path, "w", encoding="utf-8") as fh:
        for image_id, pts in preds.items():
            p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
            body = _fmt(p, integer)
            fh.write(f"{image_id} {len(p)}" + (f" {body}" if body else "") + "\n")


def write_nwpu_gt(path: str | Path, gt: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
    """Write ``{id: (points, sigmas, levels)}`` as a ground-truth file (all values as integers, as NWPU does)."""
    with open(path, "w", encoding="utf-8") as fh:
        for image_id, (pts, sig, lv) in gt.items():
            p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
            s = np.asarray(sig, dtype=np.float64).reshape(-1, 2)
            lvl = np.asarray(lv, dtype=np.float64).reshape(-1, 1)
            if not (len(p) == len(s) == len(lvl)):
                raise ValueError(
                    f"write_nwpu_gt: image {image_id}: {len(p)} points, {len(s)} sigmas, {len(lvl)} levels"
                )
            body = _fmt(np.concatenate([p, s, lvl], axis=1), True)
            fh.write(f"{image_id} {len(p)}" + (f" {body}" if body else "") + "\n")


def nwpu_gt_to_records(gt: Mapping[str, NWPUHeads], ids: Iterable[str] | None = None) -> list:
    """Turn ``read_nwpu_gt`` output into :class:`crowdlib.data.records.CrowdRecord` objects (no image paths)."""
    from crowdlib.data.records import CrowdRecord

    keys = list(gt) if ids is None else list(ids)
    return [CrowdRecord(image_id=k, points=gt[k].points, sigmas=gt[k].sigmas, levels=gt[k].levels) for k in keys]
