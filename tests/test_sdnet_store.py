"""Crowd-SDNet pseudo-box store and refinement rules (Algorithm 1, authors' variant, PSDDN)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from crowdlib.methods.sdnet import BIN_LABELS, PseudoBoxStore, crowd_bin, refine_rule


def test_crowd_bins_right_closed() -> None:
    assert crowd_bin(np.array([0, 1, 1.5, 4, 5, 14, 15, 100])).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_paper_rule_updates_exactly_when_posterior_exceeds_stored() -> None:
    rng = np.random.default_rng(0)
    s = rng.uniform(2, 20, 200).astype(np.float32)
    c = rng.uniform(0.6, 0.9, 200).astype(np.float32)
    ps = rng.uniform(2, 20, 200).astype(np.float32)
    q = rng.uniform(0.4, 1.0, 200).astype(np.float32)
    q[:5] = c[:5]  # equality does not update
    new_s, new_c, upd = refine_rule(s, c, ps, q, rule="paper")
    np.testing.assert_array_equal(upd, q > c)
    assert not upd[:5].any()
    np.testing.assert_array_equal(new_s, np.where(q > c, ps, s))
    assert (new_c >= c).all()  # confidence only increases
    np.testing.assert_array_equal(new_c[upd], q[upd])


def test_authors_and_psddn_rules() -> None:
    s = np.array([10, 10, 10, 10], np.float32)
    c = np.array([0.6, 0.7, 0.6, 0.6], np.float32)
    ps = np.array([5, 5, 15, 5], np.float32)
    q = np.array([0.7, 0.7, 0.9, 0.55], np.float32)
    _, _, upd = refine_rule(s, c, ps, q, rule="authors", prior=0.6)
    assert upd.tolist() == [True, True, True, False]  # 0.7 >= 0.7 updates in the authors' rule
    new_s, new_c, upd = refine_rule(s, c, ps, q, rule="psddn", min_score=0.5)
    assert upd.tolist() == [True, True, False, True]  # smaller predictions only
    np.testing.assert_array_equal(new_c, c)
    with pytest.raises(ValueError, match="rule"):
        refine_rule(s, c, ps, q, rule="greedy")
    with pytest.raises(ValueError, match="shapes"):
        refine_rule(s, c[:2], ps, q)


def _store() -> PseudoBoxStore:
    pts = [np.array([[5, 5], [20, 20], [30, 5]], np.float32), np.array([[8, 8]], np.float32)]
    sizes = [np.array([4, 6, 8], np.float32), np.array([12], np.float32)]
    crowd = [np.array([1, 3, 20], np.float32), np.array([1], np.float32)]
    return PseudoBoxStore(pts, sizes, crowd, prior=0.6)


def test_store_refine_history_bins_and_state_roundtrip() -> None:
    st = _store()
    assert st.n_boxes == 4 and len(st) == 2
    k = st.refine(0, np.array([0, 2]), np.array([3.0, 9.0]), np.array([0.7, 0.5]), epoch=0, step=3)
    assert k == 1
    assert st.sizes[0].tolist() == [3.0, 6.0, 8.0] and st.confidence[0][0] == pytest.approx(0.7)
    assert st.refine(0, np.array([0]), np.array([5.0]), np.array([0.65]), epoch=1) == 0  # below stored 0.7
    assert st.refine(0, np.array([0]), np.array([5.0]), np.array([0.8]), epoch=1) == 1
    np.testing.assert_allclose(st.boxes(0)[0], [2.5, 2.5, 7.5, 7.5])
    np.testing.assert_allclose(st.boxes(0, "init")[0], [3, 3, 7, 7])
    s0, c0 = st.sizes_at_epoch(0, 0)
    assert s0.tolist() == [3.0, 6.0, 8.0] and c0[0] == pytest.approx(0.7)
    s1, _ = st.sizes_at_epoch(0, 1)
    assert s1[0] == 5.0 and st.sizes_at_epoch(0, -1)[0].tolist() == [4.0, 6.0, 8.0]
    stats = st.bin_stats(epoch=1)
    assert stats[f"refined_share/{BIN_LABELS[0]}"] == pytest.approx(0.5)  # 1 of the 2 boxes with |R| <= 1
    assert stats[f"updated_share/{BIN_LABELS[0]}"] == pytest.approx(0.5)
    assert stats[f"refined_share/{BIN_LABELS[3]}"] == 0.0
    h = st.history()
    assert h.shape == (2, 8) and h[0, :4].tolist() == [0, 3, 0, 0]
    state = st.state_dict()
    f = io.BytesIO()
    torch.save(state, f)
    f.seek(0)
    back = PseudoBoxStore.from_state_dict(torch.load(f, weights_only=True))
    assert back.sizes[0].tolist() == st.sizes[0].tolist() and back.history().shape == (2, 8)
    assert back.init_sizes[0].tolist() == [4.0, 6.0, 8.0] and back.n_updates[0].tolist() == [2, 0, 0]


def test_store_errors() -> None:
    with pytest.raises(ValueError, match="sizes"):
        PseudoBoxStore([np.zeros((2, 2))], [np.array([1.0, -1.0])], [np.ones(2)])
    with pytest.raises(ValueError, match="prior"):
        PseudoBoxStore([np.zeros((1, 2))], [np.ones(1)], [np.ones(1)], prior=1.5)
    st = _store()
    with pytest.raises(ValueError, match="out of range"):
        st.refine(1, np.array([3]), np.array([1.0]), np.array([0.9]))
