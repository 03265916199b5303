"""L2R run configuration: one flat, hashable dict (:data:`DEFAULTS`), so that
``crowdlib.repro.get_or_train(cfg, train_l2r, name="l2r")`` shares a trained model between notebooks whose configs
coincide. The keys:

- network and loss (``crowdlib.models.l2r``): ``backbone`` ("mobilenet_v2" with the offline ImageNet weights on the
  CPU profiles; "vgg16" as the paper, from scratch unless its file is present; "tiny" for tests), ``pretrained``
  (ImageNet initialisation, Table 2's second factor), ``freeze_bn`` (``"pretrained"``: batch norm in eval mode only
  in ImageNet-initialised runs; :func:`crowdlib.models.l2r.resolve_freeze_bn`), ``head_kernel`` (3),
  ``density_relu`` (False), ``density_scale`` (1: targets are people per output unit), ``w_count`` (1), ``lam`` (lambda of
  ``L = L_c + lambda L_r``; the review gives no value: 1), ``margin`` (eps of the hinge; not in the review: 0).
- paradigm (Table 2): ``"count"`` (counting only), ``"rank_finetune"`` (``rank_steps`` ranking steps, then
  ``steps`` counting steps), ``"alternate"`` (blocks of ``alternate_every`` ranking steps and ``alternate_every``
  counting steps, ranking first, until ``steps`` counting steps are done), ``"multitask"`` (``steps`` steps, each
  with both losses on one mini-batch), ``"rank"`` (ranking only, ``rank_steps`` steps; notebook 40). Every
  paradigm that counts makes the same ``steps`` counting updates on the same labelled crops; see
  :func:`crowdlib.methods.l2r.train.phase` and :func:`~crowdlib.methods.l2r.train.schedule`.
- nests (the ranking set): ``nest_k`` sub-crops below the outer crop (``nest_k + 1`` crops per nest; paper: 4),
  ``nest_scale`` (side ratio between consecutive crops; paper: 0.75), ``anchor_region`` (the anchor is drawn in the
  central box of this fraction of each side; 0.5), ``nests_per_batch`` (nests in one mini-batch).
- labelled crops: ``batch_size`` labelled crops per step, squares of side ``crop_range`` x the image's short side
  (uniform), at a uniform position, resized to ``input_size`` (the paper: 224) as the nests are, flipped with
  ``flip_p``; ``density_sigma``: the Gaussian of each head in input pixels before the map is sum-pooled to the
  ``input_size / 16`` grid (0: the count of heads per cell).
- evaluation: whole images resized so that their short side is ``test_side`` px (a zoom inside the training crops'
  range), padded to multiples of 16; count = the map's sum / ``density_scale``.
- data: ``data``, the labelled spec: ``{"kind": "synthetic", "presets": [...], "n", "seed", "height", "width"}`` or
  ``{"kind": "shanghaitech", "root", "part"}`` (optionally ``"limit"``); ``pool``: a list of unlabeled specs of
  the same forms or ``{"kind": "adipocyte", "root"}`` (their annotations are dropped when read: see
  :func:`~crowdlib.methods.l2r.data.load_pool`); ``load_side`` (images whose short side is longer are downscaled
  when read). Validation (``val_fraction``, ``split_seed``) is carved once from the labelled training images;
  ``labelled_fraction`` of the rest is kept (a prefix of a ``fraction_seed`` permutation, so that smaller
  fractions are subsets of larger ones), so that every fraction is selected on the same validation images.
- optimisation: ``optimizer`` ("sgd" as the paper, momentum ``momentum``; or "adam"), ``lr``, ``weight_decay``,
  ``max_norm`` (0: no clipping); every ``eval_every`` steps of a counting phase the validation counts are scored and
  the best state (``select="best"``, on ``select_metric``) or the last is kept; ranking-only runs keep the last.
- ``seed``; ``threads``: intra-op threads of training and evaluation (:class:`crowdlib.repro.fixed_threads`).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from crowdlib.models.l2r import MODEL_DEFAULTS, resolve_freeze_bn
from crowdlib.repro import apply_overrides

__all__ = ["DEFAULTS", "PARADIGMS", "make_config"]

#: Training paradigms (Table 2 and the ranking-only model of notebook 40).
PARADIGMS = ("count", "rank_finetune", "alternate", "multitask", "rank")

#: Defaults of every config key (the paper's method, a small CPU budget).
DEFAULTS: dict[str, Any] = {
    "model": "l2r",
    **copy.deepcopy(MODEL_DEFAULTS),
    "paradigm": "multitask",
    "steps": 300,
    "rank_steps": 300,
    "alternate_every": 25,
    "nest_k": 4,
    "nest_scale": 0.75,
    "anchor_region": 0.5,
    "nests_per_batch": 1,
    "batch_size": 4,
    "input_size": 128,
    "crop_range": [0.5, 1.0],
    "flip_p": 0.5,
    "density_sigma": 4.0,
    "test_side": 160,
    "data": {"kind": "synthetic", "presets": ["shb_like"], "n": 48, "seed": 1, "height": 192, "width": 256},
    "pool": [{"kind": "synthetic", "presets": ["shb_like"], "n": 200, "seed": 2, "height": 192, "width": 256}],
    "load_side": 256,
    "val_fraction": 0.15,
    "split_seed": 0,
    "labelled_fraction": 1.0,
    "fraction_seed": 0,
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 1e-3,
    "weight_decay": 5e-4,
    "max_norm": 0.0,
    "eval_every": 50,
    "select": "best",
    "select_metric": "mae",
    "seed": 0,
    "threads": 1,
}

_CHOICES = {"paradigm": PARADIGMS, "optimizer": ("sgd", "adam"), "select": ("best", "last"),
            "select_metric": ("mae", "mse"), "backbone": ("mobilenet_v2", "vgg16", "tiny")}


def make_config(**overrides: Any) -> dict[str, Any]:
    """:data:`DEFAULTS` with ``overrides`` applied (a ``data`` override of the same kind is merged into the default
    ``data``; another kind replaces it; ``pool`` is replaced as a whole).

    Raises:
        ValueError: on an unknown key, a value outside a key's choices or range.
    """
    if isinstance(overrides.get("pool"), Mapping):  # one pool spec given as a dict
        overrides = {**overrides, "pool": [dict(overrides["pool"])]}
    cfg = apply_overrides(DEFAULTS, overrides)
    for k, allowed in _CHOICES.items():
        if cfg[k] not in allowed:
            raise ValueError(f"make_config: {k} must be one of {allowed}, got {cfg[k]!r}")
    for k in ("steps", "rank_steps", "alternate_every", "nest_k", "batch_size", "eval_every", "nests_per_batch"):
        if int(cfg[k]) < 1:
            raise ValueError(f"make_config: {k} must be >= 1, got {cfg[k]}")
    if not 0 < float(cfg["nest_scale"]) < 1:
        raise ValueError(f"make_config: nest_scale must lie in (0, 1), got {cfg['nest_scale']}")
    if not 0 <= float(cfg["anchor_region"]) <= 1:
        raise ValueError(f"make_config: anchor_region must lie in [0, 1], got {cfg['anchor_region']}")
    lo, hi = (float(x) for x in cfg["crop_range"])
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"make_config: crop_range must be [lo, hi] with 0 < lo <= hi <= 1, got {cfg['crop_range']}")
    if int(cfg["input_size"]) < 16 or int(cfg["input_size"]) % 16:
        raise ValueError(f"make_config: input_size must be a multiple of 16 (the stride), got {cfg['input_size']}")
    if int(cfg["test_side"]) < 16:
        raise ValueError(f"make_config: test_side must be >= 16, got {cfg['test_side']}")
    if not 0 < float(cfg["labelled_fraction"]) <= 1:
        raise ValueError(f"make_config: labelled_fraction must lie in (0, 1], got {cfg['labelled_fraction']}")
    if float(cfg["lam"]) < 0 or float(cfg["margin"]) < 0 or float(cfg["w_count"]) < 0:
        raise ValueError("make_config: lam, margin and w_count must be >= 0")
    resolve_freeze_bn(cfg["freeze_bn"], cfg["pretrained"])  # a named error on a value outside its choices
    if not isinstance(cfg["pool"], list) or (cfg["paradigm"] != "count" and not cfg["pool"]):
        raise ValueError("make_config: pool must be a list of unlabeled data specs (non-empty for a paradigm that "
                         "ranks)")
    return cfg
