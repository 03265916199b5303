"""Seeding, config hashing, atomic checkpoints, the model cache, results and claims."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from crowdlib import repro
from crowdlib.repro import CheckpointError, Claim, Row


def _tiny_training_step(seed: int) -> dict[str, torch.Tensor]:
    g = repro.seed_everything(seed, deterministic=True)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(2, 3, 8, 8, generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=1, shuffle=True,
                                         generator=g, worker_init_fn=repro.seed_worker)
    for (xb,) in loader:
        loss = model(xb).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_seeded_training_is_deterministic():
    a, b = _tiny_training_step(3), _tiny_training_step(3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = _tiny_training_step(4)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_seed_must_be_non_negative_int():
    with pytest.raises(ValueError, match="seed"):
        repro.seed_everything(-1)


def test_config_hash_is_order_independent_and_sensitive():
    h1 = repro.config_hash({"a": 1, "b": [1, 2], "c": {"x": 0.5}})
    h2 = repro.config_hash({"c": {"x": 0.5}, "b": (1, 2), "a": 1})
    assert h1 == h2 and len(h1) == 12
    assert repro.config_hash({"a": 2, "b": [1, 2], "c": {"x": 0.5}}) != h1
    with pytest.raises(TypeError, match="cannot hash"):
        repro.config_hash({"f": object()})


def test_checkpoint_roundtrip(tmp_path):
    obj = {"model": {"w": torch.arange(4.0)}, "history": [{"loss": 0.5}], "name": "x"}
    path = repro.save_checkpoint(tmp_path / "ck.pt", obj)
    back = repro.load_checkpoint(path)
    assert torch.equal(back["model"]["w"], obj["model"]["w"]) and back["history"] == obj["history"]


def test_atomic_write_survives_simulated_crash(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    repro.save_checkpoint(path, {"v": torch.tensor([1.0])})

    def crash(*args, **kwargs):
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        repro.save_checkpoint(path, {"v": torch.tensor([2.0])})
    monkeypatch.undo()
    assert torch.equal(repro.load_checkpoint(path)["v"], torch.tensor([1.0]))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "temporary file left behind"


def test_truncated_checkpoint_raises_clear_error(tmp_path):
    path = repro.save_checkpoint(tmp_path / "ck.pt", {"v": torch.randn(100)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        repro.load_checkpoint(path)


def test_foreign_file_raises_clear_error(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"state": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="not a crowdlib checkpoint"):
        repro.load_checkpoint(path)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError):
        repro.load_checkpoint(tmp_path / "text.pt")


def test_get_or_train_caches_by_config(tmp_path):
    calls = []

    def train(cfg):
        calls.append(cfg)
        return {"w": torch.tensor([cfg["lr"]])}

    r1 = repro.get_or_train({"lr": 0.1}, train, name="toy", cache_dir=tmp_path)
    r2 = repro.get_or_train({"lr": 0.1}, train, name="toy", cache_dir=tmp_path)
    r3 = repro.get_or_train({"lr": 0.2}, train, name="toy", cache_dir=tmp_path)
    assert len(calls) == 2 and torch.equal(r1["w"], r2["w"]) and float(r3["w"]) == pytest.approx(0.2)


def test_get_or_train_never_retrains_over_corrupt_cache(tmp_path):
    train = lambda cfg: {"w": torch.ones(3)}  # noqa: E731
    repro.get_or_train({"a": 1}, train, name="toy", cache_dir=tmp_path)
    (path,) = (tmp_path / "toy").glob("*.pt")
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(CheckpointError):
        repro.get_or_train({"a": 1}, train, name="toy", cache_dir=tmp_path)


def test_rows_and_claims():
    rows = [Row("T3", "both", "AP", [0.8, 0.9], paper=0.7, seeds=[0, 1]), Row("T3", "none", "AP", [0.5, 0.6], seeds=[0, 1]),
            Row("T3", "both", "MAE", [2.0, 2.0], higher_is_better=False), Row("T3", "none", "MAE", [3.0],
                                                                              higher_is_better=False)]
    assert rows[0].mean == pytest.approx(0.85) and rows[0].std == pytest.approx(0.0707107, rel=1e-5)
    claims = repro.evaluate_claims(rows, [Claim("both beats none", "AP", "both", "none"),
                                          Claim("both has lower MAE", "MAE", "both", "none"),
                                          Claim("none beats both", "AP", "none", "both")])
    # paired per-seed differences are 0.3 and 0.3: gap 0.3 with standard error 0
    assert claims[0].gap == pytest.approx(0.3) and claims[0].gap_se == pytest.approx(0.0)
    # a single-seed (not exact) row leaves the noise unknown
    assert claims[1].gap == pytest.approx(1.0) and claims[1].gap_se is None
    assert [c.state for c in claims] == ["reproduced", "inconclusive", "contradicted"]
    assert [c.reproduced for c in claims] == [True, False, False]
    with pytest.raises(ValueError, match="expected one row"):
        repro.evaluate_claims(rows, [Claim("x", "F1", "both", "none")])
    with pytest.raises(ValueError, match="relation"):
        repro.evaluate_claims(rows, [Claim("x", "AP", "both", "none", relation="<")])


def test_claim_states_hand_computed():
    a = Row("T", "a", "F1", [1.0, 2.0, 3.0], seeds=[0, 1, 2])
    b = Row("T", "b", "F1", [0.5, 1.9, 2.0], seeds=[0, 1, 2])
    # paired: differences 0.5, 0.1, 1.0 -> mean 0.5333, sd 0.45092, se 0.26034
    gap, se = repro.gap_and_se(a, b)
    assert gap == pytest.approx(0.533333, rel=1e-5) and se == pytest.approx(0.260342, rel=1e-5)
    assert repro.claim_state(gap, se) == "reproduced"
    # the same values without matching seeds: Welch sqrt(1.0 / 3 + 0.70333 / 3) = 0.75351 -> inconclusive
    gap_u, se_u = repro.gap_and_se(Row("T", "a", "F1", a.values), Row("T", "b", "F1", b.values))
    assert gap_u == pytest.approx(gap) and se_u == pytest.approx(0.753510, rel=1e-5)
    assert repro.claim_state(gap_u, se_u) == "inconclusive"
    # an exact row adds no noise: gap 1.0 against se sqrt(0 / 2) = 0
    exact = Row("T", "mean", "MAE", [3.0], higher_is_better=False, exact=True)
    noisy = Row("T", "net", "MAE", [2.0, 2.0], higher_is_better=False, seeds=[0, 1])
    assert repro.gap_and_se(noisy, exact) == (pytest.approx(1.0), pytest.approx(0.0))
    assert repro.claim_state(-0.2, 0.1) == "contradicted" and repro.claim_state(0.05, 0.1) == "inconclusive"
    # exact ties: ">=" holds, ">" does not decide
    assert repro.claim_state(0.0, 0.0, ">=") == "reproduced" and repro.claim_state(0.0, 0.0, ">") == "inconclusive"
    assert repro.claim_state(float("nan"), 0.1) == "inconclusive"
    with pytest.raises(ValueError, match="seeds"):
        Row("T", "a", "F1", [1.0, 2.0], seeds=[0])


def test_fixed_threads_restores_the_callers_settings():
    before = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(2)
    try:
        with repro.fixed_threads(1):
            assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
            with repro.fixed_threads(1):
                assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2 and torch.are_deterministic_algorithms_enabled() == det

        @repro.fixed_threads(1)
        def inside() -> int:
            return torch.get_num_threads()

        assert inside() == 1 and torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="positive integer"):
            repro.fixed_threads(0)
    finally:
        torch.set_num_threads(before)


def test_results_document_and_check(tmp_path):
    from crowdlib.report import Reporter

    rep = Reporter("99_toy", profile="smoke", seeds=[0, 1])
    rows = [Row("T", "a", "F1", [0.9, 0.8], paper=0.7), Row("T", "b", "F1", [0.5, 0.4], paper=0.6)]
    df = rep.results(rows, [Claim("a beats b", "F1", "a", "b", table="T")])
    assert df["state"].iloc[0] == "reproduced" and "reproduced" in df["reading"].iloc[0]
    doc = json.loads((rep.dir / "results.json").read_text())
    assert set(doc) >= {"rows", "claims", "profile", "seeds", "wall_time_s", "git_sha"}
    assert repro.check_results(doc) == []
    for field, value in (("reproduced", False), ("state", "contradicted"), ("gap", 0.1), ("better_mean", 0.5)):
        edited = json.loads(json.dumps(doc))
        edited["claims"][0][field] = value
        assert repro.check_results(edited), f"a hand-edited claim {field} must be detected"
    for field in ("mean", "std"):
        edited = json.loads(json.dumps(doc))
        edited["rows"][0][field] = 0.123
        assert repro.check_results(edited), f"a hand-edited row {field} must be detected"
    assert (rep.dir / "claims.md").is_file() and (rep.dir / "results_table.csv").is_file()


def test_provenance_fields():
    info = repro.provenance()
    for key in ("git_sha", "git_dirty", "torch", "cuda", "cudnn", "device", "cpu_count", "packages"):
        assert key in info


def test_committed_reports_claims_agree_with_rows():
    """Every stored number of the committed reports (means, stds, claim states, gaps) is what the values give."""
    root = Path(__file__).resolve().parents[1] / "reports"
    found = sorted(root.glob("*/results.json"))
    assert found, f"no committed results.json under {root}"
    # every paper notebook (not the 9x widgets) has committed reports; 00 has tables and provenance but no claims
    for nb in sorted((root.parent / "notebooks").glob("[0-8][0-9]_*.ipynb")):
        folder = root / nb.stem
        assert (folder / "provenance.json").is_file(), f"notebook {nb.name} has no committed reports in {folder}"
        if not nb.stem.startswith("00_"):
            assert (folder / "results.json").is_file(), f"notebook {nb.name} has no committed results.json"
    for res in found:
        problems = repro.check_results(json.loads(res.read_text()))
        assert not problems, f"{res}: {problems}"


def test_claim_reading_for_lower_is_better_and_noise():
    from crowdlib.report import claims_table

    rows = [Row("T", "a", "MAE", [2.0, 2.2], higher_is_better=False), Row("T", "b", "MAE", [3.0, 3.2],
                                                                          higher_is_better=False),
            Row("T", "a", "F1", [0.50, 0.60]), Row("T", "b", "F1", [0.54, 0.55]),
            Row("T", "a", "NAE", [0.5], higher_is_better=False), Row("T", "b", "NAE", [0.6], higher_is_better=False)]
    ev = repro.evaluate_claims(rows, [Claim("a counts better", "MAE", "a", "b"), Claim("a beats b", "F1", "a", "b"),
                                      Claim("a has lower NAE", "NAE", "a", "b")])
    df = claims_table(ev)
    assert "a < b on MAE (lower is better)" in df["reading"][0] and ev[0].state == "reproduced"
    # F1: gap 0.005 against a Welch standard error of 0.0502
    assert ev[1].state == "inconclusive" and "does not clear the seed noise" in df["reading"][1]
    assert ev[2].state == "inconclusive" and "seed noise unknown" in df["reading"][2]
    assert list(df["state"]) == ["reproduced", "inconclusive", "inconclusive"]


def test_git_dirty_ignores_rewritten_reports(tmp_path):
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "reports").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "reports" / "table.md").write_text("old\n")
    git("add", "-A")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    assert repro.git_info(tmp_path)["git_dirty"] is False
    (tmp_path / "reports" / "table.md").write_text("new\n")
    assert repro.git_info(tmp_path)["git_dirty"] is False, "rewritten reports must not mark the code dirty"
    (tmp_path / "code.py").write_text("x = 2\n")
    assert repro.git_info(tmp_path)["git_dirty"] is True


def test_apply_overrides_merges_data_of_one_kind_and_names_unknown_keys():
    defaults = {"lr": 1.0, "data": {"kind": "synthetic", "n": 4, "seed": 1}, "sizes": [1, 2]}
    cfg = repro.apply_overrides(defaults, {"data": {"n": 8}, "lr": 0.5})
    assert cfg == {"lr": 0.5, "data": {"kind": "synthetic", "n": 8, "seed": 1}, "sizes": [1, 2]}
    other = repro.apply_overrides(defaults, {"data": {"kind": "shanghaitech", "root": "x"}})
    assert other["data"] == {"kind": "shanghaitech", "root": "x"}
    cfg["sizes"].append(3)
    assert defaults["sizes"] == [1, 2], "the defaults must be deep-copied"
    with pytest.raises(ValueError, match=r"make_thing: unknown config key\(s\) \['lrr'\]"):
        repro.apply_overrides(defaults, {"lrr": 1}, name="make_thing")
