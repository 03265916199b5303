"""SSR-HEF studies of notebooks 30-33: the paper's numbers (Tables V, VII, VIII, IX), the Table VII / VIII grids
through :func:`crowdlib.study.run_study`, the data of each stand-in set, and the claims.

Table VII's rows are config overrides of one base config (``use_ssr``, ``use_fel``, ``use_hef``); Table VIII's are
``num_classes``. Every row of one set and seed differs from the full model in that key only, so ``"K=15"`` of
Table VIII and ``"SSR-HEF"`` of Table VII are the same config (the default K is 15) and share one cached run.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from crowdlib.data.records import CrowdRecord
from crowdlib.study import claim_sentences, rows_from_long

from .config import make_config
from .data import load_records
from .infer import evaluate_model, predict_density
from .train import load_trained, train_ssrhef

__all__ = ["FULL", "TABLE7_SETTINGS", "CONTROL", "control_settings", "control_comparison", "PAPER_TABLE7",
           "STAND_INS", "TABLE8_K", "TABLE8_SETTINGS", "PAPER_TABLE8",
           "PAPER_TABLE8_MSE_UNREAD", "PAPER_TABLE5_SHB", "PAPER_TABLE9", "METRICS", "k_setting", "set_data",
           "test_data", "setting_config", "run_settings", "rows_from_long", "claim_sentences", "table7_rows",
           "table7_claims", "table8_claims", "training_summary", "paper_table7_frame", "train_mean_reference",
           "reference_frame"]

#: The full model's row name (Tables VII and VIII).
FULL = "SSR-HEF"

#: Table VII rows as config overrides of the full model (Sec. V-C: each component removed on its own; without SSR
#: the Dice term and the segmentation heads go too, without HEF the density map is trained with plain L2).
TABLE7_SETTINGS: dict[str, dict[str, Any]] = {
    "without SSR": {"use_ssr": False},
    "without FEL": {"use_fel": False},
    "without HEF": {"use_hef": False},
    FULL: {},
}

#: A control row beside Table VII, not one of the paper's rows and never a claim: plain L2 with the full model
#: otherwise, at a quarter of the learning rate. With unscaled densities the text's HEF factor (1 - sigma(D))^2 is at
#: most 0.25 (0.25 where D is 0), so part of HEF's effect may be a smaller step; this row shows how plain L2 fares
#: with one (:func:`control_settings`).
CONTROL = "L2 at lr/4 (control)"


def control_settings(lr: float) -> dict[str, dict[str, Any]]:
    """``{CONTROL: overrides}`` for a base learning rate ``lr``: plain L2 (``use_hef=False``) at ``lr / 4``."""
    return {CONTROL: {"use_hef": False, "lr": float(lr) / 4}}


#: Table VII of the paper ("Estimation errors of different configurations"), MAE / MSE per dataset as printed;
#: MSE is the root mean squared error.
PAPER_TABLE7: dict[str, dict[str, dict[str, float]]] = {
    "Part_A": {"without SSR": {"MAE": 70.5, "MSE": 108.6}, "without FEL": {"MAE": 66.8, "MSE": 108.0},
               "without HEF": {"MAE": 72.4, "MSE": 118.4}, FULL: {"MAE": 55.0, "MSE": 88.3}},
    "Part_B": {"without SSR": {"MAE": 12.6, "MSE": 20.5}, "without FEL": {"MAE": 9.4, "MSE": 15.2},
               "without HEF": {"MAE": 15.1, "MSE": 25.1}, FULL: {"MAE": 6.1, "MSE": 9.5}},
    "UCF_CC_50": {"without SSR": {"MAE": 205.3, "MSE": 271.3}, "without FEL": {"MAE": 191.5, "MSE": 288.3},
                  "without HEF": {"MAE": 226.2, "MSE": 301.5}, FULL: {"MAE": 173.3, "MSE": 260.4}},
    "UCF-QNRF": {"without SSR": {"MAE": 87.6, "MSE": 157.2}, "without FEL": {"MAE": 79.8, "MSE": 140.5},
                 "without HEF": {"MAE": 95.8, "MSE": 165.9}, FULL: {"MAE": 70.2, "MSE": 128.6}},
    "WorldExpo'10": {"without SSR": {"MAE": 8.9, "MSE": 12.3}, "without FEL": {"MAE": 7.6, "MSE": 9.5},
                     "without HEF": {"MAE": 10.1, "MSE": 15.6}, FULL: {"MAE": 6.5, "MSE": 8.1}},
}

#: Our sets and the paper's dataset whose Table VII numbers stand beside them (None: the paper has no such row).
STAND_INS: dict[str, str | None] = {"sha_like": "Part_A", "shb_like": "Part_B", "vgg_cells": None}

#: Table VIII: the number of count classes K (0 removes the classification task), on ShanghaiTech Part_A.
TABLE8_K: tuple[int, ...] = (0, 5, 10, 15, 20)


def k_setting(k: int) -> str:
    """The Table VIII row name of ``K = k`` (``"K=15"``)."""
    return f"K={int(k)}"


TABLE8_SETTINGS: dict[str, dict[str, Any]] = {k_setting(k): {"num_classes": int(k)} for k in TABLE8_K}

#: Table VIII of the paper (ShanghaiTech Part_A). Its MAE row is legible (68.2 / 63.4 / 61.8 / 55.0 / 65.0); of
#: its MSE row the text holds only two numbers without their columns (104.7 and 88.3). 88.3 is the full model's
#: Part_A MSE of Tables V and VII (K = 15), so it stands beside K=15; 104.7 is kept unassigned.
PAPER_TABLE8: dict[str, dict[str, float]] = {
    "K=0": {"MAE": 68.2}, "K=5": {"MAE": 63.4}, "K=10": {"MAE": 61.8}, "K=15": {"MAE": 55.0, "MSE": 88.3},
    "K=20": {"MAE": 65.0},
}
PAPER_TABLE8_MSE_UNREAD: tuple[float, ...] = (104.7,)

#: Table V, SSR-HEF on ShanghaiTech Part_B test (MSE = root mean squared error).
PAPER_TABLE5_SHB: dict[str, float] = {"MAE": 6.1, "MSE": 9.5}

#: Table IX: model size and average time per 512 x 1024 image (ShanghaiTech Part_A test images resized), GTX 1080Ti.
PAPER_TABLE9: dict[str, Any] = {"parameters (M)": 2.0, "time (s)": 0.003, "input": (512, 1024),
                                "device": "NVIDIA GTX 1080Ti (and an Intel Core i7)"}

METRICS = ("MAE", "MSE")


# ----------------------------------------------------------------------------------------------- data specs
def set_data(name: str, *, n_train: int, data_seed: int = 1, height: int | None = None, width: int | None = None,
             root: Any = None, window: Sequence[int] | None = None) -> dict[str, Any]:
    """The training data spec of one set: a synthetic preset (``sha_like``, ``shb_like``, ... rendered at
    ``height x width``, None: the preset's calibrated size; with ``window = (h, w)`` an ``h x w`` window of each
    scene, :func:`.data.window_record`), ``"vgg_cells"`` (``root``: the folder of ``NNNcell.png``; its first
    ``n_train`` images train) or ``"shanghaitech_B"`` / ``"shanghaitech_A"`` (``root``: the ShanghaiTech folder;
    ``n_train`` first images, None for all)."""
    if name == "vgg_cells":
        if root is None:
            raise ValueError("set_data: the VGG cells need their folder (root)")
        return {"kind": "vgg_cells", "root": str(root), "n_train": int(n_train)}
    if name.startswith("shanghaitech_"):
        if root is None:
            raise ValueError("set_data: ShanghaiTech needs its folder (root)")
        spec = {"kind": "shanghaitech", "root": str(root), "part": name.rsplit("_", 1)[1]}
        return {**spec, "limit": int(n_train)} if n_train else spec
    spec = {"kind": "synthetic", "presets": [name], "n": int(n_train), "seed": int(data_seed), "height": height,
            "width": width}
    if window is not None:
        if len(window) != 2:
            raise ValueError(f"set_data: window must be [height, width], got {window!r}")
        spec["window"] = [int(window[0]), int(window[1])]
    return spec


def test_data(data: Mapping[str, Any], n_test: int | None, test_seed: int | None = None) -> dict[str, Any]:
    """The test data spec beside a training spec: fresh synthetic scenes of ``test_seed`` (``n_test`` of them),
    or the dataset's own test split (its first ``n_test`` images; None for all)."""
    d = dict(data)
    d.pop("limit", None)
    if d["kind"] == "synthetic":
        if test_seed is None:
            raise ValueError("test_data: synthetic test scenes need their own test_seed")
        d.update(n=int(n_test), test_seed=int(test_seed))
    elif n_test:
        d["limit"] = int(n_test)
    return d


def setting_config(base: Mapping[str, Any], overrides: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The full config of one row and seed: ``base`` with the row's overrides and ``seed``."""
    return make_config(**{**dict(base), **dict(overrides), "seed": int(seed)})


# ----------------------------------------------------------------------------------------------- the grid
def run_settings(settings: Mapping[str, Mapping[str, Any]], base: Mapping[str, Any], seeds: Sequence[int],
                 test_records: Sequence[CrowdRecord], *, progress: bool = False, keep_maps: bool = False,
                 title: str = "SSR-HEF", jobs: int | None = None) -> tuple[Any, dict[tuple[str, int], dict[str, Any]]]:
    """Train (or fetch from the ``ssrhef`` cache) every setting x seed with :func:`crowdlib.study.run_study` and
    score it on ``test_records`` (whole images, count = the map's integral).

    Returns ``(long DataFrame setting, seed, metric, value; runs)``: metrics ``MAE``, ``MSE`` (root mean squared
    error), ``train_seconds``, ``images_per_s``, ``best_step``, ``val_MAE``; ``runs[(setting, seed)]`` holds
    ``"config"``, ``"result"`` (the training dict without weights), ``"eval"`` (``pred``, ``gt`` counts...) and,
    with ``keep_maps``, the predicted ``"maps"``. Models are chosen on validation images carved from the training
    images; test images are only scored.
    """
    from crowdlib.study import run_study

    def config(name: str, seed: int) -> dict[str, Any]:
        return setting_config(base, settings[name], seed)

    def evaluate(name: str, seed: int, cfg: dict[str, Any], res: dict[str, Any]) -> tuple[dict, dict]:
        model = load_trained(cfg, res)
        maps, counts = predict_density(model, test_records, progress=progress)
        ev = evaluate_model(model, test_records, counts=counts)
        vals = {"MAE": float(ev["mae"]), "MSE": float(ev["mse"]), "train_seconds": float(res["train_seconds"]),
                "images_per_s": float(res["images_per_s"]), "best_step": float(res["best_step"]),
                "val_MAE": float(res["best_val"]["mae"])}
        extra = {"config": cfg, "result": {k: v for k, v in res.items() if k != "model"}, "eval": ev,
                 **({"maps": maps} if keep_maps else {})}
        return vals, extra

    # a picklable train function: the study trains runs in worker processes, which re-read the records
    study = run_study(list(settings), seeds, config=config, train=functools.partial(train_ssrhef, progress=progress),
                      evaluate=evaluate, cache_name="ssrhef", title=title, jobs=jobs)
    return study.long, {key: run.extra for key, run in study.runs.items()}


def table7_rows(long: Any, set_name: str, table: str | None = None) -> list:
    """Table VII rows (MAE, MSE) of one set, the paper's numbers of its stand-in dataset (:data:`STAND_INS`)
    beside them; ``table`` defaults to ``"VII (<set>)"``."""
    paper = PAPER_TABLE7.get(STAND_INS.get(set_name) or "", None)
    return rows_from_long(long, table or f"VII ({set_name})", paper, list(METRICS))


def table7_claims(tag: str | None = None, table: str = "VII", metrics: Sequence[str] = METRICS) -> list:
    """Table VII's directions (Sec. V-C: "an evident utility" of SSR, "higher accuracy" with the FEL,
    "further enhanced" by HEF, on every dataset) as :class:`crowdlib.repro.Claim` s: the full model beats each
    ablated row on each metric. ``tag`` prefixes every claim's text (``"[shb_like] ..."``) and ``table`` names
    the rows' table, so that several sets stay apart in one scorecard."""
    from crowdlib.repro import Claim

    pre = f"[{tag}] " if tag else ""
    what = {"without SSR": "the multi-scale semantic refining strategy helps",
            "without FEL": "the feature enhancement layer helps",
            "without HEF": "hard example focusing helps (against plain L2)"}
    return [Claim(f"{pre}{what[row]}: SSR-HEF beats {row} ({m}, Table VII)", m, FULL, row, table)
            for m in metrics for row in what]


def table8_claims(table: str = "VIII", tag: str | None = None) -> list:
    """Table VIII's directions (Sec. V-C): K = 15 gives the lowest MAE ("leads the best result"), and every K > 0
    beats K = 0 ("all results with the classification task are better than that without"), on MAE."""
    from crowdlib.repro import Claim

    pre = f"[{tag}] " if tag else ""
    best = k_setting(15)
    claims = [Claim(f"{pre}15 classes beat {k} classes (MAE, Table VIII)", "MAE", best, k_setting(k), table)
              for k in TABLE8_K if k != 15]
    claims += [Claim(f"{pre}the classification task helps: {k} classes beat none (MAE, Table VIII)", "MAE",
                     k_setting(k), k_setting(0), table) for k in TABLE8_K if k not in (0, 15)]
    return claims


def training_summary(runs: Mapping[tuple[str, int], Mapping[str, Any]]) -> Any:
    """Per setting (mean over seeds): steps, the chosen step, the validation MAE it was chosen with, training
    seconds and images/s, and the density loss term's name (``hef`` or ``l2``) with its last logged value."""
    import pandas as pd

    recs = []
    for (setting, seed), run in runs.items():
        res, cfg = run["result"], run["config"]
        last = res["history"][-1] if res["history"] else {}
        term = "loss_hef" if cfg["use_hef"] else "loss_l2"
        recs.append({"setting": setting, "seed": seed, "steps": res["steps"], "chosen step": res["best_step"],
                     "val MAE (chosen)": res["best_val"]["mae"], "train seconds": res["train_seconds"],
                     "images/s": res["images_per_s"], "density term": term[5:],
                     "last density loss": last.get(term, float("nan"))})
    df = pd.DataFrame(recs)
    terms = df.groupby("setting", sort=False)["density term"].first()
    out = df.drop(columns=["density term"]).groupby("setting", sort=False).mean(numeric_only=True).drop(columns="seed")
    out.insert(0, "density term", terms)
    return out


def train_mean_reference(base: Mapping[str, Any], test_records: Sequence[CrowdRecord],
                         train_records: Sequence[CrowdRecord] | None = None) -> dict[str, float]:
    """The trivial baseline of a set: MAE / MSE (RMSE) on ``test_records`` of predicting every image's count as the
    mean count of the training split of ``base`` (validation images excluded, as in training; the records of
    ``base["data"]`` are read unless ``train_records`` are given). Test counts are only scored."""
    from crowdlib.metrics.counting import constant_count_metrics

    from .train import split_records

    records = list(train_records) if train_records is not None else load_records(base["data"], "train")
    train, _ = split_records(records, make_config(**dict(base)))
    return constant_count_metrics([r.count for r in train], [r.count for r in test_records])


def reference_frame(runs: Mapping[tuple[str, int], Mapping[str, Any]], settings: Sequence[str],
                    baseline: Mapping[str, float]) -> Any:
    """Per setting: test MAE (mean over seeds), the training-mean baseline's MAE, how many seeds beat it, and the
    Pearson correlation of predicted and true test counts (mean and min over seeds): whether the models count
    images at all or sit near a constant (r near 0)."""
    import numpy as np
    import pandas as pd

    from crowdlib.metrics.counting import count_correlation

    recs = []
    for s in settings:
        evs = [run["eval"] for (name, _), run in runs.items() if name == s]
        if not evs:
            continue
        maes = np.array([float(e["mae"]) for e in evs])
        rs = np.array([count_correlation(e["pred"], e["gt"]) for e in evs])
        recs.append({"setting": s, "test MAE": float(maes.mean()), "training-mean MAE": float(baseline["mae"]),
                     "seeds beating it": f"{int((maes < float(baseline['mae'])).sum())} of {len(evs)}",
                     "count r (mean)": float(np.nanmean(rs)) if np.isfinite(rs).any() else float("nan"),
                     "count r (min)": float(np.nanmin(rs)) if np.isfinite(rs).any() else float("nan")})
    return pd.DataFrame(recs).set_index("setting")


def control_comparison(long_by_set: Mapping[str, Any], metrics: Sequence[str] = METRICS) -> Any:
    """The control beside Table VII, one line per set and metric: the full model, "without HEF" (plain L2) and
    :data:`CONTROL` (plain L2 at lr/4), mean over seeds, and the gap of the full model over the control (positive:
    SSR-HEF is better) with its standard error across seeds (paired by seed) and a verdict with the claims' rule
    (SSR-HEF or the control better beyond the noise, within the noise, or noise unknown with one seed). Not a
    paper claim: it never enters the scorecard."""
    import pandas as pd

    from crowdlib.repro import claim_state, gap_and_se

    recs = []
    for name, long in long_by_set.items():
        if CONTROL not in set(long["setting"]):
            continue
        for m in metrics:
            rows = {r.setting: r for r in rows_from_long(long[long.setting.isin([FULL, "without HEF", CONTROL])],
                                                         f"control ({name})", None, [m])}
            gap, se = gap_and_se(rows[FULL], rows[CONTROL])
            state = claim_state(gap, se)
            recs.append({"set": name, "metric": m, FULL: rows[FULL].mean, "without HEF (L2)": rows["without HEF"].mean,
                         CONTROL: rows[CONTROL].mean, "gap SSR-HEF over control": gap,
                         "gap se": float("nan") if se is None else se,
                         "reading": "seed noise unknown (one seed)" if se is None else
                         {"reproduced": "SSR-HEF better, beyond the noise",
                          "contradicted": "the control better, beyond the noise",
                          "inconclusive": "within the noise"}[state]})
    return pd.DataFrame(recs)


def paper_table7_frame() -> Any:
    """Table VII as printed (rows: settings; columns: dataset x MAE / MSE)."""
    import pandas as pd

    cols = {(ds, m): {row: v[m] for row, v in rows.items()} for ds, rows in PAPER_TABLE7.items() for m in METRICS}
    return pd.DataFrame(cols).reindex(list(TABLE7_SETTINGS))
