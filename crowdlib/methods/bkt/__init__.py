"""Regression-detection bi-knowledge transfer (Liu, Wang, Shi, Satoh, Zhao, Yang; ACM MM 2020): a density
regressor R and a point-supervised detector D trained on a labelled source domain teach each other on an unlabelled
target domain through the Det-to-Reg transformer Psi and the learnt Reg-to-Det transformer Phi; notebooks 50-54.
No code was published; this is its first public implementation.

The paper's pipeline, one public name per step:

1. A run is one hashable config (:data:`DEFAULTS`, :func:`make_config`); its source stages have their own
   sub-configs and cache entries (:func:`regressor_config`, :func:`phi_config`, :func:`detector_config`).
2. Domains and source ground truth (``data.py``): :func:`domain_records`, :func:`split_source` (the only split
   anything is chosen on), :func:`unlabeled` (all the target side sees), Eq. 1's kernel rule (:func:`gt_density`),
   dot maps (:func:`dot_map`).
3. Networks and losses: ``crowdlib.models.bkt`` (R: :class:`~crowdlib.models.bkt.DensityRegressor`, Phi:
   :class:`~crowdlib.models.bkt.RegToDet`), ``crowdlib.losses.bkt`` (DMS-SSIM, focal MSE of Eqs. 4-6, Table 4's
   alternatives); D is Crowd-SDNet's detector (``crowdlib.methods.sdnet``: ``train_sdnet``, ``decode_csp``,
   ``load_detector``).
4. Source training (``train.py``): :func:`train_regressor`, :func:`train_phi`, :func:`train_detector`, cached per
   stage by :func:`get_or_train_stage`; :func:`source_models` gives R_0, D_0, Phi.
5. Transformers, fusion and selection (``fusion.py``): :func:`psi` (Eq. 1), :func:`phi_points` (binarise at 0.2,
   merge in 10 x 10), :func:`confidence_map` and :func:`fuse_density` (Eq. 8), :func:`fuse_detections` (union + NMS,
   sizes by image half), :func:`select_patches`; per image :func:`pseudo_labels` (``infer.py``).
6. The cycles (``cycles.py``): :func:`transfer_cycles`, :func:`run_transfer` (one config end to end, cached by
   :func:`get_or_run_transfer`), :func:`cycle_models` (R_t, D_t), :func:`score_models` (MAE, MSE = RMSE, mAP).
7. Metrics (``evaluate.py``): :func:`paper_point_map` (Sec. 4.2's nearest-ground-truth rule), :func:`localization_map`.
8. Studies (``study.py``, notebooks 51-54): the settings of Tables 1-4 (:func:`table1_settings` ..
   :func:`table4_settings`), :func:`run_settings` over :func:`crowdlib.study.run_study` (scored on the target test
   images only), the paper's numbers (:data:`PAPER_TABLE1` .. :data:`PAPER_TABLE4`) and the claims
   (:func:`table1_claims` .. :func:`table4_claims`).
"""
from __future__ import annotations

from .config import DEFAULTS, detector_config, make_config, phi_config, regressor_config
from .cycles import (REFIT_GRID, cycle_detector_criterion, cycle_models, finetune_detector, finetune_regressor,
                     get_or_run_transfer, refit_det_threshold, run_transfer, score_models, transfer_cycles)
from .data import (domain_records, dot_map, gt_density, head_sizes, kernel_sigmas, pool_density, split_source,
                   unlabeled, upsample_density)
from .evaluate import count_errors, localization_map, paper_point_map
from .fusion import (confidence_map, fuse_density, fuse_detections, kernel_radii, patch_grid, phi_points, psi,
                     select_patches)
from .infer import (choose_phi_threshold, image_tensor, predict_cells, pseudo_labels, refit_phi_threshold,
                    run_detector, run_phi)
from .study import (PAPER_TABLE1, PAPER_TABLE2, PAPER_TABLE3, PAPER_TABLE4, PAPER_TEXT, PHI_LOSS_NAMES, cycle_gain_long,
                    cycle_history, paper_table1_frame, run_settings, setting, setting_config, source_summary,
                    table1_claims, table1_settings, table2_claims, table2_settings, table3_claims, table3_settings,
                    table4_claims, table4_settings, choose_phi_form, table_rows, view_metrics)
from .train import (get_or_train_stage, load_detector, load_phi, load_regressor, source_maps, source_models,
                    train_detector, train_phi, train_regressor, train_stage)

__all__ = [
    "DEFAULTS", "make_config", "regressor_config", "phi_config", "detector_config",
    "domain_records", "split_source", "unlabeled", "head_sizes", "kernel_sigmas", "gt_density", "dot_map",
    "pool_density", "upsample_density",
    "source_maps", "train_regressor", "train_phi", "train_detector", "train_stage", "get_or_train_stage",
    "load_regressor", "load_phi", "load_detector", "source_models",
    "psi", "kernel_radii", "confidence_map", "fuse_density", "phi_points", "fuse_detections", "patch_grid",
    "select_patches", "image_tensor", "predict_cells", "run_detector", "run_phi", "pseudo_labels",
    "choose_phi_threshold", "refit_phi_threshold",
    "finetune_regressor", "finetune_detector", "transfer_cycles", "run_transfer", "get_or_run_transfer",
    "cycle_models", "score_models", "refit_det_threshold", "cycle_detector_criterion", "REFIT_GRID",
    "paper_point_map", "localization_map", "count_errors",
    "PAPER_TEXT", "PAPER_TABLE1", "PAPER_TABLE2", "PAPER_TABLE3", "PAPER_TABLE4", "PHI_LOSS_NAMES", "setting",
    "table1_settings", "table2_settings", "table3_settings", "table4_settings", "setting_config", "view_metrics",
    "run_settings", "table_rows", "cycle_gain_long", "table1_claims", "table2_claims", "table3_claims",
    "table4_claims", "choose_phi_form", "paper_table1_frame", "cycle_history", "source_summary",
]
