"""SSR-HEF analyses of notebooks 32-33: segmentation maps at the three depths (Fig. 7), per-image counts with and
without HEF (Fig. 8), the distribution of the HEF factor over pixels (on a trained model's predictions and on the
ground truth at several density scales), and the parameter count and latency of Table IX."""
from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from crowdlib.data.records import CrowdRecord
from crowdlib.losses.ssrhef import hef_factor, sum_pool_to
from crowdlib.repro import TRAIN_THREADS, fixed_threads

from .infer import image_tensor

__all__ = ["segmentation_maps", "per_image_counts", "model_factor_values", "gt_factor_values", "factor_summary",
           "measure_latency", "table9_frame"]


@torch.no_grad()
def segmentation_maps(model: torch.nn.Module, records: Sequence[CrowdRecord], *,
                      threads: int = TRAIN_THREADS) -> list[list[np.ndarray]]:
    """Fig. 7: per image the three predicted segmentation maps (sigmoid of the SSR heads at 1/2, 1/4, 1/8:
    SM1, SM2, SM3), each cropped to the image's own extent. Raises ``ValueError`` for a model without SSR."""
    out = []
    with fixed_threads(int(threads)):
        model.eval()
        dev = next(model.parameters()).device
        for rec in records:
            img = rec.load_image()
            o = model(image_tensor(img).to(dev))
            if not o.get("seg"):
                raise ValueError("segmentation_maps: the model has no SSR heads (use_ssr=False)")
            maps = []
            for s, logit in zip((2, 4, 8), o["seg"]):
                h, w = -(-img.shape[0] // s), -(-img.shape[1] // s)
                maps.append(torch.sigmoid(logit.float())[0, 0, :h, :w].cpu().numpy())
            out.append(maps)
    return out


def per_image_counts(runs: Mapping[tuple[str, int], Mapping[str, Any]], settings: Sequence[str],
                     seed: int, records: Sequence[CrowdRecord]) -> Any:
    """Fig. 8: a DataFrame with one row per test image (sorted by its true count): ``image``, ``truth`` and the
    predicted count of each setting of ``seed`` (the runs of :func:`~.study.run_settings`)."""
    import pandas as pd

    df = pd.DataFrame({"image": [r.image_id for r in records], "truth": [float(r.count) for r in records]})
    for s in settings:
        df[s] = runs[(s, int(seed))]["eval"]["pred"]
    return df.sort_values("truth", kind="stable").reset_index(drop=True)


@torch.no_grad()
def model_factor_values(model: torch.nn.Module, records: Sequence[CrowdRecord], cfg: Mapping[str, Any], *,
                        threads: int = TRAIN_THREADS) -> dict[str, np.ndarray]:
    """The HEF factor (the config's form and gamma) over every output pixel of a trained model's predictions on
    ``records``, in loss units (the network's raw output, i.e. the scaled density the factor sees during training).

    Returns ``{"factor": (P,), "pred": (P,) raw predictions, "target": (P,) the ground truth on the same grid in
    loss units (sum-pooled to the output stride, times density_scale)}``; pixels of the padding are dropped."""
    from crowdlib.targets.density import density_map

    stride, scale = int(cfg["fuse_stride"]), float(cfg["density_scale"])
    fac, pred, tgt = [], [], []
    with fixed_threads(int(threads)):
        model.eval()
        dev = next(model.parameters()).device
        for rec in records:
            img = rec.load_image()
            d = model(image_tensor(img).to(dev))["density"].float()[0, 0].cpu()
            h, w = -(-img.shape[0] // stride), -(-img.shape[1] // stride)
            d = d[:h, :w]
            gt = torch.from_numpy(density_map(np.asarray(rec.points, np.float64).reshape(-1, 2), img.shape[:2],
                                              sigma=cfg["density_sigma"]))[None, None].float()
            g = sum_pool_to(gt, stride, (h, w))[0, 0] * scale
            fac.append(hef_factor(d, cfg["hef_form"], float(cfg["gamma"])).reshape(-1).numpy())
            pred.append(d.reshape(-1).numpy())
            tgt.append(g.reshape(-1).numpy())
    return {"factor": np.concatenate(fac), "pred": np.concatenate(pred), "target": np.concatenate(tgt)}


def gt_factor_values(records: Sequence[CrowdRecord], cfg: Mapping[str, Any],
                     scales: Sequence[float]) -> dict[float, np.ndarray]:
    """The factor a *perfect* prediction would receive: ``hef_factor`` of the ground truth on the output grid
    (sum-pooled to ``fuse_stride``) times each density scale, over all pixels of ``records``. No network: it
    shows how far the factor can vary at a given scale."""
    from crowdlib.targets.density import density_map

    stride = int(cfg["fuse_stride"])
    pooled = []
    for rec in records:
        shape = rec.load_image().shape[:2]
        gt = torch.from_numpy(density_map(np.asarray(rec.points, np.float64).reshape(-1, 2), shape,
                                          sigma=cfg["density_sigma"]))[None, None].float()
        hw = (-(-shape[0] // stride), -(-shape[1] // stride))
        pooled.append(sum_pool_to(gt, stride, hw).reshape(-1))
    allp = torch.cat(pooled)
    return {float(s): hef_factor(allp * float(s), cfg["hef_form"], float(cfg["gamma"])).numpy() for s in scales}


def factor_summary(values: Mapping[str, np.ndarray], head_mask: Mapping[str, np.ndarray] | None = None) -> Any:
    """Quantiles (1, 10, 50, 90, 99 %) and the max / min ratio of factor arrays, one row per name; with
    ``head_mask`` (name -> boolean array) also the mean factor on head cells and on background cells."""
    import pandas as pd

    recs = []
    for name, v in values.items():
        v = np.asarray(v, np.float64)
        q = np.quantile(v, [0.01, 0.1, 0.5, 0.9, 0.99])
        rec = {"set": name, "pixels": int(v.size), **{f"q{p}": float(x) for p, x in zip((1, 10, 50, 90, 99), q)},
               "q99 / q1": float(q[4] / q[0]) if q[0] > 0 else float("inf")}
        if head_mask is not None and name in head_mask:
            m = np.asarray(head_mask[name], bool)
            rec["mean on head cells"] = float(v[m].mean()) if m.any() else float("nan")
            rec["mean on background"] = float(v[~m].mean()) if (~m).any() else float("nan")
        recs.append(rec)
    return pd.DataFrame(recs).set_index("set")


@torch.no_grad()
def _time_runs(fn: Any, x: torch.Tensor, repeats: int, warmup: int) -> list[float]:
    for _ in range(int(warmup)):
        fn(x)
    times = []
    for _ in range(int(repeats)):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return times


def measure_latency(model: torch.nn.Module, hw: tuple[int, int] = (512, 1024), *, repeats: int = 10,
                    warmup: int = 2, threads: int = 1, compile: bool = False) -> dict[str, Any]:
    """Table IX on this machine: forward time of one ``(1, 3, H, W)`` image (batch 1, eval mode, no gradient), the
    median of ``repeats`` timed runs after ``warmup`` untimed ones, under ``threads`` intra-op threads.

    ``compile=True`` also times ``torch.compile(model)`` (its first call, which compiles, is timed separately);
    any failure is caught and reported in ``"compile_error"``, never raised.

    Returns ``{"eager_s": median, "eager_times": [...], "threads", "input": (H, W)}`` plus, with ``compile``,
    ``"compiled_s"``, ``"compiled_times"``, ``"compile_seconds"`` (the first call) or ``"compile_error"``.
    """
    model = model.eval()
    x = torch.randn(1, 3, int(hw[0]), int(hw[1]), generator=torch.Generator().manual_seed(0))
    x = x.to(next(model.parameters()).device)
    out: dict[str, Any] = {"threads": int(threads), "input": (int(hw[0]), int(hw[1])), "repeats": int(repeats)}
    with fixed_threads(int(threads)):
        times = _time_runs(model, x, repeats, warmup)
        out.update(eager_s=statistics.median(times), eager_times=times)
        if compile:
            try:
                cm = torch.compile(model)
                t0 = time.perf_counter()
                with torch.no_grad():
                    cm(x)
                out["compile_seconds"] = time.perf_counter() - t0
                ctimes = _time_runs(cm, x, repeats, warmup)
                out.update(compiled_s=statistics.median(ctimes), compiled_times=ctimes)
            except Exception as exc:  # noqa: BLE001 - report any compiler failure, never stop the notebook
                out["compile_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    return out


def table9_frame(n_params: int, latency: Mapping[str, Any], paper: Mapping[str, Any], device: str) -> Any:
    """Table IX beside the paper: parameters (M) and time per image (s), ours (eager and, when it ran, compiled)
    and the paper's."""
    import pandas as pd

    h, w = latency["input"]
    rows = [{"model": f"SSR-HEF (ours, eager, {device}, {latency['threads']} thread(s))",
             "parameters (M)": n_params / 1e6, "time (s)": latency["eager_s"], "input": f"{h}x{w}"}]
    if "compiled_s" in latency:
        rows.append({"model": f"SSR-HEF (ours, torch.compile, {device}, {latency['threads']} thread(s))",
                     "parameters (M)": n_params / 1e6, "time (s)": latency["compiled_s"], "input": f"{h}x{w}"})
    ph, pw = paper["input"]
    rows.append({"model": f"SSR-HEF (paper, {paper['device']})", "parameters (M)": paper["parameters (M)"],
                 "time (s)": paper["time (s)"], "input": f"{ph}x{pw}"})
    return pd.DataFrame(rows).set_index("model")
