"""Source-side training (Secs. 3.2-3.3, 4.2): the regressor R, the Reg-to-Det transformer Phi and the detector D,
each cached on its own under ``get_or_train(..., name="bkt")`` with its stage sub-config.

- R: random ``crop`` x ``crop`` crops with horizontal flips of the source training images, targets the Eq. 1 density
  sum-pooled to stride 8, Adam at ``regressor.lr``, MSE (+ ``w_ssim`` x DMS-SSIM); every ``eval_every`` steps the
  count MAE on the source validation images, the best state kept.
- Phi: random crops of the source ground-truth density (paper: 224 x 224) and their dot maps, Adam at ``phi.lr``
  (paper 1e-5), ``phi.loss``; every ``eval_every`` steps the paper-rule mAP of Phi's points on the source validation
  images, binarised as ``phi_threshold`` says (the paper's 0.2, or refit on those images' counts), the best state
  kept.
- D: :func:`crowdlib.methods.sdnet.train_sdnet` on the source (Crowd-SDNet's point-supervised CSP detector, reused by
  its public names; its counting threshold is chosen on the same validation split).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from crowdlib.data.records import CrowdRecord
from crowdlib.device import flush_denormal
from crowdlib.repro import fixed_threads, seed_everything

from .config import detector_config, make_config, phi_config, regressor_config
from .data import (domain_records, dot_map, gt_density, head_sizes, pool_density, split_source, upsample_density)

__all__ = ["source_maps", "train_regressor", "train_phi", "train_detector", "train_stage", "get_or_train_stage",
           "load_regressor", "load_phi", "load_detector", "source_models"]

_KEEP = ("source", "val_fraction", "split_seed", "sigma_factor", "truncate", "gt_sizes", "detector", "seed", "threads")


def _luda_params(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return dict(detector_config(make_config(**{k: cfg[k] for k in _KEEP}))["pseudo"].get("params") or {})


def source_maps(records: Sequence[CrowdRecord], cfg: Mapping[str, Any]) -> list[dict[str, np.ndarray]]:
    """Per source record: ``{"density": Eq. 1's map (H, W), "dots": M^D (H, W)}`` with the run's kernel rule."""
    params = _luda_params(cfg)
    out = []
    for r in records:
        hw = tuple(r.image_size) if r.image_size is not None else r.load_image().shape[:2]
        sizes = head_sizes(r, str(cfg["gt_sizes"]), params)
        out.append({"density": gt_density(r.points, sizes, hw, float(cfg["sigma_factor"]), float(cfg["truncate"])),
                    "dots": dot_map(r.points, hw)})
    return out


def _crop(arr: np.ndarray, y: int, x: int, c: int) -> np.ndarray:
    """A ``c x c`` crop at ``(y, x)`` of an ``(..., H, W)`` array, zero-padded past the border."""
    out = np.zeros(arr.shape[:-2] + (c, c), arr.dtype)
    part = arr[..., y:y + c, x:x + c]
    out[..., : part.shape[-2], : part.shape[-1]] = part
    return out


def _crops(inputs: Sequence[np.ndarray], targets: Sequence[np.ndarray], crop: int, batch: int,
           rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random crops (same window in input and target, horizontal flip with p 0.5)."""
    xs, ts = [], []
    for _ in range(batch):
        i = int(rng.integers(len(inputs)))
        h, w = targets[i].shape[-2:]
        y, x = int(rng.integers(max(h - crop, 0) + 1)), int(rng.integers(max(w - crop, 0) + 1))
        a, b = _crop(inputs[i], y, x, crop), _crop(targets[i], y, x, crop)
        if rng.random() < 0.5:
            a, b = a[..., ::-1], b[..., ::-1]
        xs.append(np.ascontiguousarray(a))
        ts.append(np.ascontiguousarray(b))
    return torch.as_tensor(np.stack(xs)), torch.as_tensor(np.stack(ts))


def _images(records: Sequence[CrowdRecord]) -> list[np.ndarray]:
    from crowdlib.data.datasets import normalize
    from crowdlib.data.transforms import to_float_image

    return [normalize(to_float_image(r.load_image())).numpy() for r in records]


def _model(kind: str, sub: Mapping[str, Any]) -> tuple[torch.nn.Module, torch.nn.Module]:
    from crowdlib.models.registry import build_model

    return build_model({**dict(sub), "model": kind})


def _val_mae(model: torch.nn.Module, images: Sequence[np.ndarray], counts: Sequence[float]) -> float:
    from .infer import predict_cells

    pred = [float(predict_cells(model, torch.as_tensor(im)[None]).sum()) for im in images]
    return float(np.mean(np.abs(np.asarray(pred) - np.asarray(counts)))) if pred else float("nan")


def train_regressor(cfg: Mapping[str, Any], progress: bool = False) -> dict[str, Any]:
    """Train R on the source (module docstring); returns ``{"model", "best_step", "best_val_mae", "history"}``."""
    with fixed_threads(int(cfg["threads"])), flush_denormal():
        seed_everything(int(cfg["seed"]))
        rc = cfg["regressor"]
        tr, va = split_source(domain_records(cfg["source"], "train"), cfg)
        dens_tr = [m["density"] for m in source_maps(tr, cfg)]
        im_tr, im_va = _images(tr), _images(va)
        model, crit = _model("bkt_regressor", rc)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=float(rc["lr"]))
        rng = np.random.default_rng([int(cfg["seed"]), 11])
        crop = int(rc["crop"])
        best, best_state, best_step, history = float("inf"), None, 0, []
        for step in range(1, int(rc["steps"]) + 1):
            model.train()
            x, t = _crops(im_tr, dens_tr, crop, int(rc["batch_size"]), rng)
            target = pool_density(t[:, None], 8)
            losses = crit(model(x), {"density": target})
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            if step % int(rc["eval_every"]) == 0 or step == int(rc["steps"]):
                mae = _val_mae(model, im_va, [r.count for r in va])
                history.append({"step": step, "loss": float(losses["loss"].detach()), "val_mae": mae})
                if mae < best or best_state is None:
                    best, best_step = mae, step
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return {"model": best_state, "best_step": best_step, "best_val_mae": best, "history": history,
                "n_train": len(tr), "n_val": len(va)}


def _phi_inputs(maps: Sequence[dict[str, np.ndarray]], stride: int) -> list[np.ndarray]:
    if stride == 1:
        return [m["density"][None] for m in maps]
    return [upsample_density(pool_density(m["density"], stride), m["density"].shape, stride)[None] for m in maps]


def _phi_val_score(model: torch.nn.Module, x_va: Sequence[np.ndarray], va: Sequence[CrowdRecord],
                   pc: Mapping[str, Any], policy: str) -> dict[str, float]:
    """Phi's paper-rule mAP on the source validation windows (ground-truth density in): at ``phi.threshold``
    (``policy="paper"``) or at the threshold :func:`~.infer.choose_phi_threshold` fits to their counts
    (``"refit"``); also the mAP at ``phi.threshold`` either way."""
    from .evaluate import paper_point_map
    from .infer import above, choose_phi_threshold, run_phi

    def score(preds: Sequence[dict]) -> float:
        m = float(paper_point_map(preds, [r.points for r in va]))
        return m if np.isfinite(m) else 0.0

    paper_thr = float(pc["threshold"])
    low = -np.inf if policy == "refit" else paper_thr
    cands = [run_phi(model, x[0], threshold=low, merge=int(pc["merge"]), form=str(pc["form"]))[0] for x in x_va]
    at_paper = score([above(c, paper_thr) for c in cands])
    if policy != "refit":
        return {"val_map": at_paper, "val_threshold": paper_thr, "val_map_paper": at_paper}
    thr = choose_phi_threshold([c["scores"] for c in cands], [r.count for r in va])
    return {"val_map": score([above(c, thr) for c in cands]), "val_threshold": thr, "val_map_paper": at_paper}


def train_phi(cfg: Mapping[str, Any], progress: bool = False) -> dict[str, Any]:
    """Train Phi on the source ground truth (module docstring); returns ``{"model", "best_step", "best_val_map",
    "val_threshold", "history"}``. The step is chosen by the validation mAP at the binarisation ``cfg["phi_threshold"]``
    names: ``phi.threshold`` ("paper") or refit on the validation counts ("refit", :func:`_phi_val_score`)."""
    with fixed_threads(int(cfg["threads"])), flush_denormal():
        seed_everything(int(cfg["seed"]))
        pc, policy = cfg["phi"], str(cfg.get("phi_threshold", "paper"))
        tr, va = split_source(domain_records(cfg["source"], "train"), cfg)
        m_tr, m_va = source_maps(tr, cfg), source_maps(va, cfg)
        x_tr, x_va = _phi_inputs(m_tr, int(pc["input_stride"])), _phi_inputs(m_va, int(pc["input_stride"]))
        dots = [m["dots"] for m in m_tr]
        model, crit = _model("bkt_phi", pc)
        opt = torch.optim.Adam(model.parameters(), lr=float(pc["lr"]))
        rng = np.random.default_rng([int(cfg["seed"]), 13])
        best, best_state, best_step, best_thr, history = -1.0, None, 0, float(pc["threshold"]), []
        for step in range(1, int(pc["steps"]) + 1):
            model.train()
            x, t = _crops(x_tr, dots, int(pc["crop"]), int(pc["batch_size"]), rng)
            losses = crit(model(x), {"dots": t[:, None]})
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            if step % int(pc["eval_every"]) == 0 or step == int(pc["steps"]):
                val = _phi_val_score(model, x_va, va, pc, policy)
                history.append({"step": step, "loss": float(losses["loss"].detach()), **val,
                                **{k: float(v.detach()) for k, v in losses.items() if k != "loss"}})
                if val["val_map"] > best or best_state is None:
                    best, best_step, best_thr = val["val_map"], step, val["val_threshold"]
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return {"model": best_state, "best_step": best_step, "best_val_map": best, "val_threshold": best_thr,
                "history": history}


def train_detector(cfg: Mapping[str, Any], progress: bool = False) -> dict[str, Any]:
    """D: :func:`crowdlib.methods.sdnet.train_sdnet` of :func:`~.config.detector_config` (the stage config holds
    the full Crowd-SDNet config under ``"sdnet"``)."""
    from crowdlib.methods.sdnet import train_sdnet

    with flush_denormal():
        res = dict(train_sdnet(cfg["sdnet"], progress=progress))
    res.pop("store", None)  # the pseudo boxes of the source images are not needed downstream
    return res


_TRAINERS = {"regressor": train_regressor, "phi": train_phi, "detector": train_detector}


def _stage_config(cfg: Mapping[str, Any], stage: str) -> dict[str, Any]:
    if stage == "regressor":
        return regressor_config(cfg)
    if stage == "phi":
        return phi_config(cfg)
    if stage == "detector":
        return {"stage": "detector", "sdnet": detector_config(cfg)}
    raise ValueError(f"stage must be 'regressor', 'phi' or 'detector', got {stage!r}")


def train_stage(stage_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Train the stage named by ``stage_cfg["stage"]`` (the ``train`` function of the cache)."""
    stage = stage_cfg.get("stage")
    if stage not in _TRAINERS:
        raise ValueError(f"train_stage: unknown stage {stage!r}; expected one of {sorted(_TRAINERS)}")
    return _TRAINERS[stage](stage_cfg)


def get_or_train_stage(cfg: Mapping[str, Any], stage: str, cache_dir: Any = None) -> dict[str, Any]:
    """The cached result of one source stage of a full run config (trained on a miss)."""
    from crowdlib.repro import get_or_train

    return get_or_train(_stage_config(make_config(**dict(cfg)), stage), train_stage, name="bkt", cache_dir=cache_dir)


def load_regressor(cfg: Mapping[str, Any], result: Mapping[str, Any]) -> torch.nn.Module:
    """R of a :func:`train_regressor` result (eval mode, CPU)."""
    model, _ = _model("bkt_regressor", {**cfg["regressor"], "pretrained": False})
    model.load_state_dict(result["model"])
    return model.eval()


def load_phi(cfg: Mapping[str, Any], result: Mapping[str, Any]) -> torch.nn.Module:
    """Phi of a :func:`train_phi` result (eval mode, CPU)."""
    model, _ = _model("bkt_phi", {**cfg["phi"], "pretrained": False})
    model.load_state_dict(result["model"])
    return model.eval()


def load_detector(cfg: Mapping[str, Any], result: Mapping[str, Any]) -> torch.nn.Module:
    """D of a :func:`train_detector` result (eval mode, CPU)."""
    from crowdlib.methods.sdnet import load_detector as sdnet_load

    dc = detector_config(cfg)
    dc["model"]["pretrained"] = False  # the weights come from the result
    return sdnet_load(result, dc, device=torch.device("cpu"))


def source_models(cfg: Mapping[str, Any], cache_dir: Any = None) -> dict[str, Any]:
    """R_0, D_0 and Phi of a run config, trained on the source or read from the cache: ``{"regressor", "detector",
    "phi", "det_threshold", "det_nms_iou", "phi_threshold", "results"}`` (``phi_threshold``: ``phi.threshold``, or
    refit on the source validation split under ``phi_threshold="refit"``)."""
    cfg = make_config(**dict(cfg))
    res = {s: get_or_train_stage(cfg, s, cache_dir) for s in ("regressor", "phi", "detector")}
    out = {"regressor": load_regressor(cfg, res["regressor"]), "phi": load_phi(cfg, res["phi"]),
           "detector": load_detector(cfg, res["detector"]), "det_threshold": float(res["detector"]["count_threshold"]),
           "det_nms_iou": float(res["detector"].get("nms_iou", 0.5)), "results": res,
           "phi_threshold": float(cfg["phi"]["threshold"])}
    if cfg["phi_threshold"] == "refit":
        from .infer import refit_phi_threshold

        val = split_source(domain_records(cfg["source"], "train"), cfg)[1]
        with fixed_threads(int(cfg["threads"])), flush_denormal():
            out["phi_threshold"] = refit_phi_threshold(out["regressor"], out["phi"], val,
                                                       merge=int(cfg["phi"]["merge"]), form=str(cfg["phi"]["form"]))
    return out
