"""IIM run configuration: one flat, hashable dict (:data:`DEFAULTS`), so that
``crowdlib.repro.get_or_train(cfg, train_iim, name="iim")`` shares a trained model between notebooks whose configs
coincide. The keys:

- ``model``: ``"iim"`` (confidence predictor + optional threshold encoder), ``"iim_density"`` (density map,
  GPR-like peaks) or ``"iim_dotmap"`` (dilated dot map, local maxima); the network keys of
  :func:`crowdlib.models.iim.build_iim` (``encoder``, ``l1_area``, ``k``, ``backbone``, ``fpn_channels``...).
- ``data``: ``{"kind": "synthetic", "presets": [...], "n": per preset, "seed", "height", "width"}`` or
  ``{"kind": "shanghaitech", "root": str, "part": "B"}``. The validation split (``val_fraction``) is carved from
  these training images with ``split_seed``; test images are never used for training or selection.
- ``target``: instance maps from true boxes (``inst_min_half``/``inst_max_half``) when the records have boxes;
  from points with a fixed size (``point_size``) and IIM's overlap removal otherwise (the authors' issue-tracker
  fallback; they used a separately trained scale network). Density maps: fixed Gaussian ``density_sigma``.
  Dot maps: crosses of arm ``dot_radius``.
- optimisation: Adam, ``lr`` (confidence predictor) and ``lr_encoder`` (threshold encoder; the authors use a
  10x smaller rate, 1e-5 / 1e-6, in an optimizer of its own), ``weight_decay``, poly decay (power ``poly_power``)
  over ``steps`` steps of ``batch_size`` random ``crop`` crops (scale jitter ``scale_range``, flips). With
  ``encoder_schedule="own"`` (the authors' separate optimizer) the encoder's poly decay starts at its own first
  step; ``"shared"`` puts it on the predictor's schedule, which after a warm start is already at its tail.
  ``eval_every`` steps the model is scored on the validation images and the best F1 (sigma_l) checkpoint is kept
  (``select="best"``) or the last one (``select="last"``); only points after ``select_after`` steps may be chosen
  (so that a baseline trained from scratch has as many checkpoint choices as a warm-started IIM row).
- ``head_full_res``: the paper's full-resolution confidence head (default) or ``False``: stop at stride 2 and
  upsample (a CPU saving that costs F1 when decoding small heads).
- ``dot_loss``: the cruciform dot-map baseline's loss, ``"mse"`` (the same pixel MSE as IIM's confidence map:
  Table 5 compares ground-truth forms on one network) or ``"bce_balanced"`` (class-balanced BCE, positive weight
  #neg / #pos capped at 50).
- ``threads``: intra-op threads of training and evaluation (runs are deterministic at a given count; the synthetic
  studies run one thread per process, a single long real-data run may use more).
- warm start: ``init`` is another config (or ``None``); its trained weights (through the same cache) initialise
  this model's matching parameters (the threshold encoder starts fresh). With ``sched_offset`` and
  ``sched_total`` the poly schedule continues where the initialising run stopped, so that a run of ``A`` steps
  followed by one of ``B`` steps follows one schedule of ``A + B`` steps.
"""
from __future__ import annotations

from typing import Any

from crowdlib.repro import apply_overrides



__all__ = ["DEFAULTS", "make_config"]


#: Defaults of every config key (the tiny CPU profile; notebooks override from their params files).
DEFAULTS: dict[str, Any] = {
    "model": "iim",
    "encoder": "pbm",
    "l1_area": "both",
    "k": 0.2,
    "fixed_threshold": 0.5,
    "backbone": "tiny",
    "pretrained": False,
    "fpn_channels": 32,
    "head_channels": 16,
    "head_full_res": True,
    "pbm_widths": [64, 32, 16],
    "pbm_pool": 15,
    "pbm_scale": 10.0,
    "activation": "compressed",
    "w_mse": 1.0,
    "w_l1": 1.0,
    "density_scale": 100.0,
    "density_sigma": 4.0,
    "dot_radius": 2,
    "dot_loss": "mse",
    "data": {"kind": "synthetic", "presets": ["crowd_a", "crowd_b"], "n": 60, "seed": 1, "height": 256, "width": 256},
    "val_fraction": 0.15,
    "split_seed": 0,
    "inst_min_half": 3.0,
    "inst_max_half": 25.0,
    "point_size": 16.0,
    "crop": 128,
    "scale_range": [0.8, 1.2],
    "color_jitter": 0.1,
    "batch_size": 8,
    "steps": 600,
    "eval_every": 200,
    "lr": 1e-3,
    "lr_encoder": 1e-4,
    "encoder_schedule": "own",
    "weight_decay": 1e-5,
    "poly_power": 0.9,
    "min_area": 3,
    "eval_window": 1024,
    "eval_scale": 1.0,
    "init": None,
    "sched_offset": 0,
    "sched_total": None,
    "select": "best",
    "select_after": 0,
    "seed": 0,
    "threads": 1,
}


def make_config(**overrides: Any) -> dict[str, Any]:
    """:data:`DEFAULTS` with ``overrides`` applied (a ``data`` override is merged into the default ``data``).

    Raises:
        ValueError: on an unknown key.
    """
    cfg = apply_overrides(DEFAULTS, overrides)
    return cfg
