"""IIM studies of notebooks 20-23: staged and from-scratch configs, the Table 3 / Table 5 grids through
:func:`crowdlib.study.run_study`, the paper's numbers and its claims."""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crowdlib.data.records import CrowdRecord
from crowdlib.study import claim_sentences, rows_from_long

from .config import make_config
from .data import load_records
from .infer import evaluate_model, predict_maps, threshold_stats
from .train import get_or_train_iim, load_trained, train_iim

__all__ = ["ENCODER_KEYS", "trunk_config", "staged_config", "scratch_config", "TABLE3_SETTINGS", "PAPER_TABLE3",
           "TABLE5_SETTINGS", "PAPER_TABLE5", "PAPER_LEVEL_RECALL_IIM", "PAPER_LEVEL_RECALL_GPR",
           "PAPER_LEVEL_RECALL_RAZ", "METRICS", "HIGHER_IS_BETTER", "setting_config", "run_settings",
           "rows_from_long", "claim_sentences", "table3_claims", "table3_readings", "threshold_trajectory",
           "threshold_start_end", "image_thresholds", "loss_name", "training_summary", "table5_claims"]


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


def scratch_config(base: Mapping[str, Any], total_steps: int, select_after: int = 0, **variant: Any) -> dict[str, Any]:
    """A model trained from scratch for ``total_steps`` steps (the Table 5 baselines: as many steps as a staged
    IIM row in total), its checkpoint chosen among the validation points after ``select_after`` steps (a staged
    row's trunk length: as many choices as the IIM row has)."""
    cfg = make_config(**{**dict(base), **variant})
    cfg.update(steps=int(total_steps), init=None, sched_offset=0, sched_total=None, select_after=int(select_after))
    return cfg


#: Table 3 rows: name -> (config overrides, decode threshold override or None for the model's own threshold).
#: The fixed-threshold rows carry their threshold in the config, so each selects its checkpoint on validation at its
#: own threshold (they share the warm start and the MSE-only training, not the chosen checkpoint).
TABLE3_SETTINGS: dict[str, tuple[dict[str, Any], float | None]] = {
    "CP fixed:0.5": ({"encoder": "none", "fixed_threshold": 0.5}, None),
    "CP fixed:0.8": ({"encoder": "none", "fixed_threshold": 0.8}, None),
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
    return scratch_config(base, int(trunk_steps) + int(finetune_steps), select_after=max(int(trunk_steps), 0),
                          **variant)


def run_settings(settings: Mapping[str, tuple[Mapping[str, Any], float | None]], base: Mapping[str, Any],
                 seeds: Sequence[int], test_records: Sequence[CrowdRecord], *, trunk_steps: int, finetune_steps: int,
                 train_records: Sequence[CrowdRecord] | None = None, progress: bool = False,
                 keep_maps: bool = False) -> tuple[Any, dict[tuple[str, int], dict[str, Any]]]:
    """Train (or fetch from the cache) every setting x seed with :func:`crowdlib.study.run_study` and evaluate it
    on ``test_records``.

    Returns ``(long DataFrame with columns setting, seed, metric, value; runs)`` where ``runs[(setting, seed)]``
    holds ``"config"``, ``"result"`` (the training dict without weights), ``"eval"`` (scores, points, counts) and,
    with ``keep_maps``, the predicted ``"maps"``. Metrics: F1/Pre/Rec (sigma_l, in %), F1_s, MAE, MSE, NAE,
    recall per level ``Rec A0``..``Rec A5`` (%), ``train_seconds`` (this run; ``trunk_seconds`` for the shared
    warm start), ``images_per_s``, and for learned thresholds the
    mean threshold on foreground / background pixels of the test instance maps (``thr_fg``, ``thr_bg``).
    Rows that differ only in their decode threshold (fixed 0.5 and 0.8) share one model and one prediction.
    """
    from crowdlib.repro import config_hash
    from crowdlib.study import run_study
    from crowdlib.targets.instance import instance_map_from_boxes

    if train_records is None:
        train_records = load_records(base["data"], "train")
    maps_cache: dict[str, list] = {}
    inst: list[np.ndarray] = []

    def config(name: str, seed: int) -> dict[str, Any]:
        return setting_config(base, settings[name][0], seed, trunk_steps, finetune_steps)

    def evaluate(name: str, seed: int, cfg: dict[str, Any], res: dict[str, Any]) -> tuple[dict, dict]:
        key = config_hash(cfg)
        if key not in maps_cache:
            model = load_trained(cfg, res)
            maps_cache[key] = predict_maps(model, test_records, window=int(cfg["eval_window"]),
                                           scale=float(cfg["eval_scale"]), density=cfg["model"] == "iim_density",
                                           progress=progress)
        maps = maps_cache[key]
        ev = evaluate_model(None, cfg, test_records, maps=maps, threshold=settings[name][1],  # type: ignore[arg-type]
                            decode=res.get("decode"))
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
            if not inst:
                inst.extend(instance_map_from_boxes(r.points, r.boxes, r.load_image().shape[:2],
                                                    min_half=float(cfg["inst_min_half"]),
                                                    max_half=float(cfg["inst_max_half"]))
                            if r.boxes is not None else np.zeros(r.load_image().shape[:2], np.uint8)
                            for r in test_records)
            vals.update(threshold_stats(maps, inst))
        extra = {"config": cfg, "result": {k: v for k, v in res.items() if k != "model"}, "eval": ev,
                 **({"maps": maps} if keep_maps else {})}
        return vals, extra

    # a picklable train function, so that the study can train runs in worker processes (they re-read the records)
    study = run_study(list(settings), seeds, config=config, train=functools.partial(train_iim, progress=progress),
                      evaluate=evaluate, cache_name="iim", title="IIM",
                      depends_on=lambda c: [c["init"]] if c.get("init") is not None else [])
    return study.long, {key: run.extra for key, run in study.runs.items()}


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
        Claim("IIM counts better than fixed 0.5 (lower MAE)", "MAE", pbm_b, b, table="3"),
    ]


def table3_readings(rows: Sequence[Any]) -> list[str]:
    """Comparisons of Table 3 that are readings, not claims: the two fixed-threshold rows decode (nearly) the same
    confidence maps, so a higher threshold raising precision and lowering recall cannot fail. Sentences with our
    numbers beside the paper's."""
    def mean(setting: str, metric: str) -> float | None:
        hit = [r for r in rows if r.table == "3" and r.setting == setting and r.metric == metric]
        return hit[0].mean if hit else None

    out = []
    for metric, verb in (("Pre", "precision"), ("Rec", "recall")):
        a, b = mean("CP fixed:0.5", metric), mean("CP fixed:0.8", metric)
        if a is None or b is None:
            continue
        pa, pb = PAPER_TABLE3["CP fixed:0.5"][metric], PAPER_TABLE3["CP fixed:0.8"][metric]
        out.append(f"Reading (not a claim: the same maps at two thresholds): raising the fixed threshold 0.5 -> 0.8 "
                   f"moves {verb} {a:.1f} -> {b:.1f} (paper {pa:g} -> {pb:g}).")
    return out


def threshold_trajectory(runs: Mapping[tuple[str, int], Mapping[str, Any]]) -> Any:
    """The learned thresholds over training, from the validation points of each run with a threshold module
    (:func:`train_iim` history): a long DataFrame ``setting, seed, step, thr_fg, thr_bg, gap`` (``gap`` = head minus
    background threshold; for IBM one threshold per image, so the two differ only through the images' mix)."""
    import pandas as pd

    recs = []
    for (setting, seed), run in runs.items():
        for h in run["result"]["history"]:
            if "thr_fg" in h:
                recs.append({"setting": setting, "seed": int(seed), "step": int(h["step"]), "thr_fg": h["thr_fg"],
                             "thr_bg": h["thr_bg"], "gap": h["thr_fg"] - h["thr_bg"]})
    return pd.DataFrame(recs, columns=["setting", "seed", "step", "thr_fg", "thr_bg", "gap"])


def image_thresholds(run: Mapping[str, Any]) -> Any:
    """IBM's learned threshold of every validation image over training (one run): a DataFrame indexed by step, one
    column per validation image; empty for runs without an image-level module."""
    import pandas as pd

    hist = [h for h in run["result"]["history"] if "thr_images" in h]
    return pd.DataFrame([h["thr_images"] for h in hist], index=[int(h["step"]) for h in hist])


def threshold_start_end(trajectory: Any) -> Any:
    """Start (step 0) and end (last validation point) of :func:`threshold_trajectory`, mean over seeds, per
    setting: columns ``start thr_fg, end thr_fg, start thr_bg, end thr_bg, moved`` (``moved`` = mean |end - start|
    of the head threshold)."""
    import pandas as pd

    if trajectory.empty:
        return pd.DataFrame()
    recs = []
    for (setting, seed), g in trajectory.groupby(["setting", "seed"], sort=False):
        g = g.sort_values("step")
        a, b = g.iloc[0], g.iloc[-1]
        recs.append({"setting": setting, "seed": seed, "start thr_fg": a.thr_fg, "end thr_fg": b.thr_fg,
                     "start thr_bg": a.thr_bg, "end thr_bg": b.thr_bg, "moved": abs(b.thr_fg - a.thr_fg)})
    return pd.DataFrame(recs).groupby("setting", sort=False).mean(numeric_only=True).drop(columns="seed")


def loss_name(cfg: Mapping[str, Any]) -> str:
    """The training loss of a run config in words (Table 5 names each row's loss beside its numbers)."""
    if cfg["model"] == "iim_density":
        return f"pixel MSE on the density map x {float(cfg['density_scale']):g}"
    if cfg["model"] == "iim_dotmap":
        return {"mse": "pixel MSE on the dot map",
                "bce_balanced": "class-balanced BCE on the dot map (positive weight <= 50)"}[str(cfg["dot_loss"])]
    if cfg["encoder"] == "none":
        return "pixel MSE on the instance map"
    area = {"both": "CP and encoder", "encoder": "encoder only"}[str(cfg["l1_area"])]
    return f"pixel MSE + L1 through the {str(cfg['encoder']).upper()} (L1 reaches {area})"


def training_summary(runs: Mapping[tuple[str, int], Mapping[str, Any]]) -> Any:
    """Per setting (first seed): its loss (:func:`loss_name`), total training steps (a warm start included), the
    number of validation points a checkpoint could be chosen from, and the chosen step, so that the rows of a table
    can be checked for equal budgets and equal selection."""
    import pandas as pd

    recs, seen = [], set()
    for (setting, _seed), run in runs.items():
        if setting in seen:
            continue
        seen.add(setting)
        cfg, res = run["config"], run["result"]
        warm = int(cfg["sched_offset"]) if cfg.get("init") is not None else 0
        after = int(cfg.get("select_after", 0))
        choices = sum(1 for h in res["history"] if "val_f1" in h and int(h["step"]) > after)
        recs.append({"setting": setting, "loss": loss_name(cfg), "steps": warm + int(res["steps"]),
                     "checkpoint choices": choices, "chosen step": warm + int(res["best_step"])})
    return pd.DataFrame(recs).set_index("setting")


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
