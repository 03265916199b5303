"""Crowd-SDNet training loop: determinism under a seed, resume from the atomic checkpoint after an interruption."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import crowdlib.engine
from crowdlib.methods import sdnet


def _cfg() -> dict:
    cfg = sdnet.experiment_config(n_dense=3, n_sparse=3, image_size=64, crop=64, epochs=2, max_steps=1,
                                  batch_size=2, width=8, up_width=4)
    cfg = sdnet.setting_config(cfg, "both", 0)
    cfg["eval"]["batch_size"] = 4
    return cfg


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_training_is_deterministic_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = sdnet.train_sdnet(_cfg(), progress=False, checkpoint_dir=str(tmp_path / "a"))
    again = sdnet.train_sdnet(_cfg(), progress=False, checkpoint_dir=str(tmp_path / "b"))
    assert len(full["history"]) == 2 and 0.05 <= full["count_threshold"] <= 0.95
    for k, v in full["model"].items():
        assert torch.equal(v, again["model"][k]), k
    assert not list((tmp_path / "a").glob("*.pt"))  # the partial checkpoint is removed at the end

    real = crowdlib.engine.train_one_epoch
    calls = {"n": 0}

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated interruption in epoch 1")
        return real(*args, **kwargs)

    monkeypatch.setattr(crowdlib.engine, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sdnet.train_sdnet(_cfg(), progress=False, checkpoint_dir=str(tmp_path / "c"))
    assert len(list((tmp_path / "c").glob("*.pt"))) == 1  # epoch 0 was checkpointed
    monkeypatch.setattr(crowdlib.engine, "train_one_epoch", real)
    resumed = sdnet.train_sdnet(_cfg(), progress=False, checkpoint_dir=str(tmp_path / "c"))
    assert resumed["history"][0]["loss"] == full["history"][0]["loss"]
    for k, v in full["model"].items():
        assert torch.equal(v, resumed["model"][k]), k


def test_stride4_csp_decoder_trains(tmp_path: Path) -> None:
    """The paper's WiderFace network (stride-4 CSP with an offset head) goes through a training step: its offset
    targets no longer collide with the crop origin the dataset stores under ``"offset"``."""
    cfg = sdnet.merge_config(_cfg(), {"model": {"decoder": "csp"}, "train": {"epochs": 1}})
    res = sdnet.train_sdnet(cfg, progress=False, checkpoint_dir=str(tmp_path))
    h = res["history"][-1]
    assert "offset" in h and h["offset"] > 0 and torch.isfinite(torch.tensor(h["loss"]))
    model = sdnet.load_detector(res, cfg, "cpu")
    assert model.stride == 4 and model.offset_head is not None


def test_lone_head_weight_reaches_the_size_loss() -> None:
    """A one-head image's head weighs ``lone_weight`` (authors' 0.1) in the size loss, crowd-aware or not."""
    import numpy as np

    from crowdlib.losses.csp import CSPLoss

    store = sdnet.PseudoBoxStore([np.array([[20.0, 20.0]]), np.array([[10.0, 10.0], [30.0, 30.0], [20.0, 40.0]])],
                                 [np.array([30.0]), np.array([8.0, 8.0, 8.0])],
                                 [np.array([1.0]), np.array([3.0, 3.0, 3.0])])
    assert store.size_scale(0).tolist() == [pytest.approx(0.1)] and store.size_scale(1).tolist() == [1.0] * 3
    again = sdnet.PseudoBoxStore.from_state_dict(store.state_dict())
    assert again.lone_weight == pytest.approx(0.1)
    builder = sdnet.SDNetTargets(store, stride=1, window=1)
    sample = {"index": 0, "keep": [0], "points": np.array([[20.0, 20.0]]), "image": np.zeros((3, 48, 48))}
    t = {k: torch.from_numpy(v)[None] for k, v in builder(sample).items()}
    assert t["size_scale"].sum().item() == pytest.approx(0.1)
    out = {"center_logits": torch.zeros(1, 1, 48, 48), "log_size": torch.zeros(1, 1, 48, 48)}
    plain = float(np.log(30.0)) - 0.5  # smooth-L1 of the log-size error log(30) > 1, one supervised pixel
    for crowd_aware in (False, True):
        size = CSPLoss(crowd_aware=crowd_aware, size_norm="objects")(out, t)["size"].item()
        assert size == pytest.approx(0.1 * plain, rel=1e-5)
        no_scale = CSPLoss(crowd_aware=crowd_aware)(out, {k: v for k, v in t.items() if k != "size_scale"})
        assert no_scale["size"].item() == pytest.approx(plain, rel=1e-5)


def test_validation_curve_keep_best_and_nms_choice(tmp_path: Path) -> None:
    """``val_every`` logs a validation MAE per epoch, ``keep_best`` ends on the epoch with the lowest one, and the
    NMS IoU is one of the validation candidates."""
    import numpy as np

    cfg = sdnet.merge_config(_cfg(), {"train": {"epochs": 3, "val_every": 1, "keep_best": True},
                                      "eval": {"nms_candidates": [0.5, 0.1]}})
    res = sdnet.train_sdnet(cfg, progress=False, checkpoint_dir=str(tmp_path))
    maes = [h["val_mae"] for h in res["history"]]
    assert len(maes) == 3 and all(np.isfinite(maes))
    assert res["best_epoch"] == int(np.argmin(maes))
    assert res["nms_iou"] in (0.5, 0.1)
    assert [h["step"] for h in res["history"]] == [1.0, 2.0, 3.0]
