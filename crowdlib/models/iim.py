"""IIM: Independent Instance Map segmentation (Gao et al., "Learning Independent Instance Maps for Crowd Localization").

Pieces, each usable alone:

- :class:`Binarize` / :func:`binarize` (defined in :mod:`crowdlib.losses.binarize`, re-exported here): the
  differentiable binarization layer (Sec. 3.1). Forward ``1`` where
  ``confidence >= threshold`` else ``0``; backward sends ``-grad`` to the threshold (reduced to the threshold's
  shape, so an image-level ``(B, 1, 1, 1)`` threshold receives the sum over its pixels) and ``k * grad`` to the
  confidence map (``k = 0.2`` in the authors' code; ``k = 0`` stops the L1 gradient at the threshold encoder,
  Table 3's "L1 loss on the threshold encoder only").
- :func:`compressed_sigmoid`: ``1 / (2 + exp(-x)) + 0.2``, range ``(0.2, 0.7)`` (Eq. 9).
- :class:`ImageThresholdEncoder` (IBM) and :class:`PixelThresholdEncoder` (PBM) (Sec. 3.3.2).
- :class:`ConfidencePredictor`: backbone + FPN + full-resolution head with a sigmoid output (Sec. 3.3.1).
- :class:`IIMNet`: the predictor with an optional threshold encoder; its ``forward`` returns a dict
  ``{"confidence", "threshold", "binary", "feature"}``.

Conventions: maps are ``(B, 1, H, W)`` at the input resolution; thresholds are ``(B, 1, 1, 1)`` (IBM or a fixed
threshold) or ``(B, 1, H, W)`` (PBM). The encoders take *detached* inputs (the paper's gradient detach between the
backbone and the threshold learner), so the L1 loss reaches the confidence predictor only through the
binarization layer's ``k`` path.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from crowdlib.losses.binarize import Binarize, binarize
from crowdlib.losses.iim import IIMLoss
from crowdlib.models.backbones import build_backbone
from crowdlib.models.registry import register_model

__all__ = [
    "Binarize",
    "binarize",
    "compressed_sigmoid",
    "ImageThresholdEncoder",
    "PixelThresholdEncoder",
    "ConfidencePredictor",
    "IIMNet",
    "build_iim",
    "sliding_window_predict",
]


def compressed_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Eq. 9: ``1 / (2 + exp(-x)) + 0.2``, inside ``[0.2, 0.7]`` (open interval up to float rounding).

    Evaluated in an overflow-free form (``e / (2 e + 1)`` with ``e = exp(x)`` for ``x < 0``): the naive formula's
    gradient is ``inf / inf = nan`` once ``exp(-x)`` overflows (``x < -88`` in float32), which the PBM's x10 scale
    reaches easily.
    """
    e = torch.exp(-x.abs())
    return torch.where(x >= 0, 1.0 / (2.0 + e), e / (2.0 * e + 1.0)) + 0.2


def _activation(name: str) -> Any:
    if name == "compressed":
        return compressed_sigmoid
    if name == "sigmoid":
        return torch.sigmoid
    raise ValueError(f"threshold activation must be 'compressed' or 'sigmoid', got {name!r}")


class ImageThresholdEncoder(nn.Module):
    """IBM: a 1x1 convolution and global average pooling give one threshold per image.

    The authors never released IBM; this follows Sec. 3.3.2: input ``F := I * F`` (confidence resized to the
    feature resolution, both detached), ``conv1x1 -> GAP -> activation``. The activation defaults to the
    compressed sigmoid so that IBM and PBM thresholds share the range ``(0.2, 0.7)``.

    Args:
        in_channels: channels of the feature map.
        activation: ``"compressed"`` (Eq. 9) or ``"sigmoid"``.
    """

    def __init__(self, in_channels: int, activation: str = "compressed") -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 1, kernel_size=1)
        self.act = _activation(activation)
        nn.init.normal_(self.conv.weight, std=0.01)
        nn.init.zeros_(self.conv.bias)

    def forward(self, feature: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
        """Return a ``(B, 1, 1, 1)`` threshold from ``feature (B, C, h, w)`` and ``confidence (B, 1, H, W)``."""
        feature = feature.detach()
        conf = F.interpolate(confidence.detach().float(), size=feature.shape[-2:], mode="area").to(feature.dtype)
        x = self.conv(feature * conf)
        x = x.mean(dim=(2, 3), keepdim=True)
        return self.act(x.float())


class PixelThresholdEncoder(nn.Module):
    """PBM: a pixel-level threshold map (Sec. 3.3.2 and the authors' code).

    Input ``F := I * F`` at 1/8 resolution (detached); three 3x3 convolutions with PReLU (``widths``, paper
    256/128/64); a ``pool_kernel`` average pool (stride 1, paper 15); a 1x1 convolution to one channel; another
    average pool; multiply by ``scale`` (10 in the authors' code); the compressed sigmoid; nearest upsampling
    to the confidence map's size (x8 when the sizes divide).

    Args:
        in_channels: channels of the 1/8-resolution feature.
        widths: widths of the three 3x3 convolutions.
        pool_kernel: odd size of both average pools (stride 1, "same" padding).
        scale: multiplier before the activation.
        activation: ``"compressed"`` or ``"sigmoid"``.
        count_include_pad: padding counts in the pools (``torch.nn.AvgPool2d``'s default, as in the authors' code).
    """

    def __init__(
        self,
        in_channels: int,
        widths: tuple[int, int, int] = (256, 128, 64),
        pool_kernel: int = 15,
        scale: float = 10.0,
        activation: str = "compressed",
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"PixelThresholdEncoder: widths needs 3 entries, got {widths}")
        if pool_kernel < 1 or pool_kernel % 2 == 0:
            raise ValueError(f"PixelThresholdEncoder: pool_kernel must be odd and >= 1, got {pool_kernel}")
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.PReLU()]
            c = w
        self.convs = nn.Sequential(*layers)
        self.pool1 = nn.AvgPool2d(pool_kernel, stride=1, padding=pool_kernel // 2, count_include_pad=count_include_pad)
        self.out = nn.Conv2d(c, 1, kernel_size=1)
        self.pool2 = nn.AvgPool2d(pool_kernel, stride=1, padding=pool_kernel // 2, count_include_pad=count_include_pad)
        self.scale = float(scale)
        self.act = _activation(activation)

    def forward(self, feature: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
        """Return a ``(B, 1, H, W)`` threshold map for ``confidence (B, 1, H, W)``."""
        feature = feature.detach()
        conf = F.interpolate(confidence.detach().float(), size=feature.shape[-2:], mode="area").to(feature.dtype)
        x = self.convs(feature * conf)
        x = self.pool1(x)
        x = self.out(x)
        x = self.pool2(x)
        t = self.act(x.float() * self.scale)
        return F.interpolate(t, size=confidence.shape[-2:], mode="nearest")


class ConfidencePredictor(nn.Module):
    """Backbone + FPN + full-resolution confidence head (Sec. 3.3.1, "VGG-16 + FPN" generalised).

    The backbone (``crowdlib.models.backbones.build_backbone``) gives c2..c5 at strides 4..32; 1x1 laterals
    to ``fpn_channels`` and a top-down sum build P2..P5; P3..P5 are upsampled to P2, concatenated and fused by a
    3x3 convolution; two (x2 bilinear upsample, 3x3 conv, ReLU) stages bring the features to full resolution and a
    1x1 convolution with a sigmoid gives the confidence. With ``head_full_res=False`` (the CPU profiles) the second
    stage is skipped: the 1x1 convolution runs at stride 2 and its logits are upsampled bilinearly to full
    resolution before the sigmoid (about half the cost of the whole network at 128 px). ``self.feature_stride`` is the stride of the feature
    handed to threshold encoders (P3, stride 8 for the 4/8/16/32 backbones).

    Args:
        backbone: backbone name (``tiny``, ``mobilenet_v2``, ``vgg16``, ``resnet50``).
        pretrained: load the backbone's offline ImageNet weights.
        fpn_channels: FPN width.
        head_channels: width of the upsampling head.
        out_activation: ``"sigmoid"`` (IIM confidence, dot-map classifier), ``"relu"`` or ``"none"`` (linear: the
            density regressor).
        head_full_res: run the last 3x3 convolution at full resolution (paper) or stop at stride 2.
    """

    def __init__(
        self,
        backbone: str = "tiny",
        pretrained: bool = False,
        fpn_channels: int = 64,
        head_channels: int = 32,
        out_activation: str = "sigmoid",
        head_full_res: bool = True,
    ) -> None:
        super().__init__()
        if out_activation not in ("sigmoid", "relu", "none"):
            raise ValueError(f"out_activation must be 'sigmoid', 'relu' or 'none', got {out_activation!r}")
        self.backbone = build_backbone(backbone, pretrained=pretrained)
        oc = self.backbone.out_channels
        self.levels = ("c2", "c3", "c4", "c5")
        self.lateral = nn.ModuleDict({k: nn.Conv2d(oc[k], fpn_channels, 1) for k in self.levels})
        self.fuse = nn.Sequential(
            nn.Conv2d(4 * fpn_channels, fpn_channels, 3, padding=1), nn.BatchNorm2d(fpn_channels), nn.ReLU(inplace=True)
        )
        layers: list[nn.Module] = [
            nn.Conv2d(fpn_channels, head_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(head_channels, head_channels, 3, padding=1),
            nn.ReLU(inplace=True),
        ]
        if head_full_res:
            layers += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(head_channels, head_channels, 3, padding=1),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(head_channels, 1, 1))
        self.head = nn.Sequential(*layers)
        self.out_activation = out_activation
        self.feature_channels = fpn_channels
        self.feature_stride = int(self.backbone.strides["c3"])
        self.base_stride = int(self.backbone.strides["c2"])
        if self.base_stride != 4:
            raise ValueError(f"ConfidencePredictor: backbone {backbone!r} must give c2 at stride 4, got {self.base_stride}")

    def set_output_bias(self, value: float) -> None:
        """Set the last convolution's bias (e.g. a logit prior for sparse targets)."""
        nn.init.constant_(self.head[-1].bias, value)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(map (B, 1, H, W), feature (B, fpn_channels, H/8, W/8))`` for ``x (B, 3, H, W)``."""
        H, W = x.shape[-2:]
        feats = self.backbone(x)
        p = {k: self.lateral[k](feats[k]) for k in self.levels}
        for hi, lo in (("c5", "c4"), ("c4", "c3"), ("c3", "c2")):
            p[lo] = p[lo] + F.interpolate(p[hi], size=p[lo].shape[-2:], mode="nearest")
        size2 = p["c2"].shape[-2:]
        cat = torch.cat([p["c2"]] + [F.interpolate(p[k], size=size2, mode="bilinear", align_corners=False) for k in ("c3", "c4", "c5")], 1)
        y = self.head(self.fuse(cat))
        if y.shape[-2:] != (H, W):
            y = F.interpolate(y, size=(H, W), mode="bilinear", align_corners=False)
        if self.out_activation == "sigmoid":
            y = torch.sigmoid(y)
        elif self.out_activation == "relu":
            y = F.relu(y)
        return y, p["c3"]


class IIMNet(nn.Module):
    """Confidence predictor with an optional binarization module.

    Args:
        predictor: a :class:`ConfidencePredictor` (sigmoid output).
        encoder: ``"none"`` (fixed threshold), ``"ibm"`` or ``"pbm"``.
        fixed_threshold: the threshold used when ``encoder == "none"`` (paper rows: 0.5 and 0.8); can be
            changed after training (``self.fixed_threshold``), so the fixed-threshold rows share one model.
        pbm_widths, pbm_pool, pbm_scale, activation: threshold encoder options (see the encoder classes).

    ``forward`` returns ``{"confidence", "threshold", "binary", "feature"}``; ``binary`` is the detached
    inference map (the loss re-binarizes with its own ``k``).
    """

    def __init__(
        self,
        predictor: ConfidencePredictor,
        encoder: str = "pbm",
        fixed_threshold: float = 0.5,
        pbm_widths: tuple[int, int, int] = (256, 128, 64),
        pbm_pool: int = 15,
        pbm_scale: float = 10.0,
        activation: str = "compressed",
    ) -> None:
        super().__init__()
        if encoder not in ("none", "ibm", "pbm"):
            raise ValueError(f"IIMNet: encoder must be 'none', 'ibm' or 'pbm', got {encoder!r}")
        self.predictor = predictor
        self.encoder_type = encoder
        self.fixed_threshold = float(fixed_threshold)
        c = predictor.feature_channels
        if encoder == "ibm":
            self.encoder: nn.Module | None = ImageThresholdEncoder(c, activation=activation)
        elif encoder == "pbm":
            self.encoder = PixelThresholdEncoder(c, widths=tuple(pbm_widths), pool_kernel=pbm_pool, scale=pbm_scale, activation=activation)
        else:
            self.encoder = None

    def param_groups(self, lr_predictor: float, lr_encoder: float, weight_decay: float = 0.0) -> list[dict]:
        """Optimizer parameter groups: predictor at ``lr_predictor``, threshold encoder at ``lr_encoder``."""
        groups = [{"params": list(self.predictor.parameters()), "lr": lr_predictor, "weight_decay": weight_decay, "name": "predictor"}]
        if self.encoder is not None:
            groups.append({"params": list(self.encoder.parameters()), "lr": lr_encoder, "weight_decay": weight_decay, "name": "encoder"})
        return groups

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        conf, feat = self.predictor(x)
        conf = conf.float()
        if self.encoder is None:
            thr = torch.full((conf.shape[0], 1, 1, 1), self.fixed_threshold, dtype=conf.dtype, device=conf.device)
        else:
            thr = self.encoder(feat, conf).float()
        binary = (conf.detach() >= thr.detach()).to(conf.dtype)
        return {"confidence": conf, "threshold": thr, "binary": binary, "feature": feat}


def sliding_window_predict(
    model: nn.Module, image: torch.Tensor, window: int = 512, overlap: int = 64, keys: tuple[str, ...] = ("confidence", "threshold")
) -> dict[str, torch.Tensor]:
    """Run a dense model over ``image (1, 3, H, W)`` in overlapping windows and average the maps.

    Each window's ``keys`` outputs (``(1, 1, h, w)`` maps, or per-image ``(1, 1, 1, 1)`` thresholds that are expanded
    to the window) are accumulated and divided by the coverage count. Images no larger than ``window`` run in one
    pass. ``"binary"`` is recomputed from the averaged confidence and threshold when both are present.

    Raises:
        ValueError: on a non-4D input, a batch larger than 1, or ``overlap >= window``.
    """
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"sliding_window_predict: image must be (1, 3, H, W), got {tuple(image.shape)}")
    if overlap < 0 or overlap >= window:
        raise ValueError(f"sliding_window_predict: need 0 <= overlap < window, got overlap={overlap}, window={window}")
    _, _, H, W = image.shape
    if H <= window and W <= window:
        out = model(image)
        res = {k: out[k].expand(1, 1, H, W) if out[k].shape[-2:] != (H, W) else out[k] for k in keys if k in out}
    else:
        step = window - overlap

        def starts(n: int) -> list[int]:
            if n <= window:
                return [0]
            s = list(range(0, n - window, step)) + [n - window]
            return sorted(set(s))

        acc: dict[str, torch.Tensor] = {}
        cnt = torch.zeros(1, 1, H, W, device=image.device)
        for y0 in starts(H):
            for x0 in starts(W):
                tile = image[:, :, y0:y0 + window, x0:x0 + window]
                out = model(tile)
                h, w = tile.shape[-2:]
                for k in keys:
                    if k not in out:
                        continue
                    v = out[k].float()
                    if v.shape[-2:] != (h, w):
                        v = v.expand(1, 1, h, w)
                    if k not in acc:
                        acc[k] = torch.zeros(1, 1, H, W, device=image.device)
                    acc[k][:, :, y0:y0 + h, x0:x0 + w] += v
                cnt[:, :, y0:y0 + h, x0:x0 + w] += 1
        res = {k: v / cnt for k, v in acc.items()}
    if "confidence" in res and "threshold" in res:
        res["binary"] = (res["confidence"] >= res["threshold"]).float()
    return res


def _predictor_from_cfg(cfg: Mapping[str, Any], out_activation: str = "sigmoid") -> ConfidencePredictor:
    return ConfidencePredictor(
        backbone=cfg.get("backbone", "tiny"),
        pretrained=bool(cfg.get("pretrained", False)),
        fpn_channels=int(cfg.get("fpn_channels", 64)),
        head_channels=int(cfg.get("head_channels", 32)),
        out_activation=out_activation,
        head_full_res=bool(cfg.get("head_full_res", True)),
    )


@register_model("iim")
def build_iim(cfg: Mapping[str, Any]) -> tuple[nn.Module, nn.Module]:
    """Build ``(IIMNet, IIMLoss)`` from a config dict.

    Keys (defaults): ``backbone`` ("tiny"), ``pretrained`` (False), ``fpn_channels`` (64), ``head_channels`` (32),
    ``encoder`` ("pbm"; "ibm", "none"), ``fixed_threshold`` (0.5), ``pbm_widths`` ([256, 128, 64]), ``pbm_pool`` (15),
    ``pbm_scale`` (10), ``activation`` ("compressed"), ``l1_area`` ("both" = CP and encoder, "encoder" = encoder only),
    ``k`` (0.2), ``w_mse`` (1), ``w_l1`` (1).
    """
    enc = cfg.get("encoder", "pbm")
    net = IIMNet(
        _predictor_from_cfg(cfg),
        encoder=enc,
        fixed_threshold=float(cfg.get("fixed_threshold", 0.5)),
        pbm_widths=tuple(cfg.get("pbm_widths", (256, 128, 64))),
        pbm_pool=int(cfg.get("pbm_pool", 15)),
        pbm_scale=float(cfg.get("pbm_scale", 10.0)),
        activation=cfg.get("activation", "compressed"),
    )
    crit = IIMLoss(
        use_l1=enc != "none",
        l1_area=cfg.get("l1_area", "both"),
        k=float(cfg.get("k", 0.2)),
        w_mse=float(cfg.get("w_mse", 1.0)),
        w_l1=float(cfg.get("w_l1", 1.0)),
    )
    return net, crit
