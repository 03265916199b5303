"""Bi-knowledge transfer run configuration: one hashable dict (:data:`DEFAULTS`) whose stage sub-configs
(:func:`regressor_config`, :func:`phi_config`, :func:`detector_config`) are cached on their own under
``crowdlib.repro.get_or_train(..., name="bkt")``, so that the settings of Tables 1-4 share the source models. The
method's values default to the paper's (Secs. 3-4.2); budgets (steps, image sizes, widths) default to a small CPU run.

- domains: ``source`` and ``target`` ``{"preset", "n", "seed", "height", "width", "test_n", "test_seed",
  "window"}``: synthetic scenes (:func:`crowdlib.methods.bkt.data.domain_records`) rendered at ``height x width`` (``None``: the
  preset's own size, the one its head sizes are calibrated at) and, with ``window = [h, w]``, cut to one window each
  (:func:`crowdlib.data.windows.window_records`: head sizes in pixels and people per output cell as calibrated). Source validation (``val_fraction``, ``split_seed``) is
  carved from the source training images and is the only split any choice is made on; target training images are
  used without their labels (:func:`~crowdlib.methods.bkt.data.unlabeled`), target test images only to score.
- kernel rule (Eq. 1, shared by the source ground truth and Psi, "the Gaussian kernels adopted in the same rule"):
  ``sigma_j = sigma_factor * s_j`` with ``s_j`` the head size: the detector's LUDA pseudo size on the source
  (``gt_sizes="luda"``, the rule D learns sizes by) or the true synthetic size (``"true"``), D's predicted size in
  Psi; the kernel covers ``|t| <= int(truncate * sigma + 0.5)``, so ``k = 2 * that + 1`` (the ``k`` of Eq. 8's window).
- ``regressor``: :data:`crowdlib.models.bkt.REGRESSOR_DEFAULTS` plus ``lr``, ``steps``, ``batch_size``, ``crop``,
  ``eval_every`` (source training, Adam, random crops and flips; best validation MAE kept).
- ``phi``: :data:`crowdlib.models.bkt.PHI_DEFAULTS` plus ``lr`` (paper 1e-5), ``steps``, ``batch_size``, ``crop``
  (paper 224), ``eval_every`` (best validation mAP kept), ``threshold`` (0.2, on ``sigmoid(z)``; on ``z`` with
  ``form="literal"``), ``merge`` (10: peaks in one 10 x 10 area merge to the highest) and ``input_stride`` (8: Phi is
  trained on the ground-truth density sum-pooled to R's output stride and upsampled as R's maps are, so that its
  source input has the form of its target input; 1: the full-resolution ground truth, the paper's literal input).
- ``detector``: overrides of :func:`crowdlib.methods.sdnet.default_config` (its ``data`` is set from ``source``);
  its source validation MAE every ``train.val_every`` epochs picks the state kept (``keep_best``), as R's and Phi's.
- fusion (Eq. 8 and Sec. 3.4): ``fusion`` (False: Table 2's "w/o Fusion"), ``fuse_nms_iou`` (0.3; boxes of D's
  predicted size), ``nn_size_factor`` (1.0: upper-half sizes = this x the nearest-neighbour distance).
- selection: ``selection`` ("paper" or "random", Table 2's "w/ RS"), ``patch`` (224), ``patches_per_image`` (2),
  ``r_range`` ([0.5, 0.7]), ``r_range_mode`` ("rank": the patch's density percentile among the image's patches;
  "max": its density over the image's densest patch), ``d_score`` ("detections": mean score of the detections in the
  patch, empty patches 0; "map": mean of the confidence map W).
- cycles: ``cycles`` (T, paper 4), ``r_lr`` (1e-6), ``d_lr`` (1e-5), ``r_layers`` (2), ``r_steps`` and ``d_steps``
  (optimizer steps per cycle), ``cycle_batch`` (patches per step), ``keep_bn`` (True: BatchNorm statistics frozen
  during fine-tuning; batches of two patches cannot estimate them), ``r_context`` (what R sees while it is
  fine-tuned on a selected patch: ``"image"`` (default), the whole image, with the loss on the patch's output cells
  only, so R meets the patch in the context it has at inference; ``"patch"``, the patch cut out alone, the paper's
  literal crop. The paper's 224 px patches on ~1024 px images lose little context at their borders; a patch of a
  small window loses much (R_0 on an 80 px patch alone counts 19% less than in its 224 x 320 window on B->A, 31% more
  on A->B), and fine-tuning on it pulls R toward that gap, not toward the fused map), ``d_context`` (the same for
  D: ``"image"`` (default), D sees the whole image and the CSP loss is taken on its output cells over the patch;
  ``"patch"``, the patch alone; D_0 finds twice as many heads in an 80 px patch alone as in the same region of its
  window on B->A, half as many on A->B).
- ``d_threshold``: D's counting threshold (the paper names none). ``"source"``: the one chosen on the source
  validation split when D_0 was trained (Crowd-SDNet's grid 0.05-0.95), kept through the cycles; ``"refit"``:
  re-chosen on the same source validation split for D_0 and after each cycle's fine-tuning, on a grid reaching
  0.005 (:data:`crowdlib.methods.bkt.cycles.REFIT_GRID`), so that the count follows D's scores as the cycles move
  them. Either way no target label is read.
- ``d_loss``: D's loss in the cycles. ``"csp"`` (default): the loss the paper trains its D with (Sec. 3.1, "CSP ...
  trained with the cross-entropy classification loss and the smooth-L1 loss"), i.e. Crowd-SDNet's criterion with
  ``crowd_aware=False``; ``"sdnet"``: Crowd-SDNet's crowdedness-aware size loss (``alpha_j = |R_j|`` from LUDA on
  the fused points), the loss D_0 was trained with on the source. D_0's source training is Crowd-SDNet's either way.
- ``phi_threshold``: how Phi's map is binarised wherever Phi(R) is used. ``"paper"``: ``phi.threshold`` (0.2, the
  paper's, for its L_Phi); ``"refit"``: the threshold that minimises the count MAE of Phi(R_0)'s points on the
  source validation split (:func:`crowdlib.methods.bkt.infer.refit_phi_threshold`), for a Phi whose loss (e.g.
  focal CE, or a squared-error loss on ``form="literal"``) puts its scores on another scale than the paper's; the
  search covers every candidate score (:func:`crowdlib.methods.bkt.infer.choose_phi_threshold`). Phi's step is
  chosen by the source validation mAP at the same policy's threshold (refit: on the ground-truth density's points).
- ``seed``; ``threads`` (:class:`crowdlib.repro.fixed_threads`).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from crowdlib.models.bkt import PHI_DEFAULTS, REGRESSOR_DEFAULTS

__all__ = ["DEFAULTS", "make_config", "regressor_config", "phi_config", "detector_config", "SHARED_KEYS"]

DEFAULTS: dict[str, Any] = {
    "source": {"preset": "shb_like", "n": 24, "seed": 1, "height": 256, "width": 320, "test_n": 8, "test_seed": None,
               "window": None},
    "target": {"preset": "sha_like", "n": 24, "seed": 2, "height": 256, "width": 320, "test_n": 12, "test_seed": None,
               "window": None},
    "val_fraction": 0.2,
    "split_seed": 0,
    "sigma_factor": 0.25,
    "truncate": 2.0,
    "gt_sizes": "luda",
    "regressor": {**copy.deepcopy(REGRESSOR_DEFAULTS), "lr": 1e-4, "steps": 300, "batch_size": 4, "crop": 128,
                  "eval_every": 100},
    "phi": {**copy.deepcopy(PHI_DEFAULTS), "lr": 1e-4, "steps": 300, "batch_size": 4, "crop": 128, "eval_every": 100,
            "threshold": 0.2, "merge": 10, "input_stride": 8},
    "detector": {"model": {"backbone": "mobilenet_v2", "pretrained": True, "width": 32},
                 "train": {"epochs": 6, "batch_size": 4, "lr": 3e-4, "crop": 128, "val_every": 5,
                           "keep_best": True}},
    "fusion": True,
    "fuse_nms_iou": 0.3,
    "nn_size_factor": 1.0,
    "selection": "paper",
    "patch": 224,
    "patches_per_image": 2,
    "r_range": [0.5, 0.7],
    "r_range_mode": "rank",
    "d_score": "detections",
    "cycles": 4,
    "r_lr": 1e-6,
    "d_lr": 1e-5,
    "r_layers": 2,
    "r_steps": 20,
    "d_steps": 20,
    "cycle_batch": 2,
    "keep_bn": True,
    "r_context": "image",
    "d_context": "image",
    "d_threshold": "source",
    "d_loss": "csp",
    "phi_threshold": "paper",
    "seed": 0,
    "threads": 1,
}

#: Keys every stage sub-config carries.
SHARED_KEYS = ("source", "val_fraction", "split_seed", "sigma_factor", "truncate", "gt_sizes", "detector", "seed",
               "threads")
_NESTED = ("source", "target", "regressor", "phi")
_CHOICES = {"gt_sizes": ("luda", "true"), "selection": ("paper", "random"), "r_range_mode": ("rank", "max"),
            "d_score": ("detections", "map"), "d_threshold": ("source", "refit"),
            "d_loss": ("csp", "sdnet"), "phi_threshold": ("paper", "refit"), "r_context": ("image", "patch"),
            "d_context": ("image", "patch")}


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else copy.deepcopy(v)
    return out


def make_config(**overrides: Any) -> dict[str, Any]:
    """:data:`DEFAULTS` with ``overrides`` (nested dicts merged key by key).

    Raises:
        ValueError: on an unknown key (top level or inside ``source``, ``target``, ``regressor``, ``phi``), a value
            outside a key's choices, a patch that is not a multiple of 8, or a bad range.
    """
    bad = sorted(set(overrides) - set(DEFAULTS))
    if bad:
        raise ValueError(f"make_config: unknown config key(s) {bad}; valid keys: {sorted(DEFAULTS)}")
    for k in _NESTED:
        if k in overrides:
            if not isinstance(overrides[k], Mapping):
                raise ValueError(f"make_config: {k} must be a dict, got {type(overrides[k]).__name__}")
            inner = sorted(set(overrides[k]) - set(DEFAULTS[k]))
            if inner:
                raise ValueError(f"make_config: unknown {k} key(s) {inner}; valid: {sorted(DEFAULTS[k])}")
    cfg = _merge(DEFAULTS, overrides)
    for k, allowed in _CHOICES.items():
        if cfg[k] not in allowed:
            raise ValueError(f"make_config: {k} must be one of {allowed}, got {cfg[k]!r}")
    lo, hi = (float(v) for v in cfg["r_range"])
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"make_config: r_range must satisfy 0 <= low <= high <= 1, got {cfg['r_range']}")
    for key in ("patch",):
        if int(cfg[key]) < 8 or int(cfg[key]) % 8:
            raise ValueError(f"make_config: {key} must be a positive multiple of 8, got {cfg[key]}")
    for sub in ("regressor", "phi"):
        if int(cfg[sub]["crop"]) % 8 or int(cfg[sub]["crop"]) < 8:
            raise ValueError(f"make_config: {sub}.crop must be a positive multiple of 8, got {cfg[sub]['crop']}")
        if int(cfg[sub]["steps"]) < 1 or int(cfg[sub]["eval_every"]) < 1:
            raise ValueError(f"make_config: {sub}.steps and {sub}.eval_every must be >= 1")
    for dom in ("source", "target"):
        win = cfg[dom].get("window")
        if win is not None and (len(win) != 2 or any(int(v) < 8 or int(v) % 8 for v in win)):
            raise ValueError(f"make_config: {dom}.window must be None or [h, w], multiples of 8, got {win!r}")
    if int(cfg["cycles"]) < 0 or int(cfg["patches_per_image"]) < 1:
        raise ValueError("make_config: cycles must be >= 0 and patches_per_image >= 1")
    if int(cfg["phi"]["input_stride"]) not in (1, 8):
        raise ValueError(f"make_config: phi.input_stride must be 1 or 8, got {cfg['phi']['input_stride']}")
    return cfg


def _size(v: Any) -> int | None:
    return None if v is None else int(v)


def _shared(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(cfg[k]) for k in SHARED_KEYS}


def regressor_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The sub-config that fixes R's source training (cache key of stage ``"regressor"``)."""
    return {"stage": "regressor", **_shared(cfg), "regressor": copy.deepcopy(cfg["regressor"])}


def phi_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The sub-config that fixes Phi's source training (stage ``"phi"``)."""
    return {"stage": "phi", **_shared(cfg), "phi": copy.deepcopy(cfg["phi"]), "phi_threshold": cfg["phi_threshold"]}


def detector_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The full Crowd-SDNet config of D (:func:`crowdlib.methods.sdnet.default_config` merged with ``detector``,
    its data the source domain's training images, its validation split the source split)."""
    from crowdlib.methods.sdnet import default_config, merge_config

    src = cfg["source"]
    data = {"source": "synthetic", "presets": [[src["preset"], int(src["n"])]], "seed": int(src["seed"]),
            "height": _size(src["height"]), "width": _size(src["width"])}
    if src.get("window"):
        data["window"] = [int(v) for v in src["window"]]
    out = merge_config(default_config(), cfg["detector"])
    out.update(data=data, val_fraction=float(cfg["val_fraction"]), split_seed=int(cfg["split_seed"]),
               seed=int(cfg["seed"]), threads=int(cfg["threads"]))
    out["model"]["model"] = "csp_sdnet"
    return out
