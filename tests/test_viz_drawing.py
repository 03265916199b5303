"""crowdlib.viz: drawing functions run headless and draw the expected artists."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from crowdlib import viz  # noqa: E402
from crowdlib.data.datasets import normalize  # noqa: E402
from crowdlib.data.records import CrowdRecord  # noqa: E402

IMG = (np.arange(20 * 30 * 3) % 256).astype(np.uint8).reshape(20, 30, 3)


def test_as_rgb_formats():
    a = viz.as_rgb(IMG)
    assert a.shape == (20, 30, 3) and a.max() <= 1.0
    t = torch.from_numpy(IMG).permute(2, 0, 1).float() / 255
    np.testing.assert_allclose(viz.as_rgb(t), a, atol=1e-6)
    np.testing.assert_allclose(viz.as_rgb(normalize(t)), a, atol=1e-5)
    with pytest.raises(ValueError):
        viz.as_rgb(np.zeros(5))


def test_points_boxes_and_labels():
    fig, ax = plt.subplots()
    assert viz.show_image(ax, IMG, title="x") is ax
    assert len(ax.images) == 1
    pc = viz.draw_points(ax, np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert pc.get_offsets().shape == (3, 2)
    boxes = np.array([[0, 0, 5, 5], [2, 2, 9, 9]], np.float32)
    col = viz.draw_boxes(ax, boxes, values=[0.1, 0.9], label_values=True)
    assert len(col.get_paths()) == 2
    assert len(ax.texts) == 2
    ec = col.get_edgecolor()
    assert not np.allclose(ec[0], ec[1])  # coloured by value
    with pytest.raises(ValueError):
        viz.draw_boxes(ax, boxes, values=[1.0])
    viz.draw_boxes(ax, np.zeros((0, 4)))
    plt.close(fig)


def test_overlays():
    fig, (a1, a2) = plt.subplots(1, 2)
    viz.overlay_map(a1, IMG, np.random.default_rng(0).random((5, 7)), colorbar=True)
    assert len(a1.images) == 2
    viz.overlay_mask(a2, IMG, np.eye(20, 30) > 0)
    assert len(a2.images) == 2
    with pytest.raises(ValueError):
        viz.overlay_mask(a2, IMG, np.zeros(4))
    arr = viz.figure_to_array(fig)
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    plt.close(fig)


def test_image_grid():
    recs = [CrowdRecord(f"r{i}", points=[[3.0, 4.0]], image=IMG, boxes=[[1, 1, 6, 7]]) for i in range(3)]
    fig = viz.image_grid(recs, ncols=2)
    axes = fig.get_axes()
    assert len(axes) == 4
    assert len(axes[0].collections) == 2 and axes[0].get_title().startswith("r0")
    assert not axes[3].axison
    plt.close(fig)
    fig = viz.image_grid([(IMG, None, None)], ncols=3, titles=["t"])
    assert fig.get_axes()[0].get_title() == "t"
    plt.close(fig)
    with pytest.raises(ValueError):
        viz.image_grid([])
