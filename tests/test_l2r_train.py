"""L2R training: the paradigm schedules (which loss is active at which step), the labelled fractions and their
validation split, that no label of the unlabeled pool reaches the loss, determinism, and config errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from crowdlib.methods import l2r
from crowdlib.methods.l2r import data as l2r_data
from crowdlib.methods.l2r.train import COUNT, RANK, L2RBatches, phase, schedule, total_steps

TINY = dict(backbone="tiny", pretrained=False, input_size=32, test_side=32, batch_size=2, nest_k=2, steps=2,
            rank_steps=2, eval_every=1, lr=1e-3, alternate_every=1,
            data={"kind": "synthetic", "presets": ["shb_like"], "n": 6, "seed": 1, "height": 48, "width": 64},
            pool=[{"kind": "synthetic", "presets": ["shb_like"], "n": 3, "seed": 2, "height": 48, "width": 64}],
            val_fraction=0.34)


def test_schedules_say_which_loss_is_active_at_each_step():
    base = dict(steps=4, rank_steps=3, alternate_every=2)
    assert schedule(l2r.make_config(paradigm="count", **base)) == [{COUNT}] * 4
    assert schedule(l2r.make_config(paradigm="multitask", **base)) == [{COUNT, RANK}] * 4
    assert schedule(l2r.make_config(paradigm="rank", **base)) == [{RANK}] * 3
    assert schedule(l2r.make_config(paradigm="rank_finetune", **base)) == [{RANK}] * 3 + [{COUNT}] * 4
    assert schedule(l2r.make_config(paradigm="alternate", **base)) == [{RANK}] * 2 + [{COUNT}] * 2 + [{RANK}] * 2 + [{COUNT}] * 2
    odd = l2r.make_config(paradigm="alternate", steps=5, alternate_every=2)
    s = schedule(odd)
    assert total_steps(odd) == 11 and sum(COUNT in p for p in s) == 5 and s[-1] == {COUNT}
    for p in ("count", "multitask", "rank_finetune", "alternate"):  # every counting paradigm: the same counting updates
        assert sum(COUNT in q for q in schedule(l2r.make_config(paradigm=p, **base))) == 4
    with pytest.raises(ValueError, match="outside"):
        phase(l2r.make_config(paradigm="count", steps=4), 4)


def test_batches_hold_the_active_parts_only(tmp_path, monkeypatch):
    monkeypatch.setenv("CROWDLIB_CACHE", str(tmp_path))
    cfg = l2r.make_config(**{**TINY, "paradigm": "rank_finetune", "rank_steps": 1, "steps": 1})
    recs = l2r.load_records(cfg["data"])
    lab = l2r.load_labelled(recs[:3])
    pool = l2r.load_pool(cfg["pool"])
    b = list(L2RBatches(cfg, lab, pool, np.random.default_rng(0), 0, 2))
    assert (b[0]["n_count"], b[0]["n_nests"], b[0]["image"].shape[0]) == (0, 1, 3)
    assert (b[1]["n_count"], b[1]["n_nests"], b[1]["image"].shape[0]) == (2, 0, 2)
    assert b[1]["density"].shape == (2, 1, 2, 2)


def test_paradigms_of_one_seed_draw_the_same_labelled_crops(tmp_path, monkeypatch):
    """Common random numbers: with separate labelled and pool generators, counting only and multi-task see the same
    labelled crops at every step (the nests come on top); with one shared generator they would not."""
    monkeypatch.setenv("CROWDLIB_CACHE", str(tmp_path))
    base = {**TINY, "steps": 3}
    count_cfg, multi_cfg = (l2r.make_config(**{**base, "paradigm": p}) for p in ("count", "multitask"))
    lab = l2r.load_labelled(l2r.load_records(count_cfg["data"])[:4])
    pool = l2r.load_pool(multi_cfg["pool"])

    def run(cfg, shared):
        rng = np.random.default_rng(0)
        return list(L2RBatches(cfg, lab, pool, rng, 0, 3, rank_rng=None if shared else np.random.default_rng(1)))

    count, multi = run(count_cfg, False), run(multi_cfg, False)
    for c, m in zip(count, multi):
        assert m["n_count"] == c["n_count"] == 2 and m["n_nests"] == 1
        assert torch.equal(m["image"][:2], c["image"]) and torch.equal(m["density"], c["density"])
    shared = run(multi_cfg, True)
    assert not all(torch.equal(m["image"][:2], c["image"]) for c, m in zip(count, shared))


def test_every_counting_paradigm_gets_the_same_checkpoints():
    """Validation is scored after every eval_every counting steps: alternating gets no extra checkpoints after its
    ranking blocks; the chunks still end every eval_every steps for the logged history."""
    from crowdlib.methods.l2r.train import checkpoints

    base = dict(steps=300, rank_steps=300, eval_every=60, alternate_every=75)
    n_evals = {}
    for p in ("count", "multitask", "rank_finetune", "alternate"):
        cfg = l2r.make_config(paradigm=p, **base)
        ends, evals = checkpoints(cfg)
        s = schedule(cfg)
        assert evals <= set(ends) and ends[-1] == total_steps(cfg)
        assert set(range(60, total_steps(cfg), 60)) <= set(ends)
        assert [sum(COUNT in q for q in s[:e]) for e in sorted(evals)] == [60, 120, 180, 240, 300]
        n_evals[p] = len(evals)
    assert set(n_evals.values()) == {5}
    assert checkpoints(l2r.make_config(paradigm="count", **base))[0] == [60, 120, 180, 240, 300]
    alt_ends, alt_evals = checkpoints(l2r.make_config(paradigm="alternate", **base))
    assert sorted(alt_evals) == [135, 270, 405, 540, 600] and 135 in alt_ends
    assert checkpoints(l2r.make_config(paradigm="rank", **base)) == ([60, 120, 180, 240, 300], set())


def test_labelled_fractions_are_nested_and_share_validation():
    recs = list(range(40))
    tr_full, va_full = l2r.split_labelled(recs, l2r.make_config(labelled_fraction=1.0, val_fraction=0.2))
    tr_small, va_small = l2r.split_labelled(recs, l2r.make_config(labelled_fraction=0.25, val_fraction=0.2))
    tr_tiny, _ = l2r.split_labelled(recs, l2r.make_config(labelled_fraction=0.01, val_fraction=0.2))
    assert va_full == va_small and len(va_full) == 8 and not set(va_full) & set(tr_full)
    assert len(tr_full) == 32 and len(tr_small) == 8 and len(tr_tiny) == 1
    assert set(tr_tiny) <= set(tr_small) <= set(tr_full)
    with pytest.raises(ValueError, match="at least 2"):
        l2r.split_labelled([0], l2r.make_config())


def test_no_label_of_the_unlabeled_pool_reaches_the_loss(tmp_path, monkeypatch):
    """Two pools with the same pixels and different annotations train bit-identical models; pool items carry no
    annotation at all."""
    monkeypatch.setenv("CROWDLIB_CACHE", str(tmp_path))
    cfg = l2r.make_config(**{**TINY, "paradigm": "multitask"})
    pool_recs = l2r.load_records(cfg["pool"][0])
    assert all(not hasattr(u, "points") for u in l2r.load_pool(cfg["pool"]))
    real = l2r_data.load_records

    def with_labels(points_fn):
        def fake(spec, split="train"):
            recs = real(spec, split)
            if spec is cfg["pool"][0] or spec == cfg["pool"][0]:
                for r in recs:
                    r.points = points_fn(r)
            return recs
        return fake

    results = []
    for fn in (lambda r: np.zeros((0, 2), np.float32),
               lambda r: np.random.default_rng(1).uniform(0, 40, (500, 2)).astype(np.float32)):
        monkeypatch.setattr(l2r_data, "load_records", with_labels(fn))
        monkeypatch.setattr("crowdlib.methods.l2r.train.load_records", with_labels(fn))
        results.append(l2r.train_l2r(cfg, progress=False))
    assert len(pool_recs) == 3 and results[0]["n_pool"] == 3
    for k, v in results[0]["model"].items():
        assert torch.equal(v, results[1]["model"][k]), k


@pytest.mark.parametrize("paradigm", ["count", "rank_finetune", "alternate", "multitask", "rank"])
def test_every_paradigm_trains_deterministically(paradigm, tmp_path, monkeypatch):
    monkeypatch.setenv("CROWDLIB_CACHE", str(tmp_path))
    cfg = l2r.make_config(**{**TINY, "paradigm": paradigm})
    a, b = l2r.train_l2r(cfg, progress=False), l2r.train_l2r(cfg, progress=False)
    assert a["steps"] == total_steps(cfg)
    assert a["best_val"] == b["best_val"] and a["best_step"] == b["best_step"]
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    terms = {k for h in a["history"] for k in h if k.startswith("loss_")}
    assert terms == {"loss_count", "loss_rank"}
    if paradigm == "count":
        assert all(h["loss_rank"] == 0.0 for h in a["history"]) and a["n_pool"] == 0
    if paradigm == "rank":
        assert all(h["loss_count"] == 0.0 for h in a["history"]) and a["best_step"] == a["steps"]
    model = l2r.load_trained(cfg, a)
    test = l2r.load_labelled(l2r.load_records({**cfg["data"], "n": 2, "test_seed": 9}, "test"))
    ev = l2r.evaluate_model(model, test, test_side=32)
    assert np.isfinite(ev["mae"]) and len(ev["pred"]) == 2
    rk = l2r.nest_ranking(model, test, cfg, nests_per_image=2, seed=0)
    assert rk["n_pairs"] == 2 * 2 * 3 and 0 <= rk["accuracy"] <= 1


def test_config_errors():
    with pytest.raises(ValueError, match="unknown config key"):
        l2r.make_config(nope=1)
    with pytest.raises(ValueError, match="paradigm"):
        l2r.make_config(paradigm="both")
    with pytest.raises(ValueError, match="multiple of 16"):
        l2r.make_config(input_size=100)
    with pytest.raises(ValueError, match="labelled_fraction"):
        l2r.make_config(labelled_fraction=0.0)
    with pytest.raises(ValueError, match="crop_range"):
        l2r.make_config(crop_range=[0.8, 0.5])
    with pytest.raises(ValueError, match="pool"):
        l2r.make_config(paradigm="multitask", pool=[])
    with pytest.raises(ValueError, match="test_seed"):
        l2r.load_records({"kind": "synthetic", "seed": 1}, "test")
    with pytest.raises(ValueError, match="unknown data kind"):
        l2r.load_records({"kind": "nope"})


def test_count_target_preserves_counts_and_crops_resize():
    pts = np.array([[1.0, 1.0], [20.0, 5.0], [31.0, 31.0]])
    t0 = l2r.count_target(pts, 32, 0.0)
    assert t0.shape == (2, 2) and t0.sum() == 3 and t0[0, 0] == 1 and t0[0, 1] == 1 and t0[1, 1] == 1
    assert l2r.count_target(pts, 32, 2.0).sum() == pytest.approx(3.0, rel=1e-5)
    img = torch.full((3, 40, 60), 128, dtype=torch.uint8)
    x = l2r.crop_tensors(img, np.array([[0, 0, 40, 40], [10, 10, 20, 20]]), 16)
    assert x.shape == (2, 3, 16, 16)
    e = l2r.eval_tensor(img, 24)
    assert e.shape == (1, 3, 32, 48)  # 24 x 36, padded to multiples of 16
    u8, s = l2r.image_u8(np.zeros((100, 300, 3), np.uint8), 50)
    assert tuple(u8.shape) == (3, 50, 150) and s == 0.5
