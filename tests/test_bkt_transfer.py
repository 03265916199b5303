"""Bi-knowledge transfer end to end on a tiny pair of domains: config errors, one cycle (what it fine-tunes,
determinism), target labels never used, source-only stages, and the scores of a cycle's models."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from crowdlib.data.records import CrowdRecord
from crowdlib.methods import bkt

TINY = dict(
    source={"preset": "shb_like", "n": 4, "seed": 1, "height": 64, "width": 96, "test_n": 2},
    target={"preset": "sha_like", "n": 3, "seed": 2, "height": 64, "width": 96, "test_n": 2},
    val_fraction=0.25,
    regressor={"backbone": "tiny", "pretrained": False, "backend": [8, 8], "steps": 2, "eval_every": 1, "crop": 32,
               "batch_size": 2, "w_ssim": 0.5},
    phi={"backbone": "tiny", "pretrained": False, "widths": [4, 4, 4, 8], "steps": 2, "eval_every": 1, "crop": 32,
         "batch_size": 2},
    detector={"model": {"backbone": "tiny", "pretrained": False, "width": 8},
              "train": {"epochs": 1, "batch_size": 2, "crop": 64, "max_steps": 2, "warmup_steps": 0}},
    patch=32, cycles=1, r_steps=2, d_steps=1, r_lr=1e-3, d_lr=1e-3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny config and its source stages, trained once for the module in its own cache."""
    cache = tmp_path_factory.mktemp("bkt-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CROWDLIB_CACHE", str(cache))
        cfg = bkt.make_config(**TINY)
        bkt.source_models(cfg, cache)
    return cfg, cache


def _models(cfg, cache):
    return bkt.source_models(cfg, cache)


def test_make_config_names_bad_keys():
    with pytest.raises(ValueError, match="unknown config key"):
        bkt.make_config(cycels=3)
    with pytest.raises(ValueError, match="unknown phi key"):
        bkt.make_config(phi={"los": "mse"})
    with pytest.raises(ValueError, match="selection"):
        bkt.make_config(selection="best")
    with pytest.raises(ValueError, match="r_range"):
        bkt.make_config(r_range=[0.7, 0.5])
    with pytest.raises(ValueError, match="multiple of 8"):
        bkt.make_config(patch=100)
    with pytest.raises(ValueError, match="r_context"):
        bkt.make_config(r_context="window")
    with pytest.raises(ValueError, match="d_context"):
        bkt.make_config(d_context="crop")
    assert bkt.make_config()["r_context"] == bkt.make_config()["d_context"] == "image"
    cfg = bkt.make_config(phi={"loss": "mse"})
    assert cfg["phi"]["loss"] == "mse" and cfg["phi"]["threshold"] == 0.2  # nested dicts merge


def test_source_stages_never_see_the_target():
    cfg = bkt.make_config(**TINY)
    for sub in (bkt.regressor_config(cfg), bkt.phi_config(cfg)):
        assert "target" not in sub
    det = bkt.detector_config(cfg)
    assert "target" not in det and det["data"]["presets"] == [["shb_like", 4]]
    assert det["val_fraction"] == cfg["val_fraction"] and det["split_seed"] == cfg["split_seed"]


def test_one_cycle_fine_tunes_the_last_two_layers_of_r_and_all_of_d(tiny):
    cfg, cache = tiny
    models = _models(cfg, cache)
    r0 = copy.deepcopy(models["regressor"].state_dict())
    d0 = copy.deepcopy(models["detector"].state_dict())
    records = bkt.domain_records(cfg["target"], "train")
    out = bkt.transfer_cycles(cfg, models, records)
    assert len(out) == 1 and out[0]["cycle"] == 1
    assert out[0]["n_r_patches"] == 2 * len(records) and out[0]["n_d_patches"] == 2 * len(records)
    r1 = models["regressor"].state_dict()
    tuned = set(out[0]["r_state"])
    assert len(tuned) == 4  # weight and bias of the last back-end conv and of the output conv
    for k, v in r1.items():
        same = torch.equal(v, r0[k])
        assert same != (k in tuned), k
    assert any(not torch.equal(v, d0[k]) for k, v in models["detector"].state_dict().items()
               if v.is_floating_point())
    # deterministic: the same cycle from fresh source models gives the same weights
    again = bkt.transfer_cycles(cfg, _models(cfg, cache), records)
    for k in tuned:
        assert torch.equal(again[0]["r_state"][k], out[0]["r_state"][k])
    assert all(torch.equal(again[0]["d_state"][k], v) for k, v in out[0]["d_state"].items())


def test_target_labels_are_never_used(tiny):
    cfg, cache = tiny
    records = bkt.domain_records(cfg["target"], "train")
    rng = np.random.default_rng(0)
    poisoned = [CrowdRecord(image_id=r.image_id, points=rng.uniform(0, 60, (7, 2)), image=r.image,
                            image_size=r.image_size, meta={"sizes": np.full(7, 99.0)}) for r in records]
    a = bkt.transfer_cycles(cfg, _models(cfg, cache), records)
    b = bkt.transfer_cycles(cfg, _models(cfg, cache), poisoned)
    assert all(torch.equal(a[0]["r_state"][k], v) for k, v in b[0]["r_state"].items())
    assert all(torch.equal(a[0]["d_state"][k], v) for k, v in b[0]["d_state"].items())
    stripped = bkt.unlabeled(records)
    assert all(r.count == 0 and r.boxes is None and not r.meta for r in stripped)
    assert all(np.array_equal(r.image, s.image) for r, s in zip(records, stripped))


def test_run_transfer_and_scores_of_each_cycle(tiny, monkeypatch):
    cfg, cache = tiny
    monkeypatch.setenv("CROWDLIB_CACHE", str(cache))
    res = bkt.get_or_run_transfer(cfg, cache)
    assert len(res["cycles"]) == 1 and set(res["source"]) == {"regressor", "phi", "detector"}
    test = bkt.domain_records(cfg["target"], "test")
    s0 = bkt.score_models(bkt.cycle_models(cfg, res, 0, cache), cfg, test)
    s1 = bkt.score_models(bkt.cycle_models(cfg, res, 1, cache), cfg, test)
    for s in (s0, s1):
        assert {"R MAE", "R MSE", "D MAE", "D MSE", "D mAP", "Phi mAP", "MAE", "MSE", "Det MAE", "Det MSE",
                "mAP"} <= set(s)
        assert all(np.isfinite(v) for v in s.values())
        assert s["MSE"] >= s["MAE"] - 1e-9 and 0.0 <= s["mAP"] <= 1.0
    assert s0["R MAE"] != s1["R MAE"]
    with pytest.raises(ValueError, match="0..1"):
        bkt.cycle_models(cfg, res, 2, cache)


def test_ablation_settings_run(tiny):
    cfg, cache = tiny
    records = bkt.domain_records(cfg["target"], "train")
    for over in ({"fusion": False}, {"selection": "random"}, {"d_score": "map", "r_range_mode": "max"},
                 {"r_context": "patch", "d_context": "patch"}):
        c = bkt.make_config(**{**TINY, **over})
        out = bkt.transfer_cycles(c, _models(c, cache), records)
        assert out[0]["n_r_patches"] == 2 * len(records)


def test_refit_threshold_minimises_the_validation_count_mae_below_the_old_floor(monkeypatch):
    # hand-computed: counts are scores > t; A (2 heads) has [0.9, 0.03, 0.01], B (1 head) [0.8, 0.02]
    # t in [0.02, 0.03) counts 2 and 1 (MAE 0); the lowest grid point there is 0.02; Crowd-SDNet's floor 0.05
    # would count 1 and 1 (MAE 0.5)
    from crowdlib.methods.bkt import cycles

    recs = [CrowdRecord(image_id="a", points=np.zeros((2, 2), np.float32), image=np.zeros((8, 8, 3), np.uint8)),
            CrowdRecord(image_id="b", points=np.zeros((1, 2), np.float32), image=np.zeros((8, 8, 3), np.uint8))]
    scores = {2: np.array([0.9, 0.03, 0.01]), 1: np.array([0.8, 0.02])}
    seen = []

    def fake(detector, image, *, threshold, nms_iou=0.5):
        seen.append(threshold)
        return {"scores": scores[fake.counts.pop(0)]}, None

    fake.counts = [2, 1]
    monkeypatch.setattr(cycles, "run_detector", fake)
    assert cycles.refit_det_threshold(None, recs) == pytest.approx(0.02)
    assert seen == [pytest.approx(0.005)] * 2  # candidates down to the grid's lowest threshold
    fake.counts = [2, 1]
    assert cycles.refit_det_threshold(None, recs, grid=np.arange(0.05, 0.951, 0.01)) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="no validation records"):
        cycles.refit_det_threshold(None, [])


def test_refit_threshold_is_stored_per_cycle_and_read_back(tiny, monkeypatch):
    cfg, cache = tiny
    c = bkt.make_config(**{**TINY, "d_threshold": "refit"})
    with pytest.raises(ValueError, match="source_val"):
        bkt.transfer_cycles(c, _models(c, cache), bkt.domain_records(c["target"], "train"))
    with pytest.raises(ValueError, match="d_threshold"):
        bkt.make_config(d_threshold="target")
    monkeypatch.setenv("CROWDLIB_CACHE", str(cache))
    res = bkt.get_or_run_transfer(c, cache)
    grid = set(np.round(bkt.REFIT_GRID, 4))
    assert round(res["det_threshold"], 4) in grid and round(res["cycles"][0]["det_threshold"], 4) in grid
    # D_0's threshold is the one refit for the *source* detector, not what the last cycle left behind
    m0 = _models(c, cache)
    val = bkt.split_source(bkt.domain_records(c["source"], "train"), c)[1]
    d0 = bkt.refit_det_threshold(m0["detector"], val, nms_iou=float(m0["det_nms_iou"]))
    assert res["det_threshold"] == pytest.approx(d0)
    last = bkt.cycle_models(c, res, len(res["cycles"]), cache)
    assert res["cycles"][-1]["det_threshold"] == pytest.approx(
        bkt.refit_det_threshold(last["detector"], val, nms_iou=float(last["det_nms_iou"])))
    for t, want in ((0, d0), (1, res["cycles"][0]["det_threshold"])):
        assert bkt.cycle_models(c, res, t, cache)["det_threshold"] == pytest.approx(want)
    # the fixed rule keeps D_0's source threshold at every cycle
    fixed = bkt.get_or_run_transfer(cfg, cache)
    src = _models(cfg, cache)["det_threshold"]
    assert fixed["cycles"][0]["det_threshold"] == pytest.approx(src)
    assert bkt.cycle_models(cfg, fixed, 1, cache)["det_threshold"] == pytest.approx(src)


def test_run_transfer_returns_d0s_threshold_not_the_last_cycles(tiny, monkeypatch):
    """Under refit each call of refit_det_threshold yields a new value: D_0 gets the first, cycle t the (t+1)-th;
    the result's ``det_threshold`` (read for D_0 / DetNet) must stay the first after the cycles have run."""
    from crowdlib.methods.bkt import cycles as cyc

    _, cache = tiny
    c = bkt.make_config(**{**TINY, "d_threshold": "refit", "cycles": 2})
    values = iter([0.1, 0.2, 0.3])
    monkeypatch.setattr(cyc, "refit_det_threshold", lambda *a, **k: next(values))
    res = cyc.run_transfer(c, cache)
    assert res["det_threshold"] == pytest.approx(0.1)
    assert [e["det_threshold"] for e in res["cycles"]] == pytest.approx([0.2, 0.3])
    assert [bkt.cycle_models(c, res, t, cache)["det_threshold"] for t in range(3)] == pytest.approx([0.1, 0.2, 0.3])


def test_cycle_detector_loss_is_the_papers_csp_loss_by_default():
    """Sec. 3.1: the paper's D is CSP, "trained with the cross-entropy classification loss and the smooth-L1 loss":
    under ``d_loss="csp"`` (the default) the cycles' loss ignores the crowdedness map; under ``"sdnet"`` the size
    term is Crowd-SDNet's, weighted by it (here every head's |R_j| = 4 against 1)."""
    assert bkt.make_config(**TINY)["d_loss"] == "csp"
    with pytest.raises(ValueError, match="d_loss"):
        bkt.make_config(**{**TINY, "d_loss": "focal"})
    torch.manual_seed(0)
    out = {"center_logits": torch.randn(1, 1, 16, 16), "log_size": torch.randn(1, 1, 16, 16)}
    pos = torch.zeros(1, 1, 16, 16)
    pos[0, 0, 4, 4] = pos[0, 0, 10, 12] = 1.0
    mask = torch.zeros_like(pos)
    mask[0, 0, 3:6, 3:6] = mask[0, 0, 9:12, 11:14] = 1.0
    base = {"center": pos.clone(), "center_pos": pos, "log_size": torch.full_like(pos, 1.5) * mask, "size_mask": mask}
    terms = {}
    for kind in ("csp", "sdnet"):
        crit = bkt.cycle_detector_criterion({**TINY, "d_loss": kind})
        terms[kind] = [crit(out, {**base, "crowdedness": mask * a})["size"] for a in (1.0, 4.0)]
    assert float(terms["csp"][0]) == pytest.approx(float(terms["csp"][1]))
    assert float(terms["sdnet"][0]) == pytest.approx(float(terms["csp"][0]))
    assert float(terms["sdnet"][1]) == pytest.approx(4.0 * float(terms["sdnet"][0]), rel=1e-5)


def test_phi_threshold_refit_minimises_phi_count_mae_on_source_validation(tiny, monkeypatch):
    """``phi_threshold="refit"``: the grid value whose Phi(R) point count is closest (MAE) to the labelled counts;
    the points kept at t are those kept at the grid's lowest value with a score above t."""
    from crowdlib.methods.bkt import infer

    scores = [np.array([0.9, 0.6, 0.35, 0.25]), np.array([0.8, 0.3])]
    calls = iter(scores)
    monkeypatch.setattr(infer, "predict_cells", lambda reg, img: np.zeros((2, 2), np.float32))
    monkeypatch.setattr(infer, "image_tensor", lambda rec, dev="cpu": torch.zeros(1, 3, 16, 16))
    monkeypatch.setattr(infer, "run_phi", lambda phi, d, **k: ({"scores": next(calls)}, None))
    recs = [CrowdRecord(image_id=f"v{i}", image=np.zeros((16, 16, 3), np.uint8),
                        points=np.zeros((c, 2), np.float32)) for i, c in enumerate((3, 1))]
    lin = torch.nn.Linear(1, 1)
    # counts above t: t=0.2 -> 4, 2 (MAE 1); t=0.3 -> 3, 1 (MAE 0, first 0); t=0.4 -> 2, 1 (MAE 0.5)
    assert infer.refit_phi_threshold(lin, lin, recs, grid=[0.4, 0.2, 0.3]) == pytest.approx(0.3)
    calls = iter(scores)
    # no grid: every candidate score is searched; counts 3 and 1 hold for t in [0.3, 0.35), the lowest is 0.3
    assert infer.refit_phi_threshold(lin, lin, recs) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="no validation"):
        infer.refit_phi_threshold(lin, lin, [])
    monkeypatch.undo()  # the real Phi from here on (the refit policy also trains its own Phi stage)
    cfg, cache = tiny
    m = bkt.source_models(cfg, cache)
    assert m["phi_threshold"] == pytest.approx(cfg["phi"]["threshold"])
    monkeypatch.setattr(infer, "refit_phi_threshold", lambda *a, **k: 0.42)
    assert bkt.source_models({**cfg, "phi_threshold": "refit"}, cache)["phi_threshold"] == pytest.approx(0.42)


def test_choose_phi_threshold_is_exact_on_any_scale():
    """The search covers every candidate score and 'keep all', so it finds the count-MAE minimiser whatever Phi's
    scale (raw outputs far below 0.02 or negative logits), ties to the lowest."""
    from crowdlib.methods.bkt.infer import above, choose_phi_threshold

    tiny_scores = [np.array([0.031, 0.012, 0.004]), np.array([0.02, 0.001])]
    # true counts 2 and 1: t in [0.004, 0.012) gives 2 and 1
    assert choose_phi_threshold(tiny_scores, [2, 1]) == pytest.approx(0.004)
    logits = [np.array([-0.5, -3.0, -7.0])]
    assert choose_phi_threshold(logits, [3]) < -7.0  # keep all
    assert choose_phi_threshold(logits, [0]) == pytest.approx(-0.5)
    kept = above({"points": np.arange(6.0).reshape(3, 2), "scores": np.array([0.5, 0.1, 0.3])}, 0.2)
    assert kept["scores"].tolist() == [0.5, 0.3] and kept["points"].tolist() == [[0.0, 1.0], [4.0, 5.0]]


def test_choose_phi_form_keeps_the_source_validation_winner_per_loss_and_seed():
    import pandas as pd

    from crowdlib.methods.bkt import study

    settings = study.table4_settings(["mse", "focal_ce"], ["prob", "literal"])
    assert list(settings) == ["L_MSE [prob]", "L_MSE [literal]", "L_Focal-CE [prob]", "L_Focal-CE [literal]"]
    assert settings["L_MSE [literal]"]["over"]["phi"] == {"loss": "mse", "form": "literal"}
    assert list(study.table4_settings(["mse"])) == ["L_MSE"]
    with pytest.raises(ValueError, match="forms"):
        study.table4_settings(["mse"], ["logit"])
    val = {("L_MSE [prob]", 0): 0.0, ("L_MSE [literal]", 0): 0.8, ("L_MSE [prob]", 1): 0.5,
           ("L_MSE [literal]", 1): 0.5, ("L_Focal-CE [prob]", 0): 0.7, ("L_Focal-CE [literal]", 0): 0.6,
           ("L_Focal-CE [prob]", 1): 0.7, ("L_Focal-CE [literal]", 1): 0.7}
    runs = {k: {"source": {"phi": {"best_val_map": v}}} for k, v in val.items()}
    test_map = {k: float(i) for i, k in enumerate(val)}  # the target numbers play no part in the choice
    long = pd.DataFrame([{"setting": s, "seed": d, "metric": "mAP", "value": test_map[(s, d)]} for s, d in val])
    kept, chosen = study.choose_phi_form(long, runs)
    assert chosen.loc[("L_MSE", 0), "form"] == "literal"
    assert chosen.loc[("L_MSE", 1), "form"] == "prob"  # tie: the form listed first
    assert chosen.loc[("L_Focal-CE", 0), "form"] == "prob"
    got = {(s, d): v for s, d, v in zip(kept["setting"], kept["seed"], kept["value"])}
    assert got == {("L_MSE", 0): test_map[("L_MSE [literal]", 0)], ("L_MSE", 1): test_map[("L_MSE [prob]", 1)],
                   ("L_Focal-CE", 0): test_map[("L_Focal-CE [prob]", 0)],
                   ("L_Focal-CE", 1): test_map[("L_Focal-CE [prob]", 1)]}


def _tiny_regressor(seed=0):
    from crowdlib.models.bkt import DensityRegressor

    torch.manual_seed(seed)
    return DensityRegressor(backbone="tiny", pretrained=False, backend=[8, 8]).eval()


def test_regressor_cells_under_a_patch_in_image_and_patch_context():
    from crowdlib.methods.bkt.cycles import _regressor_batch

    model = _tiny_regressor()
    img = torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(1))
    y, x, p = 16, 32, 32
    with torch.no_grad():
        whole = model(img[None])["density"][0]
        alone = model(img[None, :, y:y + p, x:x + p])["density"][0]
        crops = [(img, np.zeros((p, p), np.float32), (y, x, p)),
                 (img[:, y:y + p, x:x + p], np.zeros((p, p), np.float32), (0, 0, p)),
                 (img[:, :32, :64], np.zeros((p, p), np.float32), (0, 32, p))]  # another shape: one forward each
        got = _regressor_batch(model, crops, np.array([0, 1, 2]))
    assert got.shape == (3, 1, 4, 4)
    tol = {"rtol": 1e-4, "atol": 1e-12}  # an untrained R's densities are ~1e-6
    assert torch.allclose(got[0], whole[:, 2:6, 4:8], **tol)  # the patch's cells of the whole image's map
    assert torch.allclose(got[1], alone, **tol)  # the patch cut out alone
    with torch.no_grad():
        assert torch.allclose(got[2], model(img[None, :, :32, :64])["density"][0][:, 0:4, 4:8], **tol)
    assert not torch.allclose(got[0], got[1], rtol=1e-2, atol=0)  # context changes R's output under the patch


def test_finetune_regressor_in_context_moves_only_the_last_layers_toward_the_patch_target():
    from crowdlib.losses.bkt import DensityLoss

    model = _tiny_regressor()
    before = copy.deepcopy(model.state_dict())
    img = torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(2))
    y, x, p = 32, 64, 32
    target = np.full((p, p), 0.05, np.float32)  # 0.05 per pixel: 3.2 per 8 x 8 cell, far above R's start
    crops = [(img, target, (y, x, p))]
    crit = DensityLoss(1.0, 0.0)

    def patch_count():
        with torch.no_grad():
            return float(model(img[None])["density"][0, 0, y // 8:(y + p) // 8, x // 8:(x + p) // 8].sum())

    c0 = patch_count()
    loss = bkt.finetune_regressor(model, crit, crops, lr=1e-2, layers=2, steps=20, batch=1,
                                  rng=np.random.default_rng(0))
    assert loss > 0 and patch_count() > c0  # the count under the patch rises toward the fused target
    tuned = {id(q) for q in model.last_layers(2)}
    names = {k for k, q in model.named_parameters() if id(q) in tuned}
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]) == (k not in names), k
    assert all(q.requires_grad for q in model.parameters())  # the frozen layers are restored
    assert not model.training


def test_detector_patch_outputs_and_targets_in_image_and_patch_context():
    from crowdlib.methods.bkt.cycles import _detector_patch_outputs, detector_batch
    from crowdlib.methods.sdnet import build_detector

    cfg = bkt.detector_config(bkt.make_config(**TINY))
    cfg = {**cfg, "model": {**cfg["model"], "pretrained": False}}
    torch.manual_seed(0)
    model = build_detector(cfg)[0].eval()
    s = int(model.stride)
    img = torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(3))
    y, x, p = 32, 64, 32
    head = {"points": np.array([[10.0, 12.0]], np.float32), "sizes": np.array([6.0], np.float32),
            "crowdedness": np.array([1.0], np.float32)}
    whole_crop = {"image": img, "at": (y, x, p), **head}
    alone_crop = {"image": img[:, y:y + p, x:x + p].contiguous(), **head}
    xw, tw = detector_batch([whole_crop], s)
    xa, ta = detector_batch([alone_crop], s)
    assert xw.shape == (1, 3, 64, 96) and xa.shape == (1, 3, p, p)
    for k in tw:  # the same targets: the patch's, at the patch's size
        assert torch.equal(tw[k], ta[k]), k
    assert tw["center"].shape[-2:] == (p // s, p // s)
    with torch.no_grad():
        ow = _detector_patch_outputs(model, [whole_crop], xw, s)
        full = model(xw)
        oa = _detector_patch_outputs(model, [alone_crop], xa, s)
        alone = model(xa)
    for k in full:
        assert ow[k].shape == oa[k].shape == tw["center"].shape[:1] + full[k].shape[1:2] + (p // s, p // s)
        assert torch.equal(ow[k], full[k][..., y // s:(y + p) // s, x // s:(x + p) // s])
        assert torch.equal(oa[k], alone[k])
    assert not torch.equal(ow["center_logits"], oa["center_logits"])  # the context reaches the patch's cells
    with pytest.raises(ValueError, match="square"):
        detector_batch([{"image": img, **head}], s)
