"""Bi-knowledge transfer data: the synthetic source and target domains, label stripping, and the source ground
truth (density maps with the kernel rule of Eq. 1, dot maps, sum pooling to R's stride)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from crowdlib.data.records import CrowdRecord

__all__ = ["domain_records", "split_source", "unlabeled", "head_sizes", "kernel_sigmas", "gt_density", "dot_map",
           "pool_density", "upsample_density"]


def domain_records(spec: Mapping[str, Any], split: str = "train") -> list[CrowdRecord]:
    """The ``n`` training (``seed``) or ``test_n`` test (``test_seed``, default ``seed + 1000``) scenes of a domain,
    cut to one ``window`` each when the spec has one (positions drawn with the split's seed, as Crowd-SDNet's
    ``data["window"]`` draws them, so that R and D train on the same windows).

    Raises:
        ValueError: on an unknown split or a test seed equal to the training seed.
    """
    from crowdlib import paths
    from crowdlib.data.synthetic import SyntheticCrowds

    if split not in ("train", "test"):
        raise ValueError(f"domain_records: split must be 'train' or 'test', got {split!r}")
    seed, n = int(spec["seed"]), int(spec["n"])
    if split == "test":
        test_seed = spec.get("test_seed")
        test_seed = seed + 1000 if test_seed is None else int(test_seed)
        if test_seed == seed:
            raise ValueError(f"domain_records: test_seed {test_seed} equals the training seed")
        seed, n = test_seed, int(spec.get("test_n", n))
    h, w = spec.get("height"), spec.get("width")
    ds = SyntheticCrowds(spec["preset"], n, seed=seed, height=None if h is None else int(h),
                         width=None if w is None else int(w), cache_dir=paths.cache_dir() / "synthetic")
    recs = [ds[i] for i in range(len(ds))]
    if spec.get("window"):
        from crowdlib.data.windows import window_records

        recs = window_records(recs, spec["window"], seed)
    return recs


def split_source(records: Sequence[CrowdRecord], cfg: Mapping[str, Any]) -> tuple[list[CrowdRecord], list[CrowdRecord]]:
    """``(train, validation)`` of the source training images: the split Crowd-SDNet's training uses
    (:func:`crowdlib.data.datasets.split_train_val` with ``val_fraction`` and ``split_seed``)."""
    from crowdlib.data.datasets import split_train_val

    if len(records) < 2:
        raise ValueError(f"split_source: need at least 2 source images, got {len(records)}")
    tr, va = split_train_val(len(records), float(cfg["val_fraction"]), int(cfg["split_seed"]))
    return [records[i] for i in tr], [records[i] for i in va]


def unlabeled(records: Sequence[CrowdRecord]) -> list[CrowdRecord]:
    """The records without any annotation (no points, boxes or metadata): what the target side of the transfer
    may see. Only the pixels and the image id are kept."""
    return [CrowdRecord(image_id=r.image_id, points=np.zeros((0, 2), np.float32), image_path=r.image_path,
                        image=r.image, image_size=r.image_size) for r in records]


def head_sizes(rec: CrowdRecord, rule: str, luda_params: Mapping[str, Any] | None = None) -> np.ndarray:
    """Head sizes of a source record: ``"luda"`` (Crowd-SDNet's initial pseudo sizes with the detector's LUDA
    parameters, :func:`crowdlib.methods.sdnet.initial_sizes`) or ``"true"`` (``meta["sizes"]``)."""
    if rule == "true":
        if "sizes" not in rec.meta:
            raise ValueError(f"head_sizes: {rec.image_id} has no true sizes (meta['sizes']); use gt_sizes='luda'")
        return np.asarray(rec.meta["sizes"], np.float32).reshape(-1)
    if rule != "luda":
        raise ValueError(f"head_sizes: rule must be 'luda' or 'true', got {rule!r}")
    from crowdlib.methods.sdnet import initial_sizes

    h = int(rec.image_size[0]) if rec.image_size is not None else int(rec.load_image().shape[0])
    return initial_sizes(rec.points, h, "luda", dict(luda_params or {}))[0]


def kernel_sigmas(sizes: np.ndarray, sigma_factor: float) -> np.ndarray:
    """Eq. 1's ``sigma_j = sigma_factor * s_j`` (at least 0.5 px)."""
    return np.maximum(np.asarray(sizes, np.float64).reshape(-1) * float(sigma_factor), 0.5)


def gt_density(points: np.ndarray, sizes: np.ndarray, shape: tuple[int, int], sigma_factor: float,
               truncate: float) -> np.ndarray:
    """A density map with the kernel rule of Eq. 1 (count preserving: each cropped kernel sums to 1)."""
    from crowdlib.targets.density import density_map

    return density_map(points, shape, kernel_sigmas(sizes, sigma_factor), truncate=float(truncate), renormalize=True)


def dot_map(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``M^D``: 1 at each head's pixel ``(floor(y), floor(x))`` (clipped into the image), 0 elsewhere."""
    h, w = int(shape[0]), int(shape[1])
    out = np.zeros((h, w), np.float32)
    p = np.asarray(points, np.float64).reshape(-1, 2)
    if len(p):
        c = np.clip(np.floor(p[:, 0]).astype(np.int64), 0, w - 1)
        r = np.clip(np.floor(p[:, 1]).astype(np.int64), 0, h - 1)
        out[r, c] = 1.0
    return out


def pool_density(density: np.ndarray | torch.Tensor, stride: int = 8) -> np.ndarray | torch.Tensor:
    """Sum pooling by ``stride`` (counts per output cell; the map is zero-padded to whole cells)."""
    t = torch.as_tensor(density).float()
    squeeze = t.dim() == 2
    if squeeze:
        t = t[None, None]
    h, w = t.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    t = F.pad(t, (0, pw, 0, ph))
    out = F.avg_pool2d(t, stride) * float(stride * stride)
    if squeeze:
        out = out[0, 0]
    return out.numpy() if isinstance(density, np.ndarray) else out


def upsample_density(cells: np.ndarray | torch.Tensor, shape: tuple[int, int], stride: int = 8) -> np.ndarray:
    """A full-resolution ``shape`` density from counts per ``stride`` cell: negative cells clamped to 0, bilinear
    upsampling, then rescaled so that the map sums to the clamped cells' total (Phi's and Eq. 8's input)."""
    t = torch.as_tensor(cells).float().clamp(min=0)
    if t.dim() == 2:
        t = t[None, None]
    h, w = int(shape[0]), int(shape[1])
    big = F.interpolate(t, size=(t.shape[-2] * stride, t.shape[-1] * stride), mode="bilinear",
                        align_corners=False)[0, 0, :h, :w]
    total, s = float(t.sum()), float(big.sum())
    return (big * (total / s) if s > 0 else big).numpy().astype(np.float32)
