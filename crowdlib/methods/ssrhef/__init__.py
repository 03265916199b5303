"""SSR-HEF (Chen et al., "Crowd Counting with Multi-Scale Semantic Refining and Hard Example Focusing"): a 2M
parameter density regressor whose lower layers are refined by multi-scale segmentation maps (SSR) and whose
density loss is reweighted towards hard examples (HEF); notebooks ``30``-``33``.

The paper's pipeline, one public name per step:

1. A run is one flat, hashable config (:data:`DEFAULTS`, :func:`make_config`; ``config.py``).
2. Data and ground truth: :func:`load_records` (synthetic, ShanghaiTech, VGG cells), the paper's patch sampling
   (:class:`PatchTransform`, :class:`PatchSet`), and per crop a density map, three segmentation labels and a count
   class (:class:`SSRHEFTargets`; ``data.py``).
3. The network and its loss: ``crowdlib.models.ssrhef`` (backbone, SSR heads, MSRF, FEL, density and
   classification heads) and ``crowdlib.losses.ssrhef`` (HEF, Dice, cross-entropy; Eqs. 2-5; the count classes).
4. Training with model selection on validation carved from the training images: :func:`train_ssrhef`, cached by
   :func:`get_or_train_ssrhef` (``train.py``).
5. Inference and scoring: :func:`predict_density` (whole images), :func:`evaluate_model` (MAE, MSE = RMSE;
   ``infer.py``).
6. Studies (``study.py``): Tables VII and VIII as config overrides run through :func:`crowdlib.study.run_study`
   (:func:`run_settings`), the paper's numbers and claims; analyses (``analysis.py``): segmentation maps (Fig. 7),
   per-image counts (Fig. 8), the HEF factor's distribution over pixels, parameters and latency (Table IX).
"""
from __future__ import annotations

from crowdlib.losses.ssrhef import class_threshold, count_classes, dice_loss, hef_factor, hef_loss

from .config import DEFAULTS, make_config
from .data import PatchSet, PatchTransform, SSRHEFTargets, load_records, targets_for, train_dataset
from .infer import evaluate_model, image_tensor, predict_density
from .train import get_or_train_ssrhef, load_trained, split_records, train_ssrhef
from .study import (CONTROL, FULL, METRICS, PAPER_TABLE5_SHB, PAPER_TABLE7, PAPER_TABLE8, PAPER_TABLE8_MSE_UNREAD,
                    PAPER_TABLE9, STAND_INS, TABLE7_SETTINGS, TABLE8_K, TABLE8_SETTINGS, claim_sentences,
                    control_comparison, control_settings, k_setting,
                    paper_table7_frame, rows_from_long, run_settings, set_data, setting_config, table7_claims,
                    table7_rows, table8_claims, test_data, training_summary, train_mean_reference, reference_frame)
from .analysis import (factor_summary, gt_factor_values, measure_latency, model_factor_values, per_image_counts,
                       segmentation_maps, table9_frame)

__all__ = [
    "DEFAULTS", "make_config",
    "load_records", "PatchTransform", "PatchSet", "SSRHEFTargets", "targets_for", "train_dataset",
    "hef_factor", "hef_loss", "dice_loss", "class_threshold", "count_classes",
    "train_ssrhef", "get_or_train_ssrhef", "load_trained", "split_records",
    "image_tensor", "predict_density", "evaluate_model",
    "FULL", "TABLE7_SETTINGS", "CONTROL", "control_settings", "control_comparison", "PAPER_TABLE7", "STAND_INS",
    "TABLE8_K", "TABLE8_SETTINGS", "PAPER_TABLE8",
    "PAPER_TABLE8_MSE_UNREAD", "PAPER_TABLE5_SHB", "PAPER_TABLE9", "METRICS", "k_setting", "set_data", "test_data",
    "setting_config", "run_settings", "rows_from_long", "claim_sentences", "table7_rows", "table7_claims",
    "table8_claims", "training_summary", "paper_table7_frame", "train_mean_reference", "reference_frame",
    "segmentation_maps", "per_image_counts", "model_factor_values", "gt_factor_values", "factor_summary",
    "measure_latency", "table9_frame",
]
