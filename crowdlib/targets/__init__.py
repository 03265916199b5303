"""Ground-truth builders: density maps, pseudo sizes (LUDA), CSP targets, IIM instance maps,
SSR-HEF segmentation labels and L2R nested crops. Each module documents its conventions."""
from crowdlib.targets.csp import csp_sigma, csp_targets
from crowdlib.targets.density import adaptive_sigmas, density_map, kernel_radius
from crowdlib.targets.instance import (
    instance_map_from_boxes,
    instance_map_from_points,
    nwpu_sigmas_levels,
    separate_boxes,
)
from crowdlib.targets.pseudo_sizes import (
    LUDA_PRESETS,
    PseudoSizes,
    boxes_from_sizes,
    gak_sizes,
    knn_mean_distance,
    luda_sizes,
)
from crowdlib.targets.ranking import crop_counts, nested_crops, ranking_pairs
from crowdlib.targets.ssr import block_max, ssr_labels

__all__ = [
    "LUDA_PRESETS", "PseudoSizes", "adaptive_sigmas", "block_max", "boxes_from_sizes", "crop_counts",
    "csp_sigma", "csp_targets", "density_map", "gak_sizes", "instance_map_from_boxes",
    "instance_map_from_points", "kernel_radius", "knn_mean_distance", "luda_sizes", "nested_crops",
    "nwpu_sigmas_levels", "ranking_pairs", "separate_boxes", "ssr_labels",
]
