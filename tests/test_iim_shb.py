"""Notebook 23's ShanghaiTech B helpers: the learning curve of a run, its trend, the F1 ceiling of decoding the
training targets at a training scale, the Table 4 / per-level frames, and a run's thread count."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from crowdlib.data.records import CrowdRecord
from crowdlib.methods import iim

torch.set_num_threads(1)


def _record(points, h=96, w=128, image_id="a") -> CrowdRecord:
    img = np.zeros((h, w, 3), np.uint8)
    return CrowdRecord(image_id=image_id, points=np.asarray(points, np.float32).reshape(-1, 2), image=img)


def test_target_ceiling_is_perfect_for_separated_heads_at_full_scale_and_drops_for_tiny_scales():
    recs = [_record([[20, 20], [60, 30], [100, 70]]), _record([[30, 60], [90, 20]], image_id="b")]
    full = iim.target_ceiling(recs, point_size=12.0, scale=1.0)
    assert full == {"scale": 1.0, "f1": 1.0, "pre": 1.0, "rec": 1.0}
    # two heads 2 px apart fall into one pixel at 1/4 scale: one blob, one detection for two heads
    pair = [_record([[40.0, 40.0], [42.0, 40.0]])]
    small = iim.target_ceiling(pair, point_size=12.0, scale=0.25)
    assert small["rec"] == pytest.approx(0.5) and small["pre"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="scale"):
        iim.target_ceiling(recs, point_size=12.0, scale=0.0)


def test_learning_curve_and_trend_of_a_history():
    hist = [{"step": 0, "thr_fg": 0.5}] + [
        {"step": s, "val_f1": 1 - 0.8 * s ** -0.5, "val_pre": 0.9, "val_rec": 0.5, "val_mae": 10.0 / s, "loss_loss": 0.1}
        for s in (100, 200, 400, 800)]
    res = {"history": hist, "steps": 800, "train_seconds": 80.0}
    cur = iim.learning_curve(res)
    assert list(cur["step"]) == [100, 200, 400, 800]  # the step-0 threshold record has no validation score
    assert cur["seconds"].iloc[-1] == pytest.approx(80.0)
    tr = iim.curve_trend(cur)
    assert tr["rising"] and tr["b"] == pytest.approx(0.5, abs=1e-6)
    assert tr["fitted"] == pytest.approx(tr["measured"], abs=1e-6)
    assert tr["at x2"] == pytest.approx(1 - 0.8 * 1600 ** -0.5, abs=1e-6)
    with pytest.raises(ValueError, match="no validation point"):
        iim.learning_curve({"history": hist[:1], "steps": 1, "train_seconds": 1.0})


def test_table4_and_level_frames_average_seeds_and_keep_the_papers_sigma_l_row():
    ev = {"f1": 0.5, "pre": 0.6, "rec": 0.4, "f1_s": 0.3, "pre_s": 0.4, "rec_s": 0.2, "mae": 10.0, "mse": 12.0,
          "rec_levels": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "heads_per_level": [1, 2, 3, 4, 5, 6]}
    ev2 = dict(ev, f1=0.7, rec_levels=[0.3] * 6)
    t4 = iim.table4_frame([ev, ev2]).set_index(["metric", "sigma"])
    assert t4.loc[("F1", "sigma_l"), "ours"] == pytest.approx(60.0)
    assert t4.loc[("F1", "sigma_l"), "paper"] == pytest.approx(82.1)
    assert np.isnan(t4.loc[("F1", "sigma_s"), "paper"]) and t4.loc[("MAE", "-"), "ours"] == pytest.approx(10.0)
    lv = iim.level_recall_frame([ev, ev2], iim.PAPER_LEVEL_RECALL_IIM)
    assert lv["recall (ours)"].iloc[0] == pytest.approx(20.0) and lv["heads"].tolist() == [1, 2, 3, 4, 5, 6]


def test_threads_is_a_config_key_and_split_records_is_the_training_split():
    cfg = iim.make_config(threads=2, val_fraction=0.25)
    assert cfg["threads"] == 2 and iim.DEFAULTS["threads"] == 1
    recs = [_record([[10, 10]], image_id=str(i)) for i in range(8)]
    tr, va = iim.split_records(recs, cfg)
    assert len(va) == 2 and len(tr) == 6 and not {r.image_id for r in tr} & {r.image_id for r in va}
