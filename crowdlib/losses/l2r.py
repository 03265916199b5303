"""L2R losses (Liu et al., "Leveraging Unlabeled Data for Crowd Counting by Learning to Rank", CVPR 2018), as our
copy of the paper (a review, ``shared/papers/l2r_review.txt``) states them:

- counting: the mean over the labelled images of a batch of the squared error summed over the 14 x 14 (here
  ``input / 16``) density map, ``L_c = 1/M sum_i ||y_i - y_hat_i||^2`` (M: labelled images of the batch);
- ranking: ``c_hat(I) = 1/M sum_j y_hat(x_j)``, the average pooling of the density map over its ``M`` units; for
  every ordered pair of a nest (an outer crop ``I_o`` holding an inner one ``I_i``) the hinge
  ``max(0, c_hat(I_i) - c_hat(I_o) + eps)``, averaged over the pairs of the batch;
- ``L = L_c + lambda L_r`` on one mini-batch holding labelled crops (counting) and unlabeled nests (ranking).

The margin ``eps`` and ``lambda`` are not in the review: both are parameters (see :mod:`crowdlib.methods.l2r.config`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from crowdlib.losses.base import WeightedLoss
from crowdlib.targets.ranking import nest_pairs

__all__ = ["average_count", "ranking_hinge", "count_mse", "ranking_accuracy", "L2RLoss"]


def average_count(density: torch.Tensor) -> torch.Tensor:
    """``c_hat``: the mean of each ``(B, 1, h, w)`` density map over its ``h * w`` units, ``(B,)``."""
    if density.ndim != 4 or density.shape[1] != 1:
        raise ValueError(f"average_count: expected a (B, 1, h, w) density map, got {tuple(density.shape)}")
    return density.float().mean(dim=(1, 2, 3))


def ranking_hinge(c_hat: torch.Tensor, pairs: torch.Tensor | np.ndarray, margin: float = 0.0) -> torch.Tensor:
    """Mean over ``pairs`` (rows ``(outer, inner)``, indices into ``c_hat``) of
    ``max(0, c_hat[inner] - c_hat[outer] + margin)``: zero when every outer crop scores at least ``margin`` above
    its inner crop. With no pair, a zero that keeps the graph.

    Raises:
        ValueError: ``pairs`` is not ``(P, 2)`` or ``margin`` is negative.
    """
    p = torch.as_tensor(np.asarray(pairs) if isinstance(pairs, np.ndarray) else pairs, dtype=torch.long,
                        device=c_hat.device)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"ranking_hinge: pairs must be (P, 2), got {tuple(p.shape)}")
    if float(margin) < 0:
        raise ValueError(f"ranking_hinge: margin must be >= 0, got {margin}")
    if len(p) == 0:
        return c_hat.sum() * 0.0
    return torch.relu(c_hat[p[:, 1]] - c_hat[p[:, 0]] + float(margin)).mean()


def count_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The counting loss: squared error summed over each map's units, mean over the images (zero with none)."""
    if pred.shape != target.shape:
        raise ValueError(f"count_mse: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.shape[0] == 0:
        return pred.sum() * 0.0
    return (pred.float() - target.float()).pow(2).flatten(1).sum(1).mean()


def ranking_accuracy(c_hat: np.ndarray | torch.Tensor, pairs: np.ndarray, strict: np.ndarray | None = None) -> float:
    """Share of ``(outer, inner)`` pairs with ``c_hat[outer] > c_hat[inner]`` (ties count as half; chance 0.5);
    ``strict``, a boolean mask over the pairs, keeps only those (e.g. pairs whose true counts differ)."""
    c = np.asarray(c_hat.detach().cpu() if isinstance(c_hat, torch.Tensor) else c_hat, dtype=np.float64)
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if strict is not None:
        p = p[np.asarray(strict, dtype=bool)]
    if len(p) == 0:
        return float("nan")
    d = c[p[:, 0]] - c[p[:, 1]]
    return float(((d > 0) + 0.5 * (d == 0)).mean())


class L2RLoss(WeightedLoss):
    """``count`` and ``rank`` terms of L2R, weighted by ``{"count": w_count, "rank": lambda}``.

    Outputs: ``{"density": (N, 1, h, w)}`` for the whole batch, the ``n_count`` labelled crops first, then
    ``n_nests`` nests of ``nest_size`` crops each (largest first). Targets: ``"density"`` ``(n_count, 1, h, w)``
    (people per output unit), ``"n_count"``, ``"n_nests"``, ``"nest_size"``. A step of one task only holds no
    crop of the other, whose term is then zero (the paradigm schedules of :mod:`crowdlib.methods.l2r.train`).
    The density targets are multiplied by ``density_scale`` (the network predicts scaled densities).
    No annotation of an unlabeled image exists in a batch: the ranking term sees only the predictions.
    """

    def __init__(self, w_count: float = 1.0, lam: float = 1.0, margin: float = 0.0, density_scale: float = 1.0) -> None:
        super().__init__({"count": float(w_count), "rank": float(lam)})
        if float(margin) < 0:
            raise ValueError(f"L2RLoss: margin must be >= 0, got {margin}")
        if float(density_scale) <= 0:
            raise ValueError(f"L2RLoss: density_scale must be > 0, got {density_scale}")
        self.margin, self.density_scale = float(margin), float(density_scale)

    def compute_terms(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        d = outputs["density"]
        n_count, n_nests = int(targets.get("n_count", 0)), int(targets.get("n_nests", 0))
        size = int(targets.get("nest_size", 2))
        if n_count + n_nests * size != d.shape[0]:
            raise ValueError(f"L2RLoss: {d.shape[0]} outputs for {n_count} labelled crops and {n_nests} nests of "
                             f"{size}")
        if n_count:
            gt = targets["density"].to(d.device).float() * self.density_scale
            count = count_mse(d[:n_count], gt)
        else:
            count = d.sum() * 0.0
        if n_nests:
            c_hat = average_count(d[n_count:])
            rank = ranking_hinge(c_hat, nest_pairs(n_nests, size), self.margin)
        else:
            rank = d.sum() * 0.0
        return {"count": count, "rank": rank}
