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
