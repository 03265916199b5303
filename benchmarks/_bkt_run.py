"""Shared setup of the bi-knowledge transfer probes (``bkt_fusion_probe.py``, ``bkt_context_gap.py``,
``bkt_cycle_drift.py``): the flags that name a run, its config as notebook 51 builds it, and its source models with
D_0's counting threshold as the cycles start (re-chosen on the source validation split under ``d_threshold: refit``).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml


def add_run_args(ap: argparse.ArgumentParser) -> None:
    """``--params``, ``--transfer`` and ``--seed``: the profile, transfer and training seed of the run."""
    ap.add_argument("--params", default="params/default/51_bkt_transfer.yaml", help="profile YAML of notebook 51")
    ap.add_argument("--transfer", nargs=2, default=["B", "A"], metavar=("SRC", "TGT"), help="source and target keys")
    ap.add_argument("--seed", type=int, default=0, help="training seed of the run (its source models and cycles)")


def run_cfg(a: argparse.Namespace) -> dict[str, Any]:
    """The run config of notebook 51's "Ours" for the parsed flags (its cache key is the notebook's)."""
    from crowdlib.methods.bkt.profile import run_config
    from crowdlib.methods.bkt.study import setting_config

    p = yaml.safe_load(Path(a.params).read_text())
    return {k: v for k, v in setting_config(run_config(p, *a.transfer), {}, a.seed).items() if k != "stage"}


def source_setup(cfg: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """The source models of ``cfg`` (trained or cached) and D_0's counting threshold as the cycles start."""
    from crowdlib.methods.bkt.cycles import refit_det_threshold
    from crowdlib.methods.bkt.data import domain_records, split_source
    from crowdlib.methods.bkt.train import source_models

    models = source_models(cfg)
    thr = float(models["det_threshold"])
    if cfg["d_threshold"] == "refit":
        thr = refit_det_threshold(models["detector"], split_source(domain_records(cfg["source"], "train"), cfg)[1],
                                  nms_iou=float(models["det_nms_iou"]))
    return models, thr
