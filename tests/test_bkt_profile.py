"""Bi-knowledge transfer's notebook configs (crowdlib.methods.bkt.profile), windows of calibrated scenes shared by R and
D, and the flush-denormal guard of its training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from crowdlib.methods import bkt
from crowdlib.methods.bkt import profile

PARAMS = {"domains": {"A": "sha_like", "B": "shb_like"}, "image_sizes": {"sha_like": None, "shb_like": [96, 128]},
          "window": [64, 96], "n_train": 2, "n_test": 1, "data_seed": {"A": 11, "B": 12},
          "test_seed": {"A": 5011, "B": 5012},
          "backbone": "mobilenet_v2", "det_backbone": "mobilenet_v2", "det_width": 16, "pretrained": False, "crop": 64,
          "batch_size": 2, "reg_steps": 3, "reg_lr": 1e-4, "reg_ssim": 0.0, "phi_steps": 2, "phi_lr": 1e-4, "phi_crop": 32, "phi_loss": "focal_ce",
          "det_epochs": 1, "det_max_steps": 2, "eval_every": 1, "val_fraction": 0.5, "sigma_factor": 0.25,
          "truncate": 2.0, "patch": 32, "patches_per_image": 2, "r_range": [0.5, 0.7], "cycles": 1, "max_cycles": 2,
          "cycle_steps": 1, "cycle_batch": 2, "r_lr": 1e-6, "d_lr": 1e-5, "d_threshold": "refit", "d_loss": "csp", "r_context": "image", "d_context": "image",
          "phi_threshold": "refit",
          "threads": 1}


def test_domain_spec_renders_at_the_preset_size_or_the_given_one_and_carries_the_window() -> None:
    a, b = profile.domain_spec(PARAMS, "A"), profile.domain_spec(PARAMS, "B")
    assert (a["height"], a["width"], a["window"]) == (None, None, [64, 96])
    assert (b["height"], b["width"], b["seed"], b["test_seed"]) == (96, 128, 12, 5012)
    with pytest.raises(ValueError, match="unknown domain"):
        profile.domain_spec(PARAMS, "Q")


def test_run_config_names_a_missing_parameter_and_runs_max_cycles() -> None:
    cfg = profile.run_config(PARAMS, "B", "A")
    assert cfg["cycles"] == 2 and cfg["r_steps"] == cfg["d_steps"] == 1 and cfg["source"]["preset"] == "shb_like"
    assert cfg["detector"]["model"]["width"] == 16 and cfg["regressor"]["steps"] == 3
    assert (cfg["phi"]["crop"], cfg["phi"]["loss"], cfg["regressor"]["crop"]) == (32, "focal_ce", 64)
    with pytest.raises(ValueError, match="reg_lr"):
        profile.run_config({k: v for k, v in PARAMS.items() if k != "reg_lr"}, "B", "A")
    with pytest.raises(ValueError, match="window"):
        bkt.make_config(source={**cfg["source"], "window": [60, 96]})


def test_r_and_d_train_on_the_same_windows(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CROWDLIB_CACHE", str(tmp_path))
    from crowdlib.methods.sdnet.train import load_records

    cfg = profile.run_config(PARAMS, "B", "A")
    r_recs = bkt.domain_records(cfg["source"], "train")
    d_recs = load_records(bkt.detector_config(cfg)["data"])
    assert [r.image_id for r in r_recs] == [r.image_id for r in d_recs]
    for r, d in zip(r_recs, d_recs):
        assert r.image.shape == d.image.shape == (64, 96, 3) and tuple(r.image_size) == (64, 96)
        np.testing.assert_array_equal(r.points, d.points)
        assert np.all((r.points >= 0) & (r.points < [96, 64]))
    test = bkt.domain_records(cfg["source"], "test")
    assert test[0].image.shape == (64, 96, 3) and test[0].image_id not in {r.image_id for r in r_recs}


def test_flush_denormal_zeroes_subnormals_inside_and_restores_outside() -> None:
    from crowdlib.device import flush_denormal

    tiny = torch.tensor([1e-40], dtype=torch.float32)
    assert float(tiny * 1.0) > 0  # torch's default keeps subnormals
    with flush_denormal():
        with flush_denormal():
            assert float(tiny * 1.0) == 0.0
        assert float(tiny * 1.0) == 0.0  # the inner exit leaves the outer block's setting
    assert float(tiny * 1.0) > 0
