"""``WeightedLoss``: a loss made of named terms combined by a weight dict (as P2PNet's ``SetCriterion``)."""
from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["WeightedLoss"]


class WeightedLoss(nn.Module, abc.ABC):
    """Base class: subclasses compute named terms; ``forward`` weights and sums them.

    ``forward`` asserts that the names returned by :meth:`compute_terms` are exactly the keys of
    ``weight_dict``, so a term can neither be silently dropped nor silently unweighted. The returned dict holds
    every (unweighted) term plus ``"loss"``, the weighted total.
    """

    def __init__(self, weight_dict: Mapping[str, float]) -> None:
        super().__init__()
        if "loss" in weight_dict:
            raise ValueError("'loss' is reserved for the weighted total; name the term differently")
        self.weight_dict = {str(k): float(v) for k, v in weight_dict.items()}

    @abc.abstractmethod
    def compute_terms(self, outputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        """Return ``{term_name: scalar tensor}``; implemented by subclasses."""

    def forward(self, outputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        terms = self.compute_terms(outputs, targets)
        assert set(terms) == set(self.weight_dict), (
            f"{type(self).__name__}: loss terms {sorted(terms)} do not match weight_dict keys {sorted(self.weight_dict)}"
        )
        total = sum(self.weight_dict[k] * v for k, v in terms.items())
        out = dict(terms)
        out["loss"] = total if isinstance(total, torch.Tensor) else torch.as_tensor(total)
        return out
