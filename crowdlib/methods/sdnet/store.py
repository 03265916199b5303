"""Crowd-SDNet pseudo boxes: initial sizes (LUDA, GAK, true), Algorithm 1's refinement rule, and the store.

- :func:`initial_sizes` gives every head its first pseudo size and LUDA crowdedness ``|R_j|``.
- :func:`refine_rule` is Algorithm 1 as a pure function. ``rule="paper"``: update a box iff the posterior at its
  ground-truth centre exceeds the stored confidence (size and confidence both replaced). ``rule="authors"``: the
  authors' code's variant (posterior > prior and >= stored confidence). ``rule="psddn"``: PSDDN's rule for
  comparison: take the predicted size when it is smaller than the stored one and the posterior exceeds
  ``min_score`` (confidence is left unchanged).
- :class:`PseudoBoxStore` keeps, per training image, the current pseudo box side ``s_j`` (pixels of the
  original image), its stored confidence ``P(b_j)`` (all start at ``prior`` = 0.6), the LUDA crowdedness
  ``|R_j|``, the initial sizes, and a history of every update.

Crowdedness bins of Fig. 4: ``[0, 1]``, ``(1, 4]``, ``(4, 14]``, ``> 14`` (:data:`CROWD_BINS`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch


__all__ = ["CROWD_BINS", "BIN_LABELS", "crowd_bin", "refine_rule", "initial_sizes", "PseudoBoxStore"]


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
                 *, prior: float = 0.6, image_ids: Sequence[str] | None = None, lone_weight: float = 0.1) -> None:
        if not (len(points) == len(sizes) == len(crowdedness)):
            raise ValueError(f"PseudoBoxStore: {len(points)} point sets, {len(sizes)} size sets, "
                             f"{len(crowdedness)} crowdedness sets")
        if not 0.0 <= prior < 1.0:
            raise ValueError(f"PseudoBoxStore: prior must lie in [0, 1), got {prior}")
        if not (0.0 <= lone_weight and math.isfinite(lone_weight)):
            raise ValueError(f"PseudoBoxStore: lone_weight must be finite and >= 0, got {lone_weight}")
        self.prior = float(prior)
        self.lone_weight = float(lone_weight)
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
        return cls(pts, szs, crs, prior=prior, image_ids=ids,
                   lone_weight=float(dict(params or {}).get("lone_weight", 0.1)))

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def n_boxes(self) -> int:
        """Total number of pseudo boxes."""
        return int(sum(len(s) for s in self.sizes))

    # ------------------------------------------------------------------ access
    def size_scale(self, index: int) -> np.ndarray:
        """Per-head multiplier of the size loss of image ``index``: ``lone_weight`` (authors' code: 0.1) for the
        head of a one-head image, whose LUDA size is a guess (``max(H / 5, 12)``), 1 otherwise."""
        n = len(self.sizes[index])
        return np.full(n, self.lone_weight if n == 1 else 1.0, dtype=np.float32)

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

    def n_history_rows(self) -> int:
        """How many update rows the history holds (a mark for :meth:`updates_since`)."""
        return int(sum(len(h) for h in self._history))

    def updates_since(self, mark: int) -> np.ndarray:
        """The history rows recorded after ``mark`` rows (see :meth:`n_history_rows`), as an ``(U, 8)`` array."""
        return self.history()[int(mark):]

    def apply_updates(self, rows: np.ndarray) -> None:
        """Replay update rows recorded by another store over the same images (distributed training's sync).

        Each row sets its head's size and confidence to the row's new values, counts one update and is appended
        to the history; rows are replayed in the given order.
        """
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(self._HIST_COLS))
        if not len(rows):
            return
        for index in np.unique(rows[:, 2].astype(np.int64)):
            sel = rows[rows[:, 2] == index]
            heads = sel[:, 3].astype(np.int64)
            self.sizes[index][heads] = sel[:, 5]  # the last row per head wins, as in time order
            self.confidence[index][heads] = sel[:, 7]
            np.add.at(self.n_updates[index], heads, 1)
        self._history.append(rows.copy())

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
            "lone_weight": self.lone_weight,
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
                 [arr(c) for c in state["crowdedness"]], prior=float(state["prior"]), image_ids=state["image_ids"],
                 lone_weight=float(state.get("lone_weight", 1.0)))  # stores saved before the weight existed: 1
        st.sizes = [arr(s).astype(np.float32).copy() for s in state["sizes"]]
        st.confidence = [arr(c).astype(np.float32).copy() for c in state["confidence"]]
        st.n_updates = [arr(n).astype(np.int64).copy() for n in state["n_updates"]]
        hist = arr(state["history"]).astype(np.float64)
        st._history = [hist] if len(hist) else []
        return st
