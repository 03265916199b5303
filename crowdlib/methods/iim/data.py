"""IIM data: records of a data spec, the instance / density / dot-map target builder, and NWPU ground truth for
scoring (the record's own sigmas and levels, or those computed from its true boxes)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from crowdlib.data.records import CrowdRecord
from crowdlib.models.baselines import cruciform_map

__all__ = ["load_records", "shb_test_records", "IIMTargets", "targets_for", "gt_for_scoring"]


# ----------------------------------------------------------------------------------------------- data
def load_records(data: Mapping[str, Any], split: str = "train") -> list[CrowdRecord]:
    """Records of a data spec.

    Synthetic: ``n`` scenes of each preset rendered with ``seed`` (train) or, for ``split="test"``, with
    ``test_seed`` when the spec has one and ``seed + 1000`` otherwise, so that train and test never share a scene.
    ShanghaiTech: ``read_shanghaitech(root, part, split)``.

    Raises:
        ValueError: on an unknown data kind or split.
    """
    kind = data.get("kind")
    if split not in ("train", "test"):
        raise ValueError(f"load_records: split must be 'train' or 'test', got {split!r}")
    if kind == "synthetic":
        from crowdlib import paths
        from crowdlib.data.synthetic import SyntheticCrowds

        seed = int(data.get("seed", 1))
        if split == "test":
            seed = int(data.get("test_seed", seed + 1000))
            if seed == int(data.get("seed", 1)):
                raise ValueError(f"load_records: test_seed {seed} equals the training seed; test scenes must be new")
        recs: list[CrowdRecord] = []
        for preset in data.get("presets", ["crowd_a"]):
            ds = SyntheticCrowds(preset, int(data.get("n", 60)), seed=seed, height=data.get("height"),
                                 width=data.get("width"), cache_dir=paths.cache_dir() / "synthetic")
            recs.extend(ds[i] for i in range(len(ds)))
        return recs
    if kind == "shanghaitech":
        from crowdlib.data.formats import read_shanghaitech

        return list(read_shanghaitech(data["root"], data.get("part", "B"), split))
    raise ValueError(f"load_records: unknown data kind {kind!r} (expected 'synthetic' or 'shanghaitech')")


class IIMTargets:
    """Target builder for :class:`crowdlib.data.datasets.CrowdDataset` (called on the transformed sample).

    Args:
        kind: ``"instance"``, ``"density"`` or ``"dotmap"``.
        min_half, max_half: instance-map half-size clamp (IIM: 3 and 25 px).
        point_size: square head size (px at the record's scale) used when the sample has no boxes.
        density_sigma: Gaussian sigma of the density map.
        dot_radius: arm length of the dot-map crosses.

    Returns from ``__call__``: ``{kind: (1, H, W) float32 tensor}``.
    """

    def __init__(self, kind: str = "instance", min_half: float = 3.0, max_half: float = 25.0, point_size: float = 16.0,
                 density_sigma: float = 4.0, dot_radius: int = 2) -> None:
        if kind not in ("instance", "density", "dotmap"):
            raise ValueError(f"IIMTargets: kind must be 'instance', 'density' or 'dotmap', got {kind!r}")
        self.kind = kind
        self.min_half = float(min_half)
        self.max_half = float(max_half)
        self.point_size = float(point_size)
        self.density_sigma = float(density_sigma)
        self.dot_radius = int(dot_radius)

    def __call__(self, sample: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        img = sample["image"]
        shape = (int(img.shape[-2]), int(img.shape[-1]))
        pts = np.asarray(sample["points"], dtype=np.float64).reshape(-1, 2)
        boxes = sample.get("boxes")
        boxes = None if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if self.kind == "instance":
            from crowdlib.targets.instance import instance_map_from_boxes, instance_map_from_points

            if boxes is not None and len(boxes) == len(pts) and (len(pts) == 0 or boxes.any()):
                m = instance_map_from_boxes(pts, boxes, shape, min_half=self.min_half, max_half=self.max_half)
            else:
                size = self.point_size * float(sample.get("scale", 1.0))
                m = instance_map_from_points(pts, size, shape, min_half=self.min_half, max_half=self.max_half)
        elif self.kind == "density":
            from crowdlib.targets.density import density_map

            m = density_map(pts, shape, sigma=self.density_sigma)
        else:
            m = cruciform_map(pts, shape, radius=self.dot_radius)
        return {self.kind: torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None]}


def _target_kind(cfg: Mapping[str, Any]) -> str:
    return {"iim": "instance", "iim_density": "density", "iim_dotmap": "dotmap"}[cfg["model"]]


def targets_for(cfg: Mapping[str, Any]) -> IIMTargets:
    """The :class:`IIMTargets` of a config."""
    return IIMTargets(_target_kind(cfg), cfg["inst_min_half"], cfg["inst_max_half"], cfg["point_size"],
                      cfg["density_sigma"], cfg["dot_radius"])


def gt_for_scoring(rec: CrowdRecord, fallback_size: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(points, sigmas (N, 2), levels)`` for the NWPU protocol: the record's own sigmas/levels when present
    (NWPU / ShanghaiTech localization files), else computed from its true boxes (synthetic scenes), else, when
    ``fallback_size`` is given, from square boxes of that size (used only for model selection on points-only
    validation images).

    Raises:
        ValueError: when the record has neither sigmas nor boxes and no ``fallback_size`` is given.
    """
    from crowdlib.targets.instance import nwpu_sigmas_levels

    if rec.sigmas is not None:
        lv = rec.levels if rec.levels is not None else np.full(rec.count, -1, np.int64)
        return rec.points, rec.sigmas, lv
    if rec.boxes is not None:
        s, lv = nwpu_sigmas_levels(rec.boxes)
        return rec.points, s, lv
    if fallback_size is not None:
        from crowdlib.targets.pseudo_sizes import boxes_from_sizes

        boxes = boxes_from_sizes(rec.points, float(fallback_size)) if rec.count else np.zeros((0, 4))
        s, lv = nwpu_sigmas_levels(boxes)
        return rec.points, s, lv
    raise ValueError(f"{rec.image_id}: needs NWPU sigmas or head boxes to be scored with the NWPU protocol")



def shb_test_records(root: Any, loc_file: Any, progress: bool = False) -> list[CrowdRecord]:
    """ShanghaiTech Part B test records whose heads, NWPU sigmas and levels come from the localization file
    ``SHHB_test_gt_loc.txt`` (ids ``0401``..: image ``IMG_k`` is id ``400 + k``), for scoring with sigma_l.

    Raises:
        ValueError: when an image has no line in the localization file.
    """
    from crowdlib.data.formats import read_nwpu_gt, read_shanghaitech

    recs = read_shanghaitech(root, "B", "test", progress=progress)
    gt = read_nwpu_gt(loc_file)
    out = []
    for r in recs:
        num = int(str(r.image_id).split("_")[-1])
        key = f"{400 + num:04d}"
        if key not in gt:
            raise ValueError(f"{loc_file}: no line for {r.image_id} (expected id {key})")
        g = gt[key]
        out.append(CrowdRecord(image_id=r.image_id, points=g.points, image_path=r.image_path, sigmas=g.sigmas,
                               levels=g.levels, image_size=r.image_size, meta={"loc_id": key}))
    return out
