"""What data this machine has: the synthetic presets (always) and the real datasets under ``shared/data``."""
from __future__ import annotations

import pandas as pd

from crowdlib import paths

__all__ = ["REAL_DATASETS", "dataset_catalog"]

#: Real datasets crowdlib can read when they are under ``shared/data`` (folder, description, glob counted).
REAL_DATASETS = {
    "ShanghaiTech": ("ShanghaiTech A train, B train/test (Zhang et al., CVPR 2016)", "**/*.jpg"),
    "sht_loc": ("ShanghaiTech B test heads in NWPU localization format (from STEERER)", "*.txt"),
    "nwpu_loc": ("NWPU-Crowd val localization GT + a published prediction file and its reference scores", "*.txt"),
    "cells/vgg_cells": ("VGG synthetic fluorescence cells (Lempitsky and Zisserman)", "*cell.png"),
    "cells/adipocyte": ("Adipocyte tissue crops (GTEx, via count-ception)", "images/*"),
}


def dataset_catalog() -> pd.DataFrame:
    """One row per data source with whether it is available here and how many files it has."""
    rows = []
    try:
        from crowdlib.data.synthetic import list_presets

        presets = list_presets()
    except ImportError:
        presets = []
    for name in presets:
        rows.append({"dataset": f"synthetic/{name}", "available": True, "files": "generated",
                     "description": "procedural synthetic crowd preset"})
    for folder, (desc, pattern) in REAL_DATASETS.items():
        root = paths.default_data_root(folder)
        n = len(list(root.glob(pattern))) if root is not None else 0
        rows.append({"dataset": folder, "available": root is not None, "files": n, "description": desc})
    return pd.DataFrame(rows)
