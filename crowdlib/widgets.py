"""Interactive Crowd-SDNet explorer (ipywidgets): pseudo boxes over training epochs and the score threshold.

:class:`PseudoBoxExplorer` shows, for one training image,

- left: its pseudo boxes from GAK, LUDA, or the self-training store at a chosen epoch (boxes coloured by their stored
  confidence; the epoch slider replays the store's update history, -1 = before training);
- right: the trained detector's boxes above a score threshold, with the count and its error against the true count.

Every widget callback calls the pure functions below (:func:`pseudo_boxes_at`, :func:`detections_above`) and the
drawing helpers of :mod:`crowdlib.viz`, so the logic is testable without a browser: set ``explorer.<widget>.value``
and read ``explorer.state`` / ``explorer.summary.value``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crowdlib.methods.sdnet import PseudoBoxStore, pseudo_boxes

__all__ = ["pseudo_boxes_at", "detections_above", "PseudoBoxExplorer", "CAPTION"]

SOURCES = ("GAK", "LUDA", "refined")

CAPTION = ("<small>Left: the training image's pseudo boxes from the chosen source, around the annotated heads "
           "(green dots): GAK (red; sizes from a Gaussian kernel of the nearest-neighbour distances), LUDA (coloured "
           "by crowdedness) or refined (the self-training store at the end of the chosen epoch, -1 = before "
           "training, coloured by stored confidence from the prior, blue, to 1, green). Right: the trained "
           "detector's boxes with score above the threshold (colour: score), their count and its error against "
           "the annotated heads; the slider starts at the count threshold chosen on validation images.</small>")


def pseudo_boxes_at(store: PseudoBoxStore, index: int, source: str, epoch: int,
                    gak_boxes: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(N, 4)`` and per-box values ``(N,)`` of image ``index`` for a source.

    ``"refined"``: the store's sizes at the end of ``epoch`` (-1: initial) with their confidences as values;
    ``"LUDA"``: the store's initial sizes with crowdedness as values (the store must be LUDA-initialised);
    ``"GAK"``: ``gak_boxes[index]`` with zeros as values.
    """
    if source == "refined":
        sizes, conf = store.sizes_at_epoch(index, int(epoch))
        p = store.points[index]
        return np.concatenate([p - sizes[:, None] / 2, p + sizes[:, None] / 2], 1).astype(np.float32), conf
    if source == "LUDA":
        return store.boxes(index, "init"), store.crowdedness[index]
    if source == "GAK":
        if gak_boxes is None:
            raise ValueError("pseudo_boxes_at: source 'GAK' needs gak_boxes")
        b = np.asarray(gak_boxes[index], dtype=np.float32).reshape(-1, 4)
        return b, np.zeros(len(b), dtype=np.float32)
    raise ValueError(f"pseudo_boxes_at: source must be one of {SOURCES}, got {source!r}")


def detections_above(pred: Mapping[str, np.ndarray], threshold: float, true_count: int) -> dict[str, Any]:
    """Detections with score > ``threshold``: ``{"boxes", "scores", "count", "error"}`` (error = count - true)."""
    keep = np.asarray(pred["scores"]) > float(threshold)
    count = int(keep.sum())
    return {"boxes": np.asarray(pred["boxes"])[keep], "scores": np.asarray(pred["scores"])[keep], "count": count,
            "error": count - int(true_count)}


class PseudoBoxExplorer:
    """Widget: pick a training image, replay its pseudo-box refinement, slide the detection threshold.

    Args:
        records: the training records, in store order.
        store: the trained run's :class:`~crowdlib.methods.sdnet.PseudoBoxStore` (LUDA-initialised).
        predictions: per record ``{"boxes", "scores"}`` of the trained detector (``predict_sdnet``), or ``None``.
        pseudo_params: LUDA/GAK parameters (for the GAK boxes).
        threshold: initial score threshold (e.g. the run's validation-chosen count threshold).
        start_image: the image shown first; ``None``: the one with the median head count (a typical scene rather
            than whichever comes first, which may be the densest).
    """

    def __init__(self, records: Sequence[Any], store: PseudoBoxStore,
                 predictions: Sequence[Mapping[str, np.ndarray]] | None = None,
                 pseudo_params: Mapping[str, Any] | None = None, threshold: float = 0.4,
                 start_image: int | None = None) -> None:
        import ipywidgets as W

        if len(records) != len(store):
            raise ValueError(f"PseudoBoxExplorer: {len(records)} records for a store of {len(store)} images")
        if predictions is not None and len(predictions) != len(records):
            raise ValueError(f"PseudoBoxExplorer: {len(predictions)} predictions for {len(records)} records")
        self.records = records
        self.store = store
        self.predictions = predictions
        self.gak = pseudo_boxes(records, "gak", pseudo_params)
        hist = store.history()
        self.max_epoch = int(hist[:, 0].max()) if len(hist) else 0
        labels = [(f"{i}: {r.image_id} ({r.count} heads)", i) for i, r in enumerate(records)]
        if start_image is None:
            order = np.argsort([r.count for r in records], kind="stable")
            start_image = int(order[(len(order) - 1) // 2]) if len(order) else 0
        if not 0 <= int(start_image) < max(len(records), 1):
            raise ValueError(f"PseudoBoxExplorer: start_image {start_image} is not an index of the {len(records)} records")
        self.image = W.Dropdown(options=labels, value=int(start_image), description="image")
        self.epoch = W.IntSlider(value=self.max_epoch, min=-1, max=self.max_epoch, description="epoch")
        self.source = W.ToggleButtons(options=list(SOURCES), value="refined", description="pseudo boxes")
        self.threshold = W.FloatSlider(value=float(threshold), min=0.0, max=1.0, step=0.01, description="threshold")
        self.summary = W.HTML()
        self.view = W.Image(format="png")
        self.state: dict[str, Any] = {}
        for w in (self.image, self.epoch, self.source, self.threshold):
            w.observe(self._on_change, names="value")
        self.widget = W.VBox([W.HBox([self.image, self.source]), W.HBox([self.epoch, self.threshold]),
                              self.summary, self.view, W.HTML(CAPTION)])
        self.update()

    def _on_change(self, _change: Any) -> None:
        self.update()

    def compute(self) -> dict[str, Any]:
        """The current state from the widget values (pure computation, no drawing)."""
        i = int(self.image.value)
        rec = self.records[i]
        boxes, values = pseudo_boxes_at(self.store, i, self.source.value, int(self.epoch.value), self.gak)
        st: dict[str, Any] = {"index": i, "source": self.source.value, "epoch": int(self.epoch.value),
                              "pseudo_boxes": boxes, "pseudo_values": values, "true_count": rec.count,
                              "n_refined": int((self.store.sizes_at_epoch(i, int(self.epoch.value))[1]
                                                > self.store.prior).sum())}
        if self.predictions is not None:
            st.update(detections_above(self.predictions[i], float(self.threshold.value), rec.count))
        return st

    def update(self) -> None:
        """Recompute the state, the summary line and the rendered figure (PNG bytes in ``self.view``)."""
        self.state = self.compute()
        st = self.state
        text = (f"<b>{self.records[st['index']].image_id}</b>: {st['true_count']} heads; "
                f"{st['n_refined']} pseudo boxes refined by epoch {st['epoch']}")
        if "count" in st:
            text += f"; detections > {float(self.threshold.value):.2f}: {st['count']} (error {st['error']:+d})"
        self.summary.value = text
        import io

        import matplotlib.pyplot as plt

        fig = self.figure()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        self.view.value = buf.getvalue()

    def figure(self) -> Any:
        """A matplotlib figure of the current state (pseudo boxes left, detections right)."""
        import matplotlib.pyplot as plt

        from crowdlib import viz

        st = self.state
        rec = self.records[st["index"]]
        ncol = 2 if "count" in st else 1
        fig, axes = plt.subplots(1, ncol, figsize=(5 * ncol, 5), squeeze=False)
        ax = axes[0, 0]
        viz.show_image(ax, rec.load_image(), f"{st['source']} pseudo boxes" +
                       (f" (epoch {st['epoch']})" if st["source"] == "refined" else ""))
        if st["source"] == "refined":
            viz.draw_boxes(ax, st["pseudo_boxes"], values=st["pseudo_values"], cmap="winter",
                           vmin=self.store.prior, vmax=1.0)
        elif st["source"] == "LUDA":
            viz.draw_boxes(ax, st["pseudo_boxes"], values=st["pseudo_values"], cmap="autumn")
        else:
            viz.draw_boxes(ax, st["pseudo_boxes"], color="red")
        viz.draw_points(ax, rec.points, color="lime", size=5)
        if ncol == 2:
            ax = axes[0, 1]
            viz.show_image(ax, rec.load_image(), f"detections: {st['count']} (true {st['true_count']})")
            viz.draw_boxes(ax, st["boxes"], values=st["scores"], cmap="autumn", vmin=0.0, vmax=1.0)
        fig.tight_layout()
        return fig
