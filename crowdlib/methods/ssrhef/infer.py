"""SSR-HEF inference and scoring: whole-image density maps (each image padded at the bottom/right to a multiple
of 8 with the ImageNet mean), counts as the integral of the map (Sec. IV-A), and MAE / MSE (root mean squared
error, :func:`crowdlib.metrics.counting.count_metrics`)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from crowdlib.data.records import CrowdRecord
from crowdlib.device import autocast
from crowdlib.repro import TRAIN_THREADS, fixed_threads

__all__ = ["image_tensor", "predict_density", "evaluate_model"]


def image_tensor(image: np.ndarray, multiple: int = 8) -> torch.Tensor:
    """An ``(H, W, 3)`` uint8 image as a normalised ``(1, 3, H', W')`` tensor, padded (bottom/right, zeros after
    normalisation, i.e. the ImageNet mean) to multiples of ``multiple``."""
    from crowdlib.data.datasets import normalize
    from crowdlib.data.transforms import to_float_image

    x = normalize(to_float_image(image))[None]
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph)) if (ph or pw) else x


@torch.no_grad()
def predict_density(model: torch.nn.Module, records: Sequence[CrowdRecord], device: torch.device | str | None = None,
                    *, threads: int = TRAIN_THREADS, progress: bool = False) -> tuple[list[np.ndarray], np.ndarray]:
    """Density maps and counts of whole images.

    Returns:
        ``(maps, counts)``: per image an ``(ceil(H/s), ceil(W/s))`` float32 map of people per output cell (the
        network's output divided by its ``density_scale``; ``s`` its output stride) and the ``(N,)`` float64
        counts (the maps' sums).
    """
    with fixed_threads(int(threads)):
        dev = torch.device(device) if device is not None else next(model.parameters()).device
        scale = float(getattr(model, "density_scale", 1.0))
        was = model.training
        model.eval()
        maps: list[np.ndarray] = []
        try:
            for rec in tqdm(records, desc="predict", leave=False, disable=not progress):
                x = image_tensor(rec.load_image()).to(dev)
                with autocast(dev):
                    d = model(x)["density"]
                maps.append((d.float()[0, 0] / scale).cpu().numpy().astype(np.float32))
        finally:
            model.train(was)
    counts = np.array([float(m.sum(dtype=np.float64)) for m in maps], dtype=np.float64)
    return maps, counts


def evaluate_model(model: torch.nn.Module, records: Sequence[CrowdRecord], device: torch.device | str | None = None,
                   *, threads: int = TRAIN_THREADS, counts: Sequence[float] | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """MAE and MSE (root mean squared error) of the predicted counts against the annotated head counts.

    Args:
        counts: predicted counts already computed (skips the forward passes).

    Returns:
        :func:`crowdlib.metrics.counting.count_metrics` plus ``"pred"`` and ``"gt"`` (lists of counts).

    Raises:
        ValueError: with no records, or a ``counts`` of another length.
    """
    from crowdlib.metrics.counting import count_metrics

    if len(records) == 0:
        raise ValueError("evaluate_model: no records to evaluate")
    if counts is None:
        _, counts = predict_density(model, records, device, threads=threads, progress=progress)
    pred = np.asarray(counts, dtype=np.float64).reshape(-1)
    if len(pred) != len(records):
        raise ValueError(f"evaluate_model: {len(pred)} counts for {len(records)} records")
    gt = np.array([float(r.count) for r in records], dtype=np.float64)
    out: dict[str, Any] = dict(count_metrics(pred, gt))
    out["pred"] = pred.tolist()
    out["gt"] = gt.tolist()
    return out
