"""Metrics for crowd counting and localization, computed from per-image results.

- counting: :func:`mae`, :func:`rmse` (the papers' "MSE"), :func:`nae`, :func:`game`, :func:`count_metrics`,
  :func:`constant_count_metrics` (the training-mean baseline), :func:`count_correlation`;
- NWPU-Crowd localization protocol: :func:`nwpu_evaluate` / :func:`nwpu_evaluate_files` -> :class:`LocResult`,
  fixed-radius :func:`localization_prf`; CLI ``python -m crowdlib.metrics loc --gt GT --pred PRED``;
- points: :func:`point_ap`, :func:`point_map_over_radii`, :func:`mle`;
- boxes: :func:`box_ap`, :func:`box_ap_subsets`, :func:`size_subsets`, :func:`widerface_subsets`.

Every function documents its conventions (matching rule, ties, empty inputs) in its docstring.
"""
from crowdlib.metrics.ap import average_precision, pr_curve
from crowdlib.metrics.boxes import DEFAULT_SIZE_BINS, box_ap, box_ap_subsets, box_iou, size_subsets, widerface_subsets
from crowdlib.metrics.maps import target_response
from crowdlib.metrics.counting import (constant_count_metrics, count_correlation, count_metrics, game, grid_edges, mae,
                                      mean_game, nae, rmse)
from crowdlib.metrics.nwpu import (
    LocResult,
    SigmaScores,
    localization_prf,
    match_within_radius,
    nwpu_evaluate,
    nwpu_evaluate_files,
)
from crowdlib.metrics.points import greedy_point_matching, mle, mle_details, point_ap, point_map_over_radii

__all__ = [
    "target_response",
    "average_precision",
    "pr_curve",
    "DEFAULT_SIZE_BINS",
    "box_ap",
    "box_ap_subsets",
    "box_iou",
    "size_subsets",
    "widerface_subsets",
    "count_metrics",
    "constant_count_metrics",
    "count_correlation",
    "game",
    "grid_edges",
    "mae",
    "mean_game",
    "nae",
    "rmse",
    "LocResult",
    "SigmaScores",
    "localization_prf",
    "match_within_radius",
    "nwpu_evaluate",
    "nwpu_evaluate_files",
    "greedy_point_matching",
    "mle",
    "mle_details",
    "point_ap",
    "point_map_over_radii",
]
