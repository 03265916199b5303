"""Does the synthetic world depend on NumPy's SIMD dispatch? Renders the same scenes twice, in two fresh processes:
once with this host's NumPy dispatch and once with the AVX-512 targets switched off (``NPY_DISABLE_CPU_FEATURES``,
read when NumPy is imported), i.e. as an AVX2-only host would, and compares images and points bit for bit; also
float64 and float32 ``np.exp`` on a grid and a density map. Nothing is trained; no data is read.

Example::

    PYTHONPATH=. python benchmarks/simd_data_check.py --scenes 3

Run on the AMD EPYC host (AVX-512, NumPy 2.4.6 dispatching X86_V4 and AVX512_ICL) on 2026-12-07, scenes 0-2 of
``sha_like`` and ``shb_like`` at seed 1234: points identical; images differ in 3 of 6 scenes, each by one grey
level in one or two pixels (1e-6 to 4e-7 of the values); float64 ``exp`` differs in the last bit on 4.7% of a
grid over [-5, 5]; so do float64 ``log``, ``power``, ``arctan``, ``log1p``, ``expm1``, ``exp2`` and ``log10``
(and most of them in float32), while ``sin``, ``cos``, ``tanh``, ``sqrt``, float32 ``exp`` and ``log`` and the
float32 density map agree bit for bit: rewriting one call would not do, pinning the dispatch would. With ``--train-epochs 10``
(40 scenes, batch 8, 128 px crops, one thread, about 20 s a run) the two detectors' losses agree over epochs
0-2 and part at epoch 3 (4.192536 against 4.192549), ending at 1.413 and 1.518. One grey level in a few pixels is
enough for two trainings to part: the synthetic notebooks made on an AVX-512 host and on an
AVX2-only one need not agree, while the real-data ones (ShanghaiTech, cells) do under crowdlib's torch pin.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import sys, json, numpy as np
from crowdlib.cpu_isa import numpy_simd_info
from crowdlib.data.synthetic import render_scene
from crowdlib.targets.density import density_map
presets, n, seed, out = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
arrays = {}
for preset in presets:
    for i in range(n):
        rec = render_scene(preset, seed, i)
        arrays[f"{preset}/{i}/image"] = np.asarray(rec.image)
        arrays[f"{preset}/{i}/points"] = np.asarray(rec.points)
x = np.linspace(-5.0, 5.0, 100001)
pos = np.linspace(0.001, 50.0, 100001)
for name in ("exp", "log", "power", "arctan", "log1p", "expm1", "exp2", "log10", "sin", "cos", "tanh", "sqrt"):
    arg = pos if name in ("log", "log10", "sqrt", "power", "log1p") else x
    for dt in (np.float64, np.float32):
        a = arg.astype(dt)
        arrays[f"{name} {np.dtype(dt).name}"] = np.power(a, dt(1.7)) if name == "power" else getattr(np, name)(a)
pts = np.random.default_rng(0).uniform(0, 300, (400, 2)).astype(np.float32)
arrays["density map"] = np.asarray(density_map(pts, (320, 320)))
np.savez(out, **arrays)
print(json.dumps(numpy_simd_info()))
"""

_TRAIN_CHILD = r"""
import hashlib, json, sys
from crowdlib.cpu_isa import numpy_simd_info
from crowdlib.methods import sdnet
from crowdlib.repro import fixed_threads
cfg = sdnet.experiment_config(dataset="shb_like", n_train=int(sys.argv[1]), image_size=None, epochs=int(sys.argv[2]),
                              batch_size=8, crop=128)
cfg = sdnet.setting_config(cfg, "both", 0)
with fixed_threads(1):
    res = sdnet.train_sdnet(cfg, progress=False)
h = hashlib.sha1()
for k, v in sorted(res["model"].items()):
    h.update(v.numpy().tobytes())
print(json.dumps({"dispatched": numpy_simd_info()["dispatched"], "weights": h.hexdigest()[:12],
                  "loss": [e["loss"] for e in res["history"]]}))
"""


def _child(code: str, args: list[str], disable: str | None, cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["CROWDLIB_CACHE"] = str(cache)  # fresh scenes and models: nothing rendered by the other process is reused
    if disable:
        env["NPY_DISABLE_CPU_FEATURES"] = disable
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT,
                         check=False)
    if res.returncode != 0:
        raise SystemExit(f"child process failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _render(presets: list[str], n: int, seed: int, out: Path, disable: str | None) -> dict:
    return _child(_CHILD, [",".join(presets), str(n), str(seed), str(out)], disable, out.with_suffix(".cache"))


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[dict]:
    """Per array: the share of values that differ and the largest difference (both 0 when bit-identical)."""
    rows = []
    for key in a:
        x, y = np.asarray(a[key]), np.asarray(b[key])
        if x.shape != y.shape:
            rows.append({"array": key, "dtype": str(x.dtype), "differ_share": 1.0, "max_diff": float("inf")})
            continue
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        rows.append({"array": key, "dtype": str(x.dtype), "differ_share": float((d > 0).mean()),
                     "max_diff": float(d.max()) if d.size else 0.0})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["sha_like", "shb_like"], help="synthetic presets to render")
    ap.add_argument("--scenes", type=int, default=3, help="scenes per preset (indices 0..N-1)")
    ap.add_argument("--seed", type=int, default=1234, help="scene seed")
    ap.add_argument("--disable", default="X86_V4 AVX512_ICL AVX512_SPR",
                    help="NPY_DISABLE_CPU_FEATURES of the second process (default: NumPy 2.4's AVX-512 targets; "
                         "older NumPy spells them AVX512F AVX512_SKX ...)")
    ap.add_argument("--train-epochs", type=int, default=0,
                    help="also train a small Crowd-SDNet detector (shb_like, --train-scenes scenes, one thread) this "
                         "many epochs in each process and compare the weights and per-epoch losses (0: skip)")
    ap.add_argument("--train-scenes", type=int, default=40, help="training scenes of the --train-epochs run")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        host = _render(a.presets, a.scenes, a.seed, Path(tmp) / "host.npz", None)
        other = _render(a.presets, a.scenes, a.seed, Path(tmp) / "other.npz", a.disable)
        with np.load(Path(tmp) / "host.npz") as f1, np.load(Path(tmp) / "other.npz") as f2:
            rows = compare(dict(f1), dict(f2))
    print(f"host dispatch {host['dispatched']} vs {other['dispatched']} (NPY_DISABLE_CPU_FEATURES={a.disable!r})")
    if host["dispatched"] == other["dispatched"]:
        print("the two processes dispatch alike: nothing to compare on this host")
    for r in rows:
        state = ("identical" if r["differ_share"] == 0
                 else f"differs in {r['differ_share']:.2e}, max {r['max_diff']:.3g}")
        print(f"{r['array']:<24} {r['dtype']:<8} {state}")
    if a.train_epochs > 0:
        with tempfile.TemporaryDirectory() as tmp:
            args = [str(a.train_scenes), str(a.train_epochs)]
            runs = [_child(_TRAIN_CHILD, args, None, Path(tmp) / "host"),
                    _child(_TRAIN_CHILD, args, a.disable, Path(tmp) / "other")]
        for r in runs:
            print(f"trained with {r['dispatched']}: weights {r['weights']}, loss per epoch "
                  + ", ".join(f"{x:.6f}" for x in r["loss"]))
        same = runs[0]["weights"] == runs[1]["weights"]
        first = next((i for i, (x, y) in enumerate(zip(runs[0]["loss"], runs[1]["loss"])) if x != y), None)
        print("the trained weights are " + ("identical" if same else
                                            f"different; the losses part at epoch {first}"))


if __name__ == "__main__":
    main()
