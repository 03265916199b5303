"""Multi-scale feature backbones returning ``{"c2", "c3", "c4", "c5"}`` (and ``"stem"``, stride 2, where the
network has a stride-2 stage: ``tiny`` and ``mobilenet_v2`` 16 channels, ``resnet50`` 64 (conv1), ``vgg16`` 128
(conv2_2); used by skip connections).

| name | channels (c2..c5) | strides | weights |
|---|---|---|---|
| ``tiny`` | 24, 32, 48, 64 | 4, 8, 16, 32 | random (small, CPU-trainable, ~0.1M parameters) |
| ``mobilenet_v2`` | 24, 32, 96, 320 | 4, 8, 16, 32 | ImageNet (offline file) with ``pretrained=True`` |
| ``resnet50`` | 256, 512, 1024, 2048 | 4, 8, 16, 16 | stage 5 dilated (Crowd-SDNet); ImageNet if the user has the file |
| ``vgg16`` | 256, 512, 512, 512 | 4, 8, 16, 32 | conv3_3, conv4_3, conv5_3, pool5 (IIM's VGG-16-FPN); ImageNet if present |

Pretrained weights are never downloaded: they are read from ``$TORCH_HOME/hub/checkpoints/`` (torch's own hub
cache) or from the project's ``.cache/torch/hub/checkpoints/`` that ``make setup`` fills with the offline
MobileNetV2 file. A missing file raises ``FileNotFoundError`` saying where to put it.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from torch import nn

from crowdlib import paths

__all__ = ["Backbone", "build_backbone", "list_backbones", "find_weights", "require_weights", "MissingWeightsError",
           "WEIGHT_FILES"]

#: torchvision's ImageNet weight files for each backbone.
WEIGHT_FILES = {
    "mobilenet_v2": "mobilenet_v2-b0353104.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "vgg16": "vgg16-397923af.pth",
}


class MissingWeightsError(FileNotFoundError):
    """A pretrained weight file is not on this machine (crowdlib never downloads one)."""


def find_weights(filename: str) -> Path:
    """Locate a torchvision weight file in the torch hub cache or the project's cache; never downloads."""
    candidates = []
    if os.environ.get("TORCH_HOME"):
        candidates.append(Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / filename)
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / filename)
    candidates.append(paths.project_root() / ".cache" / "torch" / "hub" / "checkpoints" / filename)
    for c in candidates:
        if c.is_file():
            return c
    raise MissingWeightsError(
        f"pretrained weights {filename!r} not found (looked in {', '.join(str(c.parent) for c in candidates)}). "
        "crowdlib never downloads weights: run `make setup` (MobileNetV2) or copy the file there, "
        "or pass pretrained=False to train from scratch."
    )


def require_weights(backbone: str, pretrained: bool) -> Path | None:
    """Fail early, before any data or training, when ``backbone``'s ImageNet file is needed but absent.

    Returns the file's path (``None`` when ``pretrained`` is false). Notebooks call it in their first code cell.

    Raises:
        MissingWeightsError: names the file and the folders where torchvision's hub cache expects it.
        ValueError: ``backbone`` is not one of :func:`list_backbones`.
    """
    if backbone not in _FACTORIES:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {sorted(_FACTORIES)}")
    if not pretrained or backbone not in WEIGHT_FILES:
        return None
    return find_weights(WEIGHT_FILES[backbone])


def _load_pretrained(model: nn.Module, name: str) -> None:
    state = torch.load(find_weights(WEIGHT_FILES[name]), map_location="cpu", weights_only=True)
    model.load_state_dict(state)


def _cbr(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Backbone(nn.Module):
    """Runs named stages in order and returns the outputs of ``stem`` (stride 2) and ``c2``..``c5``."""

    def __init__(self, stages: dict[str, nn.Module], out_channels: dict[str, int], strides: dict[str, int],
                 name: str) -> None:
        super().__init__()
        self.stages = nn.ModuleDict(stages)
        self.out_channels = dict(out_channels)
        self.strides = dict(strides)
        self.name = name

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = {}
        for key, stage in self.stages.items():
            x = stage(x)
            if key in self.out_channels:
                feats[key] = x
        return feats


def _tiny() -> Backbone:
    stages = {
        "stem": nn.Sequential(_cbr(3, 16, 2), _cbr(16, 16)),
        "c2": nn.Sequential(_cbr(16, 24, 2), _cbr(24, 24)),
        "c3": nn.Sequential(_cbr(24, 32, 2), _cbr(32, 32)),
        "c4": nn.Sequential(_cbr(32, 48, 2), _cbr(48, 48)),
        "c5": nn.Sequential(_cbr(48, 64, 2), _cbr(64, 64)),
    }
    return Backbone(stages, {"stem": 16, "c2": 24, "c3": 32, "c4": 48, "c5": 64},
                    {"stem": 2, "c2": 4, "c3": 8, "c4": 16, "c5": 32}, "tiny")


def _mobilenet_v2(pretrained: bool) -> Backbone:
    net = torchvision.models.mobilenet_v2(weights=None)
    if pretrained:
        _load_pretrained(net, "mobilenet_v2")
    f = net.features
    stages = {"stem": f[:2], "c2": f[2:4], "c3": f[4:7], "c4": f[7:14], "c5": f[14:18]}
    return Backbone(stages, {"stem": 16, "c2": 24, "c3": 32, "c4": 96, "c5": 320},
                    {"stem": 2, "c2": 4, "c3": 8, "c4": 16, "c5": 32}, "mobilenet_v2")


def _resnet50(pretrained: bool) -> Backbone:
    net = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[False, False, True])
    if pretrained:
        _load_pretrained(net, "resnet50")
    stages = {
        "stem": nn.Sequential(net.conv1, net.bn1, net.relu),
        "c2": nn.Sequential(net.maxpool, net.layer1), "c3": net.layer2, "c4": net.layer3, "c5": net.layer4,
    }
    return Backbone(stages, {"stem": 64, "c2": 256, "c3": 512, "c4": 1024, "c5": 2048},
                    {"stem": 2, "c2": 4, "c3": 8, "c4": 16, "c5": 16}, "resnet50")


def _vgg16(pretrained: bool) -> Backbone:
    net = torchvision.models.vgg16(weights=None)
    if pretrained:
        _load_pretrained(net, "vgg16")
    f = net.features
    stages = {"stem": f[:9], "c2": f[9:16], "c3": f[16:23], "c4": f[23:30], "c5": f[30:31]}
    return Backbone(stages, {"stem": 128, "c2": 256, "c3": 512, "c4": 512, "c5": 512},
                    {"stem": 2, "c2": 4, "c3": 8, "c4": 16, "c5": 32}, "vgg16")


_FACTORIES = {"tiny": lambda pretrained: _tiny(), "mobilenet_v2": _mobilenet_v2, "resnet50": _resnet50,
              "vgg16": _vgg16}


def list_backbones() -> list[str]:
    """Names accepted by :func:`build_backbone`."""
    return sorted(_FACTORIES)


def build_backbone(name: str, pretrained: bool = False) -> Backbone:
    """Build backbone ``name``; ``pretrained=True`` loads ImageNet weights from the offline cache.

    Raises:
        ValueError: unknown name, or ``pretrained=True`` for ``tiny`` (it has no pretrained weights).
        FileNotFoundError: the weight file is not in the offline cache.
    """
    if name not in _FACTORIES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {list_backbones()}")
    if name == "tiny" and pretrained:
        raise ValueError("the 'tiny' backbone has no pretrained weights; use pretrained=False")
    return _FACTORIES[name](pretrained)
