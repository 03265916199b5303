"""Notebook outputs: tables (CSV + Markdown), figures (PNG), ``results.json`` and ``provenance.json``.

Every notebook creates one ``Reporter("NN_name", profile=..., seeds=...)`` and writes through it into
``reports/NN_name/`` (or ``$CROWDLIB_REPORTS/NN_name/``, which ``make smoke`` and ``make test`` point at a
scratch folder so that committed reports are never overwritten by a smoke run).
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from crowdlib import paths
from crowdlib.repro import Claim, Row, build_results, cache_uses, provenance

__all__ = ["Reporter", "results_table", "claims_table", "claim_reading", "to_markdown", "format_mean_std"]


def format_mean_std(mean: float, std: float, n: int, digits: int = 3) -> str:
    """``"0.812 ± 0.013"`` (or just the mean for a single seed)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"


def to_markdown(df: pd.DataFrame, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table (no optional dependency needed)."""
    frame = df.reset_index() if index and not isinstance(df.index, pd.RangeIndex) else df

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4g}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(cell(v) for v in r.tolist()) + " |")
    return "\n".join(lines) + "\n"


def results_table(rows: Sequence[Row], digits: int = 3) -> pd.DataFrame:
    """Settings as rows, metrics as columns: ``ours`` as "mean ± std" with the paper's number beside it."""
    data: dict[tuple[str, str], dict[str, str]] = {}
    order: list[tuple[str, str]] = []
    for r in rows:
        key = (r.table, r.setting)
        if key not in data:
            data[key] = {}
            order.append(key)
        data[key][f"{r.metric} (ours)"] = format_mean_std(r.mean, r.std, len(r.values), digits)
        data[key][f"{r.metric} (paper)"] = "" if r.paper is None else f"{r.paper:g}"
    df = pd.DataFrame([data[k] for k in order], index=pd.MultiIndex.from_tuples(order, names=["table", "setting"]))
    return df.fillna("")


def claim_reading(c: Claim, digits: int = 3) -> str:
    """The plain sentence of one evaluated claim: the paper's direction, our means, the gap and its standard error,
    and the state."""
    lower = c.higher_is_better is False
    rel = c.relation.replace(">", "<") if lower else c.relation
    kind = "lower is better" if lower else "higher is better"
    noise = ("seed noise unknown (fewer than two seeds)" if c.gap_se is None
             else f"gap {c.gap:+.{digits}f} ± {c.gap_se:.{digits}f} (standard error across seeds)")
    verdict = {"reproduced": "reproduced: the gap clears the seed noise",
               "contradicted": "contradicted: the opposite direction, beyond the seed noise",
               "inconclusive": "inconclusive: the gap does not clear the seed noise"}[str(c.state)]
    return (f"Paper: {c.better} {rel} {c.worse} on {c.metric} ({kind}); ours: {c.better_mean:.{digits}f} vs "
            f"{c.worse_mean:.{digits}f}, {noise}; {verdict}.")


def claims_table(claims: Sequence[Claim], digits: int = 3) -> pd.DataFrame:
    """One row per evaluated claim: both means, the gap and its standard error, the state and a plain sentence.

    States (:func:`crowdlib.repro.claim_state`): reproduced (the paper's direction with a gap larger than its
    standard error across seeds), inconclusive (within it, or the seed noise unknown), contradicted (the opposite
    direction beyond it).
    """
    rnd = lambda x: None if x is None else round(float(x), digits)  # noqa: E731
    recs = [{
        "claim": c.text, "metric": c.metric, "better": c.better, "worse": c.worse,
        "better (ours)": rnd(c.better_mean), "worse (ours)": rnd(c.worse_mean),
        "gap": rnd(c.gap), "gap se": rnd(c.gap_se), "state": c.state, "reproduced": c.reproduced,
        "reading": claim_reading(c, digits),
    } for c in claims]
    return pd.DataFrame(recs)


class Reporter:
    """Writes one notebook's tables, figures, results and provenance under ``reports/<notebook>/``."""

    def __init__(self, notebook: str, profile: str = "smoke", seeds: Sequence[int] | None = None) -> None:
        if not notebook or "/" in notebook:
            raise ValueError(f"notebook must be a plain name such as '11_sdnet_ablation', got {notebook!r}")
        self.notebook = notebook
        self.profile = profile
        self.seeds = list(seeds) if seeds is not None else None
        self.start = time.time()
        self.dir: Path = paths.reports_dir(notebook)

    def table(self, df: pd.DataFrame, name: str, caption: str | None = None) -> pd.DataFrame:
        """Write ``<name>.csv`` and ``<name>.md`` and return ``df`` (so a cell can end with ``rep.table(...)``)."""
        df.to_csv(self.dir / f"{name}.csv")
        md = (f"**{caption}**\n\n" if caption else "") + to_markdown(df)
        (self.dir / f"{name}.md").write_text(md)
        return df

    def figure(self, fig: Any, name: str, dpi: int = 110) -> Path:
        """Save a matplotlib figure as ``<name>.png``; returns the path."""
        path = self.dir / f"{name}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        return path

    def results(self, rows: Sequence[Row], claims: Sequence[Claim] = ()) -> pd.DataFrame:
        """Write ``results.json`` (rows, evaluated claims, profile, seeds, wall time, git SHA); return the claims table."""
        doc = build_results(rows, claims, profile=self.profile, seeds=self.seeds,
                            wall_time_s=time.time() - self.start, notebook=self.notebook)
        (self.dir / "results.json").write_text(json.dumps(doc, indent=2))
        fields = ("text", "metric", "better", "worse", "table", "relation", "state", "gap", "gap_se", "better_mean",
                  "worse_mean", "better_std", "worse_std", "higher_is_better")
        evaluated = [Claim(**{k: c[k] for k in fields}) for c in doc["claims"]]
        self.table(results_table(rows), "results_table")
        if evaluated:
            return self.table(claims_table(evaluated), "claims")
        return pd.DataFrame()

    def provenance(self) -> dict[str, Any]:
        """Write ``provenance.json`` (with the profile, wall time so far and every cached model the notebook used:
        cache key, trained now or loaded, and the git SHA / torch version that trained it) and return it."""
        info = provenance()
        info.update(notebook=self.notebook, profile=self.profile, seeds=self.seeds,
                    wall_time_s=round(time.time() - self.start, 2), models=cache_uses())
        (self.dir / "provenance.json").write_text(json.dumps(info, indent=2, default=str))
        return info
