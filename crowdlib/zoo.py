"""The model zoo: weights made by this repository's recipes (:mod:`crowdlib.recipes`), shipped under ``weights/``.

Each model is one file ``weights/<name>.pt`` holding half-precision weights, the run config that rebuilds the
network, and what inference needs (the validation-chosen count threshold, the NMS IoU, the input scale), plus,
for the widget models, the explorer's data (Crowd-SDNet's pseudo-box store of a few training images). Its card in
``weights/MODELS.json`` (rendered as ``weights/MODELS.md``) names the recipe, the data, the git SHA it was
trained at, the training time, the file's SHA-256 and the metrics it reaches.

:func:`load_model` checks the SHA-256 against the card before reading anything, reads with ``weights_only=True``
and never touches the network. ``crowdlib.count(image, model=...)`` answers with a dict: ``count``,
``points`` ``(N, 2)`` with ``scores`` ``(N,)``, and ``boxes`` ``(N, 4)`` (detectors) or ``density`` ``(H, W)``
(density counters).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from crowdlib import paths

__all__ = ["ModelCard", "UnknownModelError", "WeightsChecksumError", "weights_dir", "list_models", "model_card",
           "load_model", "ZooModel", "sha256_file", "write_weights", "save_cards", "render_models_md"]

INDEX = "MODELS.json"


class UnknownModelError(KeyError):
    """No model of that name in the zoo (the message lists the names there are)."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0])


class WeightsChecksumError(RuntimeError):
    """A weight file's SHA-256 differs from its card: the file was changed or damaged."""


@dataclass
class ModelCard:
    """One zoo entry (a row of ``weights/MODELS.json``)."""

    name: str
    file: str
    sha256: str
    kind: str  # "sdnet" (a detector: points, scores, boxes) or "iim" (instance maps) or "density"
    recipe: str
    data: str
    description: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_on: str = ""
    trained_at: str = ""
    train_seconds: float = float("nan")
    seconds_per_image: float = float("nan")
    size_bytes: int = 0
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def weights_dir() -> Path:
    """``$CROWDLIB_WEIGHTS`` if set, else the repository's ``weights/``."""
    env = os.environ.get("CROWDLIB_WEIGHTS")
    return Path(env) if env else paths.project_root() / "weights"


def _read_index(folder: Path) -> list[dict[str, Any]]:
    p = folder / INDEX
    if not p.is_file():
        return []
    return list(json.loads(p.read_text())["models"])


def list_models(folder: str | Path | None = None) -> list[ModelCard]:
    """The cards of every model in the zoo, in index order."""
    folder = Path(folder) if folder is not None else weights_dir()
    return [ModelCard(**row) for row in _read_index(folder)]


def model_card(name: str, folder: str | Path | None = None) -> ModelCard:
    """The card of model ``name``.

    Raises:
        UnknownModelError: no such model (the message lists the zoo).
    """
    cards = {c.name: c for c in list_models(folder)}
    if name not in cards:
        have = ", ".join(cards) or "none (weights/MODELS.json is missing)"
        raise UnknownModelError(f"unknown model {name!r}; the zoo has: {have}. `python -m crowdlib models` lists them")
    return cards[name]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _half(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()) for k, v in state.items()}


def write_weights(path: str | Path, *, kind: str, config: Mapping[str, Any], model_state: Mapping[str, torch.Tensor],
                  inference: Mapping[str, Any], extras: Mapping[str, Any] | None = None) -> str:
    """Write a zoo file (weights in half precision) and return its SHA-256.

    ``config`` is the run config (plain JSON types) that rebuilds the network; ``inference`` holds what prediction
    needs (``count_threshold``, ``nms_iou``, ``scale``...); ``extras`` more plain data (a widget's store).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": "crowdlib-zoo-1", "kind": kind, "config_json": json.dumps(config, sort_keys=True),
               "inference_json": json.dumps(dict(inference), sort_keys=True), "model": _half(model_state),
               "extras": dict(extras or {})}
    torch.save(payload, path)
    return sha256_file(path)


def save_cards(cards: list[ModelCard], folder: str | Path | None = None) -> None:
    """Write ``MODELS.json`` and its rendering ``MODELS.md``."""
    folder = Path(folder) if folder is not None else weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / INDEX).write_text(json.dumps({"models": [c.to_dict() for c in cards]}, indent=2) + "\n")
    (folder / "MODELS.md").write_text(render_models_md(cards))


def render_models_md(cards: list[ModelCard]) -> str:
    """``weights/MODELS.md``: one section per model with its recipe, provenance, checksum and metrics."""
    lines = ["# Model zoo", "",
             "Every file here was made by a recipe of this repository (`python -m crowdlib train RECIPE`) and is",
             "loaded with its SHA-256 checked and `weights_only=True` (`crowdlib.zoo.load_model`). Weights are",
             "half precision. Re-measure a model's metrics with `python -m crowdlib evaluate NAME`.",
             "This file is generated from `MODELS.json` by the recipes; do not edit it by hand.", ""]
    for c in cards:
        lines += [f"## `{c.name}`", "", c.description, "",
                  "| field | value |", "|---|---|",
                  f"| file | `{c.file}` ({c.size_bytes / 1e6:.2f} MB) |",
                  f"| SHA-256 | `{c.sha256}` |",
                  f"| kind | {c.kind} |",
                  f"| recipe | `python -m crowdlib train {c.recipe}` |",
                  f"| data | {c.data} |",
                  f"| trained at git SHA | `{c.trained_at}` |",
                  f"| training time (2-core CPU) | {c.train_seconds:.0f} s |",
                  f"| inference (2-core CPU) | {c.seconds_per_image:.2f} s per 1024x768 image |"]
        if c.metrics:
            lines.append(f"| metrics ({c.metrics_on}) | "
                         + ", ".join(f"{k} {v:.3g}" for k, v in c.metrics.items()) + " |")
        if c.notes:
            lines.append(f"| notes | {c.notes} |")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- loading and prediction
class ZooModel:
    """A loaded zoo model; :func:`crowdlib.counter.predict_one` (or :func:`crowdlib.count`) runs it on an image."""

    def __init__(self, card: ModelCard, kind: str, config: dict[str, Any], inference: dict[str, Any],
                 net: torch.nn.Module, extras: dict[str, Any], device: torch.device) -> None:
        self.card, self.kind, self.config, self.inference = card, kind, config, inference
        self.net, self.extras, self.device = net, extras, device

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def default_threshold(self) -> float:
        """The score (detectors) or confidence (IIM) threshold chosen on validation by the recipe."""
        return float(self.inference.get("count_threshold", 0.5))


def load_model(name: str, *, device: str | torch.device | None = None,
               folder: str | Path | None = None) -> ZooModel:
    """Load zoo model ``name`` for inference (eval mode, float32).

    Raises:
        UnknownModelError: no such model.
        FileNotFoundError: its file is missing.
        WeightsChecksumError: the file's SHA-256 differs from the card's.
    """
    from crowdlib.device import pick_device

    folder = Path(folder) if folder is not None else weights_dir()
    card = model_card(name, folder)
    path = folder / card.file
    if not path.is_file():
        raise FileNotFoundError(f"zoo model {name!r}: weight file {path} is missing")
    digest = sha256_file(path)
    if digest != card.sha256:
        raise WeightsChecksumError(f"zoo model {name!r}: {path} has SHA-256 {digest}, its card says {card.sha256}; "
                                   "the file was changed or damaged (rebuild it with its recipe)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    config = json.loads(payload["config_json"])
    inference = json.loads(payload["inference_json"])
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in payload["model"].items()}
    dev = pick_device(device)
    net = build_network(payload["kind"], config)
    net.load_state_dict(state)
    net.to(dev).eval()
    return ZooModel(card, payload["kind"], config, inference, net, dict(payload.get("extras", {})), dev)


def build_network(kind: str, config: Mapping[str, Any]) -> torch.nn.Module:
    """The untrained network of a zoo file's ``kind`` and run config (no pretrained weights are read)."""
    if kind == "sdnet":
        from crowdlib.methods.sdnet.train import build_detector, merge_config, default_config

        cfg = merge_config(default_config(), config)
        cfg["model"] = dict(cfg["model"], pretrained=False)
        return build_detector(cfg)[0]
    if kind in ("iim", "density"):
        from crowdlib.methods.iim.config import make_config
        from crowdlib.methods.iim.train import _model_cfg
        from crowdlib.models.registry import build_model

        cfg = make_config(**dict(config))
        mcfg = _model_cfg(cfg)
        mcfg["pretrained"] = False
        return build_model(mcfg)[0]
    raise ValueError(f"unknown zoo model kind {kind!r} (expected 'sdnet', 'iim' or 'density')")
