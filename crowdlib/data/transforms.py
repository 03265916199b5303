"""Augmentations that move head points and boxes together with the image.

A transform is called as ``transform(image, points, boxes, generator)`` with ``image`` an ``(H, W, 3)`` uint8
array, ``points`` ``(N, 2)`` and ``boxes`` ``(N, 4)`` float arrays and a seeded ``torch.Generator`` (the only
source of randomness, so a seeded loader is deterministic). It returns a dict with

* ``"image"``: ``(3, H', W')`` float32 tensor in ``[0, 1]`` (not yet normalised),
* ``"points"`` ``(K, 2)`` and ``"boxes"`` ``(K, 4)`` float32 tensors of the heads kept,
* the augmentation record: ``"keep"`` ``(K,)`` int64 indices of the kept source points, ``"scale"`` (float,
  the resize factor), ``"offset"`` ``(x0, y0)`` (crop origin in the scaled image), ``"flip"`` (bool).

Coordinates follow the pixel-edge convention of :mod:`crowdlib.data.synthetic`: pixel ``(r, c)`` covers
``[c, c+1) x [r, r+1)``. Resizing by ``s`` (``align_corners=False`` sampling at exactly that scale) maps
``x -> s x``; cropping at ``(x0, y0)`` maps ``x -> x - x0``; flipping an output of width ``W'`` maps
``x -> W' - x``. :func:`unmap_points` inverts the chain exactly.

torchvision 0.26 has no key-point ``tv_tensor``, so points are moved here with the same parameters that
``torchvision.transforms.v2.functional`` applies to the image and to ``tv_tensors.BoundingBoxes``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as nnf
import torchvision.transforms.v2.functional as F
from torchvision import tv_tensors

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_float_image(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 array -> ``(3, H, W)`` float32 tensor in ``[0, 1]``."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image: expected an (H, W, 3) array, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:  # cached / memory-mapped images: torch warns on read-only buffers
        arr = arr.copy()
    t = torch.from_numpy(arr).permute(2, 0, 1)
    if t.dtype == torch.uint8:
        return t.float().div_(255.0)
    return t.float()


def _as_tensor(a: np.ndarray | torch.Tensor | None, cols: int) -> torch.Tensor:
    if a is None:
        return torch.zeros((0, cols), dtype=torch.float32)
    t = torch.as_tensor(np.asarray(a, dtype=np.float32) if not torch.is_tensor(a) else a, dtype=torch.float32)
    return t.reshape(-1, cols)


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return float(lo + (hi - lo) * torch.rand((), generator=g).item())


def unmap_points(points: torch.Tensor | np.ndarray, sample: dict[str, Any]) -> np.ndarray:
    """Map ``(K, 2)`` points from a transformed sample's frame back to the original image.

    Uses the sample's augmentation record: undo the flip (width of ``sample["image"]``), add the crop
    ``offset`` and divide by ``scale``.
    """
    p = np.asarray(points.detach().cpu() if torch.is_tensor(points) else points, np.float64).reshape(-1, 2).copy()
    width = int(sample["image"].shape[-1])
    if bool(sample.get("flip", False)):
        p[:, 0] = width - p[:, 0]
    off = np.asarray(sample.get("offset", (0.0, 0.0)), np.float64).reshape(2)
    p = (p + off) / float(sample.get("scale", 1.0))
    return p


def unmap_boxes(boxes: torch.Tensor | np.ndarray, sample: dict[str, Any]) -> np.ndarray:
    """Map ``(K, 4)`` boxes from a transformed sample's frame back to the original image."""
    b = np.asarray(boxes.detach().cpu() if torch.is_tensor(boxes) else boxes, np.float64).reshape(-1, 4)
    p1 = unmap_points(b[:, :2], sample)
    p2 = unmap_points(b[:, 2:], sample)
    return np.concatenate([np.minimum(p1, p2), np.maximum(p1, p2)], 1)


class EvalTransform:
    """No geometric or colour change: tensor conversion only (``scale=1``, ``offset=(0, 0)``, no flip)."""

    random = False

    def __call__(self, image: np.ndarray, points: np.ndarray, boxes: np.ndarray | None,
                 generator: torch.Generator | None = None) -> dict[str, Any]:
        pts = _as_tensor(points, 2)
        return {"image": to_float_image(image), "points": pts, "boxes": _as_tensor(boxes, 4) if boxes is not None
                else torch.zeros((0, 4)), "keep": torch.arange(len(pts), dtype=torch.int64), "scale": 1.0,
                "offset": (0.0, 0.0), "flip": False}

    def __repr__(self) -> str:
        return "EvalTransform()"


class TrainTransform:
    """Random scale, random crop (padding small images), horizontal flip, colour jitter and grayscale.

    Args:
        crop_size: output ``(height, width)`` or a single int; ``None`` keeps the scaled image whole.
        scale_range: the resize factor is uniform in this range (``(1, 1)`` disables resizing).
        flip: apply a horizontal flip with probability 0.5.
        color_jitter: brightness, contrast and saturation factors uniform in ``[1 - j, 1 + j]`` and a hue
            shift uniform in ``[-j / 4, j / 4]`` (0 disables).
        grayscale_p: probability of converting to 3-channel grayscale.
        pad_value: fill for padding, per channel in ``[0, 1]`` (default: the ImageNet mean, i.e. 0 after
            normalisation).

    Padding is added at the bottom and right, so the crop origin ``offset`` is never negative. Points that
    fall outside the crop are dropped; ``keep`` lists the surviving source indices. Boxes follow their
    points (kept with them) and are clipped to the crop.
    """

    random = True

    def __init__(self, crop_size: int | tuple[int, int] | None, scale_range: tuple[float, float] = (0.8, 1.2),
                 flip: bool = True, color_jitter: float = 0.2, grayscale_p: float = 0.1,
                 pad_value: tuple[float, float, float] = IMAGENET_MEAN) -> None:
        if crop_size is not None:
            crop_size = (int(crop_size), int(crop_size)) if np.isscalar(crop_size) else tuple(int(c) for c in crop_size)
            if len(crop_size) != 2 or min(crop_size) < 1:
                raise ValueError(f"crop_size: expected a positive int or (h, w), got {crop_size}")
        lo, hi = float(scale_range[0]), float(scale_range[1])
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range: expected 0 < low <= high, got {scale_range}")
        if not 0 <= color_jitter < 1:
            raise ValueError(f"color_jitter: expected a value in [0, 1), got {color_jitter}")
        if not 0 <= grayscale_p <= 1:
            raise ValueError(f"grayscale_p: expected a probability, got {grayscale_p}")
        self.crop_size = crop_size
        self.scale_range = (lo, hi)
        self.flip = bool(flip)
        self.color_jitter = float(color_jitter)
        self.grayscale_p = float(grayscale_p)
        self.pad_value = tuple(float(v) for v in pad_value)

    def __repr__(self) -> str:
        return (f"TrainTransform(crop_size={self.crop_size}, scale_range={self.scale_range}, flip={self.flip}, "
                f"color_jitter={self.color_jitter}, grayscale_p={self.grayscale_p})")

    def __call__(self, image: np.ndarray, points: np.ndarray, boxes: np.ndarray | None,
                 generator: torch.Generator | None = None) -> dict[str, Any]:
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        img = to_float_image(image)
        pts = _as_tensor(points, 2)
        has_boxes = boxes is not None
        bxs = _as_tensor(boxes, 4) if has_boxes else torch.zeros((len(pts), 4))
        if len(bxs) != len(pts):
            raise ValueError(f"boxes: {len(bxs)} boxes for {len(pts)} points")
        # all random draws first, in a fixed order
        s = _uniform(g, *self.scale_range)
        u_crop = torch.rand(2, generator=g)
        do_flip = self.flip and bool(torch.rand((), generator=g).item() < 0.5)
        j = self.color_jitter
        jit = torch.rand(4, generator=g) * 2 - 1
        perm = torch.randperm(4, generator=g)
        do_gray = bool(torch.rand((), generator=g).item() < self.grayscale_p)
        # 1. resize by exactly s (align_corners=False sampling), so x -> s * x
        if s != 1.0:
            img = nnf.interpolate(img[None], scale_factor=s, mode="bilinear", align_corners=False,
                                  recompute_scale_factor=False, antialias=s < 1.0)[0].clamp_(0, 1)
            pts = pts * s
            bxs = bxs * s
        h, w = int(img.shape[1]), int(img.shape[2])
        # 2. pad (bottom/right) and crop
        x0 = y0 = 0
        if self.crop_size is not None:
            ch, cw = self.crop_size
            if h < ch or w < cw:
                ph, pw = max(ch - h, 0), max(cw - w, 0)
                fill = torch.tensor(self.pad_value, dtype=img.dtype).view(3, 1, 1)
                canvas = fill.expand(3, h + ph, w + pw).clone()
                canvas[:, :h, :w] = img
                img = canvas
                h, w = h + ph, w + pw
            y0 = int(u_crop[0].item() * (h - ch + 1)) if h > ch else 0
            x0 = int(u_crop[1].item() * (w - cw + 1)) if w > cw else 0
            y0, x0 = min(y0, h - ch), min(x0, w - cw)
            img = F.crop(img, y0, x0, ch, cw)
            bb = tv_tensors.BoundingBoxes(bxs, format="XYXY", canvas_size=(h, w))
            bb = F.crop(bb, y0, x0, ch, cw)  # shifts and clamps to the crop
            bxs = bb.as_subclass(torch.Tensor)
            pts = pts - torch.tensor([x0, y0], dtype=torch.float32)
            h, w = ch, cw
        inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
        keep = torch.nonzero(inside, as_tuple=False).reshape(-1).to(torch.int64)
        pts, bxs = pts[keep], bxs[keep]
        # 3. horizontal flip: x -> w - x
        if do_flip:
            img = F.horizontal_flip(img)
            bb = F.horizontal_flip(tv_tensors.BoundingBoxes(bxs, format="XYXY", canvas_size=(h, w)))
            bxs = bb.as_subclass(torch.Tensor)
            pts = torch.stack([w - pts[:, 0], pts[:, 1]], 1) if len(pts) else pts
        # 4. colour jitter in a random order, then grayscale
        if j > 0:
            factors = {0: 1 + j * jit[0].item(), 1: 1 + j * jit[1].item(), 2: 1 + j * jit[2].item(),
                       3: 0.25 * j * jit[3].item()}
            for k in perm.tolist():
                if k == 0:
                    img = F.adjust_brightness(img, factors[0])
                elif k == 1:
                    img = F.adjust_contrast(img, factors[1])
                elif k == 2:
                    img = F.adjust_saturation(img, factors[2])
                else:
                    img = F.adjust_hue(img, factors[3])
        if do_gray:
            img = F.rgb_to_grayscale(img, num_output_channels=3)
        return {"image": img.contiguous(), "points": pts.contiguous(),
                "boxes": bxs.contiguous() if has_boxes else torch.zeros((0, 4)),
                "keep": keep, "scale": float(s), "offset": (float(x0), float(y0)), "flip": bool(do_flip)}
