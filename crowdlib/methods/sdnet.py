"""Crowd-SDNet self-training: pseudo-box store, confidence- and order-aware refinement, training and evaluation.

The pieces (paper Sec. III-B to III-D, Algorithm 1):

- :class:`PseudoBoxStore` keeps, per training image, the current pseudo box side ``s_j`` (pixels of the
  original image), its stored confidence ``P(b_j)`` (all start at ``prior`` = 0.6), the LUDA crowdedness ``|R_j|``,
  the initial sizes, and a history of every update ``(epoch, step, image, head, old size, new size, old conf,
  new conf)``. It is initialised from LUDA, GAK, or (for an upper bound) the true sizes.
- :func:`refine_rule` is Algorithm 1 as a pure function. ``rule="paper"``: update a box iff the posterior at its
  ground-truth centre exceeds the stored confidence (size and confidence both replaced). ``rule="authors"``: the
  authors' code's variant (posterior > prior and >= stored confidence). ``rule="psddn"``: PSDDN's rule for
  comparison: take the predicted size when it is smaller than the stored one and the posterior exceeds
  ``min_score`` (confidence is left unchanged).
- :class:`SDNetTargets` is the dataset target builder: it reads the CURRENT sizes from the store, maps them into the
  augmented crop with the sample's ``keep`` / ``scale`` record, and calls :func:`crowdlib.targets.csp.csp_targets`;
  refinement after one epoch therefore changes the next epoch's targets.
- :class:`Refiner` is the ``after_step`` hook of :func:`crowdlib.engine.train_one_epoch`: it reads the detached
  outputs at each crop's ground-truth centres, maps predicted sizes back to the original image (divide by the
  sample's ``scale``; flips and crop offsets do not change sizes), and updates the store.
- :func:`train_sdnet` trains one configuration (resumable, checkpointable plain dict for
  :func:`crowdlib.repro.get_or_train`); :func:`predict_sdnet` / :func:`evaluate_sdnet` decode boxes and score them.

Crowdedness bins of Fig. 4: ``[0, 1]``, ``(1, 4]``, ``(4, 14]``, ``> 14`` (:data:`CROWD_BINS`).

Choices where the paper is silent or a CPU budget forces a departure (all are config keys):

- Optimiser: Adam as in the paper, but with a per-iteration cosine schedule and a short linear warm-up
  (``train.schedule``, ``train.warmup_steps``) and gradient clipping (``train.max_norm``); the paper trains for
  200k iterations at a constant rate from ImageNet weights, the synthetic runs train a small network from scratch
  for a few hundred steps.
- Decoder width: the paper's 256 channels everywhere; ``model.width`` / ``model.up_width`` let a CPU run keep the
  full-resolution blocks narrow.
- Counting: detections with score strictly above the threshold chosen on the validation split
  (:func:`crowdlib.decode.choose_count_threshold`).
- Size loss normalisation: number of supervised pixels (paper Eq. 6, ``size_norm="objects"``) or the sum of alpha
  (``"alpha"``); size error absolute (paper) or relative (authors' code).
- Experiment helpers for notebooks 10-13 (:func:`experiment_config`, :func:`run_settings`, table builders) live at
  the end of this module; :func:`run_config` caches every trained run with :func:`crowdlib.repro.get_or_train`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from crowdlib.repro import fixed_threads

__all__ = [
    "CROWD_BINS", "BIN_LABELS", "crowd_bin", "refine_rule", "initial_sizes", "PseudoBoxStore",
    "SDNetTargets", "sdnet_prepare_batch", "Refiner", "default_config", "merge_config", "ABLATION_SETTINGS",
    "load_records", "build_detector", "recalibrate_bn", "train_sdnet", "MultiScale", "decode_csp", "predict_sdnet",
    "choose_threshold", "synthetic_size_bins", "load_detector", "count_errors", "evaluate_detections",
    "evaluate_sdnet", "pseudo_boxes", "pseudo_box_quality", "PAPER_TABLE2", "PAPER_TABLE3", "PAPER_SHB",
    "run_config", "setting_config", "run_settings", "size_init_metrics", "rows_from_long", "table3_claims",
    "claim_sentences", "table2_quality", "final_losses", "train_records_of", "refinement_curves",
    "experiment_config", "eval_records_for", "synthetic_test_records", "describe_run_device", "quality_by_preset",
    "fig4_rows", "shanghaitech_config", "evaluate_points", "mean_train_count",
]

#: Upper edges of Fig. 4's crowdedness bins ``[0, 1]``, ``(1, 4]``, ``(4, 14]``, ``(14, inf)``.
CROWD_BINS: tuple[float, ...] = (1.0, 4.0, 14.0, math.inf)
BIN_LABELS: tuple[str, ...] = ("[0,1]", "(1,4]", "(4,14]", ">14")

RefineRuleName = Literal["paper", "authors", "psddn"]


def crowd_bin(crowdedness: np.ndarray) -> np.ndarray:
    """Index 0..3 of each crowdedness value in :data:`CROWD_BINS` (right-closed intervals)."""
    c = np.asarray(crowdedness, dtype=np.float64)
    return np.searchsorted(np.asarray(CROWD_BINS[:-1]), c, side="left").astype(np.int64)


def refine_rule(stored_size: np.ndarray, stored_conf: np.ndarray, pred_size: np.ndarray, posterior: np.ndarray, *,
                rule: RefineRuleName = "paper", prior: float = 0.6,
                min_score: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One application of the refinement rule to arrays of boxes; returns ``(new_size, new_conf, updated)``.

    - ``"paper"`` (Algorithm 1): ``updated = posterior > stored_conf``; updated boxes take the predicted size and
      the posterior as their new confidence. Confidence therefore never decreases.
    - ``"authors"``: ``updated = (posterior > prior) & (posterior >= stored_conf)``.
    - ``"psddn"``: ``updated = (pred_size < stored_size) & (posterior > min_score)``; confidence unchanged.
    """
    s = np.asarray(stored_size, dtype=np.float32)
    c = np.asarray(stored_conf, dtype=np.float32)
    ps = np.asarray(pred_size, dtype=np.float32)
    q = np.asarray(posterior, dtype=np.float32)
    if not (s.shape == c.shape == ps.shape == q.shape):
        raise ValueError(f"refine_rule: shapes differ: sizes {s.shape}, conf {c.shape}, pred {ps.shape}, "
                         f"posterior {q.shape}")
    if rule == "paper":
        upd = q > c
    elif rule == "authors":
        upd = (q > prior) & (q >= c)
    elif rule == "psddn":
        upd = (ps < s) & (q > min_score)
    else:
        raise ValueError(f"refine_rule: rule must be 'paper', 'authors' or 'psddn', got {rule!r}")
    upd &= np.isfinite(ps) & (ps > 0)
    new_s = np.where(upd, ps, s).astype(np.float32)
    new_c = c if rule == "psddn" else np.where(upd, q, c).astype(np.float32)
    return new_s, new_c, upd


def initial_sizes(points: np.ndarray, image_height: int, method: str = "luda",
                  params: Mapping[str, Any] | None = None,
                  true_sizes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Initial pseudo sizes and crowdedness ``|R_j|`` of one image.

    ``method``: ``"luda"`` (:func:`crowdlib.targets.pseudo_sizes.luda_sizes` with ``params``), ``"gak"`` (nearest
    neighbour distances, :func:`~crowdlib.targets.pseudo_sizes.gak_sizes` with ``params``; crowdedness is still the
    LUDA region count so that crowdedness bins stay comparable), or ``"true"`` (``true_sizes``, an upper bound).
    """
    from crowdlib.targets.pseudo_sizes import gak_sizes, luda_sizes

    params = dict(params or {})
    luda_keys = ("K", "beta", "r", "min_size", "max_size", "neighbor_limit", "eta", "max_weight")
    luda = luda_sizes(points, image_height, **{k: v for k, v in params.items() if k in luda_keys})
    if method == "luda":
        return luda.sizes.astype(np.float32), luda.crowdedness.astype(np.float32)
    if method == "gak":
        gak_keys = ("k", "beta", "lone_size", "min_size", "max_size")
        gp = {k: v for k, v in params.get("gak", {}).items() if k in gak_keys}
        return gak_sizes(points, **gp).astype(np.float32), luda.crowdedness.astype(np.float32)
    if method == "true":
        if true_sizes is None:
            raise ValueError("initial_sizes(method='true') needs true_sizes")
        ts = np.asarray(true_sizes, dtype=np.float32).reshape(-1)
        if len(ts) != len(points):
            raise ValueError(f"initial_sizes: {len(ts)} true sizes for {len(points)} points")
        return ts, luda.crowdedness.astype(np.float32)
    raise ValueError(f"initial_sizes: method must be 'luda', 'gak' or 'true', got {method!r}")


class PseudoBoxStore:
    """Pseudo box sizes, confidences, crowdedness and update history for every training image.

    Sizes are square box sides in pixels of the ORIGINAL image; boxes are centred on the annotated points.
    ``state_dict()`` returns plain tensors/lists (loadable with ``weights_only=True``).
    """

    _HIST_COLS = ("epoch", "step", "image", "head", "old_size", "new_size", "old_conf", "new_conf")

    def __init__(self, points: Sequence[np.ndarray], sizes: Sequence[np.ndarray], crowdedness: Sequence[np.ndarray],
                 *, prior: float = 0.6, image_ids: Sequence[str] | None = None) -> None:
        if not (len(points) == len(sizes) == len(crowdedness)):
            raise ValueError(f"PseudoBoxStore: {len(points)} point sets, {len(sizes)} size sets, "
                             f"{len(crowdedness)} crowdedness sets")
        if not 0.0 <= prior < 1.0:
            raise ValueError(f"PseudoBoxStore: prior must lie in [0, 1), got {prior}")
        self.prior = float(prior)
        self.points = [np.asarray(p, dtype=np.float32).reshape(-1, 2) for p in points]
        self.sizes = [np.asarray(s, dtype=np.float32).reshape(-1).copy() for s in sizes]
        self.init_sizes = [s.copy() for s in self.sizes]
        self.crowdedness = [np.asarray(c, dtype=np.float32).reshape(-1) for c in crowdedness]
        for i, (p, s, c) in enumerate(zip(self.points, self.sizes, self.crowdedness)):
            if not (len(p) == len(s) == len(c)):
                raise ValueError(f"PseudoBoxStore: image {i}: {len(p)} points, {len(s)} sizes, {len(c)} crowdedness")
            if len(s) and (not np.all(np.isfinite(s)) or np.any(s <= 0)):
                raise ValueError(f"PseudoBoxStore: image {i}: sizes must be finite and > 0")
        self.confidence = [np.full(len(s), self.prior, dtype=np.float32) for s in self.sizes]
        self.n_updates = [np.zeros(len(s), dtype=np.int64) for s in self.sizes]
        self.image_ids = list(image_ids) if image_ids is not None else [str(i) for i in range(len(points))]
        self._history: list[np.ndarray] = []

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_records(cls, records: Sequence[Any], method: str = "luda", params: Mapping[str, Any] | None = None, *,
                     prior: float = 0.6) -> "PseudoBoxStore":
        """Initialise from :class:`~crowdlib.data.records.CrowdRecord` s with :func:`initial_sizes`."""
        pts, szs, crs, ids = [], [], [], []
        for rec in records:
            h = rec.image_size[0] if rec.image_size is not None else rec.load_image().shape[0]
            true = None
            if method == "true":
                if rec.boxes is None:
                    raise ValueError(f"{rec.image_id}: method='true' needs true boxes")
                true = np.sqrt(np.clip((rec.boxes[:, 2] - rec.boxes[:, 0]) * (rec.boxes[:, 3] - rec.boxes[:, 1]),
                                       1.0, None))
            s, c = initial_sizes(rec.points, h, method, params, true)
            pts.append(rec.points)
            szs.append(s)
            crs.append(c)
            ids.append(rec.image_id)
        return cls(pts, szs, crs, prior=prior, image_ids=ids)

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def n_boxes(self) -> int:
        """Total number of pseudo boxes."""
        return int(sum(len(s) for s in self.sizes))

    # ------------------------------------------------------------------ access
    def boxes(self, index: int, which: Literal["current", "init"] = "current") -> np.ndarray:
        """``(N, 4)`` float32 square boxes of image ``index`` (current or initial sizes)."""
        s = self.sizes[index] if which == "current" else self.init_sizes[index]
        p = self.points[index]
        half = s[:, None] / 2.0
        return np.concatenate([p - half, p + half], axis=1).astype(np.float32)

    def history(self) -> np.ndarray:
        """All updates as an ``(U, 8)`` float64 array with columns :attr:`_HIST_COLS`."""
        if not self._history:
            return np.zeros((0, len(self._HIST_COLS)), dtype=np.float64)
        return np.concatenate(self._history, axis=0)

    def sizes_at_epoch(self, index: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Sizes and confidences of image ``index`` as they were at the END of ``epoch`` (-1: initial)."""
        s = self.init_sizes[index].copy()
        c = np.full(len(s), self.prior, dtype=np.float32)
        h = self.history()
        if len(h):
            sel = h[(h[:, 2] == index) & (h[:, 0] <= epoch)]
            if len(sel):  # rows are in time order: the last write per head wins
                heads = sel[:, 3].astype(np.int64)
                s[heads] = sel[:, 5]
                c[heads] = sel[:, 7]
        return s, c

    # ------------------------------------------------------------------ refinement
    def refine(self, index: int, heads: np.ndarray, pred_sizes: np.ndarray, posteriors: np.ndarray, *,
               rule: RefineRuleName = "paper", min_score: float = 0.5, epoch: int = 0, step: int = 0) -> int:
        """Apply :func:`refine_rule` to heads ``heads`` of image ``index``; record and return the number updated.

        ``pred_sizes`` are in original-image pixels (the caller undoes the augmentation's rescale).
        """
        heads = np.asarray(heads, dtype=np.int64).reshape(-1)
        if len(heads) == 0:
            return 0
        n = len(self.sizes[index])
        if heads.min() < 0 or heads.max() >= n:
            raise ValueError(f"PseudoBoxStore.refine: head index out of range for image {index} with {n} heads")
        old_s = self.sizes[index][heads]
        old_c = self.confidence[index][heads]
        new_s, new_c, upd = refine_rule(old_s, old_c, pred_sizes, posteriors, rule=rule, prior=self.prior,
                                        min_score=min_score)
        if not upd.any():
            return 0
        h = heads[upd]
        self.sizes[index][h] = new_s[upd]
        self.confidence[index][h] = new_c[upd]
        self.n_updates[index][h] += 1
        k = int(upd.sum())
        rec = np.empty((k, len(self._HIST_COLS)), dtype=np.float64)
        rec[:, 0], rec[:, 1], rec[:, 2], rec[:, 3] = epoch, step, index, h
        rec[:, 4], rec[:, 5], rec[:, 6], rec[:, 7] = old_s[upd], new_s[upd], old_c[upd], new_c[upd]
        self._history.append(rec)
        return k

    # ------------------------------------------------------------------ statistics
    def bin_stats(self, epoch: int | None = None) -> dict[str, float]:
        """Per crowdedness bin: share of boxes refined at least once, and (with ``epoch``) share updated in it.

        Keys ``refined_share/<bin>``, ``updated_share/<bin>`` and ``n/<bin>`` for each label of :data:`BIN_LABELS`.
        """
        crowd = np.concatenate(self.crowdedness) if self.crowdedness else np.zeros(0)
        nup = np.concatenate(self.n_updates) if self.n_updates else np.zeros(0, np.int64)
        bins = crowd_bin(crowd)
        upd_epoch = np.zeros(len(crowd), dtype=bool)
        if epoch is not None and self._history:
            h = self.history()
            h = h[h[:, 0] == epoch]
            offsets = np.cumsum([0] + [len(s) for s in self.sizes])
            flat = offsets[h[:, 2].astype(np.int64)] + h[:, 3].astype(np.int64)
            upd_epoch[flat] = True
        out: dict[str, float] = {}
        for b, label in enumerate(BIN_LABELS):
            m = bins == b
            n = int(m.sum())
            out[f"n/{label}"] = float(n)
            out[f"refined_share/{label}"] = float((nup[m] > 0).mean()) if n else float("nan")
            if epoch is not None:
                out[f"updated_share/{label}"] = float(upd_epoch[m].mean()) if n else float("nan")
        return out

    # ------------------------------------------------------------------ (de)serialisation
    def state_dict(self) -> dict[str, Any]:
        """Plain containers only (tensors, lists, numbers, strings) for ``weights_only`` checkpoints."""
        return {
            "prior": self.prior,
            "image_ids": list(self.image_ids),
            "points": [torch.from_numpy(p.copy()) for p in self.points],
            "sizes": [torch.from_numpy(s.copy()) for s in self.sizes],
            "init_sizes": [torch.from_numpy(s.copy()) for s in self.init_sizes],
            "crowdedness": [torch.from_numpy(c.copy()) for c in self.crowdedness],
            "confidence": [torch.from_numpy(c.copy()) for c in self.confidence],
            "n_updates": [torch.from_numpy(n.copy()) for n in self.n_updates],
            "history": torch.from_numpy(self.history()),
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "PseudoBoxStore":
        """Rebuild a store saved with :meth:`state_dict`."""
        def arr(x: Any) -> np.ndarray:
            return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)

        st = cls([arr(p) for p in state["points"]], [arr(s) for s in state["init_sizes"]],
                 [arr(c) for c in state["crowdedness"]], prior=float(state["prior"]), image_ids=state["image_ids"])
        st.sizes = [arr(s).astype(np.float32).copy() for s in state["sizes"]]
        st.confidence = [arr(c).astype(np.float32).copy() for c in state["confidence"]]
        st.n_updates = [arr(n).astype(np.int64).copy() for n in state["n_updates"]]
        hist = arr(state["history"]).astype(np.float64)
        st._history = [hist] if len(hist) else []
        return st


# =====================================================================================================================
# targets and refinement hooks
# =====================================================================================================================
TARGET_KEYS = ("center", "center_pos", "log_size", "size_mask", "crowdedness", "offset", "offset_mask")


class SDNetTargets:
    """Dataset target builder reading the CURRENT pseudo sizes from a :class:`PseudoBoxStore`.

    For a transformed sample (``index`` = position in the store, ``keep`` = kept source heads, ``scale`` = resize
    factor) the crop's sizes are ``store.sizes[index][keep] * scale``; maps come from
    :func:`crowdlib.targets.csp.csp_targets` with the crowdedness ``|R_j|`` written into the size window
    (``"crowdedness"``, turned into ``alpha`` by the loss) and ``"size_mask"`` = 1 where a size is supervised.
    All maps get a leading channel axis.
    """

    def __init__(self, store: PseudoBoxStore, stride: int, window: int = 5, offset: bool = False) -> None:
        self.store = store
        self.stride = int(stride)
        self.window = int(window)
        self.offset = bool(offset)

    def __call__(self, sample: Mapping[str, Any]) -> dict[str, np.ndarray]:
        from crowdlib.targets.csp import csp_targets

        idx = int(sample["index"])
        keep = np.asarray(sample["keep"], dtype=np.int64).reshape(-1)
        pts = np.asarray(sample["points"], dtype=np.float32).reshape(-1, 2)
        if len(keep) != len(pts):
            raise ValueError(f"SDNetTargets: sample {sample.get('image_id')}: {len(keep)} keep indices for "
                             f"{len(pts)} points")
        scale = float(sample.get("scale", 1.0))
        sizes = np.maximum(self.store.sizes[idx][keep] * scale, 1e-3)
        crowd = np.maximum(self.store.crowdedness[idx][keep], 1.0)
        h, w = (int(v) for v in sample["image"].shape[-2:])
        t = csp_targets(pts, sizes, (h, w), stride=self.stride, crowdedness=crowd, window=self.window,
                        offset=self.offset)
        out = {
            "center": t["center"][None], "center_pos": t["center_pos"][None], "log_size": t["log_size"][None],
            "size_mask": (t["size_weight"] > 0).astype(np.float32)[None], "crowdedness": t["size_weight"][None],
        }
        if self.offset:
            out["offset"] = t["offset"]
            out["offset_mask"] = t["offset_mask"][None]
        return out


def sdnet_prepare_batch(batch: Mapping[str, Any], device: torch.device) -> tuple[torch.Tensor, dict]:
    """``prepare_batch`` for :func:`crowdlib.engine.train_one_epoch`: images and the stacked target maps."""
    inputs = batch["image"].to(device, non_blocking=True)
    targets = {k: batch[k].to(device, non_blocking=True) for k in TARGET_KEYS if k in batch}
    return inputs, targets


class Refiner:
    """``after_step`` hook: refine the pseudo boxes of the batch's heads from the detached outputs.

    For each head kept in the crop the posterior is ``sigmoid(center_logits)`` at its centre cell
    (``floor(p / stride)``; with ``search_radius > 0`` the maximum within that many cells, the size being read
    where the maximum lies) and the predicted size ``exp(log_size) / scale`` in original pixels.
    ``active`` is switched off during warm-up; ``epoch`` is set by the training loop.
    """

    def __init__(self, store: PseudoBoxStore, stride: int, *, rule: RefineRuleName = "paper",
                 min_score: float = 0.5, search_radius: int = 0) -> None:
        self.store = store
        self.stride = int(stride)
        self.rule = rule
        self.min_score = float(min_score)
        self.search_radius = int(search_radius)
        self.epoch = 0
        self.active = True
        self.updated = 0
        self.seen = 0

    @torch.no_grad()
    def __call__(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, Any], step: int) -> None:
        if not self.active:
            return
        logits = outputs["center_logits"].float()
        log_size = outputs["log_size"].float()
        _, _, h, w = logits.shape
        r = self.search_radius
        if r > 0:
            pooled, arg = torch.nn.functional.max_pool2d(logits, 2 * r + 1, stride=1, padding=r, return_indices=True)
        for b in range(logits.shape[0]):
            pts = batch["points"][b]
            if len(pts) == 0:
                continue
            pts = torch.as_tensor(pts, dtype=torch.float32, device=logits.device)
            cols = torch.div(pts[:, 0], self.stride, rounding_mode="floor").long().clamp(0, w - 1)
            rows = torch.div(pts[:, 1], self.stride, rounding_mode="floor").long().clamp(0, h - 1)
            flat = rows * w + cols
            if r > 0:
                q_logit = pooled[b, 0].reshape(-1)[flat]
                src = arg[b, 0].reshape(-1)[flat]
            else:
                q_logit = logits[b, 0].reshape(-1)[flat]
                src = flat
            q = torch.sigmoid(q_logit)
            size = torch.exp(log_size[b, 0].reshape(-1)[src]) / float(batch["scale"][b])
            keep = np.asarray(batch["keep"][b], dtype=np.int64)
            self.seen += len(keep)
            self.updated += self.store.refine(int(batch["index"][b]), keep, size.cpu().numpy(), q.cpu().numpy(),
                                              rule=self.rule, min_score=self.min_score, epoch=self.epoch, step=step)


# =====================================================================================================================
# configuration, data, training
# =====================================================================================================================
def default_config() -> dict[str, Any]:
    """The full default configuration of one Crowd-SDNet run (synthetic mixture, tiny backbone, both modules).

    Paper values where they apply: lambda 0.1, eta 1, alpha cap 50, prior 0.6, A = 1/16 (full-resolution
    decoder), Adam; sizes scaled down for a CPU (crops 128 instead of 704, lr 1e-3 for a net trained from scratch).
    """
    return {
        "data": {"source": "synthetic", "presets": [["crowd_a", 60], ["crowd_b", 60]], "seed": 0,
                 "height": 128, "width": 128},
        "val_fraction": 0.15,
        "split_seed": 0,
        "model": {"model": "csp_sdnet", "backbone": "tiny", "decoder": "fullres", "width": 16, "pretrained": False,
                  "loss": {"center_weight": 0.1, "crowd_aware": True, "eta": 1.0, "alpha_cap": 50.0,
                           "size_error": "absolute", "size_norm": "objects"}},
        "pseudo": {"init": "luda", "params": {"K": 2, "beta": 0.8, "r": 8, "min_size": 2.0}},
        "refine": {"enabled": True, "rule": "paper", "prior": 0.6, "warmup_epochs": 0, "min_score": 0.5,
                   "search_radius": 0},
        "train": {"epochs": 8, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.0, "crop": 128,
                  "scale_range": [0.8, 1.25], "flip": True, "color_jitter": 0.1, "grayscale_p": 0.0,
                  "max_steps": None, "window": 5, "max_norm": 10.0, "schedule": "cosine", "warmup_steps": 20,
                  "bn_recalibrate_batches": 0},
        "eval": {"min_score": 0.05, "nms_iou": 0.5, "scales": [1.0], "batch_size": 16},
        "seed": 0,
    }


def merge_config(base: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Recursive dict update (``overrides`` wins; nested dicts merged, everything else replaced)."""
    out = {k: (merge_config(v, {}) if isinstance(v, Mapping) else v) for k, v in base.items()}
    for k, v in (overrides or {}).items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge_config(out[k], v)
        else:
            out[k] = merge_config(v, {}) if isinstance(v, Mapping) else v
    return out


#: The four settings of Table III as config overrides (loss module x refinement module).
ABLATION_SETTINGS: dict[str, dict[str, Any]] = {
    "neither": {"model": {"loss": {"crowd_aware": False}}, "refine": {"enabled": False}},
    "loss only": {"model": {"loss": {"crowd_aware": True}}, "refine": {"enabled": False}},
    "refinement only": {"model": {"loss": {"crowd_aware": False}}, "refine": {"enabled": True}},
    "both": {"model": {"loss": {"crowd_aware": True}}, "refine": {"enabled": True}},
}


def load_records(data: Mapping[str, Any]) -> list:
    """Training/evaluation records from a data config.

    ``{"source": "synthetic", "presets": [[name, n], ...], "seed", "height", "width"}`` renders a mixture with
    :class:`crowdlib.data.synthetic.SyntheticCrowds`; ``{"source": "shanghaitech", "root", "part", "split",
    "limit"}`` reads ShanghaiTech with :func:`crowdlib.data.formats.read_shanghaitech` (``limit`` keeps the first
    images, for smoke runs); ``{"source": "widerface", "root", "split", "limit"}`` reads WIDER FACE
    (``<root>/wider_face_split/wider_face_<split>_bbx_gt.txt`` and ``<root>/WIDER_<split>/images``; faces flagged
    invalid and images without faces are dropped).
    """
    src = data.get("source")
    if src == "synthetic":
        from crowdlib.data.synthetic import SyntheticCrowds

        recs: list = []
        for name, n in data["presets"]:
            recs.extend(SyntheticCrowds(name, int(n), seed=int(data.get("seed", 0)), height=data.get("height"),
                                        width=data.get("width")))
        return recs
    if src == "widerface":
        from pathlib import Path

        from crowdlib.data.formats import read_widerface

        root, split = Path(data["root"]), data.get("split", "train")
        recs = read_widerface(root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt",
                              root / f"WIDER_{split}" / "images", drop_invalid=True, drop_outside=True)
        recs = [r for r in recs if r.count > 0]
        limit = data.get("limit")
        return recs[: int(limit)] if limit else recs
    if src == "shanghaitech":
        from crowdlib.data.formats import read_shanghaitech

        recs = list(read_shanghaitech(data["root"], data.get("part", "B"), data.get("split", "train")))
        limit = data.get("limit")
        return recs[: int(limit)] if limit else recs
    raise ValueError(f"data.source must be 'synthetic', 'widerface' or 'shanghaitech', got {src!r}")


def _checkpoint_path(cfg: Mapping[str, Any], checkpoint_dir: str | None) -> Any:
    from pathlib import Path

    from crowdlib import paths
    from crowdlib.repro import config_hash

    base = Path(checkpoint_dir) if checkpoint_dir else paths.cache_dir() / "sdnet_partial"
    return base / f"{config_hash(cfg)}.pt"


def _make_scheduler(opt: torch.optim.Optimizer, kind: str, warmup: int, total: int) -> Any:
    """Per-iteration learning-rate schedule: ``"constant"`` (None), or ``"cosine"``: linear warm-up over ``warmup``
    steps, then cosine decay to 0 at ``total`` steps."""
    if kind == "constant":
        return None
    if kind != "cosine":
        raise ValueError(f"train.schedule must be 'constant' or 'cosine', got {kind!r}")
    total = max(int(total), 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / float(warmup)
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


@torch.no_grad()
def recalibrate_bn(model: torch.nn.Module, loader: Any, device: torch.device, n_batches: int = 20) -> int:
    """Re-estimate BatchNorm running statistics with the final weights ("precise BN").

    The running means/variances kept during training lag behind weights that change quickly (short CPU runs);
    here they are reset and recomputed as a plain average over ``n_batches`` training batches in train mode, without
    gradient steps. Returns the number of batches used (0: the model has no BatchNorm or ``n_batches`` is 0).
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or n_batches <= 0:
        return 0
    saved = [(m, m.momentum) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    was_training = model.training
    model.train()
    used = 0
    try:
        for batch in loader:
            model(batch["image"].to(device))
            used += 1
            if used >= n_batches:
                break
    finally:
        for m, mom in saved:
            m.momentum = mom
        model.train(was_training)
    return used


def build_detector(cfg: Mapping[str, Any]) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(model, criterion)`` of a run config (``cfg["model"]`` goes to the model registry)."""
    from crowdlib.models.registry import build_model

    return build_model(dict(cfg["model"]))


@fixed_threads()
def train_sdnet(cfg: Mapping[str, Any], progress: bool = True, checkpoint_dir: str | None = None) -> dict[str, Any]:
    """Train one Crowd-SDNet configuration; return a checkpointable plain dict.

    Every epoch ends with an atomic checkpoint (model, optimizer, store, history) under
    ``<cache>/sdnet_partial/<config_hash>.pt``; a call with the same config resumes from it and deletes it at the
    end. Each epoch draws its order and augmentations from ``(seed, epoch)``, so a resumed run equals an
    uninterrupted one. The counting threshold is chosen on the validation images carved from the training
    records (``val_fraction``), never on test images.

    Returns:
        ``{"model": state_dict, "store": PseudoBoxStore.state_dict(), "history": [per-epoch dict],
        "count_threshold": float, "val": {...}, "train_ids", "val_ids", "train_seconds", "images_per_s"}``.
    """
    import time

    from crowdlib.data.datasets import CrowdDataset, make_loader, split_train_val
    from crowdlib.data.transforms import TrainTransform
    from crowdlib.device import pick_device
    from crowdlib.engine import train_one_epoch
    from crowdlib.repro import load_checkpoint, save_checkpoint, seed_everything

    cfg = merge_config(default_config(), cfg)
    seed = int(cfg["seed"])
    seed_everything(seed)
    device = pick_device(cfg.get("device"))
    records = load_records(cfg["data"])
    train_idx, val_idx = split_train_val(len(records), float(cfg["val_fraction"]), int(cfg["split_seed"]))
    train_recs = [records[i] for i in train_idx]
    val_recs = [records[i] for i in val_idx]
    pcfg, rcfg, tcfg = cfg["pseudo"], cfg["refine"], cfg["train"]
    store = PseudoBoxStore.from_records(train_recs, pcfg["init"], pcfg.get("params"), prior=float(rcfg["prior"]))
    model, criterion = build_detector(cfg)
    model.to(device)
    stride = int(model.stride)
    offset = getattr(model, "offset_head", None) is not None
    transform = TrainTransform(tcfg["crop"], tuple(tcfg["scale_range"]), tcfg["flip"], tcfg["color_jitter"],
                               tcfg["grayscale_p"])
    dataset = CrowdDataset(train_recs, SDNetTargets(store, stride, int(tcfg["window"]), offset), transform)
    opt = torch.optim.Adam(model.parameters(), lr=float(tcfg["lr"]), weight_decay=float(tcfg["weight_decay"]))
    bs = int(tcfg["batch_size"])
    steps_per_epoch = len(dataset) // bs if len(dataset) > bs else 1
    if tcfg.get("max_steps"):
        steps_per_epoch = min(steps_per_epoch, int(tcfg["max_steps"]))
    scheduler = _make_scheduler(opt, tcfg.get("schedule", "constant"), int(tcfg.get("warmup_steps", 0)),
                                steps_per_epoch * int(tcfg["epochs"]))
    refiner = Refiner(store, stride, rule=rcfg["rule"], min_score=float(rcfg["min_score"]),
                      search_radius=int(rcfg["search_radius"]))
    history: list[dict[str, float]] = []
    start = 0
    ckpt = _checkpoint_path(cfg, checkpoint_dir)
    if ckpt.exists():
        state = load_checkpoint(ckpt)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if scheduler is not None and "scheduler" in state:
            scheduler.load_state_dict(state["scheduler"])
        restored = PseudoBoxStore.from_state_dict(state["store"])
        store.__dict__.update(restored.__dict__)  # the dataset's target builder and the refiner keep this object
        history = list(state["history"])
        start = int(state["epoch"]) + 1
    for epoch in range(start, int(tcfg["epochs"])):
        refiner.epoch = epoch
        refiner.active = bool(rcfg["enabled"]) and epoch >= int(rcfg["warmup_epochs"])
        refiner.updated = refiner.seen = 0
        loader = make_loader(dataset, int(tcfg["batch_size"]), shuffle=True, seed=seed * 100003 + epoch,
                             drop_last=len(dataset) > int(tcfg["batch_size"]))
        stats = train_one_epoch(model, criterion, loader, opt, device, epoch, prepare_batch=sdnet_prepare_batch,
                                after_step=refiner, scheduler=scheduler, max_norm=float(tcfg["max_norm"]),
                                progress=progress, max_steps=tcfg.get("max_steps"))
        stats = {k: float(v) for k, v in stats.items()}
        stats.update(epoch=float(epoch), refine_active=float(refiner.active), n_updated=float(refiner.updated),
                     updated_per_seen=refiner.updated / max(refiner.seen, 1))
        stats.update(store.bin_stats(epoch))
        history.append(stats)
        state = {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                 "store": store.state_dict(), "history": history}
        if scheduler is not None:
            state["scheduler"] = scheduler.state_dict()
        save_checkpoint(ckpt, state)
    n_bn = int(tcfg.get("bn_recalibrate_batches", 0))
    if n_bn > 0:
        recalibrate_bn(model, make_loader(dataset, int(tcfg["batch_size"]), shuffle=True, seed=seed * 100003 + 99991),
                       device, n_bn)
    ecfg = cfg["eval"]
    t0 = time.perf_counter()
    val_preds = predict_sdnet(model, val_recs, device=device, scales=ecfg["scales"], min_score=ecfg["min_score"],
                              nms_iou=ecfg["nms_iou"], batch_size=int(ecfg["batch_size"]))
    thr = choose_threshold([p["scores"] for p in val_preds], [r.count for r in val_recs])
    val_counts = np.array([float((p["scores"] > thr).sum()) for p in val_preds])
    val_gt = np.array([float(r.count) for r in val_recs])

    result = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "store": store.state_dict(),
        "history": history,
        "count_threshold": float(thr),
        "val": {"mae": float(np.mean(np.abs(val_counts - val_gt))) if len(val_gt) else float("nan"),
                "n_images": len(val_recs),
                "seconds": time.perf_counter() - t0},
        "train_ids": [r.image_id for r in train_recs],
        "val_ids": [r.image_id for r in val_recs],
        "train_seconds": float(sum(h["seconds"] for h in history)),
        "images_per_s": float(np.mean([h["images_per_s"] for h in history])) if history else float("nan"),
        "device": str(device),
    }
    if ckpt.exists():
        ckpt.unlink()
    return result


# =====================================================================================================================
# inference
# =====================================================================================================================
class MultiScale(torch.nn.Module):
    """Wrap a detector for (multi-)scale testing: run it on the image resized by each scale and average.

    Centre probabilities and log sizes (minus ``log(scale)``, i.e. in input pixels) are resampled to the
    scale-1 output grid and averaged; the result is returned as logits again, so decoding is unchanged.
    """

    def __init__(self, model: torch.nn.Module, scales: Sequence[float] = (1.0,)) -> None:
        super().__init__()
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"MultiScale: scales must be positive, got {scales}")
        self.model = model
        self.scales = [float(s) for s in scales]
        self.stride = int(model.stride)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        import torch.nn.functional as F

        h, w = -(-x.shape[-2] // self.stride), -(-x.shape[-1] // self.stride)
        probs, sizes, offs = [], [], []
        for s in self.scales:
            xs = x if s == 1.0 else F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False,
                                                  recompute_scale_factor=False)
            out = self.model(xs)
            p = torch.sigmoid(out["center_logits"].float())
            ls = out["log_size"].float() - math.log(s)
            if p.shape[-2:] != (h, w):
                p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
                ls = F.interpolate(ls, size=(h, w), mode="bilinear", align_corners=False)
            probs.append(p)
            sizes.append(ls)
            if "offset" in out and s == 1.0:
                offs.append(out["offset"].float())
        p = torch.stack(probs).mean(0).clamp(1e-6, 1 - 1e-6)
        res = {"center_logits": torch.log(p) - torch.log1p(-p), "log_size": torch.stack(sizes).mean(0)}
        if offs:
            res["offset"] = offs[0]
        return res


class _Rescaled(torch.nn.Module):
    """Run a detector on its input resized by ``scale`` (outputs stay on the resized grid)."""

    def __init__(self, model: torch.nn.Module, scale: float) -> None:
        super().__init__()
        self.model = model
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        import torch.nn.functional as F

        x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False,
                          recompute_scale_factor=False, antialias=self.scale < 1.0)
        return self.model(x)


def decode_csp(outputs: Mapping[str, torch.Tensor], stride: int, *, min_score: float = 0.05, nms_iou: float = 0.5,
               max_det: int = 5000) -> list[dict[str, np.ndarray]]:
    """Peaks (3x3 max-pool) above ``min_score`` -> square boxes -> NMS, per image.

    Thin wrapper of :func:`crowdlib.decode.heatmap_peaks` and :func:`crowdlib.decode.nms`: a peak in cell
    ``(row, col)`` is at ``((col + dx) * stride, (row + dy) * stride)`` with the predicted offset ``(dx, dy)`` when
    there is an offset head, else at the cell centre ``(col + 0.5) * stride``; the log size is clamped at 12 before
    ``exp`` so that a wild prediction cannot overflow. Returns per image
    ``{"points": (K, 2), "boxes": (K, 4), "scores": (K,), "sizes": (K,)}`` float32, sorted by score.
    """
    from crowdlib.decode import heatmap_peaks, nms

    prob = torch.sigmoid(outputs["center_logits"].float())
    log_size = outputs["log_size"].float().clamp(max=12.0)
    offset = outputs.get("offset")
    res = []
    for det in heatmap_peaks(prob, threshold=min_score, size_map=log_size, stride=stride, max_peaks=max_det,
                             offset=None if offset is None else offset.float()):
        n = len(det["scores"])
        keep = nms(det["boxes"], det["scores"], nms_iou) if nms_iou < 1.0 and n else np.arange(n)
        res.append({k: det[k][keep] for k in ("points", "boxes", "scores", "sizes")})
    return res


@torch.no_grad()
@fixed_threads()
def predict_sdnet(model: torch.nn.Module, records: Sequence[Any], *, device: torch.device | str | None = None,
                  scales: Sequence[float] = (1.0,), min_score: float = 0.05, nms_iou: float = 0.5,
                  batch_size: int = 8, progress: bool = False) -> list[dict[str, np.ndarray]]:
    """Detections for each record (boxes in the record's pixel frame), via :func:`crowdlib.engine.evaluate`.

    Records of equal image size are batched together; ``scales`` gives (multi-)scale testing, e.g. ``(0.5,)``
    runs a model trained on half-size crops of full-size images.
    """
    from crowdlib.data.datasets import CrowdDataset, make_loader
    from crowdlib.device import pick_device
    from crowdlib.engine import evaluate

    device = pick_device(device) if not isinstance(device, torch.device) else device
    scales = [float(v) for v in scales]
    stride = int(model.stride)
    factor = 1.0
    if len(scales) == 1:  # one scale: decode on the resized image's grid, then map back by 1 / scale
        factor = scales[0]
        net: torch.nn.Module = model if factor == 1.0 else _Rescaled(model, factor)
    else:
        net = MultiScale(model, scales)
    net = net.to(device)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, rec in enumerate(records):
        hw = tuple(rec.image_size) if rec.image_size is not None else tuple(rec.load_image().shape[:2])
        groups.setdefault(hw, []).append(i)
    out: list[dict[str, np.ndarray] | None] = [None] * len(records)
    for idx in groups.values():
        ds = CrowdDataset([records[i] for i in idx])
        loader = make_loader(ds, batch_size, shuffle=False, seed=0)

        def post(outputs: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> list:
            dets = decode_csp(outputs, stride, min_score=min_score, nms_iou=nms_iou)
            if factor != 1.0:
                for d in dets:
                    for k in ("points", "boxes", "sizes"):
                        d[k] = (d[k] / factor).astype(np.float32)
            return dets

        dets = evaluate(net, loader, device, post, progress=progress)
        for j, d in zip(idx, dets):
            out[j] = d
    return out  # type: ignore[return-value]


def choose_threshold(scores: Sequence[np.ndarray], gt_counts: Sequence[float],
                     grid: Sequence[float] | None = None) -> float:
    """Score threshold minimising the counting MAE on the given images (call it on VALIDATION images only).

    Uses :func:`crowdlib.decode.choose_count_threshold` on a 0.01 grid from 0.05 to 0.95 (ties: lowest threshold).
    """
    from crowdlib.decode import choose_count_threshold

    grid = np.round(np.arange(0.05, 0.951, 0.01), 4) if grid is None else np.asarray(grid, dtype=np.float64)
    if len(scores) != len(gt_counts):
        raise ValueError(f"choose_threshold: {len(scores)} score arrays for {len(gt_counts)} counts")
    if len(scores) == 0:
        return 0.4
    best, _ = choose_count_threshold([np.asarray(s) for s in scores], np.asarray(gt_counts, dtype=np.float64), grid)
    return float(best)


# =====================================================================================================================
# evaluation
# =====================================================================================================================
#: Cumulative difficulty subsets by true box height as a FRACTION of the image height for the synthetic scenes
#: (the analogue of WiderFace's easy/medium/hard): easy >= H/10, medium >= H/20, hard = all.
SYNTH_SIZE_FRACTIONS: dict[str, float] = {"easy": 0.1, "medium": 0.05, "hard": 0.0}


def synthetic_size_bins(image_size: int) -> dict[str, tuple[float, float]]:
    """:data:`SYNTH_SIZE_FRACTIONS` in pixels for square synthetic images of side ``image_size``."""
    return {k: (f * float(image_size), math.inf) for k, f in SYNTH_SIZE_FRACTIONS.items()}


def _image_height(rec: Any) -> int:
    return int(rec.image_size[0]) if rec.image_size is not None else int(rec.load_image().shape[0])


def _default_bins(records: Sequence[Any]) -> dict[str, tuple[float, float]]:
    """Synthetic scenes: :func:`synthetic_size_bins` of their height; real images: the metrics' default bins."""
    from crowdlib.metrics.boxes import DEFAULT_SIZE_BINS

    if records and "preset" in records[0].meta:
        return synthetic_size_bins(_image_height(records[0]))
    return dict(DEFAULT_SIZE_BINS)


def load_detector(result: Mapping[str, Any], cfg: Mapping[str, Any],
                  device: torch.device | str | None = None) -> torch.nn.Module:
    """Rebuild the trained detector of a :func:`train_sdnet` result (eval mode, on ``device``)."""
    from crowdlib.device import pick_device

    cfg = merge_config(default_config(), cfg)
    model, _ = build_detector(cfg)
    model.load_state_dict(result["model"])
    return model.to(pick_device(device) if not isinstance(device, torch.device) else device).eval()


def count_errors(pred_counts: Sequence[float], gt_counts: Sequence[float]) -> dict[str, float]:
    """MAE, RMSE (the papers' "MSE") and NAE (images with 0 heads skipped) of counts."""
    from crowdlib.metrics.counting import mae, nae, rmse

    return {"MAE": float(mae(pred_counts, gt_counts)), "RMSE": float(rmse(pred_counts, gt_counts)),
            "NAE": float(nae(pred_counts, gt_counts))}


def evaluate_detections(preds: Sequence[Mapping[str, np.ndarray]], records: Sequence[Any], count_threshold: float,
                        *, bins: Mapping[str, tuple[float, float]] | None = None,
                        iou_thresholds: Sequence[float] = (0.3, 0.5)) -> dict[str, float]:
    """Box AP per difficulty subset and IoU threshold (records need true boxes) plus counting errors.

    Keys: ``"AP@<t> <subset>"`` (in [0, 1]), ``"MAE"``, ``"RMSE"``, ``"NAE"``. The count of an image is the
    number of detections with score > ``count_threshold`` (chosen on validation images).
    """
    from crowdlib.metrics.boxes import box_ap_subsets, size_subsets

    if len(preds) != len(records):
        raise ValueError(f"evaluate_detections: {len(preds)} predictions for {len(records)} records")
    out: dict[str, float] = {}
    if all(r.boxes is not None for r in records):
        gts = [r.boxes for r in records]
        subsets = size_subsets(gts, _default_bins(records) if bins is None else bins)
        aps = box_ap_subsets([p["boxes"] for p in preds], [p["scores"] for p in preds], gts, subsets,
                             iou_thresholds)
        for name, by_t in aps.items():
            for t, v in by_t.items():
                out[f"AP@{t:g} {name}"] = float(v)
    counts = [float((p["scores"] > count_threshold).sum()) for p in preds]
    out.update(count_errors(counts, [r.count for r in records]))
    return out


def evaluate_sdnet(result: Mapping[str, Any], cfg: Mapping[str, Any], records: Sequence[Any], *,
                   device: torch.device | str | None = None, progress: bool = False,
                   bins: Mapping[str, tuple[float, float]] | None = None,
                   iou_thresholds: Sequence[float] = (0.3, 0.5)) -> dict[str, float]:
    """Detect on ``records`` with a trained result and score it (:func:`evaluate_detections`)."""
    cfg = merge_config(default_config(), cfg)
    model = load_detector(result, cfg, device)
    e = cfg["eval"]
    preds = predict_sdnet(model, records, device=next(model.parameters()).device, scales=e["scales"],
                          min_score=e["min_score"], nms_iou=e["nms_iou"], batch_size=int(e["batch_size"]),
                          progress=progress)
    return evaluate_detections(preds, records, float(result["count_threshold"]), bins=bins,
                               iou_thresholds=iou_thresholds)


def pseudo_boxes(records: Sequence[Any], method: str, params: Mapping[str, Any] | None = None) -> list[np.ndarray]:
    """Square pseudo boxes centred on the annotated points (``"gak"`` or ``"luda"`` sizes) for each record."""
    store = PseudoBoxStore.from_records(records, method, params)
    return [store.boxes(i) for i in range(len(store))]


def pseudo_box_quality(boxes: Sequence[np.ndarray], records: Sequence[Any],
                       iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7),
                       bins: Mapping[str, tuple[float, float]] | None = None) -> dict[str, float]:
    """How good pseudo boxes are against the true boxes (Table II; Table III "size init" with subsets).

    ``AP(t)``: :func:`crowdlib.metrics.boxes.box_ap` with one constant score for every box (pseudo boxes have no
    ranking; with ties AP equals precision x recall of the single operating point). ``share>=t``: fraction of
    heads whose pseudo box has IoU >= t with the same head's true box. With ``bins``, AP per subset as
    ``"AP@<t> <subset>"`` instead.
    """
    from crowdlib.metrics.boxes import box_ap, box_ap_subsets, box_iou, size_subsets

    gts = [r.boxes for r in records]
    if any(g is None for g in gts):
        raise ValueError("pseudo_box_quality: every record needs true boxes")
    scores = [np.ones(len(b)) for b in boxes]
    out: dict[str, float] = {}
    if bins is not None:
        aps = box_ap_subsets(list(boxes), scores, gts, size_subsets(gts, bins), iou_thresholds)
        for name, by_t in aps.items():
            for t, v in by_t.items():
                out[f"AP@{t:g} {name}"] = float(v)
        return out
    for t, v in box_ap(list(boxes), scores, gts, iou_thresholds).items():
        out[f"AP({t:g})"] = float(v)
    own = np.concatenate([np.diag(box_iou(b, g)) if len(b) else np.zeros(0) for b, g in zip(boxes, gts)])
    for t in iou_thresholds:
        out[f"share>={t:g}"] = float((own >= t).mean()) if len(own) else float("nan")
    return out


# =====================================================================================================================
# experiments and tables (used by notebooks 10-13)
# =====================================================================================================================
#: Table III of the paper (WiderFace val, AP in %, IoU 0.5): the rows we reproduce.
PAPER_TABLE3: dict[str, dict[str, float]] = {
    "GAK (size init)": {"AP@0.5 easy": 7.1, "AP@0.5 medium": 12.5, "AP@0.5 hard": 27.3},
    "LUDA (size init)": {"AP@0.5 easy": 7.2, "AP@0.5 medium": 12.8, "AP@0.5 hard": 29.5},
    "neither": {"AP@0.5 easy": 18.6, "AP@0.5 medium": 23.4, "AP@0.5 hard": 30.8, "MAE": 3.4, "NAE": 0.81},
    "loss only": {"AP@0.5 easy": 21.3, "AP@0.5 medium": 26.8, "AP@0.5 hard": 35.2, "MAE": 3.6, "NAE": 0.97},
    "refinement only": {"AP@0.5 easy": 55.1, "AP@0.5 medium": 55.1, "AP@0.5 hard": 52.5, "MAE": 2.3, "NAE": 0.27},
    "both": {"AP@0.5 easy": 75.8, "AP@0.5 medium": 71.0, "AP@0.5 hard": 64.4, "MAE": 2.2, "NAE": 0.29},
}
#: Table II of the paper (WiderFace train, AP in % of pseudo boxes against true boxes).
PAPER_TABLE2: dict[str, dict[str, float]] = {
    "GAK": {"AP(0.3)": 55.8, "AP(0.5)": 29.5, "AP(0.7)": 7.0},
    "LUDA": {"AP(0.3)": 60.3, "AP(0.5)": 31.2, "AP(0.7)": 7.5},
    "refined": {"AP(0.3)": 79.4, "AP(0.5)": 50.6, "AP(0.7)": 14.4},
}
#: Tables V and VII of the paper, ShanghaiTech Part B test.
PAPER_SHB: dict[str, float] = {"MAE": 7.8, "RMSE": 12.6, "AP@20px (%)": 91.6, "MLE": 6.0}

_LOWER_IS_BETTER = ("MAE", "RMSE", "NAE", "MLE")


def run_config(cfg: Mapping[str, Any], *, progress: bool = True, cache_dir: str | None = None,
               name: str = "sdnet") -> dict[str, Any]:
    """Train (or load from the cache) one configuration with :func:`crowdlib.repro.get_or_train`.

    The cache key is the hash of the FULL configuration (defaults merged in), so notebooks asking for the same
    run share it.
    """
    import functools

    from crowdlib.repro import get_or_train

    full = merge_config(default_config(), cfg)
    loss = full["model"]["loss"]
    if not loss.get("crowd_aware", True):
        # Without crowdedness weights the size normalisation has no effect (sum of alpha = number of pixels), so
        # the setting is canonicalised and runs that differ only there share one cached model.
        loss["size_norm"] = "objects"
    return get_or_train(full, functools.partial(train_sdnet, progress=progress), name=name, cache_dir=cache_dir)


def setting_config(base: Mapping[str, Any], setting: str, seed: int) -> dict[str, Any]:
    """The full config of one Table III setting (:data:`ABLATION_SETTINGS`) and seed on top of ``base``."""
    if setting not in ABLATION_SETTINGS:
        raise ValueError(f"setting must be one of {list(ABLATION_SETTINGS)}, got {setting!r}")
    cfg = merge_config(merge_config(default_config(), base), ABLATION_SETTINGS[setting])
    cfg["seed"] = int(seed)
    return cfg


def run_settings(base: Mapping[str, Any], settings: Sequence[str], seeds: Sequence[int],
                 test_records: Sequence[Any], *, progress: bool = True, extra: Mapping[str, Any] | None = None,
                 label: str | None = None) -> tuple[dict[tuple[str, int], dict], "Any"]:
    """Train/load every (setting, seed) and evaluate it on ``test_records``.

    ``extra`` is merged on top of each setting (e.g. ``{"refine": {"rule": "psddn"}}``) and ``label`` renames the
    setting in the output. Returns ``(runs, df)``: ``runs[(label, seed)]`` is the training result and ``df`` a long
    DataFrame with columns ``setting, seed, metric, value`` (APs in %), plus ``train_seconds`` and
    ``images_per_s`` rows.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    runs: dict[tuple[str, int], dict] = {}
    recs = []
    jobs = [(s, sd) for s in settings for sd in seeds]
    for setting, seed in tqdm(jobs, desc="runs", disable=not progress):
        cfg = merge_config(setting_config(base, setting, seed), extra or {})
        name = label or setting
        res = run_config(cfg, progress=progress)
        runs[(name, seed)] = res
        metrics = evaluate_sdnet(res, cfg, test_records)
        for k, v in metrics.items():
            recs.append({"setting": name, "seed": seed, "metric": k, "value": 100.0 * v if k.startswith("AP") else v})
        recs.append({"setting": name, "seed": seed, "metric": "train_seconds", "value": res["train_seconds"]})
        recs.append({"setting": name, "seed": seed, "metric": "images_per_s", "value": res["images_per_s"]})
    return runs, pd.DataFrame(recs)


def size_init_metrics(records: Sequence[Any], pseudo: Mapping[str, Any], *,
                      bins: Mapping[str, tuple[float, float]] | None = None,
                      iou_thresholds: Sequence[float] = (0.3, 0.5)) -> "Any":
    """Table III "size init" rows: GAK and LUDA boxes at the TRUE centres of ``records``, AP (%) per subset."""
    import pandas as pd

    recs = []
    for method, label in (("gak", "GAK (size init)"), ("luda", "LUDA (size init)")):
        q = pseudo_box_quality(pseudo_boxes(records, method, pseudo.get("params")), records, iou_thresholds,
                               bins=_default_bins(records) if bins is None else bins)
        recs += [{"setting": label, "seed": -1, "metric": k, "value": 100.0 * v} for k, v in q.items()]
    return pd.DataFrame(recs)


def rows_from_long(df: "Any", table: str, paper: Mapping[str, Mapping[str, float]] | None = None,
                   metrics: Sequence[str] | None = None) -> list:
    """One :class:`crowdlib.repro.Row` per (setting, metric) of a long DataFrame (values over seeds)."""
    from crowdlib.repro import Row

    paper = paper or {}
    rows = []
    for (setting, metric), grp in df.groupby(["setting", "metric"], sort=False):
        if metrics is not None and metric not in metrics:
            continue
        rows.append(Row(table, setting, metric, [float(v) for v in grp["value"]],
                        paper=paper.get(setting, {}).get(metric),
                        higher_is_better=not metric.startswith(_LOWER_IS_BETTER)))
    return rows


def table3_claims(metrics: Sequence[str] = ("AP@0.5 medium", "AP@0.3 medium")) -> list:
    """The paper's Table III directions as :class:`crowdlib.repro.Claim` s on the given AP metrics and MAE."""
    from crowdlib.repro import Claim

    claims = []
    for m in metrics:
        claims += [
            Claim(f"both modules beat refinement only ({m})", m, "both", "refinement only", "III"),
            Claim(f"refinement only beats loss only ({m})", m, "refinement only", "loss only", "III"),
            Claim(f"refinement only beats neither ({m})", m, "refinement only", "neither", "III"),
            Claim(f"crowdedness-aware loss beats plain pseudo sizes ({m})", m, "loss only", "neither", "III"),
            Claim(f"both modules beat neither ({m})", m, "both", "neither", "III"),
        ]
    claims.append(Claim("both modules count better than neither (MAE)", "MAE", "both", "neither", "III"))
    claims.append(Claim("LUDA size init beats GAK size init (AP@0.5 hard)", "AP@0.5 hard", "LUDA (size init)",
                        "GAK (size init)", "III"))
    return claims


def claim_sentences(claims_df: "Any") -> list[str]:
    """A plain sentence per evaluated claim (from ``Reporter.results``' DataFrame or evaluated Claims)."""
    out = []
    recs = claims_df.to_dict("records") if hasattr(claims_df, "to_dict") else [c.to_dict() for c in claims_df]
    for c in recs:
        verdict = "REPRODUCED" if c["reproduced"] else "NOT reproduced"
        b = c.get("better_mean", c.get("better (ours)"))
        w = c.get("worse_mean", c.get("worse (ours)"))
        out.append(f"{c.get('text', c.get('claim'))}: ours {c['better']} = {b:.3g} vs {c['worse']} = {w:.3g} "
                   f"-> {verdict}.")
    return out


def table2_quality(train_records: Sequence[Any], pseudo: Mapping[str, Any],
                   refined: Mapping[str, Mapping[int, PseudoBoxStore]]) -> "Any":
    """Table II: AP (%) and matched share of GAK, LUDA and refined pseudo boxes on the TRAINING images.

    ``refined`` maps a row label (e.g. ``"refined"``) to ``{seed: final store of a trained run}`` (the stores' images
    must be ``train_records`` in order). Returns a long DataFrame ``setting, seed, metric, value``.
    """
    import pandas as pd

    recs = []
    for method, label in (("gak", "GAK"), ("luda", "LUDA")):
        q = pseudo_box_quality(pseudo_boxes(train_records, method, pseudo.get("params")), train_records)
        recs += [{"setting": label, "seed": -1, "metric": k, "value": 100.0 * v} for k, v in q.items()]
    ids = [r.image_id for r in train_records]
    for label, stores in refined.items():
        for seed, store in stores.items():
            if store.image_ids != ids:
                raise ValueError("table2_quality: a refined store does not hold the given training images")
            q = pseudo_box_quality([store.boxes(i) for i in range(len(store))], train_records)
            recs += [{"setting": label, "seed": seed, "metric": k, "value": 100.0 * v} for k, v in q.items()]
    return pd.DataFrame(recs)


def final_losses(runs: Mapping[tuple[str, int], Mapping[str, Any]]) -> "Any":
    """Last-epoch loss terms, refined share and throughput per setting (mean over seeds)."""
    import pandas as pd

    recs = []
    for (name, seed), res in runs.items():
        h = res["history"][-1] if res["history"] else {}
        recs.append({"setting": name, "seed": seed, "centre loss": h.get("center", float("nan")),
                     "size loss": h.get("size", float("nan")),
                     "refined share (all boxes)": _refined_share(res["store"]),
                     "images/s": res.get("images_per_s", float("nan"))})
    return pd.DataFrame(recs).groupby("setting", sort=False).mean(numeric_only=True).drop(columns="seed")


def _refined_share(store_state: Mapping[str, Any]) -> float:
    n = [np.asarray(x) for x in store_state["n_updates"]]
    tot = sum(len(a) for a in n)
    return float(sum(int((a > 0).sum()) for a in n) / tot) if tot else float("nan")


def train_records_of(cfg: Mapping[str, Any]) -> list:
    """The training records (validation part removed) of a run config, in store order."""
    from crowdlib.data.datasets import split_train_val

    cfg = merge_config(default_config(), cfg)
    records = load_records(cfg["data"])
    train_idx, _ = split_train_val(len(records), float(cfg["val_fraction"]), int(cfg["split_seed"]))
    return [records[i] for i in train_idx]


def refinement_curves(runs: Mapping[tuple[str, int], Mapping[str, Any]], setting: str) -> "Any":
    """Fig. 4 data: per epoch and crowdedness bin, the share of boxes refined so far (mean/std over seeds)."""
    import pandas as pd

    recs = []
    for (name, seed), res in runs.items():
        if name != setting:
            continue
        for h in res["history"]:
            for label in BIN_LABELS:
                recs.append({"seed": seed, "epoch": int(h["epoch"]), "bin": label,
                             "refined_share": h.get(f"refined_share/{label}", float("nan")),
                             "updated_share": h.get(f"updated_share/{label}", float("nan"))})
    df = pd.DataFrame(recs)
    return df.groupby(["bin", "epoch"], sort=False).agg(
        refined_mean=("refined_share", "mean"), refined_std=("refined_share", "std"),
        updated_mean=("updated_share", "mean")).reset_index()


def experiment_config(*, n_dense: int = 80, n_sparse: int = 80, image_size: int = 256, epochs: int = 20,
                      max_steps: int | None = None, batch_size: int = 8, lr: float = 2e-3, width: int = 32,
                      up_width: int | None = 8,
                      beta: float = 1.0, region_divisor: float = 8, prior: float = 0.6, warmup_epochs: int = 0,
                      alpha_cap: float | None = 50.0, eta: float = 1.0, size_norm: str = "objects",
                      center_weight: float = 0.1, data_seed: int = 0, backbone: str = "tiny",
                      pretrained: bool = False, crop: int | None = None, data_root: str | None = None,
                      **extra: Any) -> dict[str, Any]:
    """The synthetic-mixture run config shared by notebooks 10-12 (identical arguments give identical runs).

    Scenes are rendered at ``image_size`` (256: heads of 5-43 px) and trained on random ``crop`` x ``crop`` crops
    (default 128); evaluation uses whole images.

    With ``data_root`` (a WIDER FACE folder, the paper's ablation dataset) the first ``n_dense + n_sparse``
    training images with faces replace the synthetic scenes and LUDA uses the WiderFace parameters of Table I
    (K 2, beta 0.5, r 6, minimum size 8 px, no alpha cap). ``extra`` is merged last (nested dicts, e.g.
    ``refine={"rule": "psddn"}``).
    """
    cfg = merge_config(default_config(), {
        "data": {"source": "synthetic", "presets": [["crowd_a", int(n_dense)], ["crowd_b", int(n_sparse)]],
                 "seed": int(data_seed), "height": int(image_size), "width": int(image_size)},
        "model": {"backbone": backbone, "pretrained": bool(pretrained), "width": int(width),
                  "up_width": None if up_width is None else int(up_width),
                  "loss": {"eta": float(eta), "alpha_cap": None if alpha_cap is None else float(alpha_cap),
                           "size_norm": str(size_norm), "center_weight": float(center_weight)}},
        "pseudo": {"init": "luda", "params": {"K": 2, "beta": float(beta), "r": float(region_divisor),
                                              "min_size": 2.0}},
        "refine": {"prior": float(prior), "warmup_epochs": int(warmup_epochs)},
        "train": {"epochs": int(epochs), "max_steps": None if max_steps is None else int(max_steps),
                  "batch_size": int(batch_size), "lr": float(lr), "crop": int(crop or min(image_size, 128)),
                  "color_jitter": 0.0},
    })
    if data_root:
        from crowdlib.targets.pseudo_sizes import LUDA_PRESETS

        wf = dict(LUDA_PRESETS["WiderFace"])
        cfg["data"] = {"source": "widerface", "root": str(data_root), "split": "train",
                       "limit": int(n_dense) + int(n_sparse)}
        cfg["pseudo"]["params"] = {k: v for k, v in wf.items() if k != "max_weight"}
        cfg["model"]["loss"]["alpha_cap"] = None if wf.get("max_weight") is None else float(wf["max_weight"])
    return merge_config(cfg, extra)


def eval_records_for(base: Mapping[str, Any], n_per_preset: int, image_size: int = 256,
                     data_seed: int = 0, test_seed: int | None = None) -> list:
    """Held-out evaluation records of a run config: WIDER FACE val (``2 * n_per_preset`` images) when the config
    trains on WIDER FACE, else :func:`synthetic_test_records`."""
    data = base.get("data", {})
    if data.get("source") == "widerface":
        return load_records({"source": "widerface", "root": data["root"], "split": "val",
                             "limit": 2 * int(n_per_preset)})
    return synthetic_test_records(n_per_preset, image_size, data_seed, test_seed)


def synthetic_test_records(n_per_preset: int, image_size: int = 256, data_seed: int = 0,
                           test_seed: int | None = None) -> list:
    """Held-out synthetic test images (``crowd_a`` and ``crowd_b``) rendered with ``test_seed`` (default
    ``data_seed + 1000``), never trained on.

    Raises:
        ValueError: if ``test_seed`` equals the training seed.
    """
    seed = int(data_seed) + 1000 if test_seed is None else int(test_seed)
    if seed == int(data_seed):
        raise ValueError(f"test_seed {seed} equals the training seed; test scenes must be new")
    return load_records({"source": "synthetic", "presets": [["crowd_a", int(n_per_preset)],
                                                            ["crowd_b", int(n_per_preset)]],
                         "seed": seed, "height": int(image_size), "width": int(image_size)})


def describe_run_device() -> str:
    """``"cpu (1 thread)"`` or the CUDA device name, for the notebooks' timing statements."""
    from crowdlib.device import pick_device

    dev = pick_device()
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''})"


def _preset_of(rec: Any) -> str:
    return str(rec.meta.get("preset", rec.image_id.split("-")[0]))


def quality_by_preset(train_records: Sequence[Any], pseudo: Mapping[str, Any],
                      refined: Mapping[str, Mapping[int, PseudoBoxStore]], iou: float = 0.5) -> "Any":
    """Share (%) of heads whose pseudo box has IoU >= ``iou`` with its true box, per preset (dense vs sparse).

    Columns GAK, LUDA and one per ``refined`` label (mean over that label's seeds).
    """
    import pandas as pd
    from crowdlib.metrics.boxes import box_iou

    def own(boxes: Sequence[np.ndarray], idx: Sequence[int]) -> np.ndarray:
        vals = [np.diag(box_iou(boxes[i], train_records[i].boxes)) for i in idx if len(boxes[i])]
        return np.concatenate(vals) if vals else np.zeros(0)

    presets = sorted({_preset_of(r) for r in train_records})
    gak = pseudo_boxes(train_records, "gak", pseudo.get("params"))
    luda = pseudo_boxes(train_records, "luda", pseudo.get("params"))
    out = []
    for p in presets:
        idx = [i for i, r in enumerate(train_records) if _preset_of(r) == p]
        row = {"preset": p, "heads": int(sum(train_records[i].count for i in idx)),
               "GAK": 100 * float((own(gak, idx) >= iou).mean()), "LUDA": 100 * float((own(luda, idx) >= iou).mean())}
        for label, stores in refined.items():
            if stores:
                row[label] = float(np.mean([100 * (own([s.boxes(i) for i in range(len(s))], idx) >= iou).mean()
                                            for s in stores.values()]))
        out.append(row)
    return pd.DataFrame(out).set_index("preset")


def fig4_rows(runs: Mapping[tuple[str, int], Mapping[str, Any]], setting: str, fraction: float = 0.25) -> list:
    """Rows (table ``"fig4"``) of the refined share (%) per crowdedness bin after ``fraction`` of the epochs
    (metric ``"refined share, early"``) and at the end (``"refined share, final"``), one value per seed."""
    from crowdlib.repro import Row

    vals: dict[tuple[str, str], list[float]] = {}
    for (name, _seed), res in runs.items():
        hist = res["history"]
        if name != setting or not hist:
            continue
        early = hist[max(0, int(math.ceil(fraction * len(hist))) - 1)]
        for label in BIN_LABELS:
            vals.setdefault((label, "refined share, early"), []).append(100 * early[f"refined_share/{label}"])
            vals.setdefault((label, "refined share, final"), []).append(100 * hist[-1][f"refined_share/{label}"])
    return [Row("fig4", label, metric, v) for (label, metric), v in vals.items()
            if all(math.isfinite(x) for x in v)]


# =====================================================================================================================
# ShanghaiTech (notebook 13)
# =====================================================================================================================
def shanghaitech_config(root: str, *, part: str = "B", n_train: int | None = None, crop: int = 128,
                        input_scale: float = 0.5, epochs: int = 8, max_steps: int | None = None,
                        batch_size: int = 8, lr: float = 1e-3, backbone: str = "mobilenet_v2",
                        pretrained: bool = True, width: int = 32, up_width: int | None = 8, seed: int = 0,
                        val_fraction: float = 0.1) -> dict[str, Any]:
    """Run config for ShanghaiTech ``part`` train (validation carved from train, ``val_fraction`` as the paper's
    10%). Images are trained at ``input_scale`` (scale jitter +-20% around it) on ``crop`` crops and tested at the
    same scale; LUDA uses the authors' SHA/SHB parameters (:data:`crowdlib.targets.pseudo_sizes.LUDA_PRESETS`)."""
    from crowdlib.targets.pseudo_sizes import LUDA_PRESETS

    preset = dict(LUDA_PRESETS["SHB" if part == "B" else "SHA"])
    cap = preset.get("max_weight")
    return merge_config(default_config(), {
        "data": {"source": "shanghaitech", "root": str(root), "part": part, "split": "train", "limit": n_train},
        "val_fraction": float(val_fraction),
        "model": {"backbone": backbone, "pretrained": bool(pretrained), "width": int(width),
                  "up_width": None if up_width is None else int(up_width),
                  "loss": {"alpha_cap": None if cap is None else float(cap)}},
        "pseudo": {"init": "luda", "params": preset},
        "train": {"epochs": int(epochs), "max_steps": None if max_steps is None else int(max_steps),
                  "batch_size": int(batch_size), "lr": float(lr), "crop": int(crop),
                  "scale_range": [0.8 * input_scale, 1.2 * input_scale], "color_jitter": 0.0},
        "eval": {"scales": [float(input_scale)], "batch_size": 2},
        "seed": int(seed),
    })


def evaluate_points(result: Mapping[str, Any], cfg: Mapping[str, Any], records: Sequence[Any], *,
                    device: torch.device | str | None = None, progress: bool = False,
                    radius: float = 20.0) -> tuple[dict[str, float], list[dict[str, np.ndarray]]]:
    """Counting (MAE, RMSE, NAE) and localization (point AP at ``radius`` px in %, MLE in px) on point-only data.

    AP ranks every decoded peak; MLE and the counts use the peaks above (>) the validation-chosen count threshold.
    Returns ``(metrics, predictions)``.
    """
    from crowdlib.metrics.points import mle, point_ap

    cfg = merge_config(default_config(), cfg)
    model = load_detector(result, cfg, device)
    e = cfg["eval"]
    preds = predict_sdnet(model, records, device=next(model.parameters()).device, scales=e["scales"],
                          min_score=e["min_score"], nms_iou=e["nms_iou"], batch_size=int(e["batch_size"]),
                          progress=progress)
    thr = float(result["count_threshold"])
    gts = [r.points for r in records]
    kept = [{"points": p["points"][p["scores"] > thr], "scores": p["scores"][p["scores"] > thr]} for p in preds]
    out = count_errors([len(k["points"]) for k in kept], [r.count for r in records])
    out["AP@20px (%)"] = 100.0 * float(point_ap([{"points": p["points"], "scores": p["scores"]} for p in preds], gts,
                                                radius))
    out["MLE"] = float(mle(kept, gts, radius=radius))
    return out, preds


def mean_train_count(result: Mapping[str, Any]) -> float:
    """Mean head count of a run's training images (the trivial counting baseline)."""
    st = result["store"]
    return float(np.mean([len(p) for p in st["points"]])) if st["points"] else 0.0
