"""IIM as the authors train it (issue 11): the threshold module's own optimizer group and schedule, the learned
thresholds recorded over training, baselines with as many checkpoint choices as IIM, the dot-map loss named and
switchable, fixed-threshold rows selected at their own threshold, and readings instead of claims that cannot fail."""
from __future__ import annotations

import pytest
import torch

from crowdlib.losses.iim import DotMapLoss
from crowdlib.methods import iim
from crowdlib.repro import Row, config_hash

torch.set_num_threads(1)
TINY = {"fpn_channels": 8, "head_channels": 4, "pbm_widths": [8, 8, 4], "pbm_pool": 3, "crop": 64, "batch_size": 2,
        "data": {"kind": "synthetic", "presets": ["crowd_b"], "n": 4, "seed": 3, "height": 64, "width": 64},
        "val_fraction": 0.25, "steps": 2, "eval_every": 1}


def test_encoder_schedule_own_starts_at_its_first_step_shared_continues_the_tail():
    cfg = iim.make_config(steps=100, sched_offset=200, sched_total=300, poly_power=0.9)
    pred, enc = iim.lr_lambdas(cfg, ["predictor", "encoder"])
    assert pred(0) == pytest.approx((1 - 200 / 300) ** 0.9)
    assert enc(0) == 1.0 and enc(50) == pytest.approx(0.5 ** 0.9) and enc(100) == 0.0
    shared = iim.lr_lambdas(dict(cfg, encoder_schedule="shared"), ["predictor", "encoder"])
    assert [f(0) for f in shared] == [pytest.approx((1 / 3) ** 0.9)] * 2
    # the cumulative encoder step with its own decay is lr_encoder x (most of) its steps, not the schedule's tail
    own_sum = sum(enc(s) for s in range(100))
    tail_sum = sum(pred(s) for s in range(100))
    assert own_sum / tail_sum == pytest.approx(3 ** 0.9)  # the tail runs at (1 - 200/300) of the peak, ^0.9
    with pytest.raises(ValueError, match="encoder_schedule"):
        iim.lr_lambdas(dict(cfg, encoder_schedule="later"), ["predictor"])


def test_learned_thresholds_are_recorded_from_step_zero_and_encoder_lr_is_its_own():
    cfg = iim.make_config(model="iim", encoder="pbm", lr=1e-3, lr_encoder=1e-4, **dict(TINY, steps=2))
    res = iim.train_iim(cfg, progress=False)
    h = res["history"]
    assert h[0]["step"] == 0 and "val_f1" not in h[0]
    assert all(0.2 <= r["thr_fg"] <= 0.7 and 0.2 <= r["thr_bg"] <= 0.7 for r in h)  # PBM's compressed sigmoid range
    assert h[0]["lr_encoder"] == pytest.approx(1e-4) and h[0]["lr"] == pytest.approx(1e-3)
    assert h[-1]["lr_encoder"] < h[0]["lr_encoder"]  # its own poly decay
    traj = iim.threshold_trajectory({("IIM", 0): {"result": res}})
    assert list(traj.step) == [r["step"] for r in h] and (traj.gap == traj.thr_fg - traj.thr_bg).all()
    se = iim.threshold_start_end(traj)
    assert se.loc["IIM", "start thr_fg"] == pytest.approx(h[0]["thr_fg"])
    assert se.loc["IIM", "end thr_fg"] == pytest.approx(h[-1]["thr_fg"])


def test_ibm_records_one_threshold_per_validation_image():
    cfg = iim.make_config(model="iim", encoder="ibm", **dict(TINY, steps=1))
    res = iim.train_iim(cfg, progress=False)
    assert all(len(r["thr_images"]) == res["n_val"] for r in res["history"])


def test_select_after_gives_a_scratch_baseline_the_staged_rows_choices():
    base = iim.make_config(**dict(TINY, eval_every=1))
    cfg = iim.setting_config(base, {"model": "iim_dotmap", "encoder": "none"}, 0, trunk_steps=2, finetune_steps=2)
    assert cfg["steps"] == 4 and cfg["select_after"] == 2
    res = iim.train_iim(cfg, progress=False)
    assert res["best_step"] > 2
    assert [("val_f1" in h) for h in res["history"]] == [False, False, True, True]
    staged = iim.setting_config(base, {"encoder": "pbm"}, 0, trunk_steps=2, finetune_steps=2)
    runs = {("dot", 0): {"config": cfg, "result": res}}
    summary = iim.training_summary(runs)
    assert summary.loc["dot", "steps"] == 4 and summary.loc["dot", "checkpoint choices"] == 2
    assert staged["select_after"] == 0 and staged["steps"] == 2  # IIM's row: 2 steps after the 2-step warm start
    with pytest.raises(ValueError, match="select_after"):
        iim.train_iim(dict(cfg, select_after=4), progress=False)


def test_fixed_threshold_rows_select_at_their_own_threshold_and_share_the_warm_start():
    base = iim.make_config(**TINY)
    c5 = iim.setting_config(base, iim.TABLE3_SETTINGS["CP fixed:0.5"][0], 0, 2, 2)
    c8 = iim.setting_config(base, iim.TABLE3_SETTINGS["CP fixed:0.8"][0], 0, 2, 2)
    assert (c5["fixed_threshold"], c8["fixed_threshold"]) == (0.5, 0.8)
    assert iim.TABLE3_SETTINGS["CP fixed:0.8"][1] is None  # decoded at the model's own threshold
    assert config_hash(c5) != config_hash(c8) and config_hash(c5["init"]) == config_hash(c8["init"])


def test_dot_map_loss_is_named_and_switchable():
    out = {"map": torch.tensor([[[[0.5, 0.0, 1.0, 0.25]]]])}
    gt = {"dotmap": torch.tensor([[[[1.0, 0.0, 1.0, 0.0]]]])}
    res = DotMapLoss(kind="mse")(out, gt)
    assert set(res) == {"mse", "loss"}
    assert float(res["loss"]) == pytest.approx((0.25 + 0 + 0 + 0.0625) / 4)
    assert set(DotMapLoss(kind="bce_balanced")(out, gt)) == {"bce", "loss"}
    with pytest.raises(ValueError, match="kind"):
        DotMapLoss(kind="focal")
    cfg = iim.make_config(model="iim_dotmap", encoder="none")
    assert cfg["dot_loss"] == "mse" and iim.loss_name(cfg) == "pixel MSE on the dot map"
    assert "balanced BCE" in iim.loss_name(dict(cfg, dot_loss="bce_balanced"))
    assert iim.loss_name(iim.make_config(encoder="pbm", l1_area="both")).endswith("(L1 reaches CP and encoder)")
    assert iim.make_config()["head_full_res"] is True  # the paper's full-resolution head is the default


def test_claims_that_cannot_fail_are_readings():
    texts = [c.text for c in iim.table3_claims()]
    assert not any("raises precision" in t or "lowers recall" in t for t in texts)
    rows = [Row("3", "CP fixed:0.5", "Pre", [80.0, 82.0], seeds=[0, 1]),
            Row("3", "CP fixed:0.8", "Pre", [90.0, 92.0], seeds=[0, 1]),
            Row("3", "CP fixed:0.5", "Rec", [60.0, 62.0], seeds=[0, 1], higher_is_better=True),
            Row("3", "CP fixed:0.8", "Rec", [40.0, 42.0], seeds=[0, 1], higher_is_better=True)]
    lines = iim.table3_readings(rows)
    assert len(lines) == 2 and "precision 81.0 -> 91.0 (paper 92.4 -> 94.1)" in lines[0]
    assert "recall 61.0 -> 41.0" in lines[1] and lines[1].startswith("Reading (not a claim")


def test_image_thresholds_table():
    run = {"result": {"history": [{"step": 0, "thr_images": [0.5, 0.6]}, {"step": 2, "val_f1": 0.1},
                                  {"step": 4, "thr_images": [0.45, 0.65]}]}}
    t = iim.image_thresholds(run)
    assert list(t.index) == [0, 4] and t.shape == (2, 2) and t.loc[4, 1] == pytest.approx(0.65)
    assert iim.image_thresholds({"result": {"history": [{"step": 1}]}}).empty
