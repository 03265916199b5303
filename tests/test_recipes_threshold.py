"""recipes.validation_threshold: the IIM explorer's global threshold comes from the training split's validation
images (iim.split_records), never from test scenes."""
import pytest
import torch

from crowdlib.methods import iim
from crowdlib.models.registry import build_model
from crowdlib.recipes import validation_threshold

torch.set_num_threads(1)


def test_validation_threshold_picks_a_candidate_on_the_validation_split():
    cfg = iim.make_config(fpn_channels=8, head_channels=4, pbm_widths=[8, 8, 4], pbm_pool=3, val_fraction=0.5,
                          data={"kind": "synthetic", "presets": ["crowd_b"], "n": 4, "seed": 3, "height": 64,
                                "width": 64})
    recs = iim.load_records(cfg["data"], "train")
    model, _ = build_model({k: v for k, v in cfg.items() if k != "data"})
    model.eval()
    t = validation_threshold(model, cfg, recs, candidates=[0.3, 0.6])
    assert t in (0.3, 0.6)
    _, val = iim.split_records(recs, cfg)
    assert len(val) == 2  # the half carved out for validation is what it was chosen on


def test_resolve_commit_expands_a_short_sha_and_names_an_unknown_one():
    import shutil
    import subprocess

    from crowdlib import paths
    from crowdlib.recipes import resolve_commit

    if shutil.which("git") is None or not (paths.project_root() / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.project_root(), capture_output=True, text=True,
                          check=True).stdout.strip()
    assert resolve_commit(head[:7]) == head and resolve_commit(head) == head
    with pytest.raises(ValueError, match="not a commit"):
        resolve_commit("no-such-revision-xyz")


def test_iim_explorer_config_scales_notebook_20s_steps_and_keeps_its_own_run():
    from crowdlib.recipes import (IIM_EXPLORER_STEPS, IIM_EXPLORER_THREADS, iim_explorer_config,
                                  iim_notebook20_config, notebook_params, recipe_config)

    p = notebook_params("20_iim_ablation", "default")
    nb20 = iim_notebook20_config(0)
    assert iim_explorer_config(p, 0, factor=1, threads=1) == nb20
    assert (nb20["init"]["steps"], nb20["steps"]) == (p["trunk_steps"], p["finetune_steps"])
    ex = recipe_config("iim-synthetic-explorer")
    assert ex["init"]["steps"] == IIM_EXPLORER_STEPS * p["trunk_steps"]
    assert ex["steps"] == IIM_EXPLORER_STEPS * p["finetune_steps"]
    assert ex["threads"] == ex["init"]["threads"] == IIM_EXPLORER_THREADS
    assert ex["sched_total"] == IIM_EXPLORER_STEPS * (p["trunk_steps"] + p["finetune_steps"])
    same = {k for k in nb20 if k not in ("init", "steps", "threads", "sched_offset", "sched_total")}
    assert {k: ex[k] for k in same} == {k: nb20[k] for k in same}  # only the schedule's length and threads differ
    with pytest.raises(ValueError, match="factor"):
        iim_explorer_config(p, 0, factor=0)
