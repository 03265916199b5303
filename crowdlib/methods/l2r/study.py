"""L2R studies of notebooks 40-42: Table 2 (four paradigms x ImageNet initialisation or not), the label-scarcity
curve (counting only against multi-task over labelled fractions, a fixed unlabeled pool), the ShanghaiTech B row,
the grids through :func:`crowdlib.study.run_study`, and the claims restated from the review's text.

Our copy of the paper is a review whose tables are images: no number of Table 2 is legible, so the Table 2 rows
stand without paper numbers and every claim cites the review's sentence. The paper's ShanghaiTech results beside
our SHB row (:data:`PAPER_SHANGHAITECH`) are not in the review either: they are the MAEs that the public
Papers-with-Code listing of the paper gives (Part A 73.6, Part B 13.7), kept apart and named as such.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crowdlib.study import claim_sentences, rows_from_long

from .config import make_config
from .data import LabelledImage
from .infer import evaluate_model, predict_density
from .train import load_trained, train_l2r

__all__ = ["PARADIGM_NAMES", "INITS", "table2_settings", "setting_name", "scarcity_settings", "fraction_name",
           "PAPER_SHANGHAITECH", "PAPER_SOURCE", "REVIEW", "METRICS", "setting_config", "run_settings",
           "rows_from_long", "claim_sentences", "table2_claims", "scarcity_gain_long", "scarcity_claims",
           "shb_claims", "training_summary", "learning_curves"]

#: Paradigm config values and their Table 2 names.
PARADIGM_NAMES: dict[str, str] = {"count": "counting only", "rank_finetune": "ranking, then fine-tune",
                                  "alternate": "alternating", "multitask": "multi-task"}
#: Initialisations: ``pretrained`` of the config and the name in the tables.
INITS: dict[str, bool] = {"ImageNet": True, "scratch": False}

METRICS = ("MAE", "MSE")

#: The review's sentences each claim restates (``shared/papers/l2r_review.txt``).
REVIEW: dict[str, str] = {
    "paradigms": "\"Multi-task training outperforms both fine-tuning and alternating task learning.\" (Table 2)",
    "imagenet": "\"Another important conclusion, in the second row, is the effectiveness of ImageNet pre-trained "
                "weights for training a crowd counting network.\" (Table 2)",
    "multitask": "\"Training on the two tasks, ranking and counting, simultaneously achieves the best result\"; the "
                 "paper's motivation: labelled data are \"scarce and expensive\", so unlabeled data help most where "
                 "labels are few",
}

#: The paper's full-model MAE on ShanghaiTech (Table 4), not legible in the review: from the public Papers-with-Code
#: listing of the paper (see :data:`PAPER_SOURCE`). No MSE is given there.
PAPER_SHANGHAITECH: dict[str, dict[str, float]] = {"Part_A": {"MAE": 73.6}, "Part_B": {"MAE": 13.7}}
PAPER_SOURCE = "paperswithcode.com/paper/leveraging-unlabeled-data-for-crowd-counting (not in our review copy)"


def setting_name(paradigm: str, init: str) -> str:
    """``"multi-task, ImageNet"``."""
    return f"{PARADIGM_NAMES[paradigm]}, {init}"


def table2_settings(paradigms: Sequence[str] = tuple(PARADIGM_NAMES),
                    inits: Sequence[str] = tuple(INITS)) -> dict[str, dict[str, Any]]:
    """Table 2's rows as config overrides: every paradigm with and without ImageNet initialisation. Batch norm
    follows the base's ``freeze_bn``; with its default, ``"pretrained"``, the scratch rows train it (there are no
    ImageNet statistics to keep, and frozen at their initial values MobileNetV2 does not learn: validation MAE 68
    against 39 trained, notebook 41 at e386907) and the ImageNet rows keep it in eval mode."""
    for p in paradigms:
        if p not in PARADIGM_NAMES:
            raise ValueError(f"table2_settings: unknown paradigm {p!r}; choose from {list(PARADIGM_NAMES)}")
    for i in inits:
        if i not in INITS:
            raise ValueError(f"table2_settings: unknown initialisation {i!r}; choose from {list(INITS)}")
    return {setting_name(p, i): {"paradigm": p, "pretrained": INITS[i]}
            for i in inits for p in paradigms}


def fraction_name(paradigm: str, fraction: float) -> str:
    """``"multi-task @ 10%"``."""
    return f"{PARADIGM_NAMES[paradigm]} @ {100 * float(fraction):g}%"


def scarcity_settings(fractions: Sequence[float], paradigms: Sequence[str] = ("count", "multitask")
                      ) -> dict[str, dict[str, Any]]:
    """The label-scarcity grid: each paradigm at each labelled fraction (ImageNet initialisation as the base)."""
    if not fractions or any(not 0 < float(f) <= 1 for f in fractions):
        raise ValueError(f"scarcity_settings: fractions must lie in (0, 1], got {list(fractions)}")
    return {fraction_name(p, f): {"paradigm": p, "labelled_fraction": float(f)} for f in fractions for p in paradigms}


def setting_config(base: Mapping[str, Any], overrides: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The full config of one row and seed: ``base`` with the row's overrides and ``seed``."""
    return make_config(**{**dict(base), **dict(overrides), "seed": int(seed)})


def run_settings(settings: Mapping[str, Mapping[str, Any]], base: Mapping[str, Any], seeds: Sequence[int],
                 test_images: Sequence[LabelledImage], *, progress: bool = False, keep_maps: bool = False,
                 title: str = "L2R", jobs: int | None = None) -> tuple[Any, dict[tuple[str, int], dict[str, Any]]]:
    """Train (or fetch from the ``l2r`` cache) every setting x seed with :func:`crowdlib.study.run_study` and score
    it on ``test_images`` (whole images at the config's ``test_side``; count = the map's sum).

    Returns ``(long DataFrame setting, seed, metric, value; runs)``: metrics ``MAE``, ``MSE`` (root mean squared
    error), ``train_seconds``, ``images_per_s``, ``best_step``, ``val_MAE``; ``runs[(setting, seed)]`` holds
    ``"config"``, ``"result"`` (without weights), ``"eval"`` and, with ``keep_maps``, ``"maps"``. Models are chosen
    on validation images carved from the labelled training images; test images are only scored.
    """
    from crowdlib.study import run_study

    if not test_images:
        raise ValueError("run_settings: no test images")

    def config(name: str, seed: int) -> dict[str, Any]:
        return setting_config(base, settings[name], seed)

    def evaluate(name: str, seed: int, cfg: dict[str, Any], res: dict[str, Any]) -> tuple[dict, dict]:
        model = load_trained(cfg, res)
        maps, counts = predict_density(model, test_images, test_side=int(cfg["test_side"]), progress=progress)
        ev = evaluate_model(model, test_images, counts=counts)
        vals = {"MAE": float(ev["mae"]), "MSE": float(ev["mse"]), "train_seconds": float(res["train_seconds"]),
                "images_per_s": float(res["images_per_s"]), "best_step": float(res["best_step"]),
                "val_MAE": float(res["best_val"]["mae"])}
        extra = {"config": cfg, "result": {k: v for k, v in res.items() if k != "model"}, "eval": ev,
                 **({"maps": maps} if keep_maps else {})}
        return vals, extra

    study = run_study(list(settings), seeds, config=config, train=functools.partial(train_l2r, progress=progress),
                      evaluate=evaluate, cache_name="l2r", title=title, jobs=jobs)
    return study.long, {key: run.extra for key, run in study.runs.items()}


# ----------------------------------------------------------------------------------------------- claims
def table2_claims(inits: Sequence[str] = tuple(INITS), table: str = "2", metric: str = "MAE") -> list:
    """Table 2's directions from the review's text, on ``metric`` (MAE: one reading of each run's outputs):
    multi-task beats ranking-then-fine-tune and beats alternating (per initialisation), and ImageNet
    initialisation beats training from scratch (per paradigm, when both initialisations are in the grid)."""
    from crowdlib.repro import Claim

    claims = [Claim(f"multi-task beats {PARADIGM_NAMES[o]} ({i} init; {metric}, Table 2; review: "
                    f"{REVIEW['paradigms']})", metric, setting_name("multitask", i), setting_name(o, i), table)
              for i in inits for o in ("rank_finetune", "alternate")]
    if "ImageNet" in inits and "scratch" in inits:
        claims += [Claim(f"ImageNet initialisation beats training from scratch ({PARADIGM_NAMES[p]}; {metric}, "
                         f"Table 2; review: {REVIEW['imagenet']})", metric, setting_name(p, "ImageNet"),
                         setting_name(p, "scratch"), table) for p in PARADIGM_NAMES]
    return claims


def scarcity_gain_long(long: Any, fractions: Sequence[float], metric: str = "MAE") -> Any:
    """Per seed, the gain of multi-task over counting only at each fraction (``count - multitask`` of ``metric``;
    positive: multi-task better), as a long table with settings ``"gain @ f%"`` and metric ``"<metric> gain"``."""
    import pandas as pd

    recs = []
    sub = long[long.metric == metric]
    for f in fractions:
        c = sub[sub.setting == fraction_name("count", f)].set_index("seed")["value"]
        m = sub[sub.setting == fraction_name("multitask", f)].set_index("seed")["value"]
        for seed in sorted(set(c.index) & set(m.index)):
            recs.append({"setting": f"gain @ {100 * float(f):g}%", "seed": int(seed), "metric": f"{metric} gain",
                         "value": float(c[seed] - m[seed])})
    return pd.DataFrame(recs, columns=["setting", "seed", "metric", "value"])


def scarcity_claims(fractions: Sequence[float], table: str = "scarcity", gain_table: str = "scarcity gain",
                    metric: str = "MAE") -> list:
    """Multi-task beats counting only at every labelled fraction, and its gain (counting-only MAE minus multi-task
    MAE) is larger at the smallest fraction than at the largest ("most when labels are scarce")."""
    from crowdlib.repro import Claim

    fr = sorted(float(f) for f in fractions)
    claims = [Claim(f"multi-task beats counting only with {100 * f:g}% of the labels ({metric}; review: "
                    f"{REVIEW['multitask']})", metric, fraction_name("multitask", f), fraction_name("count", f), table)
              for f in fr]
    if len(fr) > 1:
        claims.append(Claim(f"multi-task's gain over counting only is larger with {100 * fr[0]:g}% of the labels "
                            f"than with {100 * fr[-1]:g}% ({metric} gain; review: {REVIEW['multitask']})",
                            f"{metric} gain", f"gain @ {100 * fr[0]:g}%", f"gain @ {100 * fr[-1]:g}%", gain_table))
    return claims


def shb_claims(table: str = "SHB", metric: str = "MAE") -> list:
    """On ShanghaiTech B (real images), multi-task with the unlabeled pool beats counting only."""
    from crowdlib.repro import Claim

    return [Claim(f"[SHB] multi-task beats counting only ({metric}; review: {REVIEW['multitask']})", metric,
                  PARADIGM_NAMES["multitask"], PARADIGM_NAMES["count"], table)]


# ----------------------------------------------------------------------------------------------- summaries
def training_summary(runs: Mapping[tuple[str, int], Mapping[str, Any]]) -> Any:
    """Per setting (mean over seeds): steps, the chosen step, its validation MAE, training seconds, images/s,
    labelled training images and pool images."""
    import pandas as pd

    recs = []
    for (setting, seed), run in runs.items():
        res = run["result"]
        recs.append({"setting": setting, "seed": seed, "steps": res["steps"], "chosen step": res["best_step"],
                     "val MAE (chosen)": res["best_val"]["mae"], "train seconds": res["train_seconds"],
                     "images/s": res["images_per_s"], "labelled images": res["n_train"], "pool images": res["n_pool"]})
    df = pd.DataFrame(recs)
    return df.groupby("setting", sort=False).mean(numeric_only=True).drop(columns="seed")


def learning_curves(runs: Mapping[tuple[str, int], Mapping[str, Any]]) -> Any:
    """Validation MAE against the optimizer step of every run: columns ``setting, seed, step, phase, val_mae``."""
    import pandas as pd

    recs = [{"setting": s, "seed": sd, "step": h["step"], "phase": h["phase"], "val_mae": h.get("val_mae", np.nan)}
            for (s, sd), run in runs.items() for h in run["result"]["history"]]
    return pd.DataFrame(recs, columns=["setting", "seed", "step", "phase", "val_mae"])
