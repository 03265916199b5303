"""Bi-knowledge transfer studies (notebooks 51-54): the settings of Tables 1-4, the claims' directions, and a tiny
end-to-end study (shared runs, views, target test labels only scored)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdlib.data.records import CrowdRecord
from crowdlib.methods import bkt
from crowdlib.methods.bkt import study as bs
from crowdlib.repro import config_hash, evaluate_claims

TINY = dict(
    source={"preset": "shb_like", "n": 4, "seed": 1, "height": 64, "width": 96, "test_n": 2},
    target={"preset": "sha_like", "n": 3, "seed": 2, "height": 64, "width": 96, "test_n": 2},
    val_fraction=0.25,
    regressor={"backbone": "tiny", "pretrained": False, "backend": [8, 8], "steps": 2, "eval_every": 1, "crop": 32,
               "batch_size": 2},
    phi={"backbone": "tiny", "pretrained": False, "widths": [4, 4, 4, 8], "steps": 2, "eval_every": 1, "crop": 32,
         "batch_size": 2},
    detector={"model": {"backbone": "tiny", "pretrained": False, "width": 8},
              "train": {"epochs": 1, "batch_size": 2, "crop": 64, "max_steps": 2, "warmup_steps": 0}},
    patch=32, cycles=2, r_steps=2, d_steps=1, r_lr=1e-3, d_lr=1e-3)


# ----------------------------------------------------------------------------------------------- settings
def test_table_settings_name_the_papers_rows():
    t1 = bs.table1_settings(4)
    assert list(t1) == ["RegNet", "DetNet", "Ours"]
    assert [t1[k]["view"] for k in t1] == ["regnet", "detnet", "ours"]
    assert t1["RegNet"]["cycle"] == t1["DetNet"]["cycle"] == 0 and t1["Ours"]["cycle"] == 4
    assert all(not s["over"] for s in t1.values())  # one run: cycle 0 and cycle T of the same config
    t2 = bs.table2_settings(3)
    assert t2["Ours w/o Fusion"]["over"] == {"fusion": False, "cycles": 3}
    assert t2["Ours w/ RS"]["over"] == {"selection": "random", "cycles": 3}
    assert t2["Ours"] == bs.setting(cycle=3)
    assert list(bs.table3_settings(5)) == [f"cycle {t}" for t in range(6)]
    t4 = bs.table4_settings()
    assert list(t4) == ["L_MSE", "L_Focal-MSE", "L_Focal-CE", "L_Phi"]
    assert all(s["view"] == "phi" and s["cycle"] == 0 and s["over"]["cycles"] == 0 for s in t4.values())
    assert {s["over"]["phi"]["loss"] for s in t4.values()} == set(bs.PHI_LOSS_NAMES)
    for bad in (lambda: bs.setting(view="both"), lambda: bs.setting(cycle=-1), lambda: bs.table4_settings(["l1"]),
                lambda: bs.table3_settings(-1)):
        with pytest.raises(ValueError):
            bad()


def test_setting_config_merges_nested_overrides_and_keys_the_transfer_cache():
    base = bs.setting_config(TINY, {}, 0)
    over = bs.setting_config(TINY, {"phi": {"loss": "mse"}, "cycles": 0}, 3)
    assert over["stage"] == "transfer" and over["seed"] == 3 and over["cycles"] == 0
    assert over["phi"]["loss"] == "mse" and over["phi"]["widths"] == [4, 4, 4, 8]  # base's phi kept
    assert over["phi"]["backbone"] == "tiny" and base["phi"]["loss"] == "focal_mse+dms_ssim"
    # the key get_or_run_transfer uses, so notebooks and direct calls share runs
    assert config_hash(base) == config_hash({"stage": "transfer", **bkt.make_config(**{**TINY, "seed": 0})})
    assert bs.setting_config(base, {}, 0) == base  # a full cache config as the base works too
    stages = bs.stage_configs(base)
    assert [s["stage"] for s in stages] == ["regressor", "phi", "detector"]
    assert all("target" not in s for s in stages[:2]) and "target" not in stages[2]["sdnet"]


def test_views_map_the_papers_columns():
    scores = {k: float(i) for i, k in enumerate(bs.T2_METRICS + bs.ALONE_METRICS, 1)}
    ours, reg, det, phi = (bs.view_metrics(scores, v) for v in bs.VIEWS)
    assert all(ours[k] == scores[k] for k in bs.T2_METRICS)
    assert (reg["MAE"], reg["MSE"], reg["mAP"]) == (scores["R MAE"], scores["R MSE"], scores["Phi mAP"])
    assert (det["MAE"], det["MSE"], det["mAP"]) == (scores["D MAE"], scores["D MSE"], scores["D mAP"])
    assert phi["mAP"] == scores["Phi mAP"] and "MAE" not in phi and "Det MAE" not in reg
    with pytest.raises(ValueError, match="view"):
        bs.view_metrics(scores, "fused")


def test_metric_directions():
    for m in ("MAE", "MSE", "Det MAE", "Det MSE", "R MAE", "D MSE"):
        assert not bs.higher_is_better(m), m
    for m in ("mAP", "D mAP", "Phi mAP", "R MAE gain", "D mAP gain"):
        assert bs.higher_is_better(m), m


def test_paper_numbers_are_the_tables():
    assert bs.PAPER_TABLE1["A→B"]["Ours"] == {"MAE": 13.38, "MSE": 29.25, "mAP": 0.757}
    ours = bs.PAPER_TABLE1["B→A"]["Ours"]["MAE"]
    assert ours == bs.PAPER_TABLE2["Ours"]["MAE"] == bs.PAPER_TABLE3["cycle 4"]["MAE"]
    assert bs.PAPER_TABLE3["cycle 0"]["R MAE"] == bs.PAPER_TABLE1["B→A"]["RegNet"]["MAE"]  # row 0: R_0 alone
    assert bs.PAPER_TABLE3["cycle 0"]["D mAP"] == bs.PAPER_TABLE1["B→A"]["DetNet"]["mAP"]
    assert bs.PAPER_TABLE4["A→B"]["L_Phi"]["mAP"] == 0.613 and bs.PAPER_TABLE4["A→Q"]["L_MSE"]["mAP"] == 0.347
    assert bs.paper_table1_frame().shape == (3, 15)


# ----------------------------------------------------------------------------------------------- claims
def _long(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"setting": s, "seed": k, "metric": m, "value": v}
                         for (s, m), vals in values.items() for k, v in enumerate(vals)])


def _states(claims, long, table):
    return [c.state for c in evaluate_claims(bs.table_rows(long, table), claims)]


def test_claims_cite_their_tables_and_name_existing_rows():
    groups = [(bs.table1_claims("1", "A→B"), bs.table1_settings(4), "Table 1"),
              (bs.table2_claims("2"), bs.table2_settings(4), "Table 2"),
              (bs.table3_claims("3", 4, 5), bs.table3_settings(5), "Table 3"),
              (bs.table4_claims("4"), bs.table4_settings(), "Table 4")]
    for claims, settings, cite in groups:
        assert claims
        for c in claims:
            assert cite in c.text and c.better in settings and c.worse in settings
    assert len(bs.table1_claims("1")) == 4 and len(bs.table2_claims("2")) == 4 and len(bs.table4_claims("4")) == 3
    assert "13.38 vs 21.65" in bs.table1_claims("1", "A→B")[0].text
    assert len(bs.table3_claims("3", 1, 1, "gains")) == 2  # one cycle: no first-vs-last settling claim
    assert len(bs.table3_claims("3", 4, 5, "gains")) == 4
    with pytest.raises(ValueError):
        bs.table3_claims("3", 6, 5)


def test_claims_directions_ours_better_reproduces_and_worse_contradicts():
    good = _long({("Ours", "MAE"): [10, 11], ("RegNet", "MAE"): [20, 22], ("DetNet", "MAE"): [30, 29],
                  ("Ours", "mAP"): [0.7, 0.72], ("RegNet", "mAP"): [0.3, 0.31], ("DetNet", "mAP"): [0.5, 0.52]})
    assert set(_states(bs.table1_claims("1"), good, "1")) == {"reproduced"}
    flip = good.copy()
    flip["setting"] = flip["setting"].map({"Ours": "RegNet", "RegNet": "Ours", "DetNet": "DetNet"})
    assert _states(bs.table1_claims("1"), flip, "1")[0] == "contradicted"  # Ours vs RegNet on MAE
    t2 = _long({("Ours", "MAE"): [10, 11], ("Ours w/o Fusion", "MAE"): [15, 16], ("Ours w/ RS", "MAE"): [12, 13],
                ("Ours", "mAP"): [0.6, 0.6], ("Ours w/o Fusion", "mAP"): [0.4, 0.45],
                ("Ours w/ RS", "mAP"): [0.7, 0.71]})
    assert _states(bs.table2_claims("2"), t2, "2") == ["reproduced", "reproduced", "reproduced", "contradicted"]
    t4 = _long({("L_MSE", "mAP"): [0.3, 0.31], ("L_Focal-MSE", "mAP"): [0.5, 0.52], ("L_Focal-CE", "mAP"): [0.4, 0.4],
                ("L_Phi", "mAP"): [0.45, 0.46]})
    assert _states(bs.table4_claims("4"), t4, "4") == ["reproduced", "contradicted", "reproduced"]


def test_cycle_gains_and_the_settling_claims():
    # R MAE falls 100 -> 80 -> 75 -> 74 (settles); D mAP rises 0.4 -> 0.5 -> 0.55 -> 0.58 (settles)
    vals = {("cycle 0", "R MAE"): [100, 101], ("cycle 1", "R MAE"): [80, 82], ("cycle 2", "R MAE"): [75, 76],
            ("cycle 3", "R MAE"): [74, 75.5], ("cycle 0", "D mAP"): [0.4, 0.41], ("cycle 1", "D mAP"): [0.5, 0.5],
            ("cycle 2", "D mAP"): [0.55, 0.56], ("cycle 3", "D mAP"): [0.58, 0.6]}
    long = _long(vals)
    g = bs.cycle_gain_long(long, "R MAE", 3)
    first = g[g.setting == "first cycle (0→1)"]["value"].tolist()
    assert first == [20.0, 19.0] and g[g.setting == "last cycle (2→3)"]["value"].tolist() == [1.0, 0.5]
    gd = bs.cycle_gain_long(long, "D mAP", 3)
    assert np.allclose(gd[gd.setting == "first cycle (0→1)"]["value"], [0.1, 0.09])
    gains = pd.concat([g, gd])
    claims = bs.table3_claims("3", 3, 3, "gains")
    rows = bs.table_rows(long, "3") + bs.table_rows(gains, "gains")
    assert [c.state for c in evaluate_claims(rows, claims)] == ["reproduced"] * 4
    with pytest.raises(ValueError, match="2 cycles"):
        bs.cycle_gain_long(long, "R MAE", 1)


# ----------------------------------------------------------------------------------------------- end to end
@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CROWDLIB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_tiny_study_shares_one_run_across_tables_1_and_3(cache):
    settings = {**bs.table1_settings(1), **bs.table3_settings(2)}
    long, runs = bs.run_settings(settings, TINY, [0], jobs=1, title="tiny")
    assert len(list((cache / "bkt").glob("*.pt"))) == 4  # R, Phi, D and one transfer run for all eight rows
    assert np.isfinite(long["value"]).all()
    sc0, sc1 = runs[("cycle 0", 0)]["scores"], runs[("cycle 1", 0)]["scores"]
    assert runs[("RegNet", 0)]["scores"] == sc0 and runs[("Ours", 0)]["cycle"] == 1
    val = long.set_index(["setting", "metric"])["value"]
    assert val[("RegNet", "MAE")] == sc0["R MAE"] and val[("DetNet", "mAP")] == sc0["D mAP"]
    assert val[("Ours", "MAE")] == sc1["MAE"] == val[("cycle 1", "MAE")]
    assert [c["cycle"] for c in runs[("Ours", 0)]["cycles"]] == [1, 2]
    assert "r_state" not in runs[("Ours", 0)]["cycles"][0]
    rows = bs.table_rows(long, "1", bs.PAPER_TABLE1["A→B"], bs.T1_METRICS)
    assert len(evaluate_claims(rows, bs.table1_claims("1", "A→B"))) == 4
    assert set(bs.cycle_history(runs)["cycle"]) == {1, 2}
    assert "det_threshold" in bs.cycle_history(runs).columns
    summ = bs.source_summary(runs)
    assert "R val MAE" in summ.columns
    # the fixed rule scores D_0 at the threshold its source training chose
    assert (summ["D_0 threshold (used)"] == summ["D threshold (source training)"]).all()
    gains = pd.concat([bs.cycle_gain_long(long, m, 2) for m in ("R MAE", "D mAP")])
    claims = bs.table3_claims("3", 1, 2, "gains")
    assert len(evaluate_claims(bs.table_rows(long, "3") + bs.table_rows(gains, "gains"), claims)) == 4


def test_tiny_ablations_and_phi_losses(cache):
    over = {**TINY, "cycles": 1}
    long, runs = bs.run_settings(bs.table2_settings(1), over, [0], jobs=1)
    assert set(long.setting) == {"Ours w/o Fusion", "Ours w/ RS", "Ours"}
    assert runs[("Ours w/o Fusion", 0)]["config"]["fusion"] is False
    assert runs[("Ours w/ RS", 0)]["config"]["selection"] == "random"
    assert len(evaluate_claims(bs.table_rows(long, "2"), bs.table2_claims("2"))) == 4
    long4, runs4 = bs.run_settings(bs.table4_settings(["mse", "focal_mse+dms_ssim"]), TINY, [0], jobs=1)
    assert set(long4[long4.metric == "mAP"].setting) == {"L_MSE", "L_Phi"}
    assert all(r["cycles"] == [] for r in runs4.values())  # Table 4: the source stages only
    # L_Phi's Phi is the base run's Phi: a shared source stage
    assert repr(runs4[("L_Phi", 0)]["source"]["phi"]) == repr(runs[("Ours", 0)]["source"]["phi"])


def test_target_test_labels_are_only_scored(cache):
    settings = bs.table1_settings(1)
    base = {**TINY, "cycles": 1}
    long, runs = bs.run_settings(settings, base, [0], jobs=1)
    files = sorted((cache / "bkt").glob("*.pt"))
    test = bkt.domain_records(bkt.make_config(**base)["target"], "test")
    rng = np.random.default_rng(0)
    poisoned = [CrowdRecord(image_id=r.image_id, points=rng.uniform(0, 60, (9, 2)), image=r.image,
                            image_size=r.image_size) for r in test]
    long2, runs2 = bs.run_settings(settings, base, [0], test_records=poisoned, jobs=1)
    assert sorted((cache / "bkt").glob("*.pt")) == files  # nothing retrained: the labels reach no run
    assert runs2[("Ours", 0)]["cycles"] == runs[("Ours", 0)]["cycles"]
    assert repr(runs2[("Ours", 0)]["source"]) == repr(runs[("Ours", 0)]["source"])  # (NaN-safe comparison)
    a = long.set_index(["setting", "metric"])["value"]
    b = long2.set_index(["setting", "metric"])["value"]
    assert a[("Ours", "MAE")] != b[("Ours", "MAE")]  # ... and only change the scores
