"""Crowd-SDNet studies of notebooks 10-13: the paper's numbers, run configs, the Table III grid through
:func:`crowdlib.study.run_study`, and the table and claim builders."""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from crowdlib.repro import fixed_threads
from crowdlib.study import claim_sentences, rows_from_long

from .evaluate import _default_bins, evaluate_sdnet, pseudo_box_quality, pseudo_boxes
from .store import BIN_LABELS, PseudoBoxStore
from .train import ABLATION_SETTINGS, default_config, load_records, merge_config, train_sdnet

__all__ = ["PAPER_TABLE2", "PAPER_TABLE3", "PAPER_SHB", "canonical_config", "run_config", "setting_config",
           "run_settings", "train_settings", "size_init_metrics", "rows_from_long", "table3_claims", "claim_sentences",
           "table2_quality", "final_losses", "train_records_of", "refinement_curves", "experiment_config",
           "eval_records_for", "synthetic_test_records", "describe_run_device", "quality_by_preset", "fig4_rows",
           "shanghaitech_config", "PRESET_DATASET", "fit_luda_beta",
           "stand_in_configs"]


#: Table III of the paper (WiderFace val, AP in %, IoU 0.5): the rows we reproduce.
PAPER_TABLE3: dict[str, dict[str, float]] = {
    "GAK (size init)": {"AP@0.5 easy": 7.1, "AP@0.5 medium": 12.5, "AP@0.5 hard": 27.3},
    "LUDA (size init)": {"AP@0.5 easy": 7.2, "AP@0.5 medium": 12.8, "AP@0.5 hard": 29.5},
    "neither": {"AP@0.5 easy": 18.6, "AP@0.5 medium": 23.4, "AP@0.5 hard": 30.8, "MAE": 3.4, "NAE": 0.81},
    "loss only": {"AP@0.5 easy": 21.3, "AP@0.5 medium": 26.8, "AP@0.5 hard": 35.2, "MAE": 3.6, "NAE": 0.97},
    "refinement only": {"AP@0.5 easy": 55.1, "AP@0.5 medium": 55.1, "AP@0.5 hard": 52.5, "MAE": 2.3, "NAE": 0.27},
    "both": {"AP@0.5 easy": 75.8, "AP@0.5 medium": 71.0, "AP@0.5 hard": 64.4, "MAE": 2.2, "NAE": 0.29},
}
#: Table II of the paper (WiderFace train, AP in % of pseudo boxes against true boxes).
PAPER_TABLE2: dict[str, dict[str, float]] = {
    "GAK": {"AP(0.3)": 55.8, "AP(0.5)": 29.5, "AP(0.7)": 7.0},
    "LUDA": {"AP(0.3)": 60.3, "AP(0.5)": 31.2, "AP(0.7)": 7.5},
    "refined": {"AP(0.3)": 79.4, "AP(0.5)": 50.6, "AP(0.7)": 14.4},
}
#: Tables V and VII of the paper, ShanghaiTech Part B test.
PAPER_SHB: dict[str, float] = {"MAE": 7.8, "RMSE": 12.6, "AP@20px (%)": 91.6, "MLE": 6.0}

def canonical_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The FULL configuration of a run (defaults merged in), canonicalised so that equal runs share one cache key.

    Without crowdedness weights the size normalisation has no effect (sum of alpha = number of pixels), so such
    settings are canonicalised to ``size_norm="objects"`` and runs that differ only there share one cached model.
    """
    full = merge_config(default_config(), cfg)
    loss = full["model"]["loss"]
    if not loss.get("crowd_aware", True):
        loss["size_norm"] = "objects"
    return full


def run_config(cfg: Mapping[str, Any], *, progress: bool = True, cache_dir: str | None = None,
               name: str = "sdnet") -> dict[str, Any]:
    """Train (or load from the cache) one configuration with :func:`crowdlib.repro.get_or_train`, under
    :class:`crowdlib.repro.fixed_threads` (the study runner's deterministic thread setting).

    The cache key is the hash of :func:`canonical_config`, so notebooks asking for the same run share it.
    """
    from crowdlib.repro import get_or_train

    with fixed_threads():
        return get_or_train(canonical_config(cfg), functools.partial(train_sdnet, progress=progress), name=name,
                            cache_dir=cache_dir)


def setting_config(base: Mapping[str, Any], setting: str, seed: int) -> dict[str, Any]:
    """The full config of one Table III setting (:data:`ABLATION_SETTINGS`) and seed on top of ``base``."""
    if setting not in ABLATION_SETTINGS:
        raise ValueError(f"setting must be one of {list(ABLATION_SETTINGS)}, got {setting!r}")
    cfg = merge_config(merge_config(default_config(), base), ABLATION_SETTINGS[setting])
    cfg["seed"] = int(seed)
    return cfg


def run_settings(base: Mapping[str, Any], settings: Sequence[str], seeds: Sequence[int],
                 test_records: Sequence[Any], *, progress: bool = True, extra: Mapping[str, Any] | None = None,
                 label: str | None = None) -> tuple[dict[tuple[str, int], dict], "Any"]:
    """Train/load every (setting, seed) with :func:`crowdlib.study.run_study` and evaluate it on ``test_records``.

    ``extra`` is merged on top of each setting (e.g. ``{"refine": {"rule": "psddn"}}``) and ``label`` renames the
    setting in the output (one setting only). Returns ``(runs, df)``: ``runs[(label, seed)]`` is the training result
    and ``df`` a long DataFrame with columns ``setting, seed, metric, value`` (APs in %), plus ``train_seconds`` and
    ``images_per_s`` rows.
    """
    from crowdlib.study import run_study

    settings = list(settings)
    if label is not None and len(settings) != 1:
        raise ValueError(f"run_settings: label renames one setting, got {len(settings)} settings")
    names = {(label or s): s for s in settings}

    def config(name: str, seed: int) -> dict[str, Any]:
        return canonical_config(merge_config(setting_config(base, names[name], seed), extra or {}))

    def evaluate(name: str, seed: int, cfg: dict[str, Any], res: dict[str, Any]) -> dict[str, float]:
        metrics = {k: 100.0 * v if k.startswith("AP") else v for k, v in evaluate_sdnet(res, cfg, test_records).items()}
        return {**metrics, "train_seconds": res["train_seconds"], "images_per_s": res["images_per_s"]}

    study = run_study(list(names), seeds, config=config, train=functools.partial(train_sdnet, progress=progress),
                      evaluate=evaluate, cache_name="sdnet", title="Crowd-SDNet")
    return {key: run.result for key, run in study.runs.items()}, study.long


def train_settings(base: Mapping[str, Any], settings: Sequence[str], seeds: Sequence[int], *,
                   progress: bool = False) -> dict[tuple[str, int], dict[str, Any]]:
    """Train (or fetch from the cache) every (setting, seed) without evaluating it (:func:`crowdlib.study.run_study`,
    runs trained in parallel processes); returns ``{(setting, seed): training result}``."""
    from crowdlib.study import run_study

    study = run_study(list(settings), seeds, config=lambda s, seed: canonical_config(setting_config(base, s, seed)),
                      train=functools.partial(train_sdnet, progress=progress), evaluate=None, cache_name="sdnet",
                      title="Crowd-SDNet")
    return {key: run.result for key, run in study.runs.items()}


def size_init_metrics(records: Sequence[Any], pseudo: Mapping[str, Any], *,
                      bins: Mapping[str, tuple[float, float]] | None = None,
                      iou_thresholds: Sequence[float] = (0.3, 0.5)) -> "Any":
    """Table III "size init" rows: GAK and LUDA boxes at the TRUE centres of ``records``, AP (%) per subset."""
    import pandas as pd

    recs = []
    for method, label in (("gak", "GAK (size init)"), ("luda", "LUDA (size init)")):
        q = pseudo_box_quality(pseudo_boxes(records, method, pseudo.get("params")), records, iou_thresholds,
                               bins=_default_bins(records) if bins is None else bins)
        recs += [{"setting": label, "seed": -1, "metric": k, "value": 100.0 * v} for k, v in q.items()]
    return pd.DataFrame(recs)


def table3_claims(metrics: Sequence[str] = ("AP@0.5 medium", "AP@0.3 medium"), table: str = "III",
                  tag: str | None = None) -> list:
    """The paper's Table III directions as :class:`crowdlib.repro.Claim` s on the given AP metrics and MAE.

    ``table``: the rows' table name (one per dataset, e.g. ``"III (shb_like)"``); ``tag``: a prefix of every claim's
    text (``"[shb_like] ..."``), so that the claims of several datasets stay apart in the scorecard.
    """
    from crowdlib.repro import Claim

    pre = f"[{tag}] " if tag else ""
    claims = []
    for m in metrics:
        claims += [
            Claim(f"{pre}both modules beat refinement only ({m})", m, "both", "refinement only", table),
            Claim(f"{pre}refinement only beats loss only ({m})", m, "refinement only", "loss only", table),
            Claim(f"{pre}refinement only beats neither ({m})", m, "refinement only", "neither", table),
            Claim(f"{pre}crowdedness-aware loss beats plain pseudo sizes ({m})", m, "loss only", "neither", table),
            Claim(f"{pre}both modules beat neither ({m})", m, "both", "neither", table),
        ]
    claims.append(Claim(f"{pre}both modules count better than neither (MAE)", "MAE", "both", "neither", table))
    claims.append(Claim(f"{pre}LUDA size init beats GAK size init (AP@0.5 hard)", "AP@0.5 hard", "LUDA (size init)",
                        "GAK (size init)", table))
    return claims


def table2_quality(train_records: Sequence[Any], pseudo: Mapping[str, Any],
                   refined: Mapping[str, Mapping[int, PseudoBoxStore]]) -> "Any":
    """Table II: AP (%) and matched share of GAK, LUDA and refined pseudo boxes on the TRAINING images.

    ``refined`` maps a row label (e.g. ``"refined"``) to ``{seed: final store of a trained run}`` (the stores' images
    must be ``train_records`` in order). Returns a long DataFrame ``setting, seed, metric, value``.
    """
    import pandas as pd

    recs = []
    for method, label in (("gak", "GAK"), ("luda", "LUDA")):
        q = pseudo_box_quality(pseudo_boxes(train_records, method, pseudo.get("params")), train_records)
        recs += [{"setting": label, "seed": -1, "metric": k, "value": 100.0 * v} for k, v in q.items()]
    ids = [r.image_id for r in train_records]
    for label, stores in refined.items():
        for seed, store in stores.items():
            if store.image_ids != ids:
                raise ValueError("table2_quality: a refined store does not hold the given training images")
            q = pseudo_box_quality([store.boxes(i) for i in range(len(store))], train_records)
            recs += [{"setting": label, "seed": seed, "metric": k, "value": 100.0 * v} for k, v in q.items()]
    return pd.DataFrame(recs)


def final_losses(runs: Mapping[tuple[str, int], Mapping[str, Any]]) -> "Any":
    """Last-epoch loss terms, refined share and throughput per setting (mean over seeds)."""
    import pandas as pd

    recs = []
    for (name, seed), res in runs.items():
        h = res["history"][-1] if res["history"] else {}
        recs.append({"setting": name, "seed": seed, "centre loss": h.get("center", float("nan")),
                     "size loss": h.get("size", float("nan")),
                     "refined share (all boxes)": _refined_share(res["store"]),
                     "images/s": res.get("images_per_s", float("nan"))})
    return pd.DataFrame(recs).groupby("setting", sort=False).mean(numeric_only=True).drop(columns="seed")


def _refined_share(store_state: Mapping[str, Any]) -> float:
    n = [np.asarray(x) for x in store_state["n_updates"]]
    tot = sum(len(a) for a in n)
    return float(sum(int((a > 0).sum()) for a in n) / tot) if tot else float("nan")


def train_records_of(cfg: Mapping[str, Any]) -> list:
    """The training records (validation part removed) of a run config, in store order."""
    from crowdlib.data.datasets import split_train_val

    cfg = merge_config(default_config(), cfg)
    records = load_records(cfg["data"])
    train_idx, _ = split_train_val(len(records), float(cfg["val_fraction"]), int(cfg["split_seed"]))
    return [records[i] for i in train_idx]


def refinement_curves(runs: Mapping[tuple[str, int], Mapping[str, Any]], setting: str) -> "Any":
    """Fig. 4 data: per epoch and crowdedness bin, the share of boxes refined so far (mean/std over seeds)."""
    import pandas as pd

    recs = []
    for (name, seed), res in runs.items():
        if name != setting:
            continue
        for h in res["history"]:
            for label in BIN_LABELS:
                recs.append({"seed": seed, "epoch": int(h["epoch"]), "bin": label,
                             "refined_share": h.get(f"refined_share/{label}", float("nan")),
                             "updated_share": h.get(f"updated_share/{label}", float("nan"))})
    df = pd.DataFrame(recs)
    return df.groupby(["bin", "epoch"], sort=False).agg(
        refined_mean=("refined_share", "mean"), refined_std=("refined_share", "std"),
        updated_mean=("updated_share", "mean")).reset_index()


#: Which row of Table I (LUDA parameters) each synthetic preset stands for.
PRESET_DATASET: dict[str, str] = {"sha_like": "SHA", "shb_like": "SHB", "crowd_a": "SHA", "crowd_b": "SHB",
                                  "faces": "WiderFace", "crowd_dense": "NWPU"}


def fit_luda_beta(records: Sequence[Any], K: int = 2) -> float:
    """The rule that picks LUDA's beta for a synthetic set from its TRAINING images: the median ratio of a head's
    true box side (square root of the visible box area, as the evaluation measures it) to the mean distance to its
    ``K`` nearest neighbours, over images with more than two heads; rounded to 0.05."""
    from crowdlib.metrics.boxes import box_side
    from crowdlib.targets.pseudo_sizes import knn_mean_distance

    ratios = []
    for r in records:
        if r.count <= 2 or r.boxes is None:
            continue
        side = box_side(r.boxes)
        ratios.append(side / np.maximum(knn_mean_distance(r.points, int(K)), 1e-6))
    if not ratios:
        raise ValueError("fit_luda_beta: no training image with more than two heads and true boxes")
    return float(np.round(np.median(np.concatenate(ratios)) / 0.05) * 0.05)


def experiment_config(*, dataset: str = "mixture", n_train: int | None = None, n_dense: int = 80,
                      n_sparse: int = 80, image_size: int | None = 256, epochs: int = 20,
                      max_steps: int | None = None, batch_size: int = 8, lr: float = 2e-3, width: int = 32,
                      up_width: int | None = 8, skips: Mapping[str, int] | None = None,
                      beta: float | str = 1.0, region_divisor: float | None = 8, prior: float = 0.6,
                      warmup_epochs: int = 0, alpha_cap: float | None = 50.0, eta: float = 1.0,
                      size_norm: str = "objects", center_weight: float = 0.1, data_seed: int = 0,
                      backbone: str = "tiny", pretrained: bool = False, crop: int | None = None,
                      data_root: str | None = None, **extra: Any) -> dict[str, Any]:
    """The synthetic run config shared by notebooks 10-12 (identical arguments give identical runs).

    ``dataset``: a calibrated stand-in for one of the paper's datasets, trained on its own as the paper does
    (``"sha_like"``, ``"shb_like"``, ``"faces"``; ``n_train`` images at the preset's own size, or ``image_size``
    rows), or ``"mixture"``: ``n_dense`` ``crowd_a`` + ``n_sparse`` ``crowd_b`` scenes of ``image_size`` px (the
    earlier studies). Training uses random ``crop`` x ``crop`` crops (default 128); evaluation whole images.

    LUDA: ``K = 2`` and the preset's Table I row (``PRESET_DATASET``) for ``min_size``, ``max_size`` and the
    neighbour limit; ``region_divisor`` (``r``) and ``alpha_cap`` as given (``None``: the row's values);
    ``beta`` a number or ``"fit"``: :func:`fit_luda_beta` on the training images.

    With ``data_root`` (a WIDER FACE folder, the paper's ablation dataset) the first ``n_dense + n_sparse``
    training images with faces replace the synthetic scenes and LUDA uses the WiderFace parameters of Table I
    (K 2, beta 0.5, r 6, minimum size 8 px, no alpha cap). ``extra`` is merged last (nested dicts, e.g.
    ``refine={"rule": "psddn"}``).
    """
    from crowdlib.targets.pseudo_sizes import LUDA_PRESETS

    if dataset == "mixture":
        size = int(image_size or 256)
        data = {"source": "synthetic", "presets": [["crowd_a", int(n_dense)], ["crowd_b", int(n_sparse)]],
                "seed": int(data_seed), "height": size, "width": size}
        luda = {"K": 2, "min_size": 2.0}
        crop_default = min(size, 128)
    else:
        from crowdlib.data.synth_config import resolve_config

        if dataset not in PRESET_DATASET:
            raise ValueError(f"dataset must be 'mixture' or one of {sorted(PRESET_DATASET)}, got {dataset!r}")
        sc = resolve_config(dataset)
        h = int(image_size or sc.height)
        w = int(round(sc.width * h / sc.height))
        data = {"source": "synthetic", "presets": [[dataset, int(n_train or 80)]], "seed": int(data_seed),
                "height": h, "width": w}
        row = dict(LUDA_PRESETS[PRESET_DATASET[dataset]])
        luda = {k: row[k] for k in ("K", "min_size", "max_size", "neighbor_limit")}
        region_divisor = row["r"] if region_divisor is None else region_divisor
        alpha_cap = row["max_weight"] if alpha_cap is None else alpha_cap
        crop_default = min(h, 128)
    if region_divisor is None:
        region_divisor = 8
    if beta == "fit":
        beta = fit_luda_beta(train_records_of({"data": data}), int(luda["K"]))
    elif isinstance(beta, str):
        raise ValueError(f"beta must be a number or 'fit', got {beta!r}")
    model = {"backbone": backbone, "pretrained": bool(pretrained), "width": int(width),
             "up_width": None if up_width is None else int(up_width),
             "loss": {"eta": float(eta), "alpha_cap": None if alpha_cap is None else float(alpha_cap),
                      "size_norm": str(size_norm), "center_weight": float(center_weight)}}
    if skips:
        model["skips"] = {str(k): int(v) for k, v in skips.items()}
    cfg = merge_config(default_config(), {
        "data": data,
        "model": model,
        "pseudo": {"init": "luda", "params": {**luda, "beta": float(beta), "r": float(region_divisor)}},
        "refine": {"prior": float(prior), "warmup_epochs": int(warmup_epochs)},
        "train": {"epochs": int(epochs), "max_steps": None if max_steps is None else int(max_steps),
                  "batch_size": int(batch_size), "lr": float(lr), "crop": int(crop or crop_default),
                  "color_jitter": 0.0},
    })
    if data_root:
        wf = dict(LUDA_PRESETS["WiderFace"])
        cfg["data"] = {"source": "widerface", "root": str(data_root), "split": "train",
                       "limit": int(n_dense) + int(n_sparse)}
        cfg["pseudo"]["params"] = {k: v for k, v in wf.items() if k != "max_weight"}
        cfg["model"]["loss"]["alpha_cap"] = None if wf.get("max_weight") is None else float(wf["max_weight"])
    return merge_config(cfg, extra)


def stand_in_configs(names: Sequence[str], **common: Any) -> dict[str, dict[str, Any]]:
    """One run config per calibrated stand-in in ``names`` (e.g. ``["shb_like", "faces"]``), each trained on its
    own as the paper trains SHA, SHB and WiderFace: its own row of Table I (``r``, alpha cap, size limits; see
    :data:`PRESET_DATASET`) and LUDA's beta fitted on its own training images (:func:`fit_luda_beta`).

    ``common``: the :func:`experiment_config` arguments the sets share (schedule, model, ``n_train``,
    ``image_size``, seeds of the data); the per-dataset ones (``dataset``, ``beta``, ``region_divisor``,
    ``alpha_cap``) are not allowed there.
    """
    clash = sorted({"dataset", "beta", "region_divisor", "alpha_cap"} & set(common))
    if clash:
        raise ValueError(f"stand_in_configs: {clash} are set per dataset (Table I), not shared")
    unknown = [n for n in names if n not in PRESET_DATASET or n == "mixture"]
    if unknown:
        raise ValueError(f"stand_in_configs: unknown stand-in(s) {unknown}; choose from {sorted(PRESET_DATASET)}")
    return {str(n): experiment_config(dataset=str(n), beta="fit", region_divisor=None, alpha_cap=None, **common)
            for n in names}


def eval_records_for(base: Mapping[str, Any], n_per_preset: int, image_size: int | None = None,
                     data_seed: int = 0, test_seed: int | None = None) -> list:
    """Held-out evaluation records of a run config: WIDER FACE val (``2 * n_per_preset`` images) when the config
    trains on WIDER FACE, else :func:`synthetic_test_records` of the config's own presets and image size
    (``image_size`` is ignored; kept for old callers)."""
    data = base.get("data", {})
    if data.get("source") == "widerface":
        return load_records({"source": "widerface", "root": data["root"], "split": "val",
                             "limit": 2 * int(n_per_preset)})
    presets = [name for name, _ in data.get("presets", [["crowd_a", 0], ["crowd_b", 0]])]
    return synthetic_test_records(n_per_preset, int(data.get("height", 256)), data_seed, test_seed,
                                  presets=presets, width=data.get("width"))


def synthetic_test_records(n_per_preset: int, image_size: int = 256, data_seed: int = 0,
                           test_seed: int | None = None, *, presets: Sequence[str] = ("crowd_a", "crowd_b"),
                           width: int | None = None) -> list:
    """Held-out synthetic test images (``n_per_preset`` of each preset, ``image_size`` rows, ``width`` columns,
    default square) rendered with ``test_seed`` (default ``data_seed + 1000``), never trained on.

    Raises:
        ValueError: if ``test_seed`` equals the training seed.
    """
    seed = int(data_seed) + 1000 if test_seed is None else int(test_seed)
    if seed == int(data_seed):
        raise ValueError(f"test_seed {seed} equals the training seed; test scenes must be new")
    return load_records({"source": "synthetic", "presets": [[p, int(n_per_preset)] for p in presets],
                         "seed": seed, "height": int(image_size), "width": int(width or image_size)})


def describe_run_device() -> str:
    """``"cpu (1 thread)"`` or the CUDA device name, for the notebooks' timing statements."""
    from crowdlib.device import pick_device

    dev = pick_device()
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''})"


def _preset_of(rec: Any) -> str:
    return str(rec.meta.get("preset", rec.image_id.split("-")[0]))


def quality_by_preset(train_records: Sequence[Any], pseudo: Mapping[str, Any],
                      refined: Mapping[str, Mapping[int, PseudoBoxStore]], iou: float = 0.5,
                      by: str = "preset") -> "Any":
    """Share (%) of heads whose pseudo box has IoU >= ``iou`` with its true box, per preset (``by="preset"``) or
    per Fig. 4 crowdedness bin of the head (``by="crowdedness"``, LUDA's ``|R|``).

    Columns ``heads``, GAK, LUDA and one per ``refined`` label (mean over that label's seeds).
    """
    import pandas as pd
    from crowdlib.metrics.boxes import box_iou

    if by not in ("preset", "crowdedness"):
        raise ValueError(f"quality_by_preset: by must be 'preset' or 'crowdedness', got {by!r}")
    luda_store = PseudoBoxStore.from_records(train_records, "luda", pseudo.get("params"))
    if by == "preset":
        groups = [np.full(r.count, _preset_of(r), dtype=object) for r in train_records]
        labels = sorted({_preset_of(r) for r in train_records})
    else:
        from .store import crowd_bin

        groups = [np.asarray(BIN_LABELS, dtype=object)[crowd_bin(c)] if len(c) else np.zeros(0, dtype=object)
                  for c in luda_store.crowdedness]
        labels = list(BIN_LABELS)
    group = np.concatenate(groups) if groups else np.zeros(0, dtype=object)

    def own(boxes: Sequence[np.ndarray]) -> np.ndarray:
        vals = [np.diag(box_iou(boxes[i], train_records[i].boxes)) if len(boxes[i]) else np.zeros(0)
                for i in range(len(train_records))]
        return np.concatenate(vals) if vals else np.zeros(0)

    gak = own(pseudo_boxes(train_records, "gak", pseudo.get("params")))
    luda = own([luda_store.boxes(i) for i in range(len(luda_store))])
    ref = {label: [own([st.boxes(i) for i in range(len(st))]) for st in stores.values()]
           for label, stores in refined.items() if stores}
    out = []
    for g in labels:
        m = group == g
        if not m.any():
            continue
        row = {by: g, "heads": int(m.sum()), "GAK": 100 * float((gak[m] >= iou).mean()),
               "LUDA": 100 * float((luda[m] >= iou).mean())}
        for label, vals in ref.items():
            row[label] = float(np.mean([100 * (v[m] >= iou).mean() for v in vals]))
        out.append(row)
    return pd.DataFrame(out).set_index(by)


def fig4_rows(runs: Mapping[tuple[str, int], Mapping[str, Any]], setting: str, fraction: float = 0.25,
              table: str = "fig4") -> list:
    """Rows (table ``table``) of the refined share (%) per crowdedness bin after ``fraction`` of the epochs
    (metric ``"refined share, early"``) and at the end (``"refined share, final"``), one value per seed."""
    from crowdlib.repro import Row

    vals: dict[tuple[str, str], list[float]] = {}
    for (name, _seed), res in runs.items():
        hist = res["history"]
        if name != setting or not hist:
            continue
        early = hist[max(0, int(math.ceil(fraction * len(hist))) - 1)]
        for label in BIN_LABELS:
            vals.setdefault((label, "refined share, early"), []).append(100 * early[f"refined_share/{label}"])
            vals.setdefault((label, "refined share, final"), []).append(100 * hist[-1][f"refined_share/{label}"])
    return [Row(table, label, metric, v) for (label, metric), v in vals.items()
            if all(math.isfinite(x) for x in v)]


# =====================================================================================================================
# ShanghaiTech (notebook 13)
# =====================================================================================================================
def shanghaitech_config(root: str, *, part: str = "B", n_train: int | None = None, crop: int = 256,
                        input_scale: float = 0.5, epochs: int = 8, max_steps: int | None = None,
                        batch_size: int = 4, lr: float = 7.5e-5, backbone: str = "mobilenet_v2",
                        pretrained: bool = True, width: int = 32, up_width: int | None = 16,
                        skips: Mapping[str, int] | None = None, seed: int = 0, val_fraction: float = 0.1,
                        val_every: int = 0, warmup_steps: int = 50, schedule: str = "cosine", threads: int = 1,
                        nms_candidates: Sequence[float] | None = (0.5, 0.3, 0.1),
                        size_norm: str = "alpha", keep_best: bool = True) -> dict[str, Any]:
    """Run config for ShanghaiTech ``part`` train (validation carved from train, ``val_fraction`` as the paper's
    10%). Images are trained at ``input_scale`` (scale jitter +-20% around it) on ``crop`` crops and tested at the
    same scale; LUDA uses the authors' SHA/SHB parameters (:data:`crowdlib.targets.pseudo_sizes.LUDA_PRESETS`).
    One Adam group over the whole network as in the paper (``lr``; the paper's 7.5e-5), ``val_every`` epochs a
    point of the validation learning curve (count MAE). The counting threshold and, among ``nms_candidates``, the
    NMS IoU are chosen on validation (``None``: the paper's 0.5 only); ``threads`` intra-op threads; ``size_norm``
    the crowdedness-aware size loss's normaliser (``"alpha"``: sum of alpha, authors' code; ``"objects"``: Eq. 6);
    ``keep_best``: end with the weights of the validation point with the lowest MAE (one choice per
    ``val_every`` epochs, all on validation)."""
    from crowdlib.targets.pseudo_sizes import LUDA_PRESETS

    preset = dict(LUDA_PRESETS["SHB" if part == "B" else "SHA"])
    cap = preset.get("max_weight")
    model = {"backbone": backbone, "pretrained": bool(pretrained), "width": int(width),
             "up_width": None if up_width is None else int(up_width),
             "loss": {"alpha_cap": None if cap is None else float(cap), "size_norm": str(size_norm)}}
    if skips:
        model["skips"] = {str(k): int(v) for k, v in skips.items()}
    return merge_config(default_config(), {
        "data": {"source": "shanghaitech", "root": str(root), "part": part, "split": "train", "limit": n_train},
        "val_fraction": float(val_fraction),
        "model": model,
        "pseudo": {"init": "luda", "params": {**preset, "lone_weight": 0.1}},
        "train": {"epochs": int(epochs), "max_steps": None if max_steps is None else int(max_steps),
                  "batch_size": int(batch_size), "lr": float(lr), "crop": int(crop),
                  "scale_range": [0.8 * input_scale, 1.2 * input_scale], "color_jitter": 0.0,
                  "val_every": int(val_every), "warmup_steps": int(warmup_steps), "schedule": str(schedule),
                  "keep_best": bool(keep_best) and int(val_every) > 0},
        "eval": {"scales": [float(input_scale)], "batch_size": 2,
                 "nms_candidates": None if nms_candidates is None else [float(v) for v in nms_candidates]},
        "seed": int(seed),
        "threads": int(threads),
    })
