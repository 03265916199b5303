"""The shape of the house: no import cycles in crowdlib/, small source files, papers reuse each other only through
public names, and committed notebooks equal what their generators write."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "crowdlib"
MAX_LINES = 620  # "no source file over about 600 lines"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """Every crowdlib module imported by a file, at module level or inside functions (lazy imports included)."""
    tree = ast.parse(path.read_text(), str(path))
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("crowdlib")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("crowdlib"):
                continue
            out.add(mod)
            for a in node.names:  # "from crowdlib.methods import sdnet" imports the submodule
                out.add(f"{mod}.{a.name}")
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    return {m: {d for d in _imports(p, m) if d in files and d != m} for m, p in files.items()}


def test_no_import_cycles_in_crowdlib():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_papers_use_each_other_only_through_public_names():
    """A method package may import another paper's package (its __init__), never its internal modules."""
    graph = _graph()
    bad = []
    for m, deps in graph.items():
        if not m.startswith("crowdlib.methods."):
            continue
        paper = m.split(".")[2]
        for d in deps:
            if d.startswith("crowdlib.methods.") and d.split(".")[2] != paper and d.count(".") > 2:
                bad.append(f"{m} -> {d}")
    assert not bad, bad


def test_source_files_are_small():
    big = []
    for folder in ("crowdlib", "tools", "benchmarks", "notebooks/src"):
        for p in (ROOT / folder).rglob("*.py"):
            n = len(p.read_text().splitlines())
            if n > MAX_LINES:
                big.append(f"{p.relative_to(ROOT)}: {n} lines")
    assert not big, big


def test_contracts_doc_names_exist():
    """Every ``crowdlib`` path written in docs/CONTRACTS.md exists, and every ``device`` function it names too."""
    import re

    from crowdlib import device

    text = (ROOT / "docs" / "CONTRACTS.md").read_text()
    missing = [p for p in re.findall(r"`(crowdlib/[\w/]+(?:\.py)?)`", text) if not (ROOT / p).exists()]
    assert not missing, missing
    row = next(line for line in text.splitlines() if line.startswith("| `crowdlib/device.py`"))
    for fn in re.findall(r"`(\w+)\(", row):
        assert hasattr(device, fn), f"docs/CONTRACTS.md names crowdlib.device.{fn}, which does not exist"


@pytest.mark.slow
def test_committed_notebooks_match_their_generators(tmp_path):
    """Regenerate every notebook from notebooks/src/make_NN.py into a scratch tree and compare byte for byte."""
    (tmp_path / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "nbtools.py", tmp_path / "tools" / "nbtools.py")
    shutil.copytree(ROOT / "notebooks" / "src", tmp_path / "notebooks" / "src")
    stale = []
    makers = sorted((tmp_path / "notebooks" / "src").glob("make_*.py"))
    assert makers, "no notebook generators found"
    for maker in makers:
        out = subprocess.run([sys.executable, str(maker)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert out.returncode == 0, f"{maker.name}: {out.stderr[-2000:]}"
    for nb in sorted((tmp_path / "notebooks").glob("*.ipynb")):
        committed = ROOT / "notebooks" / nb.name
        if not committed.is_file() or committed.read_bytes() != nb.read_bytes():
            stale.append(nb.name)
    generated = {p.name for p in (tmp_path / "notebooks").glob("*.ipynb")}
    orphans = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb") if p.name not in generated)
    assert not stale, f"notebooks differ from their generators (run notebooks/src/make_NN.py): {stale}"
    assert not orphans, f"notebooks without a generator: {orphans}"
