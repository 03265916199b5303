"""Crowd-SDNet explorer widget: callbacks driven by setting widget values (no browser)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from crowdlib.data.records import CrowdRecord  # noqa: E402
from crowdlib.methods.sdnet import PseudoBoxStore  # noqa: E402
from crowdlib.widgets import PseudoBoxExplorer, detections_above, pseudo_boxes_at  # noqa: E402


def _setup():
    rng = np.random.default_rng(0)
    recs = [CrowdRecord(f"img{i}", rng.uniform(5, 55, (6, 2)).astype(np.float32),
                        image=np.zeros((64, 64, 3), np.uint8)) for i in range(2)]
    store = PseudoBoxStore.from_records(recs, "luda", {"K": 2, "beta": 1.0, "r": 8})
    store.refine(0, np.array([0, 1]), np.array([3.0, 4.0]), np.array([0.7, 0.8]), epoch=0)
    store.refine(0, np.array([0]), np.array([5.0]), np.array([0.9]), epoch=1)
    preds = [{"boxes": np.array([[0, 0, 4, 4], [10, 10, 14, 14], [20, 20, 24, 24]], np.float32),
              "scores": np.array([0.9, 0.5, 0.2], np.float32)} for _ in recs]
    return recs, store, preds


def test_pure_helpers() -> None:
    recs, store, preds = _setup()
    b, v = pseudo_boxes_at(store, 0, "refined", 0)
    assert b[0, 2] - b[0, 0] == pytest.approx(3.0) and v[0] == pytest.approx(0.7)
    b, v = pseudo_boxes_at(store, 0, "refined", -1)
    np.testing.assert_allclose(b, store.boxes(0, "init"))
    d = detections_above(preds[0], 0.4, true_count=6)
    assert d["count"] == 2 and d["error"] == -4 and len(d["boxes"]) == 2
    with pytest.raises(ValueError, match="source"):
        pseudo_boxes_at(store, 0, "true", 0)


def test_explorer_callbacks_update_state() -> None:
    recs, store, preds = _setup()
    ex = PseudoBoxExplorer(recs, store, preds, {"K": 2, "beta": 1.0, "r": 8}, threshold=0.4)
    assert ex.epoch.max == 1 and ex.state["epoch"] == 1
    assert ex.state["pseudo_boxes"][0, 2] - ex.state["pseudo_boxes"][0, 0] == pytest.approx(5.0)
    assert ex.state["n_refined"] == 2 and "error -4" in ex.summary.value
    ex.threshold.value = 0.1
    assert ex.state["count"] == 3 and "error -3" in ex.summary.value
    ex.epoch.value = 0
    assert ex.state["pseudo_boxes"][0, 2] - ex.state["pseudo_boxes"][0, 0] == pytest.approx(3.0)
    ex.source.value = "GAK"
    np.testing.assert_allclose(ex.state["pseudo_boxes"], ex.gak[0])
    ex.source.value = "LUDA"
    np.testing.assert_allclose(ex.state["pseudo_values"], store.crowdedness[0])
    ex.image.value = 1
    assert ex.state["index"] == 1 and ex.state["n_refined"] == 0
    fig = ex.figure()
    assert len(fig.axes) == 2
    assert ex.view.value[:4] == b"\x89PNG"  # the rendered figure shown by the widget


def test_explorer_rejects_mismatched_inputs() -> None:
    recs, store, preds = _setup()
    with pytest.raises(ValueError, match="records"):
        PseudoBoxExplorer(recs[:1], store)
    with pytest.raises(ValueError, match="predictions"):
        PseudoBoxExplorer(recs, store, preds[:1])


def test_explorer_opens_on_the_median_scene_unless_told() -> None:
    rng = np.random.default_rng(1)
    recs = [CrowdRecord(f"img{i}", rng.uniform(5, 55, (n, 2)).astype(np.float32), image=np.zeros((64, 64, 3), np.uint8))
            for i, n in enumerate([40, 3, 12, 25, 6])]  # the first image is the densest
    store = PseudoBoxStore.from_records(recs, "luda", {"K": 2, "beta": 1.0, "r": 8})
    assert PseudoBoxExplorer(recs, store).state["index"] == 2  # 12 heads: the median of 3, 6, 12, 25, 40
    assert PseudoBoxExplorer(recs, store, start_image=0).state["index"] == 0
    with pytest.raises(ValueError, match="start_image"):
        PseudoBoxExplorer(recs, store, start_image=5)
