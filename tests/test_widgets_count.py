"""Try-your-image widget (notebook 92): callbacks driven by setting widget values (no browser)."""
from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest

from crowdlib.widgets_count import CountExplorer, count_at, image_from_upload, raw_prediction

_T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # FileUpload values carry a modification time


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def explorer() -> CountExplorer:
    return CountExplorer(model="sdnet-synthetic-explorer")


def test_opens_on_the_sample_with_its_true_count_and_the_validation_threshold(explorer: CountExplorer) -> None:
    s = explorer.state
    assert s["true_count"] > 0 and s["count"] > 0 and s["model"] == "sdnet-synthetic-explorer"
    assert s["threshold"] == pytest.approx(explorer._zoo("sdnet-synthetic-explorer").default_threshold)
    assert explorer.view.value[:8] == b"\x89PNG\r\n\x1a\n" and "true" in explorer.summary.value


def test_threshold_upload_and_model_change_the_count(explorer: CountExplorer) -> None:
    before = explorer.state["count"]
    explorer.threshold.value = 0.9
    assert explorer.state["count"] < before
    img = explorer.image[:256, :320].copy()
    explorer.upload.value = ({"name": "mine.png", "type": "image/png", "size": 1, "content": memoryview(_png(img)),
                              "last_modified": _T0},)
    assert explorer.state["image"] == "mine.png" and explorer.state["true_count"] is None
    assert "true" not in explorer.summary.value
    explorer.model.value = "iim-synthetic-explorer"
    assert explorer.state["model"] == "iim-synthetic-explorer"
    assert explorer.state["threshold"] == pytest.approx(explorer._zoo("iim-synthetic-explorer").default_threshold)


def test_a_non_image_upload_is_reported_not_raised(explorer: CountExplorer) -> None:
    name = explorer.state["image"]
    explorer.upload.value = ({"name": "notes.txt", "type": "text/plain", "size": 3, "content": memoryview(b"abc"),
                              "last_modified": _T0},)
    assert "error" in explorer.summary.value and "notes.txt" in explorer.summary.value
    assert explorer.state["image"] == name


def test_pure_functions() -> None:
    from crowdlib.zoo import load_model

    assert image_from_upload(()) is None
    zm = load_model("sdnet-synthetic-explorer")
    img = np.zeros((64, 80, 3), np.uint8)
    raw = raw_prediction(zm, img)
    assert count_at(zm, raw, 2.0)["count"] == 0  # no score exceeds 2
    with pytest.raises(ValueError, match="not among"):
        CountExplorer(model="nope")
