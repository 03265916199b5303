"""IIM recipes: data, targets, training, inference, decoding and scoring (used by notebooks 20-23 and 91).

Everything is driven by one flat, hashable config dict (see :data:`DEFAULTS`), so that
``crowdlib.repro.get_or_train(cfg, train_iim, name="iim")`` shares a trained model between notebooks whose
configs coincide. The keys:

- ``model``: ``"iim"`` (confidence predictor + optional threshold encoder), ``"iim_density"`` (density map,
  GPR-like peaks) or ``"iim_dotmap"`` (dilated dot map, local maxima); the network keys of
  :func:`crowdlib.models.iim.build_iim` (``encoder``, ``l1_area``, ``k``, ``backbone``, ``fpn_channels``...).
- ``data``: ``{"kind": "synthetic", "presets": [...], "n": per preset, "seed", "height", "width"}`` or
  ``{"kind": "shanghaitech", "root": str, "part": "B"}``. The validation split (``val_fraction``) is carved from
  these training images with ``split_seed``; test images are never used for training or selection.
- ``target``: instance maps from true boxes (``inst_min_half``/``inst_max_half``) when the records have boxes;
  from points with a fixed size (``point_size``) and IIM's overlap removal otherwise (the authors' issue-tracker
  fallback; they used a separately trained scale network). Density maps: fixed Gaussian ``density_sigma``.
  Dot maps: crosses of arm ``dot_radius``.
- optimisation: Adam, ``lr`` (confidence predictor) and ``lr_encoder`` (threshold encoder; the paper uses a
  10x smaller rate: 1e-5 / 1e-6), ``weight_decay``, poly decay (power ``poly_power``) over ``steps`` steps of
  ``batch_size`` random ``crop`` crops (scale jitter ``scale_range``, flips); ``eval_every`` steps the model is
  scored on the validation images and the best F1 (sigma_l) checkpoint is kept (``select="best"``) or the last
  one (``select="last"``).
- warm start: ``init`` is another config (or ``None``); its trained weights (through the same cache) initialise
  this model's matching parameters (the threshold encoder starts fresh). With ``sched_offset`` and
  ``sched_total`` the poly schedule continues where the initialising run stopped, so that a run of ``A`` steps
  followed by one of ``B`` steps follows one schedule of ``A + B`` steps.
- evaluation: whole images (``eval_window``: sliding windows above this size), optionally resized by
  ``eval_scale`` (maps resized back before decoding); ``min_area`` for the components.

Decoding (Sec. 3.3): 4-connected components of the binary map with at least ``min_area`` pixels (3); the
centroid of a component is a head, the count is the number of components.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from crowdlib.data.records import CrowdRecord
from crowdlib.device import autocast, pick_device
from crowdlib.engine import train_one_epoch
from crowdlib.models.baselines import cruciform_map, local_maxima
from crowdlib.models.iim import sliding_window_predict
from crowdlib.models.registry import build_model
from crowdlib.repro import fixed_threads, seed_everything

__all__ = [
    "DEFAULTS",
    "make_config",
    "load_records",
    "shb_test_records",
    "IIMTargets",
    "targets_for",
    "gt_for_scoring",
    "train_iim",
    "get_or_train_iim",
    "load_trained",
    "predict_maps",
    "decode_components",
    "decode_iim",
    "decode_baseline",
    "score_points",
    "evaluate_model",
    "choose_decode_params",
    "threshold_stats",
    "pixel_balance_sweep",
    "trunk_config",
    "staged_config",
    "scratch_config",
    "setting_config",
    "run_settings",
    "rows_from_long",
    "claim_sentences",
    "table3_claims",
    "table5_claims",
    "TABLE3_SETTINGS",
    "TABLE5_SETTINGS",
    "PAPER_TABLE3",
    "PAPER_TABLE5",
    "METRICS",
]

#: Defaults of every config key (the tiny CPU profile; notebooks override from their params files).
DEFAULTS: dict[str, Any] = {
    "model": "iim",
    "encoder": "pbm",
    "l1_area": "both",
    "k": 0.2,
    "fixed_threshold": 0.5,
    "backbone": "tiny",
    "pretrained": False,
    "fpn_channels": 32,
    "head_channels": 16,
    "head_full_res": False,
    "pbm_widths": [64, 32, 16],
    "pbm_pool": 15,
    "pbm_scale": 10.0,
    "activation": "compressed",
    "w_mse": 1.0,
    "w_l1": 1.0,
    "density_scale": 100.0,
    "density_sigma": 4.0,
    "dot_radius": 2,
    "data": {"kind": "synthetic", "presets": ["crowd_a", "crowd_b"], "n": 60, "seed": 1, "height": 256, "width": 256},
    "val_fraction": 0.15,
    "split_seed": 0,
    "inst_min_half": 3.0,
    "inst_max_half": 25.0,
    "point_size": 16.0,
    "crop": 128,
    "scale_range": [0.8, 1.2],
    "color_jitter": 0.1,
    "batch_size": 8,
    "steps": 600,
    "eval_every": 200,
    "lr": 1e-3,
    "lr_encoder": 1e-4,
    "weight_decay": 1e-5,
    "poly_power": 0.9,
    "min_area": 3,
    "eval_window": 1024,
    "eval_scale": 1.0,
    "init": None,
    "sched_offset": 0,
    "sched_total": None,
    "select": "best",
    "seed": 0,
}

# decode grids searched on validation images for the baselines (never on test images)
DENSITY_THRESHOLDS = tuple(float(v) for v in np.geomspace(0.02, 2.0, 24))
DOTMAP_THRESHOLDS = tuple(float(v) for v in np.linspace(0.1, 0.95, 18))
PEAK_WINDOWS = (3, 5, 7)


def make_config(**overrides: Any) -> dict[str, Any]:
    """:data:`DEFAULTS` with ``overrides`` applied (a ``data`` override is merged into the default ``data``).

    Raises:
        ValueError: on an unknown key.
    """
    bad = sorted(set(overrides) - set(DEFAULTS))
    if bad:
        raise ValueError(f"make_config: unknown config key(s) {bad}; valid keys: {sorted(DEFAULTS)}")
    cfg = copy.deepcopy(DEFAULTS)
    for k, v in overrides.items():
        if k == "data" and isinstance(v, Mapping):
            d = dict(cfg["data"]) if v.get("kind", cfg["data"]["kind"]) == cfg["data"]["kind"] else {}
            d.update(v)
            cfg["data"] = d
        else:
            cfg[k] = copy.deepcopy(v)
    return cfg


# ----------------------------------------------------------------------------------------------- data
def load_records(data: Mapping[str, Any], split: str = "train") -> list[CrowdRecord]:
    """Records of a data spec.

    Synthetic: ``n`` scenes of each preset rendered with ``seed`` (train) or, for ``split="test"``, with
    ``test_seed`` when the spec has one and ``seed + 1000`` otherwise, so that train and test never share a scene.
    ShanghaiTech: ``read_shanghaitech(root, part, split)``.

    Raises:
        ValueError: on an unknown data kind or split.
    """
    kind = data.get("kind")
    if split not in ("train", "test"):
        raise ValueError(f"load_records: split must be 'train' or 'test', got {split!r}")
    if kind == "synthetic":
        from crowdlib import paths
        from crowdlib.data.synthetic import SyntheticCrowds

        seed = int(data.get("seed", 1))
        if split == "test":
            seed = int(data.get("test_seed", seed + 1000))
            if seed == int(data.get("seed", 1)):
                raise ValueError(f"load_records: test_seed {seed} equals the training seed; test scenes must be new")
        recs: list[CrowdRecord] = []
        for preset in data.get("presets", ["crowd_a"]):
            ds = SyntheticCrowds(preset, int(data.get("n", 60)), seed=seed, height=data.get("height"),
                                 width=data.get("width"), cache_dir=paths.cache_dir() / "synthetic")
            recs.extend(ds[i] for i in range(len(ds)))
        return recs
    if kind == "shanghaitech":
        from crowdlib.data.formats import read_shanghaitech

        return list(read_shanghaitech(data["root"], data.get("part", "B"), split))
    raise ValueError(f"load_records: unknown data kind {kind!r} (expected 'synthetic' or 'shanghaitech')")


class IIMTargets:
    """Target builder for :class:`crowdlib.data.datasets.CrowdDataset` (called on the transformed sample).

    Args:
        kind: ``"instance"``, ``"density"`` or ``"dotmap"``.
        min_half, max_half: instance-map half-size clamp (IIM: 3 and 25 px).
        point_size: square head size (px at the record's scale) used when the sample has no boxes.
        density_sigma: Gaussian sigma of the density map.
        dot_radius: arm length of the dot-map crosses.

    Returns from ``__call__``: ``{kind: (1, H, W) float32 tensor}``.
    """

    def __init__(self, kind: str = "instance", min_half: float = 3.0, max_half: float = 25.0, point_size: float = 16.0,
                 density_sigma: float = 4.0, dot_radius: int = 2) -> None:
        if kind not in ("instance", "density", "dotmap"):
            raise ValueError(f"IIMTargets: kind must be 'instance', 'density' or 'dotmap', got {kind!r}")
        self.kind = kind
        self.min_half = float(min_half)
        self.max_half = float(max_half)
        self.point_size = float(point_size)
        self.density_sigma = float(density_sigma)
        self.dot_radius = int(dot_radius)

    def __call__(self, sample: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        img = sample["image"]
        shape = (int(img.shape[-2]), int(img.shape[-1]))
        pts = np.asarray(sample["points"], dtype=np.float64).reshape(-1, 2)
        boxes = sample.get("boxes")
        boxes = None if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if self.kind == "instance":
            from crowdlib.targets.instance import instance_map_from_boxes, instance_map_from_points

            if boxes is not None and len(boxes) == len(pts) and (len(pts) == 0 or boxes.any()):
                m = instance_map_from_boxes(pts, boxes, shape, min_half=self.min_half, max_half=self.max_half)
            else:
                size = self.point_size * float(sample.get("scale", 1.0))
                m = instance_map_from_points(pts, size, shape, min_half=self.min_half, max_half=self.max_half)
        elif self.kind == "density":
            from crowdlib.targets.density import density_map

            m = density_map(pts, shape, sigma=self.density_sigma)
        else:
            m = cruciform_map(pts, shape, radius=self.dot_radius)
        return {self.kind: torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None]}


def _target_kind(cfg: Mapping[str, Any]) -> str:
    return {"iim": "instance", "iim_density": "density", "iim_dotmap": "dotmap"}[cfg["model"]]


def targets_for(cfg: Mapping[str, Any]) -> IIMTargets:
    """The :class:`IIMTargets` of a config."""
    return IIMTargets(_target_kind(cfg), cfg["inst_min_half"], cfg["inst_max_half"], cfg["point_size"],
                      cfg["density_sigma"], cfg["dot_radius"])


def gt_for_scoring(rec: CrowdRecord, fallback_size: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(points, sigmas (N, 2), levels)`` for the NWPU protocol: the record's own sigmas/levels when present
    (NWPU / ShanghaiTech localization files), else computed from its true boxes (synthetic scenes), else, when
    ``fallback_size`` is given, from square boxes of that size (used only for model selection on points-only
    validation images).

    Raises:
        ValueError: when the record has neither sigmas nor boxes and no ``fallback_size`` is given.
    """
    from crowdlib.targets.instance import nwpu_sigmas_levels

    if rec.sigmas is not None:
        lv = rec.levels if rec.levels is not None else np.full(rec.count, -1, np.int64)
        return rec.points, rec.sigmas, lv
    if rec.boxes is not None:
        s, lv = nwpu_sigmas_levels(rec.boxes)
        return rec.points, s, lv
    if fallback_size is not None:
        from crowdlib.targets.pseudo_sizes import boxes_from_sizes

        boxes = boxes_from_sizes(rec.points, float(fallback_size)) if rec.count else np.zeros((0, 4))
        s, lv = nwpu_sigmas_levels(boxes)
        return rec.points, s, lv
    raise ValueError(f"{rec.image_id}: needs NWPU sigmas or head boxes to be scored with the NWPU protocol")


# ----------------------------------------------------------------------------------------------- inference
def _normalise(image: np.ndarray) -> torch.Tensor:
    from crowdlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, to_float_image

    t = to_float_image(image)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((t - mean) / std)[None]


@torch.no_grad()
@fixed_threads()
def predict_maps(model: torch.nn.Module, records: Sequence[CrowdRecord], device: torch.device | str | None = None,
                 *, window: int = 1024, overlap: int = 64, scale: float = 1.0, density: bool = False,
                 progress: bool = False) -> list[dict[str, np.ndarray]]:
    """Run a model on whole images (sliding windows above ``window`` px) and return numpy maps per image.

    IIM models give ``{"confidence", "threshold"}`` (``(H, W)`` float32 each; an image-level threshold is
    expanded); the baselines give ``{"map"}``. With ``scale != 1`` the image is resized by ``scale`` first (a
    CPU-time saving for large images) and the maps are resized back to the image size (bilinear); with
    ``density=True`` the ``"map"`` is then multiplied by ``scale ** 2`` so that its integral (the count) is kept.
    """
    import torch.nn.functional as F

    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was = model.training
    model.eval()
    out = []
    try:
        for rec in tqdm(records, desc="predict", leave=False, disable=not progress):
            x = _normalise(rec.load_image()).to(dev)
            H, W = x.shape[-2:]
            if scale != 1.0:
                x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False, antialias=scale < 1,
                                  recompute_scale_factor=False)
            with autocast(dev):
                keys = ("map",) if not hasattr(model, "encoder_type") else ("confidence", "threshold")
                res = sliding_window_predict(model, x, window=window, overlap=overlap, keys=keys)
            maps = {}
            for k, v in res.items():
                if k == "binary":
                    continue
                v = v.float()
                if scale != 1.0:
                    v = F.interpolate(v, size=(H, W), mode="bilinear", align_corners=False)
                    if k == "map" and density:
                        v = v * scale ** 2
                maps[k] = v[0, 0].cpu().numpy()
            out.append(maps)
    finally:
        model.train(was)
    return out


def decode_components(binary: np.ndarray, min_area: int = 3) -> np.ndarray:
    """Heads of a binary map: centroids ``(x, y)`` (pixel centres at ``+0.5``) of its 4-connected components with
    at least ``min_area`` pixels (``crowdlib.decode.components``)."""
    from crowdlib.decode import components

    cent, _, _ = components(np.asarray(binary).astype(bool), min_area=min_area, connectivity=4)
    return np.asarray(cent, np.float32).reshape(-1, 2)


def decode_iim(maps: Mapping[str, np.ndarray], threshold: float | None = None, min_area: int = 3) -> np.ndarray:
    """Heads from IIM maps: binarize the confidence with ``threshold`` (a float) or the predicted threshold map
    (``None``), then :func:`decode_components`."""
    thr = maps["threshold"] if threshold is None else float(threshold)
    return decode_components(maps["confidence"] >= thr, min_area=min_area)


def decode_baseline(model_name: str, maps: Mapping[str, np.ndarray], params: Mapping[str, Any],
                    density_scale: float = 100.0) -> tuple[np.ndarray, float]:
    """``(points, count)`` for the baselines: density peaks (count = integral / ``density_scale``) or dot-map
    local maxima (count = number of maxima); ``params`` holds ``threshold`` and ``window``."""
    m = torch.from_numpy(np.ascontiguousarray(maps["map"]))
    (pts,) = local_maxima(m, float(params["threshold"]), int(params.get("window", 3)))
    pts = pts + 0.5  # pixel centres
    if model_name == "iim_density":
        return pts, float(maps["map"].sum() / density_scale)
    return pts, float(len(pts))


def score_points(records: Sequence[CrowdRecord], points: Sequence[np.ndarray], counts: Sequence[float] | None = None,
                 fallback_size: float | None = None) -> dict[str, Any]:
    """NWPU-protocol scores of predicted heads: ``f1``, ``pre``, ``rec`` (sigma_l), ``f1_s``/``pre_s``/``rec_s``
    (sigma_s), ``rec_levels`` (sigma_l recall per area level A0..A5), ``mae``, ``mse`` (root mean squared error),
    ``nae``; counting errors use ``counts`` when given (e.g. a density integral), else the number of heads.
    ``fallback_size``: see :func:`gt_for_scoring`."""
    from crowdlib.metrics.counting import count_metrics
    from crowdlib.metrics.nwpu import nwpu_evaluate

    gt = {r.image_id: gt_for_scoring(r, fallback_size) for r in records}
    pred = {r.image_id: np.asarray(p, np.float64).reshape(-1, 2) for r, p in zip(records, points)}
    res = nwpu_evaluate(gt, pred, [r.image_id for r in records])
    out = {
        "f1": res.sigma_l.f1, "pre": res.sigma_l.precision, "rec": res.sigma_l.recall,
        "f1_s": res.sigma_s.f1, "pre_s": res.sigma_s.precision, "rec_s": res.sigma_s.recall,
        "rec_levels": list(res.sigma_l.recall_per_level),
        "heads_per_level": [a + b for a, b in zip(res.sigma_l.tp_per_level, res.sigma_l.fn_per_level)],
        "mae": res.mae, "mse": res.mse, "nae": res.nae,
    }
    if counts is not None:
        cm = count_metrics(np.asarray(counts, float), np.asarray([r.count for r in records], float))
        out.update(mae=cm["mae"], mse=cm["mse"], nae=cm["nae"])
    return out


def choose_decode_params(model_name: str, records: Sequence[CrowdRecord], maps: Sequence[Mapping[str, np.ndarray]],
                         density_scale: float = 100.0, fallback_size: float | None = None) -> tuple[dict[str, Any], float]:
    """Grid-search the baselines' peak threshold (and window) for the best F1 on the given (validation) images.

    Returns ``(params, f1)``. IIM needs no search (its threshold is fixed or learned): ``({}, nan)``.
    """
    if model_name == "iim":
        return {}, float("nan")
    grid = DENSITY_THRESHOLDS if model_name == "iim_density" else DOTMAP_THRESHOLDS
    windows = PEAK_WINDOWS if model_name == "iim_density" else (3,)
    best: tuple[float, dict[str, Any]] = (-1.0, {"threshold": grid[0], "window": windows[0]})
    for w in windows:
        for t in grid:
            params = {"threshold": t, "window": w}
            pts = [decode_baseline(model_name, m, params, density_scale)[0] for m in maps]
            f1 = score_points(records, pts, fallback_size=fallback_size)["f1"]
            if f1 > best[0]:
                best = (f1, params)
    return best[1], best[0]


def evaluate_model(model: torch.nn.Module, cfg: Mapping[str, Any], records: Sequence[CrowdRecord], *,
                   maps: Sequence[Mapping[str, np.ndarray]] | None = None, threshold: float | None = None,
                   decode: Mapping[str, Any] | None = None, device: torch.device | str | None = None,
                   progress: bool = False, fallback_size: float | None = None) -> dict[str, Any]:
    """Predict (unless ``maps`` are given), decode and score ``records``.

    IIM: ``threshold`` None uses the model's own threshold (learned, or ``fixed_threshold`` for CP), a float
    overrides it. Baselines: ``decode`` holds the validation-chosen ``threshold``/``window``. The result is
    :func:`score_points`' dict plus ``"points"`` and ``"counts"`` per image.
    """
    if maps is None:
        maps = predict_maps(model, records, device, window=int(cfg.get("eval_window", 1024)),
                            scale=float(cfg.get("eval_scale", 1.0)), density=cfg["model"] == "iim_density",
                            progress=progress)
    name = cfg["model"]
    if name == "iim":
        if threshold is None and cfg.get("encoder", "pbm") == "none":
            threshold = float(cfg.get("fixed_threshold", 0.5))
        pts = [decode_iim(m, threshold, int(cfg.get("min_area", 3))) for m in maps]
        counts = [float(len(p)) for p in pts]
    else:
        if decode is None:
            raise ValueError(f"evaluate_model: model {name!r} needs decode params (threshold/window) chosen on validation")
        dec = [decode_baseline(name, m, decode, float(cfg.get("density_scale", 100.0))) for m in maps]
        pts, counts = [d[0] for d in dec], [d[1] for d in dec]
    out = score_points(records, pts, counts, fallback_size=fallback_size)
    out["points"] = pts
    out["counts"] = counts
    return out


def threshold_stats(maps: Sequence[Mapping[str, np.ndarray]], instance_maps: Sequence[np.ndarray]) -> dict[str, float]:
    """Mean predicted threshold on foreground (instance map 1) and background pixels, and mean confidence on each."""
    fg_t, bg_t, fg_c, bg_c = [], [], [], []
    for m, inst in zip(maps, instance_maps):
        fg = np.asarray(inst) > 0
        t = np.broadcast_to(m["threshold"], fg.shape)
        if fg.any():
            fg_t.append(t[fg])
            fg_c.append(m["confidence"][fg])
        bg_t.append(t[~fg])
        bg_c.append(m["confidence"][~fg])
    cat = lambda xs: float(np.concatenate(xs).mean()) if xs else float("nan")  # noqa: E731
    return {"thr_fg": cat(fg_t), "thr_bg": cat(bg_t), "conf_fg": cat(fg_c), "conf_bg": cat(bg_c)}


# ----------------------------------------------------------------------------------------------- training
def _model_cfg(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k not in ("data",)}


class _Repeat:
    """Iterate ``loader`` again and again until ``n`` batches have been yielded (``len`` is ``n``)."""

    def __init__(self, loader: Any, n: int) -> None:
        self.loader = loader
        self.n = int(n)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        k = 0
        while k < self.n:
            empty = True
            for batch in self.loader:
                empty = False
                yield batch
                k += 1
                if k >= self.n:
                    return
            if empty:
                return


def _split(records: Sequence[CrowdRecord], cfg: Mapping[str, Any]) -> tuple[list[CrowdRecord], list[CrowdRecord]]:
    from crowdlib.data.datasets import split_train_val

    tr, va = split_train_val(len(records), float(cfg["val_fraction"]), int(cfg["split_seed"]))
    return [records[i] for i in tr], [records[i] for i in va]


@fixed_threads()
def train_iim(cfg: Mapping[str, Any], progress: bool = True, device: str | torch.device | None = None,
              records: Sequence[CrowdRecord] | None = None) -> dict[str, Any]:
    """Train one model of a config and return a plain checkpointable dict.

    The loop is :func:`crowdlib.engine.train_one_epoch` in chunks of ``eval_every`` steps; after each chunk the
    model is scored on the validation split (F1 at sigma_l; for the baselines with their decode parameters
    re-chosen on validation) and the best state is kept.

    Returns:
        ``{"model": best state_dict, "best_step", "best_val": {f1, pre, rec, mae, mse}, "decode": {...}
        (baselines), "history": [per chunk: step, loss terms, val f1, lr], "images_per_s", "train_seconds",
        "steps"}``.
    """
    from crowdlib.data.datasets import CrowdDataset, make_loader
    from crowdlib.data.transforms import TrainTransform

    cfg = make_config(**{k: v for k, v in cfg.items()})
    seed = int(cfg["seed"])
    g = seed_everything(seed)
    dev = pick_device(device)
    model, criterion = build_model(_model_cfg(cfg))
    if cfg["init"] is not None:
        init = get_or_train_iim(cfg["init"], progress=progress, device=device, records=records)
        missing, unexpected = model.load_state_dict(init["model"], strict=False)
        bad = [k for k in missing if not k.startswith("encoder.")] + list(unexpected)
        if bad:
            raise ValueError(f"train_iim: init weights do not fit this model (mismatched keys {bad[:5]}...)")
    model.to(dev)
    if records is None:
        records = load_records(cfg["data"], "train")
    train_recs, val_recs = _split(records, cfg)
    tf = TrainTransform(int(cfg["crop"]), scale_range=tuple(cfg["scale_range"]), flip=True,
                        color_jitter=float(cfg["color_jitter"]), grayscale_p=0.0)
    ds = CrowdDataset(train_recs, target_builder=targets_for(cfg), transform=tf)
    loader = make_loader(ds, int(cfg["batch_size"]), shuffle=True, seed=seed)
    if hasattr(model, "param_groups"):
        groups = model.param_groups(float(cfg["lr"]), float(cfg["lr_encoder"]), float(cfg["weight_decay"]))
    else:
        groups = [{"params": list(model.parameters()), "lr": float(cfg["lr"]), "weight_decay": float(cfg["weight_decay"])}]
    opt = torch.optim.Adam(groups)
    total = int(cfg["steps"])
    power = float(cfg["poly_power"])
    offset = int(cfg["sched_offset"])
    horizon = int(cfg["sched_total"]) if cfg["sched_total"] is not None else offset + total
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - (s + offset) / max(horizon, 1)) ** power)
    name = cfg["model"]
    fb = float(cfg["point_size"])  # sigma_l for points-only validation images (model selection only)
    history: list[dict[str, Any]] = []
    best = {"f1": -1.0}
    best_state: dict[str, torch.Tensor] | None = None
    best_step, best_decode = 0, {}
    done, imgs, secs, chunk = 0, 0.0, 0.0, 0
    t_start = time.perf_counter()
    bar = tqdm(total=total, desc=f"train {name}/{cfg.get('encoder', '')} seed {seed}", leave=False, disable=not progress)
    while done < total:
        n = min(int(cfg["eval_every"]), total - done)
        stats = train_one_epoch(model, criterion, _Repeat(loader, n), opt, dev, chunk, scheduler=sched, progress=False,
                                max_steps=n)
        steps = int(stats["steps"])
        done += steps
        chunk += 1
        imgs += stats["images"]
        secs += stats["seconds"]
        bar.update(steps)
        maps = predict_maps(model, val_recs, dev, window=int(cfg["eval_window"]), scale=float(cfg["eval_scale"]),
                            density=name == "iim_density")
        params, _ = choose_decode_params(name, val_recs, maps, float(cfg["density_scale"]), fallback_size=fb)
        val = evaluate_model(model, cfg, val_recs, maps=maps, decode=params, fallback_size=fb)
        rec = {"step": done, "val_f1": val["f1"], "val_pre": val["pre"], "val_rec": val["rec"], "val_mae": val["mae"],
               "lr": float(opt.param_groups[0]["lr"]), "images_per_s": float(stats["images_per_s"])}
        rec.update({f"loss_{k}": float(v) for k, v in stats.items() if k not in ("steps", "images", "seconds", "images_per_s")})
        history.append(rec)
        if val["f1"] > best["f1"] or (cfg["select"] == "last" and done >= total):
            best = {k: float(val[k]) for k in ("f1", "pre", "rec", "mae", "mse")}
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best_step, best_decode = done, dict(params)
        if steps == 0:
            break
    bar.close()
    assert best_state is not None
    return {
        "model": best_state,
        "best_step": int(best_step),
        "best_val": best,
        "decode": best_decode,
        "history": history,
        "images_per_s": float(imgs / secs) if secs > 0 else float("nan"),
        "train_seconds": float(secs),
        "wall_seconds": float(time.perf_counter() - t_start),
        "steps": int(done),
        "n_train": len(train_recs),
        "n_val": len(val_recs),
    }


def load_trained(cfg: Mapping[str, Any], result: Mapping[str, Any], device: str | torch.device | None = None) -> torch.nn.Module:
    """Rebuild the model of ``cfg`` and load a :func:`train_iim` result's weights; returns it in eval mode."""
    cfg = make_config(**dict(cfg))
    model, _ = build_model(_model_cfg(cfg))
    model.load_state_dict(result["model"])
    model.to(pick_device(device))
    model.eval()
    return model


def get_or_train_iim(cfg: Mapping[str, Any], *, progress: bool = True, cache_dir: Any = None,
                     device: str | torch.device | None = None,
                     records: Sequence[CrowdRecord] | None = None) -> dict[str, Any]:
    """``crowdlib.repro.get_or_train`` of :func:`train_iim` under the cache name ``"iim"`` (config completed with
    :data:`DEFAULTS` first, so that equal settings share one cache entry across notebooks). ``records`` (the
    training records of ``cfg["data"]``, to avoid re-reading them) must match ``cfg["data"]``."""
    from crowdlib.repro import get_or_train

    full = make_config(**dict(cfg))
    return get_or_train(full, lambda c: train_iim(c, progress=progress, device=device, records=records),
                        name="iim", cache_dir=cache_dir)


# ----------------------------------------------------------------------------------------------- experiments
#: keys that configure only the threshold module / L1 term (reset in a warm-start trunk so all rows share it)
ENCODER_KEYS = ("encoder", "l1_area", "k", "fixed_threshold", "pbm_widths", "pbm_pool", "pbm_scale", "activation",
                "w_l1", "lr_encoder")


def trunk_config(cfg: Mapping[str, Any], trunk_steps: int, finetune_steps: int) -> dict[str, Any]:
    """The shared warm-start run of a staged config: the confidence predictor alone (MSE), ``trunk_steps`` steps of
    a poly schedule planned for ``trunk_steps + finetune_steps``, last state kept. Threshold-module keys are reset
    to :data:`DEFAULTS` so that every Table 3 row of one seed shares this run."""
    c = {k: v for k, v in cfg.items() if k not in ENCODER_KEYS}
    c.update(model="iim", encoder="none", steps=int(trunk_steps), eval_every=int(trunk_steps), sched_offset=0,
             sched_total=int(trunk_steps) + int(finetune_steps), select="last", init=None)
    return make_config(**c)


def staged_config(base: Mapping[str, Any], trunk_steps: int, finetune_steps: int, **variant: Any) -> dict[str, Any]:
    """A Table 3 row: warm start from :func:`trunk_config` (when ``trunk_steps > 0``), then ``finetune_steps`` steps
    with the row's threshold module and L1 working area, continuing the same poly schedule."""
    cfg = make_config(**{**dict(base), **variant})
    if int(trunk_steps) <= 0:
        cfg.update(steps=int(finetune_steps), init=None, sched_offset=0, sched_total=None)
        return cfg
    cfg.update(init=trunk_config(cfg, trunk_steps, finetune_steps), steps=int(finetune_steps),
               sched_offset=int(trunk_steps), sched_total=int(trunk_steps) + int(finetune_steps))
    return cfg


def scratch_config(base: Mapping[str, Any], total_steps: int, **variant: Any) -> dict[str, Any]:
    """A model trained from scratch for ``total_steps`` steps (the Table 5 baselines: as many steps as a staged
    IIM row in total)."""
    cfg = make_config(**{**dict(base), **variant})
    cfg.update(steps=int(total_steps), init=None, sched_offset=0, sched_total=None)
    return cfg


#: Table 3 rows: name -> (config overrides, decode threshold override or None for the model's own threshold)
TABLE3_SETTINGS: dict[str, tuple[dict[str, Any], float | None]] = {
    "CP fixed:0.5": ({"encoder": "none"}, 0.5),
    "CP fixed:0.8": ({"encoder": "none"}, 0.8),
    "CP+IBM (L1: IBM)": ({"encoder": "ibm", "l1_area": "encoder"}, None),
    "CP+IBM (L1: CP&IBM)": ({"encoder": "ibm", "l1_area": "both"}, None),
    "CP+PBM (L1: PBM)": ({"encoder": "pbm", "l1_area": "encoder"}, None),
    "CP+PBM (L1: CP&PBM) = IIM": ({"encoder": "pbm", "l1_area": "both"}, None),
}

#: IIM Table 3 (NWPU-Crowd val, HRNet): F1/Pre/Rec in %, MAE, MSE, NAE
PAPER_TABLE3: dict[str, dict[str, float]] = {
    "CP fixed:0.5": {"F1": 74.2, "Pre": 92.4, "Rec": 62.0, "MAE": 131.4, "MSE": 645.5, "NAE": 0.237},
    "CP fixed:0.8": {"F1": 62.6, "Pre": 94.1, "Rec": 46.9, "MAE": 197.4, "MSE": 734.8, "NAE": 0.420},
    "CP+IBM (L1: IBM)": {"F1": 76.8, "Pre": 80.6, "Rec": 73.3, "MAE": 67.9, "MSE": 516.9, "NAE": 0.151},
    "CP+IBM (L1: CP&IBM)": {"F1": 79.4, "Pre": 81.8, "Rec": 77.1, "MAE": 59.4, "MSE": 449.0, "NAE": 0.275},
    "CP+PBM (L1: PBM)": {"F1": 79.5, "Pre": 86.6, "Rec": 73.4, "MAE": 70.4, "MSE": 404.6, "NAE": 0.181},
    "CP+PBM (L1: CP&PBM) = IIM": {"F1": 80.2, "Pre": 84.1, "Rec": 76.6, "MAE": 55.6, "MSE": 330.9, "NAE": 0.197},
}

#: Table 5 rows (same network, different ground truth); the IIM row is the Table 3 IIM model
TABLE5_SETTINGS: dict[str, tuple[dict[str, Any], float | None]] = {
    "Density map + GPR-like peaks": ({"model": "iim_density", "encoder": "none"}, None),
    "Cruciform dot map + local maxima": ({"model": "iim_dotmap", "encoder": "none"}, None),
    "IIM + PBM": ({"encoder": "pbm", "l1_area": "both"}, None),
}

#: IIM Table 5 (NWPU-Crowd val, VGG-16 + FPN)
PAPER_TABLE5: dict[str, dict[str, float]] = {
    "Density map + GPR-like peaks": {"F1": 57.5, "Pre": 62.4, "Rec": 53.3, "MAE": 87.4, "MSE": 453.4, "NAE": 0.830},
    "Cruciform dot map + local maxima": {"F1": 64.2, "Pre": 71.2, "Rec": 58.5, "MAE": 119.8, "MSE": 626.2, "NAE": 0.489},
    "IIM + PBM": {"F1": 77.0, "Pre": 80.2, "Rec": 74.1, "MAE": 62.7, "MSE": 299.2, "NAE": 0.330},
}

#: IIM Table 2, box-level recall per head-area level A0..A5 (NWPU test, IIM VGG-16, point labels), in %
PAPER_LEVEL_RECALL_IIM = (10.1, 44.1, 70.7, 82.4, 83.0, 61.4)
#: IIM Table 2, VGG+GPR (density map) row, in %
PAPER_LEVEL_RECALL_GPR = (3.1, 27.2, 49.1, 68.7, 49.8, 26.3)
#: IIM Table 2, RAZ_Loc row, in %
PAPER_LEVEL_RECALL_RAZ = (5.1, 28.2, 52.0, 79.7, 64.3, 25.1)

METRICS = ("F1", "Pre", "Rec", "MAE", "MSE", "NAE")
_METRIC_KEYS = {"F1": "f1", "Pre": "pre", "Rec": "rec", "MAE": "mae", "MSE": "mse", "NAE": "nae"}
HIGHER_IS_BETTER = {"F1": True, "Pre": True, "Rec": True, "MAE": False, "MSE": False, "NAE": False}


def setting_config(base: Mapping[str, Any], overrides: Mapping[str, Any], seed: int, trunk_steps: int,
                   finetune_steps: int) -> dict[str, Any]:
    """The config of one table setting and seed: IIM rows are staged (:func:`staged_config`), baselines are trained
    from scratch for ``trunk_steps + finetune_steps`` steps (:func:`scratch_config`)."""
    variant = {**dict(overrides), "seed": int(seed)}
    if variant.get("model", base.get("model", "iim")) == "iim":
        return staged_config(base, trunk_steps, finetune_steps, **variant)
    return scratch_config(base, int(trunk_steps) + int(finetune_steps), **variant)


def run_settings(settings: Mapping[str, tuple[Mapping[str, Any], float | None]], base: Mapping[str, Any],
                 seeds: Sequence[int], test_records: Sequence[CrowdRecord], *, trunk_steps: int, finetune_steps: int,
                 train_records: Sequence[CrowdRecord] | None = None, progress: bool = False,
                 keep_maps: bool = False) -> tuple[Any, dict[tuple[str, int], dict[str, Any]]]:
    """Train (or fetch from the cache) every setting x seed, evaluate it on ``test_records``.

    Returns ``(long DataFrame with columns setting, seed, metric, value; runs)`` where ``runs[(setting, seed)]``
    holds ``"config"``, ``"result"`` (the training dict without weights), ``"eval"`` (scores, points, counts) and,
    with ``keep_maps``, the predicted ``"maps"``. Metrics: F1/Pre/Rec (sigma_l, in %), F1_s, MAE, MSE, NAE,
    recall per level ``Rec A0``..``Rec A5`` (%), ``train_seconds`` (this run; ``trunk_seconds`` for the shared
    warm start), ``images_per_s``, and for learned thresholds the
    mean threshold on foreground / background pixels of the test instance maps (``thr_fg``, ``thr_bg``).
    """
    import pandas as pd

    from crowdlib.targets.instance import instance_map_from_boxes

    if train_records is None:
        train_records = load_records(base["data"], "train")
    inst = None
    rows: list[dict[str, Any]] = []
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    maps_cache: dict[str, list] = {}
    from crowdlib.repro import config_hash

    for seed in seeds:
        for name, (overrides, thr) in settings.items():
            cfg = setting_config(base, overrides, seed, trunk_steps, finetune_steps)
            res = get_or_train_iim(cfg, progress=progress, records=train_records)
            key = config_hash(cfg)
            if key not in maps_cache:
                model = load_trained(cfg, res)
                maps_cache[key] = predict_maps(model, test_records, window=int(cfg["eval_window"]),
                                               scale=float(cfg["eval_scale"]), density=cfg["model"] == "iim_density",
                                               progress=progress)
            maps = maps_cache[key]
            ev = evaluate_model(None, cfg, test_records, maps=maps, threshold=thr, decode=res.get("decode"))  # type: ignore[arg-type]
            vals = {m: float(ev[_METRIC_KEYS[m]]) * (100.0 if m in ("F1", "Pre", "Rec") else 1.0) for m in METRICS}
            vals["F1_s"] = 100.0 * float(ev["f1_s"])
            for lvl, r in enumerate(ev["rec_levels"]):
                if ev["heads_per_level"][lvl] > 0:
                    vals[f"Rec A{lvl}"] = 100.0 * float(r)
            vals["train_seconds"] = float(res["train_seconds"])
            if cfg["init"] is not None:  # the shared warm-start run (cached: fetching it costs nothing)
                vals["trunk_seconds"] = float(get_or_train_iim(cfg["init"], records=train_records)["train_seconds"])
            vals["images_per_s"] = float(res["images_per_s"])
            if cfg["model"] == "iim" and cfg["encoder"] != "none":
                if inst is None:
                    inst = [instance_map_from_boxes(r.points, r.boxes, r.load_image().shape[:2],
                                                    min_half=float(cfg["inst_min_half"]),
                                                    max_half=float(cfg["inst_max_half"]))
                            if r.boxes is not None else np.zeros(r.load_image().shape[:2], np.uint8)
                            for r in test_records]
                vals.update(threshold_stats(maps, inst))
            for metric, value in vals.items():
                rows.append({"setting": name, "seed": int(seed), "metric": metric, "value": value})
            runs[(name, int(seed))] = {"config": cfg, "result": {k: v for k, v in res.items() if k != "model"},
                                       "eval": ev, **({"maps": maps} if keep_maps else {})}
    return pd.DataFrame(rows), runs


def rows_from_long(df: Any, table: str, paper: Mapping[str, Mapping[str, float]], metrics: Sequence[str]) -> list:
    """:class:`crowdlib.repro.Row` objects (one per setting x metric, values over seeds) with the paper's numbers."""
    from crowdlib.repro import Row

    rows = []
    for setting in dict.fromkeys(df["setting"]):
        for m in metrics:
            vals = df[(df.setting == setting) & (df.metric == m)]["value"].tolist()
            if not vals:
                continue
            hib = HIGHER_IS_BETTER.get(m, not m.startswith(("MAE", "MSE", "NAE")))
            rows.append(Row(table, setting, m, vals, paper.get(setting, {}).get(m), higher_is_better=hib))
    return rows


def claim_sentences(claims_df: Any, digits: int = 3) -> list[str]:
    """One sentence per evaluated claim (from ``Reporter.results``' DataFrame)."""
    out = []
    for _, c in claims_df.iterrows():
        verdict = "REPRODUCED" if c["reproduced"] else "NOT reproduced"
        out.append(f"[{verdict}] {c['claim']}: {c['better']} {c['better (ours)']:.{digits}f} vs {c['worse']} "
                   f"{c['worse (ours)']:.{digits}f} ({c['metric']}).")
    return out


def table3_claims() -> list:
    """The paper's Table 3 directions as :class:`crowdlib.repro.Claim` objects (one per row against the fixed 0.5
    baseline, then the structural comparisons of Sec. 4.4)."""
    from crowdlib.repro import Claim

    b = "CP fixed:0.5"
    ibm_e, ibm_b = "CP+IBM (L1: IBM)", "CP+IBM (L1: CP&IBM)"
    pbm_e, pbm_b = "CP+PBM (L1: PBM)", "CP+PBM (L1: CP&PBM) = IIM"
    f8 = "CP fixed:0.8"
    return [
        Claim("Fixed threshold 0.8 gives a lower F1 than 0.5", "F1", b, f8, table="3"),
        Claim("CP+IBM with L1 on the encoder only beats fixed 0.5 on F1", "F1", ibm_e, b, table="3"),
        Claim("CP+IBM with L1 on CP and encoder beats fixed 0.5 on F1", "F1", ibm_b, b, table="3"),
        Claim("CP+PBM with L1 on the encoder only beats fixed 0.5 on F1", "F1", pbm_e, b, table="3"),
        Claim("IIM (CP+PBM, L1 on CP and encoder) beats fixed 0.5 on F1", "F1", pbm_b, b, table="3"),
        Claim("Learnable image-level threshold (CP&IBM) beats fixed 0.8 on F1", "F1", ibm_b, f8, table="3"),
        Claim("Learnable pixel-level threshold (CP&PBM) beats fixed 0.8 on F1", "F1", pbm_b, f8, table="3"),
        Claim("PBM >= IBM on F1 (both with L1 on CP and encoder)", "F1", pbm_b, ibm_b, table="3", relation=">="),
        Claim("PBM: L1 on CP and encoder >= L1 on the encoder only (F1)", "F1", pbm_b, pbm_e, table="3",
              relation=">="),
        Claim("IBM: L1 on CP and encoder > L1 on the encoder only (F1)", "F1", ibm_b, ibm_e, table="3"),
        Claim("Raising the fixed threshold 0.5 -> 0.8 raises precision", "Pre", f8, b, table="3"),
        Claim("Raising the fixed threshold 0.5 -> 0.8 lowers recall", "Rec", b, f8, table="3"),
        Claim("IIM counts better than fixed 0.5 (lower MAE)", "MAE", pbm_b, b, table="3"),
    ]


def table5_claims() -> list:
    """Table 5 directions: IIM beats the density-map and dot-map ground truths on F1 and MAE."""
    from crowdlib.repro import Claim

    iim_, den, dot = "IIM + PBM", "Density map + GPR-like peaks", "Cruciform dot map + local maxima"
    return [
        Claim("IIM beats the density map + peaks on F1", "F1", iim_, den, table="5"),
        Claim("IIM beats the cruciform dot map + local maxima on F1", "F1", iim_, dot, table="5"),
        Claim("The dot map beats the density map on F1", "F1", dot, den, table="5"),
        Claim("IIM counts better than the density map (MAE)", "MAE", iim_, den, table="5"),
        Claim("IIM counts better than the dot map (MAE)", "MAE", iim_, dot, table="5"),
    ]


def shb_test_records(root: Any, loc_file: Any, progress: bool = False) -> list[CrowdRecord]:
    """ShanghaiTech Part B test records whose heads, NWPU sigmas and levels come from the localization file
    ``SHHB_test_gt_loc.txt`` (ids ``0401``..: image ``IMG_k`` is id ``400 + k``), for scoring with sigma_l.

    Raises:
        ValueError: when an image has no line in the localization file.
    """
    from crowdlib.data.formats import read_nwpu_gt, read_shanghaitech

    recs = read_shanghaitech(root, "B", "test", progress=progress)
    gt = read_nwpu_gt(loc_file)
    out = []
    for r in recs:
        num = int(str(r.image_id).split("_")[-1])
        key = f"{400 + num:04d}"
        if key not in gt:
            raise ValueError(f"{loc_file}: no line for {r.image_id} (expected id {key})")
        g = gt[key]
        out.append(CrowdRecord(image_id=r.image_id, points=g.points, image_path=r.image_path, sigmas=g.sigmas,
                               levels=g.levels, image_size=r.image_size, meta={"loc_id": key}))
    return out


def pixel_balance_sweep(records: Sequence[CrowdRecord], maps: Sequence[Mapping[str, np.ndarray]],
                        instance_maps: Sequence[np.ndarray], thresholds: Sequence[float],
                        min_area: int = 3) -> Any:
    """For each global threshold: false-positive and false-negative *pixels* against the instance maps, the
    pixel L1 error, and the localization F1/Pre/Rec of the decoded components.

    The binarization layer's threshold gradient is ``#FN - #FP`` pixels (derivative -1 at every pixel, Eq. 3/6),
    so a learned threshold drifts to where the two counts balance (predicted foreground area = true area), which
    need not be the pixel-L1 minimum nor the F1 optimum; this table shows the three side by side.
    """
    import pandas as pd

    C = [np.asarray(m["confidence"]) for m in maps]
    G = [np.asarray(g) > 0 for g in instance_maps]
    n = float(sum(g.size for g in G))
    out = []
    for t in thresholds:
        fp = sum(int(((c >= t) & ~g).sum()) for c, g in zip(C, G))
        fn = sum(int(((c < t) & g).sum()) for c, g in zip(C, G))
        s = score_points(records, [decode_components(c >= t, min_area) for c in C])
        out.append({"threshold": float(t), "FP pixels": fp, "FN pixels": fn, "pixel L1": (fp + fn) / n,
                    "F1": 100 * s["f1"], "Pre": 100 * s["pre"], "Rec": 100 * s["rec"]})
    return pd.DataFrame(out)
