"""Recipes that make the zoo's models (``python -m crowdlib train RECIPE``) and re-measure them (``evaluate``).

A recipe names a notebook and a profile: its run config is built from that notebook's parameters cell with the
profile's values (``params/<profile>/<notebook>.yaml``) by the same library call the notebook makes, for one
setting and seed, so the model is the notebook's own run (the cache shares it). Training goes through the
method's cache (:func:`crowdlib.repro.get_or_train`): a reader who ran the notebook already has it. The recipe
then writes the half-precision zoo file, measures the shipped (half-precision) weights on the recipe's held-out
images, times inference on a 1024x768 image, and writes the card into ``weights/MODELS.json`` / ``MODELS.md``.

| recipe | notebook (profile) | what |
|---|---|---|
| ``sdnet-shb`` | 13 (default) | Crowd-SDNet detector, ShanghaiTech B train; SHB test (316 images) |
| ``sdnet-synthetic-explorer`` | 11 (default), setting "both", seed 0 | the widget model of notebook 90, with the pseudo-box store of its first training images |
| ``iim-synthetic-explorer`` | 20 (default), IIM (PBM, L1 on CP and PBM), seed 0, ``IIM_EXPLORER_STEPS`` x its steps | the widget model of notebook 91 |
"""
from __future__ import annotations

import ast
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crowdlib import paths

__all__ = ["Recipe", "RECIPES", "IIM_EXPLORER_STEPS", "IIM_EXPLORER_THREADS", "iim_explorer_config",
           "iim_notebook20_config", "resolve_commit", "parameters_cell", "notebook_params", "recipe_config",
           "train_recipe", "measure", "explorer_data", "EXPLORER_IMAGES"]

#: training images whose pseudo-box store (and refinement history) the Crowd-SDNet explorer model carries
EXPLORER_IMAGES = 6


def parameters_cell(nb: Path) -> dict[str, tuple[Any, str]]:
    """``{name: (default value, comment)}`` of a notebook's cell tagged ``parameters`` (literals only)."""
    import io
    import tokenize

    cells = json.loads(Path(nb).read_text())["cells"]
    src = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    comments = {tok.start[0]: tok.string for tok in tokenize.generate_tokens(io.StringIO(src).readline)
                if tok.type == tokenize.COMMENT}
    out: dict[str, tuple[Any, str]] = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = (ast.literal_eval(node.value), comments.get(node.lineno, ""))
    return out


def notebook_params(stem: str, profile: str = "default") -> dict[str, Any]:
    """The parameters notebook ``stem`` runs with under ``profile``: its parameters cell, then the profile's YAML.

    Raises:
        FileNotFoundError: the notebook is not in this checkout's ``notebooks/``.
    """
    import yaml

    nb = paths.project_root() / "notebooks" / f"{stem}.ipynb"
    if not nb.is_file():
        raise FileNotFoundError(f"{nb}: recipes need the repository's notebooks/ (a source checkout)")
    out = {k: v for k, (v, _) in parameters_cell(nb).items()}
    yml = paths.project_root() / "params" / profile / f"{stem}.yaml"
    if yml.is_file():
        out.update(yaml.safe_load(yml.read_text()) or {})
    return out


@dataclass(frozen=True)
class Recipe:
    name: str
    kind: str
    notebook: str
    profile: str
    seed: int
    data: str
    description: str
    config: Callable[[dict[str, Any], int], dict[str, Any]]


# --------------------------------------------------------------------------- configs (as the notebooks build them)
def _sdnet_shb_config(p: dict[str, Any], seed: int) -> dict[str, Any]:
    from crowdlib.methods import sdnet

    root = p.get("data_root") or paths.default_data_root("ShanghaiTech")
    if root is None:
        raise FileNotFoundError("recipe sdnet-shb needs ShanghaiTech (shared/data/ShanghaiTech); it is not here")
    return sdnet.shanghaitech_config(str(root), part=p["part"], n_train=p["n_train"], crop=p["crop"],
                                     input_scale=p["input_scale"], epochs=p["epochs"], max_steps=p["max_steps"],
                                     batch_size=p["batch_size"], lr=p["lr"], backbone=p["backbone"],
                                     pretrained=p["pretrained"], width=p["width"], up_width=p["up_width"],
                                     skips=p["skips"], seed=seed, val_every=p["val_every"], schedule=p["schedule"],
                                     threads=p["threads"], nms_candidates=p["nms_candidates"],
                                     size_norm=p["size_norm"])


def _sdnet_synthetic_config(p: dict[str, Any], seed: int) -> dict[str, Any]:
    from crowdlib.methods import sdnet

    keys = ("dataset", "n_train", "image_size", "crop", "epochs", "max_steps", "batch_size", "lr", "width",
            "up_width", "skips", "beta", "region_divisor", "prior", "warmup_epochs", "alpha_cap", "eta", "size_norm",
            "center_weight", "data_seed", "data_root")
    base = sdnet.experiment_config(**{k: p[k] for k in keys})  # notebooks/src/_sdnet_snippets.py BASE_CONFIG
    return sdnet.setting_config(base, "both", seed)


def _iim_synthetic_config(p: dict[str, Any], seed: int) -> dict[str, Any]:
    from crowdlib.methods import iim

    base = iim.make_config(  # notebooks/src/make_20.py base_config_code
        data={"kind": "synthetic", "presets": list(p["presets"]), "n": p["n_train"], "seed": p["data_seed"],
              "height": p["image_size"], "width": p["image_size"]},
        val_fraction=p["val_fraction"], crop=p["crop"], batch_size=p["batch_size"], eval_every=p["eval_every"],
        lr=p["lr"], lr_encoder=p["lr_encoder"], k=p["k"], backbone=p["backbone"], fpn_channels=p["fpn_channels"],
        head_channels=p["head_channels"], head_full_res=p["head_full_res"], pbm_widths=list(p["pbm_widths"]),
        pbm_pool=p["pbm_pool"])
    return iim.setting_config(base, iim.TABLE3_SETTINGS["CP+PBM (L1: CP&PBM) = IIM"][0], seed, p["trunk_steps"],
                              p["finetune_steps"])


#: The IIM explorer model (notebook 91) trains notebook 20's default-profile IIM row for this many times the row's
#: trunk and fine-tune steps, on ``IIM_EXPLORER_THREADS`` threads: at notebook 20's own 600 + 300 steps the row
#: recalls 59% of the validation heads at its count-optimal threshold, and misses about half the heads of a dense
#: scene, too few for a count a reader can trust at first sight (``benchmarks/iim_explorer_steps.py``, validation
#: scenes only).
IIM_EXPLORER_STEPS = 4
IIM_EXPLORER_THREADS = 2


def iim_explorer_config(p: dict[str, Any], seed: int, factor: float = IIM_EXPLORER_STEPS,
                        threads: int = IIM_EXPLORER_THREADS) -> dict[str, Any]:
    """Notebook 20's IIM row (parameters ``p``) with ``factor`` times its trunk and fine-tune steps, trained and
    evaluated on ``threads`` threads (deterministic at that count). ``factor=1, threads=1`` is notebook 20's run."""
    if factor <= 0 or int(threads) < 1:
        raise ValueError(f"iim_explorer_config: factor must be > 0 and threads >= 1, got {factor}, {threads}")
    q = {**p, "trunk_steps": int(round(factor * int(p["trunk_steps"]))),
         "finetune_steps": int(round(factor * int(p["finetune_steps"])))}
    cfg = _iim_synthetic_config(q, seed)
    cfg["threads"] = int(threads)
    if cfg.get("init"):
        cfg["init"] = {**cfg["init"], "threads": int(threads)}
    return cfg


def iim_notebook20_config(seed: int = 0) -> dict[str, Any]:
    """The config of notebook 20's default-profile IIM row (``seed``), as the notebook trains it."""
    return _iim_synthetic_config(notebook_params("20_iim_ablation", "default"), seed)


#: SHA train images the density counter trains on (validation carved from them); the rest are its held-out report
SHA_TRAIN_IMAGES = 270


def _density_sha_config(p: dict[str, Any], seed: int) -> dict[str, Any]:
    """IIM's density-map baseline (GPR-like: MSE on a Gaussian density map x 100; count = integral / 100) on the
    ImageNet MobileNetV2 + FPN confidence network, ShanghaiTech A at half resolution. Not from a notebook: the
    schedule (2,000 steps of 8 crops of 128 px, Adam 5e-4 with poly decay, the last step kept) fits about 10
    minutes of the 2-core CPU."""
    from crowdlib.methods import iim

    root = paths.default_data_root("ShanghaiTech")
    if root is None:
        raise FileNotFoundError("recipe density-sha needs ShanghaiTech (shared/data/ShanghaiTech); it is not here")
    return iim.make_config(model="iim_density", encoder="none", backbone="mobilenet_v2", pretrained=True,
                           data={"kind": "shanghaitech", "root": str(root), "part": "A", "n": SHA_TRAIN_IMAGES},
                           val_fraction=0.1, crop=128, batch_size=8, steps=2000, eval_every=2000, select="last",
                           lr=5e-4, scale_range=[0.4, 0.6], eval_scale=0.5, density_sigma=4.0, seed=seed)


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("sdnet-shb", "sdnet", "13_sdnet_shanghaitech", "default", 0,
           "ShanghaiTech B train (400 images, 10% carved out as validation)",
           "Crowd-SDNet detector (MobileNetV2, ImageNet init, full-resolution decoder with skips) trained from points "
           "only on ShanghaiTech B at half resolution: points, scores and boxes. Also our best SHB localizer.",
           _sdnet_shb_config),
    Recipe("sdnet-synthetic-explorer", "sdnet", "11_sdnet_ablation", "default", 0,
           "synthetic sha_like scenes (80 training images, 640x960), notebook 11's 'both' run",
           "Notebook 90's pseudo-box explorer model: Crowd-SDNet (tiny backbone) with both modules, plus the "
           "pseudo-box store and refinement history of its first training images.",
           _sdnet_synthetic_config),
    Recipe("iim-synthetic-explorer", "iim", "20_iim_ablation", "default", 0,
           "synthetic crowd_a + crowd_b scenes (40 training images, 256 px), notebook 20's IIM row config trained "
           f"{IIM_EXPLORER_STEPS}x its steps",
           "Notebook 91's threshold explorer model: IIM (tiny backbone) with the pixel-level binarization module "
           f"(PBM), L1 on the confidence predictor and the PBM; notebook 20's default-profile IIM row trained for "
           f"{IIM_EXPLORER_STEPS}x its 600 + 300 steps on {IIM_EXPLORER_THREADS} threads.",
           iim_explorer_config),
    Recipe("density-sha", "density", "", "default", 0,
           f"ShanghaiTech A train, its first {SHA_TRAIN_IMAGES} images (10% of them carved out as validation)",
           "Density-map counter (IIM's GPR-like baseline: MobileNetV2 + FPN, ImageNet init, MSE on Gaussian density "
           "maps) trained on ShanghaiTech A at half resolution; the count is the map's integral.",
           _density_sha_config),
)}


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; recipes: {', '.join(RECIPES)}")
    return RECIPES[name]


def recipe_config(name: str) -> dict[str, Any]:
    """The run config of recipe ``name`` (its notebook's parameters under its profile, its setting and seed)."""
    r = _recipe(name)
    return r.config(notebook_params(r.notebook, r.profile) if r.notebook else {}, r.seed)


# --------------------------------------------------------------------------- held-out data of each recipe
def _eval_records(name: str) -> tuple[list[Any], str]:
    r = _recipe(name)
    p = notebook_params(r.notebook, r.profile) if r.notebook else {}
    if name == "density-sha":  # SHA's test split is not in shared/: the train images the recipe never saw
        from crowdlib.data.formats import read_shanghaitech

        recs = read_shanghaitech(recipe_config(name)["data"]["root"], "A", "train")[SHA_TRAIN_IMAGES:]
        return recs, f"ShanghaiTech A train images {SHA_TRAIN_IMAGES + 1}-{SHA_TRAIN_IMAGES + len(recs)} " \
                     f"({len(recs)} images never used for training or selection)"
    if name == "sdnet-shb":
        from crowdlib.data.formats import read_shanghaitech

        root = p.get("data_root") or paths.default_data_root("ShanghaiTech")
        recs = read_shanghaitech(root, p["part"], "test")
        return recs, f"ShanghaiTech {p['part']} test ({len(recs)} images)"
    if name == "sdnet-synthetic-explorer":
        from crowdlib.methods import sdnet

        base = recipe_config(name)
        recs = sdnet.eval_records_for(base, p["n_test"], p["image_size"], p["data_seed"], p["test_seed"])
        return recs, f"{len(recs)} synthetic {p['dataset']} test scenes (test_seed {p['test_seed']})"
    from crowdlib.methods import iim

    cfg = recipe_config(name)
    recs = iim.load_records(dict(cfg["data"], n=p["n_test"], test_seed=p["test_seed"]), "test")
    return recs, f"{len(recs)} synthetic test scenes (test_seed {p['test_seed']})"


def measure(name: str, zm: Any | None = None) -> tuple[dict[str, float], str]:
    """Metrics of the shipped model of recipe ``name`` on its held-out images: ``(metrics, description)``."""
    from crowdlib.counter import predict_one
    from crowdlib.metrics.counting import mae, nae, rmse
    from crowdlib.zoo import load_model

    zm = zm or load_model(name)
    recs, on = _eval_records(name)
    preds = [predict_one(zm, r.load_image(), threshold=-1.0 if zm.kind == "sdnet" else None) for r in recs]
    thr = zm.default_threshold
    if zm.kind == "sdnet":
        from crowdlib.metrics.points import mle, point_ap

        kept = [{"points": p["points"][p["scores"] > thr], "scores": p["scores"][p["scores"] > thr]} for p in preds]
        counts = [len(k["points"]) for k in kept]
        gts = [r.points for r in recs]
        out = {"MAE": mae(counts, [r.count for r in recs]), "RMSE": rmse(counts, [r.count for r in recs]),
               "NAE": nae(counts, [r.count for r in recs]),
               "AP@20px (%)": 100.0 * point_ap([{"points": p["points"], "scores": p["scores"]} for p in preds], gts,
                                               20.0),
               "MLE": mle(kept, gts, radius=20.0)}
    elif zm.kind == "density":
        counts, gt = [p["count"] for p in preds], [r.count for r in recs]
        out = {"MAE": mae(counts, gt), "RMSE": rmse(counts, gt), "NAE": nae(counts, gt)}
    else:
        from crowdlib.methods.iim.infer import score_points

        counts = [p["count"] for p in preds]
        sc = score_points(recs, [p["points"] for p in preds], counts)
        out = {"F1 (%)": 100 * sc["f1"], "Pre (%)": 100 * sc["pre"], "Rec (%)": 100 * sc["rec"],
               "MAE": sc["mae"], "NAE": sc["nae"]}
    return {k: float(v) for k, v in out.items()}, on


def explorer_data(store_state: Mapping[str, Any], n: int = EXPLORER_IMAGES) -> dict[str, Any]:
    """The first ``n`` images of a pseudo-box store (with their refinement history), for the explorer model."""
    import torch

    hist = store_state["history"]
    hist = hist.numpy() if isinstance(hist, torch.Tensor) else np.asarray(hist)
    keep = hist[hist[:, 2] < n] if len(hist) else hist
    out = {k: (list(v[:n]) if isinstance(v, list) else v) for k, v in store_state.items() if k != "history"}
    out["history"] = torch.from_numpy(np.ascontiguousarray(keep, dtype=np.float32))  # float32 halves the file
    return out


# --------------------------------------------------------------------------- train, export, card
def _train(name: str, cfg: dict[str, Any], progress: bool) -> dict[str, Any]:
    if _recipe(name).kind == "sdnet":
        from crowdlib.methods import sdnet

        return sdnet.run_config(cfg, progress=progress)
    from crowdlib.methods import iim

    records = iim.load_records(cfg["data"], "train")
    if cfg["data"].get("kind") == "shanghaitech" and cfg["data"].get("n"):
        records = records[:int(cfg["data"]["n"])]
    return iim.get_or_train_iim(cfg, progress=progress, records=records)


def _cache_view(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """The config as the method's cache stores it (its key is this view's hash)."""
    if _recipe(name).kind == "sdnet":
        from crowdlib.methods.sdnet.study import canonical_config

        return canonical_config(cfg)
    from crowdlib.methods.iim import make_config

    return make_config(**cfg)


def validation_threshold(model: Any, cfg: Mapping[str, Any], train_records: list,
                         candidates: Any = None) -> float:
    """The global IIM threshold with the lowest count MAE on the validation images carved from ``train_records``
    (the split of :func:`crowdlib.methods.iim.train.train_iim`); ties go to the lower threshold."""
    from crowdlib.methods.iim.config import make_config
    from crowdlib.methods.iim.infer import decode_iim, predict_maps
    from crowdlib.methods.iim.train import split_records

    _, val = split_records(train_records, make_config(**dict(cfg)))
    maps = predict_maps(model, val)
    gt = np.array([r.count for r in val], dtype=float)
    best = None
    for t in (np.round(np.arange(0.2, 0.801, 0.05), 2) if candidates is None else candidates):
        err = float(np.mean(np.abs([len(decode_iim(m, float(t))) for m in maps] - gt)))
        if best is None or err < best[0]:
            best = (err, float(t))
    return best[1]


def _inference(name: str, cfg: dict[str, Any], res: Mapping[str, Any]) -> dict[str, Any]:
    if _recipe(name).kind == "sdnet":
        from crowdlib.methods.sdnet.train import default_config, merge_config

        ev = merge_config(default_config(), cfg)["eval"]
        return {"count_threshold": float(res["count_threshold"]), "nms_iou": float(res.get("nms_iou", ev["nms_iou"])),
                "min_score": float(ev["min_score"]), "scale": float(ev["scales"][0])}
    from crowdlib.methods import iim

    if _recipe(name).kind == "density":
        dec = res.get("decode", {}) or {}
        return {"count_threshold": 0.0, "density_scale": float(cfg["density_scale"]),
                "peak_threshold": float(dec.get("threshold", 0.0)), "window": int(dec.get("window", 3)),
                "scale": float(cfg.get("eval_scale", 1.0))}
    model = iim.load_trained(cfg, res, "cpu")
    thr = validation_threshold(model, cfg, iim.load_records(cfg["data"], "train"))
    return {"count_threshold": thr, "learned": cfg.get("encoder", "none") != "none",  # count() decodes with IIM's map
            "scale": float(cfg.get("eval_scale", 1.0))}


def _time_inference(zm: Any) -> float:
    from crowdlib.counter import predict_one
    from crowdlib.repro import fixed_threads

    img = np.random.default_rng(0).integers(0, 255, (768, 1024, 3), dtype=np.uint8)
    with fixed_threads(2):
        predict_one(zm, img)  # warm-up
        t0 = time.perf_counter()
        predict_one(zm, img)
        return time.perf_counter() - t0


def resolve_commit(rev: str) -> str:
    """The full 40-hex SHA of a git revision (``c39fcc8``, ``HEAD~1``...) of this checkout, as model cards store it.

    Raises:
        ValueError: when git does not know ``rev`` (or is not available).
    """
    import re
    import subprocess

    rev = str(rev).strip()
    if re.fullmatch(r"[0-9a-f]{40}", rev):
        return rev
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=paths.project_root(),
                             capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        raise ValueError(f"trained_at {rev!r} is not a commit of this checkout (git rev-parse failed)") from e
    return out


def train_recipe(name: str, *, folder: str | Path | None = None, result_file: str | Path | None = None,
                 trained_at: str | None = None, progress: bool = True, notes: str = "") -> Any:
    """Train (or load from the cache, or from ``result_file``) recipe ``name``'s model, write its zoo file,
    measure it, and write its card. Returns the card.

    ``result_file``: a training result already made with this recipe's config (e.g. the cache entry of the run
    that made ``reports/``); ``trained_at`` then names the git SHA that trained it.
    """
    from crowdlib import zoo
    from crowdlib.repro import config_hash, git_info, load_checkpoint

    r = _recipe(name)
    folder = Path(folder) if folder is not None else zoo.weights_dir()
    cfg = recipe_config(name)
    t0 = time.perf_counter()
    if result_file is not None:  # a cache entry {config, result, git_sha} of this very config, or a bare result
        res = load_checkpoint(result_file)
        if "result" in res and "config" in res:
            if config_hash(res["config"]) != config_hash(_cache_view(name, cfg)):
                raise ValueError(f"{result_file}: its config (hash {config_hash(res['config'])}) is not recipe "
                                 f"{name!r}'s (hash {config_hash(_cache_view(name, cfg))})")
            trained_at = trained_at or res.get("git_sha")
            res = res["result"]
    if trained_at:
        trained_at = resolve_commit(trained_at)
    else:
        res = _train(name, cfg, progress)
    train_s = float(res.get("train_seconds", time.perf_counter() - t0))
    extras = {}
    if name == "sdnet-synthetic-explorer":
        extras["store"] = explorer_data(res["store"])
        extras["config_hash"] = config_hash(cfg)
    file = f"{name}.pt"
    digest = zoo.write_weights(folder / file, kind=r.kind, config=cfg, model_state=res["model"],
                               inference=_inference(name, cfg, res), extras=extras)
    cards = [c for c in zoo.list_models(folder) if c.name != name]
    card = zoo.ModelCard(name=name, file=file, sha256=digest, kind=r.kind, recipe=name, data=r.data,
                         description=r.description, trained_at=trained_at or git_info()["git_sha"] or "unknown", train_seconds=train_s,
                         size_bytes=(folder / file).stat().st_size, notes=notes)
    zoo.save_cards(cards + [card], folder)
    zm = zoo.load_model(name, folder=folder, device="cpu")
    card.metrics, card.metrics_on = measure(name, zm)
    card.seconds_per_image = _time_inference(zm)
    zoo.save_cards(cards + [card], folder)
    return card
