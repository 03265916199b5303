"""Execute the numbered notebooks with papermill and build ``reports/README.md``.

For each ``notebooks/NN_*.ipynb`` (NN < 90; the 9x notebooks are interactive) this runs papermill with the
parameters of ``params/<profile>/NN_*.yaml`` (plus ``profile=<profile>``), kernel ``crowdlib``, a per-cell
timeout, and ``CROWDLIB_REPORTS`` pointing at the output folder, so the notebook's tables and figures land in
``<out>/NN_*/`` next to the executed ``<out>/NN_*.ipynb``. A failing notebook is reported with its failing
cell and the others still run (``make -k`` semantics); the exit status is non-zero if any failed.

A notebook is re-executed only when its inputs changed: the notebook, its params file, the profile, or any
``crowdlib/`` source (stamps are kept in ``.cache/reproduce/``, never committed, so a fresh clone runs all).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATES = ("reproduced", "inconclusive", "contradicted")
PAPERS = {
    "0": "Setup and data", "1": "Crowd-SDNet", "2": "IIM", "3": "SSR-HEF", "4": "L2R",
    "5": "Bi-knowledge transfer",
}


def discover(only: list[str] | None) -> list[Path]:
    nbs = sorted(p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb") if int(p.name[:2]) < 90)
    if only:
        nbs = [p for p in nbs if any(p.name.startswith(o) for o in only)]
    return nbs


def input_hash(nb: Path, params: Path | None, profile: str) -> str:
    h = hashlib.sha256()
    h.update(profile.encode())
    h.update(nb.read_bytes())
    if params is not None:
        h.update(params.read_bytes())
    for src in sorted((ROOT / "crowdlib").rglob("*.py")):
        h.update(str(src.relative_to(ROOT)).encode())
        h.update(src.read_bytes())
    return h.hexdigest()


def git_sha() -> str | None:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def tree_dirty() -> bool | None:
    """Whether tracked files outside ``reports/`` differ from HEAD (``None`` outside a git checkout)."""
    import subprocess

    try:
        return bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                    ":(exclude)reports"], cwd=ROOT, capture_output=True, text=True,
                                   check=True).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None


def _ipc_kernel_manager() -> type:
    """A kernel manager whose kernels talk over local IPC sockets (under the temp folder) instead of TCP: the kernel
    then has no reason to warn that it "is running over TCP without encryption", so the log stays clean at the
    source instead of being filtered."""
    import tempfile
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            return os.path.join(tempfile.gettempdir(), f"crowdlib-kernel-{uuid.uuid4().hex[:12]}")

    return IPCKernelManager


class _ProgressTail:
    """Stream a notebook's progress lines while it runs: the kernel inherits ``CROWDLIB_PROGRESS_FILE`` and the
    study runner appends one line per run there (:mod:`crowdlib.study`); a thread prints new lines as
    ``      <notebook> | <line>``."""

    def __init__(self, stem: str) -> None:
        import tempfile
        import threading

        fd, self.path = tempfile.mkstemp(prefix=f"crowdlib-progress-{stem}-", suffix=".log")
        os.close(fd)
        os.environ["CROWDLIB_PROGRESS_FILE"] = self.path
        self.stem = stem
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with open(self.path, encoding="utf-8") as fh:
            while True:
                line = fh.readline()
                if line:
                    print(f"      {self.stem} | {line.rstrip()}", flush=True)
                elif self._stop.wait(0.5):
                    for rest in fh:
                        print(f"      {self.stem} | {rest.rstrip()}", flush=True)
                    return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        os.environ.pop("CROWDLIB_PROGRESS_FILE", None)
        try:
            os.unlink(self.path)
        except OSError:
            pass


def _claim_states(results: Path) -> dict[str, int] | None:
    """``{state: number of claims}`` of a notebook's ``results.json`` (``None`` when it wrote none)."""
    if not results.is_file():
        return None
    counts: dict[str, int] = {}
    for c in json.loads(results.read_text()).get("claims", []):
        counts[c.get("state") or "?"] = counts.get(c.get("state") or "?", 0) + 1
    return counts


def run_one(nb: Path, out: Path, profile: str, timeout: int, force: bool) -> dict:
    import papermill as pm
    import yaml

    stem = nb.stem
    params_file = ROOT / "params" / profile / f"{stem}.yaml"
    params = {}
    if params_file.is_file():
        params = yaml.safe_load(params_file.read_text()) or {}
        if not isinstance(params, dict):
            raise ValueError(f"{params_file}: expected a mapping of parameter names to values")
    else:
        params_file = None
    params["profile"] = profile
    digest = input_hash(nb, params_file, profile)
    stamp = ROOT / ".cache" / "reproduce" / out.name / f"{stem}.json"
    out_nb = out / f"{stem}.ipynb"
    if not force and stamp.is_file() and out_nb.is_file():
        prev = json.loads(stamp.read_text())
        if prev.get("input_hash") == digest and prev.get("status") == "ok":
            print(f"[skip] {stem}: inputs unchanged since its last successful run")
            return {**prev, "skipped": True}
    print(f"[run ] {stem} (profile {profile})", flush=True)
    os.environ["CROWDLIB_REPORTS"] = str(out.resolve())
    (out / stem).mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    record = {"notebook": stem, "profile": profile, "params_file": str(params_file.relative_to(ROOT)) if params_file
              else None, "git_sha": git_sha(), "git_dirty": tree_dirty(), "input_hash": digest, "failed_cell": None,
              "error": None}
    progress = _ProgressTail(stem)
    try:
        pm.execute_notebook(str(nb), str(out_nb), parameters=params, kernel_name="crowdlib",
                            execution_timeout=timeout, cwd=str(nb.parent), progress_bar=False, log_output=False,
                            kernel_manager_class=_ipc_kernel_manager())
        record["status"] = "ok"
    except pm.PapermillExecutionError as exc:
        record.update(status="failed", failed_cell=exc.exec_count, error=f"{exc.ename}: {exc.evalue}"[:500])
    except Exception as exc:  # noqa: BLE001 - a kernel death or timeout must not stop the other notebooks
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        progress.stop()
    record["wall_time_s"] = round(time.time() - t0, 1)
    record["claims"] = _claim_states(out / stem / "results.json")
    (out / stem / "run.json").write_text(json.dumps(record, indent=2))
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(record, indent=2))
    msg = f"[{record['status']:>4}] {stem} in {record['wall_time_s']:.0f}s"
    if record["claims"]:
        msg += " | claims: " + ", ".join(f"{record['claims'].get(k, 0)} {k}" for k in ("reproduced", "inconclusive",
                                                                                      "contradicted"))
    if record["status"] != "ok":
        msg += f" -- failing cell: execution count {record['failed_cell']} ({record['error']})"
    print(msg, flush=True)
    return record


def _row(rows: list[dict], setting: str, metric: str, table: str | None) -> dict:
    for r in rows:
        if r["setting"] == setting and r["metric"] == metric and (table is None or r["table"] == table):
            return r
    return {}


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def write_readme(out: Path) -> Path:
    """Aggregate every ``<out>/NN_*/run.json`` and ``results.json`` into ``<out>/README.md``."""
    lines = ["# Reports", "",
             "Generated by `make reproduce` (`tools/reproduce.py`); do not edit by hand. Each notebook's tables (CSV "
             "and Markdown), figures (PNG), `results.json` and `provenance.json` are in its folder. The wall time is "
             "that of the last execution: with trained models already in the cache (`.cache/`, keyed by config and "
             "training code) it "
             "covers evaluation only; each notebook's timing table gives the training seconds and images/s.", "",
             "| notebook | status | wall time | profile | git SHA | tables |", "|---|---|---|---|---|---|"]
    results = {}
    for run in sorted(out.glob("[0-9][0-9]_*/run.json")):
        r = json.loads(run.read_text())
        stem = run.parent.name
        tables = sorted(p.name for p in run.parent.glob("*.md"))
        links = ", ".join(f"[{t[:-3]}]({stem}/{t})" for t in tables) or "-"
        status = r["status"] if r["status"] == "ok" else f"**{r['status']}** (cell {r.get('failed_cell')})"
        sha = (r.get("git_sha") or "")[:10] + (" (dirty tree)" if r.get("git_dirty") else "")
        lines.append(f"| [{stem}]({stem}.ipynb) | {status} | {r['wall_time_s']:.0f} s | {r['profile']} | {sha} | {links} |")
        res = run.parent / "results.json"
        if res.is_file():
            results[stem] = json.loads(res.read_text())
    lines += ["", "## Reproduction scorecard", "",
              "A claim is a comparison the paper makes, restated so that it can fail. Its state is computed from the "
              "per-seed values (`crowdlib.repro.claim_state`): **reproduced** when the gap in the paper's direction "
              "exceeds its standard error across seeds, **contradicted** when the opposite direction does, "
              "**inconclusive** in between or when the seed noise is unknown (a single seed). Headlines count robust "
              "reproductions only.", ""]
    by_paper: dict[str, list[tuple[str, dict, list]]] = {}
    for stem, doc in results.items():
        by_paper.setdefault(PAPERS.get(stem[0], "Other"), []).append((stem, doc, doc.get("claims", [])))
    if not by_paper:
        lines.append("No notebook has written claims yet.")
    summary = []
    for paper, items in by_paper.items():
        claims = [(stem, doc, c) for stem, doc, cs in items for c in cs]
        counts = {s: sum(c.get("state") == s for _, _, c in claims) for s in STATES}
        summary.append(f"| {paper} | {counts['reproduced']} | {counts['inconclusive']} | {counts['contradicted']} | "
                       f"{len(claims)} |")
        lines += [f"### {paper}: {counts['reproduced']} of {len(claims)} claims reproduced "
                  f"({counts['inconclusive']} inconclusive, {counts['contradicted']} contradicted)", ""]
        if claims:
            lines += ["| notebook | claim | metric | ours (better vs worse) | gap ± se | paper (better vs worse) | state |",
                      "|---|---|---|---|---|---|---|"]
        for stem, doc, c in claims:
            rb = _row(doc["rows"], c["better"], c["metric"], c.get("table"))
            rw = _row(doc["rows"], c["worse"], c["metric"], c.get("table"))
            pb, pw = rb.get("paper"), rw.get("paper")
            gap = "n/a" if c.get("gap") is None else (f"{c['gap']:+.3f} ± " + ("n/a" if c.get("gap_se") is None
                                                                               else f"{c['gap_se']:.3f}"))
            state = c.get("state") or "?"
            lines.append(f"| {stem} | {c['text']} | {c['metric']} | {_fmt(c.get('better_mean'))} vs "
                         f"{_fmt(c.get('worse_mean'))} | {gap} | {_fmt(pb)} vs {_fmt(pw)} | "
                         f"{state if state == 'reproduced' else f'**{state}**'} |")
        lines.append("")
    if summary:
        at = lines.index("## Reproduction scorecard") + 2
        lines[at + 1:at + 1] = ["| paper | reproduced | inconclusive | contradicted | claims |", "|---|---|---|---|---|",
                                *summary, ""]
    path = out / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def group_env(jobs: int, environ: dict[str, str] | None = None, cores: int | None = None) -> dict[str, str]:
    """The environment of one of ``jobs`` group processes: unless ``CROWDLIB_STUDY_JOBS`` is set, each group's
    studies get their share of the cores (``cores // jobs``, at least 1), so that groups side by side never train
    more processes than the machine has cores."""
    env = dict(os.environ if environ is None else environ)
    if not env.get("CROWDLIB_STUDY_JOBS"):
        if cores is None:
            try:
                cores = len(os.sched_getaffinity(0))
            except AttributeError:  # pragma: no cover - not on Linux
                cores = os.cpu_count() or 1
        env["CROWDLIB_STUDY_JOBS"] = str(max(1, int(cores) // max(1, int(jobs))))
    return env


def run_groups(nbs: list[Path], groups: list[str], out: Path, args: argparse.Namespace) -> list[str]:
    """Run each paper group in its own ``reproduce.py`` process, ``args.jobs`` at a time; stream their lines."""
    import subprocess
    import threading
    from concurrent.futures import ThreadPoolExecutor

    lock = threading.Lock()

    def one(group: str) -> tuple[str, int]:
        stems = [nb.stem for nb in nbs if nb.name[0] == group]
        cmd = [sys.executable, str(Path(__file__).resolve()), "--profile", args.profile, "--out", str(out),
               "--timeout", str(args.timeout), "--no-readme", "--only", *stems] + (["--force"] if args.force else []) \
            + (["--allow-dirty"] if args.allow_dirty else [])
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                                env=group_env(args.jobs))
        assert proc.stdout is not None
        for line in proc.stdout:
            with lock:
                print(f"[{PAPERS.get(group, group)}] {line.rstrip()}", flush=True)
        return group, proc.wait()

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one, groups))
    return [f"group {PAPERS.get(g, g)} (exit {rc}; see its lines above)" for g, rc in results if rc != 0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="default", help="parameter profile: a folder under params/ (default: default)")
    ap.add_argument("--out", default="reports", help="output folder for executed notebooks and their tables")
    ap.add_argument("--only", nargs="*", default=None, help="run only notebooks whose names start with these prefixes")
    ap.add_argument("--timeout", type=int, default=3600, help="per-cell execution timeout in seconds")
    ap.add_argument("--force", action="store_true", help="re-execute even notebooks whose inputs did not change")
    ap.add_argument("--readme-only", action="store_true", help="only rebuild <out>/README.md from existing runs")
    ap.add_argument("--jobs", type=int, default=1,
                    help="run the paper groups (00-01, 10-13, 20-23, ...) in this many processes at once; notebooks "
                         "of one group share cached runs and stay sequential (default 1)")
    ap.add_argument("--allow-dirty", action="store_true",
                    help="write into reports/ even though tracked files outside reports/ have uncommitted changes "
                         "(the reports then say so); by default that is refused, so that committed reports come "
                         "from committed code")
    ap.add_argument("--no-readme", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    t_start = time.time()
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {args.jobs}")
    if not (ROOT / "params" / args.profile).is_dir():
        ap.error(f"unknown profile {args.profile!r}: no folder params/{args.profile}")
    out = (ROOT / args.out) if not os.path.isabs(args.out) else Path(args.out)
    if (not args.readme_only and out.resolve() == (ROOT / "reports").resolve() and tree_dirty()
            and not args.allow_dirty):
        ap.error("the tree has uncommitted changes outside reports/ (git status); commit them first, or pass "
                 "--allow-dirty (make reproduce ALLOW_DIRTY=1) and the reports will say they came from a dirty tree")
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    if not args.readme_only:
        nbs = discover(args.only)
        if not nbs:
            print("no notebook matched", file=sys.stderr)
            return 2
        groups = sorted({nb.name[0] for nb in nbs})
        if args.jobs > 1 and len(groups) > 1:
            failed += run_groups(nbs, groups, out, args)
        else:
            for nb in nbs:
                rec = run_one(nb, out, args.profile, args.timeout, args.force)
                if rec["status"] != "ok":
                    failed.append(f"{nb.stem} (cell {rec.get('failed_cell')}: {rec.get('error')})")
    if args.no_readme:
        return 1 if failed else 0
    readme = write_readme(out)
    print(f"wrote {readme}")
    if not args.readme_only:
        total = {k: 0 for k in ("reproduced", "inconclusive", "contradicted")}
        for run in out.glob("[0-9][0-9]_*/results.json"):
            for k, v in (_claim_states(run) or {}).items():
                total[k] = total.get(k, 0) + v
        print(f"total wall time {time.time() - t_start:.0f} s; scorecard over {out.name}/: "
              + ", ".join(f"{v} {k}" for k, v in total.items()))
    if failed:
        print("FAILED notebooks:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
