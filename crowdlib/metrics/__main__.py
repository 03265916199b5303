"""Command line: ``python -m crowdlib.metrics loc --gt GT.txt --pred PRED.txt [--ids ...] [--json]``.

Scores an NWPU-format prediction file against an NWPU-format ground-truth file with the NWPU-Crowd localization
protocol (:func:`crowdlib.metrics.nwpu.nwpu_evaluate`) and prints a table, or one JSON object with ``--json``.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from crowdlib.data.formats.nwpu_loc import nwpu_val_ids, read_nwpu_gt, read_nwpu_pred


def _parse_ids(values: Sequence[str] | None) -> list[str] | None:
    """``--ids`` values: ``nwpu-val`` (the reference id list), ranges ``A-B`` (inclusive) or single ids."""
    if not values:
        return None
    out: list[str] = []
    for v in values:
        for token in v.replace(",", " ").split():
            if token == "nwpu-val":
                out.extend(nwpu_val_ids())
            elif token.count("-") == 1 and all(part.isdigit() for part in token.split("-")):
                a, b = token.split("-")
                if int(b) < int(a):
                    raise ValueError(f"--ids: empty range {token!r}")
                width = len(a) if a.startswith("0") else 0
                out.extend(str(i).zfill(width) for i in range(int(a), int(b) + 1))
            else:
                out.append(token)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m crowdlib.metrics", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    loc = sub.add_parser(
        "loc", help="NWPU-Crowd localization protocol (Precision/Recall/F1, per-level recall, MAE/MSE/NAE)"
    )
    loc.add_argument("--gt", required=True, help="ground-truth file 'id num x y sigma_s sigma_l level ...'")
    loc.add_argument("--pred", required=True, help="prediction file 'id num x y ...' (float coordinates accepted)")
    loc.add_argument(
        "--ids",
        nargs="+",
        default=None,
        help="image ids to evaluate, in order: ids, inclusive ranges like 3110-3609, or 'nwpu-val' for the reference "
        "evaluator's list (3110..3609 with 3169 replaced by 3098); default: every id of the ground-truth file",
    )
    loc.add_argument(
        "--allow-missing",
        action="store_true",
        help="count an id absent from the prediction file as an empty prediction",
    )
    loc.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def _table(d: dict) -> str:
    lines = [f"{'':8s} {'Precision':>10s} {'Recall':>10s} {'F1':>10s}   recall per level 0..5"]
    for name in ("sigma_s", "sigma_l"):
        s = d[name]
        levels = " ".join(f"{v:.4f}" for v in s["recall_per_level"])
        lines.append(f"{name:8s} {s['precision']:10.4f} {s['recall']:10.4f} {s['f1']:10.4f}   {levels}")
    lines.append(
        f"counting: MAE {d['mae']:.2f}  MSE (RMSE) {d['mse']:.2f}  NAE {d['nae']:.4f} "
        f"({d['nae_skipped']} images with zero heads skipped)  images {d['n_images']}  time {d['seconds']:.2f} s"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "loc":
        import time

        from crowdlib.metrics.nwpu import nwpu_evaluate

        t0 = time.perf_counter()
        try:
            gt = read_nwpu_gt(args.gt)
            pred = read_nwpu_pred(args.pred)
            res = nwpu_evaluate(gt, pred, _parse_ids(args.ids), allow_missing_pred=args.allow_missing)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        res.seconds = time.perf_counter() - t0
        d = res.to_dict()
        if args.json:
            keep = ("precision", "recall", "f1", "recall_per_level")
            out = {k: {kk: d[k][kk] for kk in keep} for k in ("sigma_s", "sigma_l")}
            out.update({k: d[k] for k in ("mae", "mse", "nae", "nae_skipped", "n_images", "seconds")})
            print(json.dumps(out))
        else:
            print(_table(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
