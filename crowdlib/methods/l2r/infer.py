"""L2R inference and scoring: whole-image density maps (each image resized to a short side of ``test_side`` and padded
to multiples of 16), counts as the map's sum, MAE / MSE (root mean squared error), and the ranking accuracy of a
model on held-out nests (share of correctly ordered pairs; chance 0.5)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from crowdlib.device import autocast
from crowdlib.losses.l2r import average_count, ranking_accuracy
from crowdlib.repro import TRAIN_THREADS, fixed_threads
from crowdlib.targets.ranking import crop_counts, nest_pairs

from .data import LabelledImage, eval_tensor, sample_nests

__all__ = ["predict_density", "evaluate_model", "nest_ranking"]


@torch.no_grad()
def predict_density(model: torch.nn.Module, images: Sequence[LabelledImage], device: torch.device | str | None = None,
                    *, test_side: int = 160, threads: int = TRAIN_THREADS,
                    progress: bool = False) -> tuple[list[np.ndarray], np.ndarray]:
    """Density maps (people per output unit, the network's output / its ``density_scale``) and ``(N,)`` counts."""
    with fixed_threads(int(threads)):
        dev = torch.device(device) if device is not None else next(model.parameters()).device
        scale = float(getattr(model, "density_scale", 1.0))
        was = model.training
        model.eval()
        maps: list[np.ndarray] = []
        try:
            for im in tqdm(images, desc="predict", leave=False, disable=not progress):
                with autocast(dev):
                    d = model(eval_tensor(im.image, test_side).to(dev))["density"]
                maps.append((d.float()[0, 0] / scale).cpu().numpy().astype(np.float32))
        finally:
            model.train(was)
    return maps, np.array([float(m.sum(dtype=np.float64)) for m in maps], dtype=np.float64)


def evaluate_model(model: torch.nn.Module, images: Sequence[LabelledImage], device: torch.device | str | None = None,
                   *, test_side: int = 160, threads: int = TRAIN_THREADS, counts: Sequence[float] | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """MAE and MSE (root mean squared error) of predicted against annotated counts, with ``"pred"`` and ``"gt"``.

    Raises:
        ValueError: with no images, or ``counts`` of another length.
    """
    from crowdlib.metrics.counting import count_metrics

    if len(images) == 0:
        raise ValueError("evaluate_model: no images to evaluate")
    if counts is None:
        _, counts = predict_density(model, images, device, test_side=test_side, threads=threads, progress=progress)
    pred = np.asarray(counts, dtype=np.float64).reshape(-1)
    if len(pred) != len(images):
        raise ValueError(f"evaluate_model: {len(pred)} counts for {len(images)} images")
    gt = np.array([float(im.count) for im in images], dtype=np.float64)
    out: dict[str, Any] = dict(count_metrics(pred, gt))
    out["pred"], out["gt"] = pred.tolist(), gt.tolist()
    return out


@torch.no_grad()
def nest_ranking(model: torch.nn.Module, images: Sequence[LabelledImage], cfg: dict[str, Any], *, nests_per_image: int = 1,
                 seed: int = 0, threads: int = TRAIN_THREADS) -> dict[str, Any]:
    """Ranking accuracy on nests of held-out labelled images (their labels only score): the share of ``(outer,
    inner)`` pairs with ``c_hat(outer) > c_hat(inner)`` over all pairs (the ranking constraint; ties count half)
    and over the pairs whose true counts differ (``strict``); chance is 0.5 for both. Also returns per crop the
    predicted ``c_hat`` (people per unit) and the true count, for correlations.

    Raises:
        ValueError: with no images or ``nests_per_image < 1``.
    """
    if len(images) == 0 or int(nests_per_image) < 1:
        raise ValueError("nest_ranking: need images and nests_per_image >= 1")
    rng = np.random.default_rng(int(seed))
    size = int(cfg["nest_k"]) + 1
    c_all, t_all = [], []
    with fixed_threads(int(threads)):
        dev = next(model.parameters()).device
        was = model.training
        model.eval()
        try:
            for i in range(len(images)):
                for _ in range(int(nests_per_image)):
                    x, boxes = sample_nests(images, [i], cfg, rng)
                    d = model(x.to(dev))["density"].float()
                    c_all.append(average_count(d).cpu().numpy())
                    t_all.append(crop_counts(images[i].points, boxes[0]))
        finally:
            model.train(was)
    c, t = np.concatenate(c_all), np.concatenate(t_all).astype(np.float64)
    pairs = nest_pairs(len(c_all), size)
    strict = t[pairs[:, 0]] > t[pairs[:, 1]]
    return {"accuracy": ranking_accuracy(c, pairs), "strict_accuracy": ranking_accuracy(c, pairs, strict),
            "n_pairs": int(len(pairs)), "n_strict": int(strict.sum()), "c_hat": c, "true_count": t,
            "nest_size": size}
