"""The scorecard of reports/README.md counts the three claim states per paper; the cross-run check compares two
report folders row by row and claim by claim."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from crowdlib.repro import Claim, Row, build_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import compare_reports  # noqa: E402
import reproduce  # noqa: E402


def _write(out: Path, stem: str, rows: list[Row], claims: list[Claim]) -> dict:
    (out / stem).mkdir(parents=True, exist_ok=True)
    doc = build_results(rows, claims, profile="default", seeds=[0, 1], wall_time_s=1.0, notebook=stem)
    (out / stem / "results.json").write_text(json.dumps(doc))
    (out / stem / "run.json").write_text(json.dumps({"status": "ok", "wall_time_s": 1.0, "profile": "default",
                                                      "git_sha": "abc"}))
    return doc


def _rows(shift: float = 0.0) -> list[Row]:
    return [Row("T", "a", "F1", [0.9 + shift, 0.8], seeds=[0, 1]), Row("T", "b", "F1", [0.5, 0.4], seeds=[0, 1]),
            Row("T", "c", "F1", [0.45, 0.5], seeds=[0, 1])]


CLAIMS = [Claim("a beats b", "F1", "a", "b", "T"),      # gap 0.4, se 0: reproduced
          Claim("b beats c", "F1", "b", "c", "T"),      # differences 0.05, -0.1: gap -0.025, se 0.075: inconclusive
          Claim("c beats a", "F1", "c", "a", "T")]      # gap -0.375, se 0.075: contradicted


def test_scorecard_counts_three_states(tmp_path):
    doc = _write(tmp_path, "11_toy", _rows(), CLAIMS)
    assert [c["state"] for c in doc["claims"]] == ["reproduced", "inconclusive", "contradicted"]
    text = reproduce.write_readme(tmp_path).read_text()
    assert "| Crowd-SDNet | 1 | 1 | 1 | 3 |" in text
    assert "### Crowd-SDNet: 1 of 3 claims reproduced (1 inconclusive, 1 contradicted)" in text
    assert "+0.400 ± 0.000" in text and "**contradicted**" in text


def test_compare_reports_same_and_flipped(tmp_path, capsys):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _write(a, "11_toy", _rows(), CLAIMS)
    _write(b, "11_toy", _rows(), CLAIMS)
    assert compare_reports.main([str(a), str(b), "--strict"]) == 0
    assert "3/3 rows identical, 3/3 claims with the same state" in capsys.readouterr().out
    # seed 0 of "a" drops below "c": "c beats a" is no longer contradicted and a's mean moves beyond its spread
    _write(c, "11_toy", _rows(shift=-0.5), CLAIMS)
    assert compare_reports.main([str(a), str(c), "--json", str(tmp_path / "cmp.json")]) == 1
    out = capsys.readouterr().out
    assert "claim 'c beats a'" in out and "DIFFERENT" in out
    assert json.loads((tmp_path / "cmp.json").read_text())["same_conclusions"] is False
    assert compare_reports.main([str(a), str(tmp_path / "missing")]) == 2


def test_compare_reports_derives_states_of_old_documents(tmp_path):
    doc = _write(tmp_path / "a", "11_toy", _rows(), CLAIMS)
    for cl in doc["claims"]:
        del cl["state"]
    assert compare_reports.claim_states(doc) == {"a beats b": "reproduced", "b beats c": "inconclusive",
                                                 "c beats a": "contradicted"}
