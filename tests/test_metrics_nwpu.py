"""NWPU-Crowd localization protocol: hand-computed cases, the text format, the CLI and the reference numbers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdlib import paths
from crowdlib.data.formats.nwpu_loc import (
    NWPULocFormatError,
    nwpu_gt_to_records,
    nwpu_val_ids,
    read_nwpu_gt,
    read_nwpu_pred,
    write_nwpu_gt,
    write_nwpu_pred,
)
from crowdlib.metrics import localization_prf, match_within_radius, nwpu_evaluate
from crowdlib.metrics.__main__ import _parse_ids, build_parser
from crowdlib.metrics.__main__ import main as cli_main

SHARED = paths.shared_root()
NWPU_DIR = None if SHARED is None else SHARED / "data" / "nwpu_loc"


def heads(points, sigma_s, sigma_l, levels=None):
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    n = len(pts)
    sig = np.stack([np.broadcast_to(sigma_s, (n,)), np.broadcast_to(sigma_l, (n,))], axis=1)
    lv = np.zeros(n, dtype=np.int64) if levels is None else np.asarray(levels)
    return pts, sig, lv


def test_inclusive_radius_and_micro_average():
    gt = {"a": heads([[0, 0], [100, 0]], 3, 5, [1, 2]), "b": heads([[0, 0]], 3, 5, [2])}
    # a: one prediction exactly 5 px away (sigma_l only, inclusive), one 3 px away from the second head (both)
    pred = {"a": np.array([[3.0, 4.0], [100.0, 3.0]]), "b": np.array([[50.0, 50.0]])}
    r = nwpu_evaluate(gt, pred)
    assert (r.sigma_l.tp, r.sigma_l.fp, r.sigma_l.fn) == (2, 1, 1)
    assert (r.sigma_s.tp, r.sigma_s.fp, r.sigma_s.fn) == (1, 2, 2)
    assert r.sigma_l.precision == pytest.approx(2 / 3) and r.sigma_l.recall == pytest.approx(2 / 3)
    assert r.sigma_s.f1 == pytest.approx(1 / 3)
    # levels: level 1 = head (0,0) of a, level 2 = head (100,0) of a and head of b
    assert r.sigma_l.recall_per_level[1] == 1.0 and r.sigma_l.recall_per_level[2] == 0.5
    assert r.sigma_s.recall_per_level[1] == 0.0 and r.sigma_s.recall_per_level[2] == 0.5
    assert r.sigma_l.recall_per_level[0] == 0.0  # no heads of level 0: 0/0 reported as 0
    assert r.mae == pytest.approx(0.0) and r.mse == pytest.approx(0.0) and r.nae == pytest.approx(0.0)


def test_empty_predictions_and_empty_ground_truth():
    gt = {"1": heads([[10, 10], [20, 20]], 4, 8), "2": heads(np.zeros((0, 2)), 4, 8)}
    pred = {"1": np.zeros((0, 2)), "2": np.array([[5.0, 5.0]])}
    r = nwpu_evaluate(gt, pred)
    assert (r.sigma_l.tp, r.sigma_l.fp, r.sigma_l.fn) == (0, 1, 2)
    assert r.sigma_l.precision == 0.0 and r.sigma_l.f1 == 0.0
    assert r.nae_skipped == 1 and r.nae == pytest.approx(1.0)
    assert r.mae == pytest.approx(1.5)


def test_maximum_cardinality_beats_greedy():
    # the prediction at (5, 0) is equidistant to both heads; a greedy match to the first head would leave the
    # prediction at (-4, 0) without a partner. Maximum matching pairs (5,0)-(10,0) and (-4,0)-(0,0).
    gt = {"x": heads([[0, 0], [10, 0]], 6, 6)}
    pred = {"x": np.array([[5.0, 0.0], [-4.0, 0.0]])}
    r = nwpu_evaluate(gt, pred)
    assert (r.sigma_s.tp, r.sigma_s.fp, r.sigma_s.fn) == (2, 0, 0)
    g2p, p2g = match_within_radius(pred["x"], gt["x"][0], 6.0)
    assert g2p.tolist() == [1, 0] and p2g.tolist() == [1, 0]


def test_duplicates_within_radius_count_once():
    gt = {"x": heads([[0, 0]], 5, 5)}
    pred = {"x": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])}
    r = nwpu_evaluate(gt, pred)
    assert (r.sigma_l.tp, r.sigma_l.fp, r.sigma_l.fn) == (1, 2, 0)


def test_per_head_sigma_is_used():
    # the prediction is 7 px from both heads; only the head with sigma 8 may take it
    pts = np.array([[0.0, 0.0], [14.0, 0.0]])
    gt = {"x": (pts, np.array([[3, 6], [3, 8]], dtype=float), np.array([0, 1]))}
    r = nwpu_evaluate(gt, {"x": np.array([[7.0, 0.0]])})
    assert r.sigma_l.tp == 1 and r.sigma_l.recall_per_level == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert r.sigma_s.tp == 0


def test_id_selection_missing_predictions_and_records():
    gt = {"1": heads([[0, 0]], 2, 4), "2": heads([[5, 5]], 2, 4)}
    with pytest.raises(ValueError, match="'2' has no prediction"):
        nwpu_evaluate(gt, {"1": np.zeros((0, 2))})
    r = nwpu_evaluate(gt, {"1": np.array([[0.0, 0.0]])}, ids=["1"])
    assert r.ids == ["1"] and r.sigma_l.tp == 1
    r = nwpu_evaluate(gt, {"1": np.array([[0.0, 0.0]])}, allow_missing_pred=True)
    assert r.sigma_l.fn == 1
    with pytest.raises(ValueError, match="'9' is not in the ground truth"):
        nwpu_evaluate(gt, {}, ids=["9"])


def test_fixed_radius_prf():
    out = localization_prf([np.array([[0.0, 0.0], [50.0, 0.0]])], [np.array([[3.0, 4.0]])], radius=5)
    assert (out["tp"], out["fp"], out["fn"]) == (1, 1, 0)
    assert out["precision"] == 0.5 and out["recall"] == 1.0


def test_format_roundtrip_and_float_predictions(tmp_path):
    gt = {"0401": heads([[1, 2], [3, 4]], [5, 6], [7, 8], [1, 2]), "0402": heads(np.zeros((0, 2)), 1, 1)}
    write_nwpu_gt(tmp_path / "gt.txt", gt)
    back = read_nwpu_gt(tmp_path / "gt.txt")
    assert list(back) == ["0401", "0402"]
    assert back["0401"].points.tolist() == [[1, 2], [3, 4]]
    assert back["0401"].sigmas.tolist() == [[5, 7], [6, 8]]
    assert back["0401"].levels.tolist() == [1, 2] and len(back["0402"].points) == 0
    write_nwpu_pred(tmp_path / "p.txt", {"0401": np.array([[1.25, 2.5]])}, integer=False)
    assert (tmp_path / "p.txt").read_text() == "0401 1 1.25 2.50\n"
    assert read_nwpu_pred(tmp_path / "p.txt")["0401"].tolist() == [[1.25, 2.5]]
    write_nwpu_pred(tmp_path / "q.txt", {"7": np.array([[1.6, 2.4]]), "8": np.zeros((0, 2))})
    assert (tmp_path / "q.txt").read_text() == "7 1 2 2\n8 0\n"
    records = nwpu_gt_to_records(back)
    assert records[0].image_id == "0401" and records[0].levels.tolist() == [1, 2]


@pytest.mark.parametrize(
    "text, match",
    [
        ("1 2 10 10 4 6 1\n", r"declares 2 entries"),
        ("1 x 10 10 4 6 1\n", r"not an integer"),
        ("1 1 10 ten 4 6 1\n", r"non-numeric"),
        ("1 1 10 10 4 6 1.5\n", r"levels must be non-negative integers"),
        ("1 1 10 10 4 6 1\n1 0\n", r"duplicate image id 1"),
        ("1\n", r"expected 'id num"),
    ],
)
def test_malformed_ground_truth_names_file_and_line(tmp_path, text, match):
    path = tmp_path / "bad_gt.txt"
    path.write_text("\n" + text if "duplicate" not in match else text)
    with pytest.raises(NWPULocFormatError, match=match) as info:
        read_nwpu_gt(path)
    assert "bad_gt.txt" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_malformed_prediction_line_number(tmp_path):
    path = tmp_path / "pred.txt"
    path.write_text("1 1 3 4\n2 2 1 2 3\n")
    with pytest.raises(NWPULocFormatError, match=r"pred.txt:2: image 2 declares 2 entries"):
        read_nwpu_pred(path)


def test_val_id_list():
    ids = nwpu_val_ids()
    assert len(ids) == 500 and ids[0] == "3110" and ids[-1] == "3609"
    assert "3169" not in ids and ids[59] == "3098"


def _write_small_files(tmp_path: Path) -> tuple[Path, Path]:
    write_nwpu_gt(tmp_path / "gt.txt", {"1": heads([[0, 0], [20, 0]], 2, 4, [0, 1]), "2": heads([[9, 9]], 2, 4, [1])})
    write_nwpu_pred(tmp_path / "pred.txt", {"1": np.array([[3.0, 0.0]]), "2": np.array([[9.0, 9.0], [40.0, 40.0]])})
    return tmp_path / "gt.txt", tmp_path / "pred.txt"


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "crowdlib.metrics", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_json_and_table(tmp_path):
    gt, pred = _write_small_files(tmp_path)
    out = _run_cli("loc", "--gt", str(gt), "--pred", str(pred), "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert set(d) >= {"sigma_s", "sigma_l", "mae", "mse", "nae", "seconds"}
    assert set(d["sigma_l"]) == {"precision", "recall", "f1", "recall_per_level"}
    assert d["sigma_l"]["precision"] == pytest.approx(2 / 3) and d["sigma_l"]["recall"] == pytest.approx(2 / 3)
    assert d["sigma_s"]["recall"] == pytest.approx(1 / 3)
    assert d["mae"] == pytest.approx(1.0)  # |1 - 2| and |2 - 1|
    bad = tmp_path / "bad.txt"
    bad.write_text("1 3 1 2\n")
    out = _run_cli("loc", "--gt", str(gt), "--pred", str(bad))
    assert out.returncode == 2 and "bad.txt:1" in out.stderr


def test_cli_table_ids_and_help_in_process(tmp_path, capsys):
    gt, pred = _write_small_files(tmp_path)
    assert cli_main(["loc", "--gt", str(gt), "--pred", str(pred), "--ids", "2"]) == 0
    text = capsys.readouterr().out
    assert "sigma_l" in text and "images 1" in text
    assert _parse_ids(["3110-3112", "0401", "img-1"]) == ["3110", "3111", "3112", "0401", "img-1"]
    assert _parse_ids(["nwpu-val"]) == nwpu_val_ids()
    loc_help = build_parser()._subparsers._group_actions[0].choices["loc"].format_help()
    for flag in ("--gt", "--pred", "--ids", "--json", "--allow-missing"):
        assert flag in loc_help


points_strategy = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=0, max_size=12
).map(lambda v: np.array(v, dtype=np.float64).reshape(-1, 2))


@settings(max_examples=40, deadline=None)
@given(
    gts=st.lists(points_strategy, min_size=1, max_size=3),
    noise=st.lists(points_strategy, min_size=3, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_properties_perfect_permutation_far_false_positive(gts, noise, seed):
    rng = np.random.default_rng(seed)
    gt = {str(i): heads(g, 2.0, 6.0, rng.integers(0, 6, len(g))) for i, g in enumerate(gts)}
    # perfect prediction
    perfect = nwpu_evaluate(gt, {k: v[0] for k, v in gt.items()})
    if sum(len(g) for g in gts):
        assert perfect.sigma_s.f1 == 1.0 and perfect.sigma_l.f1 == 1.0
    assert perfect.mae == 0.0
    # noisy predictions: permutation invariance
    pred = {str(i): noise[i] for i in range(len(gts))}
    base = nwpu_evaluate(gt, pred)
    perm = nwpu_evaluate(gt, {k: v[rng.permutation(len(v))] for k, v in pred.items()})
    for name in ("sigma_s", "sigma_l"):
        a, b = getattr(base, name), getattr(perm, name)
        assert (a.tp, a.fp, a.fn) == (b.tp, b.fp, b.fn)
    # a far-away false positive never raises precision
    far = dict(pred)
    far["0"] = np.concatenate([pred["0"], [[1e4, 1e4]]])
    worse = nwpu_evaluate(gt, far)
    assert worse.sigma_l.precision <= base.sigma_l.precision
    assert worse.sigma_l.tp == base.sigma_l.tp


@pytest.mark.shared
@pytest.mark.skipif(NWPU_DIR is None or not NWPU_DIR.is_dir(), reason="../shared/data/nwpu_loc is absent")
def test_conformance_with_reference_evaluator():
    expected = json.loads((NWPU_DIR / "expected_Raz_loc.json").read_text())
    gt = read_nwpu_gt(NWPU_DIR / "val_gt_loc.txt")
    pred = read_nwpu_pred(NWPU_DIR / "Raz_loc_val_0.5.txt")
    r = nwpu_evaluate(gt, pred, nwpu_val_ids())
    assert len(r.ids) == 500
    for name in ("sigma_s", "sigma_l"):
        got, want = getattr(r, name), expected[name]
        for key in ("precision", "recall", "f1"):
            assert getattr(got, key) == pytest.approx(want[key], abs=1e-6), (name, key)
        np.testing.assert_allclose(got.recall_per_level, want["recall_per_level"], rtol=0, atol=1e-8)
    for key in ("mae", "mse", "nae"):
        assert getattr(r, key) == pytest.approx(expected["counting"][key], abs=1e-6), key


def _transcribed_search(match: np.ndarray) -> np.ndarray:
    """The reference evaluator's matching written out as described in REFERENCE.md: for each prediction in file
    order (rows), a recursive depth-first search over the heads (columns) it may match, in index order, with the
    visited marks reset for each prediction. Returns, per head, the matched prediction or -1."""
    import sys

    graph = [list(np.nonzero(row)[0]) for row in match]
    match_r = [-1] * match.shape[1]
    vis = [False] * match.shape[1]

    def dfs(u: int) -> bool:
        for v in graph[u]:
            if vis[v]:
                continue
            vis[v] = True
            if match_r[v] == -1 or dfs(match_r[v]):
                match_r[v] = u
                return True
        return False

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 10 * match.shape[0] + 100))
    try:
        for a in range(match.shape[0]):
            vis = [False] * match.shape[1]
            dfs(a)
    finally:
        sys.setrecursionlimit(old)
    return np.asarray(match_r, dtype=np.int64)


@pytest.mark.parametrize("seed", range(25))
def test_matching_follows_the_reference_search_order(seed):
    """On random crowded images (many overlapping radii, long augmenting paths) our matching picks exactly the
    heads the reference's search picks, not just a matching of the same size."""
    from scipy.spatial import distance_matrix

    from crowdlib.metrics._pairs import candidate_pairs
    from crowdlib.metrics.nwpu import reference_matching

    rng = np.random.default_rng(seed)
    n_g, n_p = int(rng.integers(1, 60)), int(rng.integers(1, 60))
    g = rng.uniform(0, 40, (n_g, 2))
    p = rng.uniform(0, 40, (n_p, 2))
    if seed % 3 == 0:  # integer coordinates: distances exactly on the radius
        g, p = np.round(g), np.round(p)
    sigma = rng.uniform(1, 12, n_g)
    want = _transcribed_search(distance_matrix(p, g) <= sigma[None, :])
    gi, pj, *_ = candidate_pairs([p], [g], sigma)
    got = reference_matching(gi, pj, n_g, n_p)
    np.testing.assert_array_equal(got, want)
