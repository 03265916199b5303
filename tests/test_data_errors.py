"""Named errors of the data layer: undecodable images and test scenes that would repeat the training scenes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crowdlib.data import CrowdRecord, ImageReadError


def test_corrupt_image_raises_image_read_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "IMG_1.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg")
    rec = CrowdRecord(image_id="IMG_1", points=np.zeros((0, 2), np.float32), image_path=bad)
    with pytest.raises(ImageReadError, match="IMG_1.jpg") as info:
        rec.load_image()
    assert info.value.path == bad and isinstance(info.value, ValueError)
    missing = CrowdRecord(image_id="x", points=np.zeros((0, 2), np.float32), image_path=tmp_path / "none.png")
    with pytest.raises(ImageReadError, match="none.png"):
        missing.load_image()


def test_sdnet_test_scenes_must_differ_from_the_training_scenes() -> None:
    from crowdlib.methods import sdnet

    with pytest.raises(ValueError, match="equals the training seed"):
        sdnet.synthetic_test_records(1, image_size=32, data_seed=5, test_seed=5)
    base = sdnet.experiment_config(dataset="mixture", n_dense=1, n_sparse=1, image_size=32, data_seed=5)
    with pytest.raises(ValueError, match="equals the training seed"):
        sdnet.eval_records_for(base, 1, data_seed=5, test_seed=5)


def test_iim_test_scenes_must_differ_from_the_training_scenes() -> None:
    from crowdlib.methods.iim.data import load_records

    with pytest.raises(ValueError, match="equals the training seed"):
        load_records({"kind": "synthetic", "seed": 3, "test_seed": 3, "n": 1, "height": 32, "width": 32}, "test")
