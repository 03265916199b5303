"""IIM (Gao et al., "Learning Independent Instance Maps for Crowd Localization"): a confidence map binarized by a
learned threshold into one blob per head (used by notebooks 20-23 and 91).

The paper's pipeline, one public name per step:

1. A run is one flat, hashable config (:data:`DEFAULTS`, :func:`make_config`; ``config.py``).
2. Data and ground truth: :func:`load_records`, independent instance maps (or the baselines' density / dot maps)
   built on each augmented crop by :class:`IIMTargets`, NWPU sigmas and levels for scoring by
   :func:`gt_for_scoring` (``data.py``).
3. The network and its loss: ``crowdlib.models.iim`` (confidence predictor, IBM / PBM threshold encoders) and
   ``crowdlib.losses.iim`` (MSE on the confidence, L1 through the binarization layer, Sec. 3.1-3.3).
4. Training with model selection on validation carved from the training images: :func:`train_iim`, cached by
   :func:`get_or_train_iim`; warm starts from another cached run (``train.py``).
5. Inference and decoding: :func:`predict_maps` (sliding windows), :func:`decode_iim` (4-connected components, at
   least ``min_area`` pixels; the centroid of a component is a head), :func:`decode_baseline` (``infer.py``).
6. Scoring with the NWPU protocol: :func:`score_points`, :func:`evaluate_model`, :func:`threshold_stats`.
7. ShanghaiTech B (notebook 23): :func:`learning_curve`, :func:`curve_trend`, :func:`target_ceiling` (the F1 a
   perfect model reaches at a training scale), :func:`table4_frame`, :func:`level_recall_frame` (``shb.py``).
8. The paper's studies: :func:`staged_config`, :func:`run_settings` (Table 3 / Table 5 grids through
   :func:`crowdlib.study.run_study`), the paper's numbers and its claims (``study.py``).
"""
from __future__ import annotations

from .config import DEFAULTS, make_config
from .data import IIMTargets, gt_for_scoring, load_records, shb_test_records, targets_for
from .infer import (DENSITY_THRESHOLDS, DOTMAP_THRESHOLDS, PEAK_WINDOWS, choose_decode_params, decode_baseline,
                    decode_components, decode_iim, evaluate_model, pixel_balance_sweep, predict_maps, score_points,
                    threshold_stats)
from .study import (ENCODER_KEYS, HIGHER_IS_BETTER, METRICS, PAPER_LEVEL_RECALL_GPR, PAPER_LEVEL_RECALL_IIM,
                    PAPER_LEVEL_RECALL_RAZ, PAPER_TABLE3, PAPER_TABLE5, TABLE3_SETTINGS, TABLE5_SETTINGS,
                    claim_sentences, image_thresholds, loss_name, rows_from_long, run_settings, scratch_config,
                    setting_config, staged_config,
                    table3_claims, table3_readings, table5_claims, threshold_start_end, threshold_trajectory,
                    training_summary, trunk_config)
from .shb import PAPER_TABLE4_SHB, curve_trend, learning_curve, level_recall_frame, table4_frame, target_ceiling
from .train import get_or_train_iim, load_trained, lr_lambdas, split_records, train_iim

__all__ = [
    "DEFAULTS", "make_config",
    "load_records", "shb_test_records", "IIMTargets", "targets_for", "gt_for_scoring",
    "train_iim", "get_or_train_iim", "load_trained", "lr_lambdas", "split_records",
    "DENSITY_THRESHOLDS", "DOTMAP_THRESHOLDS", "PEAK_WINDOWS", "predict_maps", "decode_components", "decode_iim",
    "decode_baseline", "score_points", "evaluate_model", "choose_decode_params", "threshold_stats",
    "pixel_balance_sweep",
    "ENCODER_KEYS", "trunk_config", "staged_config", "scratch_config", "setting_config", "run_settings",
    "rows_from_long", "claim_sentences", "table3_claims", "table3_readings", "threshold_trajectory",
    "threshold_start_end", "image_thresholds", "loss_name", "training_summary", "table5_claims", "TABLE3_SETTINGS",
    "TABLE5_SETTINGS",
    "PAPER_TABLE3", "PAPER_TABLE5", "PAPER_LEVEL_RECALL_IIM", "PAPER_LEVEL_RECALL_GPR", "PAPER_LEVEL_RECALL_RAZ",
    "METRICS", "HIGHER_IS_BETTER",
    "PAPER_TABLE4_SHB", "learning_curve", "curve_trend", "target_ceiling", "table4_frame", "level_recall_frame",
]
