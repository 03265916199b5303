"""What the widget notebooks (90, 91) open on: a trained model and its data, without training anything.

``source`` picks where the model comes from:

- ``"shipped"`` (default): the zoo file made by the recipe (``weights/sdnet-synthetic-explorer.pt``, notebook 11's
  default-profile "both" run; ``weights/iim-synthetic-explorer.pt``, notebook 20's default-profile IIM run).
- ``"cache"``: the same run from the reader's own cache (trained there when missing: a few minutes).
- ``"train"``: a fresh run of the config the caller passes (the notebook's smoke parameters).

The explorers' images are rendered from the run config (synthetic scenes are deterministic), so nothing but the
weights (and, for Crowd-SDNet, the pseudo-box store of the first training images) is shipped.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["SOURCES", "sdnet_explorer_inputs", "iim_explorer_inputs", "explorer_records"]

SOURCES = ("shipped", "cache", "train")


def _check(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")


def _about(zm: Any) -> str:
    c = zm.card
    return (f"shipped model {c.file} (recipe {c.recipe}, trained at {c.trained_at[:7]}; "
            f"test {', '.join(f'{k} {v:.3g}' for k, v in c.metrics.items())})")


def _run_config(recipe: str, source: str, train_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run config of ``source`` "cache" (the notebook's own default-profile run: the recipe's config, or for the
    IIM explorer, whose recipe trains longer, notebook 20's IIM row) or "train" (the caller's)."""
    from crowdlib.recipes import iim_notebook20_config, recipe_config

    if source == "cache":
        return iim_notebook20_config(0) if recipe == "iim-synthetic-explorer" else recipe_config(recipe)
    if train_config is None:
        raise ValueError("source='train' needs train_config (the notebook's smoke run config)")
    return dict(train_config)


def explorer_records(cfg: Mapping[str, Any], n_images: int) -> list:
    """The first ``n_images`` training records of a synthetic Crowd-SDNet run config, in store order, rendering
    only those (what :func:`crowdlib.methods.sdnet.train_records_of` returns first)."""
    from crowdlib import paths
    from crowdlib.data.datasets import split_train_val
    from crowdlib.data.synthetic import SyntheticCrowds
    from crowdlib.methods.sdnet.train import default_config, merge_config

    cfg = merge_config(default_config(), cfg)
    data = cfg["data"]
    if data.get("source") != "synthetic":
        raise ValueError("explorer_records: the run config must train on synthetic scenes")
    sets = [SyntheticCrowds(name, int(n), seed=int(data.get("seed", 0)), height=data.get("height"),
                            width=data.get("width"), cache_dir=paths.cache_dir() / "synthetic")
            for name, n in data["presets"]]
    offsets = np.cumsum([0] + [len(s) for s in sets])
    train_idx, _ = split_train_val(int(offsets[-1]), float(cfg["val_fraction"]), int(cfg["split_seed"]))
    out = []
    for i in train_idx[:n_images]:
        k = int(np.searchsorted(offsets, i, side="right") - 1)
        out.append(sets[k][int(i - offsets[k])])
    return out


def sdnet_explorer_inputs(source: str = "shipped", *, n_images: int = 6, train_config: Mapping[str, Any] | None = None,
                          progress: bool = False) -> dict[str, Any]:
    """``{"records", "store", "predictions", "pseudo_params", "threshold", "config", "about"}`` for
    :class:`crowdlib.widgets.PseudoBoxExplorer`: ``n_images`` training images of the run, their pseudo-box store
    (with its refinement history), the detector's predictions on them and the validation-chosen threshold."""
    import torch

    from crowdlib.methods import sdnet
    from crowdlib.recipes import explorer_data
    from crowdlib.repro import config_hash

    _check(source)
    if source == "shipped":
        from crowdlib.zoo import load_model

        zm = load_model("sdnet-synthetic-explorer", device="cpu")
        cfg, model, thr = zm.config, zm.net, zm.default_threshold
        state = zm.extras["store"]
        about = _about(zm)
    else:
        cfg = _run_config("sdnet-synthetic-explorer", source, train_config)
        res = sdnet.run_config(cfg, progress=progress)
        model, thr = sdnet.load_detector(res, cfg, "cpu"), float(res["count_threshold"])
        state = explorer_data(res["store"], n_images)
        about = f"{source} run (config hash {config_hash(cfg)})"
    n = min(int(n_images), len(state["points"]))
    state = explorer_data(state, n)
    store = sdnet.PseudoBoxStore.from_state_dict(state)
    records = explorer_records(cfg, n)
    if [r.image_id for r in records] != list(store.image_ids):
        raise RuntimeError("the explorer's rendered images do not match the store's image ids")
    full = sdnet.merge_config(sdnet.default_config(), cfg)
    ev = full["eval"]
    with torch.no_grad():
        preds = sdnet.predict_sdnet(model, records, scales=ev["scales"], min_score=ev["min_score"],
                                    nms_iou=float(ev.get("nms_iou", 0.5)))
    return {"records": records, "store": store, "predictions": preds, "pseudo_params": full["pseudo"]["params"],
            "threshold": thr, "config": cfg, "about": about}


def iim_explorer_inputs(source: str = "shipped", *, n_images: int = 4, train_config: Mapping[str, Any] | None = None,
                        test_seed: int = 3001, progress: bool = False) -> dict[str, Any]:
    """``{"records", "maps", "threshold", "config", "about"}`` for :class:`crowdlib.widgets_iim.ThresholdExplorer`:
    ``n_images`` held-out scenes (``test_seed``), the model's confidence and learned threshold maps, and the
    global threshold chosen on validation (the count-optimal one of the recipe)."""
    from crowdlib.methods import iim

    _check(source)
    if source == "shipped":
        from crowdlib.zoo import load_model

        zm = load_model("iim-synthetic-explorer", device="cpu")
        cfg, model, thr = zm.config, zm.net, zm.default_threshold
        about = _about(zm)
    else:
        cfg = _run_config("iim-synthetic-explorer", source, train_config)
        train_records = iim.load_records(cfg["data"], "train")
        res = iim.get_or_train_iim(cfg, progress=progress, records=train_records)
        model = iim.load_trained(cfg, res, "cpu")
        from crowdlib.recipes import validation_threshold

        thr = validation_threshold(model, cfg, train_records)
        about = f"{source} run"
    records = iim.load_records(dict(cfg["data"], n=max(1, (int(n_images) + 1) // 2), test_seed=int(test_seed)),
                               "test")[:int(n_images)]
    maps = iim.predict_maps(model, records)
    return {"records": records, "maps": maps, "threshold": float(thr), "config": cfg, "about": about}
