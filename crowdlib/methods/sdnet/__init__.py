"""Crowd-SDNet (Wang et al., IEEE TIP 2021): a point-supervised detector that learns box sizes by self-training.

The paper's pipeline, one public name per step (Sec. III-B to III-D, Algorithm 1):

1. Initial pseudo sizes from head points: :func:`initial_sizes` (LUDA, GAK or true sizes), kept with their
   confidence (prior 0.6) and crowdedness ``|R_j|`` in a :class:`PseudoBoxStore` (``store.py``).
2. Targets from the CURRENT store, crop by crop: :class:`SDNetTargets`; the detector and its crowdedness-aware loss:
   :func:`build_detector` (``crowdlib.models.csp`` / ``crowdlib.losses.csp``).
3. Confidence- and order-aware refinement after every step: :class:`Refiner` applying :func:`refine_rule`.
4. Training one configuration: :func:`train_sdnet` (``train.py``; resumable, cached through :func:`run_config`).
5. Inference: :class:`MultiScale`, :func:`decode_csp`, :func:`predict_sdnet`, and the count threshold chosen on
   validation, :func:`choose_threshold` (``infer.py``).
6. Scoring: :func:`evaluate_sdnet` (box AP on size subsets, MAE, NAE), :func:`pseudo_box_quality`,
   :func:`evaluate_points` (``evaluate.py``).
7. The paper's studies: :func:`experiment_config`, :func:`run_settings` (the Table III grid through
   :func:`crowdlib.study.run_study`), the table builders and the paper's claims (``study.py``).

Other papers use this detector only through these names (bi-knowledge transfer reuses :func:`train_sdnet`,
:func:`predict_sdnet` and :func:`load_detector`).
"""
from __future__ import annotations

from .evaluate import (SYNTH_SIZE_FRACTIONS, count_errors, evaluate_detections, evaluate_points, evaluate_sdnet,
                       mean_train_count, predict_trained, pseudo_box_quality, pseudo_boxes, synthetic_size_bins)
from .infer import MultiScale, choose_threshold, decode_csp, predict_sdnet
from .store import BIN_LABELS, CROWD_BINS, PseudoBoxStore, crowd_bin, initial_sizes, refine_rule
from .study import (PRESET_DATASET, PAPER_SHB, PAPER_TABLE2, PAPER_TABLE3, canonical_config, claim_sentences, describe_run_device,
                    eval_records_for, experiment_config, fig4_rows, fit_luda_beta, final_losses, quality_by_preset,
                    refinement_curves, rows_from_long, run_config, run_settings, setting_config,
                    shanghaitech_config, size_init_metrics, stand_in_configs, synthetic_test_records, table2_quality, table3_claims,
                    train_records_of, train_settings)
from .train import (ABLATION_SETTINGS, TARGET_KEYS, Refiner, SDNetTargets, build_detector, default_config,
                    load_detector, load_records, merge_config, recalibrate_bn, sdnet_prepare_batch, train_sdnet)

__all__ = [
    # store
    "CROWD_BINS", "BIN_LABELS", "crowd_bin", "refine_rule", "initial_sizes", "PseudoBoxStore",
    # training
    "TARGET_KEYS", "SDNetTargets", "sdnet_prepare_batch", "Refiner", "default_config", "merge_config",
    "ABLATION_SETTINGS", "load_records", "build_detector", "recalibrate_bn", "train_sdnet", "load_detector",
    # inference
    "MultiScale", "decode_csp", "predict_sdnet", "choose_threshold",
    # evaluation
    "SYNTH_SIZE_FRACTIONS", "synthetic_size_bins", "count_errors", "evaluate_detections", "predict_trained",
    "evaluate_sdnet",
    "pseudo_boxes", "pseudo_box_quality", "evaluate_points", "mean_train_count",
    # studies
    "PAPER_TABLE2", "PAPER_TABLE3", "PAPER_SHB", "canonical_config", "run_config", "setting_config", "run_settings",
    "train_settings",
    "size_init_metrics", "rows_from_long", "table3_claims", "claim_sentences", "table2_quality", "final_losses",
    "train_records_of", "refinement_curves", "experiment_config", "eval_records_for", "synthetic_test_records",
    "describe_run_device", "quality_by_preset", "fig4_rows", "shanghaitech_config", "PRESET_DATASET",
    "fit_luda_beta", "stand_in_configs",
]
