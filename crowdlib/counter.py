"""Count people in your own images: ``crowdlib.count(images, model="sdnet-shb")``.

``images`` is a path, a PIL image or an ``(H, W, 3)`` array, or a list of them. Each image gives a dict:
``count``, ``points`` ``(N, 2)`` (x, y in the image's pixels) and ``scores`` ``(N,)``, plus ``boxes`` ``(N, 4)`` for
a detector or ``density`` ``(H, W)`` for a density counter, and ``image_size``, ``model``, ``threshold``,
``tiles``, ``seconds``.

Large images are cut into overlapping tiles of at most ``tile`` pixels a side (``overlap`` pixels shared by
neighbours). Every pixel belongs to the *core* of exactly one tile (the cores split each overlap at its middle),
and a tile keeps only the heads whose point lies in its core (a density counter sums its density over the core),
so no head is counted twice and none is lost between tiles. ``batch_size`` images of the same size that need no
tiling share one forward pass.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["count", "load_image", "tile_starts", "core_bounds", "predict_one", "ImageReadError"]

from crowdlib.data import ImageReadError  # noqa: E402  (re-exported: the error a bad image file raises)


def load_image(item: Any) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB array from a path, a PIL image or an array (gray and RGBA are converted).

    Raises:
        FileNotFoundError: a path that does not exist.
        ImageReadError: a file that is not a readable image.
        ValueError: an array of the wrong shape or type.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, (str, Path)):
        p = Path(item)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file")
        try:
            with Image.open(p) as im:
                return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ImageReadError(p, f"not a readable image: {exc}") from exc
    if isinstance(item, Image.Image):
        return np.asarray(item.convert("RGB"), dtype=np.uint8).copy()
    arr = np.asarray(item)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got an array of shape {arr.shape}")
    arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` px with at least ``overlap`` px shared."""
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    if length <= tile:
        return [0]
    n = int(np.ceil((length - overlap) / (tile - overlap)))
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


def core_bounds(starts: Sequence[int], tile: int, length: int) -> list[tuple[float, float]]:
    """Per tile the half-open core ``[lo, hi)``: neighbours' overlaps split at their middle; the cores partition
    ``[0, length)``."""
    ends = [min(s + tile, length) for s in starts]
    cuts = [0.0] + [(starts[k + 1] + ends[k]) / 2.0 for k in range(len(starts) - 1)] + [float(length)]
    return [(cuts[k], cuts[k + 1]) for k in range(len(starts))]


def _normalised(image: np.ndarray, device: torch.device) -> torch.Tensor:
    from crowdlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    x = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((x - mean) / std).unsqueeze(0).to(device)


@torch.no_grad()
def _raw_tiles(zm: Any, images: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Predictions of equal-size tiles in one forward pass, each in its own pixel frame: a detector's
    points/scores/boxes, or IIM's confidence/threshold maps, or a counter's density map."""
    import torch.nn.functional as F

    inf = zm.inference
    scale = float(inf.get("scale", 1.0))
    x = torch.cat([_normalised(im, zm.device) for im in images])
    H, W = images[0].shape[:2]
    xs = x if scale == 1.0 else F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False,
                                              recompute_scale_factor=False, antialias=scale < 1.0)
    if zm.kind == "sdnet":
        from crowdlib.methods.sdnet.infer import decode_csp

        dets = decode_csp(zm.net(xs), int(zm.net.stride), min_score=float(inf.get("min_score", 0.05)),
                          nms_iou=float(inf.get("nms_iou", 0.5)))
        return [{"points": d["points"] / scale, "boxes": d["boxes"] / scale, "scores": d["scores"]} for d in dets]
    out = zm.net(xs)
    maps: list[dict[str, np.ndarray]] = [{} for _ in images]
    for k in ("confidence", "threshold", "map"):
        if k in out:
            v = out[k].float()
            if v.dim() == 2:  # an image-level threshold
                v = v.view(-1, 1, 1, 1).expand(-1, 1, xs.shape[-2], xs.shape[-1])
            if v.shape[-2:] != (H, W):
                v = F.interpolate(v, size=(H, W), mode="bilinear", align_corners=False)
                if k == "map":
                    v = v * (xs.shape[-2] * xs.shape[-1]) / float(H * W)  # keep the integral
            for b in range(len(images)):
                maps[b][k] = v[b, 0].cpu().numpy()
    return maps


def _raw_tile(zm: Any, image: np.ndarray) -> dict[str, np.ndarray]:
    return _raw_tiles(zm, [image])[0]


def _points_of(zm: Any, maps: dict[str, np.ndarray], threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    if zm.kind == "iim":
        from crowdlib.methods.iim.infer import decode_iim

        pts = decode_iim(maps, threshold)
        return pts, np.ones(len(pts), dtype=np.float32)
    from crowdlib.models.baselines import local_maxima

    (pts,) = local_maxima(torch.from_numpy(np.ascontiguousarray(maps["map"])),
                          float(zm.inference.get("peak_threshold", 0.0)), int(zm.inference.get("window", 3)))
    pts = np.asarray(pts, dtype=np.float32).reshape(-1, 2) + 0.5
    return pts, maps["map"][pts[:, 1].astype(int).clip(0, maps["map"].shape[0] - 1),
                            pts[:, 0].astype(int).clip(0, maps["map"].shape[1] - 1)].astype(np.float32)


def predict_one(zm: Any, image: Any, threshold: float | None = None, *, tile: int = 1024,
                overlap: int = 128, raw: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """One image through zoo model ``zm`` (tiled above ``tile`` px); see the module doc for the result.
    ``raw``: the image's untiled prediction, already computed (batched by :func:`count`)."""
    img = load_image(image)
    H, W = img.shape[:2]
    t0 = time.perf_counter()
    default = zm.default_threshold
    thr = default if threshold is None else float(threshold)
    ys, xs = tile_starts(H, tile, overlap), tile_starts(W, tile, overlap)
    ycores, xcores = core_bounds(ys, tile, H), core_bounds(xs, tile, W)
    pts, scores, boxes = [], [], []
    density = np.zeros((H, W), dtype=np.float32) if zm.kind == "density" else None
    for y0, (ylo, yhi) in zip(ys, ycores):
        for x0, (xlo, xhi) in zip(xs, xcores):
            part = img[y0:y0 + tile, x0:x0 + tile]
            raw = raw if raw is not None and len(ys) * len(xs) == 1 else _raw_tile(zm, part)
            if zm.kind == "sdnet":
                keep = raw["scores"] > thr
                p, s, b = raw["points"][keep], raw["scores"][keep], raw["boxes"][keep]
            else:
                if zm.kind == "iim":
                    p, s = _points_of(zm, raw, None if threshold is None and zm.inference.get("learned") else thr)
                else:
                    p, s = _points_of(zm, raw, thr)
                b = None
            p = p + np.array([x0, y0], dtype=np.float32)
            inside = (p[:, 0] >= xlo) & (p[:, 0] < xhi) & (p[:, 1] >= ylo) & (p[:, 1] < yhi)
            pts.append(p[inside])
            scores.append(s[inside])
            if b is not None:
                boxes.append(b[inside] + np.array([x0, y0, x0, y0], dtype=np.float32))
            if density is not None:
                d = raw["map"] / float(zm.inference.get("density_scale", 1.0))
                cy0, cy1, cx0, cx1 = int(np.ceil(ylo)), int(np.ceil(yhi)), int(np.ceil(xlo)), int(np.ceil(xhi))
                density[cy0:cy1, cx0:cx1] = d[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    points = np.concatenate(pts).astype(np.float32) if pts else np.zeros((0, 2), np.float32)
    out: dict[str, Any] = {"points": points, "scores": np.concatenate(scores).astype(np.float32),
                           "image_size": (H, W), "model": zm.name, "threshold": thr,
                           "tiles": len(ys) * len(xs)}
    if zm.kind == "sdnet":
        out["boxes"] = np.concatenate(boxes).astype(np.float32)
    if density is not None:
        out["density"] = density
        out["count"] = float(density.sum())
    else:
        out["count"] = int(len(points))
    out["seconds"] = time.perf_counter() - t0
    return out


def count(images: Any, model: str = "sdnet-shb", *, threshold: float | None = None, tile: int = 1024,
          overlap: int = 128, batch_size: int = 1, device: str | torch.device | None = None,
          progress: bool = False) -> list[dict[str, Any]] | dict[str, Any]:
    """Count people in ``images`` with zoo model ``model`` (``python -m crowdlib models`` lists them).

    Args:
        images: a path, PIL image or array, or a list of them; a single image gives a single dict.
        threshold: score (detector) or confidence (IIM) threshold; ``None``: the one chosen on validation.
        tile, overlap: tiling of images larger than ``tile`` px (see the module doc).
        batch_size: images of equal size that need no tiling go through the network this many at a time.
        device: ``"cpu"``, ``"cuda"``...; ``None`` picks CUDA when available.
        progress: a progress bar over the images.

    Raises:
        crowdlib.zoo.UnknownModelError, FileNotFoundError, ImageReadError, ValueError.
    """
    from tqdm.auto import tqdm

    from crowdlib.zoo import ZooModel, load_model

    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    zm = model if isinstance(model, ZooModel) else load_model(model, device=device)
    single = not isinstance(images, (list, tuple))
    items = [images] if single else list(images)
    res: list[dict[str, Any]] = []
    bar = tqdm(total=len(items), desc=f"count ({zm.name})", disable=not progress, leave=False)
    for start in range(0, len(items), int(batch_size)):
        chunk = [load_image(im) for im in items[start:start + int(batch_size)]]
        raws: list[dict[str, np.ndarray] | None] = [None] * len(chunk)
        shared = [0.0] * len(chunk)  # each image's share of its batch's forward pass, in seconds
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(chunk):
            if im.shape[0] <= tile and im.shape[1] <= tile and len(chunk) > 1:
                groups.setdefault(im.shape[:2], []).append(i)
        for idx in groups.values():
            t0 = time.perf_counter()
            for i, r in zip(idx, _raw_tiles(zm, [chunk[i] for i in idx])):
                raws[i] = r
            for i in idx:
                shared[i] = (time.perf_counter() - t0) / len(idx)
        for im, raw, sec in zip(chunk, raws, shared):
            out = predict_one(zm, im, threshold, tile=tile, overlap=overlap, raw=raw)
            out["seconds"] += sec
            res.append(out)
            bar.update(1)
    bar.close()
    return res[0] if single else res
