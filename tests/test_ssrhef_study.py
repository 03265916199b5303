"""SSR-HEF studies: the paper's tables and the settings agree, Table VIII's K=15 row is Table VII's full model
(one cached run), claims follow the per-seed values (and fail when the direction flips), hand-made long tables
become rows, data specs, and a tiny end-to-end grid with the analyses of notebooks 32-33."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from crowdlib.methods import ssrhef
from crowdlib.models.registry import build_model
from crowdlib.repro import evaluate_claims

torch.set_num_threads(1)


def test_paper_tables_match_the_settings_and_state_the_claimed_directions():
    for ds, rows in ssrhef.PAPER_TABLE7.items():
        assert set(rows) == set(ssrhef.TABLE7_SETTINGS), ds
        for row, vals in rows.items():
            assert set(vals) == {"MAE", "MSE"}
            if row != ssrhef.FULL:  # the paper's own numbers hold every Table VII claim
                assert rows[ssrhef.FULL]["MAE"] < vals["MAE"] and rows[ssrhef.FULL]["MSE"] < vals["MSE"], (ds, row)
    assert ssrhef.PAPER_TABLE7["Part_A"][ssrhef.FULL] == {"MAE": 55.0, "MSE": 88.3}
    assert ssrhef.PAPER_TABLE7["Part_B"][ssrhef.FULL] == ssrhef.PAPER_TABLE5_SHB == {"MAE": 6.1, "MSE": 9.5}
    assert {v for v in ssrhef.STAND_INS.values() if v} <= set(ssrhef.PAPER_TABLE7)
    assert list(ssrhef.TABLE8_SETTINGS) == [f"K={k}" for k in (0, 5, 10, 15, 20)] == list(ssrhef.PAPER_TABLE8)
    maes = {k: v["MAE"] for k, v in ssrhef.PAPER_TABLE8.items()}
    assert min(maes, key=maes.get) == "K=15" and all(v < maes["K=0"] for k, v in maes.items() if k != "K=0")
    assert ssrhef.PAPER_TABLE8["K=15"]["MAE"] == ssrhef.PAPER_TABLE7["Part_A"][ssrhef.FULL]["MAE"]
    assert ssrhef.PAPER_TABLE9["parameters (M)"] == 2.0 and ssrhef.PAPER_TABLE9["time (s)"] == 0.003


def test_settings_are_single_switches_and_k15_is_the_full_model():
    base = ssrhef.make_config(width=0.25, steps=3)
    full = ssrhef.setting_config(base, ssrhef.TABLE7_SETTINGS[ssrhef.FULL], 2)
    for name, over in ssrhef.TABLE7_SETTINGS.items():
        cfg = ssrhef.setting_config(base, over, 2)
        assert {k for k in cfg if cfg[k] != full[k]} == set(over), name
    assert ssrhef.setting_config(base, ssrhef.TABLE8_SETTINGS["K=15"], 2) == full
    assert ssrhef.setting_config(base, ssrhef.TABLE8_SETTINGS["K=0"], 2)["num_classes"] == 0
    assert full["seed"] == 2 and full["use_ssr"] and full["use_fel"] and full["use_hef"]


def _long(values: dict[str, list[float]], metric: str = "MAE") -> pd.DataFrame:
    return pd.DataFrame([{"setting": s, "seed": i, "metric": metric, "value": v}
                         for s, vals in values.items() for i, v in enumerate(vals)])


def test_table7_claims_follow_the_seeds_and_fail_when_the_direction_flips():
    good = {"without SSR": [12.0, 13.0, 12.5], "without FEL": [11.0, 11.5, 11.2],
            "without HEF": [14.0, 13.0, 13.5], ssrhef.FULL: [9.0, 9.5, 9.2]}
    long = pd.concat([_long(good, "MAE"), _long({k: [v + 3 for v in vs] for k, vs in good.items()}, "MSE")])
    rows = ssrhef.table7_rows(long, "shb_like")
    assert {r.table for r in rows} == {"VII (shb_like)"} and len(rows) == 8
    r = next(r for r in rows if r.setting == "without HEF" and r.metric == "MAE")
    assert r.values == [14.0, 13.0, 13.5] and r.seeds == [0, 1, 2] and r.paper == 15.1 and not r.higher_is_better
    claims = ssrhef.table7_claims(tag="shb_like", table="VII (shb_like)")
    assert len(claims) == 6 and all(c.text.startswith("[shb_like]") and "Table VII" in c.text for c in claims)
    assert all(c.better == ssrhef.FULL for c in claims)
    assert {c.state for c in evaluate_claims(rows, claims)} == {"reproduced"}
    flipped = {k: list(reversed(sorted(v))) if k != ssrhef.FULL else [20.0, 21.0, 20.5] for k, v in good.items()}
    rows_f = ssrhef.table7_rows(pd.concat([_long(flipped, "MAE"), _long(flipped, "MSE")]), "shb_like")
    assert {c.state for c in evaluate_claims(rows_f, claims)} == {"contradicted"}
    cells_rows = ssrhef.table7_rows(long, "vgg_cells")
    assert all(r.paper is None for r in cells_rows)


def test_table8_claims_k15_best_and_every_k_beats_none():
    claims = ssrhef.table8_claims()
    assert len(claims) == 7 and all(c.table == "VIII" and c.metric == "MAE" and "Table VIII" in c.text
                                    for c in claims)
    vals = {"K=0": [10.0, 10.2], "K=5": [9.0, 9.1], "K=10": [8.8, 8.9], "K=15": [7.0, 7.2], "K=20": [9.5, 9.4]}
    rows = ssrhef.rows_from_long(_long(vals), "VIII", ssrhef.PAPER_TABLE8, ["MAE"])
    assert {c.state for c in evaluate_claims(rows, claims)} == {"reproduced"}
    vals["K=15"] = [12.0, 12.4]  # now the worst: every "15 beats k" claim is contradicted
    ev = evaluate_claims(ssrhef.rows_from_long(_long(vals), "VIII", None, ["MAE"]), claims)
    assert {c.state for c in ev if c.better == "K=15"} == {"contradicted"}
    assert {c.state for c in ev if c.better != "K=15"} == {"reproduced"}
    one_seed = ssrhef.rows_from_long(_long({k: v[:1] for k, v in vals.items()}), "VIII", None, ["MAE"])
    assert {c.state for c in evaluate_claims(one_seed, claims)} == {"inconclusive"}


def test_data_specs(tmp_path):
    syn = ssrhef.set_data("shb_like", n_train=5, data_seed=3, height=64, width=96)
    assert syn == {"kind": "synthetic", "presets": ["shb_like"], "n": 5, "seed": 3, "height": 64, "width": 96}
    assert ssrhef.test_data(syn, 2, 77) == {**syn, "n": 2, "test_seed": 77}
    with pytest.raises(ValueError, match="test_seed"):
        ssrhef.test_data(syn, 2)
    cells = ssrhef.set_data("vgg_cells", n_train=10, root=tmp_path)
    assert cells == {"kind": "vgg_cells", "root": str(tmp_path), "n_train": 10}
    assert ssrhef.test_data(cells, 4)["limit"] == 4
    sht = ssrhef.set_data("shanghaitech_B", n_train=6, root=tmp_path)
    assert sht["part"] == "B" and sht["limit"] == 6 and "limit" not in ssrhef.test_data(sht, None)
    assert "limit" not in ssrhef.set_data("shanghaitech_B", n_train=None, root=tmp_path)
    with pytest.raises(ValueError, match="folder"):
        ssrhef.set_data("vgg_cells", n_train=3)
    win = ssrhef.set_data("sha_like", n_train=5, window=(224, 320))
    assert win["window"] == [224, 320] and win["height"] is None and win["width"] is None
    assert ssrhef.test_data(win, 2, 77)["window"] == [224, 320]  # test scenes are windowed as the training ones
    with pytest.raises(ValueError, match="window"):
        ssrhef.set_data("sha_like", n_train=5, window=[224])


def test_control_row_is_plain_l2_at_a_quarter_of_the_lr_and_never_a_claim():
    base = ssrhef.make_config(width=0.25, steps=3, lr=1e-3)
    over = ssrhef.control_settings(base["lr"])
    assert list(over) == [ssrhef.CONTROL] and ssrhef.CONTROL not in ssrhef.TABLE7_SETTINGS
    full = ssrhef.setting_config(base, ssrhef.TABLE7_SETTINGS[ssrhef.FULL], 1)
    ctrl = ssrhef.setting_config(base, over[ssrhef.CONTROL], 1)
    assert {k for k in ctrl if ctrl[k] != full[k]} == {"use_hef", "lr"} and ctrl["lr"] == pytest.approx(2.5e-4)
    assert all(ssrhef.CONTROL not in (c.better, c.worse) for c in ssrhef.table7_claims())
    vals = {ssrhef.FULL: [9.0, 9.5, 9.2], "without HEF": [14.0, 13.0, 13.5], ssrhef.CONTROL: [9.1, 9.3, 9.6],
            "without SSR": [12.0, 12.0, 12.0]}
    long = pd.concat([_long(vals, "MAE"), _long({k: [2 * x for x in v] for k, v in vals.items()}, "MSE")])
    df = ssrhef.control_comparison({"shb_like": long, "no control": long[long.setting != ssrhef.CONTROL]})
    assert list(df["set"]) == ["shb_like", "shb_like"] and list(df["metric"]) == ["MAE", "MSE"]
    mae = df.iloc[0]
    assert mae[ssrhef.CONTROL] == pytest.approx(np.mean(vals[ssrhef.CONTROL]))
    assert mae["gap SSR-HEF over control"] == pytest.approx(np.mean(vals[ssrhef.CONTROL]) - np.mean(vals[ssrhef.FULL]))
    assert mae["reading"] == "within the noise"  # diffs +0.1, -0.2, +0.4: mean 0.1 < se 0.17
    rows7 = ssrhef.table7_rows(long[long.setting.isin(list(ssrhef.TABLE7_SETTINGS))], "shb_like")
    assert ssrhef.CONTROL not in {r.setting for r in rows7}


def test_tiny_grid_end_to_end_and_the_analyses(tmp_path, monkeypatch):
    monkeypatch.setenv("CROWDLIB_CACHE", str(tmp_path / "cache"))
    data = ssrhef.set_data("shb_like", n_train=4, data_seed=3, height=64, width=96)
    base = ssrhef.make_config(data=data, width=0.25, num_classes=4, steps=2, eval_every=1, val_fraction=0.25,
                              patch_counts=[1, 1, 1])
    test = ssrhef.load_records(ssrhef.test_data(data, 2, 9003), "test")
    pair = {k: ssrhef.TABLE7_SETTINGS[k] for k in (ssrhef.FULL, "without HEF")}
    long, runs = ssrhef.run_settings(pair, base, [0], test, keep_maps=True, jobs=1)
    assert set(long.setting) == set(pair) and {"MAE", "MSE", "train_seconds", "val_MAE"} <= set(long.metric)
    run = runs[(ssrhef.FULL, 0)]
    assert len(run["maps"]) == 2 and run["maps"][0].shape == (8, 12) and "model" not in run["result"]
    assert np.allclose(run["eval"]["pred"], [m.sum() for m in run["maps"]], rtol=1e-5)
    summary = ssrhef.training_summary(runs)
    assert summary.loc["without HEF", "density term"] == "l2" and summary.loc[ssrhef.FULL, "density term"] == "hef"
    counts = ssrhef.per_image_counts(runs, list(pair), 0, test)
    assert list(counts.truth) == sorted(r.count for r in test)
    model = ssrhef.load_trained(run["config"], ssrhef.get_or_train_ssrhef(run["config"]))
    segs = ssrhef.segmentation_maps(model, test[:1])
    assert [m.shape for m in segs[0]] == [(32, 48), (16, 24), (8, 12)] and all(0 <= m.min() <= m.max() <= 1 for m in segs[0])
    fv = ssrhef.model_factor_values(model, test, run["config"])
    assert fv["factor"].shape == fv["target"].shape == (2 * 8 * 12,)
    assert np.isclose(fv["target"].sum(), sum(r.count for r in test), rtol=1e-3)
    ref = ssrhef.gt_factor_values(test, run["config"], [1e-3, 1e3])
    assert np.allclose(ref[1e-3], 0.25, atol=5e-3), ref[1e-3].min()
    assert ref[1e3].min() < 1e-6, ref[1e3].min()
    summ = ssrhef.factor_summary({"a": fv["factor"]}, {"a": fv["target"] > 1e-3})
    assert {"q1", "q99", "mean on head cells"} <= set(summ.columns)
    lat = ssrhef.measure_latency(model, (32, 64), repeats=3, warmup=1)
    assert lat["eager_s"] > 0 and len(lat["eager_times"]) == 3
    t9 = ssrhef.table9_frame(2_043_334, lat, ssrhef.PAPER_TABLE9, "CPU")
    assert len(t9) == 2 and t9["parameters (M)"].iloc[-1] == 2.0
    nossr = ssrhef.setting_config(base, ssrhef.TABLE7_SETTINGS["without SSR"], 0)
    plain, _ = build_model({k: v for k, v in nossr.items() if k != "data"})
    with pytest.raises(ValueError, match="no SSR"):
        ssrhef.segmentation_maps(plain, test[:1])


def _counted(n: int, i: int) -> "CrowdRecord":
    from crowdlib.data.records import CrowdRecord

    return CrowdRecord(image_id=f"c{i}", points=np.zeros((n, 2), np.float32), image=np.zeros((8, 8, 3), np.uint8))


def test_train_mean_reference_uses_the_training_split_only():
    from crowdlib.methods.ssrhef.train import split_records

    train = [_counted(n, i) for i, n in enumerate([10, 20, 30, 40])]
    test = [_counted(n, 10 + i) for i, n in enumerate([0, 100])]
    base = ssrhef.make_config(val_fraction=0.25)
    ref = ssrhef.train_mean_reference(base, test, train_records=train)
    kept, _ = split_records(train, base)
    m = float(np.mean([r.count for r in kept]))
    assert len(kept) == 3 and ref["constant"] == pytest.approx(m)  # the validation image is not averaged
    assert ref["mae"] == pytest.approx((m + (100 - m)) / 2)
    assert ref["mse"] == pytest.approx(np.sqrt((m ** 2 + (100 - m) ** 2) / 2))


def test_reference_frame_counts_seeds_beating_the_baseline_and_correlation():
    gt = [10.0, 20.0, 30.0]
    runs = {("A", 0): {"eval": {"mae": 1.0, "pred": [11.0, 21.0, 31.0], "gt": gt}},
            ("A", 1): {"eval": {"mae": 12.0, "pred": [30.0, 20.0, 10.0], "gt": gt}},
            ("B", 0): {"eval": {"mae": 8.0, "pred": [20.0, 20.0, 20.0], "gt": gt}}}
    df = ssrhef.reference_frame(runs, ["A", "B", "absent"], {"mae": 6.67, "mse": 8.2})
    assert list(df.index) == ["A", "B"]
    assert df.loc["A", "test MAE"] == pytest.approx(6.5)
    assert df.loc["A", "seeds beating it"] == "1 of 2"
    assert df.loc["A", "count r (mean)"] == pytest.approx(0.0)  # r = +1 and -1
    assert df.loc["A", "count r (min)"] == pytest.approx(-1.0)
    assert np.isnan(df.loc["B", "count r (mean)"])  # a constant prediction has no correlation
