"""Compare two report folders row by row and claim by claim (the cross-run check of a reproduction).

For every ``NN_*/results.json`` found in both folders it reports

- rows (keyed by table, setting, metric): how far each mean moved, in absolute terms, relative to the mean, and
  relative to the row's stated spread (the larger of the two seed standard deviations); a row "moved beyond its
  spread" when the means differ by more than that spread (exact rows and single-seed rows: by more than
  ``--tol``); rows with the same seeds are also compared value by value;
- claims (keyed by their text): the state in each folder (reproduced / inconclusive / contradicted). A results file
  written before claims had states gets its states re-derived from its rows with :mod:`crowdlib.repro`.

Exit status 0 when every claim has the same state in both folders and no row moved beyond its spread, 1 otherwise,
2 on bad input. ``--strict`` also fails on any per-seed value that differs by more than ``--tol``.

Example::

    .venv/bin/python tools/compare_reports.py reports /tmp/fresh-clone/reports --only 1 2
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_results(folder: Path, only: list[str] | None) -> dict[str, dict]:
    """``{notebook: results document}`` of every ``NN_*/results.json`` under ``folder``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    out = {}
    for p in sorted(folder.glob("[0-9][0-9]_*/results.json")):
        stem = p.parent.name
        if only and not any(stem.startswith(o) for o in only):
            continue
        try:
            out[stem] = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: not valid JSON ({exc})") from exc
    return out


def claim_states(doc: dict) -> dict[str, str]:
    """``{claim text: state}``; states are re-derived from the rows when the document stores none."""
    claims = doc.get("claims", [])
    if all("state" in c for c in claims):
        return {c["text"]: c["state"] for c in claims}
    from crowdlib.repro import Claim, evaluate_claims, rows_from_doc

    rows = rows_from_doc(doc)
    ev = evaluate_claims(rows, [Claim(c["text"], c["metric"], c["better"], c["worse"], c.get("table"),
                                      c.get("relation", ">")) for c in claims])
    return {c.text: str(c.state) for c in ev}


def _key(r: dict) -> tuple[str, str, str]:
    return (str(r["table"]), str(r["setting"]), str(r["metric"]))


def _f(x: Any) -> float:
    return float("nan") if x is None else float(x)


def compare_rows(a: dict, b: dict, tol: float) -> dict[str, Any]:
    """Row-level comparison of two results documents of one notebook."""
    ra, rb = {_key(r): r for r in a.get("rows", [])}, {_key(r): r for r in b.get("rows", [])}
    out: dict[str, Any] = {"n": 0, "identical": 0, "moved_1pct": 0, "beyond_spread": [], "value_diffs": 0,
                           "only_a": sorted(set(ra) - set(rb)), "only_b": sorted(set(rb) - set(ra)), "max_rel": 0.0}
    for k in sorted(set(ra) & set(rb)):
        x, y = ra[k], rb[k]
        out["n"] += 1
        ma, mb = _f(x.get("mean")), _f(y.get("mean"))
        if x.get("values") == y.get("values"):
            out["identical"] += 1
        if x.get("seeds") is not None and x.get("seeds") == y.get("seeds"):
            out["value_diffs"] += sum(1 for u, v in zip(x["values"], y["values"])
                                      if not (u is None and v is None) and
                                      (u is None or v is None or abs(u - v) > tol * max(1.0, abs(u))))
        if math.isnan(ma) and math.isnan(mb):
            continue
        diff = abs(ma - mb)
        rel = diff / max(abs(ma), 1e-12)
        out["max_rel"] = max(out["max_rel"], rel if math.isfinite(rel) else math.inf)
        if rel > 0.01:
            out["moved_1pct"] += 1
        spread = max(_f(x.get("std")), _f(y.get("std")))
        limit = spread if math.isfinite(spread) and spread > 0 else tol * max(1.0, abs(ma))
        if not diff <= limit:
            out["beyond_spread"].append((k, ma, mb, spread))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path, help="first report folder (e.g. the committed reports/)")
    ap.add_argument("b", type=Path, help="second report folder (e.g. a fresh clone's reports/)")
    ap.add_argument("--only", nargs="*", default=None, help="only notebooks whose names start with these prefixes")
    ap.add_argument("--tol", type=float, default=1e-9, help="relative tolerance for 'the same value' (default 1e-9)")
    ap.add_argument("--strict", action="store_true", help="also fail when any per-seed value differs beyond --tol")
    ap.add_argument("--json", type=Path, default=None, help="also write the comparison as JSON to this file")
    args = ap.parse_args(argv)
    try:
        da, db = load_results(args.a, args.only), load_results(args.b, args.only)
    except (FileNotFoundError, ValueError) as exc:
        print(f"compare_reports: {exc}", file=sys.stderr)
        return 2
    common = sorted(set(da) & set(db))
    if not common:
        print(f"compare_reports: no notebook has results.json in both {args.a} and {args.b}", file=sys.stderr)
        return 2
    bad = False
    report: dict[str, Any] = {"a": str(args.a), "b": str(args.b), "notebooks": {}}
    n_rows = n_ident = n_claims = n_same = 0
    for nb in sorted(set(da) | set(db)):
        if nb not in common:
            print(f"{nb}: only in {args.a if nb in da else args.b}")
            continue
        rows = compare_rows(da[nb], db[nb], args.tol)
        sa, sb = claim_states(da[nb]), claim_states(db[nb])
        flips = [(t, sa.get(t), sb.get(t)) for t in sorted(set(sa) | set(sb)) if sa.get(t) != sb.get(t)]
        n_rows += rows["n"]
        n_ident += rows["identical"]
        n_claims += len(set(sa) | set(sb))
        n_same += len(set(sa) | set(sb)) - len(flips)
        print(f"{nb}: rows {rows['identical']}/{rows['n']} identical, {rows['moved_1pct']} moved > 1%, "
              f"{len(rows['beyond_spread'])} beyond their spread (max relative move {rows['max_rel']:.2e}); "
              f"claims {len(sa) - len([f for f in flips if f[1] is not None])}/{len(sa)} same state")
        for k, ma, mb, sp in rows["beyond_spread"]:
            print(f"    row {'/'.join(k)}: {ma:.6g} vs {mb:.6g} (spread {sp:.3g})")
        for k in rows["only_a"] + rows["only_b"]:
            print(f"    row {'/'.join(k)} only in {args.a if k in rows['only_a'] else args.b}")
        for t, x, y in flips:
            print(f"    claim {t!r}: {x} vs {y}")
        bad |= bool(flips) or bool(rows["beyond_spread"]) or (args.strict and rows["value_diffs"] > 0)
        report["notebooks"][nb] = {"rows": {k: v for k, v in rows.items() if k != "beyond_spread"},
                                   "beyond_spread": [["/".join(k), ma, mb, sp] for k, ma, mb, sp in
                                                     rows["beyond_spread"]],
                                   "claim_flips": flips}
    print(f"total: {n_ident}/{n_rows} rows identical, {n_same}/{n_claims} claims with the same state -> "
          f"{'DIFFERENT' if bad else 'same conclusions'}")
    if args.json:
        report["same_conclusions"] = not bad
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
