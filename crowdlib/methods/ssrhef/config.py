"""SSR-HEF run configuration: one flat, hashable dict (:data:`DEFAULTS`), so that
``crowdlib.repro.get_or_train(cfg, train_ssrhef, name="ssrhef")`` shares a trained model between notebooks whose
configs coincide. The method's choices default to the paper's values (Sec. III-IV); the budget keys (``steps``,
``data``) default to a small CPU run. The keys:

- network (``crowdlib.models.ssrhef``, whose docstring says which layer sizes are inferred): ``width`` (1.0 = the
  paper's 2.04M parameters), ``stem_channels`` (16 per dilated branch), ``dilations`` ([1, 2, 3, 4]),
  ``stage_channels`` ([64, 128, 256] at 1/2, 1/4, 1/8), ``stage_convs`` ([2, 2, 2]), ``seg_kernel`` (1),
  ``fusion`` ("concat" | "sum"), ``fuse_stride`` (8: MSRF and the density map at 1/8), ``fel_channels`` (128),
  ``fel_kernel`` (7), ``head_channels`` (64), ``density_relu`` (False), ``cls_channels`` (16; 0 = Table I
  literally), ``cls_pool`` (16), ``cls_hidden`` (64), ``num_classes`` (K = 15; 0 removes the task, Table VIII).
- ablations (Table VII): ``use_ssr`` (segmentation heads, refining multiplication and the Dice term),
  ``use_fel`` (the feature enhancement layer), ``use_hef`` (False: plain L2 on the density map).
- loss (``crowdlib.losses.ssrhef``): ``hef_form`` ("text": ``(1 - sigma(D))^gamma`` as the text defines the
  factor; "printed": ``sigma(D)^gamma`` as Eq. 4 prints it), ``gamma`` (2), ``hef_detach`` (True: the factor is a
  weight without gradient; False differentiates through it, which rewards inflating over-predictions),
  ``density_scale`` (1.0: targets are multiplied by it and the network predicts scaled densities; the HEF factor
  sees the scaled value, so this and ``fuse_stride`` set how much HEF reweights), ``w_density`` (1),
  ``w_seg`` (lambda_1 = 1e-2), ``w_cls`` (lambda_2 = 1e-3).
- targets: ``density_sigma`` (4.0, a fixed Gaussian as CMTL [35]; ``"adaptive"`` for geometry-adaptive kernels),
  ``seg_template`` (15: the ones template of Sec. III-A), ``cls_thr_mode`` ("dataset": a crop's count is classed
  with Thr = C / K, C the largest training-image count, Table II; "area": Thr is scaled by the crop's share of its
  image's area, since a 1/16 patch of the paper's scheme rarely reaches class 1).
- data: ``{"kind": "synthetic", "presets": [...], "n": per preset, "seed", "height", "width"}`` (optionally
  ``"window": [h, w]``: each scene is rendered at ``height x width`` and an ``h x w`` window of it is kept, so that
  heads keep the preset's calibrated size in pixels and the crowd its density per output cell; see
  :func:`.data.window_record`),
  ``{"kind": "shanghaitech", "root", "part"}`` or ``{"kind": "vgg_cells", "root", "n_train": 100}`` (images 1..100
  train, 101..200 test); any spec may hold ``"limit"`` (first images only, for smoke runs). Validation
  (``val_fraction``, ``split_seed``) is carved from the training images; test images are never used to train or
  select.
- sampling (Sec. IV): ``sampling="paper"``: per training image and epoch ``patch_counts`` ([9, 4, 1]) random
  patches of ``patch_fractions`` ([0.25, 0.5, 1.0]) of its height and width (1/16, 1/4 and all of its area),
  sides rounded down to multiples of 8, with batch size 1; ``"random_crop"``: ``crop`` x ``crop`` random crops
  (padded when the image is smaller), any ``batch_size``. Both flip horizontally with probability ``flip_p`` (0.5)
  and add Gaussian pixel noise of std ``noise_std`` (on [0, 1] intensities; the paper gives no value, 0.02 is ours)
  with probability ``noise_p`` (0.5).
- optimisation: Adam, ``lr`` (3e-5), ``weight_decay`` (0), ``batch_size`` (1), ``max_norm`` (0: no clipping),
  ``schedule`` ("constant" as the paper, which names none; "cosine": linear warm-up over ``warmup_steps``, then
  cosine decay to 0 at ``steps``, :func:`crowdlib.engine.make_lr_schedule`),
  ``steps`` optimizer steps; every ``eval_every`` steps the counts of the validation images are scored and the
  state with the best ``select_metric`` ("mae" or "mse") is kept (``select="best"``) or the last one (``"last"``).
- ``seed``; ``threads``: intra-op threads of training and evaluation (:class:`crowdlib.repro.fixed_threads`).
"""
from __future__ import annotations

import copy
from typing import Any

from crowdlib.models.ssrhef import MODEL_DEFAULTS
from crowdlib.repro import apply_overrides

__all__ = ["DEFAULTS", "make_config"]

#: Defaults of every config key (the paper's method, a small CPU budget).
DEFAULTS: dict[str, Any] = {
    "model": "ssr_hef",
    **copy.deepcopy(MODEL_DEFAULTS),
    "use_hef": True,
    "hef_form": "text",
    "gamma": 2.0,
    "hef_detach": True,
    "density_scale": 1.0,
    "w_density": 1.0,
    "w_seg": 1e-2,
    "w_cls": 1e-3,
    "density_sigma": 4.0,
    "seg_template": 15,
    "cls_thr_mode": "dataset",
    "data": {"kind": "synthetic", "presets": ["shb_like"], "n": 12, "seed": 1, "height": 256, "width": 256},
    "val_fraction": 0.15,
    "split_seed": 0,
    "sampling": "paper",
    "patch_fractions": [0.25, 0.5, 1.0],
    "patch_counts": [9, 4, 1],
    "crop": 128,
    "flip_p": 0.5,
    "noise_p": 0.5,
    "noise_std": 0.02,
    "batch_size": 1,
    "lr": 3e-5,
    "weight_decay": 0.0,
    "max_norm": 0.0,
    "schedule": "constant",
    "warmup_steps": 0,
    "steps": 400,
    "eval_every": 100,
    "select": "best",
    "select_metric": "mae",
    "seed": 0,
    "threads": 1,
}

_CHOICES = {"hef_form": ("text", "printed"), "fusion": ("concat", "sum"), "sampling": ("paper", "random_crop"),
            "select": ("best", "last"), "schedule": ("constant", "cosine"), "select_metric": ("mae", "mse"), "cls_thr_mode": ("dataset", "area")}


def make_config(**overrides: Any) -> dict[str, Any]:
    """:data:`DEFAULTS` with ``overrides`` applied (a ``data`` override of the same kind is merged into the default
    ``data``; another kind replaces it).

    Raises:
        ValueError: on an unknown key, a value outside a key's choices, or a sampling scheme that cannot batch.
    """
    cfg = apply_overrides(DEFAULTS, overrides)
    for k, allowed in _CHOICES.items():
        if cfg[k] not in allowed:
            raise ValueError(f"make_config: {k} must be one of {allowed}, got {cfg[k]!r}")
    if len(cfg["patch_fractions"]) != len(cfg["patch_counts"]):
        raise ValueError("make_config: patch_fractions and patch_counts need the same length")
    if any(not 0 < float(f) <= 1 for f in cfg["patch_fractions"]) or any(int(n) < 0 for n in cfg["patch_counts"]):
        raise ValueError("make_config: patch_fractions must lie in (0, 1] and patch_counts be >= 0")
    if cfg["sampling"] == "paper" and int(cfg["batch_size"]) != 1:
        raise ValueError("make_config: sampling='paper' mixes patch sizes and needs batch_size=1 (as the paper); "
                         "use sampling='random_crop' for larger batches")
    if int(cfg["warmup_steps"]) < 0 or float(cfg["max_norm"]) < 0:
        raise ValueError("make_config: warmup_steps and max_norm must be >= 0")
    if int(cfg["steps"]) < 1 or int(cfg["eval_every"]) < 1:
        raise ValueError("make_config: steps and eval_every must be >= 1")
    return cfg
