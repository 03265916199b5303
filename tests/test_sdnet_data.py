"""Crowd-SDNet data configs: the synthetic mixture and the WIDER FACE path (on a tiny fake WIDER FACE folder)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crowdlib.methods import sdnet


def _fake_wider(root: Path) -> None:
    for split in ("train", "val"):
        img_dir = root / f"WIDER_{split}" / "images" / "0--Parade"
        img_dir.mkdir(parents=True)
        lines = []
        for k in range(2):
            Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(img_dir / f"{split}_{k}.jpg")
            lines += [f"0--Parade/{split}_{k}.jpg", "2", "5 5 10 12 0 0 0 0 0 0", "30 10 8 8 0 0 0 0 0 0"]
        (root / "wider_face_split").mkdir(exist_ok=True)
        (root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt").write_text("\n".join(lines) + "\n")


def test_widerface_config_and_records(tmp_path: Path) -> None:
    _fake_wider(tmp_path)
    cfg = sdnet.experiment_config(n_dense=1, n_sparse=1, data_root=str(tmp_path))
    assert cfg["data"]["source"] == "widerface" and cfg["pseudo"]["params"]["r"] == 6
    assert cfg["model"]["loss"]["alpha_cap"] is None
    recs = sdnet.load_records(cfg["data"])
    assert len(recs) == 2 and recs[0].count == 2
    np.testing.assert_allclose(recs[0].boxes[0], [5, 5, 15, 17])
    val = sdnet.eval_records_for(cfg, 1)
    assert len(val) == 2 and val[0].image_id.endswith("val_0")
    q = sdnet.pseudo_box_quality(sdnet.pseudo_boxes(recs, "luda", cfg["pseudo"]["params"]), recs)
    assert set(q) >= {"AP(0.5)", "share>=0.5"}


def test_synthetic_config_is_shared_and_bins_scale() -> None:
    a = sdnet.experiment_config(n_dense=2, n_sparse=2)
    b = sdnet.experiment_config(n_dense=2, n_sparse=2)
    from crowdlib.repro import config_hash

    assert config_hash(sdnet.setting_config(a, "both", 0)) == config_hash(sdnet.setting_config(b, "both", 0))
    assert config_hash(sdnet.setting_config(a, "both", 0)) != config_hash(sdnet.setting_config(a, "both", 1))
    bins = sdnet.synthetic_size_bins(256)
    assert bins["easy"][0] == pytest.approx(25.6) and bins["hard"][0] == 0.0
    with pytest.raises(ValueError, match="setting"):
        sdnet.setting_config(a, "everything", 0)
    with pytest.raises(ValueError, match="data.source"):
        sdnet.load_records({"source": "nwpu"})


def test_stand_in_configs_take_each_sets_table1_row() -> None:
    """Each stand-in is its own dataset: Table I's r, alpha cap and size limits of its paper dataset, beta fitted on
    its own training images by :func:`fit_luda_beta`, the shared schedule untouched."""
    common = dict(n_train=6, image_size=96, epochs=3, batch_size=2, lr=1e-3, data_seed=5)
    cfgs = sdnet.stand_in_configs(["shb_like", "faces"], **common)
    shb, faces = cfgs["shb_like"], cfgs["faces"]
    assert shb["pseudo"]["params"]["r"] == 8 and shb["model"]["loss"]["alpha_cap"] == 50
    assert shb["pseudo"]["params"]["max_size"] == 50.0
    assert faces["pseudo"]["params"]["r"] == 6 and faces["model"]["loss"]["alpha_cap"] is None
    assert faces["pseudo"]["params"]["min_size"] == 8.0
    for name, cfg in cfgs.items():
        assert cfg["data"]["presets"] == [[name, 6]] and cfg["data"]["height"] == 96
        assert cfg["train"]["epochs"] == 3 and cfg["train"]["lr"] == 1e-3
        beta = sdnet.fit_luda_beta(sdnet.train_records_of(cfg), 2)
        assert cfg["pseudo"]["params"]["beta"] == beta
    with pytest.raises(ValueError, match="per dataset"):
        sdnet.stand_in_configs(["faces"], beta=1.0, **common)
    with pytest.raises(ValueError, match="unknown stand-in"):
        sdnet.stand_in_configs(["nwpu_like"], **common)


def test_table3_claims_per_dataset_are_tagged_and_point_at_their_table() -> None:
    plain = sdnet.table3_claims(("AP@0.5 medium",))
    tagged = sdnet.table3_claims(("AP@0.5 medium",), table="III (faces)", tag="faces")
    assert len(plain) == len(tagged) == 7
    assert all(c.table == "III" for c in plain) and all(c.table == "III (faces)" for c in tagged)
    assert all(c.text.startswith("[faces] ") for c in tagged)
    assert [c.text[len("[faces] "):] for c in tagged] == [c.text for c in plain]
