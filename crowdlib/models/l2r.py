"""The L2R counting network (Liu et al., CVPR 2018): a backbone's convolutions down to stride 16 and one 3 x 3
convolution to a one-channel density map, so that a 224 x 224 input gives a 14 x 14 map (the review: "the counting
network branch produces an image with dimension 14x14").

- ``backbone="vgg16"``: VGG-16's convolutions up to conv5_3 and its ReLU (four poolings, pool5 dropped), as the
  paper; its ImageNet file is used when present (``pretrained``), else it trains from scratch.
- ``backbone="mobilenet_v2"``: MobileNetV2's features up to block 13 (stride 16, 96 channels), with the offline
  ImageNet weights; the CPU profiles' network.
- ``backbone="tiny"``: a small random network at stride 16 (tests).

The head is one ``head_kernel`` x ``head_kernel`` convolution with a bias; ``density_relu`` (False: the paper names
no output non-linearity) puts a ReLU on it. ``freeze_bn`` keeps MobileNetV2's batch-norm layers in eval mode during
training (their ImageNet statistics; the affine parameters still learn): a mini-batch mixes labelled crops with the
strongly correlated crops of a nest, whose batch statistics would otherwise differ from those of evaluation (VGG-16
has no batch norm). Measured on validation (``benchmarks/l2r_scarcity_pilot.py``), training-mode batch norm let the
nests alone (``lam=0``) give multi-task its lead over counting only; frozen, a nest cannot change a labelled crop's
output. From scratch there are no statistics to keep (frozen, MobileNetV2 does not learn here), so the default,
``freeze_bn="pretrained"``, freezes it only when the network is ImageNet-initialised (:func:`resolve_freeze_bn`,
the one place that rule lives; ``True`` / ``False`` force either). The builder returns ``(model, L2RLoss)``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from crowdlib.losses.l2r import L2RLoss
from crowdlib.models.backbones import build_backbone
from crowdlib.models.registry import register_model

__all__ = ["MODEL_DEFAULTS", "L2RNet", "build_l2r", "OUTPUT_STRIDE", "FREEZE_BN_CHOICES", "resolve_freeze_bn"]

#: The trunk's stride (four poolings); the density map of an ``S x S`` input is ``ceil(S / 16)`` square.
OUTPUT_STRIDE = 16

#: Network and loss keys of a config (``crowdlib.methods.l2r.config`` adds data and schedule keys).
MODEL_DEFAULTS: dict[str, Any] = {
    "backbone": "mobilenet_v2",
    "pretrained": True,
    "head_kernel": 3,
    "density_relu": False,
    "freeze_bn": "pretrained",
    "density_scale": 1.0,
    "w_count": 1.0,
    "lam": 1.0,
    "margin": 0.0,
}

_TRUNK_STAGES = ("stem", "c2", "c3", "c4")

#: ``freeze_bn``'s values: always, never, or only when ImageNet-initialised.
FREEZE_BN_CHOICES = (True, False, "pretrained")


def resolve_freeze_bn(freeze_bn: bool | str, pretrained: bool) -> bool:
    """Whether batch norm stays in eval mode: ``True`` / ``False`` as given; ``"pretrained"`` only when the network
    starts from ImageNet weights (from scratch there are no statistics to keep).

    Raises:
        ValueError: on any other value.
    """
    if freeze_bn == "pretrained":
        return bool(pretrained)
    if isinstance(freeze_bn, (bool, int)) and freeze_bn in (0, 1):
        return bool(freeze_bn)
    raise ValueError(f"freeze_bn must be one of {list(FREEZE_BN_CHOICES)}, got {freeze_bn!r}")


class L2RNet(nn.Module):
    """Backbone stages ``stem`` .. ``c4`` (stride 16) and a one-channel convolution: ``{"density": (B, 1, h, w)}``."""

    def __init__(self, backbone: str = "mobilenet_v2", pretrained: bool = True, head_kernel: int = 3,
                 density_relu: bool = False, density_scale: float = 1.0, freeze_bn: bool | str = "pretrained") -> None:
        super().__init__()
        if int(head_kernel) < 1 or int(head_kernel) % 2 == 0:
            raise ValueError(f"L2RNet: head_kernel must be a positive odd number, got {head_kernel}")
        bb = build_backbone(backbone, pretrained=bool(pretrained))
        if bb.strides.get("c4") != OUTPUT_STRIDE:
            raise ValueError(f"L2RNet: backbone {backbone!r} has stride {bb.strides.get('c4')} at c4, not 16")
        self.trunk = nn.Sequential(*[bb.stages[k] for k in _TRUNK_STAGES])
        self.head = nn.Conv2d(bb.out_channels["c4"], 1, int(head_kernel), padding=int(head_kernel) // 2)
        self.relu = bool(density_relu)
        self.density_scale = float(density_scale)
        self.backbone_name = backbone
        self.freeze_bn = resolve_freeze_bn(freeze_bn, pretrained)

    def train(self, mode: bool = True) -> "L2RNet":
        super().train(mode)
        if mode and self.freeze_bn:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        d = self.head(self.trunk(x))
        return {"density": torch.relu(d) if self.relu else d}


@register_model("l2r")
def build_l2r(cfg: dict) -> tuple[nn.Module, nn.Module]:
    """``(L2RNet, L2RLoss)`` of a config holding :data:`MODEL_DEFAULTS`' keys (missing ones take the defaults)."""
    c = {**MODEL_DEFAULTS, **{k: v for k, v in cfg.items() if k in MODEL_DEFAULTS}}
    model = L2RNet(c["backbone"], c["pretrained"], c["head_kernel"], c["density_relu"], c["density_scale"],
                   c["freeze_bn"])
    crit = L2RLoss(w_count=c["w_count"], lam=c["lam"], margin=c["margin"], density_scale=c["density_scale"])
    return model, crit
