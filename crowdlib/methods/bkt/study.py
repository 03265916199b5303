"""Bi-knowledge transfer studies of notebooks 51-54: the settings of Tables 1-4 as config overrides, their runs through
:func:`crowdlib.study.run_study`, the paper's numbers and the claims restated from its text.

A *setting* is ``{"over": config overrides, "cycle": t, "view": what is scored}`` (:func:`setting`). Every setting x
seed is one transfer run (:func:`~.cycles.run_transfer`, cache ``"bkt"``, stage ``"transfer"``: the cache entry of
:func:`~.cycles.get_or_run_transfer`), scored at cycle ``t`` (``None``: its last) on the **target domain's test
images**, which are only scored; every model choice is made on the source validation split (the library's stages).
Settings that differ only in ``cycle`` or ``view`` share one run: Table 1's RegNet, DetNet and Ours are cycle 0 and
cycle T of the same run, Table 3 is every cycle of that run. The cycles are sequential and deterministic, so cycle
``T`` of a run of ``T' > T`` cycles is the run of ``T`` cycles: notebooks 51-53 share a run of ``max_cycles``.

Views (the paper's columns, :func:`view_metrics`): ``"ours"`` the method's output (Sec. 3.4's test procedure, the
outputs of R_t and D_t fused: ``MAE``/``MSE`` of ``M^R``, ``Det MAE``/``Det MSE``/``mAP`` of ``M^D``; without fusion
R_t and D_t alone); ``"regnet"`` R alone (MAE, MSE; its ``mAP`` is that of Phi(R), which the paper does not give);
``"detnet"`` D alone; ``"phi"`` Phi(R)'s ``mAP`` (Table 4). Every view also keeps the models-alone metrics (``R
MAE``, ``R MSE``, ``D MAE``, ``D MSE``, ``D mAP``, ``Phi mAP``). MSE is the root mean squared error, mAP the paper's
rule (:func:`~.evaluate.paper_point_map`, c = 1..100 px).

The paper's Table 3 row 0 equals Table 1's RegNet and DetNet (R_0 and D_0 alone) and row 4 equals Ours (fused):
:data:`PAPER_TABLE3` puts row 0 beside our models-alone metrics and rows 1-5 beside the fused ones.
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from crowdlib.study import claim_sentences, rows_from_long

from .config import detector_config, make_config, phi_config, regressor_config
from .cycles import cycle_models, run_transfer, score_models
from .data import domain_records
from .train import train_stage

__all__ = ["VIEWS", "PAPER_TEXT", "CITE", "PAPER_TABLE1", "PAPER_TABLE2", "PAPER_TABLE3", "PAPER_TABLE4",
           "PHI_LOSS_NAMES",
           "T1_METRICS", "T2_METRICS", "T3_METRICS", "T4_METRICS", "ALONE_METRICS", "setting", "table1_settings",
           "table2_settings", "table3_settings", "table4_settings", "setting_config", "stage_configs", "train_run",
           "view_metrics", "run_settings", "higher_is_better", "table_rows", "rows_from_long", "cycle_gain_long",
           "table1_claims", "table2_claims", "table3_claims", "table4_claims", "claim_sentences", "paper_table1_frame",
           "cycle_history", "source_summary"]

VIEWS = ("ours", "regnet", "detnet", "phi")
T1_METRICS = ("MAE", "MSE", "mAP")
T2_METRICS = ("MAE", "MSE", "Det MAE", "Det MSE", "mAP")
ALONE_METRICS = ("R MAE", "R MSE", "D MAE", "D MSE", "D mAP", "Phi mAP")
T3_METRICS = T2_METRICS + ALONE_METRICS[:5]
T4_METRICS = ("mAP",)

#: The sentences of the paper (``shared/papers/bi_knowledge_transfer.txt``) each claim restates.
PAPER_TEXT: dict[str, str] = {
    "table1": "\"Compared to our method, they [RegNet, DetNet] are clearly inferior in terms of both counting and "
              "detection accuracy.\" (Sec. 4.4, Table 1)",
    "fusion": "\"by using the fusion, they can be reduced ... the AP increases 19.4%. This demonstrates the importance "
              "of knowledge distillation between the regression and detection networks.\" (Sec. 4.4, Table 2)",
    "selection": "\"our results are significantly better than random sampling (denoted by ours w/RS) for both "
                 "regression and detection results.\" (Sec. 4.4, Table 2)",
    "cycles": "\"both the regression and detection benefit from the iterative cotraining as the iteration increases. "
              "The performance gets stable after several iterations, when the improvement becomes marginal\" "
              "(Sec. 4.4, Table 3)",
    "phi": "\"the proposed focal MSE loss demonstrates a strong superiority over the conventional MSE loss ... adding "
           "the DMS-SSIM loss further improves the result (L_Phi) to the best ... with L_Focal-CE ... they are lower "
           "than using L_Focal-MSE.\" (Sec. 4.5, Table 4)",
}

#: Where each claim's sentence stands (every claim text ends with it; the sentences are :data:`PAPER_TEXT`).
CITE: dict[str, str] = {"table1": "Table 1, Sec. 4.4", "fusion": "Table 2, Sec. 4.4", "selection": "Table 2, Sec. 4.4",
                        "cycles": "Table 3, Sec. 4.4", "phi": "Table 4, Sec. 4.5"}

#: Table 1 (RegNet, DetNet, Ours rows; every transfer of the paper): transfer -> setting -> metric -> value.
PAPER_TABLE1: dict[str, dict[str, dict[str, float]]] = {
    "A→B": {"RegNet": {"MAE": 21.65, "MSE": 37.56}, "DetNet": {"MAE": 55.49, "MSE": 90.03, "mAP": 0.571},
            "Ours": {"MAE": 13.38, "MSE": 29.25, "mAP": 0.757}},
    "A→C": {"RegNet": {"MAE": 419.53, "MSE": 588.90}, "DetNet": {"MAE": 703.72, "MSE": 941.43, "mAP": 0.258},
            "Ours": {"MAE": 368.01, "MSE": 518.92, "mAP": 0.518}},
    "A→Q": {"RegNet": {"MAE": 198.71, "MSE": 329.40}, "DetNet": {"MAE": 411.72, "MSE": 731.37, "mAP": 0.404},
            "Ours": {"MAE": 175.02, "MSE": 294.76, "mAP": 0.546}},
    "B→A": {"RegNet": {"MAE": 148.94, "MSE": 273.86}, "DetNet": {"MAE": 242.76, "MSE": 400.89, "mAP": 0.489},
            "Ours": {"MAE": 112.24, "MSE": 218.18, "mAP": 0.661}},
    "B→Q": {"RegNet": {"MAE": 267.26, "MSE": 477.61}, "DetNet": {"MAE": 411.72, "MSE": 731.37, "mAP": 0.404},
            "Ours": {"MAE": 211.30, "MSE": 381.92, "mAP": 0.535}},
}

#: Table 2 (B→A): regression MAE/MSE, detection MAE/MSE/mAP.
PAPER_TABLE2: dict[str, dict[str, float]] = {
    "Ours w/o Fusion": {"MAE": 146.78, "MSE": 275.35, "Det MAE": 251.75, "Det MSE": 407.04, "mAP": 0.467},
    "Ours w/ RS": {"MAE": 152.19, "MSE": 281.05, "Det MAE": 165.80, "Det MSE": 302.90, "mAP": 0.609},
    "Ours": {"MAE": 112.24, "MSE": 218.18, "Det MAE": 124.12, "Det MSE": 222.42, "mAP": 0.661},
}

_T3 = [(148.94, 273.86, 242.76, 400.89, 0.489), (136.81, 258.38, 172.36, 305.04, 0.598),
       (125.86, 228.31, 138.18, 251.75, 0.621), (114.06, 222.55, 126.86, 231.45, 0.658),
       (112.24, 218.18, 124.12, 222.42, 0.661), (113.06, 220.17, 125.12, 213.26, 0.665)]
#: Table 3 (B→A), per cycle: row 0 (= RegNet, DetNet) beside R_0 and D_0 alone, rows 1-5 beside the fused output.
PAPER_TABLE3: dict[str, dict[str, float]] = {
    f"cycle {t}": dict(zip(("R MAE", "R MSE", "D MAE", "D MSE", "D mAP") if t == 0 else T2_METRICS, v))
    for t, v in enumerate(_T3)}

#: Table 4's encoder-decoder losses: config value of ``phi.loss`` -> the paper's name.
PHI_LOSS_NAMES: dict[str, str] = {"mse": "L_MSE", "focal_mse": "L_Focal-MSE", "focal_ce": "L_Focal-CE",
                                  "focal_mse+dms_ssim": "L_Phi"}
#: Table 4: Phi's mAP at cycle 0 per transfer (A→Q, A→B).
PAPER_TABLE4: dict[str, dict[str, dict[str, float]]] = {
    tr: {name: {"mAP": v} for name, v in zip(PHI_LOSS_NAMES.values(), vals)}
    for tr, vals in (("A→Q", (0.347, 0.423, 0.399, 0.448)), ("A→B", (0.482, 0.599, 0.554, 0.613)))}


# ----------------------------------------------------------------------------------------------- settings
def setting(over: Mapping[str, Any] | None = None, cycle: int | None = None, view: str = "ours") -> dict[str, Any]:
    """One row: ``over`` (config overrides of the base), scored at ``cycle`` (``None``: the run's last) as
    ``view`` (module docstring)."""
    if view not in VIEWS:
        raise ValueError(f"setting: view must be one of {VIEWS}, got {view!r}")
    if cycle is not None and int(cycle) < 0:
        raise ValueError(f"setting: cycle must be >= 0 or None, got {cycle}")
    return {"over": copy.deepcopy(dict(over or {})), "cycle": None if cycle is None else int(cycle), "view": view}


def table1_settings(cycles: int) -> dict[str, dict[str, Any]]:
    """Table 1's rows: RegNet (R_0 alone), DetNet (D_0 alone) and Ours (fused, cycle ``cycles`` = T) of one run."""
    return {"RegNet": setting(cycle=0, view="regnet"), "DetNet": setting(cycle=0, view="detnet"),
            "Ours": setting(cycle=cycles)}


def table2_settings(cycles: int) -> dict[str, dict[str, Any]]:
    """Table 2's rows: without fusion (R_t, D_t fine-tuned on their own outputs, scored alone), with random patch
    selection (fused), and Ours; the two ablations run ``cycles`` (T) cycles, Ours is scored at cycle T."""
    return {"Ours w/o Fusion": setting({"fusion": False, "cycles": int(cycles)}, cycles),
            "Ours w/ RS": setting({"selection": "random", "cycles": int(cycles)}, cycles),
            "Ours": setting(cycle=cycles)}


def table3_settings(max_cycles: int) -> dict[str, dict[str, Any]]:
    """Table 3's rows: cycles 0..``max_cycles`` of the base run."""
    if int(max_cycles) < 0:
        raise ValueError(f"table3_settings: max_cycles must be >= 0, got {max_cycles}")
    return {f"cycle {t}": setting(cycle=t) for t in range(int(max_cycles) + 1)}


def table4_settings(losses: Sequence[str] = tuple(PHI_LOSS_NAMES),
                    forms: Sequence[str] = ("prob",)) -> dict[str, dict[str, Any]]:
    """Table 4's rows: Phi trained with each loss (the source stages only; no cycle is run), Phi(R_0)'s mAP. With
    more than one of ``forms`` (``phi.form``: ``"prob"``, ``"literal"``) each loss has one row per form, named
    ``"<loss> [<form>]"``; :func:`choose_phi_form` keeps the form its source validation prefers."""
    bad = [k for k in losses if k not in PHI_LOSS_NAMES]
    if bad:
        raise ValueError(f"table4_settings: unknown loss(es) {bad}; choose from {list(PHI_LOSS_NAMES)}")
    if not forms or any(f not in ("prob", "literal") for f in forms) or len(set(forms)) != len(forms):
        raise ValueError(f"table4_settings: forms must be distinct values of 'prob', 'literal'; got {list(forms)}")
    if len(forms) == 1:
        return {PHI_LOSS_NAMES[k]: setting({"phi": {"loss": k, "form": forms[0]}, "cycles": 0}, 0, "phi")
                for k in losses}
    return {f"{PHI_LOSS_NAMES[k]} [{f}]": setting({"phi": {"loss": k, "form": f}, "cycles": 0}, 0, "phi")
            for k in losses for f in forms}


def choose_phi_form(long: Any, runs: Mapping[tuple[str, int], Mapping[str, Any]]) -> tuple[Any, Any]:
    """Per loss and seed, keep the row of :func:`table4_settings` whose Phi scored the higher mAP on the SOURCE
    validation split (its model selection; ties: the form listed first); no target image is read.

    Returns ``(long, chosen)``: ``long`` with the kept rows renamed to the loss (``"L_MSE [literal]"`` ->
    ``"L_MSE"``); ``chosen`` a DataFrame (setting, seed) -> form, source validation mAP of each form."""
    import pandas as pd

    recs: dict[tuple[str, int], dict[str, Any]] = {}
    for (name, seed), run in runs.items():
        loss, _, form = str(name).partition(" [")
        if not form:
            raise ValueError(f"choose_phi_form: setting {name!r} is not '<loss> [<form>]'")
        form = form.rstrip("]")
        val = run["source"].get("phi", {}).get("best_val_map")
        rec = recs.setdefault((loss, int(seed)), {"setting": loss, "seed": int(seed), "form": None, "best": None})
        rec[f"val mAP [{form}]"] = val
        if val is not None and (rec["best"] is None or float(val) > rec["best"]):
            rec["best"], rec["form"] = float(val), form
    chosen = pd.DataFrame(list(recs.values())).drop(columns="best").set_index(["setting", "seed"])
    keep = {(f"{loss} [{r['form']}]", seed): loss for (loss, seed), r in recs.items()}
    names = [keep.get((s, int(d))) for s, d in zip(long["setting"], long["seed"])]
    out = long.assign(setting=names)
    return out[out["setting"].notna()].reset_index(drop=True), chosen


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        out[k] = (_deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping)
                  else copy.deepcopy(v))
    return out


def setting_config(base: Mapping[str, Any], over: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The cache config of one row and seed: ``{"stage": "transfer", **make_config(base + over, seed)}`` (nested
    dicts merged key by key), the key :func:`~.cycles.get_or_run_transfer` uses."""
    merged = _deep_merge({k: v for k, v in base.items() if k != "stage"}, over)
    return {"stage": "transfer", **make_config(**{**merged, "seed": int(seed)})}


def _plain(cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k != "stage"}


def stage_configs(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The cache configs of a run's source stages (R, Phi, D), which :func:`train_run` trains first."""
    c = make_config(**_plain(cfg))
    return [regressor_config(c), phi_config(c), {"stage": "detector", "sdnet": detector_config(c)}]


def train_run(cfg: Mapping[str, Any], progress: bool = False) -> dict[str, Any]:
    """The study's ``train``: a source stage config (:func:`stage_configs`) or a transfer config."""
    if cfg.get("stage") == "transfer":
        return run_transfer(cfg, progress=progress)
    return train_stage(cfg)


def view_metrics(scores: Mapping[str, float], view: str) -> dict[str, float]:
    """The metrics of ``view`` from :func:`~.cycles.score_models`' ``scores`` (module docstring)."""
    alone = {k: float(scores[k]) for k in ALONE_METRICS}
    if view == "ours":
        return {**alone, **{k: float(scores[k]) for k in T2_METRICS}}
    if view == "regnet":
        return {**alone, "MAE": alone["R MAE"], "MSE": alone["R MSE"], "mAP": alone["Phi mAP"]}
    if view == "detnet":
        return {**alone, "MAE": alone["D MAE"], "MSE": alone["D MSE"], "mAP": alone["D mAP"]}
    if view == "phi":
        return {**alone, "mAP": alone["Phi mAP"]}
    raise ValueError(f"view_metrics: view must be one of {VIEWS}, got {view!r}")


# ----------------------------------------------------------------------------------------------- runs
def run_settings(settings: Mapping[str, Mapping[str, Any]], base: Mapping[str, Any], seeds: Sequence[int], *,
                 test_records: Sequence[Any] | None = None, map_rule: str = "paper", progress: bool = False,
                 title: str = "BKT", jobs: int | None = None) -> tuple[Any, dict[tuple[str, int], dict[str, Any]]]:
    """Run (or fetch from the ``bkt`` cache) every setting x seed with :func:`crowdlib.study.run_study`, its source
    stages first, and score each on the target test images (``test_records``; default: the test scenes of the
    run's ``target`` domain, which only ever enter here).

    Returns ``(long DataFrame setting, seed, metric, value; runs)``: the view's metrics (:func:`view_metrics`);
    ``runs[(setting, seed)]`` holds ``"config"``, ``"cycle"``, ``"scores"`` (every metric of
    :func:`~.cycles.score_models`), ``"source"`` (the source stages' model selection) and ``"cycles"`` (per cycle
    losses and pseudo-label statistics, without weights).
    """
    from crowdlib.repro import config_hash
    from crowdlib.study import run_study

    if not settings:
        raise ValueError("run_settings: no settings")
    specs = {name: setting(s.get("over"), s.get("cycle"), s.get("view", "ours")) for name, s in settings.items()}
    tests: dict[str, list] = {}
    memo: dict[tuple[str, int], dict[str, float]] = {}

    def config(name: str, seed: int) -> dict[str, Any]:
        return setting_config(base, specs[name]["over"], seed)

    def records_of(cfg: Mapping[str, Any]) -> list:
        if test_records is not None:
            return list(test_records)
        key = config_hash(cfg["target"])
        if key not in tests:
            tests[key] = domain_records(cfg["target"], "test")
        return tests[key]

    def evaluate(name: str, seed: int, cfg: dict[str, Any], res: dict[str, Any]) -> tuple[dict, dict]:
        spec, plain = specs[name], _plain(cfg)
        t = len(res["cycles"]) if spec["cycle"] is None else spec["cycle"]
        key = (config_hash(cfg), t)
        if key not in memo:
            memo[key] = score_models(cycle_models(plain, res, t), plain, records_of(cfg), map_rule=map_rule)
        extra = {"config": plain, "cycle": t, "scores": dict(memo[key]), "source": res.get("source", {}),
                 "d0_threshold": float(res["det_threshold"]),
                 "cycles": [{k: v for k, v in c.items() if k not in ("r_state", "d_state")} for c in res["cycles"]]}
        return view_metrics(memo[key], spec["view"]), extra

    study = run_study(list(specs), seeds, config=config, train=functools.partial(train_run, progress=progress),
                      evaluate=evaluate, cache_name="bkt", title=title, jobs=jobs, depends_on=stage_configs)
    return study.long, {key: run.extra for key, run in study.runs.items()}


def higher_is_better(metric: str) -> bool:
    """Counting errors (any metric naming MAE or MSE) are lower-is-better; mAP and gains higher-is-better."""
    return str(metric).endswith("gain") or not any(k in str(metric) for k in ("MAE", "MSE"))


def table_rows(long: Any, table: str, paper: Mapping[str, Mapping[str, float]] | None = None,
               metrics: Sequence[str] | None = None) -> list:
    """:func:`crowdlib.study.rows_from_long` with this module's metric directions (:func:`higher_is_better`)."""
    return rows_from_long(long, table, paper, metrics, higher_is_better=higher_is_better)


def cycle_gain_long(long: Any, metric: str, last: int) -> Any:
    """Per seed, the improvement of ``metric`` over the first cycle (``cycle 0`` -> ``cycle 1``) and over the last
    (``cycle last-1`` -> ``cycle last``), positive when the cycle improved it; a long table with settings
    ``"first cycle (0→1)"`` and ``"last cycle (N-1→N)"`` and metric ``"<metric> gain"``."""
    import pandas as pd

    if int(last) < 2:
        raise ValueError(f"cycle_gain_long: needs at least 2 cycles to tell the first from the last, got {last}")
    sign = 1.0 if higher_is_better(metric) else -1.0
    sub = long[long.metric == metric]
    val = {t: sub[sub.setting == f"cycle {t}"].set_index("seed")["value"] for t in (0, 1, last - 1, last)}
    recs = []
    for name, (a, b) in (("first cycle (0→1)", (0, 1)), (f"last cycle ({last - 1}→{last})", (last - 1, last))):
        for seed in sorted(set(val[a].index) & set(val[b].index)):
            recs.append({"setting": name, "seed": int(seed), "metric": f"{metric} gain",
                         "value": sign * float(val[b][seed] - val[a][seed])})
    return pd.DataFrame(recs, columns=["setting", "seed", "metric", "value"])


# ----------------------------------------------------------------------------------------------- claims
def _paper_pair(paper: Mapping[str, Mapping[str, float]] | None, better: str, worse: str, metric: str) -> str:
    p = paper or {}
    b, w = p.get(better, {}).get(metric), p.get(worse, {}).get(metric)
    return "" if b is None or w is None else f"; paper: {b:g} vs {w:g}"


def table1_claims(table: str, transfer: str | None = None) -> list:
    """Ours beats RegNet and DetNet on MAE (counts of ``M^R`` against R_0 alone and D_0's detections) and on mAP
    (``M^D`` against D_0 and against Phi(R_0); the paper gives RegNet no mAP), one claim each."""
    from crowdlib.repro import Claim

    paper = PAPER_TABLE1.get(transfer or "", {})
    out = []
    for metric in ("MAE", "mAP"):
        for other in ("RegNet", "DetNet"):
            regnet_map = (metric, other) == ("mAP", "RegNet")
            note = " (RegNet's mAP: Phi(R_0)'s points, not in the paper)" if regnet_map else ""
            out.append(Claim(f"[{transfer or table}] Ours beats {other} on {metric}{note}"
                             f"{_paper_pair(paper, 'Ours', other, metric)} ({CITE['table1']})", metric, "Ours",
                             other, table))
    return out


def table2_claims(table: str) -> list:
    """Fusion beats no fusion, and the paper's patch selection beats random selection, for R (regression MAE) and
    for D (detection mAP)."""
    from crowdlib.repro import Claim

    out = []
    for worse, what, key in (("Ours w/o Fusion", "fusion beats no fusion", "fusion"),
                             ("Ours w/ RS", "our patch selection beats random selection", "selection")):
        for metric, model in (("MAE", "R (regression MAE)"), ("mAP", "D (detection mAP)")):
            out.append(Claim(f"{what} for {model}{_paper_pair(PAPER_TABLE2, 'Ours', worse, metric)} "
                             f"({CITE[key]})", metric, "Ours", worse, table))
    return out


def table3_claims(table: str, cycles: int, max_cycles: int, gain_table: str | None = None) -> list:
    """R and D improve with the cycles (R_T alone beats R_0 alone on MAE, D_T beats D_0 on mAP) and then settle (the
    last cycle's gain is smaller than the first's; with ``max_cycles >= 2`` and a ``gain_table`` of
    :func:`cycle_gain_long` rows)."""
    from crowdlib.repro import Claim

    t = int(cycles)
    if not 1 <= t <= int(max_cycles):
        raise ValueError(f"table3_claims: need 1 <= cycles <= max_cycles, got {cycles}, {max_cycles}")
    out = [Claim(f"R improves with the cycles: R_{t} beats R_0 on MAE (paper: 148.94 at cycle 0, 112.24 at cycle 4; "
                 f"{CITE['cycles']})", "R MAE", f"cycle {t}", "cycle 0", table),
           Claim(f"D improves with the cycles: D_{t} beats D_0 on mAP (paper: 0.489, 0.661; {CITE['cycles']})",
                 "D mAP", f"cycle {t}", "cycle 0", table)]
    n = int(max_cycles)
    if gain_table is not None and n >= 2:
        for metric, paper in (("R MAE", "12.13 vs -0.82"), ("D mAP", "0.109 vs 0.004")):
            out.append(Claim(f"{metric[0]} settles: the first cycle improves {metric} more than the last cycle "
                             f"({n - 1}→{n}) (paper's rows: {paper}; {CITE['cycles']})", f"{metric} gain",
                             "first cycle (0→1)", f"last cycle ({n - 1}→{n})", gain_table))
    return out


def table4_claims(table: str) -> list:
    """On Phi's mAP at cycle 0: focal MSE beats MSE, adding DMS-SSIM (L_Phi) beats focal MSE alone, and focal MSE
    beats focal CE."""
    from crowdlib.repro import Claim

    p = PAPER_TABLE4["A→B"]
    out = []
    for better, worse, what in (("L_Focal-MSE", "L_MSE", "focal MSE beats MSE"),
                                ("L_Phi", "L_Focal-MSE", "adding DMS-SSIM to focal MSE helps"),
                                ("L_Focal-MSE", "L_Focal-CE", "focal MSE beats focal cross-entropy")):
        out.append(Claim(f"{what} (Phi's mAP at cycle 0{_paper_pair(p, better, worse, 'mAP')} on A→B; "
                         f"{CITE['phi']})", "mAP", better, worse, table))
    return out


# ----------------------------------------------------------------------------------------------- summaries
def paper_table1_frame() -> Any:
    """The paper's Table 1 rows RegNet, DetNet, Ours for every transfer (transfers as column groups)."""
    import pandas as pd

    cols = {(tr, m): [PAPER_TABLE1[tr][s].get(m) for s in ("RegNet", "DetNet", "Ours")]
            for tr in PAPER_TABLE1 for m in T1_METRICS}
    return pd.DataFrame(cols, index=["RegNet", "DetNet", "Ours"])


_HISTORY = ("cycle", "r_loss", "d_loss", "det_threshold", "n_r_patches", "n_d_patches", "pseudo_count_mean", "seconds")


def cycle_history(runs: Mapping[tuple[str, int], Mapping[str, Any]]) -> Any:
    """Per run and cycle: R's and D's fine-tuning losses, D's counting threshold after the cycle, patches, the mean
    fused pseudo count and seconds (columns ``setting, seed`` and ``_HISTORY``); runs
    that share a cache entry appear once, under their first setting."""
    import pandas as pd

    recs, seen = [], set()
    for (name, seed), run in runs.items():
        key = (repr(sorted(run["config"].items())), seed)
        if key in seen:
            continue
        seen.add(key)
        for c in run["cycles"]:
            recs.append({"setting": name, "seed": seed, **{k: c.get(k) for k in _HISTORY}})
    return pd.DataFrame(recs, columns=["setting", "seed", *_HISTORY])


def source_summary(runs: Mapping[tuple[str, int], Mapping[str, Any]]) -> Any:
    """Per setting and seed, the source stages' model selection on the source validation split: R's chosen step and
    validation MAE, Phi's chosen step and validation mAP, D's counting threshold as its source training chose it and
    the one D_0 is scored at (the same under ``d_threshold="source"``, refit on the source validation split under
    ``"refit"``)."""
    import pandas as pd

    recs = []
    for (name, seed), run in runs.items():
        src = run["source"]
        recs.append({"setting": name, "seed": seed, "R step": src.get("regressor", {}).get("best_step"),
                     "R val MAE": src.get("regressor", {}).get("best_val_mae"),
                     "Phi step": src.get("phi", {}).get("best_step"),
                     "Phi val mAP": src.get("phi", {}).get("best_val_map"),
                     "D threshold (source training)": src.get("detector", {}).get("count_threshold"),
                     "D_0 threshold (used)": run.get("d0_threshold")})
    return pd.DataFrame(recs).set_index(["setting", "seed"])
