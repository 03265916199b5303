"""Distributed data-parallel training (crowdlib.distributed): two CPU processes under torchrun with gloo."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from crowdlib import distributed
from crowdlib.data.datasets import SeededSampler, make_loader
from crowdlib.repro import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
needs_gloo = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="this torch build has no gloo backend for CPU process groups")


def _run(args: list[str], tmp_path: Path, nproc: int | None) -> str:
    env = dict(os.environ, CROWDLIB_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    launch = [sys.executable] if nproc is None else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                     f"--nproc_per_node={nproc}"]
    proc = subprocess.run(launch + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_rank_shards_of_the_sampler_make_the_single_process_batches() -> None:
    """The union of the ranks' k-th batches of 2 is the single-process k-th batch of 4, seeds included."""
    def batches(rank: int, world: int, b: int) -> list[set]:
        pairs = list(SeededSampler(10, True, torch.Generator().manual_seed(3), rank, world))
        return [set(pairs[i:i + b]) for i in range(0, len(pairs) - b + 1, b)]

    single = batches(0, 1, 4)
    r0, r1 = batches(0, 2, 2), batches(1, 2, 2)
    assert len(r0) == len(r1) == 2
    for k in range(2):
        assert r0[k] | r1[k] == single[k] and not r0[k] & r1[k]
    assert len(SeededSampler(10, True, torch.Generator(), 1, 3)) == 3


def test_bad_rank_and_indivisible_batch_are_named_errors() -> None:
    with pytest.raises(ValueError, match="rank"):
        SeededSampler(4, True, torch.Generator(), rank=2, world_size=2)
    with pytest.raises(ValueError, match="not divisible by world_size"):
        make_loader(list(range(6)), 3, shuffle=True, seed=0, world_size=2)  # type: ignore[arg-type]


def test_alone_the_helpers_change_nothing() -> None:
    assert not distributed.current().enabled and distributed.is_main()
    assert distributed.mean_over_ranks({"loss": 2.0}) == {"loss": 2.0}
    assert float(distributed.shared_denominator(torch.tensor(0.0))) == 1.0
    assert float(distributed.shared_denominator(torch.tensor(5.0))) == 5.0
    model = torch.nn.Linear(2, 1)
    assert distributed.wrap(model, torch.device("cpu")) is model and distributed.unwrap(model) is model
    assert distributed.all_gather_objects({"a": 1}) == [{"a": 1}]


def test_init_without_torchrun_address_says_how_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        distributed.init_from_env("cpu")


def test_replayed_box_updates_equal_the_updating_store() -> None:
    """Rank sync of Crowd-SDNet's pseudo boxes: replaying another store's update rows reproduces its state."""
    from crowdlib.methods.sdnet.store import PseudoBoxStore

    pts = [np.array([[4.0, 4.0], [10.0, 5.0], [20.0, 8.0]]), np.array([[3.0, 3.0]])]
    make = lambda: PseudoBoxStore(pts, [np.array([4.0, 5.0, 6.0]), np.array([3.0])],  # noqa: E731
                                  [np.ones(3), np.ones(1)], prior=0.6)
    a, b = make(), make()
    mark = a.n_history_rows()
    a.refine(0, np.array([0, 2]), np.array([8.0, 9.0]), np.array([0.9, 0.95]), epoch=0, step=1)
    a.refine(1, np.array([0]), np.array([5.0]), np.array([0.8]), epoch=0, step=2)
    b.apply_updates(a.updates_since(mark))
    for x, y in zip(a.state_dict()["sizes"] + a.state_dict()["confidence"] + a.state_dict()["n_updates"],
                    b.state_dict()["sizes"] + b.state_dict()["confidence"] + b.state_dict()["n_updates"]):
        assert torch.equal(x, y)
    assert np.array_equal(a.history(), b.history())


@needs_gloo
def test_two_gloo_processes_train_like_one_process_on_the_global_batch(tmp_path: Path) -> None:
    """Engine + DDP: both ranks end with identical weights, equal to one process's on the same global batch."""
    worker = "tests/workers/ddp_engine_worker.py"
    _run([worker, str(tmp_path)], tmp_path, None)
    _run([worker, str(tmp_path)], tmp_path, 2)
    one, r0, r1 = (torch.load(tmp_path / f, weights_only=True) for f in ("rank0_of1.pt", "rank0_of2.pt",
                                                                          "rank1_of2.pt"))
    for k in one["weights"]:
        assert torch.equal(r0["weights"][k], r1["weights"][k]), k
        torch.testing.assert_close(r0["weights"][k], one["weights"][k], rtol=0, atol=1e-6)
    assert r0["losses"] == r1["losses"]
    np.testing.assert_allclose(r0["losses"], one["losses"], rtol=1e-6)
    assert r0["images"] == one["images"] == 16.0


@needs_gloo
def test_sdnet_trains_under_torchrun_with_ranks_in_sync(tmp_path: Path) -> None:
    """Crowd-SDNet under torchrun: identical weights, BN statistics and pseudo boxes on both ranks; only rank 0
    writes the result; the loss is the one-process loss up to the per-rank BatchNorm statistics (gloo has no
    SyncBatchNorm), measured 0.05% here, asserted within 2%."""
    cfg = {"data": {"source": "synthetic", "presets": [["crowd_b", 12]], "seed": 0, "height": 64, "width": 64},
           "val_fraction": 0.25, "model": {"width": 8, "up_width": 4},
           "refine": {"prior": 0.0},  # every head updates on its first visit: the sync has work to do
           "train": {"epochs": 2, "batch_size": 4, "crop": 64, "max_steps": 2, "warmup_steps": 0},
           "eval": {"batch_size": 4}}
    (tmp_path / "run.json").write_text(json.dumps(cfg))
    tool = ["tools/train_distributed.py", "--config", str(tmp_path / "run.json"), "--no-progress"]
    _run(tool + ["--out", str(tmp_path / "one.pt")], tmp_path, None)
    out = _run(tool + ["--out", str(tmp_path / "two.pt"), "--every-rank"], tmp_path, 2)
    assert out.count("[train_distributed] 2 process(es)") == 1  # rank 0 reports, rank 1 stays quiet
    one, r0, r1 = (load_checkpoint(tmp_path / f) for f in ("one.pt", "two.rank0.pt", "two.rank1.pt"))
    assert (tmp_path / "two.pt").is_file() and r0["world_size"] == 2
    for k in r0["model"]:
        assert torch.equal(r0["model"][k], r1["model"][k]), k
    for a, b in zip(r0["store"]["sizes"], r1["store"]["sizes"]):
        assert torch.equal(a, b)
    assert r0["history"][-1]["n_updated"] == r1["history"][-1]["n_updated"] > 0
    assert r0["count_threshold"] == r1["count_threshold"]
    np.testing.assert_allclose(r0["history"][0]["loss"], one["history"][0]["loss"], rtol=0.02)
