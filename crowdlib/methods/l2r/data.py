"""L2R data: labelled records (synthetic, ShanghaiTech), the unlabeled pool (images only: its annotations are dropped
when read), the labelled crops and density targets of the counting loss, the nests of the ranking loss, and the
whole-image tensors of evaluation.

Every image is held as a ``(3, H, W)`` uint8 tensor, downscaled when read so that its short side is at most
``load_side``; crops are cut with :func:`torchvision.ops.roi_align` (bilinear, exact float boxes, so that a nest's
crops keep their containment to the sub-pixel) and resized to ``input_size`` x ``input_size``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from crowdlib.targets.ranking import crop_counts, nested_crops

__all__ = ["LabelledImage", "UnlabeledImage", "load_records", "load_labelled", "load_pool", "image_u8",
           "crop_tensors", "count_target", "sample_count_crops", "sample_nests", "nest_counts", "eval_tensor",
           "STRIDE"]

STRIDE = 16


@dataclass
class LabelledImage:
    """An annotated image as training and evaluation use it: ``image`` ``(3, H, W)`` uint8 and ``points`` ``(N, 2)``
    float32 ``(x, y)`` in its pixels (after the read-time downscale); ``count`` the annotated heads."""

    image_id: str
    image: torch.Tensor
    points: np.ndarray

    @property
    def count(self) -> int:
        return int(len(self.points))


@dataclass
class UnlabeledImage:
    """An image of the unlabeled pool: pixels only, by construction no annotation."""

    image_id: str
    image: torch.Tensor


# ----------------------------------------------------------------------------------------------- reading
def load_records(spec: Mapping[str, Any], split: str = "train") -> list:
    """:class:`~crowdlib.data.records.CrowdRecord` s of a data spec: ``synthetic`` (``n`` scenes per preset of
    ``seed``; ``split="test"`` renders ``test_seed``), ``shanghaitech`` (``root``, ``part``, ``split``) or
    ``adipocyte`` (``root``: the folder holding ``images/`` and ``annotations/``; train only). ``limit`` keeps the
    first images.

    Raises:
        ValueError: on an unknown kind or split, a missing root, or a synthetic test seed equal to the training seed.
    """
    if split not in ("train", "test"):
        raise ValueError(f"load_records: split must be 'train' or 'test', got {split!r}")
    kind = spec.get("kind")
    if kind == "synthetic":
        from crowdlib import paths
        from crowdlib.data.synthetic import SyntheticCrowds

        seed = int(spec.get("seed", 1))
        if split == "test":
            if spec.get("test_seed") is None:
                raise ValueError("load_records: synthetic test scenes need a 'test_seed'")
            seed = int(spec["test_seed"])
            if seed == int(spec.get("seed", 1)):
                raise ValueError(f"load_records: test_seed {seed} equals the training seed; test scenes must be new")
        recs: list = []
        for preset in spec.get("presets", ["shb_like"]):
            ds = SyntheticCrowds(preset, int(spec.get("n", 12)), seed=seed, height=spec.get("height"),
                                 width=spec.get("width"), cache_dir=paths.cache_dir() / "synthetic")
            recs.extend(ds[i] for i in range(len(ds)))
    elif kind in ("shanghaitech", "adipocyte"):
        if not spec.get("root"):
            raise ValueError(f"load_records: a {kind!r} data spec needs a 'root' folder")
        if kind == "shanghaitech":
            from crowdlib.data.formats import read_shanghaitech

            recs = list(read_shanghaitech(spec["root"], spec.get("part", "B"), split))
        else:
            if split != "train":
                raise ValueError("load_records: the adipocyte images have no test split here")
            from crowdlib.data.formats.cells import read_adipocyte

            recs = list(read_adipocyte(spec["root"]))
    else:
        raise ValueError(f"load_records: unknown data kind {kind!r} (expected 'synthetic', 'shanghaitech' or "
                         f"'adipocyte')")
    limit = spec.get("limit")
    return recs[: int(limit)] if limit else recs


def image_u8(image: np.ndarray, load_side: int | None = None) -> tuple[torch.Tensor, float]:
    """An ``(H, W, 3)`` uint8 array as a ``(3, H', W')`` uint8 tensor, downscaled (bilinear, antialiased) so that
    its short side is at most ``load_side``; returns the tensor and the scale applied to coordinates."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image_u8: expected an (H, W, 3) array, got shape {arr.shape}")
    x = torch.from_numpy(np.array(arr, dtype=np.uint8, copy=True)).permute(2, 0, 1)
    h, w = arr.shape[:2]
    if load_side is None or min(h, w) <= int(load_side):
        return x.contiguous(), 1.0
    s = int(load_side) / min(h, w)
    size = (max(1, round(h * s)), max(1, round(w * s)))
    y = F.interpolate(x[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    return y.round().clamp(0, 255).to(torch.uint8), size[0] / h


def load_labelled(records: Sequence[Any], load_side: int | None = None) -> list[LabelledImage]:
    """:class:`LabelledImage` s of records (points scaled with their image)."""
    out = []
    for rec in records:
        img, s = image_u8(rec.load_image(), load_side)
        out.append(LabelledImage(rec.image_id, img, (np.asarray(rec.points, np.float32) * s).astype(np.float32)))
    return out


def load_pool(specs: Sequence[Mapping[str, Any]], load_side: int | None = None) -> list[UnlabeledImage]:
    """The unlabeled pool: every training image of ``specs``, pixels only. Annotations are dropped here, at the
    read, so that no label of a pool image can reach a loss (each spec is read with ``split="train"``)."""
    out: list[UnlabeledImage] = []
    for spec in specs:
        for rec in load_records(spec, "train"):
            img, _ = image_u8(rec.load_image(), load_side)
            out.append(UnlabeledImage(f"pool:{rec.image_id}", img))
    return out


# ----------------------------------------------------------------------------------------------- crops
def crop_tensors(image: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
    """``(n, 3, size, size)`` ImageNet-normalised crops of a ``(3, H, W)`` uint8 image at float ``(x1, y1, x2, y2)``
    boxes (bilinear :func:`torchvision.ops.roi_align`, 2 x 2 samples per output pixel)."""
    from torchvision.ops import roi_align

    from crowdlib.data.datasets import normalize

    b = torch.as_tensor(np.asarray(boxes, np.float32).reshape(-1, 4))
    rois = torch.cat([torch.zeros(len(b), 1), b], dim=1)
    x = image[None].float() / 255.0
    out = roi_align(x, rois, output_size=(int(size), int(size)), spatial_scale=1.0, sampling_ratio=2, aligned=True)
    return normalize(out)


def count_target(points: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """The ``(size/16, size/16)`` float32 target of a crop's points (in crop pixels): a Gaussian of ``sigma`` px per
    head (count-preserving at the border) sum-pooled over 16 x 16 cells, or with ``sigma = 0`` the heads per cell."""
    g = int(size) // STRIDE
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if float(sigma) <= 0 or len(pts) == 0:
        cells = np.clip((pts // STRIDE).astype(np.int64), 0, g - 1)
        out = np.zeros((g, g), np.float64)
        np.add.at(out, (cells[:, 1], cells[:, 0]), 1.0)
        return out.astype(np.float32)
    from crowdlib.targets.density import density_map

    d = density_map(pts, (int(size), int(size)), float(sigma))
    return d.reshape(g, STRIDE, g, STRIDE).sum(axis=(1, 3)).astype(np.float32)


def sample_count_crops(images: Sequence[LabelledImage], idx: Sequence[int], cfg: Mapping[str, Any],
                       rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One labelled crop per index: a square of side ``crop_range`` x the short side at a uniform position, resized
    to ``input_size``, flipped with ``flip_p``; returns images ``(B, 3, S, S)`` and targets ``(B, 1, S/16, S/16)``."""
    size, (lo, hi) = int(cfg["input_size"]), (float(x) for x in cfg["crop_range"])
    xs, ys = [], []
    for i in idx:
        im = images[int(i)]
        h, w = int(im.image.shape[1]), int(im.image.shape[2])
        side = rng.uniform(lo, hi) * min(h, w)
        x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        crop = crop_tensors(im.image, np.array([[x0, y0, x0 + side, y0 + side]]), size)[0]
        p = im.points
        keep = (p[:, 0] >= x0) & (p[:, 0] < x0 + side) & (p[:, 1] >= y0) & (p[:, 1] < y0 + side)
        q = (p[keep] - np.array([x0, y0], np.float32)) * (size / side)
        if rng.random() < float(cfg["flip_p"]):
            crop = crop.flip(-1)
            q = q.copy()
            q[:, 0] = size - q[:, 0]
            q[:, 0] = np.minimum(q[:, 0], np.nextafter(size, 0))
        xs.append(crop)
        ys.append(torch.from_numpy(count_target(q, size, float(cfg["density_sigma"]))))
    return torch.stack(xs), torch.stack(ys)[:, None]


def sample_nests(pool: Sequence[Any], idx: Sequence[int], cfg: Mapping[str, Any],
                 rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
    """One nest per index into ``pool`` (:class:`UnlabeledImage` s, or any object with an ``image`` tensor): the
    ``nest_k + 1`` crops of :func:`crowdlib.targets.ranking.nested_crops` (largest first, random anchor), resized
    to ``input_size`` and flipped together with ``flip_p``. Returns ``((n * (k + 1), 3, S, S), boxes (n, k + 1, 4))``."""
    size, n = int(cfg["input_size"]), int(cfg["nest_k"]) + 1
    xs, boxes = [], []
    for i in idx:
        im = pool[int(i)].image
        b = nested_crops((int(im.shape[1]), int(im.shape[2])), n, float(cfg["nest_scale"]), rng,
                         anchor_region=float(cfg["anchor_region"]))
        crops = crop_tensors(im, b, size)
        if rng.random() < float(cfg["flip_p"]):
            crops = crops.flip(-1)
        xs.append(crops)
        boxes.append(b)
    return torch.cat(xs), np.stack(boxes)


def nest_counts(image: LabelledImage, boxes: np.ndarray) -> np.ndarray:
    """True head counts of a labelled image's nest crops (for scoring held-out nests only)."""
    return crop_counts(image.points, boxes)


def eval_tensor(image: torch.Tensor, test_side: int) -> torch.Tensor:
    """A whole ``(3, H, W)`` uint8 image resized (antialiased bilinear) so that its short side is ``test_side``,
    normalised and padded at the bottom/right with zeros (the ImageNet mean) to multiples of 16: ``(1, 3, H', W')``."""
    from crowdlib.data.datasets import normalize

    h, w = int(image.shape[1]), int(image.shape[2])
    s = int(test_side) / min(h, w)
    size = (max(1, round(h * s)), max(1, round(w * s)))
    x = image[None].float() / 255.0
    if size != (h, w):
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    x = normalize(x)
    ph, pw = (-size[0]) % STRIDE, (-size[1]) % STRIDE
    return F.pad(x, (0, pw, 0, ph)) if (ph or pw) else x
