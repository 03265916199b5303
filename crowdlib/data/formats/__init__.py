"""Readers of real annotation formats, each returning :class:`crowdlib.data.records.CrowdRecord` objects.

Every reader validates its input and raises :class:`FormatError` (a ``ValueError``) naming the file
and the problem; points outside the image raise unless ``drop_outside=True``, and
``record.meta["dropped"]`` counts the dropped points. See ``_common`` for the coordinate convention.
"""
from crowdlib.data.formats._common import FormatError, check_points, image_size_of
from crowdlib.data.formats.carpk import read_carpk, read_carpk_txt, read_pucpr
from crowdlib.data.formats.cells import read_adipocyte, read_red_dot_jpeg, read_vgg_cells, read_vgg_dots
from crowdlib.data.formats.jhu import read_jhu, read_jhu_txt
from crowdlib.data.formats.nwpu_json import read_nwpu_crowd, read_nwpu_json
from crowdlib.data.formats.shanghaitech import read_shanghaitech, read_shanghaitech_mat
from crowdlib.data.formats.ucf_qnrf import read_ucf_qnrf, read_ucf_qnrf_mat
from crowdlib.data.formats.widerface import WIDER_ATTRIBUTES, read_widerface

__all__ = [
    "FormatError", "WIDER_ATTRIBUTES", "check_points", "image_size_of", "read_adipocyte", "read_carpk",
    "read_carpk_txt", "read_jhu", "read_jhu_txt", "read_nwpu_crowd", "read_nwpu_json", "read_pucpr",
    "read_red_dot_jpeg", "read_shanghaitech", "read_shanghaitech_mat", "read_ucf_qnrf",
    "read_ucf_qnrf_mat", "read_vgg_cells", "read_vgg_dots", "read_widerface",
]

# The NWPU localization text format lives beside the readers (owned by the metrics area) and is re-exported here.
from crowdlib.data.formats.nwpu_loc import (  # noqa: E402
    NWPU_NUM_LEVELS,
    NWPUHeads,
    NWPULocFormatError,
    nwpu_gt_to_records,
    nwpu_val_ids,
    read_nwpu_gt,
    read_nwpu_pred,
    write_nwpu_gt,
    write_nwpu_pred,
)

__all__ += ["NWPU_NUM_LEVELS", "NWPUHeads", "NWPULocFormatError", "nwpu_gt_to_records", "nwpu_val_ids",
            "read_nwpu_gt", "read_nwpu_pred", "write_nwpu_gt", "write_nwpu_pred"]
