"""SSR-HEF data: records of a data spec (synthetic, ShanghaiTech, VGG cells), the paper's patch sampling
(Sec. IV: 9 patches of 1/16, 4 of 1/4 and the whole image, random noise and flips at p 0.5) or plain random crops,
and the target builder (density map, multi-scale segmentation labels, count class) of each crop."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from crowdlib.data.records import CrowdRecord
from crowdlib.data.windows import window_record, window_records  # noqa: F401  (re-exported: their home before)
from crowdlib.losses.ssrhef import count_classes

__all__ = ["load_records", "window_record", "window_records", "PatchTransform", "SSRHEFTargets", "PatchSet", "targets_for", "train_dataset"]

MULTIPLE = 8  # patch sides are multiples of the network's deepest stride


# ----------------------------------------------------------------------------------------------- records
def load_records(data: Mapping[str, Any], split: str = "train") -> list[CrowdRecord]:
    """Records of a data spec (see :mod:`.config`).

    Synthetic: ``n`` scenes per preset rendered with ``seed`` (train) or ``test_seed`` (default ``seed + 1000``,
    test). ShanghaiTech: ``read_shanghaitech(root, part, split)``. VGG cells: ``read_vgg_cells(root)``, the first
    ``n_train`` images (default 100) for train, the last 100 (half, for a smaller folder) for test. ``limit`` keeps the first images.

    Raises:
        ValueError: on an unknown kind or split, a missing root, or a test seed equal to the training seed.
    """
    if split not in ("train", "test"):
        raise ValueError(f"load_records: split must be 'train' or 'test', got {split!r}")
    kind = data.get("kind")
    if kind == "synthetic":
        from crowdlib import paths
        from crowdlib.data.synthetic import SyntheticCrowds

        seed = int(data.get("seed", 1))
        if split == "test":
            seed = int(data.get("test_seed", seed + 1000))
            if seed == int(data.get("seed", 1)):
                raise ValueError(f"load_records: test_seed {seed} equals the training seed; test scenes must be new")
        recs: list[CrowdRecord] = []
        for preset in data.get("presets", ["shb_like"]):
            ds = SyntheticCrowds(preset, int(data.get("n", 12)), seed=seed, height=data.get("height"),
                                 width=data.get("width"), cache_dir=paths.cache_dir() / "synthetic")
            recs.extend(ds[i] for i in range(len(ds)))
        if data.get("window"):
            recs = window_records(recs, data["window"], seed, int(data.get("window_candidates", 4)))
    elif kind in ("shanghaitech", "vgg_cells"):
        if not data.get("root"):
            raise ValueError(f"load_records: a {kind!r} data spec needs a 'root' folder")
        if kind == "shanghaitech":
            from crowdlib.data.formats import read_shanghaitech

            recs = list(read_shanghaitech(data["root"], data.get("part", "B"), split))
        else:
            from crowdlib.data.formats import read_vgg_cells

            allrecs = read_vgg_cells(data["root"])
            n_test = min(100, len(allrecs) // 2)
            n_train = int(data.get("n_train", 100))
            if not 0 < n_train <= len(allrecs) - n_test:
                raise ValueError(f"load_records: n_train must lie in 1..{len(allrecs) - n_test}, got {n_train}")
            recs = allrecs[:n_train] if split == "train" else allrecs[len(allrecs) - n_test:]
    else:
        raise ValueError(f"load_records: unknown data kind {kind!r} (expected 'synthetic', 'shanghaitech' or "
                         f"'vgg_cells')")
    limit = data.get("limit")
    return recs[: int(limit)] if limit else recs


# ----------------------------------------------------------------------------------------------- sampling
class PatchTransform:
    """A random patch, horizontal flip and Gaussian pixel noise (a :mod:`crowdlib.data.transforms` transform).

    Args:
        fraction: the patch is ``fraction`` of the image's height and width (rounded down to multiples of 8,
            at least 8); ignored when ``crop`` is given.
        crop: a fixed ``crop x crop`` patch (a multiple of 8); smaller images are padded bottom/right with the
            ImageNet mean (0 after normalisation).
        flip_p, noise_p: probabilities of a flip and of noise; ``noise_std``: std of the noise on [0, 1] pixels.
    """

    random = True

    def __init__(self, fraction: float = 1.0, crop: int | None = None, flip_p: float = 0.5, noise_p: float = 0.5,
                 noise_std: float = 0.02) -> None:
        if crop is None and not 0 < float(fraction) <= 1:
            raise ValueError(f"PatchTransform: fraction must lie in (0, 1], got {fraction}")
        if crop is not None and (int(crop) < MULTIPLE or int(crop) % MULTIPLE):
            raise ValueError(f"PatchTransform: crop must be a positive multiple of {MULTIPLE}, got {crop}")
        for name, p in (("flip_p", flip_p), ("noise_p", noise_p)):
            if not 0 <= float(p) <= 1:
                raise ValueError(f"PatchTransform: {name} must be a probability, got {p}")
        if float(noise_std) < 0:
            raise ValueError(f"PatchTransform: noise_std must be >= 0, got {noise_std}")
        self.fraction, self.crop = float(fraction), None if crop is None else int(crop)
        self.flip_p, self.noise_p, self.noise_std = float(flip_p), float(noise_p), float(noise_std)

    def __repr__(self) -> str:
        return (f"PatchTransform(fraction={self.fraction}, crop={self.crop}, flip_p={self.flip_p}, "
                f"noise_p={self.noise_p}, noise_std={self.noise_std})")

    def patch_size(self, h: int, w: int) -> tuple[int, int]:
        """``(ph, pw)`` for an ``h x w`` image."""
        if self.crop is not None:
            return self.crop, self.crop

        def side(n: int) -> int:
            return max(MULTIPLE, int(n * self.fraction) // MULTIPLE * MULTIPLE)

        return side(h), side(w)

    def __call__(self, image: np.ndarray, points: np.ndarray, boxes: np.ndarray | None,
                 generator: torch.Generator | None = None) -> dict[str, Any]:
        from crowdlib.data.transforms import IMAGENET_MEAN, to_float_image

        g = generator if generator is not None else torch.Generator().manual_seed(0)
        img = to_float_image(image)
        pts = torch.as_tensor(np.asarray(points, np.float32).reshape(-1, 2))
        has_boxes = boxes is not None and len(np.asarray(boxes).reshape(-1, 4)) == len(pts)
        bxs = torch.as_tensor(np.asarray(boxes, np.float32).reshape(-1, 4)) if has_boxes else torch.zeros((len(pts), 4))
        u = torch.rand(2, generator=g)
        do_flip = bool(torch.rand((), generator=g).item() < self.flip_p)
        do_noise = bool(torch.rand((), generator=g).item() < self.noise_p)
        h, w = int(img.shape[1]), int(img.shape[2])
        ph, pw = self.patch_size(h, w)
        if h < ph or w < pw:  # pad bottom/right
            canvas = torch.tensor(IMAGENET_MEAN, dtype=img.dtype).view(3, 1, 1).expand(3, max(h, ph), max(w, pw)).clone()
            canvas[:, :h, :w] = img
            img, h, w = canvas, max(h, ph), max(w, pw)
        y0 = min(int(u[0].item() * (h - ph + 1)), h - ph)
        x0 = min(int(u[1].item() * (w - pw + 1)), w - pw)
        img = img[:, y0:y0 + ph, x0:x0 + pw]
        off = torch.tensor([x0, y0], dtype=torch.float32)
        pts = pts - off
        bxs = bxs - off.repeat(2)
        inside = (pts[:, 0] >= 0) & (pts[:, 0] < pw) & (pts[:, 1] >= 0) & (pts[:, 1] < ph)
        keep = torch.nonzero(inside, as_tuple=False).reshape(-1).to(torch.int64)
        pts = pts[keep]
        bxs = bxs[keep].clamp(min=0)
        bxs[:, 0::2] = bxs[:, 0::2].clamp(max=pw)
        bxs[:, 1::2] = bxs[:, 1::2].clamp(max=ph)
        if do_flip:
            img = img.flip(-1)
            if len(pts):
                pts = torch.stack([pw - pts[:, 0], pts[:, 1]], 1)
                bxs = torch.stack([pw - bxs[:, 2], bxs[:, 1], pw - bxs[:, 0], bxs[:, 3]], 1)
        if do_noise and self.noise_std > 0:
            img = (img + self.noise_std * torch.randn(img.shape, generator=g)).clamp(0, 1)
        return {"image": img.contiguous(), "points": pts.contiguous(),
                "boxes": bxs.contiguous() if has_boxes else torch.zeros((0, 4)), "keep": keep, "scale": 1.0,
                "offset": (float(x0), float(y0)), "flip": do_flip}


# ----------------------------------------------------------------------------------------------- targets
class SSRHEFTargets:
    """Target builder for :class:`crowdlib.data.datasets.CrowdDataset` (called on the transformed crop).

    Args:
        density_sigma: Gaussian sigma of the density map (or ``"adaptive"``).
        template: side of the ones template of the segmentation labels (15).
        use_seg: build ``seg2, seg4, seg8`` (``crowdlib.targets.ssr.ssr_labels``).
        num_classes: K; 0 builds no class label.
        thr: the class threshold (``crowdlib.losses.ssrhef.class_threshold`` of the training counts); needed when
            ``num_classes > 0``.
        thr_mode: ``"dataset"`` (classify the crop's count with ``thr``) or ``"area"`` (with ``thr`` times the
            crop's share of its image's area).

    Returns from ``__call__``: ``{"density": (1, H, W) float32 (unscaled), "seg2"/"seg4"/"seg8": (1, H/s, W/s)
    float32 0/1, "cls": () int64}``.
    """

    def __init__(self, density_sigma: float | str = 4.0, template: int = 15, use_seg: bool = True,
                 num_classes: int = 15, thr: float | None = None, thr_mode: str = "dataset") -> None:
        if int(num_classes) > 0 and (thr is None or not float(thr) > 0):
            raise ValueError(f"SSRHEFTargets: num_classes={num_classes} needs a positive class threshold, got {thr}")
        if thr_mode not in ("dataset", "area"):
            raise ValueError(f"SSRHEFTargets: thr_mode must be 'dataset' or 'area', got {thr_mode!r}")
        self.density_sigma = density_sigma if isinstance(density_sigma, str) else float(density_sigma)
        self.template, self.use_seg = int(template), bool(use_seg)
        self.num_classes, self.thr, self.thr_mode = int(num_classes), thr, thr_mode

    def __call__(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        from crowdlib.targets.density import density_map
        from crowdlib.targets.ssr import ssr_labels

        img = sample["image"]
        shape = (int(img.shape[-2]), int(img.shape[-1]))
        pts = np.asarray(sample["points"], dtype=np.float64).reshape(-1, 2)
        out: dict[str, Any] = {"density": torch.from_numpy(density_map(pts, shape, sigma=self.density_sigma))[None]}
        if self.use_seg:
            labels = ssr_labels(pts, shape, template=self.template, scales=(2, 4, 8))
            for s in (2, 4, 8):
                out[f"seg{s}"] = torch.from_numpy(labels[s].astype(np.float32))[None]
        if self.num_classes > 0:
            thr = float(self.thr)
            if self.thr_mode == "area":
                h0, w0 = sample.get("orig_size", shape)
                thr *= min(1.0, shape[0] * shape[1] / float(h0 * w0))
            out["cls"] = torch.as_tensor(count_classes(len(pts), thr, self.num_classes), dtype=torch.int64)
        return out


def targets_for(cfg: Mapping[str, Any], thr: float | None) -> SSRHEFTargets:
    """The :class:`SSRHEFTargets` of a config (``thr``: the class threshold of its training images)."""
    return SSRHEFTargets(cfg["density_sigma"], int(cfg["seg_template"]), bool(cfg["use_ssr"]),
                         int(cfg["num_classes"]), thr, cfg["cls_thr_mode"])


class PatchSet:
    """The paper's epoch: ``counts[k]`` patches of kind ``k`` per record (one dataset per kind), as a dataset
    indexed by ``(i, seed)`` pairs (what :func:`crowdlib.data.datasets.make_loader` feeds)."""

    def __init__(self, datasets: Sequence[Any], counts: Sequence[int]) -> None:
        if len(datasets) != len(counts) or not datasets:
            raise ValueError("PatchSet: one count per dataset, at least one dataset")
        self.datasets = list(datasets)
        n = len(self.datasets[0])
        self.table = [(k, r) for r in range(n) for k, c in enumerate(counts) for _ in range(int(c))]
        if not self.table:
            raise ValueError("PatchSet: no patches (all counts are 0 or there are no records)")

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        i, seed = (int(item[0]), int(item[1])) if isinstance(item, (tuple, list)) else (int(item), None)
        k, r = self.table[i]
        return self.datasets[k][(r, seed) if seed is not None else r]


def train_dataset(records: Sequence[CrowdRecord], cfg: Mapping[str, Any], thr: float | None) -> Any:
    """The training dataset of a config: a :class:`PatchSet` (``sampling="paper"``) or one
    :class:`~crowdlib.data.datasets.CrowdDataset` of ``crop`` random crops (``"random_crop"``)."""
    from crowdlib.data.datasets import CrowdDataset

    tg = targets_for(cfg, thr)
    kw = {"flip_p": float(cfg["flip_p"]), "noise_p": float(cfg["noise_p"]), "noise_std": float(cfg["noise_std"])}
    if cfg["sampling"] == "random_crop":
        return CrowdDataset(records, tg, PatchTransform(crop=int(cfg["crop"]), **kw))
    sets = [CrowdDataset(records, tg, PatchTransform(fraction=float(f), **kw)) for f in cfg["patch_fractions"]]
    return PatchSet(sets, [int(c) for c in cfg["patch_counts"]])
