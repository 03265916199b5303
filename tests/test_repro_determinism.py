"""Deterministic training by construction: the same config trained in two processes with different ambient thread
settings gives bit-identical weights (the study runner fixes the intra-op thread count, every RNG is seeded)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import hashlib, json, sys
import torch

threads = int(sys.argv[1])
torch.set_num_threads(threads)            # the ambient setting a user's machine might have

from crowdlib.methods import iim, sdnet
from crowdlib.study import run_study


def digest(state):
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k]
        if torch.is_tensor(t):
            h.update(k.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


base = sdnet.experiment_config(n_dense=3, n_sparse=3, image_size=96, crop=64, epochs=2, max_steps=2, batch_size=2,
                               width=8, up_width=4)
sd = run_study(["both"], [0], config=lambda s, seed: sdnet.canonical_config(sdnet.setting_config(base, s, seed)),
               train=lambda c: sdnet.train_sdnet(c, progress=False), cache_name="sdnet",
               evaluate=lambda s, seed, c, r: {"threshold": r["count_threshold"]}, log=False)
tiny = {"fpn_channels": 8, "head_channels": 4, "pbm_widths": [8, 8, 4], "pbm_pool": 3, "crop": 64, "batch_size": 2,
        "data": {"kind": "synthetic", "presets": ["crowd_b"], "n": 4, "seed": 3, "height": 96, "width": 96},
        "val_fraction": 0.25, "steps": 3, "eval_every": 3}
ii = run_study(["pbm"], [0], config=lambda s, seed: iim.make_config(encoder=s, seed=seed, **tiny),
               train=lambda c: iim.train_iim(c, progress=False), cache_name="iim",
               evaluate=lambda s, seed, c, r: {"f1": r["best_val"]["f1"]}, log=False)
print(json.dumps({"sdnet": digest(sd.runs[("both", 0)].result["model"]),
                  "sdnet_store": hashlib.sha256(repr(sd.runs[("both", 0)].result["store"]["sizes"]).encode()).hexdigest(),
                  "iim": digest(ii.runs[("pbm", 0)].result["model"]),
                  "threads_after": torch.get_num_threads()}))
"""


def _train_in_subprocess(tmp_path: Path, name: str, threads: int, omp: str) -> dict:
    env = dict(os.environ, CROWDLIB_CACHE=str(tmp_path / name), OMP_NUM_THREADS=omp, MKL_NUM_THREADS=omp,
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("CROWDLIB_TORCH_THREADS", None)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = subprocess.run([sys.executable, str(script), str(threads)], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_retraining_in_another_process_with_other_threads_is_bit_identical(tmp_path):
    a = _train_in_subprocess(tmp_path, "a", threads=1, omp="1")
    b = _train_in_subprocess(tmp_path, "b", threads=2, omp="2")
    assert a["threads_after"] == 1 and b["threads_after"] == 2, "the study must restore the caller's thread count"
    for key in ("sdnet", "sdnet_store", "iim"):
        assert a[key] == b[key], f"{key}: weights differ between 1 and 2 ambient threads"


@pytest.mark.slow
def test_parallel_study_equals_sequential_study(tmp_path, monkeypatch):
    """Runs trained in worker processes are bit-identical to the same runs trained in this process."""
    import functools

    import torch

    from crowdlib.methods import sdnet
    from crowdlib.study import run_study

    base = sdnet.experiment_config(n_dense=2, n_sparse=2, image_size=96, crop=64, epochs=1, max_steps=2, batch_size=2,
                                   width=8, up_width=4)
    kw = dict(config=lambda s, seed: sdnet.canonical_config(sdnet.setting_config(base, s, seed)),
              train=functools.partial(sdnet.train_sdnet, progress=False), evaluate=None, cache_name="sdnet", log=False)
    monkeypatch.setenv("CROWDLIB_CACHE", str(tmp_path / "par"))
    par = run_study(["both", "neither"], [0], jobs=2, **kw)
    monkeypatch.setenv("CROWDLIB_CACHE", str(tmp_path / "seq"))
    seq = run_study(["both", "neither"], [0], jobs=1, **kw)
    for key in seq.runs:
        a, b = par.runs[key].result["model"], seq.runs[key].result["model"]
        assert all(torch.equal(a[k], b[k]) for k in b), key
