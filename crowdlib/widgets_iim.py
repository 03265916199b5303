"""Interactive IIM threshold explorer (notebook 91): slide a global threshold or switch to the learned PBM map.

The widget's callbacks only call pure functions: :func:`explore_state` (binarize, decode components, score one
image) and :func:`draw_state` (matplotlib drawing through :mod:`crowdlib.viz`), so the logic is tested without a
browser by setting widget values (``explorer.threshold.value = 0.7``) and reading ``explorer.state``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from crowdlib.data.records import CrowdRecord

__all__ = ["explore_state", "draw_state", "ThresholdExplorer", "CAPTION"]

CAPTION = ("<small>Panels, left to right: the image with the annotated heads (green) and the decoded ones (red: "
           "centroids of the binary map's components of at least <i>min area</i> pixels); the predicted confidence "
           "map (0-1); the threshold it is cut with: one global T, or the learned PBM map (compressed sigmoid, "
           "0.2-0.7); the binary map (confidence >= threshold). F1, precision and recall: NWPU matching at sigma_l "
           "on this image.</small>")


def explore_state(record: CrowdRecord, maps: Mapping[str, np.ndarray], mode: str = "global", threshold: float = 0.5,
                  min_area: int = 3) -> dict[str, Any]:
    """Binarize one image's confidence map and score the decoded heads.

    Args:
        record: the image's record (ground truth for scoring: sigmas or boxes).
        maps: ``{"confidence": (H, W), "threshold": (H, W)}`` from :func:`crowdlib.methods.iim.predict_maps`.
        mode: ``"global"`` (one threshold for every pixel) or ``"learned"`` (the predicted threshold map).
        threshold: the global threshold.
        min_area: smallest component kept.

    Returns:
        ``{"binary", "points", "count", "gt_count", "f1", "pre", "rec", "mode", "threshold"}``.

    Raises:
        ValueError: unknown mode, or ``"learned"`` without a threshold map.
    """
    from crowdlib.methods.iim import decode_components, score_points

    conf = np.asarray(maps["confidence"])
    if mode == "global":
        thr: Any = float(threshold)
    elif mode == "learned":
        if maps.get("threshold") is None:
            raise ValueError("explore_state: mode 'learned' needs a predicted threshold map")
        thr = np.asarray(maps["threshold"])
    else:
        raise ValueError(f"explore_state: mode must be 'global' or 'learned', got {mode!r}")
    binary = conf >= thr
    pts = decode_components(binary, int(min_area))
    s = score_points([record], [pts])
    return {"binary": binary, "points": pts, "count": int(len(pts)), "gt_count": record.count, "f1": s["f1"],
            "pre": s["pre"], "rec": s["rec"], "mode": mode, "threshold": threshold}


def draw_state(record: CrowdRecord, maps: Mapping[str, np.ndarray], state: Mapping[str, Any], fig: Any = None) -> Any:
    """Four panels: image with heads (ground truth green, predictions red), confidence, threshold, binary map."""
    from crowdlib.viz import draw_points, overlay_mask, show_image

    if fig is None:  # not a pyplot figure: the inline backend would show it a second time, stale, under the widget
        from matplotlib.figure import Figure

        fig = Figure(figsize=(12, 3.4))
    fig.clf()
    axes = fig.subplots(1, 4)
    img = record.load_image()
    show_image(axes[0], img, f"{record.image_id}: {state['count']} found / {state['gt_count']} true")
    draw_points(axes[0], record.points, color="lime", size=8)
    draw_points(axes[0], state["points"], color="red", size=5)
    axes[1].imshow(maps["confidence"], vmin=0, vmax=1, cmap="magma")
    axes[1].set_title("confidence", fontsize=9)
    thr = maps.get("threshold")
    if state["mode"] == "global" or thr is None:
        axes[2].imshow(np.full_like(maps["confidence"], float(state["threshold"])), vmin=0, vmax=1, cmap="viridis")
        axes[2].set_title(f"global threshold {float(state['threshold']):.2f}", fontsize=9)
    else:
        axes[2].imshow(thr, vmin=0.2, vmax=0.7, cmap="viridis")
        axes[2].set_title("learned threshold map (0.2-0.7)", fontsize=9)
    overlay_mask(axes[3], img, state["binary"], color=(1.0, 0.2, 0.2), alpha=0.6)
    axes[3].set_title(f"binary: F1 {state['f1']:.3f}  P {state['pre']:.3f}  R {state['rec']:.3f}", fontsize=9)
    for ax in axes[1:3]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


class ThresholdExplorer:
    """ipywidgets UI: image slider, mode toggle (global / learned), threshold and minimum-area sliders.

    Args:
        records: the images.
        maps: one :func:`crowdlib.methods.iim.predict_maps` dict per record.
        threshold: initial global threshold.
        min_area: initial minimum component area.
        draw: render a figure into ``self.output`` on every change (``False`` in tests).
    """

    def __init__(self, records: Sequence[CrowdRecord], maps: Sequence[Mapping[str, np.ndarray]], threshold: float = 0.5,
                 min_area: int = 3, draw: bool = True) -> None:
        import ipywidgets as w

        if len(records) == 0 or len(records) != len(maps):
            raise ValueError(f"ThresholdExplorer: need one map per record, got {len(records)} records, {len(maps)} maps")
        self.records = list(records)
        self.maps = list(maps)
        self.draw = bool(draw)
        has_thr = all(m.get("threshold") is not None for m in self.maps)
        self.image = w.IntSlider(value=0, min=0, max=len(records) - 1, description="image")
        self.mode = w.ToggleButtons(options=["global", "learned"] if has_thr else ["global"], value="global",
                                    description="threshold")
        self.threshold = w.FloatSlider(value=float(threshold), min=0.05, max=0.95, step=0.01, description="global T",
                                       continuous_update=False)
        self.min_area = w.IntSlider(value=int(min_area), min=1, max=30, description="min area")
        self.summary = w.HTML()
        self.output = w.Output()
        self._fig = None
        self.state: dict[str, Any] = {}
        for ctrl in (self.image, self.mode, self.threshold, self.min_area):
            ctrl.observe(self._on_change, names="value")
        self.update()

    def _on_change(self, change: Any) -> None:
        self.update()

    def update(self) -> dict[str, Any]:
        """Recompute :attr:`state` from the widget values and redraw."""
        i = int(self.image.value)
        self.threshold.disabled = self.mode.value == "learned"
        self.state = explore_state(self.records[i], self.maps[i], self.mode.value, float(self.threshold.value),
                                   int(self.min_area.value))
        s = self.state
        self.summary.value = (f"<b>{self.records[i].image_id}</b>: count {s['count']} (true {s['gt_count']}), "
                              f"F1 {s['f1']:.3f}, precision {s['pre']:.3f}, recall {s['rec']:.3f}")
        if self.draw:
            from IPython.display import display

            with self.output:
                self.output.clear_output(wait=True)
                self._fig = draw_state(self.records[i], self.maps[i], s, self._fig)
                display(self._fig)
        return self.state

    def widget(self) -> Any:
        """The assembled UI (display it in a notebook cell)."""
        import ipywidgets as w

        return w.VBox([w.HBox([self.image, self.mode]), w.HBox([self.threshold, self.min_area]), self.summary,
                       self.output, w.HTML(CAPTION)])
