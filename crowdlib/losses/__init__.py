"""Loss objects: each holds named terms and a weight dict (see :class:`crowdlib.losses.base.WeightedLoss`)."""
from crowdlib.losses.base import WeightedLoss

__all__ = ["WeightedLoss"]
