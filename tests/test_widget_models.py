"""The widget notebooks' shipped models: the explorers open on trained models whose counts mean something."""
from __future__ import annotations

import numpy as np
import pytest

from crowdlib.widget_models import explorer_records, iim_explorer_inputs, sdnet_explorer_inputs


@pytest.fixture(scope="module")
def sdnet_inputs() -> dict:
    return sdnet_explorer_inputs("shipped")


def test_shipped_explorer_store_matches_the_rendered_training_images(sdnet_inputs: dict) -> None:
    from crowdlib.methods import sdnet

    store, recs = sdnet_inputs["store"], sdnet_inputs["records"]
    assert len(store) == len(recs) == 6
    cfg = sdnet_inputs["config"]
    first = explorer_records(cfg, 2)
    assert [r.image_id for r in first] == list(store.image_ids[:2])
    for r, pts in zip(recs, store.points):
        np.testing.assert_allclose(r.points, pts)
    hist = store.history()
    assert len(hist) and hist[:, 0].max() == sdnet.merge_config(sdnet.default_config(), cfg)["train"]["epochs"] - 1


def test_sdnet_explorer_counts_a_test_scene_within_30_percent_and_follows_the_threshold(sdnet_inputs: dict) -> None:
    """On the recipe's first held-out scene, at the validation-chosen threshold (no choice made on test)."""
    from crowdlib.methods import sdnet
    from crowdlib.widgets import PseudoBoxExplorer, detections_above
    from crowdlib.zoo import load_model

    zm = load_model("sdnet-synthetic-explorer", device="cpu")
    cfg = zm.config
    rec = sdnet.eval_records_for(cfg, 1, None, 0, 4000)[0]  # notebook 11's default test scenes (test_seed 4000)
    ev = sdnet.merge_config(sdnet.default_config(), cfg)["eval"]
    pred = sdnet.predict_sdnet(zm.net, [rec], scales=ev["scales"], min_score=ev["min_score"])[0]
    at_default = detections_above(pred, sdnet_inputs["threshold"], rec.count)
    assert abs(at_default["count"] - rec.count) <= 0.3 * rec.count, (at_default["count"], rec.count)
    assert detections_above(pred, sdnet_inputs["threshold"] + 0.1, rec.count)["count"] < at_default["count"]

    ex = PseudoBoxExplorer([rec] + sdnet_inputs["records"][1:], sdnet_inputs["store"],
                           [pred] + sdnet_inputs["predictions"][1:], sdnet_inputs["pseudo_params"],
                           threshold=round(sdnet_inputs["threshold"], 2), start_image=0)
    assert ex.state["count"] == at_default["count"] > 0
    ex.threshold.value = 0.7
    assert ex.state["count"] < at_default["count"] and str(ex.state["count"]) in ex.summary.value


@pytest.fixture(scope="module")
def iim_inputs() -> dict:
    return iim_explorer_inputs("shipped", n_images=2)


def test_iim_explorer_opens_on_the_trained_maps_and_follows_the_threshold(iim_inputs: dict) -> None:
    from crowdlib.widgets_iim import ThresholdExplorer

    m = iim_inputs["maps"][0]
    assert m["confidence"].max() > 0.8 and m["confidence"].std() > 0.1, "a flat confidence map: not trained"
    assert 0.2 <= m["threshold"].min() and m["threshold"].max() <= 0.7 and m["threshold"].std() > 0
    ex = ThresholdExplorer(iim_inputs["records"], iim_inputs["maps"], threshold=iim_inputs["threshold"], draw=False)
    first = ex.state["count"]
    assert first > 0 and ex.state["f1"] > 0.3
    ex.threshold.value = 0.9
    assert ex.state["count"] != first
    ex.mode.value = "learned"
    assert ex.state["count"] > 0 and ex.threshold.disabled


def test_iim_explorer_counts_the_first_test_scene_within_30_percent(iim_inputs: dict) -> None:
    from crowdlib.widgets_iim import explore_state

    rec, maps = iim_inputs["records"][0], iim_inputs["maps"][0]
    s = explore_state(rec, maps, "global", iim_inputs["threshold"])
    assert abs(s["count"] - rec.count) <= 0.3 * rec.count, (s["count"], rec.count)
    assert explore_state(rec, maps, "global", iim_inputs["threshold"] + 0.2)["count"] != s["count"]
