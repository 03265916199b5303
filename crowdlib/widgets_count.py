"""Try-your-image widget (notebook 92): upload a picture, pick a zoo model, slide its threshold, read the count.

The callbacks only call pure functions: :func:`image_from_upload` (the ``FileUpload`` value to an RGB array),
:func:`raw_prediction` (one model pass, cached per image and model: every peak for a detector, the maps for IIM)
and :func:`count_at` (the heads above a threshold), and :func:`overlay_png` draws; so the tests drive the widget by
setting ``explorer.<widget>.value`` and reading ``explorer.state``.
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = ["image_from_upload", "sample_image", "raw_prediction", "count_at", "overlay_png", "CountExplorer"]


def image_from_upload(value: Any) -> tuple[np.ndarray, str] | None:
    """``(RGB array, file name)`` of the last file in an ``ipywidgets.FileUpload`` value, or ``None`` when empty.

    Raises:
        crowdlib.data.ImageReadError: the file is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    from crowdlib.data import ImageReadError

    files = list(value.values()) if isinstance(value, dict) else list(value or ())
    if not files:
        return None
    f = files[-1]
    name = f.get("name", "upload") if isinstance(f, dict) else getattr(f, "name", "upload")
    content = f["content"] if isinstance(f, dict) else f.content
    try:
        with Image.open(io.BytesIO(bytes(content))) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy(), str(name)
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageReadError(name, f"not a readable image: {exc}") from exc


def sample_image(seed: int = 0) -> tuple[np.ndarray, int, str]:
    """A ShanghaiTech-B-like synthetic scene (768 x 1024): ``(image, true count, name)``."""
    from crowdlib.data.synthetic import SyntheticCrowds

    rec = SyntheticCrowds("shb_like", 1, seed=int(seed))[0]
    return rec.load_image(), int(rec.count), rec.image_id


def raw_prediction(zm: Any, image: np.ndarray) -> dict[str, Any]:
    """Everything a threshold can later select from: a detector's every peak, or IIM's / a counter's maps."""
    from crowdlib.counter import predict_one

    if zm.kind == "sdnet":
        return predict_one(zm, image, threshold=-1.0)
    from crowdlib.counter import _raw_tile

    return {"maps": _raw_tile(zm, image), "image_size": image.shape[:2]}


def count_at(zm: Any, raw: dict[str, Any], threshold: float) -> dict[str, Any]:
    """``{"count", "points", "boxes"}`` at ``threshold`` (a detector's score, IIM's global confidence threshold)."""
    if zm.kind == "sdnet":
        keep = raw["scores"] > float(threshold)
        return {"count": int(keep.sum()), "points": raw["points"][keep], "boxes": raw["boxes"][keep]}
    from crowdlib.counter import _points_of

    pts, _ = _points_of(zm, raw["maps"], float(threshold))
    if zm.kind == "density":
        return {"count": float(raw["maps"]["map"].sum() / float(zm.inference.get("density_scale", 1.0))),
                "points": pts, "boxes": None}
    return {"count": int(len(pts)), "points": pts, "boxes": None}


def overlay_png(image: np.ndarray, result: dict[str, Any], title: str) -> bytes:
    """The image with the heads drawn (boxes or points) and ``title`` above it, as PNG bytes."""
    from matplotlib.figure import Figure

    from crowdlib import viz

    h, w = image.shape[:2]
    fig = Figure(figsize=(7, 7 * h / max(w, 1) + 0.4))
    ax = fig.subplots()
    viz.show_image(ax, image, title)
    if result.get("boxes") is not None and len(result["boxes"]):
        viz.draw_boxes(ax, result["boxes"], color="red")
    else:
        viz.draw_points(ax, result["points"], color="red", size=6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


class CountExplorer:
    """ipywidgets UI: file upload (a synthetic sample until something is uploaded), model picker, threshold."""

    def __init__(self, models: list[str] | None = None, model: str = "sdnet-shb", sample_seed: int = 0) -> None:
        import ipywidgets as W

        from crowdlib.zoo import list_models

        names = models or [c.name for c in list_models()]
        if model not in names:
            raise ValueError(f"CountExplorer: model {model!r} is not among {names}")
        self._models: dict[str, Any] = {}
        self._raw: dict[tuple[str, str], dict[str, Any]] = {}
        self.image, self.true_count, self.image_name = sample_image(sample_seed)
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="your image")
        self.model = W.Dropdown(options=names, value=model, description="model")
        self.threshold = W.FloatSlider(value=self._zoo(model).default_threshold, min=0.0, max=1.0, step=0.01,
                                       description="threshold", continuous_update=False)
        self.summary = W.HTML()
        self.view = W.Image(format="png")
        self.state: dict[str, Any] = {}
        self.upload.observe(self._on_upload, names="value")
        self.model.observe(self._on_model, names="value")
        self.threshold.observe(lambda _c: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.upload, self.model, self.threshold]), self.summary, self.view])
        self.update()

    def _zoo(self, name: str) -> Any:
        if name not in self._models:
            from crowdlib.zoo import load_model

            self._models[name] = load_model(name)
        return self._models[name]

    def _on_upload(self, _change: Any) -> None:
        try:
            got = image_from_upload(self.upload.value)
        except ValueError as exc:  # ImageReadError
            self.summary.value = f"<b>error</b>: {exc}"
            return
        if got is not None:
            self.image, self.image_name = got
            self.true_count = None
            self.update()

    def _on_model(self, _change: Any) -> None:
        self.threshold.value = self._zoo(self.model.value).default_threshold  # triggers update when it changes
        self.update()

    def update(self) -> dict[str, Any]:
        zm = self._zoo(self.model.value)
        key = (self.image_name, zm.name)
        if key not in self._raw:
            self._raw[key] = raw_prediction(zm, self.image)
        res = count_at(zm, self._raw[key], float(self.threshold.value))
        c = res["count"]
        text = f"count {c:.1f}" if isinstance(c, float) else f"count {c}"
        truth = "" if self.true_count is None else f" (true {self.true_count})"
        self.state = {"count": c, "true_count": self.true_count, "model": zm.name, "image": self.image_name,
                      "threshold": float(self.threshold.value)}
        self.summary.value = (f"<b>{self.image_name}</b>: {text}{truth} with <code>{zm.name}</code> above "
                              f"{float(self.threshold.value):.2f} <small>({zm.card.data}; {zm.card.metrics_on}: "
                              + ", ".join(f"{k} {v:.3g}" for k, v in list(zm.card.metrics.items())[:3])
                              + ")</small>")
        self.view.value = overlay_png(self.image, res, f"{self.image_name}: {text}{truth}")
        return self.state
