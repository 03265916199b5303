"""The run config of notebooks 51-54 (and of ``benchmarks/bkt_probe.py``) from their flat parameters: one function,
so that every notebook and the pilot build byte-identical configs and share the cached runs.

The parameters are the notebooks' tagged parameters cell (:data:`DOMAIN_KEYS` + :data:`RUN_KEYS`); a profile's
``params/<profile>/5N_*.yaml`` overrides them.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .config import DEFAULTS, make_config

__all__ = ["DOMAIN_KEYS", "RUN_KEYS", "domain_spec", "run_config", "transfer_name", "describe"]

#: Parameters that fix the two domains.
DOMAIN_KEYS = ("domains", "image_sizes", "window", "n_train", "n_test", "data_seed", "test_seed")
#: Parameters that enter a run's config.
RUN_KEYS = ("backbone", "det_backbone", "det_width", "pretrained", "crop", "batch_size", "reg_steps", "reg_lr",
            "reg_ssim", "phi_steps", "phi_lr", "phi_crop", "phi_loss", "det_epochs", "det_max_steps", "eval_every",
            "val_fraction",
            "sigma_factor", "truncate", "patch", "patches_per_image", "r_range", "cycles", "max_cycles", "cycle_steps",
            "cycle_batch", "r_lr", "d_lr", "d_threshold", "d_loss", "r_context", "d_context", "phi_threshold",
            "threads")


def _need(p: Mapping[str, Any], keys: tuple[str, ...], who: str) -> None:
    missing = [k for k in keys if k not in p]
    if missing:
        raise ValueError(f"{who}: missing parameter(s) {missing}")


def domain_spec(p: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The domain spec of domain ``key`` ("A" or "B"): its preset rendered at ``image_sizes[preset]`` (``None``: the
    preset's own, calibrated size), cut to ``window`` when given, ``n_train`` / ``n_test`` scenes."""
    _need(p, DOMAIN_KEYS, "domain_spec")
    if key not in p["domains"]:
        raise ValueError(f"domain_spec: unknown domain {key!r}; domains are {sorted(p['domains'])}")
    preset = p["domains"][key]
    size = p["image_sizes"].get(preset)
    h, w = (None, None) if size is None else (int(size[0]), int(size[1]))
    win = p.get("window")
    return {"preset": preset, "n": int(p["n_train"]), "seed": int(p["data_seed"][key]), "height": h, "width": w,
            "test_n": int(p["n_test"]), "test_seed": int(p["test_seed"][key]),
            "window": None if win is None else [int(win[0]), int(win[1])]}


def transfer_name(src: str, tgt: str) -> str:
    """The paper's name of a transfer, e.g. ``"A→B"``."""
    return f"{src}→{tgt}"


def run_config(p: Mapping[str, Any], src: str, tgt: str) -> dict[str, Any]:
    """The run config of the transfer ``src -> tgt``: every row of Tables 1-4 is this plus its override. It runs
    ``max(cycles, max_cycles)`` cycles; Ours is read at cycle ``T = cycles``."""
    _need(p, RUN_KEYS, "run_config")
    det = copy.deepcopy(DEFAULTS["detector"])
    det["model"].update(backbone=p["det_backbone"], pretrained=bool(p["pretrained"]), width=int(p["det_width"]))
    det["train"].update(epochs=int(p["det_epochs"]), max_steps=p["det_max_steps"], batch_size=int(p["batch_size"]),
                        crop=int(p["crop"]))
    learn = {"backbone": p["backbone"], "pretrained": bool(p["pretrained"]), "crop": int(p["crop"]),
             "batch_size": int(p["batch_size"]), "eval_every": int(p["eval_every"])}
    return make_config(
        source=domain_spec(p, src), target=domain_spec(p, tgt), val_fraction=float(p["val_fraction"]),
        sigma_factor=float(p["sigma_factor"]), truncate=float(p["truncate"]),
        regressor={**learn, "steps": int(p["reg_steps"]), "lr": float(p["reg_lr"]), "w_ssim": float(p["reg_ssim"])},
        phi={**learn, "steps": int(p["phi_steps"]), "lr": float(p["phi_lr"]), "crop": int(p["phi_crop"]),
             "loss": str(p["phi_loss"])}, detector=det, patch=int(p["patch"]),
        patches_per_image=int(p["patches_per_image"]), r_range=[float(v) for v in p["r_range"]],
        cycles=max(int(p["cycles"]), int(p["max_cycles"])), r_steps=int(p["cycle_steps"]),
        d_steps=int(p["cycle_steps"]), cycle_batch=int(p["cycle_batch"]), r_lr=float(p["r_lr"]),
        d_lr=float(p["d_lr"]), d_threshold=str(p["d_threshold"]), d_loss=str(p["d_loss"]),
        r_context=str(p["r_context"]), d_context=str(p["d_context"]), phi_threshold=str(p["phi_threshold"]),
        threads=int(p["threads"]))


def describe(cfg: Mapping[str, Any]) -> str:
    """One line: the domains, their scenes and the budget of a run config."""
    s, t = cfg["source"], cfg["target"]

    def scenes(d: Mapping[str, Any]) -> str:
        size = "the preset's own size" if d["height"] is None else f"{d['height']} x {d['width']} px"
        win = f", one {d['window'][0]} x {d['window'][1]} window each" if d.get("window") else ""
        return f"{size}{win}"

    return (f"source {s['preset']} ({s['n']} scenes at {scenes(s)}, {cfg['val_fraction']:.0%} for validation) -> "
            f"target {t['preset']} ({t['n']} unlabelled training scenes, {t['test_n']} test scenes); R/Phi "
            f"{cfg['regressor']['steps']}/{cfg['phi']['steps']} steps, D {cfg['detector']['train']['epochs']} "
            f"epoch(s); {cfg['cycles']} cycles of {cfg['r_steps']} steps, patches {cfg['patch']} px")
